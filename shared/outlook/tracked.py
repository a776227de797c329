"""Reading tracked Outlook activities: one with its body, and lists by mailbox, by record
and by followed message, newest first, paged by keyset (shared.crm.timeline_index).

Who sees what: an activity is its mailboxes'. A seller sees the activities their own mailbox
(their address) holds; an admin sees every mailbox's. Anyone else's is "not found".

The body comes inline (`body_html`), not as a storage link: the seller's app shows it in a
sandboxed frame from the answer itself, with no storage account to reach, no CORS rule to
keep and no link to expire; it is the HTML Graph gave for one item (a few hundred kilobytes
at most in practice)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from azure.core.exceptions import ResourceNotFoundError

from shared.core.auth import Seller
from shared.core.errors import NotFound
from shared.core.services import Services
from shared.crm import records, timeline_index
from shared.messages.reading import load as load_message
from shared.outlook import mailboxes
from shared.outlook.activities import ACTIVITY, index_key_of

Check = Callable[[dict[str, Any]], bool]


def _is_key(value: str) -> bool:
    return len(value) == 40 and all(c in "0123456789abcdef" for c in value)


def visible(seller: Seller, row: dict[str, Any]) -> bool:
    """Whether the seller may see the activity: theirs, or any for an admin."""
    return seller.is_admin or seller.email in json.loads(row.get("mailboxes") or "{}")


def view(row: dict[str, Any]) -> dict[str, Any]:
    """An activity as the API shows it."""
    return {
        "id": row["RowKey"],
        "kind": row["kind"],
        "subject": row.get("subject") or "",
        "sender": row.get("sender") or "",
        "addresses": json.loads(row.get("addresses") or "[]"),
        "at": row.get("at") or row["tracked_at"],
        "method": row["method"],
        "status": row["status"],
        "mailboxes": sorted(json.loads(row.get("mailboxes") or "{}")),
        "regarding": json.loads(row.get("regarding") or "[]"),
        "followed_message_id": row.get("followed_message_id") or None,
        "internet_message_id": row.get("internet_message_id") or None,
        "tracked_at": row["tracked_at"],
        "untracked_at": row.get("untracked_at") or None,
    }


async def _row(services: Services, activity_id: str) -> dict[str, Any] | None:
    if not _is_key(activity_id):
        return None
    try:
        return dict(await services.store.activities.get_entity(ACTIVITY, activity_id))
    except ResourceNotFoundError:
        return None


async def get(services: Services, seller: Seller, activity_id: str) -> dict[str, Any]:
    """One activity with its body; NotFound unless the seller may see it."""
    row = await _row(services, activity_id)
    if row is None or not visible(seller, row):
        raise NotFound("activity")
    try:
        blob = await services.store.activity_blobs.download_blob(f"{activity_id}.html")
        body = (await blob.readall()).decode("utf-8", "replace")
    except ResourceNotFoundError:
        body = ""  # erased meanwhile, or tracked before bodies were kept
    return {**view(row), "body_html": body}


async def unindex(services: Services, row: dict[str, Any]) -> None:
    """Remove an activity's index rows (erasure: the row itself is gone)."""
    partitions = timeline_index.activity_partitions(
        json.loads(row.get("mailboxes") or "{}"),
        json.loads(row.get("regarding") or "[]"),
        row.get("followed_message_id") or "",
    )
    await timeline_index.delete(services.store, partitions, index_key_of(row, row["RowKey"]))


def resolver(
    services: Services, seller: Seller, check: Check
) -> Callable[[str], Awaitable[dict[str, Any] | None]]:
    """For timeline_index.page: the activity an index row names, shown when the seller may
    see it, it still meets `check` and it is still at the row's time."""

    async def resolve(key: str) -> dict[str, Any] | None:
        row = await _row(services, timeline_index.item_of(key))
        if row is None or not visible(seller, row) or not check(row):
            return None
        return view(row) if index_key_of(row, row["RowKey"]) == key else None

    return resolve


async def by_mailbox(
    services: Services,
    seller: Seller,
    mailbox: str | None,
    *,
    limit: int,
    continuation: str | None,
) -> dict[str, Any]:
    """The activities one mailbox holds (the seller's own unless an admin names another)."""
    address = (mailbox or seller.email).strip().lower()
    if address != seller.email and not seller.is_admin:
        raise NotFound("mailbox")

    def holds(row: dict[str, Any]) -> bool:
        return address in json.loads(row["mailboxes"])

    items, more = await timeline_index.page(
        services.store,
        [timeline_index.mailbox(address)],
        limit=limit,
        continuation=continuation,
        resolve=resolver(services, seller, holds),
    )
    return {"items": items, "continuation": more}


async def record_partitions(
    services: Services, seller: Seller, record_type: str, record_id: str
) -> list[str]:
    """Where the activities regarding a record are indexed that the seller may see: their
    mailbox's, or every enrolled mailbox's for an admin."""
    boxes = [seller.email]
    if seller.is_admin:
        boxes += [m.email for m in await mailboxes.all_mailboxes(services)]
    return [timeline_index.mailbox_record(b, record_type, record_id) for b in dict.fromkeys(boxes)]


def regards(record_type: str, record_id: str) -> Check:
    """Whether an activity is (still) about the record."""

    def check(row: dict[str, Any]) -> bool:
        return {"type": record_type, "id": record_id} in json.loads(row.get("regarding") or "[]")

    return check


async def by_record(
    services: Services,
    seller: Seller,
    record_type: str,
    record_id: str,
    *,
    limit: int,
    continuation: str | None,
) -> dict[str, Any]:
    """The activities tracked to a contact, lead or account (its `regarding`, decided when
    the item was tracked), that the seller may see."""
    await records.get(services, record_type, record_id)  # NotFound, or 422 naming `type`
    items, more = await timeline_index.page(
        services.store,
        await record_partitions(services, seller, record_type, record_id),
        limit=limit,
        continuation=continuation,
        resolve=resolver(services, seller, regards(record_type, record_id)),
    )
    return {"items": items, "continuation": more}


async def by_message(
    services: Services,
    seller: Seller,
    message_id: str,
    *,
    limit: int,
    continuation: str | None,
) -> dict[str, Any]:
    """The activities tracked through a followed message (replies to it): the seller's own
    message, or any for an admin."""
    if not seller.is_admin:
        await load_message(services, seller, message_id)  # NotFound for anyone else's

    def answers(row: dict[str, Any]) -> bool:
        return row.get("followed_message_id") == message_id

    items, more = await timeline_index.page(
        services.store,
        [timeline_index.followed_message(message_id)],
        limit=limit,
        continuation=continuation,
        resolve=resolver(services, seller, answers),
    )
    return {"items": items, "continuation": more}
