"""Sorting and paging the followed-emails list. Pure: no I/O.

Table storage cannot sort by a KPI, so the seller's rows are sorted here and paged with a
keyset continuation token (the last row's sort key), which stays correct when new messages
arrive between pages.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from shared.core.errors import InvalidInput

SortField = Literal[
    "sent_at", "opens", "last_opened_at", "attachment_views", "link_clicks", "replies"
]
SORT_FIELDS: tuple[str, ...] = SortField.__args__  # type: ignore[attr-defined]
_TEXT_FIELDS = ("sent_at", "last_opened_at")


@dataclass(frozen=True, slots=True)
class Page:
    rows: list[Mapping[str, Any]]
    continuation: str | None


def _key(row: Mapping[str, Any], field: str) -> tuple[Any, str]:
    value = row.get(field)
    if field in _TEXT_FIELDS:
        return (str(value or ""), str(row["RowKey"]))
    return (int(value or 0), str(row["RowKey"]))


def encode_continuation(sort: str, order: str, key: tuple[Any, str]) -> str:
    raw = json.dumps([sort, order, list(key)], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_continuation(token: str, sort: str, order: str) -> tuple[Any, str]:
    """The sort key a page continues after; InvalidInput if the token is not ours or was
    made for another ordering."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        token_sort, token_order, key = json.loads(raw)
        value, row_key = key
    except (ValueError, TypeError):
        raise InvalidInput("continuation", "is not a continuation token from this list") from None
    if token_sort != sort or token_order != order or not isinstance(row_key, str):
        raise InvalidInput("continuation", "was made for another sort order")
    expected = str if sort in _TEXT_FIELDS else int
    if not isinstance(value, expected):
        raise InvalidInput("continuation", "is not a continuation token from this list")
    return (value, row_key)


def check_sort(sort: str) -> None:
    """InvalidInput unless the list can be sorted by `sort`."""
    if sort not in SORT_FIELDS:
        raise InvalidInput("sort", f"must be one of {', '.join(SORT_FIELDS)}")


def page(
    rows: Sequence[Mapping[str, Any]],
    *,
    sort: str,
    order: str,
    limit: int,
    continuation: str | None,
) -> Page:
    """One page of `rows` sorted by `sort` (ties by id), after the continuation point."""
    check_sort(sort)
    if order not in ("asc", "desc"):
        raise InvalidInput("order", "must be asc or desc")
    if not 1 <= limit <= 200:
        raise InvalidInput("limit", "must be between 1 and 200")
    descending = order == "desc"
    ordered = sorted(rows, key=lambda r: _key(r, sort), reverse=descending)
    if continuation:
        after = decode_continuation(continuation, sort, order)
        ordered = [
            r for r in ordered if (_key(r, sort) < after if descending else _key(r, sort) > after)
        ]
    chunk = ordered[:limit]
    more = len(ordered) > limit
    token = encode_continuation(sort, order, _key(chunk[-1], sort)) if more and chunk else None
    return Page(chunk, token)
