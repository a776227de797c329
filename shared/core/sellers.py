"""Where a seller's messages live. New messages are in the seller's own message partition
(`Seller.partition`); messages made before sellers were keyed by their Entra id stay in
the partition of the address they were sent from (their ids carry it, and links already
sent carry the ids), and the migration (`python -m shared.ops.cli migrate-identities`)
records those partitions here.

Rows of the `sellers` table: PartitionKey "seller", RowKey the seller's key, `partitions`
a JSON list of the older message partitions that hold some of their messages."""

from __future__ import annotations

import json
from collections.abc import Iterable

from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import UpdateMode

from shared.core.auth import Seller
from shared.core.storage import Store

_PARTITION = "seller"


async def message_partitions(store: Store, seller: Seller) -> list[str]:
    """Every message partition that may hold the seller's messages, their own first. Rows
    in them are the seller's only where `owner` is the seller's key."""
    try:
        row = await store.sellers.get_entity(_PARTITION, seller.key, select=["partitions"])
    except ResourceNotFoundError:
        return [seller.partition]
    older = [p for p in json.loads(row.get("partitions") or "[]") if p != seller.partition]
    return [seller.partition, *sorted(older)]


async def add_partitions(store: Store, key: str, partitions: Iterable[str]) -> None:
    """Record older message partitions of the seller with this key (idempotent)."""
    try:
        row = await store.sellers.get_entity(_PARTITION, key)
        known = set(json.loads(row.get("partitions") or "[]"))
    except ResourceNotFoundError:
        known = set()
    merged = sorted(known | set(partitions))
    await store.sellers.upsert_entity(
        {"PartitionKey": _PARTITION, "RowKey": key, "partitions": json.dumps(merged)},
        mode=UpdateMode.MERGE,
    )
