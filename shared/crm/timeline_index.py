"""Where sent mail and tracked Outlook items are found again: by the record they concern, by
the mailbox that holds them and by the followed message they answer, newest first. The
record timeline and the activity lists read these rows; compose, sending and the sync write
them.

Rows of the `timelineindex` table. The RowKey is `{newest-first time}-{item id}`, so one
partition reads newest first and a page continues after the last RowKey it showed (keyset):

    m-{seller key}-a-{address hash}        sent mail of one seller to one address
    m-{seller key}-r-{type}-{record id}    sent mail of one seller regarding one record
    a-{mailbox key}                        activities a mailbox holds
    a-{mailbox key}-r-{type}-{record id}   those of them regarding one record
    a-msg-{message id}                     activities tracked through a followed message

A seller's messages and a mailbox's activities have partitions of their own, so a seller's
page reads only rows they may see. The rows live in a table of their own (not in the
partition of the row they index, where one transaction could write both) because every
reader that scans the messages or activities tables would then meet them. So they are
written first and idempotently, and a reader keeps a row only when the item it names still
says the same (the message is sent at that time to that address; the activity holds that
mailbox and record at that time): an index row without its item, or left behind by a change,
is never shown."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import TypeVar

from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import UpdateMode

from shared.core.errors import InvalidInput
from shared.core.ids import index_key, mailbox_key
from shared.core.storage import Store

_NEWEST = 10**13 - 1  # milliseconds since the epoch stay below this until the year 2286
_ROW_KEY = re.compile(r"^\d{13}-[A-Za-z0-9]{20,64}$")
T = TypeVar("T")


def row_key(at: str, item_id: str) -> str:
    """`{newest-first time}-{id}` for an item of time `at` (ISO 8601; without an offset, as
    Graph gives an event's start, it is UTC)."""
    moment = datetime.fromisoformat(at)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    millis = int(moment.timestamp() * 1000)
    return f"{_NEWEST - millis:013d}-{item_id}"


def item_of(key: str) -> str:
    """The item id a RowKey names."""
    return key.partition("-")[2]


def check_continuation(continuation: str | None) -> str:
    """A page's continuation is the RowKey it ended on; anything else is refused."""
    if continuation is None:
        return ""
    if not _ROW_KEY.match(continuation):
        raise InvalidInput("continuation", "is not a continuation this list gave")
    return continuation


def _part(value: str) -> str:
    # Keys may not hold / \ # ? or control characters: record ids of other systems might.
    return index_key(value) if re.search(r"[^A-Za-z0-9._:-]", value) else value


def seller_address(seller: str, address: str) -> str:
    return f"m-{seller}-a-{index_key(address.strip().lower())}"


def seller_record(seller: str, record_type: str, record_id: str) -> str:
    return f"m-{seller}-r-{record_type}-{_part(record_id)}"


def mailbox(address: str) -> str:
    return f"a-{mailbox_key(address)}"


def mailbox_record(address: str, record_type: str, record_id: str) -> str:
    return f"{mailbox(address)}-r-{record_type}-{_part(record_id)}"


def followed_message(message_id: str) -> str:
    return f"a-msg-{message_id}"


def message_partitions(
    seller: str, addresses: Iterable[str], regarding: dict[str, str] | None
) -> list[str]:
    """Where a seller's sent message is indexed: each recipient, and its record if any."""
    found = [seller_address(seller, a) for a in dict.fromkeys(a.lower() for a in addresses)]
    if regarding:
        found.append(seller_record(seller, regarding["type"], regarding["id"]))
    return found


def activity_partitions(
    mailboxes: Iterable[str], regarding: Sequence[dict[str, str]], followed: str
) -> list[str]:
    """Where an activity is indexed: in each mailbox holding it, by each of its records
    there, and by the followed message it answers."""
    found = []
    for address in mailboxes:
        found.append(mailbox(address))
        found += [mailbox_record(address, r["type"], r["id"]) for r in regarding]
    if followed:
        found.append(followed_message(followed))
    return found


async def write(store: Store, partitions: Iterable[str], key: str) -> None:
    """Index an item under each partition (idempotent: written again after a crash)."""
    await asyncio.gather(
        *(
            store.timeline_index.upsert_entity(
                {"PartitionKey": p, "RowKey": key}, mode=UpdateMode.REPLACE
            )
            for p in dict.fromkeys(partitions)
        )
    )


async def delete(store: Store, partitions: Iterable[str], key: str) -> None:
    """Remove an item's rows (those missing are fine)."""

    async def one(partition: str) -> None:
        with contextlib.suppress(ResourceNotFoundError):
            await store.timeline_index.delete_entity(partition, key)

    await asyncio.gather(*(one(p) for p in dict.fromkeys(partitions)))


async def _keys(store: Store, partition: str, after: str, count: int) -> list[str]:
    query = "PartitionKey eq @pk and RowKey gt @after"
    rows = store.timeline_index.query_entities(
        query,
        parameters={"pk": partition, "after": after},
        select=["RowKey"],
        results_per_page=count,
    )
    found: list[str] = []
    async for row in rows:
        found.append(str(row["RowKey"]))
        if len(found) >= count:
            break
    return found


async def page(
    store: Store,
    partitions: Sequence[str],
    *,
    limit: int,
    continuation: str | None,
    resolve: Callable[[str], Awaitable[T | None]],
) -> tuple[list[T], str | None]:
    """One page, newest first, of the items indexed under any of `partitions` (an item in
    several counted once): each RowKey is handed to `resolve`, which answers the item or
    None to leave it out (not the caller's, or a row its item no longer matches). The
    continuation is the RowKey of the page's last item, None on the last page."""
    after = check_continuation(continuation)
    shown: list[tuple[str, T]] = []
    while True:
        want = limit + 1 - len(shown)
        batches = await asyncio.gather(*(_keys(store, p, after, want) for p in partitions))
        union = sorted({key for batch in batches for key in batch})
        candidates = union[:want]
        if not candidates:
            break
        resolved = await asyncio.gather(*(resolve(key) for key in candidates))
        shown += [(k, item) for k, item in zip(candidates, resolved, strict=True) if item]
        after = candidates[-1]
        exhausted = len(union) <= want and all(len(batch) < want for batch in batches)
        if len(shown) > limit or exhausted:
            break
    more = len(shown) > limit
    shown = shown[:limit]
    return [item for _, item in shown], (shown[-1][0] if more else None)
