"""Which mail client a request came from, where its user agent says so.

Substring tests on the lowercased user agent, most specific first: the image proxies of web
mail (Gmail, Yahoo, HEY) name themselves, Outlook on Windows, Mac and mobile carries an Outlook
token, and Apple Mail shows WebKit with no browser token at all. A plain browser says nothing
about the mail client (a click opens the reader's browser), so it is "unknown".
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

MailClient = Literal[
    "outlook",
    "apple_mail",
    "gmail",
    "yahoo_mail",
    "thunderbird",
    "superhuman",
    "hey",
    "front",
    "evolution",
    "unknown",
]

# (token in the lowercased user agent, family), checked in order.
_TOKENS: tuple[tuple[str, MailClient], ...] = (
    ("googleimageproxy", "gmail"),
    ("ggpht.com", "gmail"),
    ("yahoomailproxy", "yahoo_mail"),
    ("outlook-ios", "outlook"),
    ("outlook-android", "outlook"),
    ("microsoft outlook", "outlook"),
    ("macoutlook/", "outlook"),
    ("ms-office", "outlook"),
    ("msoffice", "outlook"),
    ("thunderbird/", "thunderbird"),
    ("superhuman", "superhuman"),
    ("hey.com/imageproxy", "hey"),
    ("frontapp", "front"),
    ("evolution/", "evolution"),
)
# Tokens a browser (or a browser's web view) adds; Apple Mail's WebKit carries none of them.
_BROWSER_TOKENS = (
    "safari/",
    "version/",
    "chrome/",
    "crios/",
    "fxios/",
    "edgios/",
    "firefox/",
    "gsa/",
)
_APPLE_DEVICES = ("macintosh", "iphone", "ipad")


@lru_cache(maxsize=4096)
def mail_client(user_agent: str) -> MailClient:
    """The mail client family a user agent names, or "unknown"."""
    lowered = user_agent.lower()
    for token, family in _TOKENS:
        if token in lowered:
            return family
    if is_apple_mail_webkit(lowered):
        return "apple_mail"
    return "unknown"


def is_apple_mail_webkit(lowered: str) -> bool:
    """Apple's WebKit with no browser token: Apple Mail, and the Mail Privacy Protection
    proxy that fetches on its behalf (same string). Expects a lowercased user agent."""
    return (
        "applewebkit/" in lowered
        and any(device in lowered for device in _APPLE_DEVICES)
        and not any(token in lowered for token in _BROWSER_TOKENS)
    )
