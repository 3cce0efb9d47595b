"""Logging in and out."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask_login import UserMixin, current_user, login_user, logout_user

from webapp import login_manager
from webapp.db import db
from webapp.forms import LoginForm
from workflow.accounts import check_password, find_user
from workflow.models import User

bp = Blueprint("auth", __name__)


class LoginUser(UserMixin):
    """Flask-Login's view of a domain User; `.user` is the row the access policy reads."""

    def __init__(self, user: User):
        self.user = user
        self.id = str(user.id)


@login_manager.user_loader
def load_user(user_id: str):
    if not user_id.isdigit():
        return None
    user = db().get(User, int(user_id))
    return LoginUser(user) if user is not None else None


def actor() -> User | None:
    """The domain actor of this request (None when anonymous)."""
    return current_user.user if current_user.is_authenticated else None


def _safe_next(target: str | None) -> str | None:
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    return target


@bp.route("/login", methods=["GET", "POST"])
def login():
    form = LoginForm()
    if form.validate_on_submit():
        user = find_user(db(), form.email.data)
        if check_password(user, form.password.data):
            session.clear()  # a fresh session at login: no fixation
            login_user(LoginUser(user))
            flash(f"Welcome, {user.name}.", "success")
            return redirect(_safe_next(request.args.get("next")) or url_for("public.index"))
        form.password.errors.append("the e-mail address or the password is wrong")
    return render_template("login.html", form=form), (422 if request.method == "POST" else 200)


@bp.route("/logout", methods=["POST"])
def logout():
    logout_user()
    session.clear()
    flash("You are logged out.", "info")
    return redirect(url_for("public.index"))
