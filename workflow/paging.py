"""Pages of long lists: one window type for every list that paginates, so each page costs the same
whatever the size of the call (a count, then one page of rows)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

PER_PAGE = 50
_NUMBER = re.compile(r"[0-9]{1,9}")  # ASCII digits only ("²".isdigit() is true), small enough for any column


def positive_int(raw: str | None) -> int | None:
    """A page number or an id from a query string: 1 to 999,999,999 in ASCII digits, else None (a crafted
    value must not reach int() or the database as an overflow)."""
    raw = (raw or "").strip()
    if not _NUMBER.fullmatch(raw):
        return None
    value = int(raw)
    return value if value > 0 else None


def page_number(raw: str | None) -> int:
    """The ?page= of a list: a positive number, anything else is page 1."""
    return positive_int(raw) or 1


@dataclass(frozen=True)
class Window:
    """Which slice of `total` rows a page shows. `page` is clamped to the pages that exist."""

    total: int
    requested: int = 1
    per_page: int = PER_PAGE

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.per_page))

    @property
    def page(self) -> int:
        return min(max(1, self.requested), self.pages)

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.per_page

    @property
    def first(self) -> int:
        """1-based number of the first row shown (0 when there is none)."""
        return 0 if not self.total else self.offset + 1

    @property
    def last(self) -> int:
        return min(self.total, self.page * self.per_page)

    def slice(self, rows: list) -> list:
        """This page of rows already in memory (when the rows must be computed together, e.g. a ranking)."""
        return rows[self.offset:self.offset + self.per_page]

    def apply(self, stmt):
        """This page of a SELECT."""
        return stmt.limit(self.per_page).offset(self.offset)
