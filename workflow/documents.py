"""Uploaded documents: typed PDFs per stage (project description, CVs and letters per partner, other),
checked by their content, stored content-addressed, every upload a new version (DOMAIN.md rule 14).

A file is checked before anything is stored: it must be a real, complete, unencrypted PDF (it starts with
%PDF, ends with %%EOF and parses with pypdf), within the stage's size limit and the kind's page limit.
The bytes go to `storage_dir` under their SHA-256 (written atomically: a temporary file, then a rename)
inside the operation, before the row is added, so a rolled-back transaction leaves no row; a file without
a row is harmless and is reused by the next upload of the same bytes. The name the person gave the file is
kept, cleaned, for display and for the download's name only; it is never part of a path.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import re
import tempfile
import unicodedata
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import flag_modified

from workflow import audit
from workflow.access import can
from workflow.callconfig import DOCUMENT_KINDS, STAGE_NAMES, StageDef
from workflow.clock import utcnow
from workflow.errors import InvalidInput, NotFound
from workflow.lifecycle import Variant, stage_of
from workflow.models import Document, Partner, Proposal
from workflow.proposals import require

KIND_LABELS = {
    "project_description": "Project description",
    "cv": "CV",
    "letter_of_commitment": "Letter of commitment",
    "other": "Other document",
}
# Kinds that belong to one partner (one CV and one letter per partner); the project description belongs to
# the whole proposal; "other" may belong to either.
PER_PARTNER_KINDS = ("cv", "letter_of_commitment")
PROPOSAL_KINDS = ("project_description",)
MB = 1024 * 1024
PDF_MIME = "application/pdf"


def kind_label(kind: str) -> str:
    return KIND_LABELS.get(kind, kind.replace("_", " ").capitalize())


# ---------------------------------------------------------------------------------------------------------
# Checking a file by its content


def _mb(size: int) -> str:
    return f"{size / MB:.1f}".rstrip("0").rstrip(".") + " MB"


def pdf_page_count(data: bytes) -> int:
    """The number of pages of a complete, unencrypted PDF, or InvalidInput (field "file") saying why not."""
    if not data:
        raise InvalidInput("the file is empty", "file")
    if not data.lstrip(b"\x00\t\n\r\f ")[:5] == b"%PDF-":
        raise InvalidInput("this file is not a PDF (whatever its name says); save or export it as PDF and "
                           "upload it again", "file")
    if b"%%EOF" not in data[-2048:]:
        raise InvalidInput("the PDF is incomplete (it ends before its last page); it may have been cut off "
                           "while copying or uploading. Upload the complete file", "file")
    from pypdf import PdfReader

    pypdf_log = logging.getLogger("pypdf")
    previous = pypdf_log.level
    pypdf_log.setLevel(logging.ERROR)  # a damaged file is the applicant's problem, not a server warning
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            raise InvalidInput("the PDF is password-protected or encrypted; upload a PDF without protection",
                               "file")
        pages = len(reader.pages)
        for page in reader.pages:
            _ = page.mediabox  # each page must be readable
    except InvalidInput:
        raise
    except Exception:  # noqa: BLE001 - pypdf raises many kinds of errors for damaged files
        raise InvalidInput("the PDF is damaged and cannot be read; export it again and upload the new file",
                           "file") from None
    finally:
        pypdf_log.setLevel(previous)
    if pages < 1:
        raise InvalidInput("the PDF has no pages", "file")
    return pages


def check_file(data: bytes, kind: str, stage: str, stage_def: StageDef) -> int:
    """Check an upload against the stage's limits; returns its page count."""
    limit = stage_def.max_upload_mb * MB
    if len(data) > limit:
        raise InvalidInput(f"the file is {_mb(len(data))}; at most {stage_def.max_upload_mb} MB are allowed "
                           f"at the {STAGE_NAMES.get(stage, stage)} stage", "file")
    pages = pdf_page_count(data)
    max_pages = stage_def.page_limits.get(kind)
    if max_pages is not None and pages > max_pages:
        raise InvalidInput(
            f"the {kind_label(kind).lower()} has {pages} pages; at most {max_pages} "
            f"{'page is' if max_pages == 1 else 'pages are'} allowed at the {STAGE_NAMES.get(stage, stage)} stage",
            "file")
    return pages


# ---------------------------------------------------------------------------------------------------------
# Names and storage


def display_filename(name: str | None) -> str:
    """The uploaded file's name, fit to show and to offer as a download name; never used as a path."""
    name = unicodedata.normalize("NFC", name or "")
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(" " if ch.isspace() else ch for ch in name
                   if ch.isspace() or unicodedata.category(ch)[0] != "C")  # no control or format characters
    name = re.sub(r"\s+", " ", name).strip().lstrip(".").strip()
    name = re.sub(r'[<>:"|?*]', "_", name)
    if not name:
        name = "document.pdf"
    if not name.lower().endswith(".pdf"):
        name += ".pdf"
    if len(name) > 200:
        name = name[: 200 - 4].rstrip() + ".pdf"
    return name


def storage_key(sha256: str) -> str:
    return f"sha256/{sha256[:2]}/{sha256}"


def _path(storage_dir: str | os.PathLike, key: str) -> Path:
    root = Path(storage_dir).resolve()
    path = (root / key).resolve()
    if root not in path.parents:
        raise NotFound("the file of this document is not in the storage")
    return path


def store_bytes(storage_dir: str | os.PathLike, data: bytes) -> tuple[str, str]:
    """Write `data` under its SHA-256, atomically; returns (sha256, storage key). Idempotent."""
    sha = hashlib.sha256(data).hexdigest()
    key = storage_key(sha)
    target = _path(storage_dir, key)
    if target.is_file() and target.stat().st_size == len(data):
        return sha, key
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".upload-", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return sha, key


def read_document(storage_dir: str | os.PathLike, document: Document) -> bytes:
    """The stored bytes of a document, checked against its fingerprint."""
    path = _path(storage_dir, document.storage_key)
    try:
        data = path.read_bytes()
    except OSError:
        raise NotFound("the file of this document is missing from the storage") from None
    if hashlib.sha256(data).hexdigest() != document.sha256:
        raise NotFound("the stored file does not match its fingerprint; contact the call secretariat")
    return data


# ---------------------------------------------------------------------------------------------------------
# The operation


def current_stage(proposal: Proposal) -> str:
    return stage_of(proposal.state, Variant.of(proposal.call))


def upload_document(
    session: Session,
    actor,
    proposal: Proposal,
    *,
    kind: str,
    data: bytes,
    filename: str | None,
    storage_dir: str | os.PathLike,
    partner_id: int | None = None,
) -> Document:
    """Add a new version of a document of the proposal's current stage. Refusals name the field."""
    from workflow.operations import lock_proposal

    proposal = lock_proposal(session, proposal.id)
    require(can(actor, "proposal.upload", proposal))
    if kind not in DOCUMENT_KINDS:
        raise InvalidInput("choose the type of document", "kind")
    partner = None
    if partner_id is not None:
        partner = session.get(Partner, partner_id)
        if partner is None or partner.proposal_id != proposal.id:
            raise InvalidInput("choose one of this proposal's partners", "partner")
    if kind in PER_PARTNER_KINDS and partner is None:
        raise InvalidInput(f"choose the partner this {kind_label(kind).lower()} belongs to", "partner")
    if kind in PROPOSAL_KINDS and partner is not None:
        raise InvalidInput(f"the {kind_label(kind).lower()} belongs to the whole proposal; choose no partner",
                           "partner")
    stage = current_stage(proposal)
    stage_def = proposal.call.settings.stage(stage) or proposal.call.settings.stages[-1]
    pages = check_file(data, kind, stage, stage_def)

    sha, key = store_bytes(storage_dir, data)
    previous = session.scalar(
        select(func.max(Document.version)).where(
            Document.proposal_id == proposal.id, Document.stage == stage, Document.kind == kind,
            Document.partner_id.is_(None) if partner is None else Document.partner_id == partner.id,
        )
    ) or 0
    doc = Document(
        proposal_id=proposal.id, partner_id=partner.id if partner else None, stage=stage, kind=kind,
        version=previous + 1, filename=display_filename(filename), content_type=PDF_MIME,
        size_bytes=len(data), page_count=pages, sha256=sha, storage_key=key, uploaded_by_id=actor.id,
        uploaded_at=utcnow(),
    )
    session.add(doc)
    # The proposal's version moves too: a submission confirmed on an older page is told it changed.
    proposal.updated_at = utcnow()
    flag_modified(proposal, "updated_at")  # an UPDATE even when the clock has not moved (frozen in tests)
    session.flush()
    audit.record(session, actor, "document.uploaded", doc, call_id=proposal.call_id, after={
        "proposal_id": proposal.id, "stage": stage, "kind": kind, "partner_id": doc.partner_id,
        "version": doc.version, "filename": doc.filename, "pages": pages, "size_bytes": len(data), "sha256": sha,
    })
    return doc


# ---------------------------------------------------------------------------------------------------------
# Reading


@dataclass
class DocumentSlot:
    """All versions of one kind of document (for one partner, or for the proposal) in one stage."""

    kind: str
    partner: Partner | None
    versions: list[Document]  # newest first
    page_limit: int | None

    @property
    def latest(self) -> Document:
        return self.versions[0]

    @property
    def label(self) -> str:
        if self.partner is not None:
            return f"{kind_label(self.kind)} — partner {self.partner.position}, {self.partner.organisation}"
        if self.kind in PER_PARTNER_KINDS:
            return f"{kind_label(self.kind)} — partner removed"
        return kind_label(self.kind)


def document_slots(session: Session, proposal: Proposal, stage: str | None = None) -> list[DocumentSlot]:
    stage = stage or current_stage(proposal)
    stage_def = proposal.call.settings.stage(stage)
    docs = session.scalars(
        select(Document).where(Document.proposal_id == proposal.id, Document.stage == stage)
        .order_by(Document.version.desc(), Document.id.desc())
    ).all()
    partners = {p.id: p for p in proposal.partners}
    grouped: dict[tuple, list[Document]] = defaultdict(list)
    for d in docs:
        grouped[(d.kind, d.partner_id)].append(d)
    slots = [
        DocumentSlot(kind, partners.get(pid), versions,
                     stage_def.page_limits.get(kind) if stage_def else None)
        for (kind, pid), versions in grouped.items()
    ]
    order = {k: i for i, k in enumerate(DOCUMENT_KINDS)}
    slots.sort(key=lambda s: (order.get(s.kind, 99), s.partner.position if s.partner else 0, s.kind))
    return slots


def get_document(session: Session, proposal: Proposal, document_id: int) -> Document:
    doc = session.get(Document, document_id)
    if doc is None or doc.proposal_id != proposal.id:
        raise NotFound("no such document")
    return doc
