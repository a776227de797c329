"""The words every capability shares, declared once: what a tracking event can be (its
kind), who made it (its class), and which classes the headline KPIs count by default."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal, get_args

EventKind = Literal["open", "click", "attachment"]
EVENT_KINDS: tuple[EventKind, ...] = get_args(EventKind)

# Who made an event (shared.classification): a person; a privacy proxy fetching the images
# when a person opens the message (Gmail, Yahoo, HEY: a read, its time approximate); a
# prefetch at delivery whether or not anyone reads (Apple Mail Privacy Protection, Gmail's
# prefetch: no evidence of a read); no telling; a security scanner.
EventClass = Literal["human", "proxy_open", "prefetch", "unknown", "scanner"]
EVENT_CLASSES: tuple[EventClass, ...] = get_args(EventClass)

# What the headline opens, clicks and attachment views count unless COUNTED_CLASSES says
# otherwise (docs/measurement.md); every class is shown beside them either way.
COUNTED_BY_DEFAULT: tuple[EventClass, ...] = ("human", "proxy_open")

# The one class before prefetches were told apart from opens through a proxy; events stored
# with it are read as one or the other from their reasons (`current_class`).
LEGACY_PROXY = "privacy_proxy"
_PREFETCH_REASONS = frozenset(
    {"ua:apple_mail_webkit", "ua:prefetch:gmail", "net:apple", "net:apple_private_relay"}
)


def current_class(label: str, reasons: Iterable[str] = ()) -> EventClass:
    """A stored class as a class of today: "privacy_proxy" becomes "prefetch" or
    "proxy_open" by its reasons; anything else unknown is "unknown"."""
    if label == LEGACY_PROXY:
        return "prefetch" if _PREFETCH_REASONS.intersection(reasons) else "proxy_open"
    for known in EVENT_CLASSES:
        if label == known:
            return known
    return "unknown"


def counted_set(classes: Iterable[str]) -> frozenset[str]:
    """The counted classes, plus "" (events recorded before classification existed)."""
    return frozenset({*classes, ""})
