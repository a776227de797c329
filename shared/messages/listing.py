"""Paging the followed-emails list over its index (shared.core.list_index). Pure: no I/O.

Each page is read from the index's ranges (one per message partition of the seller and per
follow_state asked for), `limit + 1` rows from each, merged in order; the continuation token
is the last row's position in the ordering (keyset), so it stays correct when messages
arrive or change between pages, and the next page starts right after it in every range.
"""

from __future__ import annotations

import base64
import heapq
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from shared.core.errors import InvalidInput
from shared.core.list_index import SORT_FIELDS, SortField, is_position, message_at

__all__ = ["SORT_FIELDS", "Page", "SortField", "check", "check_sort", "merge"]


@dataclass(frozen=True, slots=True)
class Page:
    """The message ids of one page, in order, and the token of the next (None: last)."""

    ids: list[str]
    continuation: str | None


def check_sort(sort: str) -> None:
    """InvalidInput unless the list can be sorted by `sort`."""
    if sort not in SORT_FIELDS:
        raise InvalidInput("sort", f"must be one of {', '.join(SORT_FIELDS)}")


def check(sort: str, order: str, limit: int, continuation: str | None) -> str | None:
    """Validate a list request; the position its page starts after (None: the first page)."""
    check_sort(sort)
    if order not in ("asc", "desc"):
        raise InvalidInput("order", "must be asc or desc")
    if not 1 <= limit <= 200:
        raise InvalidInput("limit", "must be between 1 and 200")
    return decode_continuation(continuation, sort, order) if continuation else None


def encode_continuation(sort: str, order: str, after: str) -> str:
    raw = json.dumps([sort, order, after], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_continuation(token: str, sort: str, order: str) -> str:
    """The position a page continues after; InvalidInput if the token is not ours (tokens
    of the list before its index held a value and an id: they are refused too) or was made
    for another ordering."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        token_sort, token_order, after = json.loads(raw)
    except (ValueError, TypeError):
        raise InvalidInput("continuation", "is not a continuation token from this list") from None
    if not isinstance(after, str) or token_sort not in SORT_FIELDS:
        raise InvalidInput("continuation", "is not a continuation token from this list")
    if token_sort != sort or token_order != order:
        raise InvalidInput("continuation", "was made for another sort order")
    if not is_position(sort, after):
        raise InvalidInput("continuation", "is not a continuation token from this list")
    return after


def merge(ranges: Iterable[Sequence[str]], *, sort: str, order: str, limit: int) -> Page:
    """One page from the positions read from each range (each in order, `limit + 1` at
    most): the first `limit` of them all, and a token if any range holds more."""
    merged = list(heapq.merge(*ranges))[: limit + 1]
    chunk = merged[:limit]
    token = encode_continuation(sort, order, chunk[-1]) if len(merged) > limit else None
    return Page([message_at(order, p) for p in chunk], token)
