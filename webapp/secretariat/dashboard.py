"""The call's dashboard (counts per state, stage and funder, deadlines, review progress; small server-drawn
SVG charts whose every number links to the page behind it: the filtered proposal list, or the secretariat's
review pages) and the lifecycle's state diagram, drawn as SVG from the lifecycle table with the current count
on each state, with its Mermaid source for copying. No JavaScript.

The review figures are counted here, in the web layer, because workflow/ never imports reviews/: a fixed
number of aggregate statements whatever the number of proposals, assignments and reviews."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass

from flask import render_template
from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import Session

from reviews.assignment import wanted_reviewers
from reviews.common import REVIEW_STATE
from reviews.conflicts import LIVE_STATES
from reviews.models import Conflict, Review, ReviewAssignment
from reviews.scoring import review_deadline
from webapp.auth import actor
from webapp.db import db
from webapp.secretariat import bp
from webapp.secretariat.calls import _console_call
from webapp.secretariat.reviews import STAGE_NAMES
from webapp.views import deny_access
from workflow import console, lifecycle
from workflow.access import can
from workflow.clock import utcnow
from workflow.errors import AccessDenied
from workflow.lifecycle import STATE_BY_NAME, Variant, stage_of, states_for, transitions_for
from workflow.models import Call, Proposal


@bp.get("/calls/<int:call_id>/dashboard")
def dashboard(call_id: int):
    call = _console_call(call_id)
    try:
        d = console.dashboard(db(), actor(), call)
    except AccessDenied as err:
        deny_access(err)
    progress = review_progress(db(), call) if can(actor(), "review.assign", call) else None
    return render_template("secretariat/dashboard.html", call=call, d=d, bar=_bar, reviews=progress)


def _bar(value: int, maximum: int, width: int = 300) -> int:
    """The length of a bar in pixels (at least 1 for a non-zero value)."""
    if not value or not maximum:
        return 0
    return max(1, round(width * value / maximum))


# ---------------------------------------------------------------------------------------------------------
# Review progress per stage


@dataclass(frozen=True)
class StageReviews:
    """One stage's review figures. "Late" is the rule of the progress page and of the reminders: the review
    deadline (reviews.scoring.review_deadline: the call's setting, else the latest reminders') has passed and a review of a proposal still under
    review at this stage is not submitted."""

    kind: str
    label: str
    in_review: int  # proposals in the stage's review state
    wanted: int  # reviewers each proposal should get
    short: int  # proposals in review with fewer assignments than wanted
    assignments: int  # every assignment of the stage (also of proposals that moved on, as the progress page)
    submitted: int
    drafts: int
    not_started: int
    unfinished: int  # not submitted, the proposal still under review
    unfinished_proposals: int
    deadline: dt.datetime | None
    now: dt.datetime
    declared: int  # stored conflicts of proposals under review, not overridden
    detected: int
    overridden: int

    @property
    def late_now(self) -> bool:
        return self.deadline is not None and self.now >= self.deadline

    @property
    def late(self) -> int:
        return self.unfinished if self.late_now else 0

    @property
    def late_proposals(self) -> int:
        return self.unfinished_proposals if self.late_now else 0

    @property
    def conflicts(self) -> int:
        return self.declared + self.detected + self.overridden


@dataclass(frozen=True)
class ReviewProgress:
    stages: list[StageReviews]

    @property
    def max_assignments(self) -> int:
        return max([s.assignments for s in self.stages] + [1])


def _review_stage_case():
    """The stage whose reviews a proposal in a review state receives (SQL)."""
    return case((Proposal.state == REVIEW_STATE["pre"], "pre"), else_="full")


def review_progress(session: Session, call: Call) -> ReviewProgress:
    """Per stage of the call: assignments, submitted, drafts, not started, late, conflicts, and proposals
    with fewer reviewers than wanted. Four aggregate statements plus one per stage (its review deadline)."""
    kinds = [s.kind for s in call.settings.stages]
    review_states = [REVIEW_STATE[k] for k in kinds]
    in_review = or_(*[and_(ReviewAssignment.stage == k, Proposal.state == REVIEW_STATE[k]) for k in kinds])
    status = case((Review.status == "submitted", "submitted"), (Review.status == "draft", "draft"),
                  else_="not_started")
    flag = case((in_review, 1), else_=0)

    # 1. Assignments by stage, review status and whether the proposal is still under review.
    by_status: Counter = Counter()
    unfinished: Counter = Counter()
    for stage, st, live, n in session.execute(
        select(ReviewAssignment.stage, status, flag, func.count(ReviewAssignment.id))
        .join(Proposal, Proposal.id == ReviewAssignment.proposal_id)
        .outerjoin(Review, Review.assignment_id == ReviewAssignment.id)
        .where(ReviewAssignment.call_id == call.id, ReviewAssignment.stage.in_(kinds))
        .group_by(ReviewAssignment.stage, status, flag)
    ).all():
        by_status[(stage, st)] += n
        if live and st != "submitted":
            unfinished[stage] += n

    # 2. Proposals under review with an unfinished review (those the progress page marks late).
    unfinished_proposals = Counter(dict(session.execute(
        select(ReviewAssignment.stage, func.count(func.distinct(ReviewAssignment.proposal_id)))
        .join(Proposal, Proposal.id == ReviewAssignment.proposal_id)
        .outerjoin(Review, Review.assignment_id == ReviewAssignment.id)
        .where(ReviewAssignment.call_id == call.id, in_review,
               or_(Review.id.is_(None), Review.status != "submitted"))
        .group_by(ReviewAssignment.stage)
    ).all()))

    # 3. Proposals under review and those with fewer assignments than wanted (assignments of their stage).
    wanted = wanted_reviewers(call)
    per_proposal = (
        select(Proposal.state.label("state"), func.count(ReviewAssignment.id).label("n"))
        .outerjoin(ReviewAssignment, and_(ReviewAssignment.proposal_id == Proposal.id,
                                          ReviewAssignment.stage == _review_stage_case()))
        .where(Proposal.call_id == call.id, Proposal.state.in_(review_states))
        .group_by(Proposal.id, Proposal.state)
    ).subquery()
    coverage = {state: (total, int(short or 0)) for state, total, short in session.execute(
        select(per_proposal.c.state, func.count(), func.sum(case((per_proposal.c.n < wanted, 1), else_=0)))
        .group_by(per_proposal.c.state)
    ).all()}

    # 4. Stored conflicts of the proposals under review (the conflicts page lists those), by stage.
    overridden = case((Conflict.overridden_at.is_not(None), 1), else_=0)
    conflicts: Counter = Counter()
    variant = Variant.of(call)
    for state, source, over, n in session.execute(
        select(Proposal.state, Conflict.source, overridden, func.count(Conflict.id))
        .join(Proposal, Proposal.id == Conflict.proposal_id)
        .where(Conflict.call_id == call.id, Proposal.state.in_(LIVE_STATES))
        .group_by(Proposal.state, Conflict.source, overridden)
    ).all():
        conflicts[(stage_of(state, variant), "overridden" if over else source)] += n

    now = utcnow()
    stages = []
    for kind in kinds:
        total, short = coverage.get(REVIEW_STATE[kind], (0, 0))
        submitted, drafts, not_started = (by_status[(kind, s)] for s in ("submitted", "draft", "not_started"))
        stages.append(StageReviews(
            kind=kind, label=STAGE_NAMES[kind] if call.two_stage else "proposal", in_review=total, wanted=wanted,
            short=short, assignments=submitted + drafts + not_started, submitted=submitted, drafts=drafts,
            not_started=not_started, unfinished=unfinished[kind], unfinished_proposals=unfinished_proposals[kind],
            deadline=review_deadline(db(), call, kind), now=now, declared=conflicts[(kind, "declared")],
            detected=conflicts[(kind, "detected")], overridden=conflicts[(kind, "overridden")]))
    return ReviewProgress(stages)


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
