"""Reading the seller's messages: one with its KPIs, timeline and history (events not
folded yet included), the list sorted and paged from its index, and a stored message's
preferences now."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import datetime, timedelta
from typing import Any

from azure.core.exceptions import (
    ResourceNotFoundError,
)

from shared.classification.message_rules import flooded
from shared.core import list_index, sellers
from shared.core.auth import Seller
from shared.core.errors import InvalidInput, NotFound
from shared.core.ids import is_message_id, partition_of
from shared.core.rows import MessageRow, message_row
from shared.core.services import Services
from shared.crm import preferences
from shared.engagement import history, shards
from shared.engagement.fold import pending_events
from shared.engagement.kpis import counts, fold, from_columns, occurrence
from shared.messages import copies, listing
from shared.messages.views import list_item, message_view, parse_time
from shared.tracking.events import BUCKET_SECONDS, Event, bucket_of
from shared.tracking.labelling import label_message

logger = logging.getLogger(__name__)


_PAGE_READS = 16  # point reads in flight for one page of the list


LIST_COLUMNS = [
    "RowKey", "owner", "subject", "to", "status", "follow_state", "created_at", "sent_at",
    "regarding", "opens", "last_opened_at", "first_opened_at", "link_clicks", "attachment_views",
    "replies", "by_class",
]  # fmt: skip


async def current_view(services: Services, seller: Seller, message_id: str) -> dict[str, Any]:
    entity = await load(services, seller, message_id)
    return message_view(entity, from_columns(entity), await links_of(services, entity))


async def recipient_preferences(
    services: Services, seller: Seller, message_id: str
) -> dict[str, Any]:
    """View preferences for a stored message: each recipient's Follow Email preference now,
    and whether the message would be followed if it were sent now."""
    entity = await load(services, seller, message_id)
    found = await preferences.recipient_preferences(
        services, json.loads(entity["to"]), json.loads(entity["cc"]), json.loads(entity["bcc"])
    )
    return {
        "id": message_id,
        "status": entity["status"],
        "message_follow_state": entity["follow_state"],
        **found,
    }


async def load(services: Services, seller: Seller, message_id: str) -> MessageRow:
    """The seller's message, with the ETag it was read with; NotFound for anyone else's.
    The partition comes from the id (40 bits: two sellers may share one), so the full owner
    is what decides."""
    if not is_message_id(message_id):
        raise NotFound("message")
    try:
        entity = await services.store.messages.get_entity(partition_of(message_id), message_id)
    except ResourceNotFoundError:
        raise NotFound("message") from None
    if entity.get("owner") != seller.key:
        raise NotFound("message")
    row = message_row(entity)
    row["etag"] = str(entity.metadata["etag"])
    return row


async def get(
    services: Services, seller: Seller, message_id: str, *, full_history: bool = False
) -> dict[str, Any]:
    """One message with its KPIs, timeline and (on request) every event, including events
    recorded since the last fold cycle."""
    entity = await load(services, seller, message_id)
    sent_at = parse_time(entity.get("sent_at"))
    stored = from_columns(entity)
    cursors = await shards.read(services.store)
    # No event of this message can be older than the message itself.
    created = datetime.fromisoformat(entity["created_at"]) - timedelta(seconds=BUCKET_SECONDS)
    after = max(cursors.folded(message_id), stored.folded_bucket, bucket_of(created))
    found = await pending_events(
        services.store, message_id, after, services.clock(), legacy=not cursors.legacy_done
    )
    # Judged together (both stages), as the fold will: a flood of fetches since the last fold
    # counts the plausible few, not every one.
    link_count = int(entity.get("link_count") or 0)
    pending = None if found is None else label_message(found, [], sent_at, link_count).new
    kpis = fold(stored, pending or [], sent_at, services.settings.counted)
    view = message_view(entity, kpis, await links_of(services, entity))
    view["kpis_complete"] = pending is not None
    if full_history:
        view["history"] = await _history(services, entity, pending or [], sent_at)
    return view


async def _history(
    services: Services, entity: MessageRow, pending: list[Event], sent_at: datetime | None
) -> list[dict[str, Any]]:
    counted = services.settings.counted
    message_id, recipients = entity["RowKey"], copies.addresses(entity)
    rows = [
        {
            "event": row["kind"],
            "at": row["at"],
            "index": row["index"],
            "device": row["device"],
            "class": row.get("label") or None,
            "reasons": (row.get("reasons") or "").split(),
            "counted": row["kind"] != "auto_reply"
            and sent_at is not None
            and datetime.fromisoformat(row["at"]) >= sent_at
            and (row["kind"] == "reply" or row.get("label", "") in counted)
            and not flooded((row.get("reasons") or "").split()),
            "copy": int(row.get("copy") or 0),
            "recipient": recipients.get(int(row.get("copy") or 0)),
        }
        for row in await history.read(services.store, message_id)
    ]
    seen = {(r["at"], r["event"], r["index"]) for r in rows}
    for event in pending:
        key = (event.at.isoformat(), event.kind, event.index)
        if key not in seen:
            rows.append(
                {
                    "event": event.kind,
                    "at": event.at.isoformat(),
                    "index": event.index,
                    "device": occurrence(event).device,
                    "class": event.label,
                    "reasons": list(event.reasons),
                    "counted": counts(event, sent_at) and event.label in counted,
                    "copy": event.copy,
                    "recipient": recipients.get(event.copy),
                }
            )
    rows.sort(key=lambda r: r["at"], reverse=True)
    return rows


async def links_of(services: Services, entity: MessageRow) -> list[str]:
    if entity["follow_state"] != "followed":
        return []
    return list(await services.links.links(entity["RowKey"]) or ())


async def list_messages(
    services: Services,
    seller: Seller,
    *,
    sort: str,
    order: str,
    limit: int,
    continuation: str | None,
    follow_state: str,
) -> dict[str, Any]:
    """The seller's followed emails with their KPI columns, sorted and paged from the list
    index (shared.core.list_index): `limit + 1` index rows from each range of the seller's
    message partitions and follow states, merged, then the page's rows read whole. Storage
    requests per page do not grow with the number of messages."""
    after = listing.check(sort, order, limit, continuation)
    states = list_index.STATES if follow_state == "any" else (follow_state,)
    # A seller's messages are in their own partition, and older ones in the partition of
    # the address they were sent from (shared.core.sellers): each has its own index rows.
    partitions = await sellers.message_partitions(services.store, seller)
    ranges = await asyncio.gather(
        *(
            _index_range(services, partition, seller.key, sort, order, state, after, limit + 1)
            for partition in partitions
            for state in states
        )
    )
    result = listing.merge(ranges, sort=sort, order=order, limit=limit)
    limit_reads = asyncio.Semaphore(_PAGE_READS)

    async def whole(message_id: str) -> dict[str, Any] | None:
        async with limit_reads:
            try:
                entity = await services.store.messages.get_entity(
                    partition_of(message_id), message_id, select=LIST_COLUMNS
                )
            except ResourceNotFoundError:
                return None  # gone between the two reads
            return dict(entity) if entity.get("owner") == seller.key else None

    rows = await asyncio.gather(*(whole(message_id) for message_id in result.ids))
    return {
        "items": [list_item(row) for row in rows if row is not None],
        "continuation": result.continuation,
    }


async def _index_range(
    services: Services,
    partition: str,
    owner: str,
    sort: str,
    order: str,
    state: str,
    after: str | None,
    count: int,
    *,
    within: str = "",
) -> list[str]:
    """The first `count` positions of one index range after `after` (only those starting
    with `within`, if given): one query."""
    prefix = list_index.range_prefix(owner, sort, order, state)
    rows = services.store.messages.query_entities(
        "PartitionKey eq @pk and RowKey gt @low and RowKey lt @high",
        parameters={
            "pk": partition,
            "low": prefix + (after or within),
            "high": list_index.range_end(prefix + within),
        },
        select=["RowKey"],
        results_per_page=count,
    )
    found: list[str] = []
    async for row in rows:
        found.append(str(row["RowKey"])[len(prefix) :])
        if len(found) == count:
            break
    return found


# Where every message not sent yet stands in the list ordered by sent_at ascending: first,
# with no time, ordered by id.
_UNSENT = list_index.position("sent_at", "asc", None, "")
_DRAFT_ROUNDS = 5  # index pages read for one page of drafts, at most


async def list_drafts(
    services: Services, seller: Seller, *, limit: int, continuation: str | None
) -> dict[str, Any]:
    """The seller's drafts, a page at a time, from the list index: the messages never sent
    come first in the sent_at order, so only they are read, never the sent ones; other
    unsent messages (scheduled, failed, cancelled) are skipped. A page may hold fewer than
    `limit` drafts and still have a continuation when many of those are in the way."""
    after = listing.check("sent_at", "asc", limit, continuation)
    if after is not None and not after.startswith(_UNSENT):
        raise InvalidInput("continuation", "is not a continuation token from this list")
    partitions = await sellers.message_partitions(services.store, seller)
    found: list[dict[str, Any]] = []
    for _ in range(_DRAFT_ROUNDS):
        ranges = await asyncio.gather(
            *(
                _index_range(
                    services, partition, seller.key, "sent_at", "asc", state, after,
                    limit + 1, within=_UNSENT,
                )
                for partition in partitions
                for state in list_index.STATES
            )
        )  # fmt: skip
        page = listing.merge(ranges, sort="sent_at", order="asc", limit=limit)
        rows = await asyncio.gather(*(_row(services, seller, m) for m in page.ids))
        for index, row in enumerate(rows):
            if row is not None and row.get("status") == "draft":
                found.append(row)
                if len(found) == limit:
                    more = index < len(rows) - 1 or page.continuation is not None
                    last = _UNSENT + page.ids[index]
                    token = listing.encode_continuation("sent_at", "asc", last) if more else None
                    return {"items": [list_item(r) for r in found], "continuation": token}
        if page.continuation is None:
            return {"items": [list_item(r) for r in found], "continuation": None}
        after = _UNSENT + page.ids[-1]
    token = listing.encode_continuation("sent_at", "asc", after or _UNSENT)
    return {"items": [list_item(r) for r in found], "continuation": token}


async def _row(services: Services, seller: Seller, message_id: str) -> dict[str, Any] | None:
    """A message row's list columns, None when gone or another seller's."""
    try:
        entity = await services.store.messages.get_entity(
            partition_of(message_id), message_id, select=LIST_COLUMNS
        )
    except ResourceNotFoundError:
        return None
    return dict(entity) if entity.get("owner") == seller.key else None


async def body(services: Services, seller: Seller, message_id: str) -> dict[str, Any]:
    """A stored message's body as delivered (the first recipient's copy when sent
    individually) and as the seller wrote it (what a draft is edited from: a followed
    message's delivered body has its links signed). NotFound for another seller's."""
    entity = await load(services, seller, message_id)
    delivered = await _text(services, f"{message_id}/body.html")
    original = None
    if entity["follow_state"] == "followed":
        original = await _text(services, f"{message_id}/original.html", missing_ok=True)
    return {"id": message_id, "html": delivered, "original": original or delivered}


async def _text(services: Services, name: str, *, missing_ok: bool = False) -> str | None:
    try:
        blob = await services.store.message_blobs.download_blob(name)
    except ResourceNotFoundError:
        if missing_ok:
            return None
        raise NotFound("message body") from None
    return (await blob.readall()).decode("utf-8")
