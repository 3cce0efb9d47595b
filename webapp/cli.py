"""The `jointcall` command: Flask's CLI group plus Jointcall's own commands."""

from __future__ import annotations

import sys

import click
from flask import current_app
from flask.cli import FlaskGroup, with_appcontext

from webapp import create_app


def _session():
    return current_app.extensions["jointcall.sessions"]()


@click.group(cls=FlaskGroup, create_app=lambda: create_app(), add_default_commands=True)
def main():
    """Jointcall: joint transnational research calls, from pre-proposal to funding decision."""


@main.group("db")
def db_group():
    """Database schema."""


@db_group.command("upgrade")
@with_appcontext
def db_upgrade():
    """Bring the database to the newest schema (SQLite file or PostgreSQL)."""
    from workflow.migrate import upgrade

    url = current_app.config["JOINTCALL"]["database_url"]
    upgrade(url)
    click.echo(f"database is up to date ({_redact(url)})")


def _redact(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


@main.command("load-call")
@click.argument("path", type=click.Path(dir_okay=False))
@with_appcontext
def load_call_cmd(path):
    """Validate a call definition (TOML) and load it; loading the same file twice changes nothing."""
    from workflow.callconfig import CallDefinitionError, load_call_file
    from workflow.calls import load_call

    try:
        definition = load_call_file(path)
    except CallDefinitionError as err:
        click.echo(str(err), err=True)
        sys.exit(1)
    with _session() as session:
        result = load_call(session, None, definition)
        session.commit()
        click.echo(f"{definition.code}: {result.outcome} ({len(definition.funders)} funders, "
                   f"{len(definition.stages)} stage{'s' if len(definition.stages) > 1 else ''})")


@main.command("create-user")
@click.option("--email", required=True)
@click.option("--name", required=True)
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
@click.option("--admin", is_flag=True, help="make the user an administrator")
@with_appcontext
def create_user_cmd(email, name, password, admin):
    """Create a confirmed user account."""
    from workflow.accounts import create_user
    from workflow.errors import DomainError

    with _session() as session:
        try:
            user = create_user(session, None, email=email, name=name, password=password, confirmed=True,
                               is_admin=admin)
        except DomainError as err:
            click.echo(f"error: {err}", err=True)
            sys.exit(1)
        session.commit()
        click.echo(f"created {user.email}{' (admin)' if admin else ''}")


@main.group("audit")
def audit_group():
    """The audit log."""


@audit_group.command("verify")
@with_appcontext
def audit_verify():
    """Check the audit chain; name the first modified, inserted or deleted event."""
    from workflow.audit import verify

    with _session() as session:
        result = verify(session)
    click.echo(str(result))
    sys.exit(0 if result.ok else 1)


@main.group("outbox")
def outbox_group():
    """Queued e-mail."""


@outbox_group.command("send")
@click.option("--loop", is_flag=True, help="keep sending every few seconds until interrupted")
@click.option("--interval", default=10.0, show_default=True, help="seconds between rounds with --loop")
@with_appcontext
def outbox_send(loop, interval):
    """Send the queued e-mail that is due (retries failed deliveries with back-off)."""
    import time

    from webapp.mail import deliver_pending

    while True:
        report = deliver_pending(current_app.extensions["jointcall.sessions"], current_app.config["JOINTCALL"])
        click.echo(str(report))
        if not loop:
            sys.exit(0 if not report.errors else 1)
        time.sleep(interval)


@main.command("remind-reviewers")
@click.option("--days", default=",".join(map(str, (7, 2))), show_default=True,
              help="remind this many days before each stage's review deadline (comma-separated)")
@with_appcontext
def remind_reviewers_cmd(days):
    """Queue reminders to reviewers with unfinished reviews on the chosen days before each stage's review
    deadline (the call's setting). Run it daily (cron); `jointcall outbox send` delivers them."""
    from reviews.scoring import remind_before_review_deadlines

    try:
        chosen = tuple(sorted({int(d) for d in days.split(",") if d.strip()}))
    except ValueError:
        chosen = ()
    if not chosen or min(chosen) < 0:
        click.echo(f"error: --days takes whole numbers of 0 or more separated by commas, not {days!r}", err=True)
        sys.exit(2)
    with _session() as session:
        done = remind_before_review_deadlines(session, days_before=chosen)
        session.commit()
    for call, stage, queued in done:
        click.echo(f"{call.code} {stage}: {queued} reminder{'s' if queued != 1 else ''} queued")
    if not done:
        click.echo("no review deadline is due for a reminder today")


@main.command("prune-login-attempts")
@with_appcontext
def prune_login_attempts_cmd():
    """Delete login attempts older than 90 days (they no longer matter for throttling)."""
    from workflow.accounts import prune_login_attempts

    with _session() as session:
        n = prune_login_attempts(session)
        session.commit()
    click.echo(f"deleted {n} old login attempts")


@main.command("demo")
@with_appcontext
def demo_cmd():
    """Load the sample calls and a deterministic demo population (running it twice changes nothing)."""
    from webapp.demo import load_demo

    with _session() as session:
        report = load_demo(session)
        session.commit()
    click.echo(report)


@main.command("export-letters")
@click.option("--call", "code", required=True, help="the call's code, e.g. eppermed-jtc2024")
@click.option("--stage", type=click.Choice(["pre", "full"]), default="full", show_default=True)
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="the ZIP file to write")
@click.option("--processes", default=2, show_default=True, help="parallel PDF renderers (0: this process only)")
@with_appcontext
def export_letters_cmd(code, stage, out, processes):
    """Render a stage's decision letters into one ZIP (one PDF per proposal), as the web export does."""
    from sqlalchemy import select

    from webapp.letters import run_export
    from workflow.errors import DomainError
    from workflow.models import Call

    factory = current_app.extensions["jointcall.sessions"]
    with factory() as session:
        from workflow.letters import create_export_job

        call = session.scalar(select(Call).where(Call.code == code))
        if call is None:
            click.echo(f"error: there is no call {code!r}", err=True)
            sys.exit(1)
        try:
            job = create_export_job(session, None, call, stage, via="cli")
            session.commit()
        except DomainError as err:
            click.echo(f"error: {err}", err=True)
            sys.exit(1)
        job_id = job.id

    def progress(done, total):
        click.echo(f"{done} of {total} letters")

    try:
        path = run_export(factory, job_id, dest=out, processes=processes, progress=progress)
    except DomainError as err:
        click.echo(f"error: {err}; no ZIP was written", err=True)
        sys.exit(1)
    if path is None:
        click.echo("error: the export was restarted elsewhere; no ZIP was written", err=True)
        sys.exit(1)
    click.echo(f"wrote {path}")


@main.command("backup")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="the backup file to write")
@with_appcontext
def backup_cmd(out):
    """Write a consistent backup: SQLite's backup API, or pg_dump (custom format) for PostgreSQL."""
    from workflow.backup import BackupError, backup

    try:
        result = backup(current_app.config["JOINTCALL"]["database_url"], out)
    except BackupError as err:
        click.echo(f"error: {err}", err=True)
        sys.exit(1)
    click.echo(str(result))


@main.command("restore")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--force", is_flag=True, help="replace the content of a database that is not empty")
@with_appcontext
def restore_cmd(path, force):
    """Restore a backup into an empty database, then check with `jointcall audit verify`."""
    from workflow.backup import BackupError, restore

    current_app.extensions["jointcall.engine"].dispose()  # no connection of ours holds the database
    try:
        message = restore(current_app.config["JOINTCALL"]["database_url"], path, force=force)
    except BackupError as err:
        click.echo(f"error: {err}", err=True)
        sys.exit(1)
    click.echo(message)


if __name__ == "__main__":
    main()
