"""Funding decision operations on the database (workflow.funding_ops; issue 6, DOMAIN §4, rules 19, 21, 22,
24): budget increases, what-if, the steering committee's approval freezing the list, funders confirming
their own partners, a decline recomputing the list and promoting a reserve proposal, and who may do what.

The test call's funders (tests/factories.py): DFG-T €2,000,000 (cap €300,000 per partner), ANR-T
€1,500,000, ISCIII-T €800,000 (cap €400,000 per project), MOH-T, CIHR-T. The five recommended proposals,
in rank order, and the list they give (hand-checked):

    ONE    DFG 300,000  ANR 700,000  ISCIII 300,000  selected   ANR 1,500-700 = 800k, ISCIII 800-300 = 500k
    TWO    DFG 250,000  ANR 600,000  ISCIII 300,000  selected   ANR 800-600 = 200k,   ISCIII 500-300 = 200k
    THREE  DFG 200,000  ANR 400,000                  blocked    ANR short 400-200 = 200,000 (a gap)
    FOUR   DFG 200,000               ISCIII 150,000  selected   ISCIII 200-150 = 50k
    FIVE                ANR 150,000  ISCIII 400,000  reserve    ISCIII short 400-50 = 350,000
"""

from __future__ import annotations

from decimal import Decimal
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select

from tests.factories import funder, make_call, make_user, officer, secretariat
from workflow import audit
from workflow import funding_ops as ops
from workflow.errors import AccessDenied, ChangedMeanwhile, DomainError, InvalidInput
from workflow.funding import BLOCKED, RESERVE, SELECTED
from workflow.funding_models import BudgetIncrease, FundingConfirmation, FundingScenario
from workflow.models import AuditEvent, OutboxMessage, Partner, Proposal
from workflow.operations import transition

# ---------------------------------------------------------------------------------------------------------
# The world


PROPOSALS = (
    ("ONE", {"DFG-T": 300_000, "ANR-T": 700_000, "ISCIII-T": 300_000}),
    ("TWO", {"DFG-T": 250_000, "ANR-T": 600_000, "ISCIII-T": 300_000}),
    ("THREE", {"DFG-T": 200_000, "ANR-T": 400_000}),
    ("FOUR", {"DFG-T": 200_000, "ISCIII-T": 150_000}),
    ("FIVE", {"ANR-T": 150_000, "ISCIII-T": 400_000}),
)
COUNTRY = {"DFG-T": "DE", "ANR-T": "FR", "ISCIII-T": "ES"}


class World:
    def __init__(self, session):
        self.session = session
        self.call = make_call(session)
        self.sec = secretariat(session, self.call)
        self.officers = {a: officer(session, self.call, a) for a in ("DFG-T", "ANR-T", "ISCIII-T", "CIHR-T")}
        self.fid = {a: funder(session, a).id for a in ("DFG-T", "ANR-T", "ISCIII-T", "MOH-T", "CIHR-T")}
        self.coordinator = make_user(session, "Cora Coordinator")
        self.p: dict[str, Proposal] = {}
        for n, (acronym, asks) in enumerate(PROPOSALS, start=1):
            self.p[acronym] = self.recommended(acronym, asks, n)
        # An own-funded partner requests nothing and is no funder's to confirm.
        self.p["ONE"].partners.append(Partner(position=9, organisation="McGill", country="CA", own_funded=True,
                                              pi_name="PI McGill", pi_email="mcgill@example.org", requested_amount=0))
        session.commit()

    def recommended(self, acronym: str, asks: dict[str, int], n: int, state: str = "recommended") -> Proposal:
        """A proposal that got through review, as if it had: partners asking the given funders."""
        p = Proposal(call=self.call, reference=f"TEST-{n:04d}", acronym=acronym, title=acronym,
                     coordinator=self.coordinator, state=state)
        for position, (acr, amount) in enumerate(asks.items(), start=1):
            p.partners.append(Partner(position=position, organisation=f"{acronym} lab {acr}", country=COUNTRY[acr],
                                      funder_id=self.fid[acr], pi_name=f"PI {acronym} {position}",
                                      pi_email=f"{acronym.lower()}.{position}@example.org", requested_amount=amount,
                                      budget={"personnel": amount}))
        self.session.add(p)
        self.session.flush()
        return p

    @property
    def ranking(self) -> list[int]:
        return [self.p[a].id for a, _ in PROPOSALS]

    def states(self) -> dict[str, str]:
        self.session.expire_all()
        return {a: self.session.get(Proposal, p.id).state for a, p in self.p.items()}

    def approve(self, **kw) -> FundingScenario:
        row = ops.approve_funding_list(self.session, self.sec, self.call, self.ranking,
                                       kw.get("note", "CSC meeting of 30 September 2030, item 4"))
        self.session.commit()
        return row

    def confirmation(self, acronym: str, funder_acronym: str) -> FundingConfirmation:
        return self.session.scalar(select(FundingConfirmation).where(
            FundingConfirmation.proposal_id == self.p[acronym].id,
            FundingConfirmation.funder_id == self.fid[funder_acronym]))

    def confirm(self, acronym: str, funder_acronym: str, decision: str = "confirm", reason: str | None = None):
        c = self.confirmation(acronym, funder_acronym)
        out = ops.confirm_funding(self.session, self.officers[funder_acronym], c.id, decision, reason)
        self.session.commit()
        return out


@pytest.fixture
def world(session) -> World:
    return World(session)


def events(session, action: str) -> list[AuditEvent]:
    return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.seq)))


def statuses(scenario) -> dict[str, str]:
    return {o.acronym: o.status for o in scenario.outcomes}


# ---------------------------------------------------------------------------------------------------------
# The scenario, budgets and what-if before the approval


def test_the_scenario_from_the_database_follows_the_ranking_and_the_budgets(world):
    s = ops.compute_scenario(world.session, world.sec, world.call, world.ranking)
    assert statuses(s) == {"ONE": SELECTED, "TWO": SELECTED, "THREE": BLOCKED, "FOUR": SELECTED, "FIVE": RESERVE}
    assert s.outcome(world.p["THREE"].id).reason == "blocked by ANR-T (short €200,000)"
    assert s.outcome(world.p["FIVE"].id).reason == "blocked by ISCIII-T (short €350,000)"
    anr = s.funder(world.fid["ANR-T"])
    assert (anr.committed, anr.allocated, anr.remaining) == (1_500_000, 1_300_000, 200_000)  # 700k + 600k
    # The own-funded partner of ONE requests nothing and appears in no funder's column.
    assert len(s.outcome(world.p["ONE"].id).partners) == 3
    # An officer sees the scenario too; someone without a role in the call does not.
    assert ops.compute_scenario(world.session, world.officers["CIHR-T"], world.call, world.ranking) == s
    with pytest.raises(AccessDenied, match="only the call secretariat and the funders' officers"):
        ops.compute_scenario(world.session, world.coordinator, world.call, world.ranking)


def test_the_ranking_s_recommendations_and_scores_reach_the_allocation(world):
    ids = world.ranking
    ranking = [ops.RankingEntry(ids[0], "recommended", Decimal("14.5")),
               ops.RankingEntry(ids[1], "recommended", Decimal("13")),
               ops.RankingEntry(ids[2], "recommended_if_funds", Decimal("12.5")),
               (ids[3], "recommended_if_funds", 12.5),
               ops.RankingEntry(ids[4], "recommended_if_funds", 11)]
    s = ops.compute_scenario(world.session, world.sec, world.call, ranking)
    three, four = s.outcome(ids[2]), s.outcome(ids[3])
    assert (three.recommendation, three.score) == ("recommended_if_funds", 12.5)
    assert three.tie_group == four.tie_group is not None and s.outcome(ids[0]).tie_group is None
    # THREE alone does not fit ANR-T's 200,000; FOUR does: the tie changes nothing here.
    assert statuses(s) == {"ONE": SELECTED, "TWO": SELECTED, "THREE": BLOCKED, "FOUR": SELECTED, "FIVE": RESERVE}
    assert three.reason.startswith("blocked by ANR-T (short €200,000); tied with FOUR at score 12.5")


def test_an_officer_raises_their_budget_and_the_scenario_changes(world):
    anr = world.fid["ANR-T"]
    row = ops.record_budget_increase(world.session, world.officers["ANR-T"], world.call, anr, 200_000,
                                     "board decision of 20 September")
    world.session.commit()
    assert (row.amount, row.recorded_by_id) == (200_000, world.officers["ANR-T"].id)
    # ANR-T 1,500,000 + 200,000 = 1,700,000: after ONE and TWO, 400,000 left, exactly THREE's request;
    # FIVE then lacks ANR-T's 150,000 as well as ISCIII-T's 350,000.
    s = ops.compute_scenario(world.session, world.sec, world.call, world.ranking)
    assert statuses(s) == {"ONE": SELECTED, "TWO": SELECTED, "THREE": SELECTED, "FOUR": SELECTED, "FIVE": RESERVE}
    assert s.outcome(world.p["FIVE"].id).reason == "blocked by ANR-T (short €150,000) and ISCIII-T (short €350,000)"
    assert (s.funder(anr).increases, s.funder(anr).remaining) == (200_000, 0)
    [event] = events(world.session, "funding.budget_increased")
    assert (event.actor_id, event.before["budget"], event.after["budget"], event.reason) == (
        world.officers["ANR-T"].id, 1_500_000, 1_700_000, "board decision of 20 September")
    # The secretariat may raise any funder's budget; increases add up.
    ops.record_budget_increase(world.session, world.sec, world.call, anr, 50_000)
    assert [b.increases for b in ops.funder_budgets(world.session, world.call) if b.funder_id == anr] == [250_000]


@pytest.mark.parametrize("who, funder_acronym, amount, error, message", [
    ("DFG-T", "ANR-T", 10_000, AccessDenied, "your own organisation only"),
    ("coordinator", "ANR-T", 10_000, AccessDenied, "only the call secretariat or the funder's officers"),
    ("anonymous", "ANR-T", 10_000, AccessDenied, "please log in first"),
    ("ANR-T", "ANR-T", 0, InvalidInput, "more than €0"),
    ("ANR-T", "ANR-T", 12.5, InvalidInput, "whole euros"),
    ("secretariat", "unknown", 10_000, InvalidInput, "does not take part in the call"),
])
def test_budget_increases_that_are_refused(world, who, funder_acronym, amount, error, message):
    actor = {"coordinator": world.coordinator, "anonymous": None, "secretariat": world.sec}.get(who) \
        or world.officers.get(who)
    fid = world.fid.get(funder_acronym, 99_999)
    with pytest.raises(error, match=message):
        ops.record_budget_increase(world.session, actor, world.call, fid, amount)
    assert world.session.scalar(select(func.count()).select_from(BudgetIncrease)) == 0


def test_what_if_shows_the_change_without_saving_anything(world):
    before = world.session.scalar(select(func.count()).select_from(AuditEvent))
    result = ops.what_if(world.session, world.sec, world.call, world.ranking, {world.fid["ANR-T"]: 200_000})
    assert [(c.acronym, c.before, c.after) for c in result.changes] == [("THREE", BLOCKED, SELECTED)]
    assert result.scenario.funder(world.fid["ANR-T"]).what_if == 200_000
    assert world.session.scalar(select(func.count()).select_from(AuditEvent)) == before
    assert world.session.scalar(select(func.count()).select_from(BudgetIncrease)) == 0
    assert statuses(ops.compute_scenario(world.session, world.sec, world.call, world.ranking))["THREE"] == BLOCKED
    with pytest.raises(AccessDenied, match="only the call secretariat can try budget increases"):
        ops.what_if(world.session, world.officers["ANR-T"], world.call, world.ranking, {world.fid["ANR-T"]: 1})


def test_not_recommended_proposals_and_incomplete_rankings_are_refused(world):
    flop = world.recommended("FLOP", {"ANR-T": 10_000}, 9, state="not_recommended")
    with pytest.raises(InvalidInput, match=r"TEST-0009 FLOP was not recommended .* \(rule 19\)"):
        ops.compute_scenario(world.session, world.sec, world.call, [*world.ranking, flop.id])
    with pytest.raises(InvalidInput, match="rule 19"):
        ops.compute_scenario(world.session, world.sec, world.call,
                             [ops.RankingEntry(world.p["ONE"].id, "not_recommended")])
    with pytest.raises(InvalidInput, match="leaves out TEST-0005 FIVE, which the panel recommended"):
        ops.approve_funding_list(world.session, world.sec, world.call, world.ranking[:4], "CSC")
    with pytest.raises(InvalidInput, match="say where the steering committee approved"):
        ops.approve_funding_list(world.session, world.sec, world.call, world.ranking, "  ")
    assert world.states()["ONE"] == "recommended"


# ---------------------------------------------------------------------------------------------------------
# Approval


def test_approval_freezes_the_list_moves_the_proposals_and_asks_the_funders(world):
    row = world.approve()

    assert world.states() == {"ONE": "selected", "TWO": "selected", "THREE": "reserve", "FOUR": "selected",
                              "FIVE": "reserve"}
    assert (row.revision, row.status, row.cause, row.approved_by_id) == (1, "current", "approval", world.sec.id)
    assert ops.current_funding(world.session, world.call).id == row.id
    assert statuses(row.scenario)["THREE"] == BLOCKED and row.scenario.gaps[0].reference == "TEST-0003"
    # One line per funded partner of the selected proposals, with the amounts of the database.
    lines = ops.funding_lines(world.session, world.call)
    assert sorted((ln.proposal.acronym, ln.funder.acronym, ln.amount) for ln in lines) == sorted([
        ("ONE", "DFG-T", 300_000), ("ONE", "ANR-T", 700_000), ("ONE", "ISCIII-T", 300_000),
        ("TWO", "DFG-T", 250_000), ("TWO", "ANR-T", 600_000), ("TWO", "ISCIII-T", 300_000),
        ("FOUR", "DFG-T", 200_000), ("FOUR", "ISCIII-T", 150_000)])
    # Rule 22 on what was stored: per funder, lines <= committed.
    per_funder = {}
    for ln in lines:
        per_funder[ln.funder.acronym] = per_funder.get(ln.funder.acronym, 0) + ln.from_budget
    assert per_funder == {"DFG-T": 750_000, "ANR-T": 1_300_000, "ISCIII-T": 750_000}
    # Every funder of every selected proposal is asked to confirm: 3 + 3 + 2.
    pending = ops.confirmations(world.session, world.call, status="pending")
    assert sorted((c.proposal.acronym, c.funder.acronym, c.amount) for c in pending) == sorted([
        ("ONE", "DFG-T", 300_000), ("ONE", "ANR-T", 700_000), ("ONE", "ISCIII-T", 300_000),
        ("TWO", "DFG-T", 250_000), ("TWO", "ANR-T", 600_000), ("TWO", "ISCIII-T", 300_000),
        ("FOUR", "DFG-T", 200_000), ("FOUR", "ISCIII-T", 150_000)])
    # Audited: the approval with its note, and every transition.
    [approved] = events(world.session, "funding.approved")
    assert approved.reason == "CSC meeting of 30 September 2030, item 4"
    assert approved.after["selected"] == ["TEST-0001", "TEST-0002", "TEST-0004"]
    assert approved.after["gaps"] == [{"reference": "TEST-0003", "rank": 3,
                                       "reason": "blocked by ANR-T (short €200,000)"}]
    assert len(events(world.session, "proposal.select")) == 3
    reserve = events(world.session, "proposal.place_in_reserve")
    assert [e.reason for e in reserve] == [
        "reserve list position 1 (rank 3): blocked by ANR-T (short €200,000)",
        "reserve list position 2 (rank 5): blocked by ISCIII-T (short €350,000)"]
    # Each officer whose funder must confirm gets one message; CIHR-T's officer none.
    mail = {m.to_address: m for m in world.session.scalars(
        select(OutboxMessage).where(OutboxMessage.kind == "funding_confirmation_request"))}
    assert set(mail) == {world.officers[a].email for a in ("DFG-T", "ANR-T", "ISCIII-T")}
    assert "TEST-0004 FOUR (rank 4): €150,000 from ISCIII-T" in mail[world.officers["ISCIII-T"].email].body_text
    assert audit.verify(world.session).ok


def test_after_the_approval_budgets_and_the_list_are_frozen(world):
    world.approve()
    with pytest.raises(DomainError, match="budgets and the list are frozen"):
        ops.record_budget_increase(world.session, world.officers["ANR-T"], world.call, world.fid["ANR-T"], 1_000)
    with pytest.raises(DomainError, match="frozen"):
        ops.approve_funding_list(world.session, world.sec, world.call, world.ranking, "again")
    with pytest.raises(DomainError, match="frozen"):
        ops.what_if(world.session, world.sec, world.call, world.ranking, {world.fid["ANR-T"]: 1_000})
    assert len(ops.funding_revisions(world.session, world.call)) == 1


def test_only_the_secretariat_records_the_approval(world):
    with pytest.raises(AccessDenied, match="only the call secretariat can record the steering committee's approval"):
        ops.approve_funding_list(world.session, world.officers["ANR-T"], world.call, world.ranking, "CSC")
    assert world.states()["ONE"] == "recommended"


def test_the_gap_pot_of_the_call_is_used_and_stored_per_partner(world, monkeypatch):
    monkeypatch.setattr(ops, "gap_pot_of", lambda call: 200_000)
    row = world.approve()
    # THREE: ANR-T short 200,000 = the gap pot's 200,000, so it is selected; FIVE still lacks ISCIII-T's
    # 350,000 and now ANR-T's 150,000 too, with the pot spent.
    assert world.states()["THREE"] == "selected"
    three = row.scenario.outcome(world.p["THREE"].id)
    assert three.from_gap_pot == {world.fid["ANR-T"]: 200_000}
    [anr_line] = ops.funding_lines(world.session, world.call, proposal_id=world.p["THREE"].id,
                                   funder_id=world.fid["ANR-T"])
    assert (anr_line.amount, anr_line.from_gap_pot, anr_line.from_budget) == (400_000, 200_000, 200_000)
    assert (row.scenario.gap_pot.used, row.scenario.gap_pot.remaining) == (200_000, 0)


def test_the_gap_pot_setting_is_read_from_the_call_definition():
    assert ops.gap_pot_of(SimpleNamespace(settings=SimpleNamespace())) == 0
    assert ops.gap_pot_of(SimpleNamespace(settings=SimpleNamespace(gap_pot=750_000))) == 750_000
    with pytest.raises(InvalidInput, match="gap_pot"):
        ops.gap_pot_of(SimpleNamespace(settings=SimpleNamespace(gap_pot=-1)))


# ---------------------------------------------------------------------------------------------------------
# Confirmations


def test_when_every_funder_confirms_the_proposal_is_funded(world):
    world.approve()
    world.confirm("ONE", "DFG-T")
    world.confirm("ONE", "ISCIII-T", reason="national committee, 2 October")
    assert world.states()["ONE"] == "selected"  # ANR-T has not confirmed yet
    world.confirm("ONE", "ANR-T")
    assert world.states()["ONE"] == "funded"
    [funded] = events(world.session, "proposal.fund")
    # The transition is the last confirming officer's doing, and the audit says so.
    assert funded.actor_id == world.officers["ANR-T"].id
    assert world.officers["ANR-T"].email in funded.actor_label
    assert funded.reason == "every funder confirmed: ANR-T, DFG-T, ISCIII-T"
    confirmed = events(world.session, "funding.confirmed")
    assert [(e.actor_id, e.after["funder"], e.after["amount"]) for e in confirmed] == [
        (world.officers["DFG-T"].id, "DFG-T", 300_000), (world.officers["ISCIII-T"].id, "ISCIII-T", 300_000),
        (world.officers["ANR-T"].id, "ANR-T", 700_000)]
    assert world.confirmation("ONE", "ISCIII-T").reason == "national committee, 2 October"
    assert audit.verify(world.session).ok


def test_a_decline_recomputes_the_list_and_promotes_a_reserve_proposal(world):
    world.approve()
    world.confirm("TWO", "DFG-T")
    with pytest.raises(InvalidInput, match="give the reason"):
        world.confirm("TWO", "ANR-T", "decline")
    world.session.rollback()

    world.confirm("TWO", "ANR-T", "decline", "the French partner lost its accreditation")

    # TWO frees ANR-T 600,000 and ISCIII-T 300,000. ONE and FOUR keep theirs: ANR-T 1,500-700 = 800,000,
    # ISCIII-T 800-300-150 = 350,000 left. THREE (ANR-T 400,000) now fits: selected. FIVE still lacks
    # ISCIII-T 400,000 - 350,000 = 50,000: stays in reserve.
    assert world.states() == {"ONE": "selected", "TWO": "not_funded", "THREE": "selected", "FOUR": "selected",
                              "FIVE": "reserve"}
    revisions = ops.funding_revisions(world.session, world.call)
    assert [(r.revision, r.status, r.cause) for r in revisions] == [
        (1, "superseded", "approval"), (2, "current", "decline")]
    current = revisions[1].scenario
    assert world.p["TWO"].id not in current
    assert current.outcome(world.p["FIVE"].id).reason == "blocked by ISCIII-T (short €50,000)"
    assert current.outcome(world.p["ONE"].id).kept and not current.outcome(world.p["THREE"].id).kept
    assert revisions[1].note == ("ANR-T declined TEST-0002 TWO: the French partner lost its accreditation")
    # TWO's other funders need not answer any more; THREE's funders are asked now.
    assert {(c.funder.acronym, c.status) for c in ops.confirmations(world.session, world.call,
                                                                     proposal_id=world.p["TWO"].id)} == {
        ("DFG-T", "confirmed"), ("ANR-T", "declined"), ("ISCIII-T", "cancelled")}
    assert {(c.funder.acronym, c.status, c.amount) for c in ops.confirmations(
        world.session, world.call, proposal_id=world.p["THREE"].id)} == {
        ("DFG-T", "pending", 200_000), ("ANR-T", "pending", 400_000)}
    lines = ops.funding_lines(world.session, world.call)
    assert {ln.proposal.acronym for ln in lines} == {"ONE", "THREE", "FOUR"}
    # Audited: the decline, the cancellation, not_fund, the recomputation and the promotion.
    [declined] = events(world.session, "funding.declined")
    assert (declined.actor_id, declined.reason) == (world.officers["ANR-T"].id,
                                                    "the French partner lost its accreditation")
    assert len(events(world.session, "funding.confirmation_cancelled")) == 1
    [not_fund] = events(world.session, "proposal.not_fund")
    assert not_fund.reason == "ANR-T declined: the French partner lost its accreditation"
    [recomputed] = events(world.session, "funding.recomputed")
    assert recomputed.after["changes"] == [{"reference": "TEST-0003", "before": BLOCKED, "after": SELECTED},
                                           {"reference": "TEST-0002", "before": SELECTED, "after": None}]
    promoted = [e for e in events(world.session, "proposal.select") if e.object_id == world.p["THREE"].id]
    assert [(e.before, e.after, e.actor_id) for e in promoted] == [
        ({"state": "reserve"}, {"state": "selected"}, world.officers["ANR-T"].id)]
    # ANR-T's and DFG-T's officers are asked about THREE.
    asked = world.session.scalars(select(OutboxMessage).where(
        OutboxMessage.dedup_key.like(f"funding-confirm:{revisions[1].id}:%"))).all()
    assert {m.to_address for m in asked} == {world.officers["ANR-T"].email, world.officers["DFG-T"].email}
    assert audit.verify(world.session).ok

    # The promoted proposal is funded once its funders confirm.
    world.confirm("THREE", "DFG-T")
    world.confirm("THREE", "ANR-T")
    assert world.states()["THREE"] == "funded"


def test_officers_confirm_only_their_own_funders_partners(world):
    world.approve()
    anr_on_one = world.confirmation("ONE", "ANR-T")
    with pytest.raises(AccessDenied, match="this funding is for another organisation to confirm"):
        ops.confirm_funding(world.session, world.officers["DFG-T"], anr_on_one.id, "confirm")
    with pytest.raises(AccessDenied, match="another organisation"):
        ops.confirm_funding(world.session, world.officers["CIHR-T"], anr_on_one.id, "decline", "no")
    with pytest.raises(AccessDenied, match="only the funder's officers can confirm"):
        ops.confirm_funding(world.session, world.sec, anr_on_one.id, "confirm")
    with pytest.raises(AccessDenied, match="please log in first"):
        ops.confirm_funding(world.session, None, anr_on_one.id, "confirm")
    world.session.rollback()
    assert world.confirmation("ONE", "ANR-T").status == "pending"
    assert world.states()["ONE"] == "selected"


def test_a_confirmation_is_given_once_and_against_the_version_seen(world):
    world.approve()
    c = world.confirmation("FOUR", "DFG-T")
    seen = c.version
    world.confirm("FOUR", "DFG-T")
    with pytest.raises(DomainError, match="DFG-T already confirmed this funding on"):
        ops.confirm_funding(world.session, world.officers["DFG-T"], c.id, "decline", "changed our mind")
    world.session.rollback()
    other = world.confirmation("FOUR", "ISCIII-T")
    with pytest.raises(ChangedMeanwhile):
        ops.confirm_funding(world.session, world.officers["ISCIII-T"], other.id, "confirm",
                            expected_version=other.version + 1)
    world.session.rollback()
    with pytest.raises(InvalidInput, match="choose confirm or decline"):
        ops.confirm_funding(world.session, world.officers["ISCIII-T"], other.id, "maybe")
    assert seen == 1


def test_the_secretariat_recomputes_after_a_selected_consortium_withdraws(world):
    world.approve()
    transition(world.session, world.coordinator, world.p["FOUR"].id, "withdraw", reason="PI moved abroad")
    world.session.commit()
    row = ops.recompute_funding(world.session, world.sec, world.call, "FOUR withdrew on 3 October")
    world.session.commit()
    # FOUR frees ISCIII-T 150,000: 50,000 + 150,000 = 200,000 left, still short of FIVE's 400,000 by
    # 200,000; THREE still lacks ANR-T's 200,000. Nothing is promoted; FOUR's funders need not answer.
    assert statuses(row.scenario) == {"ONE": SELECTED, "TWO": SELECTED, "THREE": RESERVE, "FIVE": RESERVE}
    assert row.scenario.outcome(world.p["FIVE"].id).reason == "blocked by ISCIII-T (short €200,000)"
    assert {c.status for c in ops.confirmations(world.session, world.call, proposal_id=world.p["FOUR"].id)} == {
        "cancelled"}
    with pytest.raises(AccessDenied, match="only the call secretariat can recompute"):
        ops.recompute_funding(world.session, world.officers["ANR-T"], world.call, "why not")


def test_the_approval_freezes_only_the_list_the_committee_was_shown(world):
    shown = ops.list_fingerprint(ops.compute_scenario(world.session, world.sec, world.call, world.ranking))
    # A budget increase lands after the page was shown: the list now comes out differently.
    ops.record_budget_increase(world.session, world.officers["ANR-T"], world.call, world.fid["ANR-T"], 500_000)
    world.session.commit()
    with pytest.raises(ChangedMeanwhile):
        ops.approve_funding_list(world.session, world.sec, world.call, world.ranking, "CSC of 3 July",
                                 expected_fingerprint=shown)
    world.session.rollback()
    assert ops.current_funding(world.session, world.call) is None and world.states()["ONE"] == "recommended"
    now_shown = ops.list_fingerprint(ops.compute_scenario(world.session, world.sec, world.call, world.ranking))
    row = ops.approve_funding_list(world.session, world.sec, world.call, world.ranking, "CSC of 3 July",
                                   expected_fingerprint=now_shown)
    assert row.revision == 1
