"""The call's dashboard (counts per state, stage and funder, deadlines, review progress; small server-drawn
SVG charts whose every number links to the page behind it: the filtered proposal list, or the secretariat's
review pages) and the lifecycle's state diagram, drawn as SVG from the lifecycle table with the current count
on each state, with its Mermaid source for copying. No JavaScript.

The review figures come from reviews.progress (workflow/ never imports reviews/, so console.dashboard
cannot count them); only people who may assign reviews see them."""

from __future__ import annotations

from dataclasses import dataclass

from flask import render_template

from reviews.progress import call_review_progress
from webapp.auth import actor
from webapp.db import db
from webapp.secretariat import bp
from webapp.secretariat.calls import _console_call
from webapp.views import deny_access
from workflow import console, lifecycle
from workflow.access import can
from workflow.errors import AccessDenied
from workflow.lifecycle import STATE_BY_NAME, Variant, states_for, transitions_for


@bp.get("/calls/<int:call_id>/dashboard")
def dashboard(call_id: int):
    call = _console_call(call_id)
    try:
        d = console.dashboard(db(), actor(), call)
    except AccessDenied as err:
        deny_access(err)
    progress = call_review_progress(db(), call) if can(actor(), "review.assign", call) else None
    return render_template("secretariat/dashboard.html", call=call, d=d, bar=_bar, reviews=progress)


def _bar(value: int, maximum: int, width: int = 300) -> int:
    """The length of a bar in pixels (at least 1 for a non-zero value)."""
    if not value or not maximum:
        return 0
    return max(1, round(width * value / maximum))


# ---------------------------------------------------------------------------------------------------------
# The state diagram: a layered layout of the lifecycle table, top to bottom

BOX_W, BOX_H, GAP_X, GAP_Y, MARGIN = 170, 46, 28, 40, 20


@dataclass(frozen=True)
class Box:
    name: str
    label: str
    count: int
    final: bool
    x: int
    y: int

    @property
    def cx(self) -> int:
        return self.x + BOX_W // 2


@dataclass(frozen=True)
class Edge:
    trigger: str
    source: str
    dest: str
    path: str
    label_x: int
    label_y: int
    back: bool


@dataclass(frozen=True)
class Diagram:
    boxes: list[Box]
    edges: list[Edge]
    width: int
    height: int
    withdraw_sources: list[str]


def layout(variant: Variant, counts) -> Diagram:
    """Rows by the longest path from "draft" over forward transitions (a transition to a state listed
    earlier in the table, like reopen, is a back edge drawn on the side); "withdrawn" is reachable from
    most states, so it is drawn once at the bottom with the list of states it is reachable from."""
    states = states_for(variant)
    order = {s.name: i for i, s in enumerate(states)}
    rows = [t for t in transitions_for(variant) if t.trigger != "withdraw"]
    pairs = [(src, t.dest, t.trigger) for t in rows for src in t.sources]
    forward = [(a, b, trig) for a, b, trig in pairs if order[b] > order[a]]
    depth = {s.name: 0 for s in states}
    for _ in range(len(states)):  # longest path on a DAG by relaxation
        changed = False
        for a, b, _trig in forward:
            if depth[b] < depth[a] + 1:
                depth[b], changed = depth[a] + 1, True
        if not changed:
            break
    withdrawn = "withdrawn" if "withdrawn" in order else None
    if withdrawn:
        depth[withdrawn] = max(d for n, d in depth.items() if n != withdrawn) + 1
    layers: dict[int, list[str]] = {}
    for s in states:
        layers.setdefault(depth[s.name], []).append(s.name)
    position: dict[str, float] = {}
    for d in sorted(layers):
        names = layers[d]

        def centre(name, d=d):
            parents = [position[a] for a, b, _t in forward if b == name and a in position and depth[a] < d]
            return (sum(parents) / len(parents) if parents else 0.0, order[name])

        names.sort(key=centre)
        for i, name in enumerate(names):
            position[name] = i - (len(names) - 1) / 2
    widest = max(len(v) for v in layers.values())
    width = MARGIN * 2 + widest * BOX_W + (widest - 1) * GAP_X + 120
    mid = (width - 120) / 2
    boxes: dict[str, Box] = {}
    for s in states:
        x = round(mid + position[s.name] * (BOX_W + GAP_X) - BOX_W / 2)
        y = MARGIN + depth[s.name] * (BOX_H + GAP_Y)
        boxes[s.name] = Box(s.name, s.label, counts.get(s.name, 0), s.final, x, y)
    edges = []
    for a, b, trig in pairs:
        sa, sb = boxes[a], boxes[b]
        if order[b] > order[a]:
            x1, y1, x2, y2 = sa.cx, sa.y + BOX_H, sb.cx, sb.y
            my = (y1 + y2) / 2
            path = f"M{x1},{y1} C{x1},{my:.0f} {x2},{my:.0f} {x2},{y2 - 2}"
            edges.append(Edge(trig, a, b, path, round((x1 + x2) / 2) + 4, round(my) + 4, False))
        else:  # back edge: out of the right side, round the right, into the right side
            x1, y1 = sa.x + BOX_W, sa.y + BOX_H // 2
            x2, y2 = sb.x + BOX_W, sb.y + BOX_H // 2
            bulge = max(x1, x2) + 40
            path = f"M{x1},{y1} C{bulge},{y1} {bulge},{y2} {x2 + 2},{y2}"
            edges.append(Edge(trig, a, b, path, bulge - 8, round((y1 + y2) / 2), True))
    height = MARGIN * 2 + (max(depth.values()) + 1) * (BOX_H + GAP_Y)
    withdraw = next((t for t in transitions_for(variant) if t.trigger == "withdraw"), None)
    return Diagram(list(boxes.values()), edges, width, height, list(withdraw.sources) if withdraw else [])


@bp.get("/calls/<int:call_id>/diagram")
def diagram(call_id: int):
    call = _console_call(call_id)
    variant = Variant.of(call)
    counts = console.state_counts(db(), call)
    table = []
    for s in states_for(variant):
        outgoing = [t for t in transitions_for(variant) if s.name in t.sources]
        table.append((s, counts.get(s.name, 0), outgoing))
    return render_template("secretariat/diagram.html", call=call, variant=variant, d=layout(variant, counts),
                           table=table, mermaid=lifecycle.mermaid(variant), labels=STATE_BY_NAME,
                           total=sum(counts.values()), BOX_W=BOX_W, BOX_H=BOX_H)
