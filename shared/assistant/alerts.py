"""The assistant's action cards: an alert the first time a followed message is opened,
listed, snoozed and dismissed by its seller. High-priority alerts sort first. A first-open
alert whose open a later fold judged a scanner's is withdrawn with the reason: it leaves the
list, and a webhook receives it again, withdrawn."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from azure.core.exceptions import (
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.data.tables import TableTransactionError, UpdateMode

from shared.assistant import webhooks
from shared.assistant.views import alert_view
from shared.core import table_queries, transactions
from shared.core.auth import Seller
from shared.core.errors import InvalidInput, NotFound
from shared.core.rows import owner_of
from shared.core.services import Services
from shared.core.storage import Store, update_if_unchanged

_PRIORITY_ORDER = {"high": 0, "normal": 1}
_IDS_PER_QUERY = 14  # a filter takes at most 15 comparisons: the partition and 14 ids
_BATCH = 100  # the most operations one table transaction takes


async def create(store: Store, alert: dict[str, Any]) -> bool:
    """Store a new alert once (its RowKey is derived from what it is about, so a doubled
    cycle finds it there). A seller with a webhook gets it queued for delivery first, so
    that a crash between the two writes never loses the delivery. True if it was new."""
    await webhooks.enqueue(store, alert["PartitionKey"], alert["RowKey"])
    try:
        await store.alerts.create_entity(
            {"snoozed_until": "", "dismissed": False, "webhook": "", **alert}
        )
    except ResourceExistsError:
        return False
    return True


def _first_open_id(message: Mapping[str, Any]) -> str:
    return f"open-{message['RowKey']}"


async def first_open(
    store: Store,
    message: Mapping[str, Any],
    *,
    opened_at: datetime,
    how: str,
    raised_at: datetime,
    recipient: str = "",
) -> bool:
    """Create the first-open alert of a message (once: its id is derived from the message),
    saying how we know it was opened and, for a copy sent to one recipient, by whom. An
    alert withdrawn before (its open was a scanner's) stands again, on this open."""
    row = first_open_row(
        message, opened_at=opened_at, how=how, raised_at=raised_at, recipient=recipient
    )
    return await _create_or_raise_again(store, row)


def first_open_row(
    message: Mapping[str, Any],
    *,
    opened_at: datetime,
    how: str,
    raised_at: datetime,
    recipient: str,
) -> dict[str, Any]:
    """The first-open alert row of a message."""
    return {
        "PartitionKey": owner_of(message),
        "RowKey": _first_open_id(message),
        "kind": "first_open",
        "priority": "normal",
        "message_id": message["RowKey"],
        "subject": message.get("subject", ""),
        "regarding": message.get("regarding", ""),
        "created_at": opened_at.isoformat(),
        "raised_at": raised_at.isoformat(),
        "how": how,
        "recipient": recipient,
        "withdrawn": "",
    }


async def _raise_again(store: Store, row: dict[str, Any]) -> bool:
    """An alert that exists stands again if it was withdrawn (its open was a scanner's, and
    now a person's open counts); True if this call raised it."""
    existing = await store.alerts.get_entity(row["PartitionKey"], row["RowKey"])
    if not existing.get("withdrawn"):
        return False
    try:  # it stands again, and its webhook hears so
        await update_if_unchanged(store.alerts, {**row, "webhook": ""}, existing.metadata["etag"])
    except ResourceModifiedError:
        return False  # a racing cycle raised it again first
    return True


async def first_opens(store: Store, rows: list[dict[str, Any]]) -> int:
    """Create many first-open alerts (rows from `first_open_row`) as `first_open` would one by
    one, in a few requests: the ones that exist are read by queries of 14 ids per seller (at once),
    the new ones created in transactions of up to 100 per seller; how many were raised."""
    by_seller: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_seller[row["PartitionKey"]].append(row)
    raised = await asyncio.gather(*(_first_opens_of(store, k, v) for k, v in by_seller.items()))
    return sum(raised)


async def _first_opens_of(store: Store, seller_key: str, rows: list[dict[str, Any]]) -> int:

    async def existing(chunk: list[dict[str, Any]]) -> list[Any]:
        names = {f"r{n}": row["RowKey"] for n, row in enumerate(chunk)}
        wanted = " or ".join(f"RowKey eq @{name}" for name in names)
        return [
            row
            async for row in table_queries.query(
                store.alerts,
                f"PartitionKey eq @pk and ( {wanted} )",
                parameters={"pk": seller_key, **names},
                select=["RowKey", "withdrawn"],
            )
        ]

    chunks = [rows[n : n + _IDS_PER_QUERY] for n in range(0, len(rows), _IDS_PER_QUERY)]
    found = {
        str(row["RowKey"]): row
        for rows_found in await asyncio.gather(*map(existing, chunks))
        for row in rows_found
    }
    fresh = [row for row in rows if row["RowKey"] not in found]
    again = [row for row in rows if found.get(row["RowKey"], {}).get("withdrawn")]
    raised = sum(await asyncio.gather(*(_raise_again(store, row) for row in again)))
    if not fresh:
        return raised
    # queued for the webhook first: a crash in between loses no delivery
    await webhooks.enqueue_all(store, seller_key, [str(row["RowKey"]) for row in fresh])
    for start in range(0, len(fresh), _BATCH):
        chunk = fresh[start : start + _BATCH]
        try:
            await transactions.submit(
                store.alerts,
                [
                    ("create", {"snoozed_until": "", "dismissed": False, "webhook": "", **r})
                    for r in chunk
                ],
            )
            raised += len(chunk)
        except TableTransactionError:  # one was raised meanwhile (a racing cycle): one by one
            made = await asyncio.gather(*(_create_or_raise_again(store, r) for r in chunk))
            raised += sum(made)
    return raised


async def _create_or_raise_again(store: Store, row: dict[str, Any]) -> bool:
    if await create(store, row):
        return True
    return await _raise_again(store, row)


async def withdraw_first_open(
    store: Store, message: Mapping[str, Any], reason: str, at: datetime
) -> bool:
    """Withdraw a message's first-open alert, if one was raised and stands: a later fold
    judged the open it was raised on not a person's. True if one was withdrawn."""
    keys = {"PartitionKey": owner_of(message), "RowKey": _first_open_id(message)}
    try:
        row = await store.alerts.get_entity(keys["PartitionKey"], keys["RowKey"])
    except ResourceNotFoundError:
        return False
    if row.get("withdrawn"):
        return False
    await webhooks.enqueue(store, keys["PartitionKey"], keys["RowKey"])  # first: never lost
    withdrawn = {"withdrawn": reason, "withdrawn_at": at.isoformat(), "webhook": ""}
    await store.alerts.update_entity({**keys, **withdrawn}, mode=UpdateMode.MERGE)
    return True


async def list_alerts(services: Services, seller: Seller) -> list[dict[str, Any]]:
    """Open alerts (not dismissed, not withdrawn, not snoozed now): high priority first,
    then newest."""
    now = services.clock()
    rows = [
        row
        async for row in services.store.alerts.query_entities(
            "PartitionKey eq @pk and dismissed eq false", parameters={"pk": seller.key}
        )
        if not row.get("withdrawn")
        and (not row.get("snoozed_until") or datetime.fromisoformat(row["snoozed_until"]) <= now)
    ]
    rows.sort(key=lambda r: r["created_at"], reverse=True)
    rows.sort(key=lambda r: _PRIORITY_ORDER.get(r["priority"], 9))
    return [alert_view(r) for r in rows]


async def _change(
    services: Services, seller: Seller, alert_id: str, **changes: Any
) -> dict[str, Any]:
    try:
        await services.store.alerts.get_entity(seller.key, alert_id)
    except ResourceNotFoundError:
        raise NotFound("alert") from None
    await services.store.alerts.update_entity(
        {"PartitionKey": seller.key, "RowKey": alert_id, **changes}, mode=UpdateMode.MERGE
    )
    return alert_view(await services.store.alerts.get_entity(seller.key, alert_id))


async def snooze(
    services: Services, seller: Seller, alert_id: str, until: datetime
) -> dict[str, Any]:
    """Hide an alert until a time."""
    if until <= services.clock():
        raise InvalidInput("until", "must be in the future")
    return await _change(services, seller, alert_id, snoozed_until=until.isoformat())


async def dismiss(services: Services, seller: Seller, alert_id: str) -> dict[str, Any]:
    """Hide an alert for good."""
    return await _change(services, seller, alert_id, dismissed=True)
