"""Jointcall's web layer: the Flask app factory, blueprints per role, templates, PDFs and the CLI."""

from __future__ import annotations

from flask import Flask, render_template
from flask_login import LoginManager
from flask_wtf.csrf import CSRFProtect

import reviews  # noqa: F401  (plugs the reviewer facts and the review guards into workflow)
from webapp.settings import load_settings

csrf = CSRFProtect()
login_manager = LoginManager()


def create_app(overrides: dict | None = None) -> Flask:
    settings = load_settings(overrides)
    app = Flask(__name__, instance_relative_config=False)
    from webapp.request import JointcallRequest

    app.request_class = JointcallRequest
    app.config["JOINTCALL"] = settings
    app.config.update(
        SECRET_KEY=settings["secret_key"],
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings["env"] == "production",
        REMEMBER_COOKIE_HTTPONLY=True,
        MAX_CONTENT_LENGTH=110 * 1024 * 1024,
        WTF_CSRF_TIME_LIMIT=None,
    )
    if settings.get("testing"):
        app.config["TESTING"] = True
    if int(settings.get("proxies", 0)):
        # Behind a reverse proxy: trust its X-Forwarded-* headers (client IPs for login throttling).
        from werkzeug.middleware.proxy_fix import ProxyFix

        n = int(settings["proxies"])
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)

    from webapp.db import init_db

    init_db(app)
    csrf.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Please log in to see this page."
    login_manager.login_message_category = "info"

    from webapp import applicant, auth, funder, funding, public, reviewer, secretariat
    from webapp.filters import register_filters

    app.register_blueprint(public.bp)
    app.register_blueprint(auth.bp)
    app.register_blueprint(applicant.bp)
    app.register_blueprint(funder.bp)
    app.register_blueprint(secretariat.bp)
    app.register_blueprint(reviewer.bp)
    app.register_blueprint(funding.bp)
    register_filters(app)

    from flask_wtf.csrf import CSRFError

    @app.errorhandler(CSRFError)
    def csrf_failed(_e):
        return render_template("error.html", title="Form expired",
                               message="This form was not sent from this site or has expired. Reload the page "
                                       "and try again; nothing was changed."), 400

    @app.errorhandler(413)
    def too_large(_e):
        return render_template("error.html", title="File too large",
                               message="The upload is larger than the server accepts. Nothing was stored."), 413

    @app.errorhandler(404)
    def not_found(_e):
        return render_template("error.html", title="Not found", message="There is no such page."), 404

    @app.errorhandler(401)
    def unauthorised(_e):
        from flask import redirect, request, url_for

        return redirect(url_for("auth.login", next=request.full_path if request.method == "GET" else None))

    @app.errorhandler(403)
    def forbidden(e):
        return render_template("error.html", title="Not allowed", message=e.description or "Not allowed."), 403

    @app.errorhandler(500)
    def server_error(_e):
        from flask import g

        # The request's transaction failed: roll it back so the page can still read the user's roles.
        session = g.get("db_session")
        if session is not None:
            session.rollback()
        try:
            return render_template("error.html", title="Something went wrong",
                                   message="The server could not finish this request. Nothing was changed."), 500
        except Exception:  # noqa: BLE001 - the error page must never fail
            return ("<!doctype html><title>Something went wrong</title><h1>Something went wrong</h1>"
                    "<p>The server could not finish this request. Nothing was changed.</p>"), 500

    @app.after_request
    def security_headers(response):
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
            "frame-ancestors 'none'; form-action 'self'; base-uri 'self'",
        )
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("X-Frame-Options", "DENY")
        return response

    return app
