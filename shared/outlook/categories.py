"""Outlook categories as the sync writes them: only ours added or taken off, the user's own
kept, names compared as Outlook compares them (without regard to case). Pure: no I/O."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

UNDELIVERABLE_SUFFIX = " (Undeliverable)"


def same_name(a: str, b: str) -> bool:
    """Outlook treats category names that differ only in case as one category."""
    return a.casefold() == b.casefold()


def has_category(categories: Iterable[str], name: str) -> bool:
    return bool(name) and any(same_name(c, name) for c in categories)


def undeliverable_mark(tracking_category: str) -> str:
    """The category an item gets when it could not be tracked after every attempt."""
    return f"{tracking_category}{UNDELIVERABLE_SUFFIX}"


@dataclass
class CategoryChange:
    """One category added to and/or one taken off a message, whatever else it carries.

    `current` is the message's categories as last read (None: read them first) and `etag` the
    version they were read at: the write is conditional on it, so a category the user set in
    between is never overwritten (on a conflict the categories are read again)."""

    graph_id: str
    current: list[str] | None
    add: str = ""
    remove: str = ""
    etag: str = ""

    def result(self) -> list[str] | None:
        """The categories to write, or None when the message already has them."""
        assert self.current is not None
        kept = [c for c in self.current if not (self.remove and same_name(c, self.remove))]
        if self.add and not has_category(kept, self.add):
            kept.append(self.add)
        return None if kept == self.current else kept
