"""The request class: form and query values arrive without NUL and other control characters.

No field anywhere may store them (PostgreSQL refuses NUL in text; the others break mail headers and
exports), so they are dropped once, where input enters, instead of in every form. Tabs and line breaks
stay; one-line fields collapse line breaks themselves.
"""

from __future__ import annotations

import re

from flask import Request
from werkzeug.datastructures import ImmutableMultiDict, iter_multi_items

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def clean(value):
    return _CONTROL.sub("", value) if isinstance(value, str) else value


class CleanMultiDict(ImmutableMultiDict):
    def __init__(self, mapping=None):
        if mapping is not None:
            mapping = [(clean(k), clean(v)) for k, v in iter_multi_items(mapping)]
        super().__init__(mapping)


class JointcallRequest(Request):
    parameter_storage_class = CleanMultiDict
