"""How long interaction data is kept, and erasing it for one person.

Interaction blobs are named by time bucket first, so the retention cycle deletes whole old
buckets without reading a single blob (in Azure the storage lifecycle rule does the same;
this cycle keeps Azurite and any account without the rule in line). Erasure removes every
interaction recorded for messages sent to one address, and the activities that carry it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from shared.core import list_index
from shared.core.services import Services
from shared.core.storage import Store
from shared.engagement import history
from shared.engagement.kpis import Kpis, to_columns
from shared.messages import idempotency
from shared.outlook import tracked
from shared.tracking.events import bucket_of, message_of_blob

# What an activity's index rows are made from (shared.crm.timeline_index).
_ACTIVITY_INDEXED = ["RowKey", "mailboxes", "regarding", "followed_message_id", "at", "tracked_at"]


@dataclass(frozen=True, slots=True)
class Purge:
    cutoff_bucket: str
    blobs_deleted: int
    idempotency_keys_forgotten: int = 0


async def _delete_blobs(store: Store, names: Iterable[str]) -> int:
    deleted = 0
    for name in names:
        await store.interactions.delete_blob(name, delete_snapshots="include")
        deleted += 1
    return deleted


async def purge_cycle(services: Services) -> Purge:
    """Delete interaction blobs older than RETENTION_DAYS (whole buckets at a time), and
    forget compose Idempotency-Keys older than IDEMPOTENCY_HOURS."""
    cutoff = bucket_of(services.clock() - timedelta(days=services.settings.retention_days))
    deleted = 0
    async for prefix in services.store.interactions.walk_blobs(delimiter="/"):
        bucket = str(prefix.name).rstrip("/")
        if bucket >= cutoff:
            break  # buckets are listed in time order
        names = [
            b
            async for b in services.store.interactions.list_blob_names(
                name_starts_with=f"{bucket}/"
            )
        ]
        deleted += await _delete_blobs(services.store, names)
    return Purge(cutoff, deleted, await idempotency.purge(services))


def _addressed_to(row: Any, address: str) -> bool:
    return any(address in json.loads(row.get(field) or "[]") for field in ("to", "cc", "bcc"))


async def erase(services: Services, email: str) -> dict[str, Any]:
    """Remove all interaction data about one address (right to erasure): the events of every
    message sent to it, their KPIs, and the activities that carry it. Reports what it did."""
    address = email.strip().lower()
    store = services.store
    messages = [
        row
        async for row in store.messages.query_entities(
            f"status eq 'sent' and {list_index.MESSAGE_ROWS_FILTER}",
            select=["PartitionKey", "RowKey", "to", "cc", "bcc"],
        )
        if _addressed_to(row, address)
    ]
    ids = {row["RowKey"] for row in messages}
    blobs = [
        name async for name in store.interactions.list_blob_names() if message_of_blob(name) in ids
    ]
    blobs_deleted = await _delete_blobs(store, blobs)
    rows_deleted = 0
    for row in messages:
        rows_deleted += await history.delete_all(store, row["RowKey"])
        cleared = {**to_columns(Kpis()), "folded_bucket": bucket_of(services.clock())}
        # The cleared KPIs move the message in the list index: with its index rows, at once.
        await list_index.merge_message(
            store.messages,
            row["PartitionKey"],
            row["RowKey"],
            {"PartitionKey": row["PartitionKey"], "RowKey": row["RowKey"], **cleared},
        )
    activities = 0
    async for row in store.activities.query_entities(
        "PartitionKey eq 'msg'", select=[*_ACTIVITY_INDEXED, "addresses"]
    ):
        if address in json.loads(row.get("addresses") or "[]"):
            await store.activities.delete_entity("msg", row["RowKey"])
            await tracked.unindex(services, dict(row))
            await store.activity_blobs.delete_blob(f"{row['RowKey']}.html")
            activities += 1
    return {
        "email": address,
        "messages": len(messages),
        "interaction_blobs_deleted": blobs_deleted,
        "event_rows_deleted": rows_deleted,
        "activities_deleted": activities,
    }
