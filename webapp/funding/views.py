"""Funding pages: budgets and increases, the scenario in rank order with per-funder budget bars, what-if,
the steering committee's approval, funders confirming their own partners, recomputation, and each funder's
funding list as CSV/XLSX.

Views are thin: allow(...) asks the access policy, one workflow.funding_ops operation does the work, and
a refusal is shown next to its field (422) with the input kept. The order of the list comes from
webapp.funding.ranking (reviews' approved ranking, or a documented fallback the pages point out).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from types import SimpleNamespace

from flask import abort, flash, redirect, render_template, request, url_for
from sqlalchemy import select

from webapp.auth import actor
from webapp.db import commit, db
from webapp.exports import table_response
from webapp.funding import bp
from webapp.funding.forms import ApproveForm, ConfirmationForm, IncreaseForm, RecomputeForm, what_if_form
from webapp.funding.ranking import funding_ranking
from webapp.views import allow, get_or_404, page_arg, refuse
from workflow.access import can
from workflow.errors import AccessDenied, ChangedMeanwhile, DomainError
from workflow.funding import BLOCKED, RESERVE, SELECTED, Scenario, changes
from workflow.funding_models import FundingConfirmation
from workflow.funding_ops import approve_funding_list as approve_operation
from workflow.funding_ops import (
    budget_increases,
    compute_scenario,
    confirm_funding,
    confirmations,
    current_funding,
    funder_budgets,
    funding_lines,
    funding_revisions,
    gap_pot_of,
    list_fingerprint,
    proposals_by_id,
    recompute_funding,
    record_budget_increase,
    what_if,
)
from workflow.lifecycle import STATE_BY_NAME
from workflow.models import Call, CallFunder, FundingOrganisation, Proposal
from workflow.paging import PER_PAGE, Window

STATUS_LABELS = {SELECTED: "Selected", BLOCKED: "Blocked", RESERVE: "Reserve"}
CONFIRMATION_LABELS = {"pending": "Pending", "confirmed": "Confirmed", "declined": "Declined",
                       "cancelled": "Cancelled"}


def _deny(err: AccessDenied):
    if actor() is None:
        abort(401)
    abort(403, description=str(err))


def _call(call_id: int) -> Call:
    return get_or_404(Call, call_id)


def _for_funder(call: Call, funder_id: int) -> SimpleNamespace:
    return SimpleNamespace(call_id=call.id, funder_id=funder_id)


def _may(action: str, obj) -> bool:
    return bool(can(actor(), action, obj))


def _state(state: str) -> str:
    return STATE_BY_NAME[state].label if state in STATE_BY_NAME else state


@bp.record_once
def _template_globals(state):
    """Labels the funding templates' macros use (globals, so imported macros see them too)."""
    state.app.jinja_env.globals.update(funding_status_labels=STATUS_LABELS, confirmation_labels=CONFIRMATION_LABELS,
                                       proposal_state_label=_state)


# ---------------------------------------------------------------------------------------------------------
# What the scenario table and the budget bars show


@dataclass
class Bar:
    """One funder's budget as a bar: allocated and remaining make up the budget; the gap pot's part for
    this funder's partners is drawn beyond it."""

    funder_id: int
    acronym: str
    committed: int
    increases: int
    what_if: int
    available: int
    allocated: int
    gap: int
    remaining: int
    requested: int
    x_remaining: float = 0.0
    w_allocated: float = 0.0
    w_remaining: float = 0.0
    x_gap: float = 0.0
    w_gap: float = 0.0

    @property
    def label(self) -> str:
        from workflow.timefmt import format_eur as eur

        text = f"{self.acronym}: {eur(self.allocated)} allocated of {eur(self.available)}, {eur(self.remaining)} left"
        if self.gap:
            text += f"; the gap pot pays {eur(self.gap)} more"
        return text


def bars(scenario: Scenario) -> list[Bar]:
    out = []
    for f in scenario.funders:
        if not f.requested and not f.increases and not f.what_if:
            continue
        scale = max(f.available + f.gap_pot_used, f.allocated, 1)
        b = Bar(f.funder_id, f.acronym, f.committed, f.increases, f.what_if, f.available, f.allocated,
                f.gap_pot_used, f.remaining, f.requested)
        b.w_allocated = round(100 * f.allocated / scale, 2)
        b.x_remaining = b.w_allocated
        b.w_remaining = round(100 * max(f.remaining, 0) / scale, 2)
        b.x_gap = round(100 * max(f.available, f.allocated) / scale, 2)
        b.w_gap = round(100 * f.gap_pot_used / scale, 2)
        out.append(b)
    return out


@dataclass
class Cell:
    requested: int = 0
    shortfall: int = 0
    gap: int = 0


@dataclass
class Row:
    outcome: object
    # One (funder acronym, cell or None) per column of the table, in the columns' order: the template
    # writes them out without looking anything up (a page is 50 rows times every funder).
    columns: list[tuple[str, Cell | None]]
    before: str | None = None  # what-if: the status without the increases, when it differs
    changed: bool = False
    confirmations: list = field(default_factory=list)


def rows(scenario: Scenario, window: Window, funders: list, *, before: Scenario | None = None,
         confirmation_rows=()) -> list[Row]:
    """The table rows of the page `window` shows (the scenario has every proposal of the ranking), with a
    column for each of `funders` (shown_funders)."""
    outcomes = window.slice(scenario.outcomes)
    shown = {o.proposal_id for o in outcomes}
    by_proposal: dict[int, list] = {}
    for c in confirmation_rows:
        if c.proposal_id in shown:
            by_proposal.setdefault(c.proposal_id, []).append(c)
    diff = {ch.proposal_id: ch for ch in changes(before, scenario)} if before is not None else {}
    out = []
    for o in outcomes:
        requested, shortfalls, gaps = o.requested, o.shortfalls, o.from_gap_pot
        columns = [(f.acronym, Cell(requested[f.funder_id], shortfalls.get(f.funder_id, 0), gaps.get(f.funder_id, 0))
                    if f.funder_id in requested else None) for f in funders]
        ch = diff.get(o.proposal_id)
        out.append(Row(o, columns, before=ch.before if ch else None, changed=ch is not None,
                       confirmations=by_proposal.get(o.proposal_id, [])))
    return out


def shown_funders(scenario: Scenario) -> list:
    return [f for f in scenario.funders if f.requested]


# ---------------------------------------------------------------------------------------------------------
# Index


@bp.get("/")
def index():
    me = actor()
    if me is None:
        abort(401)
    calls = [c for c in db().scalars(select(Call).order_by(Call.created_at.desc(), Call.id.desc()))
             if can(me, "funding.view", c)]
    if not calls:
        abort(403, description="only the call secretariat and the funders' officers can see the funding decision")
    return render_template("funding/index.html", calls=calls,
                           secretariat={c.id for c in calls if can(me, "call.manage", c)})


@bp.get("/calls/<int:call_id>")
def call_home(call_id: int):
    return redirect(url_for(".scenario", call_id=call_id))


# ---------------------------------------------------------------------------------------------------------
# Budgets


def _visible_budgets(call: Call):
    """The funders whose budget this person sees: all for the secretariat, their own for an officer."""
    return [b for b in funder_budgets(db(), call) if _may("funding.increase_budget", _for_funder(call, b.funder_id))]


@bp.get("/calls/<int:call_id>/budgets")
def budgets(call_id: int):
    call = _call(call_id)
    allow("funding.view", call)
    visible = _visible_budgets(call)
    if not visible:
        abort(403, description="only the call secretariat or a funder's officers can see its budget")
    current = current_funding(db(), call)
    increases = defaultdict(list)  # every funder's in one statement
    for row in budget_increases(db(), call):
        increases[row.funder_id].append(row)
    return render_template("funding/budgets.html", call=call, budgets=visible, increases=increases,
                           frozen=current, gap_pot=gap_pot_of(call), all_funders=_may("call.manage", call))


def _funder_page(call: Call, funder_id: int, form: IncreaseForm, code: int = 200):
    budget = next((b for b in funder_budgets(db(), call) if b.funder_id == funder_id), None)
    if budget is None:
        abort(404)
    cf = db().scalar(select(CallFunder).where(CallFunder.call_id == call.id, CallFunder.funder_id == funder_id))
    return render_template("funding/budget_funder.html", call=call, budget=budget, funder=cf.funder, cf=cf,
                           increases=budget_increases(db(), call, funder_id), frozen=current_funding(db(), call),
                           form=form), code


@bp.get("/calls/<int:call_id>/budgets/<int:funder_id>")
def funder_budget(call_id: int, funder_id: int):
    call = _call(call_id)
    allow("funding.increase_budget", _for_funder(call, funder_id))
    return _funder_page(call, funder_id, IncreaseForm())


@bp.post("/calls/<int:call_id>/budgets/<int:funder_id>")
def increase_budget(call_id: int, funder_id: int):
    call = _call(call_id)
    allow("funding.increase_budget", _for_funder(call, funder_id))
    form = IncreaseForm()
    if form.validate_on_submit():
        try:
            row = record_budget_increase(db(), actor(), call, funder_id, form.amount.data, form.reason.data)
            acronym = row.funder.acronym
            commit()
        except DomainError as err:
            refuse(form, err)
        else:
            from workflow.timefmt import format_eur

            flash(f"Budget increase of {format_eur(form.amount.data)} recorded for {acronym}.", "success")
            return redirect(url_for(".funder_budget", call_id=call.id, funder_id=funder_id))
    return _funder_page(call, funder_id, form, 422)


# ---------------------------------------------------------------------------------------------------------
# The scenario


def _draft(call: Call):
    """(ranking, scenario or None, error or None) before the approval."""
    ranking = funding_ranking(db(), call)
    try:
        return ranking, compute_scenario(db(), actor(), call, ranking.entries), None
    except AccessDenied as err:
        _deny(err)
    except DomainError as err:
        db().rollback()
        return ranking, None, str(err)


@bp.get("/calls/<int:call_id>/scenario")
def scenario(call_id: int):
    call = _call(call_id)
    allow("funding.view", call)
    current = current_funding(db(), call)
    if current is not None:
        ranking, s, error = None, current.scenario, None
        confirmation_rows = confirmations(db(), call)
    else:
        ranking, s, error = _draft(call)
        confirmation_rows = []
    # The allocation sees the whole ranking; the table shows a page of it, the summary and bars the whole.
    shown = Window(len(s.outcomes) if s else 0, page_arg())
    funders = shown_funders(s) if s else []
    return render_template(
        "funding/scenario.html", call=call, current=current, ranking=ranking, scenario=s, error=error,
        rows=rows(s, shown, funders, confirmation_rows=confirmation_rows) if s else [], shown=shown,
        funders=funders,
        bars=bars(s) if s else [], revisions=funding_revisions(db(), call) if current else [],
        may_manage=_may("call.manage", call), may_what_if=_may("funding.what_if", call) and current is None,
        may_approve=_may("funding.approve", call) and current is None,
        may_recompute=_may("funding.recompute", call) and current is not None,
        recompute_form=RecomputeForm(), pending=sum(1 for c in confirmation_rows if c.status == "pending"),
    )


@bp.get("/calls/<int:call_id>/what-if")
def what_if_page(call_id: int):
    call = _call(call_id)
    allow("funding.what_if", call)
    current = current_funding(db(), call)
    if current is not None:
        flash("The funding list is approved: budgets and the list are frozen, so there is nothing to try.", "info")
        return redirect(url_for(".scenario", call_id=call.id))
    budgets_ = funder_budgets(db(), call)
    tried_args = {k: v for k, v in request.args.items() if k != "page"}  # ?page= alone is the plain list
    form = what_if_form(budgets_, request.args if tried_args else None)
    tried = None
    code = 200
    ranking = funding_ranking(db(), call)
    if tried_args:
        if form.validate():
            increases = {f.funder_id: getattr(form, f"extra_{f.funder_id}").data or 0 for f in budgets_}
            increases = {k: v for k, v in increases.items() if v}
            try:
                tried = what_if(db(), actor(), call, ranking.entries, increases)
            except DomainError as err:
                refuse(form, err)
                code = 422
        else:
            code = 422
    base_error = None
    if tried is None:
        _r, base, base_error = _draft(call)
    else:
        base = tried.base
    shown = tried.scenario if tried else base
    window = Window(len(shown.outcomes) if shown else 0, page_arg())
    funders = shown_funders(shown) if shown else []
    return render_template(
        "funding/what_if.html", call=call, form=form, fields=[getattr(form, f"extra_{f.funder_id}") for f in budgets_],
        tried=tried, ranking=ranking, error=base_error, shown=window,
        # The pages keep the increases tried.
        page_args=dict(tried_args, call_id=call.id),
        rows=rows(shown, window, funders, before=tried.base if tried else None) if shown else [],
        funders=funders, bars=bars(shown) if shown else [],
    ), code


# ---------------------------------------------------------------------------------------------------------
# Approval


def _approve_page(call: Call, form: ApproveForm, code: int = 200):
    current = current_funding(db(), call)
    if current is not None:
        flash("The funding list is approved already.", "info")
        return redirect(url_for(".scenario", call_id=call.id))
    ranking, s, error = _draft(call)
    per_funder = {}
    if s is not None:
        for o in s.selected:
            for p in o.partners:
                entry = per_funder.setdefault(p.funder_id, {"acronym": s.funder(p.funder_id).acronym,
                                                            "proposals": set(), "amount": 0})
                entry["proposals"].add(o.proposal_id)
                entry["amount"] += p.amount
        if not form.fingerprint.data or code == 200:
            form.fingerprint.data = list_fingerprint(s)  # of the whole list, which the approval freezes
    shown = Window(len(s.outcomes) if s else 0, page_arg())
    funders = shown_funders(s) if s else []
    return render_template("funding/approve.html", call=call, ranking=ranking, scenario=s, error=error, form=form,
                           per_funder=sorted(per_funder.values(), key=lambda e: e["acronym"].casefold()),
                           rows=rows(s, shown, funders) if s else [], shown=shown, funders=funders), code


@bp.get("/calls/<int:call_id>/approve")
def approve(call_id: int):
    call = _call(call_id)
    allow("funding.approve", call)
    return _approve_page(call, ApproveForm())


@bp.post("/calls/<int:call_id>/approve")
def approve_post(call_id: int):
    call = _call(call_id)
    allow("funding.approve", call)
    form = ApproveForm()
    if not form.validate_on_submit():
        return _approve_page(call, form, 422)
    try:
        row = approve_operation(db(), actor(), call, funding_ranking(db(), call).entries, form.note.data,
                                expected_fingerprint=form.fingerprint.data or "")
        selected, reserve = len(row.scenario.selected), len(row.scenario.reserve_list)
        commit()
    except ChangedMeanwhile:
        db().rollback()
        flash("The ranking, the budgets or the proposals changed since this page was shown; check the list below "
              "again before recording the approval. Nothing was recorded.", "danger")
        form.fingerprint.data = ""
        return _approve_page(call, form, 409)
    except DomainError as err:
        refuse(form, err)
        return _approve_page(call, form, 422)
    flash(f"The steering committee's approval is recorded: {selected} proposal{'s' if selected != 1 else ''} "
          f"selected, {reserve} on the reserve list. The funders were asked to confirm their partners.", "success")
    return redirect(url_for(".scenario", call_id=call.id))


@bp.post("/calls/<int:call_id>/recompute")
def recompute(call_id: int):
    call = _call(call_id)
    allow("funding.recompute", call)
    form = RecomputeForm()
    if form.validate_on_submit():
        before = current_funding(db(), call)
        try:
            row = recompute_funding(db(), actor(), call, form.note.data)
            summary = _change_summary(before.scenario, row.scenario)
            revision = row.revision
            commit()
        except DomainError as err:
            refuse(None, err)
        else:
            flash(f"The funding list was recomputed (revision {revision}). {summary}", "success")
    else:
        flash("The form expired; nothing was recomputed. Try again.", "danger")
    return redirect(url_for(".scenario", call_id=call.id))


def _change_summary(before: Scenario, after: Scenario) -> str:
    parts = []
    for ch in changes(before, after):
        if ch.after is None:
            parts.append(f"{ch.reference} {ch.acronym} left the list")
        else:
            was = STATUS_LABELS.get(ch.before, ch.before or "not listed").lower()
            parts.append(f"{ch.reference} {ch.acronym}: {was} → {STATUS_LABELS[ch.after].lower()}")
    return ("Changes: " + "; ".join(parts) + ".") if parts else "No other proposal changed."


# ---------------------------------------------------------------------------------------------------------
# Confirmations


@dataclass
class ConfirmationCard:
    confirmation: FundingConfirmation
    proposal: Proposal
    lines: list
    form: ConfirmationForm | None
    rank: int | None


@dataclass
class Confirmations:
    """What the confirmations page shows: a page of this officer's cards, a page of the secretariat's
    overview (both follow ?page=) and the overview's counts per status over the whole call."""

    cards: list[ConfirmationCard]
    cards_window: Window
    overview: list[tuple[FundingConfirmation, Proposal]]
    overview_window: Window
    counts: dict[str, int]
    total: int


def _cards(call: Call, forms: dict[int, ConfirmationForm] | None = None) -> Confirmations:
    """This officer's confirmations as cards (pending first, in rank order), and every confirmation for the
    secretariat's overview; one page of each, in a fixed number of statements."""
    me = actor()
    every = confirmations(db(), call)
    current = current_funding(db(), call)
    ranks = {o.proposal_id: o.rank for o in current.scenario.outcomes} if current else {}
    mine = sorted((c for c in every if can(me, "funding.confirm", c)),
                  key=lambda c: (c.status != "pending", ranks.get(c.proposal_id, 10**6), c.id))
    requested = page_arg()
    if forms:  # a refused decision: show the page with its card
        at = next((i for i, c in enumerate(mine) if c.id in forms), None)
        requested = at // PER_PAGE + 1 if at is not None else requested
    cards_window = Window(len(mine), requested)
    page = cards_window.slice(mine)
    overview_all = every if _may("call.manage", call) else []
    overview_window = Window(len(overview_all), requested)
    overview = overview_window.slice(overview_all)
    proposals = proposals_by_id(db(), call, {c.proposal_id for c in page + overview})
    lines = defaultdict(list)
    if current and page:
        for ln in funding_lines(db(), call, proposal_ids={c.proposal_id for c in page}):
            lines[(ln.proposal_id, ln.funder_id)].append(ln)
    cards = []
    for c in page:
        form = (forms or {}).get(c.id)
        if form is None and c.status == "pending":
            form = ConfirmationForm(prefix=f"c{c.id}", formdata=None, data={"version": str(c.version)})
        cards.append(ConfirmationCard(c, proposals[c.proposal_id], lines[(c.proposal_id, c.funder_id)],
                                      form if c.status == "pending" else None, ranks.get(c.proposal_id)))
    return Confirmations(cards, cards_window, [(c, proposals[c.proposal_id]) for c in overview], overview_window,
                         dict(Counter(c.status for c in overview_all)), len(overview_all))


def _confirmations_page(call: Call, forms=None, code: int = 200):
    shown = _cards(call, forms)
    current = current_funding(db(), call)
    message = None
    if not shown.cards and not shown.overview and current:
        message = "No partner of your organisation is on the approved funding list."
    return render_template("funding/confirmations.html", call=call, shown=shown, cards=shown.cards,
                           overview=shown.overview, current=current, message=message,
                           may_manage=_may("call.manage", call)), code


@bp.get("/calls/<int:call_id>/confirmations")
def confirmations_page(call_id: int):
    call = _call(call_id)
    allow("funding.view", call)
    return _confirmations_page(call)


@bp.post("/confirmations/<int:confirmation_id>")
def confirm(confirmation_id: int):
    c = get_or_404(FundingConfirmation, confirmation_id)
    allow("funding.confirm", c)
    call = db().get(Call, c.call_id)
    form = ConfirmationForm(prefix=f"c{c.id}")
    code = 422
    if form.validate_on_submit():
        before = current_funding(db(), call)
        revision = before.revision if before else None
        try:
            confirm_funding(db(), actor(), c.id, form.decision.data, form.reason.data,
                            expected_version=form.expected_version())
            proposal = db().get(Proposal, c.proposal_id)
            label = f"{proposal.reference} {proposal.acronym}"
            state = proposal.state
            after = current_funding(db(), call)
            summary = _change_summary(before.scenario, after.scenario) \
                if after is not None and before is not None and after.revision != revision else None
            new_revision = after.revision if after is not None else None
            acronym = c.funder.acronym
            commit()
        except ChangedMeanwhile as err:
            refuse(form, err)
            fresh = db().get(FundingConfirmation, confirmation_id)
            form.version.data = str(fresh.version)
            code = 409
        except DomainError as err:
            refuse(form, err)
        else:
            if form.decision.data == "confirm":
                message = f"{acronym} confirmed the funding of its partners in {label}."
                if state == "funded":
                    message += " Every funder has confirmed: the proposal is funded."
                flash(message, "success")
            else:
                flash(f"{acronym} declined the funding of {label}; the proposal is not funded. The funding list was "
                      f"recomputed (revision {new_revision}). {summary or ''}".strip(), "warning")
            return redirect(url_for(".confirmations_page", call_id=call.id))
    return _confirmations_page(call, {c.id: form}, code)


# ---------------------------------------------------------------------------------------------------------
# Each funder's funding list for national contracting


EXPORT_HEADER = ["Reference", "Acronym", "Title", "Proposal state", "Rank", "Partner", "Partner type", "Country",
                 "PI", "PI e-mail", "Funder", "Requested (EUR)", "Granted (EUR)", "Of which gap pot (EUR)",
                 "Confirmation", "Funding list revision"]


@bp.get("/calls/<int:call_id>/funders/<int:funder_id>/funding-list.<fmt>")
def funding_list_export(call_id: int, funder_id: int, fmt: str):
    call = _call(call_id)
    if fmt not in ("csv", "xlsx"):
        abort(404)
    allow("funding.view", call)
    obj = _for_funder(call, funder_id)
    # The funder's own list: its officers (who confirm its partners) and the secretariat.
    if not (_may("funding.confirm", obj) or _may("call.manage", call)):
        abort(403, description="only the call secretariat and this funder's officers can download its funding list")
    funder = db().get(FundingOrganisation, funder_id)
    if funder is None or not any(cf.funder_id == funder_id for cf in call.funders):
        abort(404)
    current = current_funding(db(), call)
    if current is None:
        flash("The funding list has not been approved yet; there is nothing to export.", "info")
        return redirect(url_for(".scenario", call_id=call.id))
    status = {(c.proposal_id, c.funder_id): c.status for c in confirmations(db(), call, funder_id=funder_id)}
    ranks = {o.proposal_id: o.rank for o in current.scenario.outcomes}
    data = []
    for ln in sorted(funding_lines(db(), call, funder_id=funder_id),
                     key=lambda ln: (ranks.get(ln.proposal_id, 0), ln.partner.position)):
        p, pt = ln.proposal, ln.partner
        data.append([p.reference, p.acronym, p.title, _state(p.state), ranks.get(p.id), pt.organisation,
                     pt.partner_type, pt.country, pt.pi_name, pt.pi_email, funder.acronym, pt.requested_amount,
                     ln.amount, ln.from_gap_pot, CONFIRMATION_LABELS.get(status.get((p.id, funder_id)), ""),
                     current.revision])
    return table_response(fmt, f"{call.code}-funding-list-{funder.acronym}", EXPORT_HEADER, data,
                          sheet=f"Funding {funder.acronym}")
