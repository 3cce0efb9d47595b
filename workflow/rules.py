"""Consortium and proposal rules (DOMAIN.md "Rules to enforce" 4-11, 14) as explainable violations.

Each check returns `Violation(code, message, field, blocking)`. The editor shows them as the coordinator
types; submission refuses while any blocking one remains. Every number comes from the call definition.
These functions read attributes only, so they work on ORM rows and on plain objects alike.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from workflow.callconfig import PARTNER_TYPE_LABELS, CallDef
from workflow.countries import EU_OR_ASSOCIATED, country_name


@dataclass(frozen=True)
class Violation:
    code: str
    message: str
    field: str | None = None
    blocking: bool = True


class PartnerLike(Protocol):
    position: int
    organisation: str
    partner_type: str
    country: str
    region: str | None
    funder_id: int | None
    own_funded: bool
    pi_name: str
    pi_email: str
    requested_amount: int


class CallFunderLike(Protocol):
    committed_budget: int
    max_per_partner: int | None
    max_per_project: int | None
    eligible_partner_types: list
    national_application_required: bool


@dataclass(frozen=True)
class FunderInfo:
    """What the rules need to know of a participating funder."""

    id: int
    acronym: str
    country: str
    region: str | None
    max_per_partner: int | None
    max_per_project: int | None
    eligible_partner_types: tuple[str, ...]
    national_application_required: bool = False


def _plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


def _eur(amount: int) -> str:
    return f"€{amount:,}".replace(",", "\u202f")  # thin space: no locale guess in domain messages


def _requests_funding(p: PartnerLike) -> bool:
    return not p.own_funded


def check_consortium(
    partners: Sequence[PartnerLike],
    settings: CallDef,
    funders: Mapping[int, FunderInfo],
    other_proposals_per_pi: Mapping[str, int] | None = None,
) -> list[Violation]:
    """Rules 4-11 on a consortium. `funders` maps funder id to the call's participating funders;
    `other_proposals_per_pi` maps a lower-cased PI e-mail to the number of other live proposals of the
    call that name this PI."""
    rules = settings.consortium
    eu_ac = frozenset(settings.eu_associated_countries) or EU_OR_ASSOCIATED
    out: list[Violation] = []
    funded = [p for p in partners if _requests_funding(p)]
    own = [p for p in partners if p.own_funded]

    # Rule 4: enough funded partners from enough participating countries (where a funder of the call is).
    participating = {f.country for f in funders.values()}
    funded_countries = {p.country for p in funded if p.country in participating}
    rule4_ok = True
    if len(funded) < rules.min_funded_partners:
        rule4_ok = False
        out.append(Violation(
            "min_funded_partners",
            f"at least {_plural(rules.min_funded_partners, 'partner')} requesting funding "
            f"{'is' if rules.min_funded_partners == 1 else 'are'} needed; you have {len(funded)}",
            "partners",
        ))
    if len(funded_countries) < rules.min_countries:
        rule4_ok = False
        out.append(Violation(
            "min_countries",
            f"partners from at least {_plural(rules.min_countries, 'participating country', 'participating countries')} "
            f"are needed; you have {len(funded_countries)}",
            "partners",
        ))

    # Rule 5: enough of them in EU Member States or Associated Countries.
    in_eu_ac = [p for p in funded if p.country in eu_ac]
    if len(in_eu_ac) < rules.min_eu_associated_partners:
        out.append(Violation(
            "min_eu_associated",
            f"at least {_plural(rules.min_eu_associated_partners, 'partner')} requesting funding must be in "
            f"EU Member States or Associated Countries; you have {len(in_eu_ac)}",
            "partners",
        ))

    # Rule 6: size, with the widening bonus.
    widening = [p for p in partners if p.country in rules.widening_countries]
    limit = rules.max_partners + (rules.widening_bonus if widening else 0)
    if len(partners) > limit:
        why = (f" ({rules.max_partners} + {rules.widening_bonus} because a partner comes from "
               f"{country_name(widening[0].country)})") if widening and rules.widening_bonus else ""
        out.append(Violation(
            "max_partners", f"at most {_plural(limit, 'partner')} are allowed{why}; you have {len(partners)}",
            "partners",
        ))

    # Rule 7: per country, own-funded partners included.
    for country, n in sorted(Counter(p.country for p in partners if p.country).items()):
        if n > rules.max_per_country:
            out.append(Violation(
                "max_per_country",
                f"at most {_plural(rules.max_per_country, 'partner')} per country "
                f"{'is' if rules.max_per_country == 1 else 'are'} allowed; "
                f"{country_name(country)} has {n}",
                "partners",
            ))

    # Rule 8: own-funded partners, and only on top of a consortium that stands without them.
    if len(own) > rules.max_own_funded:
        out.append(Violation(
            "max_own_funded",
            f"at most {_plural(rules.max_own_funded, 'partner')} with own funding "
            f"{'is' if rules.max_own_funded == 1 else 'are'} allowed; you have {len(own)}",
            "partners",
        ))
    elif own and not rule4_ok:
        out.append(Violation(
            "own_funded_needs_core",
            "a partner with own funding is allowed only when the partners requesting funding already meet "
            "the minimum on their own",
            "partners",
        ))

    # Rule 9: the coordinator requests funding.
    if rules.coordinator_must_be_funded and partners:
        coordinator = min(partners, key=lambda p: p.position)
        if coordinator.own_funded:
            out.append(Violation(
                "coordinator_funded", "the coordinator (partner 1) must request funding, not bring own funding",
                "partners[1].own_funded",
            ))

    # Rule 10: each funded partner's funder takes part, fits the partner, and its caps hold.
    per_funder_total: Counter[int] = Counter()
    for p in partners:
        where = f"partners[{p.position}]"
        label = f"partner {p.position} ({p.organisation or 'unnamed'})"
        if p.own_funded:
            continue
        if p.funder_id is None:
            out.append(Violation("funder_missing", f"{label}: choose its funder, or mark it as own funding",
                                 f"{where}.funder"))
            continue
        funder = funders.get(p.funder_id)
        if funder is None:
            out.append(Violation("funder_not_in_call", f"{label}: its funder does not take part in this call",
                                 f"{where}.funder"))
            continue
        per_funder_total[p.funder_id] += p.requested_amount
        if funder.country != p.country:
            out.append(Violation(
                "funder_country",
                f"{label}: {funder.acronym} funds partners in {country_name(funder.country)} only",
                f"{where}.funder",
            ))
        elif funder.region and (p.region or "").strip().casefold() != funder.region.casefold():
            out.append(Violation(
                "funder_region", f"{label}: {funder.acronym} funds partners in {funder.region} only",
                f"{where}.region",
            ))
        if funder.eligible_partner_types and p.partner_type not in funder.eligible_partner_types:
            kind = PARTNER_TYPE_LABELS.get(p.partner_type, p.partner_type).lower()
            out.append(Violation(
                "funder_partner_type", f"{label}: {funder.acronym} does not fund {kind} partners",
                f"{where}.partner_type",
            ))
        if funder.max_per_partner is not None and p.requested_amount > funder.max_per_partner:
            out.append(Violation(
                "max_per_partner",
                f"{label}: requests {_eur(p.requested_amount)}, above {funder.acronym}'s limit of "
                f"{_eur(funder.max_per_partner)} per partner",
                f"{where}.budget",
            ))
        if funder.national_application_required:
            out.append(Violation(
                "national_application",
                f"{label}: {funder.acronym} also requires a parallel national application; see its national annex",
                f"{where}.funder", blocking=False,
            ))
    for funder_id, total in sorted(per_funder_total.items()):
        funder = funders[funder_id]
        if funder.max_per_project is not None and total > funder.max_per_project:
            out.append(Violation(
                "max_per_project",
                f"the partners funded by {funder.acronym} request {_eur(total)} together, above its limit of "
                f"{_eur(funder.max_per_project)} per project",
                "partners",
            ))

    # Rule 11: a PI in at most N proposals of the call (and once within this one).
    emails = Counter((p.pi_email or "").strip().lower() for p in partners if p.pi_email)
    for email, n in sorted(emails.items()):
        if n > 1:
            out.append(Violation("pi_twice", f"{email} is the PI of {n} partners; each partner needs its own PI",
                                 "partners"))
    others = other_proposals_per_pi or {}
    for email in sorted(emails):
        total = others.get(email, 0) + 1
        if total > rules.max_proposals_per_pi:
            out.append(Violation(
                "max_proposals_per_pi",
                f"{email} is already a PI in {_plural(others.get(email, 0), 'other proposal')} of this call; "
                f"a PI may be in at most {_plural(rules.max_proposals_per_pi, 'proposal')}",
                "partners",
            ))
    return out


def check_texts(proposal, settings: CallDef, stage: str) -> list[Violation]:
    """Completeness and length of the proposal's own fields (rule 14 for text)."""
    stage_def = settings.stage(stage) or settings.stages[-1]
    out: list[Violation] = []
    if not (proposal.acronym or "").strip():
        out.append(Violation("acronym_missing", "give the proposal an acronym", "acronym"))
    if not (proposal.title or "").strip():
        out.append(Violation("title_missing", "give the proposal a title", "title"))
    elif len(proposal.title) > stage_def.title_max_chars:
        out.append(Violation("title_too_long", f"the title has {len(proposal.title)} characters; "
                             f"at most {stage_def.title_max_chars} are allowed", "title"))
    if not (proposal.abstract or "").strip():
        out.append(Violation("abstract_missing", "write the abstract", "abstract"))
    elif len(proposal.abstract) > stage_def.abstract_max_chars:
        out.append(Violation("abstract_too_long", f"the abstract has {len(proposal.abstract)} characters; "
                             f"at most {stage_def.abstract_max_chars} are allowed", "abstract"))
    if not proposal.duration_months:
        out.append(Violation("duration_missing", "give the project's duration in months", "duration_months"))
    return out


def blocking(violations: Sequence[Violation]) -> list[Violation]:
    return [v for v in violations if v.blocking]
