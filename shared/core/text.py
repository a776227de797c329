"""Text that ends up in a mail: what a header line and a body may hold. Pure.

Text that ends up in a mail header must stay on its line: no C0 or C1 control characters
(NUL, ESC, tab, vertical tab, form feed, U+001C-U+001E, NEL U+0085...), no line or paragraph
separator (U+2028, U+2029), and no lone surrogate, which UTF-8 cannot encode.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, EmailStr

_NOT_IN_HEADERS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def header_text(value: str) -> str:
    """Refuse what would break out of, or cannot be written into, a mail header line."""
    if _NOT_IN_HEADERS.search(value):
        raise ValueError(
            "must not hold control characters, line or paragraph separators, or lone surrogates"
        )
    return value


def body_text(value: str) -> str:
    """Refuse a lone surrogate: it cannot be encoded as UTF-8, so the body cannot be sent."""
    if _LONE_SURROGATE.search(value):
        raise ValueError("must not hold lone surrogates (it is not valid Unicode text)")
    return value


HeaderText = Annotated[str, AfterValidator(header_text)]
BodyText = Annotated[str, AfterValidator(body_text)]
Address = Annotated[EmailStr, AfterValidator(header_text)]
