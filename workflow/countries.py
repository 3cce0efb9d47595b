"""Countries: ISO 3166 codes, English names (from Babel's CLDR data) and the EU/associated list.

Rule 5 counts partners in EU Member States or Horizon Europe Associated Countries; a call may replace
the built-in list with its own (`eu_associated_countries`).
"""

from __future__ import annotations

from functools import cache

from babel import Locale

EU_MEMBER_STATES = frozenset(
    "AT BE BG HR CY CZ DK EE FI FR DE GR IE IT LV LT LU MT NL PL PT RO SK SI ES SE HU".split()
)
# Horizon Europe Associated Countries (as of 2025).
ASSOCIATED_COUNTRIES = frozenset(
    "AL AM BA CA CH FO GB GE IL IS KR MD ME MK NO NZ RS TN TR UA XK".split()
)
EU_OR_ASSOCIATED = EU_MEMBER_STATES | ASSOCIATED_COUNTRIES


# CLDR territory codes that are not countries.
_PSEUDO_CODES = frozenset({"EU", "EZ", "UN", "QO", "XA", "XB", "ZZ"})


@cache
def _names() -> dict[str, str]:
    territories = Locale("en").territories
    return {code: name for code, name in territories.items()
            if len(code) == 2 and code.isalpha() and code not in _PSEUDO_CODES}


def is_known_country(code: str) -> bool:
    return isinstance(code, str) and code in _names()


def country_name(code: str | None) -> str:
    if not code:
        return ""
    return _names().get(code, code)


def all_countries() -> list[tuple[str, str]]:
    """(code, name) pairs sorted by name, for select boxes."""
    return sorted(_names().items(), key=lambda item: item[1])
