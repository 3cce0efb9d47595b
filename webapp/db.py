"""One database session per request (flask.g), rolled back unless the view committed.

`commit()` is how a view ends its transaction: when the transaction queued e-mail, delivery starts once
the response has been sent (in-process, after the commit), so nothing is mailed for a rolled-back change.
"""

from __future__ import annotations

from flask import after_this_request, current_app, g, has_request_context
from sqlalchemy import event
from sqlalchemy.orm import Session

from workflow.db import make_engine, make_session_factory, ping_when_idle
from workflow.models import OutboxMessage


def init_db(app) -> None:
    engine = make_engine(app.config["JOINTCALL"]["database_url"])
    ping_when_idle(engine)
    factory = make_session_factory(engine)
    app.extensions["jointcall.engine"] = engine
    app.extensions["jointcall.sessions"] = factory

    @event.listens_for(factory, "after_flush")
    def _note_outbox(session, _ctx):
        if any(isinstance(obj, OutboxMessage) for obj in session.new):
            session.info["queued_mail"] = True

    @app.teardown_appcontext
    def _close(exc):
        session = g.pop("db_session", None)
        if session is not None:
            # close() discards what was not committed (the connection is rolled back as it returns to
            # the pool) without first expiring every loaded object, as rollback() would: a list page
            # holds hundreds.
            session.close()


def db() -> Session:
    if "db_session" not in g:
        g.db_session = current_app.extensions["jointcall.sessions"]()
    return g.db_session


def engine():
    return current_app.extensions["jointcall.engine"]


def commit() -> None:
    session = db()
    session.flush()
    queued = session.info.pop("queued_mail", False)
    session.commit()
    if queued and current_app.config["JOINTCALL"].get("mail_inline", True) and has_request_context():
        app = current_app._get_current_object()

        @after_this_request
        def _send_after(response):
            response.call_on_close(lambda: send_outbox(app))
            return response


def send_outbox(app):
    from webapp.mail import deliver_pending

    try:
        with app.app_context():  # receipts are rendered from templates
            return deliver_pending(app.extensions["jointcall.sessions"], app.config["JOINTCALL"])
    except Exception:  # noqa: BLE001 - delivery problems never reach the person who clicked
        app.logger.exception("outbox delivery failed; messages stay queued")
        return None
