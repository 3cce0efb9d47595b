"""PDF documents rendered with WeasyPrint from Jinja templates: submission receipts (and, later, letters).

The URL fetcher refuses everything but the app's own static files, so a template can never make the
server fetch a remote or local-file URL.
"""

from __future__ import annotations

from pathlib import Path

from flask import current_app, render_template
from weasyprint import CSS, HTML
from weasyprint.urls import URLFetcher

STATIC = Path(__file__).resolve().parent / "static"


class LocalOnlyFetcher(URLFetcher):
    """Fetches the app's own static files and nothing else (no network, no other local files)."""

    def fetch(self, url, headers=None):
        if url.startswith("file://"):
            from urllib.parse import unquote, urlsplit

            path = Path(unquote(urlsplit(url).path)).resolve()
            if STATIC in path.parents and path.is_file():
                return super().fetch(path.as_uri(), headers)
        raise ValueError(f"PDF templates may only use the app's static files, not {url[:80]}")


local_fetcher = LocalOnlyFetcher(allowed_protocols=("file",), allow_redirects=False)
BASE_URL = STATIC.as_uri() + "/"


_PDF_CSS = None


def _css() -> CSS:
    global _PDF_CSS
    if _PDF_CSS is None:
        _PDF_CSS = CSS(filename=str(STATIC / "css" / "pdf.css"), url_fetcher=local_fetcher, base_url=BASE_URL)
    return _PDF_CSS


def html_to_pdf(html: str) -> bytes:
    return HTML(string=html, base_url=BASE_URL, url_fetcher=local_fetcher).write_pdf(
        stylesheets=[_css()]
    )


def receipt_pdf(submission, proposal, call) -> bytes:
    """The time-stamped receipt of one submission, with the SHA-256 of the submitted content."""
    with current_app.app_context():
        html = render_template("pdf/receipt.html", submission=submission, proposal=proposal, call=call,
                               content=submission.content)
    return html_to_pdf(html)
