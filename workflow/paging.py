"""Pages of long lists: one window type for every list that paginates, so each page costs the same
whatever the size of the call (a count, then one page of rows)."""

from __future__ import annotations

import math
from dataclasses import dataclass

PER_PAGE = 50


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
