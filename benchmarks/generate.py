"""A deterministic large call, written straight into a database with bulk inserts.

    python -m benchmarks.generate --url sqlite:////tmp/big.db --proposals 2000

The call is EP PerMed JTC2024 (config/calls/eppermed-jtc2024.toml: 30 funders) plus 5 generated funders,
loaded through workflow.calls.load_call. Everything else is planned in Python from one
`random.Random(seed)` and inserted table by table with SQLAlchemy Core `insert(table)` and lists of rows
(executemany): no per-row ORM work, so 2,000 proposals take seconds.

The rows are valid, as the application would have written them:
- consortia obey the call's rules (workflow.rules.check_consortium finds nothing blocking): 5 to 7
  partners (7 only with a partner from a widening country), at most 2 per country, at least 3 funded
  partners from 3 participating countries, 2 of them in EU/associated countries, at most one own-funded
  partner from a non-participating country, the coordinator funded; every funded partner is in its
  funder's country (and region, for regional funders), of a type its funder funds, and requests within
  the funder's caps per partner and per project; every PI is in one proposal only;
- proposal states follow the lifecycle table, with the rows each step leaves behind: submissions whose
  content is the proposal's snapshot and whose sha256 is workflow.operations.content_hash of it,
  eligibility checks (the secretariat's formal check and one per funded partner) with reasons where
  ineligible, review assignments and submitted reviews (0-5 in half points, a comment per criterion)
  from non-conflicted reviewers, detected and declared conflicts, the panel's consensus, approved
  ranking lists with tie-break notes, a rebuttal window and rebuttals, the funding scenario computed by
  workflow.funding.allocate with its funding lines and the funders' confirmations, the outbox mails and a
  hash-chained audit log that verifies (workflow.audit.verify).

Two snapshots:
- "decisions" (the default): a call at its funding decision. Of N pre-proposals, 10 % were found
  ineligible, the rest were reviewed (3 reviews each); the best 10 % were invited, submitted a full
  proposal, were reviewed again (3 each), rebutted, went to the panel and were ranked; the recommended
  ones were allocated funding, selected ones are being confirmed by their funders. Reviews = 3 N.
- "assignment": all N pre-proposals eligible and in pre-proposal review, nobody assigned yet: the input
  of the automatic reviewer assignment.

Columns are read from the models when the generator runs; if a table gained a required column the
generator does not fill, it stops and names it (see `check_rows`).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import importlib
import json
import pkgutil
import random
import time
import tomllib
import unicodedata
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import SimpleNamespace

from sqlalchemy import insert, text, update
from sqlalchemy.engine import Engine

PROJECT = Path(__file__).resolve().parent.parent
CALL_FILE = PROJECT / "config" / "calls" / "eppermed-jtc2024.toml"
PASSWORD = "correct horse battery"
UTC = dt.UTC
SNAPSHOTS = ("decisions", "assignment")

# The sizes: 2,000 pre-proposals, 12,000 partners, 35 funders, 600 reviewers, 6,000 reviews.
FULL_SIZE = {"proposals": 2000, "partners": 12000, "reviewers": 600, "reviews": 6000, "extra_funders": 5}


class GeneratorOutdated(RuntimeError):
    """The models changed in a way the generator does not know (e.g. a new required column)."""


# ---------------------------------------------------------------------------------------------------------
# Vocabulary

KEYWORDS = """
pharmacogenomics; biomarkers; liquid biopsy; multi-omics; machine learning; rare diseases; precision oncology;
immunotherapy; microbiome; polygenic risk scores; clinical decision support; health economics; digital twins;
single-cell sequencing; proteomics; metabolomics; epigenetics; drug repurposing; patient stratification;
real-world data; federated learning; radiomics; paediatrics; autoimmune disease; inflammatory bowel disease;
sepsis; antimicrobial resistance; gene therapy; organoids; wearables; depression; schizophrenia; epilepsy;
multiple sclerosis; Parkinson's disease; Alzheimer's disease; breast cancer; colorectal cancer; lung cancer;
leukaemia; heart failure; hypertension; chronic kidney disease; obesity; type 1 diabetes; type 2 diabetes;
asthma; COPD; transplantation; pharmacokinetics; adverse drug reactions; bioethics; health literacy;
implementation science; biobanking; data interoperability; natural language processing;
artificial intelligence; causal inference; adaptive clinical trials; n-of-1 trials; prognostic models;
whole-genome sequencing; transcriptomics; circulating tumour DNA; HLA typing; vaccine response; ageing;
frailty; stroke; atrial fibrillation; fatty liver disease; cystic fibrosis; haemophilia; melanoma;
glioblastoma; pancreatic cancer; prostate cancer; ovarian cancer; rheumatoid arthritis; lupus; psoriasis;
migraine; chronic pain; neonatal care; pregnancy outcomes; nutrition; exercise physiology; sleep medicine;
medical imaging; ultrasound; digital pathology; electronic health records; privacy-preserving analytics
""".replace("\n", " ")
KEYWORDS = [k.strip() for k in KEYWORDS.split(";") if k.strip()]

FIRST = ("Zoë José Søren Małgorzata Jürgen Élodie Ioana Mihály Ólafur Chiara Lucía Henrik Aoife Pieter Kateřina "
         "Ayşe Thabo Émilie Lars Inês João Tomasz Agnieszka Giulia Marco Anne Laura Jonas Katrin Sophie Maarten "
         "Eva Petra Andrei Ivana Kadri Līga Mikko Erik Mette Claire Elif Martin Siobhán Ciarán Ana Petr Zsófia "
         "Ingrid Markus Emily Louis Noa Yossi Dimitra Nikos Urška Rūta Jan Sanne").split()
LAST = ("García Müller Nielsen Kowalski Rossi Dubois Janssens Ferreira Novák Nagy Hansen Nkosi Gruber Tremblay "
        "Gagnon Bianchi Tamm Virtanen Lindqvist Schmit Popescu Yılmaz Bērziņa Horváth Horvat Murphy Byrne Weber "
        "Becker Richter Martin Fernández O'Brien de-Vries van-den-Berg Papadopoulos Kovač Jankauskas Cohen "
        "Andersen Leclerc Moreau Schneider Fischer Romano Ricci Sánchez López Pereira Silva Kovács Svoboda").split()

CITIES = {
    "FR": ["Paris", "Lyon", "Marseille", "Toulouse", "Lille", "Bordeaux"],
    "DE": ["Berlin", "Munich", "Heidelberg", "Hamburg", "Cologne", "Dresden", "Leipzig"],
    "IE": ["Dublin", "Cork", "Galway"], "BE": ["Leuven", "Ghent", "Brussels", "Liège", "Antwerp"],
    "PT": ["Lisbon", "Porto", "Coimbra"], "CZ": ["Prague", "Brno", "Olomouc"], "ES": ["Madrid", "Barcelona",
    "Valencia", "Seville", "Pamplona"], "HU": ["Budapest", "Debrecen", "Szeged"], "NO": ["Oslo", "Bergen",
    "Trondheim"], "ZA": ["Cape Town", "Johannesburg", "Durban"], "AT": ["Vienna", "Graz", "Innsbruck"],
    "CA": ["Toronto", "Montréal", "Vancouver", "Québec City"], "IT": ["Milan", "Rome", "Turin", "Pavia",
    "Bologna"], "EE": ["Tallinn", "Tartu"], "FI": ["Helsinki", "Turku", "Oulu"], "SE": ["Stockholm",
    "Uppsala", "Lund"], "DK": ["Copenhagen", "Aarhus", "Odense"], "LU": ["Luxembourg", "Esch-sur-Alzette"],
    "PL": ["Warsaw", "Kraków", "Gdańsk", "Wrocław"], "RO": ["Bucharest", "Cluj-Napoca", "Iași"],
    "TR": ["Ankara", "Istanbul", "Izmir"], "LV": ["Riga", "Daugavpils"], "SK": ["Bratislava", "Košice"],
    "HR": ["Zagreb", "Split", "Rijeka"], "NL": ["Amsterdam", "Utrecht", "Leiden", "Nijmegen"],
    "LT": ["Vilnius", "Kaunas"], "SI": ["Ljubljana", "Maribor"], "GR": ["Athens", "Thessaloniki", "Heraklion"],
    "IL": ["Tel Aviv", "Jerusalem", "Haifa"], "US": ["Boston", "Baltimore", "San Diego"],
    "CH": ["Zurich", "Geneva", "Basel"], "GB": ["London", "Oxford", "Cambridge"], "JP": ["Tokyo", "Kyoto"],
    "AU": ["Melbourne", "Sydney"],
}
REGION_CITIES = {"Saxony": ["Dresden", "Leipzig"], "Flanders": ["Leuven", "Ghent", "Antwerp"],
                 "Wallonia-Brussels": ["Brussels", "Liège"], "Quebec": ["Montréal", "Québec City"],
                 "Lombardy": ["Milan", "Pavia"]}
OWN_FUNDED_COUNTRIES = ("US", "CH", "GB", "JP", "AU")
ORG_PATTERNS = {
    "academia": ["University of {c}", "{c} Institute of Molecular Medicine", "{c} Medical University",
                 "Centre for Precision Medicine {c}"],
    "clinical": ["{c} University Hospital", "{c} Cancer Centre", "Children's Hospital {c}",
                 "{c} Heart and Vascular Institute"],
    "industry": ["{w} Therapeutics ({c})", "{w} Diagnostics ({c})", "{w} Genomics ({c})"],
    "patient_organisation": ["{c} Patient Alliance for {d}", "{c} Rare Disease Network"],
    "other": ["{c} Health Data Foundation", "{c} Institute for Health Technology Assessment"],
}
COMPANY_WORDS = ["Helix", "Nova", "Axon", "Lumen", "Vireo", "Quanta", "Orion", "Cellis", "Genova", "Medix"]
TYPE_WEIGHTS = {"academia": 50, "clinical": 30, "industry": 10, "patient_organisation": 5, "other": 5}

# Five funders beyond the call file (35 in all); caps within their budgets, as FunderDef requires.
EXTRA_FUNDERS = [
    {"acronym": "ZonMw-G", "name": "Netherlands Organisation for Health Research (generated)", "country": "NL",
     "committed_budget": 2_000_000, "max_per_partner": 300_000},
    {"acronym": "LMT-G", "name": "Research Council of Lithuania (generated)", "country": "LT",
     "committed_budget": 400_000, "max_per_partner": 150_000},
    {"acronym": "ARIS-G", "name": "Slovenian Research and Innovation Agency (generated)", "country": "SI",
     "committed_budget": 500_000, "max_per_partner": 200_000, "eligible_partner_types": ["academia", "clinical"]},
    {"acronym": "GSRI-G", "name": "General Secretariat for Research and Innovation (generated)", "country": "GR",
     "committed_budget": 800_000, "max_per_project": 300_000},
    {"acronym": "CSO-MOH-G", "name": "Chief Scientist Office, Ministry of Health (generated)", "country": "IL",
     "committed_budget": 900_000, "max_per_partner": 250_000, "eligible_partner_types": ["academia", "clinical"]},
]
INELIGIBLE_REASONS = [
    "the project description exceeds the page limit (7 pages; at most 5 are allowed)",
    "the proposal's topic is outside the scope of the call",
    "the CVs of two principal investigators are missing",
    "the proposal is a duplicate of a proposal submitted to another call",
]
COMMENT_PHRASES = [
    "The objectives are clear and well argued", "the state of the art is described convincingly",
    "the preliminary data support feasibility", "the consortium's expertise is complementary",
    "the work plan is realistic but the risk mitigation is thin", "the patient involvement is exemplary",
    "the statistical analysis plan needs more detail", "the translational path is plausible",
    "the data management plan follows FAIR principles", "the budget is justified for the tasks",
    "the timeline for recruitment looks optimistic", "the expected impact on clinical practice is high",
]


def ascii_slug(value: str) -> str:
    folded = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode("ascii").lower()
    return "".join(ch if ch.isalnum() else "-" for ch in folded).strip("-").replace("--", "-")


# ---------------------------------------------------------------------------------------------------------
# The schema


def import_models() -> None:
    """Import every model module of workflow/ and reviews/ (models.py, *_models.py) so that
    Base.metadata holds every table the application has today."""
    import reviews
    import workflow

    for package in (workflow, reviews):
        for info in pkgutil.iter_modules(package.__path__):
            if info.name == "models" or info.name.endswith("_models"):
                importlib.import_module(f"{package.__name__}.{info.name}")


def create_schema(engine: Engine) -> None:
    """The tables as the models declare them now (the migrations may lag behind work in progress), on an
    empty database, and the audit chain's head row."""
    from workflow.audit import GENESIS
    from workflow.db import Base

    import_models()
    Base.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, :h)"), {"h": GENESIS})


def reset_database(url: str) -> Engine:
    """An empty database at `url`: a SQLite file is deleted; on PostgreSQL the public schema of that one
    database is dropped and recreated (never call this with a database you do not own)."""
    from workflow.db import make_engine

    if url.startswith("sqlite:///") and ":memory:" not in url:
        path = Path(url[len("sqlite:///"):])
        path.parent.mkdir(parents=True, exist_ok=True)
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(str(path) + suffix).unlink(missing_ok=True)
    engine = make_engine(url)
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
    return engine


def check_rows(table, rows: list[dict]) -> None:
    """Refuse rows that no longer fit the table: an unknown column, or a required column left out."""
    if not rows:
        return
    names = set(table.columns.keys())
    keys = set(rows[0])
    unknown = keys - names
    if unknown:
        raise GeneratorOutdated(f"table {table.name} has no column {', '.join(sorted(unknown))}; update "
                                "benchmarks/generate.py to the models")
    for col in table.columns:
        if col.name in keys or col.nullable or col.default is not None or col.server_default is not None:
            continue
        if col.primary_key and col.autoincrement in (True, "auto"):
            continue
        raise GeneratorOutdated(f"table {table.name} has a required column {col.name} that the generator does "
                                "not fill; update benchmarks/generate.py to the models")
    for row in rows:
        if set(row) != keys:
            raise GeneratorOutdated(f"rows of {table.name} differ in their columns: {sorted(set(row) ^ keys)}")


# ---------------------------------------------------------------------------------------------------------
# The plan: rows per table, built in Python


@dataclass
class Summary:
    """What was generated, and the people and objects the page benchmarks log in as and open."""

    url: str
    snapshot: str
    seed: int
    counts: dict[str, int] = field(default_factory=dict)
    call_id: int = 0
    call_code: str = ""
    secretariat_id: int = 0
    admin_id: int = 0
    officer_ids: dict[str, int] = field(default_factory=dict)  # funder acronym -> officer user id
    busiest_funder: str = ""
    coordinator_id: int = 0  # coordinator of `proposal_id`
    proposal_id: int = 0  # a proposal that went all the way (full stage, funded or selected)
    pre_proposal_id: int = 0  # a proposal that stopped at the pre stage (not invited)
    reviewer_id: int = 0  # a reviewer of `proposal_id` (at its last stage), with the most assignments
    reviewer_proposal_id: int = 0  # a proposal `reviewer_id` reviews
    check_id: int = 0  # a partner check of the busiest funder
    submission_id: int = 0  # the pre-stage submission of `proposal_id`
    seconds: float = 0.0
    user_password: str = PASSWORD

    def to_dict(self) -> dict:
        return asdict(self)


class Plan:
    def __init__(self):
        self.rows: dict[str, list[dict]] = defaultdict(list)
        self.next_id: dict[str, int] = defaultdict(lambda: 1)

    def add(self, table: str, row: dict, *, with_id: bool = True) -> int:
        """Keep `row` (the same dict: later changes of the caller count) with the next id of the table."""
        if with_id:
            row["id"] = self.next_id[table]
            self.next_id[table] += 1
        self.rows[table].append(row)
        return row.get("id", 0)

    def start_ids(self, table: str, first: int) -> None:
        self.next_id[table] = max(self.next_id[table], first)


def _at(day: str, rng: random.Random | None = None, spread_days: float = 0.0, hour: int = 9) -> dt.datetime:
    base = dt.datetime.fromisoformat(day).replace(hour=hour, tzinfo=UTC)
    if rng is not None and spread_days:
        base += dt.timedelta(seconds=rng.randrange(int(spread_days * 86400)))
    return base


# Key instants of the JTC2024 calendar (UTC), DOMAIN.md §1.
T = SimpleNamespace(
    call_loaded=_at("2023-12-15"), pre_close=_at("2024-03-06", hour=8), pre_checks="2024-03-07",
    pre_decided=_at("2024-04-02"), pre_assigned=_at("2024-04-03"), pre_reviews="2024-04-04",
    pre_consensus=_at("2024-05-08"), pre_ranking=_at("2024-05-15"), invitations=_at("2024-05-17"),
    start_full="2024-05-20", full_submit="2024-06-01", full_close=_at("2024-06-21", hour=8),
    full_checks="2024-06-24", full_decided=_at("2024-07-08"), full_assigned=_at("2024-07-09"),
    full_reviews="2024-07-10", rebuttal_open=_at("2024-08-19", hour=8), rebuttal_close=_at("2024-08-26", hour=8),
    rebuttals="2024-08-20", panel_consensus=_at("2024-09-10"), panel_decided=_at("2024-09-12"),
    full_ranking=_at("2024-09-16"), funding=_at("2024-09-20"), confirmations="2024-09-23",
)


def _round_half(x: float) -> float:
    return min(5.0, max(0.0, round(x * 2) / 2))


class Generator:
    def __init__(self, *, proposals: int, partners: int | None = None, reviewers: int | None = None,
                 reviews: int | None = None, extra_funders: int = 5, seed: int = 2024,
                 snapshot: str = "decisions"):
        if snapshot not in SNAPSHOTS:
            raise ValueError(f"snapshot is one of {', '.join(SNAPSHOTS)}")
        if proposals < 10:
            raise ValueError("generate at least 10 proposals")
        self.n = proposals
        self.n_partners = partners if partners is not None else 6 * proposals
        self.n_reviewers = reviewers if reviewers is not None else max(12, round(proposals * 0.3))
        self.snapshot = snapshot
        if reviews is None:
            reviews = 3 * proposals if snapshot == "decisions" else 0
        self.n_reviews = reviews
        if not 0 <= extra_funders <= len(EXTRA_FUNDERS):
            raise ValueError(f"at most {len(EXTRA_FUNDERS)} extra funders")
        self.extra_funders = extra_funders
        self.seed = seed
        self.rng = random.Random(seed)
        self.plan = Plan()
        self.pre_submission: dict[int, int] = {}
        self.assignment_ids: dict[tuple, int] = {}
        self.events: list[tuple] = []  # (at, order, actor, action, object_type, object_id, before, after, reason)
        if not 3.5 * proposals <= self.n_partners <= 7 * proposals:
            raise ValueError("partners per proposal must average between 3.5 and 7 (the call allows 3 to 7)")
        if snapshot == "decisions":
            self.n_ineligible = max(1, round(0.10 * proposals))
            self.n_invited = max(1, round(0.10 * proposals))
            minimum = 3 * (proposals - self.n_ineligible) + 3 * self.n_invited
            if self.n_reviews < minimum:
                raise ValueError(f"{proposals} proposals need at least {minimum} reviews (3 per reviewed "
                                 "proposal and stage)")
        else:
            self.n_ineligible = self.n_invited = 0
            if self.n_reviews:
                raise ValueError("the assignment snapshot has no reviews yet")

    # -- users -------------------------------------------------------------------------------------

    def user(self, email: str, name: str, *, organisation: str | None = None, country: str | None = None,
             is_admin: bool = False, created: dt.datetime | None = None) -> int:
        uid = self.plan.add("user_account", {
            "email": email, "name": name, "password_hash": self.password_hash,
            "email_confirmed_at": created or T.call_loaded, "is_admin": is_admin,
            "organisation": organisation, "country": country, "created_at": created or T.call_loaded,
        })
        self.user_label[uid] = f"{name} <{email}>"
        return uid

    def grant(self, user_id: int, role: str, funder_id: int | None = None) -> None:
        self.plan.add("role_grant", {"user_id": user_id, "role": role, "call_id": self.call_id,
                                     "funder_id": funder_id, "granted_at": T.call_loaded})

    def person(self) -> tuple[str, str]:
        n = self.person_counter = self.person_counter + 1
        first, last = self.rng.choice(FIRST), self.rng.choice(LAST)
        name = f"{first} {last.replace('-', ' ')}"
        return name, f"{ascii_slug(first)}.{ascii_slug(last)}.{n}"

    # -- events ------------------------------------------------------------------------------------

    def event(self, at: dt.datetime, actor: int | None, action: str, object_type: str, object_id: int | None,
              before=None, after=None, reason: str | None = None) -> None:
        self.events.append((at, len(self.events), actor, action, object_type, object_id, before, after, reason))

    def move(self, at, actor, proposal: dict, trigger: str, dest: str, reason: str | None = None) -> None:
        self.event(at, actor, f"proposal.{trigger}", "proposal", proposal["id"],
                   {"state": proposal["state"]}, {"state": dest}, reason)
        proposal["state"] = dest
        proposal["updated_at"] = at
        proposal["version"] += 1

    def mail(self, at, kind: str, to: str, subject: str, body: str, dedup: str, attachments=None) -> None:
        self.plan.add("outbox_message", {
            "kind": kind, "dedup_key": dedup, "to_address": to, "subject": subject, "body_text": body,
            "attachments": attachments or [], "call_id": self.call_id, "status": "sent", "attempts": 1,
            "last_error": None, "created_at": at, "next_attempt_at": None, "claimed_at": at,
            "sent_at": at + dt.timedelta(seconds=2),
        })

    # -- the call ----------------------------------------------------------------------------------

    def load_call(self, session) -> None:
        from workflow.callconfig import parse_call_definition
        from workflow.calls import load_call
        from workflow.clock import frozen

        data = tomllib.loads(CALL_FILE.read_text(encoding="utf-8"))
        data["funders"] = list(data["funders"]) + [dict(f) for f in EXTRA_FUNDERS[: self.extra_funders]]
        definition = parse_call_definition(data, str(CALL_FILE))
        with frozen(T.call_loaded):
            call = load_call(session, None, definition).call
            call.phase = "ranking_approved" if self.snapshot == "decisions" else "pre_evaluation"
            session.flush()
        self.call = call
        self.call_id = call.id
        self.settings = call.settings
        self.funders = []
        for cf in sorted(call.funders, key=lambda cf: cf.funder_id):
            self.funders.append(SimpleNamespace(
                id=cf.funder_id, acronym=cf.funder.acronym, country=cf.funder.country, region=cf.funder.region,
                budget=cf.committed_budget, max_per_partner=cf.max_per_partner, max_per_project=cf.max_per_project,
                types=list(cf.eligible_partner_types or ["academia", "clinical", "industry",
                                                         "patient_organisation", "other"])))
        self.funder_by_id = {f.id: f for f in self.funders}
        self.by_country: dict[str, list] = defaultdict(list)
        for f in self.funders:
            self.by_country[f.country].append(f)
        from workflow.countries import EU_OR_ASSOCIATED

        self.eu_ac = frozenset(self.settings.eu_associated_countries) or EU_OR_ASSOCIATED
        self.widening = [c for c in self.settings.consortium.widening_countries if c in self.by_country]
        # Countries weighted by their funders' budgets (square root, so small countries still appear).
        self.country_weights = {c: sum(f.budget for f in fs) ** 0.5 for c, fs in self.by_country.items()}
        # The stages the snapshot has closed, and the rebuttal window, as the secretariat set them.
        with frozen(T.funding if self.snapshot == "decisions" else T.pre_close):
            for stage in call.stages:
                if stage.kind == "pre" or self.snapshot == "decisions":
                    stage.closed_at = T.pre_close if stage.kind == "pre" else T.full_close
            if self.snapshot == "decisions" and call.has_rebuttal:
                call.rebuttal_opens_at, call.rebuttal_closes_at = T.rebuttal_open, T.rebuttal_close
            session.flush()

    # -- organisations -----------------------------------------------------------------------------

    def organisations(self) -> None:
        """A pool of organisations per (country, type), each with its own e-mail domain."""
        self.orgs: dict[tuple[str, str], list[tuple[str, str]]] = {}
        countries = set(self.by_country) | set(OWN_FUNDED_COUNTRIES)
        for country in sorted(countries):
            cities = CITIES.get(country) or [country]
            for ptype, patterns in ORG_PATTERNS.items():
                names = []
                for city in cities:
                    for pattern in patterns:
                        word = COMPANY_WORDS[(len(names) + len(city)) % len(COMPANY_WORDS)]
                        disease = KEYWORDS[(len(names) * 7 + len(city)) % len(KEYWORDS)]
                        names.append(pattern.format(c=city, w=word, d=disease))
                names = list(dict.fromkeys(names))
                self.orgs[(country, ptype)] = [(n, ascii_slug(n)[:60] + f".{country.lower()}.example")
                                               for n in names]

    def org_for(self, country: str, ptype: str, region: str | None) -> tuple[str, str]:
        pool = self.orgs[(country, ptype)]
        if region and region in REGION_CITIES:
            local = [o for o in pool if any(city in o[0] for city in REGION_CITIES[region])]
            pool = local or pool
        return self.rng.choice(pool)

    # -- consortia ---------------------------------------------------------------------------------

    def sizes(self) -> list[int]:
        """Partners per proposal: they add up to the partners asked for, 4 to 7 each, 7 only with a
        widening partner (decided when the consortium is drawn)."""
        base, extra = divmod(self.n_partners, self.n)
        sizes = [base + (1 if i < extra else 0) for i in range(self.n)]
        self.rng.shuffle(sizes)
        # Variety: move one partner from one proposal to another, keeping the total.
        for _ in range(self.n // 3):
            i, j = self.rng.randrange(self.n), self.rng.randrange(self.n)
            if i != j and sizes[i] > 5 and sizes[j] < 7:
                sizes[i] -= 1
                sizes[j] += 1
        return sizes

    def consortium(self, size: int) -> list[dict]:
        """Partner rows (without ids) for one proposal that break no rule of the call."""
        rules = self.settings.consortium
        rng = self.rng
        for _attempt in range(200):
            own = 1 if (size >= 5 and rules.max_own_funded and rng.random() < 0.08) else 0
            funded_n = size - own
            countries: list[str] = []
            if size > rules.max_partners:
                countries.append(rng.choice(self.widening))
            pool = list(self.country_weights)
            weights = [self.country_weights[c] for c in pool]
            while len(countries) < funded_n:
                c = rng.choices(pool, weights)[0]
                if countries.count(c) < rules.max_per_country:
                    countries.append(c)
            rng.shuffle(countries)
            if len(set(countries)) < rules.min_countries:
                continue
            if sum(c in self.eu_ac for c in countries) < rules.min_eu_associated_partners:
                continue
            if countries[0] not in self.eu_ac:  # a coordinator in the EU or an associated country
                continue
            partners = self._fund(countries)
            if partners is None:
                continue
            if own:
                c = rng.choice(OWN_FUNDED_COUNTRIES)
                org, domain = self.org_for(c, "academia", None)
                partners.append({"country": c, "region": None, "funder_id": None, "own_funded": True,
                                 "partner_type": "academia", "organisation": org, "domain": domain,
                                 "requested_amount": 0, "budget": {}})
            if len({p["organisation"] for p in partners}) < len(partners):
                continue
            return partners
        raise RuntimeError("could not draw a valid consortium in 200 attempts; the call's rules are too tight")

    def _fund(self, countries: list[str]) -> list[dict] | None:
        rng = self.rng
        used_project: Counter = Counter()
        out = []
        for c in countries:
            options = [f for f in self.by_country[c]
                       if f.max_per_project is None or f.max_per_project - used_project[f.id] >= 40_000]
            if not options:
                return None
            f = rng.choices(options, [max(1, f.budget) for f in options])[0]
            ptype = rng.choices(f.types, [TYPE_WEIGHTS[t] for t in f.types])[0]
            cap = min(f.max_per_partner or 400_000, 400_000)
            if f.max_per_project is not None:
                cap = min(cap, f.max_per_project // 2, f.max_per_project - used_project[f.id])
            low = min(60_000, cap)
            amount = rng.randrange(low // 1000, cap // 1000 + 1) * 1000
            used_project[f.id] += amount
            region = f.region
            org, domain = self.org_for(c, ptype, region)
            personnel = round(amount * rng.uniform(0.55, 0.7))
            consumables = round(amount * rng.uniform(0.1, 0.2))
            travel = round(amount * rng.uniform(0.02, 0.05))
            budget = {"personnel": personnel, "consumables": consumables, "travel": travel,
                      "other": amount - personnel - consumables - travel}
            out.append({"country": c, "region": region, "funder_id": f.id, "own_funded": False,
                        "partner_type": ptype, "organisation": org, "domain": domain,
                        "requested_amount": amount, "budget": budget})
        return out

    def texts(self, i: int) -> dict:
        rng = self.rng
        kws = rng.sample(KEYWORDS, rng.randint(4, 6))
        syll = ["PRE", "CI", "SE", "GEN", "OMI", "CARE", "MED", "TAR", "GET", "PER", "SO", "NA", "BIO", "MARK"]
        acronym = "".join(rng.sample(syll, 2)) + f"-{i}"
        title = (f"{kws[0].capitalize()} and {kws[1]} to personalise care: identification, validation and "
                 f"implementation of targets in {kws[2]}")[:200]
        sentences = [
            f"Personalised medicine needs targets that are validated across populations; {acronym} studies "
            f"{kws[0]} together with {kws[1]}.",
            f"We combine {kws[2]} with {kws[3]} in prospective cohorts recruited by the consortium's clinical "
            "partners in several countries.",
            "Work package 1 builds harmonised data sets under FAIR principles; work package 2 develops and "
            f"validates prognostic models; work package 3 tests {kws[-1]} in a pragmatic trial.",
            "Patients and their organisations shape the research questions, the outcome measures and the "
            "dissemination plan from the start.",
            "The expected results are validated targets, open tools for clinicians and a health-economic "
            "assessment that supports implementation in national health systems.",
        ]
        abstract = " ".join(sentences)
        while len(abstract) < 1200:
            abstract += " " + rng.choice(sentences)
        return {"acronym": acronym, "title": title, "abstract": abstract[:1950], "keywords": "; ".join(kws),
                "topic": "PMTargets", "duration_months": rng.choice((24, 30, 36, 36, 36))}

    # -- the whole plan ----------------------------------------------------------------------------

    def build(self, session) -> None:
        from argon2 import PasswordHasher

        # One real argon2 hash with a salt from the seed: every generated user logs in with PASSWORD.
        salt = hashlib.sha256(f"jointcall-bench-{self.seed}".encode()).digest()[:16]
        self.password_hash = PasswordHasher().hash(PASSWORD, salt=salt)
        self.user_label: dict[int, str] = {}
        self.person_counter = 0
        self.load_call(session)
        self.organisations()
        plan = self.plan
        session.flush()
        for table in INSERT_ORDER:  # load_call wrote a few rows (its audit event): continue after them
            plan.start_ids(table, session.scalar(text(f"SELECT COALESCE(MAX(id), 0) FROM {table}")) + 1)

        self.secretariat = self.user("secretariat@jointcall.example", "Sam Secretariat",
                                     organisation="ANR (Joint Call Secretariat)", country="FR")
        self.grant(self.secretariat, "secretariat")
        for stage in self.call.stages:
            if stage.closed_at is not None:
                self.event(stage.closed_at, self.secretariat, "stage.closed", "call_stage", stage.id, None,
                           {"stage": stage.kind, "closed_at": stage.closed_at.isoformat()})
        self.admin = self.user("admin@jointcall.example", "Ada Admin", is_admin=True)
        self.officers = {}
        for f in self.funders:
            name, local = self.person()
            uid = self.user(f"officer.{ascii_slug(f.acronym)}@{ascii_slug(f.acronym)}.example", name,
                            organisation=f.acronym, country=f.country)
            self.grant(uid, "officer", f.id)
            self.officers[f.id] = uid
        self.reviewer_rows()
        self.proposals_and_partners()
        self.conflicts()
        if self.snapshot == "decisions":
            self.decisions()
        else:
            self.assignment_snapshot()

    def reviewer_rows(self) -> None:
        rng, plan = self.rng, self.plan
        countries = sorted(set(self.by_country) | {"US", "CH", "GB"})
        self.reviewers = []
        for _ in range(self.n_reviewers):
            country = rng.choice(countries)
            ptype = rng.choice(["academia", "academia", "clinical"])
            org, domain = rng.choice(self.orgs[(country, ptype)])
            name, local = self.person()
            email = f"{local}@{domain}"
            uid = self.user(email, name, organisation=org, country=country)
            self.grant(uid, "reviewer")
            keywords = rng.sample(KEYWORDS, rng.randint(5, 9))
            plan.add("reviewer_invitation", {
                "call_id": self.call_id, "user_id": uid, "email": email,
                "token_sha256": hashlib.sha256(f"bench-reviewer-{self.seed}-{uid}".encode()).hexdigest(),
                "status": "accepted", "invited_by_id": self.secretariat, "invited_at": _at("2024-02-01"),
                "expires_at": _at("2024-03-01"), "responded_at": _at("2024-02-03", rng, 10),
                "decline_reason": None})
            plan.add("reviewer_profile", {
                "call_id": self.call_id, "user_id": uid, "keywords": keywords, "organisation": org,
                "country": country, "email_domain": domain, "declaration_accepted_at": _at("2024-03-20", rng, 10),
                "updated_at": _at("2024-03-20")})
            self.event(_at("2024-02-03"), uid, "reviewer.invitation_accepted", "reviewerinvitation",
                       self.plan.next_id["reviewer_invitation"] - 1, None, {"status": "accepted"})
            self.reviewers.append(SimpleNamespace(id=uid, email=email, org=org, domain=domain, country=country,
                                                  name=name, keywords=keywords))

    def proposals_and_partners(self) -> None:
        rng, plan = self.rng, self.plan
        sizes = self.sizes()
        prefix = self.call.code.upper()[:34]
        self.proposals: list[dict] = []
        self.partners_of: dict[int, list[dict]] = {}
        for i in range(self.n):
            consortium = self.consortium(sizes[i])
            created = _at("2024-01-12", rng, 45)
            txt = self.texts(i + 1)
            pis = []
            for p in consortium:
                name, local = self.person()
                pis.append((name, f"{local}@{p['domain']}"))
            coordinator = self.user(pis[0][1], pis[0][0], organisation=consortium[0]["organisation"],
                                    country=consortium[0]["country"], created=created)
            proposal = {
                "id": i + 1, "call_id": self.call_id, "reference": f"{prefix}-{i + 1:04d}", **txt,
                "state": "draft", "coordinator_id": coordinator, "created_at": created, "updated_at": created,
                "version": 1,
            }
            self.event(created, coordinator, "proposal.created", "proposal", proposal["id"], None,
                       {"state": "draft", "acronym": txt["acronym"]})
            plan.add("proposal", proposal, with_id=False)
            self.proposals.append(proposal)
            rows = []
            for pos, (p, (pi_name, pi_email)) in enumerate(zip(consortium, pis, strict=True), start=1):
                row = {"proposal_id": proposal["id"], "position": pos, "organisation": p["organisation"],
                       "partner_type": p["partner_type"], "country": p["country"], "region": p["region"],
                       "funder_id": p["funder_id"], "own_funded": p["own_funded"], "pi_name": pi_name,
                       "pi_email": pi_email, "requested_amount": p["requested_amount"], "budget": p["budget"]}
                plan.add("partner", row)
                rows.append(row)
            self.partners_of[proposal["id"]] = rows
            if i % 3 == 2 and len(rows) > 1:  # a co-applicant with an account
                member = self.user(rows[1]["pi_email"], rows[1]["pi_name"], organisation=rows[1]["organisation"],
                                   country=rows[1]["country"], created=created)
                plan.add("proposal_member", {"proposal_id": proposal["id"], "user_id": member, "can_edit": True,
                                             "added_at": created + dt.timedelta(days=1)})

    # -- conflicts ---------------------------------------------------------------------------------

    def conflicts(self) -> None:
        """Detected conflicts (same organisation, same e-mail domain as a partner) for every reviewer and
        proposal, and a few declared ones; assignments avoid them all."""
        by_org: dict[str, set[int]] = defaultdict(set)
        by_domain: dict[str, set[int]] = defaultdict(set)
        for pid, rows in self.partners_of.items():
            for row in rows:
                by_org[row["organisation"].casefold()].add(pid)
                by_domain[row["pi_email"].rpartition("@")[2]].add(pid)
        self.conflicted: set[tuple[int, int]] = set()
        when = T.pre_assigned - dt.timedelta(days=1)
        for r in self.reviewers:
            for pid in sorted(by_org.get(r.org.casefold(), ())):
                self._conflict(r, pid, "detected", "same_organisation",
                               f"works at {r.org}, a partner of this proposal", when)
            for pid in sorted(by_domain.get(r.domain, ())):
                orgs = ", ".join(dict.fromkeys(x["organisation"] for x in self.partners_of[pid]
                                               if x["pi_email"].endswith("@" + r.domain)))
                self._conflict(r, pid, "detected", "same_email_domain",
                               f"has an e-mail address at {r.domain}, like the PI of {orgs}", when)
        for r in self.rng.sample(self.reviewers, max(1, len(self.reviewers) // 20)):
            pid = self.rng.randrange(1, self.n + 1)
            self._conflict(r, pid, "declared", "declared", "I co-authored two papers with the coordinator in "
                           "the last three years", when + dt.timedelta(hours=3), actor=r.id)

    def _conflict(self, r, pid: int, source: str, rule: str, reason: str, at, actor=None) -> None:
        if (r.id, pid, rule) in getattr(self, "_conflict_keys", set()):
            return
        self.__dict__.setdefault("_conflict_keys", set()).add((r.id, pid, rule))
        self.conflicted.add((pid, r.id))
        cid = self.plan.add("conflict", {
            "call_id": self.call_id, "reviewer_id": r.id, "proposal_id": pid, "source": source, "rule": rule,
            "reason": reason, "created_at": at, "created_by_id": actor, "overridden_by_id": None,
            "override_justification": None, "overridden_at": None})
        self.event(at, actor, f"conflict.{'declared' if source == 'declared' else 'detected'}", "conflict", cid,
                   None, {"reviewer_id": r.id, "proposal_id": pid, "rule": rule})

    # -- steps shared by both snapshots ------------------------------------------------------------

    def snapshot_content(self, proposal: dict) -> dict:
        return {
            "reference": proposal["reference"], "acronym": proposal["acronym"], "title": proposal["title"],
            "abstract": proposal["abstract"], "keywords": proposal["keywords"], "topic": proposal["topic"],
            "duration_months": proposal["duration_months"],
            "partners": [
                {"position": p["position"], "organisation": p["organisation"], "partner_type": p["partner_type"],
                 "country": p["country"], "region": p["region"],
                 "funder": self.funder_by_id[p["funder_id"]].acronym if p["funder_id"] else None,
                 "own_funded": p["own_funded"], "pi_name": p["pi_name"], "pi_email": p["pi_email"],
                 "requested_amount": p["requested_amount"], "budget": dict(sorted(p["budget"].items()))}
                for p in self.partners_of[proposal["id"]]
            ],
            "documents": [],
        }

    def submit(self, proposal: dict, stage: str, at: dt.datetime, previous: int | None = None) -> int:
        from workflow.operations import content_hash

        content = self.snapshot_content(proposal)
        sid = self.plan.add("submission", {
            "proposal_id": proposal["id"], "stage": stage, "number": 1, "submitted_at": at,
            "submitted_by_id": proposal["coordinator_id"], "content": content, "sha256": content_hash(content),
            "previous_stage_submission_id": previous})
        self.move(at, proposal["coordinator_id"], proposal, "submit" if stage == "pre" else "submit_full",
                  "submitted" if stage == "pre" else "full_submitted")
        email = self.user_email(proposal["coordinator_id"])
        self.mail(at, "submission_receipt", email, f"[{self.settings.title}] {proposal['acronym']}: receipt",
                  f"Your proposal {proposal['reference']} was submitted. SHA-256: {content_hash(content)}",
                  f"receipt:submission:{sid}", [{"kind": "receipt", "submission_id": sid}])
        return sid

    def user_email(self, uid: int) -> str:
        return self.user_label[uid].rpartition("<")[2].rstrip(">")

    def checks(self, proposal: dict, stage: str, day: str, ineligible_reason: str | None = None,
               spread: float = 18) -> None:
        rng = self.rng
        rows = [(None, None)] + [(p["id"], p["funder_id"]) for p in self.partners_of[proposal["id"]]
                                 if p["funder_id"] is not None and not p["own_funded"]]
        for partner_id, funder_id in rows:
            at = _at(day, rng, spread)
            bad = ineligible_reason if partner_id is None else None
            actor = self.secretariat if funder_id is None else self.officers[funder_id]
            cid = self.plan.add("eligibility_check", {
                "proposal_id": proposal["id"], "partner_id": partner_id, "funder_id": funder_id, "stage": stage,
                "status": "ineligible" if bad else "eligible", "reason": bad, "decided_by_id": actor,
                "decided_at": at, "version": 2})
            self.event(at, actor, "eligibility.signed_off", "eligibilitycheck", cid,
                       {"status": "pending", "reason": None},
                       {"status": "ineligible" if bad else "eligible", "reason": bad, "proposal_id": proposal["id"]})

    def pre_stage_until_review(self, proposal: dict, ineligible: str | None) -> None:
        sub_at = min(proposal["created_at"] + dt.timedelta(days=self.rng.uniform(1, 20)),
                     _at("2024-03-05", self.rng, 0.3, hour=6))
        self.pre_submission[proposal["id"]] = self.submit(proposal, "pre", sub_at)
        self.move(T.pre_close, self.secretariat, proposal, "close_submission", "eligibility_check")
        self.checks(proposal, "pre", T.pre_checks, ineligible)
        entry = {"id": proposal["id"], "reference": proposal["reference"], "acronym": proposal["acronym"]}
        if ineligible:
            self.step_summary("pre")["ineligible"].append({**entry, "state": "ineligible", "reasons": [
                {"check": "formal", "partner": None, "funder": None, "reason": ineligible}]})
            self.move(T.pre_decided, self.secretariat, proposal, "declare_ineligible", "ineligible", ineligible)
            self.mail(T.pre_decided, "decision", self.user_email(proposal["coordinator_id"]),
                      f"[{self.settings.title}] {proposal['acronym']}: not eligible",
                      "Your proposal was found not eligible. The reasons are shown on its page.",
                      f"decision:proposal:{proposal['id']}:ineligible")
        else:
            self.step_summary("pre")["eligible"].append({**entry, "state": "pre_review"})
            self.move(T.pre_decided, self.secretariat, proposal, "declare_eligible", "pre_review")

    def step_summary(self, stage: str) -> dict:
        """What closing the eligibility step of a stage did (workflow.eligibility.close_eligibility_step)."""
        return self.__dict__.setdefault("_steps", {}).setdefault(stage, {
            "stage": stage, "eligible": [], "conditional": [], "ineligible": [], "pending": [], "held": []})

    def step_closed(self, stage: str, at: dt.datetime) -> None:
        self.event(at + dt.timedelta(seconds=1), self.secretariat, "eligibility.step_closed", "call", self.call_id,
                   None, self.step_summary(stage))

    def assignment_snapshot(self) -> None:
        for proposal in self.proposals:
            self.pre_stage_until_review(proposal, None)
        self.step_closed("pre", T.pre_decided)

    # -- reviews -----------------------------------------------------------------------------------

    def assign(self, stage: str, pids: list[int], total: int, assigned_at: dt.datetime) -> dict[int, list[int]]:
        """`total` assignments over `pids`, at least 3 each, round robin over the reviewers (balanced load),
        skipping conflicted and repeated pairs."""
        per = {pid: 3 for pid in pids}
        extra = total - 3 * len(pids)
        order = list(pids)
        self.rng.shuffle(order)
        for k in range(extra):
            per[order[k % len(order)]] += 1
        ring = list(self.reviewers)
        self.rng.shuffle(ring)
        pos = 0
        out: dict[int, list[int]] = {}
        for pid in pids:
            chosen: list[int] = []
            tries = 0
            while len(chosen) < per[pid]:
                r = ring[pos % len(ring)]
                pos += 1
                tries += 1
                if tries > 3 * len(ring):
                    raise RuntimeError(f"not enough non-conflicted reviewers for proposal {pid}")
                if (pid, r.id) in self.conflicted or r.id in chosen:
                    continue
                chosen.append(r.id)
            out[pid] = chosen
            for rid in chosen:
                aid = self.plan.add("review_assignment", {
                    "call_id": self.call_id, "proposal_id": pid, "reviewer_id": rid, "stage": stage,
                    "source": "auto", "explanation": {"method": "min-cost flow", "reasons": "generated"},
                    "assigned_at": assigned_at, "assigned_by_id": self.secretariat})
                self.event(assigned_at, self.secretariat, "review.assigned", "reviewassignment", aid, None,
                           {"proposal_id": pid, "reviewer_id": rid, "stage": stage, "source": "auto"})
                self.assignment_ids[(pid, rid, stage)] = aid
        return out

    def write_reviews(self, stage: str, assigned: dict[int, list[int]], quality: dict[int, float], day: str,
                      released: bool) -> dict[int, list[dict]]:
        crits = self.settings.evaluation.criteria
        out: dict[int, list[dict]] = {}
        for pid, rids in assigned.items():
            out[pid] = []
            for rid in rids:
                scores = {c.key: _round_half(quality[pid] + self.rng.gauss(0, 0.5)) for c in crits}
                mean = sum(scores.values()) / len(scores)
                comments = {c.key: f"{self.rng.choice(COMMENT_PHRASES).capitalize()}; "
                                   f"{self.rng.choice(COMMENT_PHRASES)}." for c in crits}
                rec = ("recommended" if mean >= 3.75 else "recommended_if_funds" if mean >= 3 else "not_recommended")
                at = _at(day, self.rng, 28)
                self.plan.add("review", {
                    "assignment_id": self.assignment_ids[(pid, rid, stage)], "proposal_id": pid, "reviewer_id": rid,
                    "stage": stage, "scores": scores, "comments": comments, "recommendation": rec,
                    "status": "submitted", "submitted_at": at, "released_to_applicants": released, "version": 2})
                self.event(at, rid, "review.submitted", "review", self.plan.next_id["review"] - 1,
                           {"status": "draft"}, {"status": "submitted", "scores": scores, "recommendation": rec})
                out[pid].append(scores)
            for rid in rids:
                self.mail(_at(day), "review_assignment", self.user_email(rid), "proposals to review",
                          "You have been asked to review proposals.", f"review_assigned:{stage}:{pid}:{rid}")
        return out

    def consensus(self, stage: str, pid: int, score_sets: list[dict], at) -> dict:
        ev = self.settings.evaluation
        scores = {c.key: _round_half(sum(s[c.key] for s in score_sets) / len(score_sets)) for c in ev.criteria}
        total = round(sum(c.weight * scores[c.key] for c in ev.criteria), 6)
        meets = all(scores[c.key] >= c.threshold for c in ev.criteria) and total >= ev.total_threshold
        rec = ("recommended" if meets and total >= 12 else "recommended_if_funds" if meets else "not_recommended")
        self.plan.add("panel_consensus", {
            "call_id": self.call_id, "proposal_id": pid, "stage": stage, "scores": scores, "weighted_total": total,
            "recommendation": rec, "summary": "The panel agreed with the reviewers' assessment: "
                                              + self.rng.choice(COMMENT_PHRASES) + ".",
            "entered_by_id": self.secretariat, "entered_at": at, "version": 1})
        self.event(at, self.secretariat, "panel.consensus_entered", "panelconsensus",
                   self.plan.next_id["panel_consensus"] - 1, None,
                   {"stage": stage, "scores": scores, "weighted_total": total, "recommendation": rec})
        return {"pid": pid, "scores": scores, "total": total, "recommendation": rec}

    def ranking(self, stage: str, items: list[dict], at) -> list[dict]:
        """A strict order: total, then the call's tie-break criteria, then the smaller request, then the id
        (the panel's vote); approved."""
        tie_break = list(self.settings.evaluation.tie_break)

        def request(pid):
            return sum(p["requested_amount"] for p in self.partners_of[pid] if not p["own_funded"])

        def key(it):
            return (-it["total"], *(-it["scores"][k] for k in tie_break), request(it["pid"]), it["pid"])

        ordered = sorted(items, key=key)
        rid = self.plan.add("ranking_list", {
            "call_id": self.call_id, "stage": stage, "status": "approved", "created_by_id": self.secretariat,
            "created_at": at - dt.timedelta(days=1), "approved_by_id": self.secretariat, "approved_at": at})
        by_pid = {p["id"]: p for p in self.proposals}
        for n, it in enumerate(ordered, start=1):
            prev = ordered[n - 2] if n > 1 else None
            if prev is None:
                note = "highest total"
            elif prev["total"] != it["total"]:
                note = f"total {it['total']:g}, below {by_pid[prev['pid']]['acronym']} ({prev['total']:g})"
            else:
                note = f"tied with {by_pid[prev['pid']]['acronym']} on total {it['total']:g}; decided by the tie-break"
            self.plan.add("ranking_entry", {"ranking_id": rid, "proposal_id": it["pid"], "rank": n,
                                            "total": it["total"], "tie_break_note": note})
        self.event(at, self.secretariat, "ranking.approved", "rankinglist", rid, {"status": "draft"},
                   {"status": "approved", "stage": stage, "entries": len(ordered)})
        return ordered

    # -- the "decisions" snapshot -----------------------------------------------------------------

    def decisions(self) -> None:
        rng = self.rng
        ids = [p["id"] for p in self.proposals]
        ineligible = set(rng.sample(ids, self.n_ineligible))
        quality = {pid: rng.uniform(1.8, 4.9) for pid in ids}
        for proposal in self.proposals:
            reason = rng.choice(INELIGIBLE_REASONS) if proposal["id"] in ineligible else None
            self.pre_stage_until_review(proposal, reason)
        self.step_closed("pre", T.pre_decided)
        reviewed = [pid for pid in ids if pid not in ineligible]
        full_reviews = 3 * self.n_invited
        pre_assigned = self.assign("pre", reviewed, self.n_reviews - full_reviews, T.pre_assigned)
        pre_scores = self.write_reviews("pre", pre_assigned, quality, T.pre_reviews, released=False)
        pre_items = [self.consensus("pre", pid, pre_scores[pid], T.pre_consensus) for pid in reviewed]
        ordered = self.ranking("pre", pre_items, T.pre_ranking)
        invited = {it["pid"] for it in ordered[: self.n_invited]}
        by_id = {p["id"]: p for p in self.proposals}
        for pid in reviewed:
            p = by_id[pid]
            if pid in invited:
                self.move(T.invitations, self.secretariat, p, "invite", "invited")
                kind, subject = "invitation", "invited to submit a full proposal"
            else:
                self.move(T.invitations, self.secretariat, p, "not_invite", "not_invited")
                kind, subject = "decision", "not invited"
            self.mail(T.invitations, kind, self.user_email(p["coordinator_id"]),
                      f"[{self.settings.title}] {p['acronym']}: {subject}", f"Your pre-proposal: {subject}.",
                      f"{kind}:proposal:{pid}:{p['state']}")
        # The full stage.
        full_ids = sorted(invited)
        for pid in full_ids:
            p = by_id[pid]
            self.move(_at(T.start_full, rng, 5), p["coordinator_id"], p, "start_full", "full_draft")
            self.submit(p, "full", _at(T.full_submit, rng, 18), self.pre_submission[pid])
            self.move(T.full_close, self.secretariat, p, "close_submission", "full_eligibility_check")
            self.checks(p, "full", T.full_checks, spread=12)
            self.step_summary("full")["eligible"].append(
                {"id": pid, "reference": p["reference"], "acronym": p["acronym"], "state": "under_review"})
            self.move(T.full_decided, self.secretariat, p, "declare_eligible", "under_review")
        self.step_closed("full", T.full_decided)
        full_quality = {pid: _round_half(quality[pid] + rng.gauss(-0.3, 0.6)) for pid in full_ids}
        full_assigned = self.assign("full", full_ids, full_reviews, T.full_assigned)
        full_scores = self.write_reviews("full", full_assigned, full_quality, T.full_reviews, released=True)
        for pid in full_ids:
            p = by_id[pid]
            self.move(T.rebuttal_open, self.secretariat, p, "open_rebuttal", "rebuttal")
            if rng.random() < 0.7:
                at = _at(T.rebuttals, rng, 5)
                self.plan.add("rebuttal", {
                    "proposal_id": pid, "submitted_at": at, "submitted_by_id": p["coordinator_id"],
                    "text": ("We thank the reviewers. " + " ".join(rng.sample(COMMENT_PHRASES, 4)) + ". ") * 6})
                self.event(at, p["coordinator_id"], "proposal.rebuttal_submitted", "proposal", pid, None,
                           {"chars": 600})
            self.move(T.rebuttal_close, self.secretariat, p, "close_rebuttal", "panel")
        full_items = [self.consensus("full", pid, full_scores[pid], T.panel_consensus) for pid in full_ids]
        recommended = []
        for it in full_items:
            p = by_id[it["pid"]]
            if it["recommendation"] == "not_recommended":
                self.move(T.panel_decided, self.secretariat, p, "not_recommend", "not_recommended")
            else:
                self.move(T.panel_decided, self.secretariat, p, "recommend", "recommended")
                recommended.append(it)
        if recommended:
            ranked = self.ranking("full", recommended, T.full_ranking)
            self.funding(ranked, by_id)

    def funding(self, ranked: list[dict], by_id: dict[int, dict]) -> None:
        from workflow.funding import FunderBudget, Ranked, Request, allocate

        rng = self.rng
        ranking = [Ranked(it["pid"], n, by_id[it["pid"]]["reference"], by_id[it["pid"]]["acronym"],
                          it["recommendation"], float(it["total"])) for n, it in enumerate(ranked, start=1)]
        budgets = [FunderBudget(f.id, f.acronym, f.budget, 0, f.max_per_partner, f.max_per_project)
                   for f in sorted(self.funders, key=lambda f: f.acronym.casefold())]
        requests = {it["pid"]: [Request(p["id"], p["funder_id"], p["requested_amount"], p["organisation"])
                                for p in self.partners_of[it["pid"]] if not p["own_funded"]] for it in ranked}
        scenario = allocate(ranking, budgets, requests, self.settings.gap_pot)
        result = scenario.to_dict()
        sid = self.plan.add("funding_scenario", {
            "call_id": self.call_id, "revision": 1, "status": "current", "cause": "approval",
            "note": "CSC meeting of 19 September 2024, minutes item 4", "result": result,
            "result_sha256": hashlib.sha256(json.dumps(result, sort_keys=True, separators=(",", ":"),
                                                       ensure_ascii=False).encode("utf-8")).hexdigest(), "created_by_id": self.secretariat, "created_at": T.funding,
            "approved_by_id": self.secretariat, "approved_at": T.funding})
        self.event(T.funding, self.secretariat, "funding.approved", "fundingscenario", sid, None,
                   {"revision": 1, "selected": len(scenario.selected)})
        for o in scenario.outcomes:
            p = by_id[o.proposal_id]
            if not o.selected:
                self.move(T.funding, self.secretariat, p, "place_in_reserve", "reserve", o.reason)
                continue
            self.move(T.funding, self.secretariat, p, "select", "selected")
            per_funder: dict[int, int] = defaultdict(int)
            for pa in o.partners:
                self.plan.add("funding_line", {"scenario_id": sid, "proposal_id": o.proposal_id,
                                               "partner_id": pa.partner_id, "funder_id": pa.funder_id,
                                               "amount": pa.amount, "from_gap_pot": pa.from_gap_pot})
                per_funder[pa.funder_id] += pa.amount
            all_confirmed = rng.random() < 0.5
            last, last_officer = T.funding, None
            for fid, amount in sorted(per_funder.items()):
                confirmed = all_confirmed or rng.random() < 0.5
                at = _at(T.confirmations, rng, 17) if confirmed else None
                cid = self.plan.add("funding_confirmation", {
                    "call_id": self.call_id, "proposal_id": o.proposal_id, "funder_id": fid, "scenario_id": sid,
                    "amount": amount, "status": "confirmed" if confirmed else "pending", "reason": None,
                    "decided_by_id": self.officers[fid] if confirmed else None, "decided_at": at,
                    "created_at": T.funding, "version": 2 if confirmed else 1})
                if confirmed:
                    if at >= last:
                        last, last_officer = at, self.officers[fid]
                    self.event(at, self.officers[fid], "funding.confirmed", "fundingconfirmation", cid,
                               {"status": "pending"}, {"status": "confirmed", "amount": amount})
            if all_confirmed:
                self.move(last + dt.timedelta(seconds=1), last_officer, p, "fund", "funded")

    # -- the audit chain ----------------------------------------------------------------------------

    def finish_events(self) -> None:
        from workflow.audit import _digest, _plain

        self.events.sort(key=lambda e: (e[0], e[1]))
        head = self.audit_head
        seq, prev = head
        for at, _order, actor, action, otype, oid, before, after, reason in self.events:
            seq += 1
            ev = SimpleNamespace(seq=seq, at=at, actor_id=actor,
                                 actor_label=self.user_label.get(actor, "system") if actor else "system",
                                 action=action, object_type=otype, object_id=oid, call_id=self.call_id,
                                 before=_plain(before), after=_plain(after), reason=reason, prev_hash=prev)
            fields = {"seq": ev.seq, "at": ev.at.isoformat(), "actor_id": ev.actor_id, "actor_label": ev.actor_label,
                      "action": ev.action, "object_type": ev.object_type, "object_id": ev.object_id,
                      "call_id": ev.call_id, "before": ev.before, "after": ev.after, "reason": ev.reason,
                      "prev_hash": ev.prev_hash}
            digest = _digest(fields)
            self.plan.add("audit_event", {**{k: v for k, v in vars(ev).items()}, "hash": digest})
            prev = digest
        self.audit_head = (seq, prev)


# ---------------------------------------------------------------------------------------------------------
# Writing


INSERT_ORDER = (
    "user_account", "role_grant", "reviewer_invitation", "reviewer_profile", "proposal", "partner",
    "proposal_member", "conflict", "submission", "eligibility_check", "review_assignment", "review",
    "panel_consensus", "ranking_list", "ranking_entry", "rebuttal", "funding_scenario", "funding_line",
    "funding_confirmation", "outbox_message", "audit_event",
)


def _reset_sequences(conn) -> None:
    """After explicit ids, PostgreSQL's sequences must continue after them."""
    from workflow.db import Base

    for table in Base.metadata.sorted_tables:
        if "id" in table.columns and table.columns["id"].primary_key:
            conn.execute(text(
                f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                f"COALESCE((SELECT MAX(id) FROM {table.name}), 0) + 1, false)"))


def generate(url: str, proposals: int = 2000, *, partners: int | None = None, reviewers: int | None = None,
             reviews: int | None = None, extra_funders: int = 5, seed: int = 2024, snapshot: str = "decisions",
             chunk: int = 5000, quiet: bool = True) -> Summary:
    """Empty the database at `url`, generate the call into it, and say what is where."""
    from workflow.db import Base, make_session_factory
    from workflow.models import AuditHead

    started = time.perf_counter()
    gen = Generator(proposals=proposals, partners=partners, reviewers=reviewers, reviews=reviews,
                    extra_funders=extra_funders, seed=seed, snapshot=snapshot)
    engine = reset_database(url)
    create_schema(engine)
    session = make_session_factory(engine)()
    try:
        gen.build(session)
        session.flush()
        # The call's own audit event (written by load_call) is in; the chain continues after it.
        head = session.get(AuditHead, 1)
        gen.audit_head = (head.seq, head.hash)
        gen.finish_events()
        session.execute(update(AuditHead).where(AuditHead.id == 1)
                        .values(seq=gen.audit_head[0], hash=gen.audit_head[1]))
        session.commit()
    finally:
        session.close()
    tables = Base.metadata.tables
    missing = set(gen.plan.rows) - set(INSERT_ORDER)
    if missing:
        raise GeneratorOutdated(f"rows planned for tables not in INSERT_ORDER: {sorted(missing)}")
    with engine.begin() as conn:
        for name in INSERT_ORDER:
            rows = gen.plan.rows.get(name, [])
            if not rows:
                continue
            table = tables[name]
            check_rows(table, rows)
            for i in range(0, len(rows), chunk):
                conn.execute(insert(table), rows[i:i + chunk])
        if engine.dialect.name == "postgresql":
            _reset_sequences(conn)
    if engine.dialect.name == "postgresql":
        # What autovacuum does to a database whose rows came in over months: statistics for the planner and
        # the visibility map, without which a count cannot be answered from an index alone.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
    summary = _summary(gen, url)
    summary.seconds = round(time.perf_counter() - started, 2)
    engine.dispose()
    if not quiet:
        print(f"generated the {snapshot} snapshot in {summary.seconds:.1f} s: "
              + ", ".join(f"{k} {v:,}" for k, v in summary.counts.items()))
    return summary


def _summary(gen: Generator, url: str) -> Summary:
    rows = gen.plan.rows
    s = Summary(url=url, snapshot=gen.snapshot, seed=gen.seed, call_id=gen.call_id, call_code=gen.call.code,
                secretariat_id=gen.secretariat, admin_id=gen.admin)
    s.counts = {
        "proposals": len(rows["proposal"]), "partners": len(rows["partner"]), "funders": len(gen.funders),
        "reviewers": len(gen.reviewers), "reviews": len(rows.get("review", [])),
        "users": len(rows["user_account"]), "submissions": len(rows["submission"]),
        "eligibility_checks": len(rows["eligibility_check"]), "conflicts": len(rows.get("conflict", [])),
        "audit_events": len(rows.get("audit_event", [])) + 1,
    }
    s.officer_ids = {gen.funder_by_id[fid].acronym: uid for fid, uid in gen.officers.items()}
    partner_count = Counter(p["funder_id"] for p in rows["partner"] if p["funder_id"])
    busiest = max(partner_count, key=lambda fid: (partner_count[fid], -fid))
    s.busiest_funder = gen.funder_by_id[busiest].acronym
    s.check_id = next(c["id"] for c in rows["eligibility_check"] if c["funder_id"] == busiest)
    states = {p["id"]: p["state"] for p in rows["proposal"]}
    rich = [pid for pid, st in states.items() if st in ("funded", "selected", "reserve", "recommended")]
    pid = rich[0] if rich else next(iter(states))
    s.proposal_id = pid
    s.coordinator_id = next(p["coordinator_id"] for p in rows["proposal"] if p["id"] == pid)
    s.pre_proposal_id = next((p for p, st in states.items() if st in ("not_invited", "pre_review")), pid)
    s.submission_id = next(x["id"] for x in rows["submission"] if x["proposal_id"] == pid and x["stage"] == "pre")
    assignments = rows.get("review_assignment", [])
    load = Counter(a["reviewer_id"] for a in assignments)
    mine = {a["reviewer_id"] for a in assignments if a["proposal_id"] == pid and a["stage"] == "full"} \
        or {a["reviewer_id"] for a in assignments if a["proposal_id"] == pid}
    if mine:
        s.reviewer_id, s.reviewer_proposal_id = max(mine, key=lambda r: (load[r], -r)), pid
    elif assignments:
        s.reviewer_id = max(load, key=lambda r: (load[r], -r))
        s.reviewer_proposal_id = next(a["proposal_id"] for a in assignments if a["reviewer_id"] == s.reviewer_id)
    else:
        s.reviewer_id, s.reviewer_proposal_id = gen.reviewers[0].id, pid
    return s


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="database URL (emptied first!)")
    parser.add_argument("--proposals", type=int, default=FULL_SIZE["proposals"])
    parser.add_argument("--partners", type=int)
    parser.add_argument("--reviewers", type=int)
    parser.add_argument("--reviews", type=int)
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--snapshot", choices=SNAPSHOTS, default="decisions")
    args = parser.parse_args(argv)
    summary = generate(args.url, args.proposals, partners=args.partners, reviewers=args.reviewers,
                       reviews=args.reviews, seed=args.seed, snapshot=args.snapshot, quiet=False)
    print(json.dumps(summary.to_dict(), indent=2))


if __name__ == "__main__":
    main()
