"""A record's timeline: the followed messages the seller sent to it, with their KPIs, and the
Outlook items tracked to it, newest first in one list, paged by keyset.

"Sent to it" is exact and read from indexes kept at write time (shared.crm.timeline_index):
a message counts when one of its recipients is one of the record's addresses now, or it was
composed regarding the record; an Outlook item when it was tracked to the record. Messages
are their seller's alone, as everywhere in the API (an admin sees their own too); items are
their mailboxes', and an admin sees every mailbox's (shared.outlook.tracked)."""

from __future__ import annotations

import json
from typing import Any

from azure.core.exceptions import ResourceNotFoundError

from shared.core.auth import Seller
from shared.core.ids import is_message_id, partition_of
from shared.core.services import Services
from shared.crm import records, timeline_index
from shared.messages.reading import LIST_COLUMNS
from shared.messages.views import list_item
from shared.outlook import tracked

_MESSAGE_COLUMNS = [*LIST_COLUMNS, "owner", "cc", "bcc"]


async def timeline(
    services: Services,
    seller: Seller,
    record_type: str,
    record_id: str,
    *,
    limit: int,
    continuation: str | None,
) -> dict[str, Any]:
    """The record's messages and tracked items the seller may see, newest first."""
    record = await records.get(services, record_type, record_id)  # NotFound, 422 on type
    emails = {e.lower() for e in record["emails"]}
    partitions = [
        *(timeline_index.seller_address(seller.key, e) for e in sorted(emails)),
        timeline_index.seller_record(seller.key, record_type, record_id),
        *await tracked.record_partitions(services, seller, record_type, record_id),
    ]
    activity = tracked.resolver(services, seller, tracked.regards(record_type, record_id))

    async def message(key: str) -> dict[str, Any] | None:
        message_id = timeline_index.item_of(key)
        try:
            row = dict(
                await services.store.messages.get_entity(
                    partition_of(message_id), message_id, select=_MESSAGE_COLUMNS
                )
            )
        except ResourceNotFoundError:
            return None
        recipients = {
            a.lower() for column in ("to", "cc", "bcc") for a in json.loads(row[column] or "[]")
        }
        regarding = json.loads(row.get("regarding") or "null")
        if (
            row.get("owner") != seller.key
            or row["status"] != "sent"
            or row["follow_state"] != "followed"
            or timeline_index.row_key(row["sent_at"], message_id) != key
            or not (recipients & emails or regarding == {"type": record_type, "id": record_id})
        ):
            return None
        return {"type": "message", "at": row["sent_at"], "message": list_item(row)}

    async def resolve(key: str) -> dict[str, Any] | None:
        if is_message_id(timeline_index.item_of(key)):
            return await message(key)
        shown = await activity(key)
        return {"type": "activity", "at": shown["at"], "activity": shown} if shown else None

    items, more = await timeline_index.page(
        services.store, partitions, limit=limit, continuation=continuation, resolve=resolve
    )
    return {"items": items, "continuation": more}
