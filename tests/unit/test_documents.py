"""Uploaded documents (workflow.documents; DOMAIN.md rule 14): PDFs checked by their content against the
stage's limits, stored content-addressed and atomically, every upload a new version, nothing stored for a
refused file, names cleaned for display and never used as paths.

The helpers at the top (PDF makers, a call with small limits) are used by the web tests as well.
"""

from __future__ import annotations

import copy
import hashlib
import io
from pathlib import Path

import pytest
from pypdf import PdfWriter
from sqlalchemy import func, select

from tests import factories as f
from workflow import audit
from workflow.callconfig import CallDef
from workflow.calls import load_call
from workflow.documents import (
    display_filename,
    document_slots,
    pdf_page_count,
    read_document,
    upload_document,
)
from workflow.errors import AccessDenied, InvalidInput, NotFound
from workflow.models import AuditEvent, Document, ProposalMember

# ---------------------------------------------------------------------------------------------------------
# Helpers (also imported by tests/web)


def make_pdf(pages: int = 1, *, padding: int = 0) -> bytes:
    """A small valid PDF with `pages` blank pages; `padding` bytes of metadata make it larger."""
    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(width=595, height=842)
    if padding:
        writer.add_metadata({"/Padding": "x" * padding})
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def encrypted_pdf(pages: int = 1) -> bytes:
    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(width=595, height=842)
    writer.encrypt(user_password="secret", owner_password="owner-secret")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def truncated_pdf() -> bytes:
    data = make_pdf(3)
    return data[: len(data) * 2 // 3]


NOT_A_PDF = b"PK\x03\x04 this is a word processor file renamed to .pdf" + b"\x00" * 200


def small_limits_call(session, *, code: str = "docs-call", pre_pages: int = 2, full_pages: int = 8,
                      max_mb: int = 1, **consortium):
    """The factories' test call with small upload limits: pre description <= 2 pages, 1 MB per file."""
    data = copy.deepcopy(f.BASE_DEFINITION)
    data["code"] = code
    data["consortium"].update(consortium)
    data["stages"][0].update(page_limits={"project_description": pre_pages, "cv": 2}, max_upload_mb=max_mb)
    data["stages"][1].update(page_limits={"project_description": full_pages, "cv": 3}, max_upload_mb=max_mb)
    return load_call(session, None, CallDef.model_validate(data)).call


def stored_files(storage: Path) -> list[Path]:
    return [p for p in storage.rglob("*") if p.is_file()] if storage.exists() else []


def count_documents(session) -> int:
    return session.scalar(select(func.count(Document.id)))


@pytest.fixture
def world(session, frozen, tmp_path):
    frozen(f.PRE_OPEN)
    call = small_limits_call(session)
    proposal = f.valid_proposal(session, call)
    session.commit()

    class World:
        pass

    w = World()
    w.session, w.call, w.proposal, w.coordinator = session, call, proposal, proposal.coordinator
    w.storage = tmp_path / "files"
    return w


def upload(w, data: bytes, kind: str = "project_description", filename: str = "description.pdf",
           partner=None, actor=None):
    return upload_document(w.session, actor or w.coordinator, w.proposal, kind=kind, data=data, filename=filename,
                           storage_dir=w.storage, partner_id=partner.id if partner is not None else None)


# ---------------------------------------------------------------------------------------------------------
# Accepted uploads


def test_an_upload_is_stored_under_its_sha256_with_its_page_count_and_audited(world):
    data = make_pdf(2)
    doc = upload(world, data)
    world.session.commit()

    sha = hashlib.sha256(data).hexdigest()
    assert (doc.kind, doc.stage, doc.version, doc.page_count, doc.size_bytes) == (
        "project_description", "pre", 1, 2, len(data))
    assert doc.sha256 == sha and doc.content_type == "application/pdf"
    assert doc.storage_key.endswith(sha)
    assert (world.storage / doc.storage_key).read_bytes() == data
    assert read_document(world.storage, doc) == data
    event = world.session.scalar(select(AuditEvent).where(AuditEvent.action == "document.uploaded"))
    assert event.object_id == doc.id and event.after["sha256"] == sha and event.call_id == world.call.id
    assert audit.verify(world.session).ok
    # No temporary file is left behind by the atomic write.
    assert stored_files(world.storage) == [world.storage / doc.storage_key]


def test_every_upload_is_a_new_version_and_earlier_versions_are_kept(world):
    first = upload(world, make_pdf(1), filename="v1.pdf")
    second = upload(world, make_pdf(2), filename="v2.pdf")
    world.session.commit()
    assert (first.version, second.version) == (1, 2)
    (slot,) = document_slots(world.session, world.proposal)
    assert [d.version for d in slot.versions] == [2, 1]
    assert slot.latest.filename == "v2.pdf"
    assert read_document(world.storage, first) == make_pdf(1)


def test_cvs_and_letters_are_versioned_per_partner(world):
    p1, p2 = world.proposal.partners[0], world.proposal.partners[1]
    a = upload(world, make_pdf(1), "cv", "cv-a.pdf", partner=p1)
    b = upload(world, make_pdf(2), "cv", "cv-b.pdf", partner=p2)
    a2 = upload(world, make_pdf(2), "cv", "cv-a2.pdf", partner=p1)
    letter = upload(world, make_pdf(1), "letter_of_commitment", "letter.pdf", partner=p2)
    world.session.commit()
    assert (a.version, b.version, a2.version, letter.version) == (1, 1, 2, 1)
    labels = [(s.label, len(s.versions)) for s in document_slots(world.session, world.proposal)]
    assert labels == [
        ("CV — partner 1, Charité Berlin", 2),
        ("CV — partner 2, Institut Curie", 1),
        ("Letter of commitment — partner 2, Institut Curie", 1),
    ]


def test_the_same_bytes_twice_share_one_stored_file(world):
    data = make_pdf(1)
    one = upload(world, data)
    two = upload(world, data, filename="again.pdf")
    world.session.commit()
    assert one.storage_key == two.storage_key
    assert len(stored_files(world.storage)) == 1


def test_an_upload_moves_the_proposal_version_so_a_stale_submit_page_is_detected(world):
    before = world.proposal.version
    upload(world, make_pdf(1))
    world.session.commit()
    assert world.proposal.version == before + 1


# ---------------------------------------------------------------------------------------------------------
# Refused uploads: a clear message for the file field, and nothing stored


@pytest.mark.parametrize("data, message", [
    (NOT_A_PDF, "this file is not a PDF"),
    (b"", "the file is empty"),
    (truncated_pdf(), "the PDF is incomplete"),
    (encrypted_pdf(), "the PDF is password-protected or encrypted"),
    (b"%PDF-1.7\n" + b"garbage " * 40 + b"\n%%EOF\n", "the PDF is damaged and cannot be read"),
    (make_pdf(3), "the project description has 3 pages; at most 2 pages are allowed at the pre-proposal stage"),
    (make_pdf(1, padding=1024 * 1024 + 10), "at most 1 MB are allowed at the pre-proposal stage"),
], ids=["not-a-pdf", "empty", "truncated", "encrypted", "garbage", "too-many-pages", "too-large"])
def test_a_bad_file_is_refused_with_a_message_for_the_file_field_and_nothing_is_stored(world, data, message):
    before = world.proposal.version
    with pytest.raises(InvalidInput) as refused:
        upload(world, data)
    world.session.rollback()
    assert refused.value.field == "file"
    assert message in str(refused.value)
    assert count_documents(world.session) == 0
    assert stored_files(world.storage) == []
    world.session.refresh(world.proposal)
    assert world.proposal.version == before


def test_page_limits_are_per_kind(world):
    partner = world.proposal.partners[0]
    with pytest.raises(InvalidInput, match="the cv has 3 pages; at most 2 pages"):
        upload(world, make_pdf(3), "cv", partner=partner)
    world.session.rollback()
    # "other" documents have no page limit in this call.
    doc = upload(world, make_pdf(12), "other", "annex.pdf")
    assert doc.page_count == 12


def test_the_full_stage_limits_apply_once_the_full_proposal_is_started(world, frozen):
    world.proposal.state = "full_draft"
    world.session.commit()
    frozen(f.FULL_OPEN)
    doc = upload(world, make_pdf(5))  # 5 > 2 pre-stage pages, but <= 8 at the full stage
    assert (doc.stage, doc.page_count) == ("full", 5)


@pytest.mark.parametrize("kind, with_partner, field, message", [
    ("cv", False, "partner", "choose the partner this cv belongs to"),
    ("letter_of_commitment", False, "partner", "choose the partner this letter of commitment belongs to"),
    ("project_description", True, "partner", "belongs to the whole proposal"),
    ("budget_sheet", False, "kind", "choose the type of document"),
])
def test_kind_and_partner_must_fit(world, kind, with_partner, field, message):
    partner = world.proposal.partners[1] if with_partner else None
    with pytest.raises(InvalidInput) as refused:
        upload(world, make_pdf(1), kind, partner=partner)
    assert refused.value.field == field and message in str(refused.value)


def test_a_partner_of_another_proposal_is_refused(world):
    other = f.valid_proposal(world.session, world.call, acronym="OTHER")
    with pytest.raises(InvalidInput, match="choose one of this proposal's partners"):
        upload(world, make_pdf(1), "cv", partner=other.partners[0])


def test_only_people_who_may_edit_can_upload_and_only_while_the_proposal_is_editable(world):
    outsider = f.make_user(world.session, "Olivia Outsider")
    with pytest.raises(AccessDenied, match="only the consortium can edit this proposal"):
        upload(world, make_pdf(1), actor=outsider)
    world.session.rollback()
    reader = f.make_user(world.session, "Rita Reader")
    world.session.add(ProposalMember(proposal_id=world.proposal.id, user_id=reader.id, can_edit=False))
    world.session.commit()
    with pytest.raises(AccessDenied, match="read-only"):
        upload(world, make_pdf(1), actor=reader)
    world.session.rollback()
    world.proposal.state = "submitted"
    world.session.commit()
    with pytest.raises(AccessDenied, match="a submitted proposal cannot be edited"):
        upload(world, make_pdf(1))
    world.session.rollback()
    assert count_documents(world.session) == 0 and stored_files(world.storage) == []


def test_a_rolled_back_upload_leaves_no_row_and_its_orphan_file_is_reused(world):
    data = make_pdf(1)
    upload(world, data)
    world.session.rollback()  # e.g. the request failed after the operation
    assert count_documents(world.session) == 0
    assert len(stored_files(world.storage)) == 1  # harmless orphan
    doc = upload(world, data)
    world.session.commit()
    assert read_document(world.storage, doc) == data
    assert len(stored_files(world.storage)) == 1


def test_a_tampered_or_missing_stored_file_is_not_served(world):
    doc = upload(world, make_pdf(1))
    world.session.commit()
    path = world.storage / doc.storage_key
    path.write_bytes(make_pdf(2))
    with pytest.raises(NotFound, match="does not match its fingerprint"):
        read_document(world.storage, doc)
    path.unlink()
    with pytest.raises(NotFound, match="missing"):
        read_document(world.storage, doc)


# ---------------------------------------------------------------------------------------------------------
# Names


@pytest.mark.parametrize("given, shown", [
    ("description.pdf", "description.pdf"),
    ("../../etc/passwd.pdf", "passwd.pdf"),
    ("C:\\Users\\cora\\My Proposal.PDF", "My Proposal.PDF"),
    ("evil\x00name\r\n.pdf", "evilname .pdf"),
    ("  .hidden.pdf  ", "hidden.pdf"),
    ("Projektbeschreibung für Förderer", "Projektbeschreibung für Förderer.pdf"),
    ("a<b>c:d|e?.pdf", "a_b_c_d_e_.pdf"),
    ("", "document.pdf"),
    (None, "document.pdf"),
])
def test_filenames_are_cleaned_for_display(given, shown):
    assert display_filename(given) == shown


def test_a_long_filename_is_shortened_and_keeps_its_extension():
    name = display_filename("x" * 400 + ".pdf")
    assert len(name) <= 200 and name.endswith(".pdf")


def test_the_given_name_never_becomes_a_path(world):
    doc = upload(world, make_pdf(1), filename="../../../../outside.pdf")
    world.session.commit()
    assert doc.filename == "outside.pdf"
    assert "outside" not in doc.storage_key
    assert all(world.storage in p.parents for p in stored_files(world.storage))


def test_page_count_of_a_valid_pdf():
    assert pdf_page_count(make_pdf(4)) == 4
