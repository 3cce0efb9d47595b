"""People and roles: who has which role in a call, inviting by e-mail (secretariat: administrators only;
funder officers of a given funder and reviewers: the call's secretariat), revoking, cancelling an
invitation, the administrator's page of every call's secretariat, and the page where an invited person
accepts (logged in, or creating an account with a password).
"""

from __future__ import annotations

from collections.abc import Callable

from flask import current_app, flash, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, SelectField, StringField, SubmitField
from wtforms.validators import DataRequired, Email, Length, Optional

from webapp.auth import _client_ip, _log_in, actor
from webapp.db import commit, db
from webapp.secretariat import bp
from webapp.secretariat.calls import ConfirmForm, _admin_only, _console_call, confirmed
from webapp.views import deny_access, get_or_404, page_arg, refuse
from workflow import people as ops  # not `people`: that is the name of a view below
from workflow.accounts import find_user, record_login_attempt
from workflow.errors import AccessDenied, DomainError
from workflow.models import Call


class InviteForm(FlaskForm):
    email = EmailField("E-mail", validators=[DataRequired("enter the e-mail address"), Length(max=254),
                                             Email("this is not an e-mail address")])
    name = StringField("Name (optional)", validators=[Optional(), Length(max=200)])
    role = SelectField("Role", validate_choice=False)
    funder_id = SelectField("Funder (for a funder officer)", validate_choice=False)
    submit = SubmitField("Send the invitation")


class AcceptForm(FlaskForm):
    name = StringField("Your name", validators=[Optional(), Length(max=200)], render_kw={"autocomplete": "name"})
    password = PasswordField("Choose a password", validators=[Optional(), Length(max=500)],
                             render_kw={"autocomplete": "new-password"})
    confirm = PasswordField("Repeat the password", validators=[Optional(), Length(max=500)],
                            render_kw={"autocomplete": "new-password"})
    submit = SubmitField("Accept the invitation")


def _link(token: str) -> str:
    base = current_app.config["JOINTCALL"]["base_url"].rstrip("/")
    return base + url_for("secretariat.join", token=token)


def _invite_form(call: Call, formdata=None, admin: bool = False) -> InviteForm:
    form = InviteForm(formdata=formdata) if formdata is not None else InviteForm()
    roles = ["officer", "reviewer"] + (["secretariat"] if admin else [])
    form.role.choices = [(r, ops.ROLE_LABELS[r]) for r in roles]
    form.funder_id.choices = [("", "— not an officer —")] + sorted(
        ((str(cf.funder_id), f"{cf.funder.acronym} — {cf.funder.name}") for cf in call.funders),
        key=lambda c: c[1].lower())
    return form


def _people_page(call: Call, form: InviteForm, code: int = 200):
    me = actor()
    return render_template("secretariat/people.html", call=call, people=ops.call_people(db(), call, page_arg()),
                           form=form, action=ConfirmForm(), role_label=ops.role_label, role_labels=ops.ROLE_LABELS,
                           is_admin=bool(me and me.is_admin)), code


@bp.get("/calls/<int:call_id>/people")
def people(call_id: int):
    call = _console_call(call_id)
    me = actor()
    return _people_page(call, _invite_form(call, admin=me.is_admin))


@bp.post("/calls/<int:call_id>/people/invite")
def people_invite(call_id: int):
    call = _console_call(call_id)
    me = actor()
    form = _invite_form(call, request.form, admin=me.is_admin)
    if form.validate_on_submit():
        try:
            result = ops.invite(db(), me, call, email=form.email.data, role=form.role.data,
                                funder_id=form.funder_id.data or None, name=form.name.data or "", link=_link)
            label = ops.role_label(result.invitation.role, result.invitation.funder)
            commit()
        except AccessDenied as err:
            db().rollback()
            deny_access(err)
        except DomainError as err:
            refuse(form, err)
        else:
            again = " (the earlier invitation's link no longer works)" if result.replaced else ""
            flash(f"Invitation sent to {result.invitation.email} as {label.lower()}{again}.", "success")
            return redirect(url_for(".people", call_id=call.id))
    return _people_page(call, form, 422)


def _act(action: Callable[[], str]) -> None:
    """A confirmed change to the call's people: run `action` and commit, then flash the message it returned;
    a refusal is a 403 page (AccessDenied) or a message."""
    if not confirmed():
        return
    try:
        message = action()  # read before the commit expires what it loaded
        commit()
    except AccessDenied as err:
        db().rollback()
        deny_access(err)
    except DomainError as err:
        refuse(None, err)
    else:
        flash(message, "success")


@bp.post("/calls/<int:call_id>/people/grants/<int:grant_id>/revoke")
def people_revoke(call_id: int, grant_id: int):
    call = _console_call(call_id)

    def revoke() -> str:
        ops.revoke(db(), actor(), call, grant_id, reason=(request.form.get("reason") or "").strip()[:500] or None)
        return "The role was revoked."

    _act(revoke)
    page = page_arg()  # back to the page of the list the role was revoked from
    return redirect(request.form.get("back") if request.form.get("back") == url_for(".secretariats")
                    else url_for(".people", call_id=call.id, page=page if page > 1 else None))


@bp.post("/calls/<int:call_id>/people/invitations/<int:invitation_id>/cancel")
def people_cancel(call_id: int, invitation_id: int):
    call = _console_call(call_id)

    def cancel() -> str:
        inv = ops.cancel_invitation(db(), actor(), call, invitation_id)
        return f"The invitation of {inv.email} was cancelled; its link no longer works."

    _act(cancel)
    return redirect(url_for(".people", call_id=call.id))


# ---------------------------------------------------------------------------------------------------------
# The administrator's page: every call's secretariat


class SecretariatInviteForm(FlaskForm):
    call_id = SelectField("Call", validate_choice=False)
    email = EmailField("E-mail", validators=[DataRequired("enter the e-mail address"), Length(max=254),
                                             Email("this is not an e-mail address")])
    name = StringField("Name (optional)", validators=[Optional(), Length(max=200)])
    submit = SubmitField("Invite to the secretariat")


def _secretariats_page(form: SecretariatInviteForm, code: int = 200):
    try:
        rows = ops.secretariats_by_call(db(), actor())
    except AccessDenied as err:
        deny_access(err)
    form.call_id.choices = [(str(c.id), c.title) for c, _g, _i in rows]
    return render_template("secretariat/secretariats.html", rows=rows, form=form, action=ConfirmForm()), code


@bp.get("/admin/secretariats")
def secretariats():
    _admin_only()
    return _secretariats_page(SecretariatInviteForm())


@bp.post("/admin/secretariats")
def secretariats_invite():
    _admin_only()
    form = SecretariatInviteForm()
    if form.validate_on_submit():
        call = get_or_404(Call, form.call_id.data)
        try:
            result = ops.invite(db(), actor(), call, email=form.email.data, role="secretariat",
                                name=form.name.data or "", link=_link)
            email = result.invitation.email
            commit()
        except DomainError as err:
            refuse(form, err)
        else:
            flash(f"Invitation to the secretariat of {call.title} sent to {email}.", "success")
            return redirect(url_for(".secretariats"))
    return _secretariats_page(form, 422)


# ---------------------------------------------------------------------------------------------------------
# Accepting an invitation (anyone holding the mailed link)


def _join_page(token: str, inv, form: AcceptForm, problem: str | None = None, code: int = 200):
    me = actor()
    has_account = inv is not None and me is None and find_user(db(), inv.email) is not None
    return render_template(
        "secretariat/join.html", inv=inv, form=form, problem=problem, token=token, has_account=has_account,
        role=ops.role_label(inv.role, inv.funder) if inv is not None else "",
        login_url=url_for("auth.login", next=url_for(".join", token=token)),
    ), code


def _invitation(token: str):
    """The invitation the link's token stands for, and None; or None and the page saying why it cannot be
    used (404 for a token never issued, 410 for one used, expired or revoked)."""
    try:
        return ops.check_invitation(db(), token), None
    except ops.InvitationRefused as err:
        return None, _join_page(token, None, AcceptForm(), str(err), 404 if err.reason == "unknown" else 410)


@bp.get("/join/<token>")
def join(token: str):
    inv, refused = _invitation(token)
    if refused is not None:
        return refused
    form = AcceptForm()
    if not form.name.data and inv.name:
        form.name.data = inv.name
    return _join_page(token, inv, form)


@bp.post("/join/<token>")
def join_post(token: str):
    inv, refused = _invitation(token)
    if refused is not None:
        return refused
    form = AcceptForm()
    if form.validate_on_submit():
        me = actor()
        call_id, label = inv.call_id, ops.role_label(inv.role, inv.funder)
        try:
            user, _grant = ops.accept(db(), token, me, name=form.name.data, password=form.password.data,
                                  confirm=form.confirm.data)
            if me is None:
                record_login_attempt(db(), user.email, _client_ip(), succeeded=True)
            commit()
        except ops.InvitationRefused as err:
            db().rollback()
            return _join_page(token, None, AcceptForm(), str(err), 410)
        except DomainError as err:
            refuse(form, err)
            inv = ops.check_invitation(db(), token)
        else:
            if me is None:
                _log_in(user)
            call = db().get(Call, call_id)
            flash(f"Welcome, {user.name}: you are now {label.lower()} in {call.title}.", "success")
            if inv.role == "secretariat":
                return redirect(url_for(".call_home", call_id=call_id))
            if inv.role == "officer":
                return redirect(url_for("funder.index"))
            return redirect(url_for("public.index"))
    return _join_page(token, inv, form, code=422)
