"""Conflicts of interest: declared by the reviewer, detected by rules, overridden by the secretariat.

Detection is a pure function of the reviewer's profile and the proposal's partners, each rule with its
reason in words:

- same_organisation: the reviewer's organisation is a partner's (case- and space-insensitive);
- same_email_domain: the reviewer's e-mail domain is a partner PI's (public mail providers do not count);
- is_applicant: the reviewer is a PI, the coordinator or a co-applicant of the proposal;
- same_country: the reviewer's country is a partner's, when the call's evaluation.conflict_same_country says so.

Detection runs live (a partner added today is a conflict today); `detect_conflicts` also stores what it
finds, so the secretariat has rows to list and override. A conflict is active unless the secretariat
overrode it with a recorded justification; a detected row whose rule no longer applies is not active.
An actively conflicted reviewer cannot be assigned and cannot open the proposal, its reviews or its
discussion (reviews.plugin tells workflow.access so).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session, lazyload
from sqlalchemy.orm.attributes import set_committed_value

from reviews.common import email_domain, evaluation_setting, reviewer_ids, secretariat_users
from reviews.models import Conflict, Review, ReviewAssignment, ReviewerProfile
from reviews.policy import require
from reviews.text import fold
from workflow import audit, outbox
from workflow.accounts import normalise_email
from workflow.clock import utcnow
from workflow.countries import country_name
from workflow.errors import DomainError, InvalidInput
from workflow.models import Call, Partner, Proposal, ProposalMember, User
from workflow.paging import Window

RULES = ("declared", "same_organisation", "same_email_domain", "is_applicant", "same_country")
RULE_LABELS = {
    "declared": "declared by the reviewer",
    "same_organisation": "same organisation as a partner",
    "same_email_domain": "same e-mail domain as a partner PI",
    "is_applicant": "applicant in the proposal",
    "same_country": "same country as a partner",
}
# Addresses at these providers say nothing about the person's institution.
PUBLIC_MAIL_DOMAINS = frozenset("""
gmail.com googlemail.com outlook.com hotmail.com hotmail.fr hotmail.de live.com msn.com yahoo.com yahoo.fr
yahoo.de yahoo.es yahoo.it icloud.com me.com mac.com aol.com gmx.de gmx.net gmx.at gmx.ch web.de t-online.de
proton.me protonmail.com mail.com orange.fr free.fr laposte.net wanadoo.fr sfr.fr libero.it virgilio.it
tiscali.it yandex.ru mail.ru qq.com 163.com 126.com seznam.cz wp.pl o2.pl interia.pl telenet.be skynet.be
""".split())
# States in which a proposal is being reviewed: reviewers may declare conflicts with these.
LIVE_STATES = ("pre_review", "under_review", "rebuttal", "panel")
REASON_MAX = 2000


# ---------------------------------------------------------------------------------------------------------
# Pure detection


@dataclass(frozen=True)
class ReviewerInfo:
    user_id: int
    email: str
    organisation: str | None
    country: str | None
    email_domain: str | None


@dataclass(frozen=True)
class PartnerInfo:
    organisation: str
    country: str
    pi_email: str


@dataclass(frozen=True)
class ProposalInfo:
    id: int
    partners: tuple[PartnerInfo, ...]
    applicant_ids: frozenset[int]  # coordinator and co-applicants (user ids)
    coordinator_id: int | None = None


@dataclass(frozen=True)
class Detected:
    rule: str
    reason: str


def _domains_match(a: str, b: str) -> bool:
    return a == b or a.endswith("." + b) or b.endswith("." + a)


def _names(orgs: Iterable[str]) -> str:
    return ", ".join(dict.fromkeys(orgs))


def detect(reviewer: ReviewerInfo, proposal: ProposalInfo, *, same_country: bool) -> list[Detected]:
    """The conflicts the rules find between a reviewer and a proposal, each with its reason in words."""
    found: list[Detected] = []
    org = fold(reviewer.organisation)
    if org:
        hits = [p.organisation for p in proposal.partners if fold(p.organisation) == org]
        if hits:
            found.append(Detected("same_organisation", f"works at {_names(hits)}, a partner of this proposal"))
    domain = (reviewer.email_domain or email_domain(reviewer.email) or "").lower()
    if domain and domain not in PUBLIC_MAIL_DOMAINS:
        hits = [p.organisation for p in proposal.partners
                if (d := email_domain(p.pi_email)) and d not in PUBLIC_MAIL_DOMAINS and _domains_match(domain, d)]
        if hits:
            found.append(Detected("same_email_domain",
                                  f"has an e-mail address at {domain}, like the PI of {_names(hits)}"))
    me = normalise_email(reviewer.email)
    pi_of = [p.organisation for p in proposal.partners if me and normalise_email(p.pi_email) == me]
    if pi_of:
        found.append(Detected("is_applicant", f"is the PI of {_names(pi_of)} in this proposal"))
    elif reviewer.user_id == proposal.coordinator_id:
        found.append(Detected("is_applicant", "is the coordinator of this proposal"))
    elif reviewer.user_id in proposal.applicant_ids:
        found.append(Detected("is_applicant", "is a co-applicant of this proposal"))
    if same_country and reviewer.country:
        hits = [p.organisation for p in proposal.partners if p.country == reviewer.country]
        if hits:
            found.append(Detected("same_country", f"is from {country_name(reviewer.country)}, like the partner "
                                                  f"{_names(hits)}"))
    return found


def reviewer_info(user: User, profile: ReviewerProfile | None) -> ReviewerInfo:
    if profile is None:
        return ReviewerInfo(user.id, user.email, user.organisation, user.country, email_domain(user.email))
    return ReviewerInfo(user.id, user.email, profile.organisation, profile.country,
                        profile.email_domain or email_domain(user.email))


def proposal_info(proposal: Proposal) -> ProposalInfo:
    return ProposalInfo(
        proposal.id,
        tuple(PartnerInfo(p.organisation, p.country, p.pi_email) for p in proposal.partners),
        frozenset({proposal.coordinator_id, *(m.user_id for m in proposal.members)}),
        proposal.coordinator_id,
    )


def same_country_rule(call: Call) -> bool:
    return bool(evaluation_setting(call, "conflict_same_country", False))


# ---------------------------------------------------------------------------------------------------------
# Stored and live conflicts together


@dataclass(frozen=True)
class ConflictView:
    reviewer_id: int
    proposal_id: int
    rule: str
    source: str  # "declared" | "detected"
    reason: str
    overridden: bool
    override_justification: str | None = None
    overridden_by_id: int | None = None
    overridden_at: dt.datetime | None = None
    conflict_id: int | None = None  # None: detected now, not stored yet
    still_applies: bool = True

    @property
    def active(self) -> bool:
        return self.still_applies and not self.overridden

    @property
    def label(self) -> str:
        return RULE_LABELS.get(self.rule, self.rule)


def _merge(reviewer_id: int, proposal_id: int, stored: list[Conflict], detected: list[Detected]) -> list[ConflictView]:
    by_rule = {c.rule: c for c in stored}
    views = []
    for c in stored:
        if c.source == "declared":
            views.append(_view(c, still=True))
    live = {d.rule: d for d in detected}
    for rule, d in live.items():
        row = by_rule.get(rule)
        if row is not None and row.source == "detected":
            views.append(_view(row, still=True, reason=d.reason))
        else:
            views.append(ConflictView(reviewer_id, proposal_id, rule, "detected", d.reason, False))
    for c in stored:
        if c.source == "detected" and c.rule not in live:
            views.append(_view(c, still=False))
    return views


def _view(c: Conflict, *, still: bool, reason: str | None = None) -> ConflictView:
    return ConflictView(c.reviewer_id, c.proposal_id, c.rule, c.source, reason or c.reason,
                        c.overridden_at is not None, c.override_justification, c.overridden_by_id,
                        c.overridden_at, c.id, still)


def _profiles(session: Session, call_id: int, user_ids: Iterable[int]) -> dict[int, ReviewerProfile]:
    ids = list(user_ids)
    if not ids:
        return {}
    return {p.user_id: p for p in session.scalars(select(ReviewerProfile).where(
        ReviewerProfile.call_id == call_id, ReviewerProfile.user_id.in_(ids)))}


def pair_conflicts(session: Session, reviewer: User, proposal: Proposal) -> list[ConflictView]:
    """Every conflict between this reviewer and this proposal, active or not."""
    stored = list(session.scalars(select(Conflict).where(
        Conflict.reviewer_id == reviewer.id, Conflict.proposal_id == proposal.id)))
    profile = _profiles(session, proposal.call_id, [reviewer.id]).get(reviewer.id)
    detected = detect(reviewer_info(reviewer, profile), proposal_info(proposal),
                      same_country=same_country_rule(proposal.call))
    return _merge(reviewer.id, proposal.id, stored, detected)


def is_conflicted(session: Session, reviewer: User, proposal: Proposal) -> bool:
    return any(v.active for v in pair_conflicts(session, reviewer, proposal))


def conflicts_among(call: Call, proposals: list[ProposalInfo], stored: dict[tuple[int, int], list],
                    reviewers: list[User], profiles: dict, *, active_only: bool = True
                    ) -> dict[tuple[int, int], list[ConflictView]]:
    """{(proposal id, reviewer id): conflicts} without running the rules on every pair (2,000 x 600 at
    call scale): a pair that shares nothing a rule of `detect` looks at (organisation, e-mail domain or a
    parent of it, e-mail, membership, country when that rule is on) and has no stored conflict cannot be in
    conflict, so `detect` and `_merge` run only on the pairs that do. A new rule in `detect` must add what it
    looks at to this index (tests/unit/test_assignment_at_scale.py compares it with every pair checked)."""
    infos = {r.id: reviewer_info(r, profiles.get(r.id)) for r in reviewers}
    same_country = same_country_rule(call)
    by_org, by_domain, by_subdomain, by_email, by_country = (defaultdict(set) for _ in range(5))
    for rid, info in infos.items():
        if org := fold(info.organisation):
            by_org[org].add(rid)
        domain = (info.email_domain or email_domain(info.email) or "").lower()
        if domain and domain not in PUBLIC_MAIL_DOMAINS:
            by_domain[domain].add(rid)
            for parent in _parent_domains(domain):
                by_subdomain[parent].add(rid)
        if email := normalise_email(info.email):
            by_email[email].add(rid)
        if same_country and info.country:
            by_country[info.country].add(rid)
    stored_reviewers: dict[int, set[int]] = defaultdict(set)
    for pid, rid in stored:
        if rid in infos:
            stored_reviewers[pid].add(rid)
    out: dict[tuple[int, int], list[ConflictView]] = {}
    for pinfo in proposals:
        candidates = {rid for rid in pinfo.applicant_ids if rid in infos} | stored_reviewers.get(pinfo.id, set())
        for partner in pinfo.partners:
            candidates |= by_org.get(fold(partner.organisation), set())
            domain = email_domain(partner.pi_email)
            if domain and domain not in PUBLIC_MAIL_DOMAINS:
                for d in (domain, *_parent_domains(domain)):
                    candidates |= by_domain.get(d, set())
                candidates |= by_subdomain.get(domain, set())
            candidates |= by_email.get(normalise_email(partner.pi_email), set())
            if same_country:
                candidates |= by_country.get(partner.country, set())
        for rid in candidates:
            views = _merge(rid, pinfo.id, stored.get((pinfo.id, rid), []),
                           detect(infos[rid], pinfo, same_country=same_country))
            if active_only:
                views = [v for v in views if v.active]
            if views:
                out[(pinfo.id, rid)] = views
    return out


def _parent_domains(domain: str) -> list[str]:
    """'med.uni.example.org' -> ['uni.example.org', 'example.org', 'org']."""
    return [domain[i + 1:] for i, ch in enumerate(domain) if ch == "."]


def conflicts_by_pair(session: Session, call: Call, proposals: list[Proposal], reviewers: list[User],
                      *, active_only: bool = True) -> dict[tuple[int, int], list[ConflictView]]:
    """{(proposal id, reviewer id): conflicts} for many pairs at once (assignment, listings)."""
    pids = [p.id for p in proposals]
    stored: dict[tuple[int, int], list[Conflict]] = defaultdict(list)
    if pids:
        for c in session.scalars(select(Conflict).where(Conflict.call_id == call.id, Conflict.proposal_id.in_(pids))):
            stored[(c.proposal_id, c.reviewer_id)].append(c)
    profiles = _profiles(session, call.id, [r.id for r in reviewers])
    return conflicts_among(call, [proposal_info(p) for p in proposals], stored, reviewers, profiles,
                           active_only=active_only)


def with_people(session: Session, proposals: list[Proposal], ids=None) -> list[Proposal]:
    """Load the partners and members of these proposals (what detection reads), each kind in one
    statement: `ids` is a SELECT of their ids for a long list (selectinload would send one statement per
    500 proposals), else their ids are listed."""
    if not proposals:
        return proposals
    ids = [p.id for p in proposals] if ids is None else ids
    partners: dict[int, list[Partner]] = defaultdict(list)
    members: dict[int, list[ProposalMember]] = defaultdict(list)
    for partner in session.scalars(select(Partner).where(Partner.proposal_id.in_(ids))
                                   .order_by(Partner.proposal_id, Partner.position)):
        partners[partner.proposal_id].append(partner)
    for member in session.scalars(select(ProposalMember).where(ProposalMember.proposal_id.in_(ids))
                                  .order_by(ProposalMember.id)):
        members[member.proposal_id].append(member)
    for p in proposals:
        set_committed_value(p, "partners", partners.get(p.id, []))
        set_committed_value(p, "members", members.get(p.id, []))
    return proposals


def _live(call: Call) -> tuple:
    return Proposal.call_id == call.id, Proposal.state.in_(LIVE_STATES)


def live_proposals(session: Session, call: Call) -> list[Proposal]:
    proposals = list(session.scalars(select(Proposal).where(*_live(call)).order_by(Proposal.id)))
    return with_people(session, proposals, select(Proposal.id).where(*_live(call)))


def live_count(session: Session, call: Call) -> int:
    return session.scalar(select(func.count(Proposal.id)).where(*_live(call)))


def call_reviewers(session: Session, call: Call) -> list[User]:
    ids = reviewer_ids(session, call)
    # Their role grants are not needed here: selectin-loading them would cost a statement per 500 reviewers.
    return list(session.scalars(select(User).where(User.id.in_(ids)).options(lazyload(User.grants))
                                .order_by(User.id))) if ids else []


def conflicted_proposals(session: Session, reviewer: User, call: Call, proposals: list[Proposal]) -> set[int]:
    """The ids of those proposals of the call this reviewer is actively conflicted with (`is_conflicted`
    for many proposals at once, in a fixed number of statements)."""
    with_people(session, proposals)
    return {pid for pid, _rid in conflicts_by_pair(session, call, proposals, [reviewer])}


# ---------------------------------------------------------------------------------------------------------
# Operations


def declare_conflict(session: Session, actor, proposal: Proposal, *, reason: str) -> Conflict:
    """The reviewer declares a conflict with a proposal. If they were assigned to it, the assignment and
    their review are withdrawn (the audit keeps what they wrote) and the secretariat is told."""
    from reviews.pool import declaration_accepted

    require(actor, "conflict.declare", proposal)
    if not declaration_accepted(session, actor, proposal.call_id):
        raise DomainError("accept the confidentiality and no-conflict declaration first")
    if proposal.state not in LIVE_STATES:
        raise DomainError("this proposal is not under review")
    reason = " ".join((reason or "").split())
    if not reason:
        raise InvalidInput("say in a few words what the conflict is", "reason")
    if len(reason) > REASON_MAX:
        raise InvalidInput(f"the reason is too long (at most {REASON_MAX:,} characters)", "reason")
    row = session.scalar(select(Conflict).where(
        Conflict.reviewer_id == actor.id, Conflict.proposal_id == proposal.id, Conflict.rule == "declared"))
    before = None
    if row is None:
        row = Conflict(call_id=proposal.call_id, reviewer_id=actor.id, proposal_id=proposal.id,
                       source="declared", rule="declared", reason=reason, created_by_id=actor.id,
                       created_at=utcnow())
        session.add(row)
    else:
        before = {"reason": row.reason, "overridden_at": row.overridden_at and row.overridden_at.isoformat()}
        row.reason, row.created_at = reason, utcnow()
        row.overridden_at = row.overridden_by_id = row.override_justification = None
    session.flush()
    audit.record(session, actor, "conflict.declared", row, call_id=proposal.call_id, before=before,
                 after={"proposal_id": proposal.id, "reason": reason})
    withdrawn = _withdraw_assignments(session, actor, proposal, actor)
    if withdrawn:
        call = proposal.call
        for sec in secretariat_users(session, call):
            outbox.enqueue(
                session, kind="reviewer_conflict", to=sec.email, call_id=call.id,
                dedup_key=f"reviewer_conflict:{row.id}:{row.created_at.isoformat()}:{sec.id}",
                subject=f"[{call.title}] {proposal.acronym}: a reviewer withdrew (conflict of interest)",
                body=(f"Dear {sec.name},\n\n{actor.name} declared a conflict of interest with the proposal "
                      f"{proposal.reference} \"{proposal.acronym}\" and was withdrawn from its review.\n"
                      "Please assign another reviewer.\n"),
            )
    return row


def _withdraw_assignments(session: Session, actor, proposal: Proposal, reviewer: User) -> int:
    assignments = list(session.scalars(select(ReviewAssignment).where(
        ReviewAssignment.proposal_id == proposal.id, ReviewAssignment.reviewer_id == reviewer.id)))
    for a in assignments:
        review = session.scalar(select(Review).where(Review.assignment_id == a.id))
        before = {"reviewer_id": reviewer.id, "proposal_id": proposal.id, "stage": a.stage, "source": a.source}
        if review is not None:
            before["review"] = {"status": review.status, "scores": review.scores, "comments": review.comments,
                                "recommendation": review.recommendation}
            session.delete(review)
        session.delete(a)
        audit.record(session, actor, "review.assignment_withdrawn", object_type="reviewassignment",
                     object_id=a.id, call_id=proposal.call_id, before=before,
                     reason="the reviewer declared a conflict of interest")
    session.flush()
    return len(assignments)


@dataclass(frozen=True)
class DetectionSummary:
    added: int
    removed: int
    active: int


def detect_conflicts(session: Session, actor, call: Call) -> DetectionSummary:
    """Store what the rules find now for the call's reviewers and live proposals; drop stored detections
    that no longer apply (unless the secretariat overrode them: the override stays on record)."""
    require(actor, "review.assign", call)
    proposals, reviewers = live_proposals(session, call), call_reviewers(session, call)
    views = conflicts_by_pair(session, call, proposals, reviewers, active_only=False)
    added, removed, now = [], [], utcnow()
    for (pid, rid), pair in views.items():
        for v in pair:
            if v.source != "detected":
                continue
            if v.conflict_id is None:
                session.add(Conflict(call_id=call.id, reviewer_id=rid, proposal_id=pid, source="detected",
                                     rule=v.rule, reason=v.reason, created_at=now, created_by_id=actor.id))
                added.append({"proposal_id": pid, "reviewer_id": rid, "rule": v.rule, "reason": v.reason})
            elif not v.still_applies and not v.overridden:
                session.delete(session.get(Conflict, v.conflict_id))
                removed.append({"proposal_id": pid, "reviewer_id": rid, "rule": v.rule})
    session.flush()
    active = sum(1 for pair in views.values() if any(v.active for v in pair))
    if added or removed:
        audit.record(session, actor, "conflict.detected", call, call_id=call.id,
                     after={"added": added, "removed": removed})
    return DetectionSummary(len(added), len(removed), active)


def override_conflict(session: Session, actor, reviewer: User, proposal: Proposal, *,
                      justification: str) -> list[Conflict]:
    """The secretariat lets this reviewer review this proposal despite its current conflicts, with a
    recorded justification. A conflict that arises later (e.g. a partner added) is not covered."""
    require(actor, "conflict.override", proposal)
    justification = " ".join((justification or "").split())
    if not justification:
        raise InvalidInput("give the justification for overriding the conflict", "justification")
    if len(justification) > REASON_MAX:
        raise InvalidInput(f"the justification is too long (at most {REASON_MAX:,} characters)", "justification")
    active = [v for v in pair_conflicts(session, reviewer, proposal) if v.active]
    if not active:
        raise InvalidInput("this reviewer has no conflict with this proposal to override")
    now, rows = utcnow(), []
    for v in active:
        row = session.get(Conflict, v.conflict_id) if v.conflict_id else None
        if row is None:
            row = Conflict(call_id=proposal.call_id, reviewer_id=reviewer.id, proposal_id=proposal.id,
                           source=v.source, rule=v.rule, reason=v.reason, created_at=now, created_by_id=actor.id)
            session.add(row)
        row.overridden_at, row.overridden_by_id, row.override_justification = now, actor.id, justification
        rows.append(row)
    session.flush()
    for row in rows:
        audit.record(session, actor, "conflict.overridden", row, call_id=proposal.call_id,
                     before={"reviewer_id": reviewer.id, "proposal_id": proposal.id, "rule": row.rule,
                             "reason": row.reason, "overridden": False},
                     after={"overridden": True}, reason=justification)
    return rows


@dataclass(frozen=True)
class ConflictRow:
    """One conflict, for the secretariat's list."""

    proposal_id: int
    reference: str
    acronym: str
    reviewer_id: int
    reviewer_name: str
    rule: str
    label: str
    source: str
    reason: str
    status: str  # "active" | "overridden" | "no longer applies"
    override_justification: str | None


def call_conflicts(session: Session, actor, call: Call) -> list[ConflictRow]:
    """Every declared and detected conflict of the call's live proposals, with its reason and status."""
    require(actor, "review.assign", call)
    proposals, reviewers = live_proposals(session, call), call_reviewers(session, call)
    by_p = {p.id: p for p in proposals}
    by_r = {r.id: r for r in reviewers}
    rows = []
    for (pid, rid), views in conflicts_by_pair(session, call, proposals, reviewers, active_only=False).items():
        for v in views:
            status = "overridden" if v.overridden else ("active" if v.still_applies else "no longer applies")
            rows.append(ConflictRow(pid, by_p[pid].reference, by_p[pid].acronym, rid, by_r[rid].name, v.rule,
                                    v.label, v.source, v.reason, status, v.override_justification))
    rows.sort(key=lambda r: (r.reference, r.reviewer_name.casefold(), RULES.index(r.rule)))
    return rows


@dataclass(frozen=True)
class DeclarationItem:
    """What a reviewer sees to declare conflicts: acronym, title and partner organisations, nothing more."""

    proposal_id: int
    reference: str
    acronym: str
    title: str
    organisations: list[str]
    declared: bool
    declared_reason: str | None


def proposals_for_declaration(session: Session, actor, call: Call, window: Window | None = None
                              ) -> list[DeclarationItem]:
    """The live proposals of the call (only the page `window` when given; `live_count` counts them all)."""
    from reviews.pool import declaration_accepted

    if actor is None or actor.id not in reviewer_ids(session, call):
        raise DomainError("only reviewers of this call can declare conflicts of interest")
    if not declaration_accepted(session, actor, call):
        raise DomainError("accept the confidentiality and no-conflict declaration first")
    stmt = select(Proposal).where(*_live(call)).order_by(Proposal.id)
    proposals = list(session.scalars(stmt if window is None else window.apply(stmt)))
    if not proposals:
        return []
    ids = [p.id for p in proposals]
    organisations: dict[int, list[str]] = defaultdict(list)
    for pid, organisation in session.execute(select(Partner.proposal_id, Partner.organisation).where(
            Partner.proposal_id.in_(ids)).order_by(Partner.proposal_id, Partner.position)):
        organisations[pid].append(organisation)
    declared = {c.proposal_id: c for c in session.scalars(select(Conflict).where(
        Conflict.call_id == call.id, Conflict.reviewer_id == actor.id, Conflict.rule == "declared",
        Conflict.proposal_id.in_(ids)))}
    out = []
    for p in proposals:
        c = declared.get(p.id)
        out.append(DeclarationItem(p.id, p.reference, p.acronym, p.title, list(dict.fromkeys(organisations[p.id])),
                                   c is not None and c.overridden_at is None, c.reason if c else None))
    return out
