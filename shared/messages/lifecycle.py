"""A stored message's life after compose: send it now, reschedule or cancel it, set or
remove its reminder."""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any

from azure.core.exceptions import (
    ResourceModifiedError,
)

from shared.assistant import reminders
from shared.assistant.reminders import ReminderIn
from shared.core.auth import Seller
from shared.core.errors import Conflict
from shared.core.rows import MessageRow
from shared.core.services import Services
from shared.core.storage import update_if_unchanged
from shared.engagement.kpis import from_columns
from shared.messages import copies, dispatch_queue, sending
from shared.messages.compose_checks import check_future
from shared.messages.reading import links_of, load
from shared.messages.views import message_view

logger = logging.getLogger(__name__)


async def send(services: Services, seller: Seller, message_id: str) -> dict[str, Any]:
    """Deliver a draft, a scheduled or a failed message now."""
    entity = await load(services, seller, message_id)
    if not sending.claimable(entity, services.clock(), by_seller=True):
        raise Conflict("the message was already sent, cancelled or is being sent")
    entity.update(await sending.send_now(services, message_id))
    return message_view(entity, from_columns(entity), await links_of(services, entity))


async def _merge(services: Services, entity: MessageRow, **changes: Any) -> None:
    """Change some columns, only if nobody changed the message since it was read."""
    try:
        await update_if_unchanged(
            services.store.messages,
            {"PartitionKey": entity["PartitionKey"], "RowKey": entity["RowKey"], **changes},
            entity["etag"],
        )
    except ResourceModifiedError:
        raise Conflict(
            "the message changed meanwhile (it may be going out); read it again"
        ) from None


async def set_reminder(
    services: Services, seller: Seller, message_id: str, reminder: ReminderIn
) -> dict[str, Any]:
    """Set or replace a message's reminder (still editable after sending)."""
    entity = await load(services, seller, message_id)
    reminders.check(reminder, followed=entity["follow_state"] == "followed", now=services.clock())
    await reminders.schedule(services, message_id, reminder.at.isoformat())
    column = reminders.as_column(reminder)
    await _merge(services, entity, reminder=column)
    old = json.loads(entity.get("reminder") or "{}")
    if old.get("state") == "pending" and old["at"] != reminder.at.isoformat():
        await reminders.unschedule(services, message_id, old["at"])
    entity["reminder"] = column
    return message_view(entity, from_columns(entity), await links_of(services, entity))


async def cancel_reminder(services: Services, seller: Seller, message_id: str) -> dict[str, Any]:
    """Remove a message's pending reminder."""
    entity = await load(services, seller, message_id)
    old = json.loads(entity.get("reminder") or "{}")
    if old.get("state") != "pending":
        raise Conflict("the message has no pending reminder")
    await _merge(services, entity, reminder="")
    await reminders.unschedule(services, message_id, old["at"])
    entity["reminder"] = ""
    return message_view(entity, from_columns(entity), await links_of(services, entity))


async def reschedule(
    services: Services, seller: Seller, message_id: str, send_at: datetime
) -> dict[str, Any]:
    """Move a scheduled message to another time (before it has been handed over), or
    schedule a draft: it leaves the drafts and the dispatch cycle sends it when due."""
    entity = await load(services, seller, message_id)
    status = entity["status"]
    if status not in ("scheduled", "draft"):
        raise Conflict("only a draft or a scheduled message that has not gone out can be scheduled")
    if not sending.claimable(entity, services.clock(), by_seller=True):
        raise Conflict("the draft is being changed; try again in a moment")
    check_future(services, send_at)
    # Due first, then the row: a row left a draft (a concurrent change won) makes the due
    # entry one the dispatch cycle skips, never a scheduled message without one.
    await dispatch_queue.schedule(services, message_id, send_at)
    await _merge(services, entity, status="scheduled", send_at=send_at.isoformat())
    if status == "scheduled":
        old = datetime.fromisoformat(entity["send_at"])
        await dispatch_queue.unschedule(services, message_id, old)
    entity["status"] = "scheduled"
    entity["send_at"] = send_at.isoformat()
    return message_view(entity, from_columns(entity), await links_of(services, entity))


async def cancel(services: Services, seller: Seller, message_id: str) -> dict[str, Any]:
    """Cancel a scheduled message, even one handed over with a deferred-send time, until it
    has gone out."""
    entity = await load(services, seller, message_id)
    send_at = datetime.fromisoformat(entity["send_at"]) if entity.get("send_at") else None
    if entity["status"] == "scheduled" and send_at is not None:
        await _merge(services, entity, status="cancelled")
        await dispatch_queue.unschedule(services, message_id, send_at)
    elif (
        entity["status"] == "sent"
        and send_at is not None
        and send_at > services.clock()
        and await _stop_handed_over(services, entity)
    ):
        await _merge(services, entity, status="cancelled", sent_at="")
    else:
        raise Conflict("only a scheduled message that has not gone out can be cancelled")
    entity["status"] = "cancelled"
    return message_view(entity, from_columns(entity), await links_of(services, entity))


async def _stop_handed_over(services: Services, entity: MessageRow) -> bool:
    """Stop a message handed over with a deferred-send time: every copy of one sent
    individually. True when nothing had left; Conflict, with the copies that did not leave
    marked cancelled, when some had."""
    went = copies.sent(entity)
    if not went:
        return await services.delivery.cancel(entity["seller"], entity.get("provider_id") or "")
    stopped = {
        c["copy"]: await services.delivery.cancel(entity["seller"], c["provider_id"])
        for c in went
        if not c.get("cancelled")
    }
    if stopped and all(stopped.values()):
        return True
    if any(stopped.values()):
        for c in went:
            if stopped.get(c["copy"]):
                c["cancelled"] = True
        await _merge(services, entity, copies=copies.column(went))
        left = sum(not s for s in stopped.values())
        raise Conflict(f"{left} of {len(went)} copies had gone out; the others were cancelled")
    return False
