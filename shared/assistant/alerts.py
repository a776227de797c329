"""The assistant's action cards: an alert the first time a followed message is opened,
listed, snoozed and dismissed by its seller. High-priority alerts sort first. A first-open
alert whose open a later fold judged a scanner's is withdrawn with the reason: it leaves the
list, and a webhook receives it again, withdrawn."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from azure.core.exceptions import (
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.data.tables import UpdateMode

from shared.assistant import webhooks
from shared.assistant.views import alert_view
from shared.core.auth import Seller
from shared.core.errors import InvalidInput, NotFound
from shared.core.rows import owner_of
from shared.core.services import Services
from shared.core.storage import Store, update_if_unchanged

_PRIORITY_ORDER = {"high": 0, "normal": 1}


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
    row = {
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
    if await create(store, row):
        return True
    existing = await store.alerts.get_entity(row["PartitionKey"], row["RowKey"])
    if not existing.get("withdrawn"):
        return False
    try:  # it stands again, and its webhook hears so
        await update_if_unchanged(store.alerts, {**row, "webhook": ""}, existing.metadata["etag"])
    except ResourceModifiedError:
        return False  # a racing cycle raised it again first
    return True


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
