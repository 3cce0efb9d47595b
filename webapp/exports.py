"""Tables as downloads: CSV (UTF-8 with a byte-order mark, so spreadsheet programs read the accents) and
XLSX (openpyxl). Both are safe against formula injection: a text cell that a spreadsheet would read as a
formula (it starts with = + - @, a tab or a carriage return) is written with a leading single quote, so
an organisation named "=HYPERLINK(...)" stays text. Numbers stay numbers.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence

from flask import Response
from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
CSV_MIME = "text/csv; charset=utf-8"
XLSX_MIME = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
# Characters XML 1.0 cannot hold (openpyxl refuses them); they cannot come from a form but may from imports.
_ILLEGAL_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def safe_cell(value):
    """The value as a spreadsheet should store it: text that would start a formula gets a leading quote."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        return value
    text = str(value)
    if text.startswith(FORMULA_TRIGGERS):
        return "'" + text
    return text


def _rows(header: Sequence[str], rows: Iterable[Sequence]) -> list[list]:
    return [[safe_cell(v) for v in header]] + [[safe_cell(v) for v in row] for row in rows]


def _disposition(filename: str) -> str:
    plain = re.sub(r"[^A-Za-z0-9._-]+", "-", filename).strip("-") or "export"
    return f'attachment; filename="{plain}"'


def csv_bytes(header: Sequence[str], rows: Iterable[Sequence]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerows(_rows(header, rows))
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def xlsx_bytes(header: Sequence[str], rows: Iterable[Sequence], sheet: str = "Export") -> bytes:
    wb = Workbook()
    ws = wb.active
    ws.title = re.sub(r"[\[\]:*?/\\]", " ", sheet)[:31] or "Export"
    widths: dict[int, int] = {}
    for r, row in enumerate(_rows(header, rows), start=1):
        for c, value in enumerate(row, start=1):
            if isinstance(value, str):
                value = _ILLEGAL_XML.sub("", value)
            cell = ws.cell(row=r, column=c, value=value)
            if isinstance(value, str):
                cell.data_type = "s"  # never a formula, whatever openpyxl would guess
            if r == 1:
                cell.font = Font(bold=True)
            widths[c] = max(widths.get(c, 0), min(len(str(value)), 60))
    for c, width in widths.items():
        ws.column_dimensions[get_column_letter(c)].width = width + 2
    ws.freeze_panes = "A2"
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def csv_response(filename: str, header: Sequence[str], rows: Iterable[Sequence]) -> Response:
    return Response(csv_bytes(header, rows), mimetype=CSV_MIME,
                    headers={"Content-Disposition": _disposition(filename), "Cache-Control": "no-store"})


def xlsx_response(filename: str, header: Sequence[str], rows: Iterable[Sequence], sheet: str = "Export") -> Response:
    return Response(xlsx_bytes(header, rows, sheet), mimetype=XLSX_MIME,
                    headers={"Content-Disposition": _disposition(filename), "Cache-Control": "no-store"})


def table_response(fmt: str, basename: str, header: Sequence[str], rows: Iterable[Sequence],
                   sheet: str = "Export") -> Response:
    """`fmt` is "csv" or "xlsx"; anything else is the caller's 404."""
    rows = list(rows)
    if fmt == "csv":
        return csv_response(f"{basename}.csv", header, rows)
    return xlsx_response(f"{basename}.xlsx", header, rows, sheet)
