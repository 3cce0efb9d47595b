"""The documents page in the browser's place (Flask test client): typed PDF uploads with a clear message
next to the file field for every refusal and nothing stored, versions listed, downloads only for people the
policy allows, as attachments of the right type."""

from __future__ import annotations

import html
import io
import re
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tests import factories as f
from tests.unit.test_documents import (
    NOT_A_PDF,
    encrypted_pdf,
    make_pdf,
    small_limits_call,
    stored_files,
    truncated_pdf,
)
from workflow.models import Document, ProposalMember


def text_of(response) -> str:
    return re.sub(r"\s+", " ", html.unescape(response.get_data(as_text=True)))


def login(client, user):
    response = client.post("/login", data={"email": user.email, "password": "correct horse battery"})
    assert response.status_code == 302, "login failed"


@pytest.fixture
def w(session, frozen, app):
    frozen(f.PRE_OPEN)

    class W:
        pass

    w = W()
    w.session = session
    w.call = small_limits_call(session)
    w.proposal = f.valid_proposal(session, w.call)
    w.coordinator = w.proposal.coordinator
    w.reader = f.make_user(session, "Rita Reader")
    session.add(ProposalMember(proposal_id=w.proposal.id, user_id=w.reader.id, can_edit=False))
    w.outsider = f.make_user(session, "Olivia Outsider")
    w.officer = f.officer(session, w.call, "ANR-T")
    session.commit()
    w.storage = Path(app.config["JOINTCALL"]["storage_dir"])
    w.url = f"/my/proposals/{w.proposal.id}/documents"
    return w


def post_file(client, w, data: bytes, filename: str = "description.pdf", kind: str = "project_description",
              partner: str = ""):
    return client.post(w.url, data={"kind": kind, "partner": partner, "file": (io.BytesIO(data), filename)},
                       content_type="multipart/form-data")


def documents(session) -> int:
    return session.scalar(select(func.count(Document.id)))


def test_the_coordinator_uploads_a_pdf_and_sees_it_with_its_versions(client, w):
    login(client, w.coordinator)
    page = client.get(w.url)
    assert page.status_code == 200
    page_text = text_of(page)
    assert '<label class="form-label" for="file">PDF file</label>' in page_text
    assert 'enctype="multipart/form-data"' in page_text
    assert "at most 1 MB" in page_text and "Project description at most 2 pages" in page_text

    first = post_file(client, w, make_pdf(1), "Beschreibung v1.pdf")
    assert first.status_code == 302
    assert first.headers["Location"].endswith(f"/my/proposals/{w.proposal.id}")
    second = post_file(client, w, make_pdf(2), "../secret/Beschreibung v2.pdf")
    assert second.status_code == 302
    assert documents(w.session) == 2
    assert len(stored_files(w.storage)) == 2

    client.get(f"/my/proposals/{w.proposal.id}")  # where the flashes are shown
    page_text = text_of(client.get(w.url))
    listing = page_text[page_text.index('id="current-docs"'):]
    assert "Beschreibung v1.pdf" in listing and "Beschreibung v2.pdf" in listing and "secret" not in page_text
    assert listing.index("Beschreibung v2.pdf") < listing.index("Beschreibung v1.pdf")  # newest first
    assert re.search(r"<td>2 <span class=\"badge bg-success\">latest</span></td>", listing)


def test_the_overview_shows_the_upload_message_and_the_latest_document(client, w):
    login(client, w.coordinator)
    response = post_file(client, w, make_pdf(2), "description.pdf", )
    page = text_of(client.get(response.headers["Location"]))
    assert "Project description uploaded: description.pdf, version 1, 2 pages." in page
    assert 'id="documents-panel"' in page and "description.pdf" in page


@pytest.mark.parametrize("data, filename, message", [
    (NOT_A_PDF, "renamed.pdf", "this file is not a PDF (whatever its name says)"),
    (truncated_pdf(), "cut.pdf", "the PDF is incomplete"),
    (encrypted_pdf(), "locked.pdf", "the PDF is password-protected or encrypted; upload a PDF without protection"),
    (make_pdf(3), "long.pdf", "the project description has 3 pages; at most 2 pages are allowed at the "
                              "pre-proposal stage"),
    (make_pdf(1, padding=1024 * 1024 + 100), "big.pdf", "; at most 1 MB are allowed at the pre-proposal stage"),
], ids=["renamed-non-pdf", "truncated", "encrypted", "too-many-pages", "too-large"])
def test_a_bad_upload_is_refused_next_to_the_file_field_and_nothing_is_stored(client, w, data, filename, message):
    login(client, w.coordinator)
    response = post_file(client, w, data, filename)
    assert response.status_code == 422
    page_text = text_of(response)
    error = re.search(r'<div class="field-error" id="file-error" role="alert">([^<]*)</div>', page_text)
    assert error is not None and message in error.group(1)
    assert 'aria-describedby="file-error"' in page_text and 'aria-invalid="true"' in page_text
    assert documents(w.session) == 0
    assert stored_files(w.storage) == []


def test_no_file_or_a_cv_without_partner_is_refused_next_to_the_field(client, w):
    login(client, w.coordinator)
    response = client.post(w.url, data={"kind": "project_description", "partner": ""},
                           content_type="multipart/form-data")
    assert response.status_code == 422
    assert 'id="file-error" role="alert">choose a PDF file to upload' in text_of(response)
    response = post_file(client, w, make_pdf(1), "cv.pdf", kind="cv")
    assert response.status_code == 422
    assert 'id="partner-error">choose the partner this cv belongs to' in text_of(response)
    response = post_file(client, w, make_pdf(1), "cv.pdf", kind="cv", partner=str(w.proposal.partners[1].id))
    assert response.status_code == 302
    (doc,) = w.session.scalars(select(Document)).all()
    assert doc.partner_id == w.proposal.partners[1].id


def test_download_is_an_attachment_of_the_right_type_for_those_allowed(client, w):
    data = make_pdf(2)
    login(client, w.coordinator)
    post_file(client, w, data, "Projekt Übersicht.pdf")
    doc = w.session.scalars(select(Document)).one()
    url = f"{w.url}/{doc.id}"
    assert url in text_of(client.get(w.url))

    response = client.get(url)
    assert response.status_code == 200
    assert response.mimetype == "application/pdf"
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith("attachment;") and "filename*=UTF-8''Projekt%20%C3%9Cbersicht.pdf" in disposition
    assert response.data == data
    assert "no-store" in response.headers["Cache-Control"]

    client.post("/logout")
    assert client.get(url).status_code == 302  # anonymous: to the login page
    login(client, w.outsider)
    refused = client.get(url)
    assert refused.status_code == 403 and "you are not part of this proposal's consortium" in text_of(refused)
    client.post("/logout")
    login(client, w.officer)
    assert client.get(url).status_code == 403  # a funder reads proposals only once they are submitted
    client.post("/logout")
    login(client, w.reader)
    assert client.get(url).data == data  # a read-only co-applicant may download


def test_a_document_of_another_proposal_is_not_found_through_this_one(client, w):
    other = f.valid_proposal(w.session, w.call, coordinator=w.coordinator, acronym="OTHER")
    w.session.commit()
    login(client, w.coordinator)
    client.post(f"/my/proposals/{other.id}/documents",
                data={"kind": "project_description", "partner": "", "file": (io.BytesIO(make_pdf(1)), "o.pdf")},
                content_type="multipart/form-data")
    doc = w.session.scalars(select(Document)).one()
    assert client.get(f"{w.url}/{doc.id}").status_code == 404


def test_uploading_is_refused_to_read_only_members_and_after_submission(client, w):
    login(client, w.reader)
    page = text_of(client.get(w.url))
    assert "You cannot upload documents now: the coordinator gave you read-only access." in page
    assert post_file(client, w, make_pdf(1)).status_code == 403
    client.post("/logout")
    w.proposal.state = "submitted"
    w.session.commit()
    login(client, w.coordinator)
    refused = post_file(client, w, make_pdf(1))
    assert refused.status_code == 403
    assert "a submitted proposal cannot be edited; reopen it first if the deadline allows" in text_of(refused)
    assert documents(w.session) == 0 and stored_files(w.storage) == []
