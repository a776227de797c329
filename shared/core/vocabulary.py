"""The words every capability shares, declared once: what a tracking event can be (its
kind), who made it (its class), and which classes the headline KPIs count by default."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal, get_args

EventKind = Literal["open", "click", "attachment"]
EVENT_KINDS: tuple[EventKind, ...] = get_args(EventKind)

# Who made an event (shared.classification): a person, a security scanner, a privacy proxy
# fetching for a person, or no telling.
EventClass = Literal["human", "privacy_proxy", "unknown", "scanner"]
EVENT_CLASSES: tuple[EventClass, ...] = get_args(EventClass)

# What the headline opens, clicks and attachment views count unless COUNTED_CLASSES says
# otherwise (docs/measurement.md); every class is shown beside them either way.
COUNTED_BY_DEFAULT: tuple[EventClass, ...] = ("human", "privacy_proxy")


def counted_set(classes: Iterable[str]) -> frozenset[str]:
    """The counted classes, plus "" (events recorded before classification existed)."""
    return frozenset({*classes, ""})
