"""Decision letter pages (the call secretariat's): a stage's letters, the template editor with previews,
one letter as HTML or PDF, the ZIP export with its progress page, and sending the letters after
previewing the message.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

from flask import (
    abort,
    current_app,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)

from webapp.auth import actor
from webapp.db import commit, db
from webapp.funding import bp
from webapp.funding.forms import ActionForm, TemplateForm
from webapp.views import allow, get_or_404, page_arg, refuse
from workflow.errors import ChangedMeanwhile, DomainError, InvalidInput
from workflow.models import Call, Proposal
from workflow.paging import Window, positive_int

REFRESH_SECONDS = 2


def _letters():
    """webapp.letters (WeasyPrint and the export pool load only when a letter page is used)."""
    from webapp import letters

    return letters


def _stage(call: Call, stage: str | None) -> str:
    stage = stage or call.settings.stages[-1].kind
    if stage not in ("pre", "full") or call.stage(stage) is None:
        abort(404)
    return stage


def _pdf_response(data: bytes, filename: str, *, inline: bool = True):
    response = send_file(io.BytesIO(data), mimetype="application/pdf", as_attachment=not inline,
                         download_name=filename, max_age=0)
    response.headers["Cache-Control"] = "private, no-store"
    return response


def _browser_css():
    return (url_for("static", filename="css/pdf.css"), url_for("static", filename="css/letter.css"))


# ---------------------------------------------------------------------------------------------------------
# A stage's letters


@bp.get("/calls/<int:call_id>/letters")
def letters(call_id: int):
    call = get_or_404(Call, call_id)
    allow("call.manage", call)
    L = _letters()
    from workflow import letters as wl

    stage = _stage(call, request.args.get("stage"))
    view = wl.letters_overview(db(), call, stage, page_arg())  # the counts are the whole stage's, rows a page
    return render_template(
        "funding/letters.html", call=call, stage=stage, view=view, stage_name=wl.stage_name(call, stage),
        outcome_labels=wl.OUTCOME_LABELS, jobs=wl.latest_jobs(db(), call, stage), form=ActionForm(),
        custom=wl.template_of(db(), call), stages=[s.kind for s in call.settings.stages], L=L,
        job_state=lambda j: _job_state(j),
    )


# ---------------------------------------------------------------------------------------------------------
# The template


def _sample_choices(call: Call) -> list[tuple[str, str]]:
    from workflow import letters as wl

    choices = []
    for stage in [s.kind for s in call.settings.stages]:
        for outcome in wl.STAGE_OUTCOMES[stage]:
            choices.append((f"sample:{stage}:{outcome}", f"Sample data: {wl.stage_name(call, stage)} stage, "
                                                         f"{wl.OUTCOME_LABELS[outcome].lower()}"))
        for p, outcome in wl.stage_letters(db(), call, stage, summary=True).items[:100]:
            choices.append((f"proposal:{stage}:{p.id}", f"{p.reference} {p.acronym} ({wl.stage_name(call, stage)} "
                                                        f"stage, {wl.OUTCOME_LABELS[outcome].lower()})"))
    return choices


def _preview_parts(L, call: Call, sample: str, source: str):
    """(data, body) of the letter for the chosen sample (made-up data or a real proposal), with `source`."""
    kind, stage, rest = (sample.split(":", 2) + ["", ""])[:3]
    if kind == "proposal" and positive_int(rest) is not None:
        proposal = db().get(Proposal, positive_int(rest))
        if proposal is None or proposal.call_id != call.id or stage not in ("pre", "full"):
            raise InvalidInput("choose a proposal of this call to preview", "sample")
        return L.letter_parts(db(), proposal, stage, source=source)
    from workflow.letters import STAGE_OUTCOMES

    if kind != "sample" or stage not in STAGE_OUTCOMES or rest not in STAGE_OUTCOMES[stage]:
        raise InvalidInput("choose what to preview the letter with", "sample")
    return L.sample_parts(call, stage, rest, source)


def _template_page(call: Call, form: TemplateForm, *, preview: str | None = None, code: int = 200):
    L = _letters()
    from workflow import letters as wl

    row = wl.template_of(db(), call)
    form.sample.choices = _sample_choices(call)
    if not form.sample.data:
        form.sample.data = form.sample.choices[0][0] if form.sample.choices else ""
    return render_template("funding/letter_template.html", call=call, form=form, row=row, preview=preview,
                           variables=L.VARIABLES, max_chars=wl.MAX_TEMPLATE_CHARS,
                           default=L.default_body()), code


@bp.get("/calls/<int:call_id>/letters/template")
def letter_template(call_id: int):
    call = get_or_404(Call, call_id)
    allow("call.manage", call)
    L = _letters()
    source, _sha = L.template_source(db(), call)
    from workflow.letters import template_of

    row = template_of(db(), call)
    form = TemplateForm(formdata=None, data={"source": source, "version": str(row.version) if row else ""})
    return _template_page(call, form)


@bp.post("/calls/<int:call_id>/letters/template")
def letter_template_post(call_id: int):
    call = get_or_404(Call, call_id)
    allow("call.manage", call)
    L = _letters()
    from workflow import letters as wl

    form = TemplateForm()
    form.sample.choices = _sample_choices(call)
    if not form.validate_on_submit():
        return _template_page(call, form, code=422)
    if form.reset.data:
        form.source.data = L.default_body()
    source = form.source.data or ""
    if form.preview.data or form.preview_pdf.data:
        try:
            data, body = _preview_parts(L, call, form.sample.data, source)
        except DomainError as err:
            refuse(form, err)
            return _template_page(call, form, code=422)
        if form.preview_pdf.data:
            return _pdf_response(L.pdf_of_html(L.compose(data, body)), "letter-preview.pdf")
        return _template_page(call, form, preview=body)  # the body inside the page; the PDF shows the whole letter
    try:
        L.validate_body(source, call)
        wl.save_template(db(), actor(), call, source, expected_version=form.expected_version())
        commit()
    except ChangedMeanwhile as err:
        refuse(form, err)
        row = wl.template_of(db(), call)
        form.version.data = str(row.version) if row else ""
        return _template_page(call, form, code=409)
    except DomainError as err:
        refuse(form, err)
        return _template_page(call, form, code=422)
    flash("The letter template was saved" + (" (reset to the default)" if form.reset.data else "")
          + ". Letters not sent yet use it from the next export.", "success")
    return redirect(url_for(".letter_template", call_id=call.id))


# ---------------------------------------------------------------------------------------------------------
# One letter


@bp.get("/calls/<int:call_id>/letters/<stage>/<int:proposal_id>.<fmt>")
def letter_preview(call_id: int, stage: str, proposal_id: int, fmt: str):
    call = get_or_404(Call, call_id)
    allow("call.manage", call)
    L = _letters()
    stage = _stage(call, stage)
    proposal = get_or_404(Proposal, proposal_id)
    if proposal.call_id != call.id or fmt not in ("html", "pdf"):
        abort(404)
    from workflow.letters import letter_of

    stored = letter_of(db(), proposal, stage)
    filename = L.zip_entry_name(proposal, stage)
    if fmt == "pdf" and stored is not None and stored.sent:
        return _pdf_response(stored.pdf, filename)  # what the coordinator received
    try:
        if fmt == "pdf":
            return _pdf_response(L.letter_pdf(db(), proposal, stage), filename)
        html = L.letter_html(db(), proposal, stage, stylesheets=_browser_css())
    except DomainError as err:
        abort(make_response(render_template("error.html", title="No letter to show", message=str(err)), 409))
    response = make_response(html)
    response.headers["Content-Type"] = "text/html; charset=utf-8"
    return response


# ---------------------------------------------------------------------------------------------------------
# Export jobs


def _job_state(job) -> str:
    """"queued", "running", "interrupted", "done" or "failed" as the page says it."""
    from webapp.letters import running_here
    from workflow.letters import job_is_stale

    if job.status in ("queued", "running") and not running_here(job.id) and job_is_stale(job):
        return "interrupted"
    return job.status


@bp.post("/calls/<int:call_id>/letters/<stage>/export")
def letters_export(call_id: int, stage: str):
    call = get_or_404(Call, call_id)
    allow("call.manage", call)
    L = _letters()
    from workflow.letters import active_job, create_export_job

    stage = _stage(call, stage)
    form = ActionForm()
    if not form.validate_on_submit():
        flash("The form expired; nothing was started. Try again.", "danger")
        return redirect(url_for(".letters", call_id=call.id, stage=stage))
    try:
        running = active_job(db(), call, stage)  # one export of a stage at a time: show the running one
        job = create_export_job(db(), actor(), call, stage)
        job_id, fresh = job.id, running is None
        commit()
    except DomainError as err:
        refuse(None, err)
        return redirect(url_for(".letters", call_id=call.id, stage=stage))
    if fresh:
        L.start_export(current_app._get_current_object(), job_id)
    return redirect(url_for(".letter_job", job_id=job_id))


def _job(job_id: int):
    from workflow.letter_models import LetterExportJob

    job = get_or_404(LetterExportJob, job_id)
    allow("call.manage", job.call)
    return job


@bp.get("/letter-jobs/<int:job_id>")
def letter_job(job_id: int):
    _letters()
    job = _job(job_id)
    from workflow.letters import stage_name

    state = _job_state(job)
    response = make_response(render_template(
        "funding/letter_job.html", job=job, call=job.call, state=state, form=ActionForm(),
        stage_name=stage_name(job.call, job.stage), refresh=REFRESH_SECONDS if state in ("queued", "running") else None))
    if state in ("queued", "running"):
        response.headers["Refresh"] = str(REFRESH_SECONDS)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/letter-jobs/<int:job_id>/restart")
def letter_job_restart(job_id: int):
    L = _letters()
    job = _job(job_id)
    from workflow.letters import restart_export_job

    form = ActionForm()
    if not form.validate_on_submit():
        flash("The form expired; nothing was restarted. Try again.", "danger")
        return redirect(url_for(".letter_job", job_id=job.id))
    if L.running_here(job.id):
        flash("This export is still running.", "info")
        return redirect(url_for(".letter_job", job_id=job.id))
    try:
        restart_export_job(db(), actor(), job)
        commit()
    except DomainError as err:
        refuse(None, err)
        return redirect(url_for(".letter_job", job_id=job_id))
    L.start_export(current_app._get_current_object(), job_id)
    flash("The export was started again from the first letter.", "info")
    return redirect(url_for(".letter_job", job_id=job_id))


@bp.get("/letter-jobs/<int:job_id>/download")
def letter_job_download(job_id: int):
    _letters()
    job = _job(job_id)
    if job.status != "done" or not job.file_key:
        abort(404)
    path = Path(current_app.config["JOINTCALL"]["storage_dir"]) / job.file_key
    if not path.is_file():
        abort(404)
    response = send_file(path, mimetype="application/zip", as_attachment=True,
                         download_name=f"{job.call.code}-{job.stage}-letters.zip", max_age=0)
    response.headers["Cache-Control"] = "private, no-store"
    return response


# ---------------------------------------------------------------------------------------------------------
# Sending


def _link_for(proposal: Proposal) -> str:
    base = current_app.config["JOINTCALL"].get("base_url", "").rstrip("/")
    return base + url_for("applicant.decision", proposal_id=proposal.id)


def _send_fingerprint(letters) -> str:
    return hashlib.sha256(",".join(f"{x.id}:{x.version}" for x in letters).encode()).hexdigest()[:32]


def _send_page(call: Call, stage: str, form: ActionForm, code: int = 200):
    _letters()
    from workflow import letters as wl

    view = wl.stage_letters(db(), call, stage, summary=True)
    to_send = view.to_send
    shown = Window(len(to_send), page_arg())  # sending sends them all; the page lists 50 at a time
    sample = None
    if to_send:
        first = to_send[0]
        subject, body = wl.letter_mail(call, first.proposal, stage, first.outcome, _link_for(first.proposal))
        sample = {"to": first.proposal.coordinator.email, "subject": subject, "body": body}
    if code == 200 or not form.fingerprint.data:
        form.fingerprint.data = _send_fingerprint(to_send)
    return render_template("funding/letters_send.html", call=call, stage=stage, view=view, to_send=to_send,
                           shown=shown, recipients=shown.slice(to_send), sample=sample, form=form,
                           stage_name=wl.stage_name(call, stage),
                           outcome_labels=wl.OUTCOME_LABELS), code


@bp.get("/calls/<int:call_id>/letters/<stage>/send")
def letters_send(call_id: int, stage: str):
    call = get_or_404(Call, call_id)
    allow("call.manage", call)
    return _send_page(call, _stage(call, stage), ActionForm())


@bp.post("/calls/<int:call_id>/letters/<stage>/send")
def letters_send_post(call_id: int, stage: str):
    call = get_or_404(Call, call_id)
    allow("call.manage", call)
    _letters()
    from workflow import letters as wl

    stage = _stage(call, stage)
    form = ActionForm()
    if not form.validate_on_submit():
        return _send_page(call, stage, form, 422)
    if form.fingerprint.data != _send_fingerprint(wl.stage_letters(db(), call, stage, summary=True).to_send):
        flash("The letters to send changed since this page was shown; check the preview again. Nothing was sent.",
              "danger")
        form.fingerprint.data = ""
        return _send_page(call, stage, form, 409)
    try:
        sent = wl.send_letters(db(), actor(), call, stage, link_for=_link_for)
        n = len(sent)
        commit()
    except DomainError as err:
        refuse(None, err)
        return _send_page(call, stage, form, 422)
    flash(f"{n} decision letter{'s were' if n != 1 else ' was'} sent to the coordinators; each can also download "
          "it from the proposal's decision page.", "success")
    return redirect(url_for(".letters", call_id=call.id, stage=stage))
