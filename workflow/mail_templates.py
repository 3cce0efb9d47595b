"""Mail the secretariat words itself: editable templates per message kind, bulk mail, the outbox.

Templates are Jinja in a sandbox (jinja2.sandbox.SandboxedEnvironment), plain text (no autoescape), with
StrictUndefined: a placeholder that does not exist is refused when the template is saved, against the
kind's sample data, never discovered when the mail goes out. A call without its own wording uses the
default text of the kind. Every save, reset, bulk mail and resend is audited; mail is only queued
(workflow.outbox) and leaves after the commit.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass, field

from jinja2 import StrictUndefined, Template, TemplateError, TemplateSyntaxError, UndefinedError, meta
from jinja2.sandbox import SandboxedEnvironment, SecurityError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from workflow import audit, outbox
from workflow.access import can
from workflow.console import ProposalFilter, filtered_proposals
from workflow.console_models import MailTemplate
from workflow.errors import DomainError, InvalidInput, NotFound
from workflow.lifecycle import STATE_BY_NAME
from workflow.models import Call, OutboxMessage, RoleGrant, User
from workflow.paging import PER_PAGE, Window
from workflow.proposals import require

MAX_SUBJECT = 300
MAX_BODY = 20_000

_env = SandboxedEnvironment(autoescape=False, undefined=StrictUndefined, keep_trailing_newline=True,
                            trim_blocks=True, lstrip_blocks=True)


@dataclass(frozen=True)
class Kind:
    key: str
    label: str
    when: str
    subject: str
    body: str
    placeholders: tuple[tuple[str, str], ...]
    sample: dict = field(default_factory=dict)


_CALL = ("call.title", "the call's title")
_PROPOSAL = (("proposal.reference", "e.g. EPPERMED-JTC2024-0007"), ("proposal.acronym", "the acronym"),
             ("proposal.title", "the proposal's title"))
_COORD = (("coordinator.name", "the coordinator's name"), ("coordinator.email", "the coordinator's e-mail"))

_SAMPLE_PROPOSAL = {"reference": "CALL-0007", "acronym": "PRECISE", "title": "Precision oncology for all",
                    "state": "Pre-proposal review"}
_SAMPLE_COORD = {"name": "Cora Coordinator", "email": "cora@example.org"}

KINDS: dict[str, Kind] = {k.key: k for k in (
    Kind("submission_receipt", "Submission receipt", "to the coordinator, when a proposal is submitted",
         "[{{ call.title }}] {{ proposal.acronym }}: receipt of your "
         "{{ 'pre-proposal' if stage == 'pre' else 'full proposal' }}",
         "Dear {{ coordinator.name }},\n\n"
         "your {{ 'pre-' if stage == 'pre' else 'full ' }}proposal {{ proposal.reference }} \"{{ proposal.acronym }}\" "
         "was submitted on {{ submitted_at }}.\n"
         "Submission number {{ number }} for this stage; the latest submission before the deadline counts.\n"
         "SHA-256 of the submitted content: {{ sha256 }}\n",
         (_CALL, *_PROPOSAL, *_COORD, ("stage", "pre or full"), ("submitted_at", "date and time, in the call's zone"),
          ("number", "1, 2, ... within the stage"), ("sha256", "fingerprint of the submitted content")),
         {"stage": "pre", "submitted_at": "5 March 2030, 16:59:12 CET", "number": 1, "sha256": "3f5a…"}),
    Kind("invitation", "Invitation to the full stage", "to the coordinator, when a pre-proposal is invited",
         "[{{ call.title }}] {{ proposal.acronym }}: invited to submit a full proposal",
         "Dear {{ coordinator.name }},\n\n"
         "your pre-proposal {{ proposal.reference }} \"{{ proposal.acronym }}\" is invited to the full-proposal stage.\n",
         (_CALL, *_PROPOSAL, *_COORD)),
    Kind("decision", "Decision", "to the coordinator, when a proposal is found not eligible or is not invited",
         "[{{ call.title }}] {{ proposal.acronym }}: {{ outcome }}",
         "Dear {{ coordinator.name }},\n\n"
         "{% if outcome == 'not eligible' %}proposal {{ proposal.reference }} \"{{ proposal.acronym }}\" was found not "
         "eligible. The reasons are shown on its page.{% else %}your pre-proposal {{ proposal.reference }} "
         "\"{{ proposal.acronym }}\" was not invited to the full stage.{% endif %}\n",
         (_CALL, *_PROPOSAL, *_COORD, ("outcome", "“not eligible” or “not invited”")),
         {"outcome": "not invited"}),
    Kind("reminder", "Reminder to funders", "to funder officers with pending eligibility checks",
         "[{{ call.title }}] Reminder: {{ pending }} partner{{ 's' if pending != 1 }} waiting for your eligibility "
         "sign-off",
         "Dear {{ recipient.name }},\n\n"
         "the eligibility check of the {{ stage }} stage of {{ call.title }} is waiting for your sign-off on "
         "{{ pending }} partner{{ 's' if pending != 1 }} requesting funding from {{ funder }}:\n\n"
         "{{ partners }}\n\n"
         "Please sign them off as eligible or not eligible under your national or regional rules:\n{{ link }}\n",
         (_CALL, ("recipient.name", "the officer's name"),
          ("stage", "pre-proposal or full proposal (proposal in a single-stage call)"),
          ("funder", "the funder's acronym (comma-separated for an officer of several)"),
          ("pending", "how many partners wait for the sign-off"),
          ("partners", "those partners, one line each: proposal, organisation, PI, amount requested"),
          ("link", "the sign-off page (required)")),
         {"recipient": {"name": "Olga Officer", "email": "olga@funder.example"}, "stage": "pre-proposal",
          "funder": "ANR", "pending": 2,
          "partners": "- CALL-0007 PRECISE: Institut Curie (PI Paula Investigator), requesting €300,000 from ANR\n"
                      "- CALL-0009 BRIDGE: Inserm (PI Pierre Chercheur), requesting €180,000 from ANR",
          "link": "https://jointcall.example/funder/calls/1/pre"}),
    Kind("role_invitation", "Invitation to a role", "to a person the secretariat invites as officer, reviewer or "
         "secretariat",
         "[{{ call.title }}] You are invited as {{ role | lower }}",
         "Hello {{ recipient.name }},\n\n"
         "{{ inviter.name }} invites you to take part in {{ call.title }} as {{ role | lower }}.\n\n"
         "To accept, open this link:\n\n{{ link }}\n\n"
         "The link works once and until {{ expires }}. "
         "{% if has_account %}Log in with your Jointcall account to accept.{% else %}You will choose a password for "
         "your new Jointcall account.{% endif %}\n\n"
         "If you did not expect this invitation, ignore this message.\n",
         (_CALL, ("recipient.name", "the invitee's name, or their e-mail"), ("role", "e.g. Funder officer of ANR"),
          ("inviter.name", "who invited them"), ("link", "the single-use link (required)"),
          ("expires", "when the link expires"), ("has_account", "whether the address has an account")),
         {"recipient": {"name": "Rita Reviewer", "email": "rita@example.org"}, "role": "Reviewer",
          "inviter": {"name": "Sam Secretariat"}, "link": "https://jointcall.example/secretariat/join/TOKEN",
          "expires": "1 April 2030, 12:00 CEST", "has_account": False}),
)}

# Kinds whose text must contain these placeholders (a message without its link is useless).
REQUIRED = {"role_invitation": ("link",), "reminder": ("link",)}


def sample_context(call: Call, kind: Kind) -> dict:
    """Made-up values for exactly the placeholders the kind lists: a wording that uses anything else fails
    its check when saved, not later when the real message is composed without it."""
    everything = {"call": {"title": call.title, "code": call.code}, "proposal": dict(_SAMPLE_PROPOSAL),
                  "coordinator": dict(_SAMPLE_COORD),
                  "recipient": {"name": "Cora Coordinator", "email": "cora@example.org"}}
    everything.update(kind.sample)
    context: dict = {}
    for name, _description in kind.placeholders:
        head, _, attr = name.partition(".")
        if head not in everything:
            continue
        if attr and isinstance(everything[head], dict):
            context.setdefault(head, {})[attr] = everything[head].get(attr)
        else:
            context[head] = everything[head]
    return context


def _used_names(body: str) -> set[str]:
    """The top-level placeholders a template refers to (a syntax error is reported by the rendering)."""
    try:
        return meta.find_undeclared_variables(_env.parse(body))
    except TemplateSyntaxError:
        return set()


@functools.lru_cache(maxsize=64)
def _template(source: str) -> Template:
    """The compiled template: a bulk mail or a batch of reminders renders the same source once per
    recipient, and compiling costs far more than filling in (a syntax error is raised, never kept)."""
    return _env.from_string(source)


def _render(source: str, context: dict, field_name: str) -> str:
    try:
        return _template(source).render(**context)
    except TemplateSyntaxError as err:
        raise InvalidInput(f"line {err.lineno}: {err.message}", field_name) from None
    except UndefinedError as err:
        raise InvalidInput(f"unknown placeholder: {err.message}", field_name) from None
    except SecurityError as err:
        raise InvalidInput(f"not allowed in a template: {err}", field_name) from None
    except TemplateError as err:
        raise InvalidInput(f"cannot be rendered: {err}", field_name) from None
    except Exception as err:  # noqa: BLE001 - a template must never break the page
        raise InvalidInput(f"cannot be rendered: {type(err).__name__}: {err}", field_name) from None


def render_text(subject: str, body: str, context: dict) -> tuple[str, str]:
    """(subject, body) rendered; a problem raises InvalidInput naming "subject" or "body"."""
    rendered_subject = " ".join(_render(subject, context, "subject").split())
    return rendered_subject[:MAX_SUBJECT], _render(body, context, "body")


def _check(kind: Kind, call: Call, subject: str, body: str) -> tuple[str, str]:
    subject, body = (subject or "").strip(), (body or "").replace("\r\n", "\n")
    if not subject:
        raise InvalidInput("enter a subject", "subject")
    if len(subject) > MAX_SUBJECT:
        raise InvalidInput(f"the subject may have at most {MAX_SUBJECT} characters", "subject")
    if not body.strip():
        raise InvalidInput("enter the text of the message", "body")
    if len(body) > MAX_BODY:
        raise InvalidInput(f"the text may have at most {MAX_BODY:,} characters", "body")
    used = _used_names(body)
    for name in REQUIRED.get(kind.key, ()):
        if name not in used:  # the placeholder itself, not the word ("open the link below")
            raise InvalidInput(f"the text must contain the placeholder {{{{ {name} }}}}", "body")
    return render_text(subject, body, sample_context(call, kind))


def kind_of(key: str) -> Kind:
    kind = KINDS.get(key)
    if kind is None:
        raise NotFound("no such kind of message")
    return kind


@dataclass(frozen=True)
class Wording:
    kind: Kind
    subject: str
    body: str
    customised: bool
    row: MailTemplate | None = None


def wording(session: Session, call: Call, key: str) -> Wording:
    kind = kind_of(key)
    row = session.scalar(select(MailTemplate).where(MailTemplate.call_id == call.id, MailTemplate.kind == key))
    if row is None:
        return Wording(kind, kind.subject, kind.body, False)
    return Wording(kind, row.subject, row.body, True, row)


def wordings(session: Session, call: Call) -> list[Wording]:
    rows = {r.kind: r for r in session.scalars(select(MailTemplate).where(MailTemplate.call_id == call.id))}
    return [Wording(k, rows[k.key].subject, rows[k.key].body, True, rows[k.key]) if k.key in rows
            else Wording(k, k.subject, k.body, False) for k in KINDS.values()]


def preview(session: Session, actor, call: Call, key: str, subject: str, body: str) -> tuple[str, str]:
    """The message as the sample recipient would get it; problems raise InvalidInput naming the field."""
    require(can(actor, "call.manage", call))
    return _check(kind_of(key), call, subject, body)


def save(session: Session, actor, call: Call, key: str, subject: str, body: str) -> MailTemplate:
    require(can(actor, "call.manage", call))
    kind = kind_of(key)
    _check(kind, call, subject, body)
    subject, body = subject.strip(), body.replace("\r\n", "\n")
    current = wording(session, call, key)
    row = current.row
    if row is None:
        row = MailTemplate(call_id=call.id, kind=key, subject=subject, body=body, updated_by_id=actor.id)
        session.add(row)
    else:
        row.subject, row.body, row.updated_by_id = subject, body, actor.id
    session.flush()
    audit.record(session, actor, "mail.template_saved", row, call_id=call.id,
                 before={"subject": current.subject, "body": current.body, "customised": current.customised},
                 after={"kind": key, "subject": subject, "body": body})
    return row


def reset(session: Session, actor, call: Call, key: str) -> None:
    require(can(actor, "call.manage", call))
    current = wording(session, call, key)
    if current.row is None:
        return
    session.delete(current.row)
    audit.record(session, actor, "mail.template_reset", object_type="mail_template", object_id=current.row.id,
                 call_id=call.id, before={"kind": key, "subject": current.subject, "body": current.body})


def render(session: Session, call: Call, key: str, context: dict) -> tuple[str, str]:
    """The call's wording of a message kind, filled in. If the stored wording cannot be rendered with this
    context, the default wording is used: a message is never lost to a template mistake."""
    kind = kind_of(key)
    current = wording(session, call, key)
    full = {"call": {"title": call.title, "code": call.code}, **context}
    try:
        return render_text(current.subject, current.body, full)
    except InvalidInput:
        if not current.customised:
            raise
        return render_text(kind.subject, kind.body, full)


# ---------------------------------------------------------------------------------------------------------
# Bulk mail: to everyone with a role in the call, or to the coordinators of a filtered list of proposals

TARGETS = {
    "coordinators": "Coordinators of the proposals in the filtered list",
    "secretariat": "Everyone in the call secretariat",
    "officer": "Every funder officer of the call",
    "reviewer": "Every reviewer of the call",
}
BULK_PLACEHOLDERS = (("recipient.name", "the recipient's name"), ("recipient.email", "their e-mail"),
                     ("call.title", "the call's title"),
                     ("proposal.reference", "coordinators only"), ("proposal.acronym", "coordinators only"),
                     ("proposal.title", "coordinators only"), ("proposal.state", "coordinators only"))


@dataclass(frozen=True)
class Recipient:
    email: str
    context: dict


def recipients(session: Session, actor, call: Call, target: str, f: ProposalFilter | None = None) -> list[Recipient]:
    require(can(actor, "call.manage", call))
    if target not in TARGETS:
        raise InvalidInput("choose who gets the message", "target")
    base = {"call": {"title": call.title, "code": call.code}}
    if target == "coordinators":
        out = []
        for row in filtered_proposals(session, actor, call, f or ProposalFilter()):
            p = row.proposal
            out.append(Recipient(p.coordinator.email, {
                **base, "recipient": {"name": p.coordinator.name, "email": p.coordinator.email},
                "proposal": {"reference": p.reference, "acronym": p.acronym, "title": p.title,
                             "state": STATE_BY_NAME[p.state].label if p.state in STATE_BY_NAME else p.state}}))
        return out
    users = session.scalars(
        select(User).join(RoleGrant, RoleGrant.user_id == User.id)
        .where(RoleGrant.call_id == call.id, RoleGrant.role == target).distinct().order_by(User.name)
    ).all()
    return [Recipient(u.email, {**base, "recipient": {"name": u.name, "email": u.email}}) for u in users]


def render_bulk(subject: str, body: str, people: list[Recipient]) -> list[tuple[Recipient, str, str]]:
    """Every message of the batch, rendered; the first problem raises InvalidInput naming the field."""
    subject, body = (subject or "").strip(), (body or "").replace("\r\n", "\n")
    if not subject:
        raise InvalidInput("enter a subject", "subject")
    if not body.strip():
        raise InvalidInput("enter the text of the message", "body")
    if len(body) > MAX_BODY:
        raise InvalidInput(f"the text may have at most {MAX_BODY:,} characters", "body")
    if not people:
        raise InvalidInput("nobody would get this message: the list is empty", "target")
    return [(r, *render_text(subject, body, r.context)) for r in people]


def send_bulk(session: Session, actor, call: Call, target: str, subject: str, body: str,
              people: list[Recipient], description: str = "") -> int:
    """Queue one message per recipient. The same message to the same people is queued once only (a form
    sent twice mails nobody twice). Returns how many messages were queued now. Renders the batch itself
    (render_bulk): a caller that sends does not render it first."""
    require(can(actor, "call.manage", call))
    messages = render_bulk(subject, body, people)
    batch = hashlib.sha256("\x1f".join([target, subject, body, *sorted(r.email for r in people)]).encode())
    batch_id = batch.hexdigest()[:24]
    queued = 0
    for i, (r, subj, text) in enumerate(messages):
        msg = outbox.enqueue(session, kind="bulk", to=r.email, call_id=call.id,
                             dedup_key=f"bulk:{call.id}:{batch_id}:{i}", subject=subj, body=text)
        if msg in session.new:  # else enqueue returned the message queued before under this key
            queued += 1
    audit.record(session, actor, "mail.bulk_queued", object_type="call", object_id=call.id, call_id=call.id,
                 after={"target": target, "filter": description, "recipients": len(people), "queued": queued,
                        "subject": subject, "batch": batch_id})
    return queued


# ---------------------------------------------------------------------------------------------------------
# The outbox of a call

STATUSES = ("queued", "sending", "sent", "failed")
# Kinds whose text holds a single-use link: the console never shows their text.
SECRET_KINDS = ("role_invitation", "account.confirm_email", "account.reset_password")


@dataclass(frozen=True)
class OutboxPage(Window):
    messages: list[OutboxMessage] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)


def outbox_page(session: Session, actor, call: Call, status: str = "", page: int = 1, per_page: int = PER_PAGE) -> OutboxPage:
    require(can(actor, "call.manage", call))
    counts = dict(session.execute(select(OutboxMessage.status, func.count(OutboxMessage.id))
                                  .where(OutboxMessage.call_id == call.id).group_by(OutboxMessage.status)).all())
    where = [OutboxMessage.call_id == call.id]
    if status in STATUSES:
        where.append(OutboxMessage.status == status)
    total = session.scalar(select(func.count(OutboxMessage.id)).where(*where)) or 0
    window = Window(total, page, per_page)
    messages = session.scalars(window.apply(select(OutboxMessage).where(*where).order_by(OutboxMessage.id.desc()))).all()
    return OutboxPage(total, page, per_page, messages=list(messages),
                      counts={s: counts.get(s, 0) for s in STATUSES})


def resend_failed(session: Session, actor, call: Call, message_id: int) -> OutboxMessage:
    """Put a failed message of this call back in the queue, with a fresh count of attempts."""
    require(can(actor, "call.manage", call))
    message = session.get(OutboxMessage, message_id)
    if message is None or message.call_id != call.id:
        raise NotFound("no such message in this call")
    if message.status != "failed":
        raise DomainError(f"only failed messages can be sent again; this one is {message.status}")
    before = {"status": message.status, "attempts": message.attempts, "last_error": message.last_error}
    message.status, message.next_attempt_at, message.attempts, message.claimed_at = "queued", None, 0, None
    audit.record(session, actor, "mail.resent", message, call_id=call.id, before=before,
                 after={"status": "queued", "to": message.to_address, "subject": message.subject})
    return message
