"""The followed-emails list's index: rows in the `messages` table that keep each seller's
messages in the order of every sort the list offers, so a page reads as many rows as it
shows, however many messages the seller has.

Table storage sorts only by (PartitionKey, RowKey) and reads only ascending. So each message
row has, in its own partition, one index row per sort field and order whose RowKey is

    ~{owner}|{field}|{asc|desc}|{state}|{value}|{message id}

with the value encoded so that string order is value order (integers zero-padded, times
as fixed-width UTC), and for `desc` both value and id inverted character by character, so
an ascending scan of the `desc` range is the descending order, ties by message id reversed
as well (the order the list always had). The owner is the full seller key: 40-bit message
partitions may be shared by two sellers. The state is the message's `follow_state`, so a
filtered list is one range; `any` merges the ranges of every state.

Index rows start with "~", after every message id (26 characters of [a-z2-7]), and carry
no column a query over message rows filters on (`owner`, `seller`, `status`, `to`...); a
scan of a whole partition or table that must see message rows only adds
`MESSAGE_ROWS_FILTER`.

Index rows change only in the same table transaction as the message row they describe
(`index_operations`, `create_message`, `update_message`), so they can never disagree with
it: a failed write changes neither. A message row has index rows once its `listed` column
says so: rows written before the index existed have none (and writers leave their index
alone) until `python -m shared.ops.cli build-list-index` builds it, in one transaction with
setting `listed`, conditional on the row's ETag.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal

from azure.core import MatchConditions
from azure.core.exceptions import (
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.data.tables import TableErrorCode, TableTransactionError, UpdateMode
from azure.data.tables.aio import TableClient

SortField = Literal[
    "sent_at", "opens", "last_opened_at", "attachment_views", "link_clicks", "replies"
]
SORT_FIELDS: tuple[str, ...] = SortField.__args__  # type: ignore[attr-defined]
ORDERS = ("asc", "desc")
TIME_FIELDS = frozenset({"sent_at", "last_opened_at"})
# Every follow_state a message row may have, and "other" for a row without a known one.
STATES = ("blocked", "followed", "not_followed", "other")

LISTED = "listed"  # the message row's column: the index version its index rows follow
VERSION = 1
PREFIX = "~"  # sorts after every message id
MESSAGE_ROWS_FILTER = "RowKey lt '~'"  # message rows only, in a query over the table
_SEP = "|"
_END = "}"  # the character after "|": the end of a range whose keys continue with "|"
_MAX_INT = 10**19 - 1
_INT_WIDTH = 19
_NO_TIME = "0000-00-00T00:00:00.000000Z"  # before every time, as "" was
_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")
_INT = re.compile(r"\d{19}")
_ID = re.compile(r"[a-z2-7]{26}")
_ID_ALPHABET = "234567abcdefghijklmnopqrstuvwxyz"  # base32 in string order
_INVERT_DIGITS = str.maketrans("0123456789", "9876543210")
_INVERT_ID = str.maketrans(_ID_ALPHABET, _ID_ALPHABET[::-1])
_BATCH = 100  # the most operations one table transaction takes

Operation = tuple[str, dict[str, Any]] | tuple[str, dict[str, Any], dict[str, Any]]


def encode_value(field: str, value: Any) -> str:
    """A sort column's value as text whose string order is the value's order. Pure."""
    if field in TIME_FIELDS:
        if not value:
            return _NO_TIME
        try:
            moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
        except ValueError:
            return _NO_TIME
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    try:
        number = int(value or 0)
    except (TypeError, ValueError):
        number = 0
    return f"{min(max(number, 0), _MAX_INT):0{_INT_WIDTH}d}"


def position(field: str, order: str, value: Any, message_id: str) -> str:
    """Where a message stands in one ordering: the part of its index key after the range."""
    encoded = encode_value(field, value)
    if order == "desc":
        return f"{encoded.translate(_INVERT_DIGITS)}{_SEP}{message_id.translate(_INVERT_ID)}"
    return f"{encoded}{_SEP}{message_id}"


def is_position(field: str, value: str) -> bool:
    """Whether `value` is a position this index could hold for `field` (either order)."""
    encoded, sep, message = value.rpartition(_SEP)
    pattern = _TIME if field in TIME_FIELDS else _INT
    return bool(sep) and bool(pattern.fullmatch(encoded)) and bool(_ID.fullmatch(message))


def message_at(order: str, found: str) -> str:
    """The message id at a position (inverse of `position`'s id part)."""
    message = found.rpartition(_SEP)[2]
    return message.translate(_INVERT_ID) if order == "desc" else message


def range_prefix(owner: str, field: str, order: str, state: str) -> str:
    """The start of every index key of one seller, ordering and state; a range ends at
    `range_end` of it."""
    return f"{PREFIX}{owner}{_SEP}{field}{_SEP}{order}{_SEP}{state}{_SEP}"


def range_end(prefix: str) -> str:
    return prefix[: -len(_SEP)] + _END


def is_index_key(row_key: str) -> bool:
    return row_key.startswith(PREFIX)


def state_of(row: Mapping[str, Any]) -> str:
    state = str(row.get("follow_state") or "")
    return state if state in STATES else "other"


def is_listed(row: Mapping[str, Any]) -> bool:
    """Whether the row's index rows are kept (its `listed` column is this version)."""
    return row.get(LISTED) == VERSION


def index_rows(row: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    """Every index row a message row has, by RowKey. None for no row, an index row, a row
    not `listed` yet, or a message without an `owner` (made before sellers had keys, not
    listed until the identity migration gives it one). Pure."""
    if row is None or not is_listed(row):
        return {}
    message_id, owner = str(row.get("RowKey") or ""), str(row.get("owner") or "")
    if not owner or not _ID.fullmatch(message_id):
        return {}
    partition, state = row["PartitionKey"], state_of(row)
    rows = {}
    for field in SORT_FIELDS:
        for order in ORDERS:
            key = range_prefix(owner, field, order, state) + position(
                field, order, row.get(field), message_id
            )
            rows[key] = {"PartitionKey": partition, "RowKey": key, "message": message_id}
    return rows


def index_operations(
    before: Mapping[str, Any] | None, after: Mapping[str, Any] | None
) -> list[Operation]:
    """The table transaction operations that move a message's index rows from the message
    row `before` to the row `after` (None: no row), for values that changed only: a delete
    of each index row `before` has and `after` has not, an upsert of each the other way.
    Both must be whole rows as stored (a patch merged onto the row it was read as); a row
    whose `listed` column is not set has no index rows yet and gets none here. At most 24
    operations (12 when the follow_state or owner stays), never two on one entity. Pure."""
    old, new = index_rows(before), index_rows(after)
    operations: list[Operation] = [
        ("delete", {"PartitionKey": row["PartitionKey"], "RowKey": key})
        for key, row in old.items()
        if key not in new
    ]
    operations += [("upsert", row) for key, row in new.items() if key not in old]
    return operations


def raise_for(error: TableTransactionError) -> None:
    """The transaction's failure as the error a single write of the message row (its first
    operation) would have raised; as it is when an index operation failed."""
    code = getattr(error, "error_code", None)  # set by the SDK, not declared
    if error.index == 0:
        if code in (
            TableErrorCode.UPDATE_CONDITION_NOT_SATISFIED,
            TableErrorCode.CONDITION_NOT_MET,
        ):
            raise ResourceModifiedError(error.message, response=error.response) from error
        if code in (TableErrorCode.RESOURCE_NOT_FOUND, TableErrorCode.ENTITY_NOT_FOUND):
            raise ResourceNotFoundError(error.message, response=error.response) from error
        if code == TableErrorCode.ENTITY_ALREADY_EXISTS:
            raise ResourceExistsError(error.message, response=error.response) from error
    raise error


async def _submit(table: TableClient, operations: list[Operation]) -> None:
    if len(operations) > _BATCH:  # cannot happen: 1 + 24 at most
        raise ValueError("a message write with its index is more than one transaction")
    try:
        await table.submit_transaction(operations)
    except TableTransactionError as error:
        raise_for(error)


def listed(row: Mapping[str, Any]) -> dict[str, Any]:
    """A new message row as it is stored: with its `listed` column, so it has index rows."""
    return {**row, LISTED: VERSION}


def create_operations(row: Mapping[str, Any]) -> list[Operation]:
    """The transaction that creates a new message row (`listed`) with its index rows."""
    stored = listed(row)
    return [("create", stored), *index_operations(None, stored)]


async def create_message(table: TableClient, row: Mapping[str, Any]) -> None:
    """Create a message row with its index rows, in one transaction. ResourceExistsError if
    the row exists (nothing is written then)."""
    await _submit(table, create_operations(row))


async def update_message(
    table: TableClient, current: Mapping[str, Any], patch: Mapping[str, Any], etag: str
) -> None:
    """Merge `patch` into the message row `current` (read with `etag`), with the index
    operations the change needs, in one transaction conditional on the ETag.
    ResourceModifiedError if the row changed since (nothing is written then: read it again
    and decide again), ResourceNotFoundError if it is gone."""
    after = {**current, **patch}
    operations = index_operations(current, after)
    update: Operation = (
        "update",
        dict(patch),
        {"mode": UpdateMode.MERGE, "etag": etag, "match_condition": MatchConditions.IfNotModified},
    )
    if not operations:  # nothing listed changes: a plain conditional update
        await table.update_entity(
            dict(patch),
            mode=UpdateMode.MERGE,
            etag=etag,
            match_condition=MatchConditions.IfNotModified,
        )
        return
    await _submit(table, [update, *operations])


async def merge_message(
    table: TableClient, partition: str, row_key: str, patch: Mapping[str, Any], *, tries: int = 20
) -> dict[str, Any]:
    """Merge `patch` into the message row whatever it holds now (an unconditional merge, as
    `update_entity` would), keeping its index exact: read it, write patch and index changes
    conditional on that read, again if it changed meanwhile. Returns the row as written.
    ResourceNotFoundError if there is no such row."""
    for _ in range(tries):
        entity = await table.get_entity(partition, row_key)
        try:
            await update_message(table, entity, patch, str(entity.metadata["etag"]))
        except ResourceModifiedError:
            continue
        return {**entity, **patch}
    raise RuntimeError("the message kept changing while being updated")
