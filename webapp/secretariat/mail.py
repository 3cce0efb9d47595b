"""Mail in the console: the call's wording of each kind of message (edit, preview with sample data, back to
the default), the outbox (queued, sent, failed; resend a failed message), and bulk mail to everyone with a
role or to the coordinators of a filtered proposal list, previewed before it is queued.
"""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from wtforms import HiddenField, SelectField, StringField, SubmitField, TextAreaField
from wtforms.validators import Length, Optional

from webapp.auth import actor
from webapp.db import commit, db
from webapp.secretariat import bp
from webapp.secretariat.calls import ConfirmForm, _console_call
from webapp.views import deny_access, page_arg, refuse
from workflow import console
from workflow.errors import AccessDenied, DomainError, InvalidInput, NotFound


class TemplateForm(FlaskForm):
    subject = StringField("Subject", validators=[Optional(), Length(max=300)])
    body = TextAreaField("Text", validators=[Optional(), Length(max=20_000)], render_kw={"rows": 14})
    preview = SubmitField("Preview")
    save = SubmitField("Save")


@bp.get("/calls/<int:call_id>/mail")
def mail_home(call_id: int):
    from workflow import mail_templates as mt

    call = _console_call(call_id)
    try:
        box = mt.outbox_page(db(), actor(), call, per_page=1)
    except AccessDenied as err:
        deny_access(err)
    return render_template("secretariat/mail_home.html", call=call, wordings=mt.wordings(db(), call),
                           counts=box.counts)


def _template_page(call, kind, form, preview=None, code=200):
    from workflow import mail_templates as mt

    current = mt.wording(db(), call, kind.key)
    return render_template("secretariat/mail_template.html", call=call, kind=kind, form=form, preview=preview,
                           current=current, reset_form=ConfirmForm()), code


def _kind(key: str):
    from workflow import mail_templates as mt

    try:
        return mt.kind_of(key)
    except NotFound:
        from flask import abort

        abort(404)


@bp.get("/calls/<int:call_id>/mail/templates/<kind>")
def mail_template(call_id: int, kind: str):
    from workflow import mail_templates as mt

    call = _console_call(call_id)
    k = _kind(kind)
    current = mt.wording(db(), call, k.key)
    form = TemplateForm(data={"subject": current.subject, "body": current.body})
    return _template_page(call, k, form)


@bp.post("/calls/<int:call_id>/mail/templates/<kind>")
def mail_template_post(call_id: int, kind: str):
    from workflow import mail_templates as mt

    call = _console_call(call_id)
    k = _kind(kind)
    form = TemplateForm()
    if not form.validate_on_submit():
        return _template_page(call, k, form, code=422)
    try:
        if form.save.data:
            mt.save(db(), actor(), call, k.key, form.subject.data or "", form.body.data or "")
            commit()
            flash(f"The wording of “{k.label}” was saved; it is used for every such message from now on.", "success")
            return redirect(url_for(".mail_template", call_id=call.id, kind=k.key))
        preview = mt.preview(db(), actor(), call, k.key, form.subject.data or "", form.body.data or "")
    except AccessDenied as err:
        deny_access(err)
    except DomainError as err:
        refuse(form, err)
        return _template_page(call, k, form, code=422)
    return _template_page(call, k, form, preview)


@bp.post("/calls/<int:call_id>/mail/templates/<kind>/reset")
def mail_template_reset(call_id: int, kind: str):
    from workflow import mail_templates as mt

    call = _console_call(call_id)
    k = _kind(kind)
    if ConfirmForm().validate_on_submit():
        mt.reset(db(), actor(), call, k.key)
        commit()
        flash(f"“{k.label}” uses the default wording again.", "success")
    return redirect(url_for(".mail_template", call_id=call.id, kind=k.key))


# ---------------------------------------------------------------------------------------------------------
# The outbox


@bp.get("/calls/<int:call_id>/outbox")
def outbox(call_id: int):
    from workflow import mail_templates as mt

    call = _console_call(call_id)
    status = request.args.get("status", "")
    box = mt.outbox_page(db(), actor(), call, status if status in mt.STATUSES else "", page_arg())
    return render_template("secretariat/outbox.html", call=call, box=box, status=status, form=ConfirmForm(),
                           secret_kinds=mt.SECRET_KINDS)


@bp.post("/calls/<int:call_id>/outbox/<int:message_id>/resend")
def outbox_resend(call_id: int, message_id: int):
    from workflow import mail_templates as mt

    call = _console_call(call_id)
    if ConfirmForm().validate_on_submit():
        try:
            message = mt.resend_failed(db(), actor(), call, message_id)
            to = message.to_address
            commit()
            flash(f"The message to {to} is queued again.", "success")
        except DomainError as err:
            refuse(None, err)
    else:
        flash("The form expired; nothing was changed. Try again.", "danger")
    return redirect(url_for(".outbox", call_id=call.id, status=request.form.get("status") or None))


# ---------------------------------------------------------------------------------------------------------
# Bulk mail


class BulkMailForm(FlaskForm):
    target = SelectField("Send to", validate_choice=False)
    query = HiddenField()  # the proposal list's filter, as its query string
    subject = StringField("Subject", validators=[Optional(), Length(max=300)])
    body = TextAreaField("Text", validators=[Optional(), Length(max=20_000)], render_kw={"rows": 12})
    preview = SubmitField("Preview")
    send = SubmitField("Queue the messages")


def _bulk_filter(query: str) -> console.ProposalFilter:
    from urllib.parse import parse_qsl

    from werkzeug.datastructures import MultiDict

    return console.ProposalFilter.from_args(MultiDict(parse_qsl(query or "")))


def _bulk_page(call, form, f, preview=None, people=(), code=200):
    from workflow import mail_templates as mt

    form.target.choices = list(mt.TARGETS.items())
    return render_template("secretariat/bulk_mail.html", call=call, form=form, f=f, preview=preview,
                           people=list(people), placeholders=mt.BULK_PLACEHOLDERS), code


@bp.get("/calls/<int:call_id>/mail/bulk")
def bulk_mail(call_id: int):
    from urllib.parse import urlencode

    call = _console_call(call_id)
    f = console.ProposalFilter.from_args(request.args)
    form = BulkMailForm(data={"target": request.args.get("target", "coordinators"),
                              "query": urlencode(f.args(page=""))})
    return _bulk_page(call, form, f)


@bp.post("/calls/<int:call_id>/mail/bulk")
def bulk_mail_post(call_id: int):
    from workflow import mail_templates as mt

    call = _console_call(call_id)
    form = BulkMailForm()
    f = _bulk_filter(form.query.data)
    if not form.validate_on_submit():
        return _bulk_page(call, form, f, code=422)
    try:
        people = mt.recipients(db(), actor(), call, form.target.data, f)
        if form.send.data:  # send_bulk checks and renders the batch: rendering it here too would double the work
            description = form.query.data if form.target.data == "coordinators" else ""
            queued = mt.send_bulk(db(), actor(), call, form.target.data, form.subject.data or "",
                                  form.body.data or "", people, description)
            commit()
            if queued:
                flash(f"{queued} message{'s' if queued != 1 else ''} queued; they go out in the next minutes.",
                      "success")
            else:
                flash("These messages were queued already; nothing was queued twice.", "info")
            return redirect(url_for(".outbox", call_id=call.id))
        rendered = mt.render_bulk(form.subject.data or "", form.body.data or "", people)
    except AccessDenied as err:
        deny_access(err)
    except InvalidInput as err:
        refuse(form, err)
        return _bulk_page(call, form, f, code=422)
    except DomainError as err:
        refuse(form, err)
        return _bulk_page(call, form, f, code=422)
    return _bulk_page(call, form, f, preview=rendered[0], people=[r.email for r, _s, _b in rendered])
