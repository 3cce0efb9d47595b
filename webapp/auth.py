"""Accounts in the browser: logging in and out (throttled), registering, confirming the e-mail address,
resetting a forgotten password.

Links in mails are built here from the `base_url` setting and handed to workflow.accounts as
`AccountLinks`; the domain never sees a URL scheme. Answers to "register", "resend" and "forgot" are the
same whether or not the address has an account, so the pages never reveal who has one.
"""

from __future__ import annotations

import hashlib
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import UserMixin, current_user, login_user, logout_user
from markupsafe import Markup
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload

from webapp import login_manager
from webapp.db import commit, db
from webapp.forms import (
    ForgotPasswordForm,
    LoginForm,
    RegisterForm,
    ResendConfirmationForm,
    ResetPasswordForm,
)
from workflow import accounts
from workflow.errors import InvalidInput
from workflow.models import User
from workflow.paging import positive_int

bp = Blueprint("auth", __name__)


def _fingerprint(user: User) -> str:
    """Changes whenever the password changes or the user logs out, so a reset or a logout ends every
    session issued before (a copied cookie included)."""
    material = f"{user.password_hash or 'no-password'}:{user.session_epoch or 0}"
    return hashlib.sha256(material.encode("utf-8")).hexdigest()[:16]


def session_id(user: User) -> str:
    """What Flask-Login keeps in the session for `user` ("<id>:<password fingerprint>")."""
    return f"{user.id}:{_fingerprint(user)}"


class LoginUser(UserMixin):
    """Flask-Login's view of a domain User; `.user` is the row the access policy reads."""

    def __init__(self, user: User):
        self.user = user
        self.id = session_id(user)


@login_manager.user_loader
def load_user(user_id: str):
    ident, _, fingerprint = user_id.partition(":")
    if positive_int(ident) is None:
        return None
    # The grants come in the same statement: every page asks what this person may do.
    user = db().get(User, positive_int(ident), options=[joinedload(User.grants)])
    if user is None or fingerprint != _fingerprint(user):
        return None
    return LoginUser(user)


def actor() -> User | None:
    """The domain actor of this request (None when anonymous)."""
    return current_user.user if current_user.is_authenticated else None


def _safe_next(target: str | None) -> str | None:
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    return target


def _client_ip() -> str:
    # Behind a reverse proxy, wrap the app in werkzeug's ProxyFix so that this is the client's address.
    return request.remote_addr or "unknown"


def _links(after_confirming: str | None = None) -> accounts.AccountLinks:
    """The account mails' links; `after_confirming` is the page the confirmation link leads to (a
    co-applicant who registered from an invitation comes back to it)."""
    base = current_app.config["JOINTCALL"]["base_url"].rstrip("/")

    def link(endpoint: str, **values) -> str:
        return base + url_for(endpoint, **values)

    return accounts.AccountLinks(
        confirm=lambda token: link("auth.confirm_email", token=token, next=after_confirming),
        reset=lambda token: link("auth.reset_password", token=token),
        login=link("auth.login"),
        forgot=link("auth.forgot_password"),
        resend=link("auth.resend_confirmation"),
    )


def _log_in(user: User) -> None:
    session.clear()  # a fresh session at login: no fixation
    login_user(LoginUser(user))


def _nag_unconfirmed(user: User) -> None:
    if user.email_confirmed_at is None:
        flash(Markup("Please confirm your e-mail address: open the link we mailed to {email}. "
                     'No mail? <a href="{url}">Send a new link</a>.').format(
                         email=user.email, url=url_for("auth.resend_confirmation")), "warning")


def _status() -> int:
    return 422 if request.method == "POST" else 200


# ---------------------------------------------------------------------------------------------------------
# Log in, log out


@bp.route("/login", methods=["GET", "POST"])
def login():
    form = LoginForm()
    if form.validate_on_submit():
        result = accounts.attempt_login(db(), form.email.data, form.password.data, ip=_client_ip())
        commit()  # failed and refused attempts count too, across requests and server processes
        if result.lockout is not None:
            flash(result.lockout.message(), "danger")
            return render_template("login.html", form=form), 429
        if result.user is not None:
            user = result.user
            _log_in(user)
            flash(f"Welcome, {user.name}.", "success")
            _nag_unconfirmed(user)
            return redirect(_safe_next(request.args.get("next")) or url_for("public.index"))
        form.password.errors.append("the e-mail address or the password is wrong")
    return render_template("login.html", form=form), _status()


@bp.route("/logout", methods=["POST"])
def logout():
    user = actor()
    if user is not None:
        accounts.end_sessions(db(), user)
        commit()
    logout_user()
    session.clear()
    flash("You are logged out.", "info")
    return redirect(url_for("public.index"))


# ---------------------------------------------------------------------------------------------------------
# Register and confirm the e-mail address


def _check_mail(what: str, email: str):
    session["check_mail_address"] = accounts.normalise_email(email)
    return redirect(url_for("auth.check_mail", what=what))


CHECK_MAIL = {
    "registered": "confirm",
    "confirmation": "confirm",
    "reset": "reset",
}


@bp.route("/check-mail/<what>")
def check_mail(what: str):
    kind = CHECK_MAIL.get(what)
    if kind is None:
        abort(404)
    return render_template("auth/check_mail.html", kind=kind, what=what,
                           address=session.get("check_mail_address"))


@bp.route("/register", methods=["GET", "POST"])
def register():
    if current_user.is_authenticated:
        flash("You are logged in already; log out first to create another account.", "info")
        return redirect(url_for("public.index"))
    form = RegisterForm()
    if form.validate_on_submit():
        after = _safe_next(request.args.get("next"))
        try:
            try:
                _register(form, after)
            except IntegrityError:  # the same address registered concurrently: now it exists
                db().rollback()
                _register(form, after)
        except InvalidInput as err:
            _field_error(form, err)
        else:
            return _check_mail("registered", form.email.data)
    return render_template("auth/register.html", form=form), _status()


def _register(form: RegisterForm, after_confirming: str | None) -> None:
    accounts.register(db(), name=form.name.data, email=form.email.data, password=form.password.data,
                      confirm=form.confirm.data, links=_links(after_confirming))
    commit()


def _field_error(form, err: InvalidInput) -> None:
    from webapp.views import refuse  # webapp.views imports this module

    refuse(form, err)


def _token_refused(err: accounts.TokenRefused):
    db().rollback()
    confirmed = (err.purpose == accounts.CONFIRM_EMAIL and err.reason == "used" and err.user is not None
                 and err.user.email_confirmed_at is not None)
    status = 404 if err.reason == "unknown" else 410
    return render_template("auth/token_invalid.html", err=err, confirmed=confirmed,
                           lifetime_hours=int(accounts.TOKEN_LIFETIME[err.purpose].total_seconds() // 3600),
                           confirm_purpose=accounts.CONFIRM_EMAIL), status


@bp.route("/confirm/<token>")
def confirm_email(token: str):
    try:
        user = accounts.confirm_email(db(), token, ip=_client_ip())
    except accounts.TokenRefused as err:
        return _token_refused(err)
    commit()
    _log_in(user)
    flash(f"Thank you, {user.name}: your e-mail address {user.email} is confirmed and you are logged in.",
          "success")
    return redirect(_safe_next(request.args.get("next")) or url_for("public.index"))


@bp.route("/confirm-again", methods=["GET", "POST"])
def resend_confirmation():
    form = ResendConfirmationForm()
    if request.method == "GET" and current_user.is_authenticated and not form.email.data:
        form.email.data = current_user.user.email
    if form.validate_on_submit():
        accounts.resend_confirmation(db(), form.email.data, _links())
        commit()
        return _check_mail("confirmation", form.email.data)
    return render_template("auth/resend.html", form=form), _status()


# ---------------------------------------------------------------------------------------------------------
# Forgotten password


@bp.route("/forgot-password", methods=["GET", "POST"])
def forgot_password():
    form = ForgotPasswordForm()
    if form.validate_on_submit():
        accounts.request_password_reset(db(), form.email.data, _links())
        commit()
        return _check_mail("reset", form.email.data)
    return render_template("auth/forgot.html", form=form), _status()


@bp.route("/reset-password/<token>", methods=["GET", "POST"])
def reset_password(token: str):
    try:
        accounts.check_token(db(), token, accounts.RESET_PASSWORD)
    except accounts.TokenRefused as err:
        return _token_refused(err)
    form = ResetPasswordForm()
    if form.validate_on_submit():
        try:
            user = accounts.reset_password(db(), token, form.password.data, form.confirm.data, ip=_client_ip())
        except accounts.TokenRefused as err:
            return _token_refused(err)
        except InvalidInput as err:
            _field_error(form, err)
        else:
            commit()
            _log_in(user)
            flash("Your password has been changed and you are logged in. Every other session of your account "
                  "was logged out.", "success")
            return redirect(url_for("public.index"))
    return render_template("auth/reset.html", form=form), _status()

