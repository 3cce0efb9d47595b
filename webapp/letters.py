"""Decision letters as PDF: the letter's data, the secretariat's template rendered in a sandbox, the A4
frame, WeasyPrint in parallel processes, and the ZIP export jobs (web and `jointcall export-letters`).

The template. The secretariat edits the letter's body (greeting to signature) as a Jinja template. It runs
in `jinja2.sandbox.ImmutableSandboxedEnvironment` with autoescape (values such as a proposal title are
escaped; the template's own HTML is kept), `StrictUndefined` (a misspelt variable is an error, not an
empty string), no loader (no include, import or extends), no access to internals (``''.__class__`` is
refused), no mutation of the data, no power operator and no huge repetitions. Every variable is plain
data (numbers, strings, lists of simple records), never a database row. A template is at most
`workflow.letters.MAX_TEMPLATE_CHARS` long, and is checked before it is saved by rendering it for every
decision the call's stages can give; the error is shown next to the field. The frame around the body
(letterhead, address, reference, footer) is the app's own template, pdf/letter.html.

No remote fetches. PDFs are rendered by `webapp.pdfs.html_to_pdf`, whose URL fetcher refuses any URL but the
app's static files, so ``<img src="https://...">`` in a template makes no request.

Export. A job renders a stage's letters into one ZIP (one PDF per proposal): the letters' HTML is built
in the job's thread, WeasyPrint runs in a Pool of 2 processes (forkserver: the server process is
threaded), each letter is kept in the database as it is done and the job row counts them, so the page
shows "n of N letters". The ZIP is written to a hidden temporary file and renamed into place only when
complete: a crashed or interrupted job never leaves a half-written ZIP visible, and it can be restarted
cleanly (a new attempt; the old run's writes are ignored). The web starts the job in a background thread;
`jointcall export-letters` runs the same function in the foreground and prints the progress.
"""

from __future__ import annotations

import hashlib
import logging
import multiprocessing
import os
import re
import threading
import zipfile
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

from jinja2 import Environment, FileSystemLoader, StrictUndefined, TemplateError, TemplateSyntaxError
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError
from markupsafe import Markup

from workflow.countries import country_name
from workflow.timefmt import format_eur, format_instant

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).resolve().parent / "templates"
DEFAULT_BODY_FILE = TEMPLATES / "funding" / "letter_body_default.html"
PDF_STYLESHEETS = ("css/letter.css",)  # relative to webapp.pdfs.BASE_URL (the static folder)
MAX_OUTPUT_CHARS = 400_000  # the rendered body
MAX_REPEAT = 10_000  # "x" * n in a template
PROCESSES = 2  # PLATFORM.md §2: a Pool of 2 is the fastest on two cores
# WeasyPrint keeps caches (fonts, images, layout) that grow with every document a process renders: a
# worker is replaced after this many letters so an export of thousands stays in flat memory. A new worker
# starts from the forkserver's preloaded modules, so the replacement costs little.
LETTERS_PER_WORKER = 100


def default_body() -> str:
    return DEFAULT_BODY_FILE.read_text(encoding="utf-8")


def fmt_score(value) -> str:
    if value is None:
        return "–"
    return f"{float(value):.2f}".rstrip("0").rstrip(".")


# ---------------------------------------------------------------------------------------------------------
# The sandbox


class LetterSandbox(ImmutableSandboxedEnvironment):
    """The secretariat's letter templates run here (see the module docstring)."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context, operator, left, right):
        if operator == "**":
            raise SecurityError("the power operator is not available in letter templates")
        for seq, times in ((left, right), (right, left)):
            if isinstance(seq, str | list | tuple) and isinstance(times, int) and times > MAX_REPEAT:
                raise SecurityError(f"repeating text more than {MAX_REPEAT:,} times is not allowed")
        return super().call_binop(context, operator, left, right)


def _sandbox() -> LetterSandbox:
    env = LetterSandbox(autoescape=True, undefined=StrictUndefined, loader=None)
    env.filters.update(eur=format_eur, country=country_name, score=fmt_score)
    return env


_SANDBOX = _sandbox()


def _invalid(message: str):
    from workflow.errors import InvalidInput

    return InvalidInput(message, "source")


def _explain(err: Exception, when: str = "") -> str:
    prefix = f"{when}: " if when else ""
    if isinstance(err, TemplateSyntaxError):
        return f"{prefix}line {err.lineno}: {err.message}"
    if isinstance(err, SecurityError):
        return f"{prefix}not allowed in a letter template: {err}"
    if isinstance(err, TemplateError):
        message = err.message or str(err)
        if "no loader" in message or "loader" in message:
            return f"{prefix}letter templates cannot include, import or extend other templates"
        if message.startswith("'None' has no attribute"):
            return (f"{prefix}{message}: that variable is empty for this decision; use it inside "
                    "{% if ... %} (e.g. {% if funding %})")
        message = message.replace("'types.SimpleNamespace object'", "the value")
        return f"{prefix}{message}; see the variables listed beside the editor"
    if isinstance(err, TypeError) and "no loader" in str(err):
        return f"{prefix}letter templates cannot include, import or extend other templates"
    if isinstance(err, OverflowError):
        return f"{prefix}not allowed in a letter template: {err}"
    return f"{prefix}the template fails when rendered ({type(err).__name__}: {err})"


def compile_body(source: str):
    """The template, or InvalidInput (field "source") saying what is wrong and where."""
    from workflow.letters import check_template_size

    source = check_template_size(source)
    try:
        return _SANDBOX.from_string(source)
    except TemplateSyntaxError as err:
        raise _invalid(_explain(err)) from None
    except TemplateError as err:
        raise _invalid(_explain(err)) from None


def render_body(template, data: dict, *, when: str = "") -> Markup:
    try:
        text = template.render(**data)
    except Exception as err:  # noqa: BLE001 - any failure of the secretariat's template is their message
        raise _invalid(_explain(err, when)) from None
    if len(text) > MAX_OUTPUT_CHARS:
        raise _invalid(f"{when + ': ' if when else ''}the letter would have {len(text):,} characters; at most "
                       f"{MAX_OUTPUT_CHARS:,} are allowed")
    return Markup(text)


def validate_body(source: str, call) -> None:
    """Compile the template and render it for every decision of the call's stages, on sample data."""
    from workflow.letters import OUTCOME_LABELS, STAGE_OUTCOMES

    template = compile_body(source)
    for stage in [s.kind for s in call.settings.stages]:
        for outcome in STAGE_OUTCOMES[stage]:
            render_body(template, sample_data(call, stage, outcome),
                        when=f"in a letter '{OUTCOME_LABELS[outcome].lower()}'")


# ---------------------------------------------------------------------------------------------------------
# The letter's data


VARIABLES = (
    ("call.title, call.code", "the call"),
    ("proposal.reference, proposal.acronym, proposal.title", "the proposal"),
    ("coordinator.name, coordinator.email, coordinator.organisation", "the addressee"),
    ("stage, stage_name", '"pre" or "full"; "pre-proposal", "full proposal" or "proposal"'),
    ("outcome, outcome_label", '"not_eligible", "not_invited", "invited", "funded", "reserve" or "not_funded"'),
    ("date", "the letter's date, e.g. 14 October 2030"),
    ("reasons", "not eligible: the reasons recorded in the eligibility check (a list of texts)"),
    ("full_deadline", "invited: the full-proposal deadline, in the call's time zone"),
    ("evaluation", "None, or .scores (each .criterion, .score), .total, .max_total, .recommendation, .summary"),
    ("reviews", "the reviewers' comments: each .label (\"Reviewer 1\") and .comments (each .criterion, .text)"),
    ("funding", "funded: .lines (each .organisation, .country, .pi, .funder, .funder_name, .amount, "
                ".national_contact), .total"),
    ("reserve", "reserve: .position on the reserve list and .rank"),
    ("signature", "who signs"),
    ("filters", "|eur (€120,000), |country (DE → Germany), |score (4.50 → 4.5)"),
)


def _ns(**kwargs) -> SimpleNamespace:
    return SimpleNamespace(**kwargs)


def _coordinator(proposal) -> SimpleNamespace:
    user = proposal.coordinator
    partner = proposal.coordinator_partner
    organisation = partner.organisation if partner is not None else (user.organisation or "")
    return _ns(name=user.name, email=user.email, organisation=organisation)


def _reasons(session, proposal, stage: str) -> list[str]:
    from sqlalchemy import select

    from workflow.models import EligibilityCheck

    checks = session.scalars(select(EligibilityCheck).where(
        EligibilityCheck.proposal_id == proposal.id, EligibilityCheck.stage == stage,
        EligibilityCheck.status == "ineligible").order_by(EligibilityCheck.id)).all()
    out = []
    for c in checks:
        if c.partner_id is None:
            out.append(f"Call secretariat (formal check): {c.reason}")
        else:
            funder = c.partner.funder.acronym if c.partner.funder else "the funder"
            out.append(f"{funder}, for {c.partner.organisation}: {c.reason}")
    return out


def _evaluation(session, proposal, stage: str) -> SimpleNamespace | None:
    from webapp.funding.evaluation import RECOMMENDATION_LABELS, consensus

    c = consensus(session, proposal, stage)
    if c is None:
        return None
    ev = proposal.call.settings.evaluation
    scores = c.scores or {}
    return _ns(
        scores=[_ns(criterion=cr.name, score=scores.get(cr.key)) for cr in ev.criteria],
        total=c.weighted_total, max_total=ev.max_total,
        recommendation=RECOMMENDATION_LABELS.get(c.recommendation, c.recommendation),
        summary=(c.summary or "").strip(),
    )


def _funding(session, proposal) -> SimpleNamespace:
    from sqlalchemy import select

    from workflow.funding_ops import funding_lines
    from workflow.models import CallFunder

    call = proposal.call
    contacts = dict(session.execute(select(CallFunder.funder_id, CallFunder.national_contact)
                                    .where(CallFunder.call_id == call.id)).all())
    lines = []
    for line in funding_lines(session, call, proposal_id=proposal.id):
        partner = line.partner
        lines.append(_ns(organisation=partner.organisation, country=partner.country, pi=partner.pi_name,
                         funder=line.funder.acronym, funder_name=line.funder.name, amount=line.amount,
                         from_gap_pot=line.from_gap_pot, national_contact=contacts.get(line.funder_id) or ""))
    return _ns(lines=lines, total=sum(x.amount for x in lines))


def _reserve(session, proposal) -> SimpleNamespace | None:
    from workflow.funding_ops import current_funding

    current = current_funding(session, proposal.call)
    if current is None or proposal.id not in current.scenario:
        return None
    reserve = current.scenario.reserve_list
    position = next((i for i, o in enumerate(reserve, start=1) if o.proposal_id == proposal.id), None)
    return _ns(position=position, rank=current.scenario.outcome(proposal.id).rank)


def letter_data(session, proposal, stage: str, outcome: str, *, now=None) -> dict:
    """Everything a letter may show, as plain data (the sandbox's variables)."""
    from webapp.funding.evaluation import anonymised_reviews
    from workflow.clock import utcnow
    from workflow.letters import FUNDED, INVITED, NOT_ELIGIBLE, OUTCOME_LABELS, RESERVE, stage_name

    call = proposal.call
    zone = call.time_zone
    full = call.stage("full")
    return dict(
        call=_ns(title=call.settings.title, code=call.code),
        proposal=_ns(reference=proposal.reference, acronym=proposal.acronym, title=proposal.title),
        coordinator=_coordinator(proposal),
        stage=stage, stage_name=stage_name(call, stage),
        outcome=outcome, outcome_label=OUTCOME_LABELS[outcome],
        date=format_instant(now or utcnow(), zone, "d MMMM y"),
        reasons=_reasons(session, proposal, stage) if outcome == NOT_ELIGIBLE else [],
        full_deadline=format_instant(full.deadline, zone) if outcome == INVITED and full is not None else "",
        evaluation=_evaluation(session, proposal, stage),
        reviews=anonymised_reviews(session, proposal, stage),
        funding=_funding(session, proposal) if outcome == FUNDED else None,
        reserve=_reserve(session, proposal) if outcome == RESERVE else None,
        signature="The Joint Call Secretariat",
    )


def sample_data(call, stage: str, outcome: str) -> dict:
    """Made-up data of the same shape, to check and preview a template without a real proposal."""
    from workflow.letters import FUNDED, INVITED, NOT_ELIGIBLE, OUTCOME_LABELS, RESERVE, stage_name

    criteria = call.settings.evaluation.criteria
    return dict(
        call=_ns(title=call.settings.title, code=call.code),
        proposal=_ns(reference="SAMPLE-0001", acronym="SAMPLE", title="A sample proposal on personalised medicine"),
        coordinator=_ns(name="Zoë García", email="zoe.garcia@example.org", organisation="Hospital Clínic de Barcelona"),
        stage=stage, stage_name=stage_name(call, stage), outcome=outcome, outcome_label=OUTCOME_LABELS[outcome],
        date="14 October 2030",
        reasons=["Call secretariat (formal check): the consortium has only two eligible partners"]
        if outcome == NOT_ELIGIBLE else [],
        full_deadline="20 June 2030, 17:00 CEST" if outcome == INVITED else "",
        evaluation=_ns(scores=[_ns(criterion=c.name, score=4.0) for c in criteria],
                       total=4.0 * sum(c.weight for c in criteria), max_total=call.settings.evaluation.max_total,
                       recommendation="Recommended", summary="A convincing consortium with a clear plan."),
        reviews=[_ns(label="Reviewer 1", comments=[_ns(criterion=criteria[0].name, text="Original and feasible.")])],
        funding=_ns(lines=[_ns(organisation="Hospital Clínic de Barcelona", country="ES", pi="Zoë García",
                               funder="ISCIII", funder_name="Instituto de Salud Carlos III", amount=250_000,
                               from_gap_pot=0, national_contact="Dr. Ana Ruiz <ana.ruiz@example.org>"),
                           _ns(organisation="Uniwersytet Warszawski", country="PL", pi="Łucja Wójcik",
                               funder="NCBR", funder_name="National Centre for Research and Development",
                               amount=180_000, from_gap_pot=0, national_contact="")],
                    total=430_000) if outcome == FUNDED else None,
        reserve=_ns(position=1, rank=4) if outcome == RESERVE else None,
        signature="The Joint Call Secretariat",
    )


# ---------------------------------------------------------------------------------------------------------
# The whole letter: frame + body


def _frame_env() -> Environment:
    env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=True, undefined=StrictUndefined)
    env.filters.update(eur=format_eur, country=country_name, score=fmt_score)
    return env


_FRAME = _frame_env()


def template_source(session, call) -> tuple[str, str]:
    """(the call's template source, its SHA-256): the saved one, or the default."""
    from workflow.letters import sha256_text, template_of

    row = template_of(session, call)
    source = row.source if row is not None else default_body()
    return source, sha256_text(source)


def compose(data: dict, body: Markup, stylesheets=PDF_STYLESHEETS) -> str:
    return _FRAME.get_template("pdf/letter.html").render(body=body, stylesheets=list(stylesheets), **data)


def letter_parts(session, proposal, stage: str, *, source: str | None = None, template=None,
                 outcome: str | None = None) -> tuple[dict, Markup]:
    """(the letter's data, its rendered body). Raises DomainError when the proposal has no letter at that
    stage and InvalidInput (field "source") when the template fails for it."""
    from workflow.errors import DomainError
    from workflow.letters import letter_outcome, stage_name

    outcome = outcome or letter_outcome(proposal, stage)
    if outcome is None:
        raise DomainError(f"{proposal.reference} {proposal.acronym} has no decision letter at the "
                          f"{stage_name(proposal.call, stage)} stage yet")
    if template is None:
        template = compile_body(source if source is not None else template_source(session, proposal.call)[0])
    data = letter_data(session, proposal, stage, outcome)
    return data, render_body(template, data, when=f"the letter of {proposal.reference}")


def letter_html(session, proposal, stage: str, *, stylesheets=PDF_STYLESHEETS, **kwargs) -> str:
    """The letter of `proposal` at `stage` as HTML (see letter_parts)."""
    data, body = letter_parts(session, proposal, stage, **kwargs)
    return compose(data, body, stylesheets)


def sample_parts(call, stage: str, outcome: str, source: str) -> tuple[dict, Markup]:
    data = sample_data(call, stage, outcome)
    return data, render_body(compile_body(source), data)


def sample_html(call, stage: str, outcome: str, source: str, stylesheets=PDF_STYLESHEETS) -> str:
    data, body = sample_parts(call, stage, outcome, source)
    return compose(data, body, stylesheets)


def pdf_of_html(html: str) -> bytes:
    """One letter's PDF (run in the pool's processes). Remote URLs are refused by the fetcher."""
    from webapp.pdfs import html_to_pdf

    return html_to_pdf(html)


def letter_pdf(session, proposal, stage: str, **kwargs) -> bytes:
    return pdf_of_html(letter_html(session, proposal, stage, **kwargs))


def zip_entry_name(proposal, stage: str) -> str:
    name = f"{proposal.reference}-{stage}-{proposal.acronym}"
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-") + ".pdf"


# ---------------------------------------------------------------------------------------------------------
# Export jobs


class Superseded(Exception):
    """The job was restarted while this run was going: this run stops and leaves no file."""


class _Serial:
    """Rendering in the calling thread (processes=0): the pool's interface, for tests and small runs."""

    def imap(self, fn, items, chunksize=1):
        return map(fn, items)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _pool(processes: int):
    if processes <= 0:
        return _Serial()
    ctx = multiprocessing.get_context("forkserver")  # never fork a threaded server process
    ctx.set_forkserver_preload(["webapp.letters", "webapp.pdfs"])  # workers start with WeasyPrint loaded
    return ctx.Pool(processes, maxtasksperchild=LETTERS_PER_WORKER)


def _job_paths(job, call, storage_dir: str | None, dest: str | os.PathLike | None) -> tuple[Path, str | None]:
    if dest is not None:
        return Path(dest).resolve(), None
    key = f"letters/{call.code}/{call.code}-{job.stage}-letters-{job.id}.zip"
    return Path(storage_dir) / key, key


def _clean_parts(final: Path) -> None:
    for leftover in final.parent.glob(f".{final.name}.*.part"):
        try:
            leftover.unlink()
        except OSError:
            pass


def run_export(session_factory, job_id: int, *, storage_dir: str | None = None, dest=None,
               processes: int = PROCESSES, progress: Callable[[int, int], None] | None = None) -> Path | None:
    """Render every letter of the job's stage into its ZIP and record the letters. Returns the ZIP's path,
    or None when the job was restarted meanwhile. On failure, marks the job failed and raises."""
    from workflow.errors import DomainError
    from workflow.letter_models import LetterExportJob
    from workflow.letters import (
        job_failed,
        job_finished,
        job_progress,
        job_started,
        stage_letters,
        store_letter,
    )

    session = session_factory()
    tmp: Path | None = None
    attempt = None
    try:
        job = session.get(LetterExportJob, job_id)
        if job is None:
            raise DomainError(f"there is no export job #{job_id}")
        attempt, call, stage = job.attempt, job.call, job.stage
        final, file_key = _job_paths(job, call, storage_dir, dest)
        final.parent.mkdir(parents=True, exist_ok=True)
        _clean_parts(final)  # what an earlier, interrupted attempt left
        tmp = final.parent / f".{final.name}.{job_id}-{attempt}.part"

        view = stage_letters(session, call, stage)
        if view.problem is not None:
            raise DomainError(view.problem)
        source, template_sha = template_source(session, call)
        template = compile_body(source)
        plan = []  # (proposal, outcome, stored pdf or None, html or None)
        for proposal, outcome in view.items:
            letter = view.letters.get(proposal.id)
            if letter is not None and letter.sent:
                plan.append((proposal, letter.outcome, letter.pdf, None))  # a sent letter is kept as sent
            else:
                plan.append((proposal, outcome, None, letter_html(session, proposal, stage, template=template,
                                                                  outcome=outcome)))
        total = len(plan)
        if not job_started(session, job_id, attempt, total):
            raise Superseded()
        session.commit()
        if progress:
            progress(0, total)

        entries = []
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf, _pool(processes) as pool:
            rendered = pool.imap(pdf_of_html, [html for *_, html in plan if html is not None], chunksize=1)
            for done, (proposal, outcome, stored, html) in enumerate(plan, start=1):
                pdf = stored if html is None else next(rendered)
                name = zip_entry_name(proposal, stage)
                zf.writestr(name, pdf)
                if html is not None:
                    store_letter(session, job, proposal, outcome, pdf, template_sha)
                entries.append({"reference": proposal.reference, "outcome": outcome, "file": name,
                                "sha256": hashlib.sha256(pdf).hexdigest()})
                if not job_progress(session, job_id, attempt, done):
                    raise Superseded()
                session.commit()
                if progress:
                    progress(done, total)
        with zipfile.ZipFile(tmp) as check:  # a complete, readable archive before it becomes visible
            if check.testzip() is not None or len(check.namelist()) != total:
                raise DomainError("the ZIP did not come out complete")
        digest = hashlib.sha256(tmp.read_bytes()).hexdigest()
        size = tmp.stat().st_size
        os.replace(tmp, final)
        tmp = None
        if not job_finished(session, job_id, attempt, file_key=file_key, size_bytes=size, sha256=digest,
                            letters=entries):
            raise Superseded()
        session.commit()
        return final
    except Superseded:
        session.rollback()
        return None
    except BaseException as err:
        session.rollback()
        if attempt is not None:
            message = str(err) if isinstance(err, DomainError) else f"{type(err).__name__}: {err}"
            try:
                job_failed(session, job_id, attempt, message or type(err).__name__)
                session.commit()
            except Exception:  # noqa: BLE001 - the database itself may be the problem
                session.rollback()
                log.exception("could not mark letter export job %s failed", job_id)
        raise
    finally:
        if tmp is not None:
            try:
                tmp.unlink(missing_ok=True)
            except OSError:
                pass
        session.close()


_running: set[int] = set()
_running_lock = threading.Lock()


def running_here(job_id: int) -> bool:
    with _running_lock:
        return job_id in _running


def start_export(app, job_id: int) -> threading.Thread | None:
    """Run the job in a background thread of this server process (once per job at a time)."""
    with _running_lock:
        if job_id in _running:
            return None
        _running.add(job_id)
    settings = app.config["JOINTCALL"]
    factory = app.extensions["jointcall.sessions"]

    def work():
        try:
            run_export(factory, job_id, storage_dir=settings["storage_dir"],
                       processes=int(settings.get("letter_processes", PROCESSES)))
        except Exception:  # noqa: BLE001 - recorded on the job row; the page shows it
            app.logger.exception("letter export job %s failed", job_id)
        finally:
            with _running_lock:
                _running.discard(job_id)

    thread = threading.Thread(target=work, name=f"letters-export-{job_id}", daemon=True)
    thread.start()
    return thread
