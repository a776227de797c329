"""The assistant's action cards: an alert the first time a followed message is opened,
listed, snoozed and dismissed by its seller. High-priority alerts sort first."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.data.tables import UpdateMode

from shared.assistant import webhooks
from shared.core.auth import Seller
from shared.core.errors import InvalidInput, NotFound
from shared.core.services import Services
from shared.core.storage import Store

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


async def first_open(store: Store, message: dict[str, Any], opened_at: datetime) -> bool:
    """Create the first-open alert of a message (once: its id is derived from the message).
    Made by the alert cycle within seconds of the open, and by the fold before it records
    the open as a backstop, so a crash in between loses nothing."""
    return await create(
        store,
        {
            "PartitionKey": message["PartitionKey"],
            "RowKey": f"open-{message['RowKey']}",
            "kind": "first_open",
            "priority": "normal",
            "message_id": message["RowKey"],
            "subject": message.get("subject", ""),
            "regarding": message.get("regarding", ""),
            "created_at": opened_at.isoformat(),
        },
    )


def _view(row: Any) -> dict[str, Any]:
    return {
        "id": row["RowKey"],
        "kind": row["kind"],
        "priority": row["priority"],
        "message_id": row["message_id"],
        "subject": row["subject"],
        "regarding": json.loads(row["regarding"]) if row.get("regarding") else None,
        "created_at": row["created_at"],
        "snoozed_until": row.get("snoozed_until") or None,
    }


async def list_alerts(services: Services, seller: Seller) -> list[dict[str, Any]]:
    """Open alerts (not dismissed, not snoozed now): high priority first, then newest."""
    now = services.clock()
    rows = [
        row
        async for row in services.store.alerts.query_entities(
            "PartitionKey eq @pk and dismissed eq false", parameters={"pk": seller.key}
        )
        if not row.get("snoozed_until") or datetime.fromisoformat(row["snoozed_until"]) <= now
    ]
    rows.sort(key=lambda r: r["created_at"], reverse=True)
    rows.sort(key=lambda r: _PRIORITY_ORDER.get(r["priority"], 9))
    return [_view(r) for r in rows]


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
    return _view(await services.store.alerts.get_entity(seller.key, alert_id))


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
