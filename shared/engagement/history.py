"""A message's history: one row per event in the `events` table, written by the fold (opens,
clicks, attachment views) and the sync (replies).

Rows live in the message's partition (`partition_of`, the owner's), keyed by message id then
event id, so one table transaction can write the rows of up to 100 events of many messages
of one seller: the fold's writes are batched per partition, not per message. Rows written
before that live in a partition of their own message id (the "legacy" layout); reads take
both, and a row in the new layout wins over the same event's legacy row (a revision rewrites
a legacy event in the new layout).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from shared.core.ids import partition_of
from shared.core.storage import Store
from shared.engagement.kpis import occurrence
from shared.tracking.events import Event

# Event kinds the fold writes (replies are written by the sync).
TRACKED = ("open", "click", "attachment")


def keys(message_id: str, event_id: str) -> dict[str, str]:
    """The row keys of one event of a message."""
    return {"PartitionKey": partition_of(message_id), "RowKey": f"{message_id}{event_id}"}


def event_row(event: Event) -> dict[str, Any]:
    """The stored row of a tracked event, with its label."""
    return {
        **keys(event.message_id, event.event_id),
        "kind": event.kind,
        "index": event.index,
        "at": event.at.isoformat(),
        "bucket": event.bucket,
        "device": occurrence(event).device,
        "user_agent": event.user_agent,
        "ip": event.ip,
        "method": event.method,
        "has_accept": event.has_accept,
        "label": event.label,
        "reasons": " ".join(event.reasons),
        "copy": event.copy,
    }


def to_event(message_id: str, row: dict[str, Any]) -> Event:
    """A tracked event from its row (as `read` returns it)."""
    return Event(
        event_id=row["event_id"],
        message_id=message_id,
        kind=row["kind"],
        index=int(row["index"]),
        at=datetime.fromisoformat(row["at"]),
        user_agent=row.get("user_agent") or "",
        ip=row.get("ip") or "",
        method=row.get("method") or "GET",
        has_accept=bool(row.get("has_accept", True)),
        label=row.get("label") or "",
        reasons=tuple((row.get("reasons") or "").split()),
        copy=int(row.get("copy") or 0),
    )


def _time_key(since: datetime) -> str:
    """Event ids begin with their time in milliseconds, in hex."""
    return f"{max(0, int(since.timestamp() * 1000)):012x}"


async def read(
    store: Store,
    message_id: str,
    *,
    since: datetime | None = None,
    kind: str | None = None,
    select: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """The message's stored events (all, or those from `since` on, or of one kind), each row
    with its `event_id`; one query per layout, side by side."""
    rows, old = await _both(store, message_id, since, kind, select)
    seen = {row["event_id"] for row in rows}
    return rows + [row for row in old if row["event_id"] not in seen]


async def _both(
    store: Store,
    message_id: str,
    since: datetime | None,
    kind: str | None,
    select: Sequence[str] | None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    start = f"{message_id}{_time_key(since) if since else ''}"
    current = "PartitionKey eq @pk and RowKey ge @lo and RowKey lt @hi"
    legacy = "PartitionKey eq @id" + (" and RowKey ge @since" if since else "")
    parameters: dict[str, Any] = {
        "pk": partition_of(message_id),
        "lo": start,
        "hi": f"{message_id}~",
        "id": message_id,
        "since": _time_key(since) if since else "",
    }
    if kind is not None:
        current, legacy = f"{current} and kind eq @kind", f"{legacy} and kind eq @kind"
        parameters["kind"] = kind
    columns = None if select is None else list(dict.fromkeys(["RowKey", "kind", *select]))

    async def query(filter_: str, prefix: int) -> list[dict[str, Any]]:
        return [
            {**row, "event_id": str(row["RowKey"])[prefix:]}
            async for row in store.events.query_entities(
                filter_, parameters=parameters, select=columns
            )
        ]

    rows, old = await asyncio.gather(query(current, len(message_id)), query(legacy, 0))
    return rows, old


async def delete_all(store: Store, message_id: str) -> int:
    """Delete every stored event of a message (erasure); how many rows were deleted."""
    rows, old = await _both(store, message_id, None, None, ["PartitionKey"])
    for row in rows + old:
        await store.events.delete_entity(row["PartitionKey"], row["RowKey"])
    return len(rows) + len(old)
