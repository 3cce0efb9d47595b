"""Applicant views: the documents of a proposal (typed PDF uploads per stage, every version kept) and their
download by the people the access policy allows."""

from __future__ import annotations

import io

from flask import abort, current_app, flash, redirect, render_template, request, send_file, url_for

from webapp.applicant import bp
from webapp.applicant.submission_forms import UploadForm
from webapp.auth import actor
from webapp.db import commit, db
from webapp.views import allow, get_or_404, refuse
from workflow import documents as docs
from workflow.access import can
from workflow.errors import DomainError, NotFound
from workflow.models import Proposal

STAGE_TITLES = {"pre": "Pre-proposal", "full": "Full proposal"}


def _storage_dir() -> str:
    return current_app.config["JOINTCALL"]["storage_dir"]


def documents_overview(proposal: Proposal, user=None) -> dict:
    """What the documents panel and page show: the current stage's limits and documents, earlier stages'."""
    call = proposal.call
    stage = docs.current_stage(proposal)
    stage_def = call.settings.stage(stage) or call.settings.stages[-1]
    stages = [s.kind for s in call.stages]
    earlier = [k for k in stages[: stages.index(stage)]] if stage in stages else []
    return {
        "stage": stage,
        "stage_title": STAGE_TITLES.get(stage, stage),
        "max_upload_mb": stage_def.max_upload_mb,
        "page_limits": [(docs.kind_label(k), n) for k, n in stage_def.page_limits.items()],
        "slots": docs.document_slots(db(), proposal, stage),
        "earlier": [(STAGE_TITLES.get(k, k), docs.document_slots(db(), proposal, k)) for k in earlier],
        "can_upload": can(user, "proposal.upload", proposal),
    }


@bp.route("/proposals/<int:proposal_id>/documents", methods=["GET", "POST"])
def documents(proposal_id: int):
    proposal = get_or_404(Proposal, proposal_id)
    allow("proposal.view", proposal)
    form = UploadForm()
    form.set_partners(proposal.partners)
    status = 200
    if request.method == "POST":
        allow("proposal.upload", proposal)
        if form.validate_on_submit():
            upload = form.file.data
            stage_def = proposal.call.settings.stage(docs.current_stage(proposal)) or proposal.call.settings.stages[-1]
            # Read one byte more than allowed: enough to tell "too large" without holding a huge file.
            data = upload.stream.read(stage_def.max_upload_mb * docs.MB + 1)
            try:
                doc = docs.upload_document(
                    db(), actor(), proposal, kind=form.kind.data, partner_id=form.partner_id, data=data,
                    filename=upload.filename, storage_dir=_storage_dir(),
                )
                commit()
            except DomainError as err:
                refuse(form, err)
            else:
                flash(f"{docs.kind_label(doc.kind)} uploaded: {doc.filename}, version {doc.version}, "
                      f"{doc.page_count} page{'s' if doc.page_count != 1 else ''}.", "success")
                return redirect(url_for("applicant.proposal", proposal_id=proposal.id))
        status = 422
    return render_template("applicant/documents.html", proposal=proposal, call=proposal.call, actor=actor(),
                           form=form, info=documents_overview(proposal, actor())), status


@bp.route("/proposals/<int:proposal_id>/documents/<int:document_id>")
def download_document(proposal_id: int, document_id: int):
    proposal = get_or_404(Proposal, proposal_id)
    allow("document.download", proposal)
    try:
        doc = docs.get_document(db(), proposal, document_id)
        data = docs.read_document(_storage_dir(), doc)
    except NotFound as err:
        abort(404, description=str(err))
    response = send_file(io.BytesIO(data), mimetype=doc.content_type, as_attachment=True,
                         download_name=doc.filename, max_age=0, etag=doc.sha256, last_modified=doc.uploaded_at)
    response.headers["Cache-Control"] = "private, no-store"
    return response
