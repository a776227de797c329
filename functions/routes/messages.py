"""Seller API: compose, send, read and list followed email."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from functions.deps import SellerDep, ServicesDep
from shared import messages
from shared.models import ComposeIn, ReminderIn, RescheduleIn

router = APIRouter(prefix="/api/messages", tags=["messages"])


@router.post("", status_code=201)
async def compose(body: ComposeIn, seller: SellerDep, services: ServicesDep) -> dict[str, Any]:
    """Create a message; followed by default, sent unless `send` is false."""
    return await messages.compose(services, seller, body)


@router.post("/{message_id}/send")
async def send(message_id: str, seller: SellerDep, services: ServicesDep) -> dict[str, Any]:
    """Send a draft."""
    return await messages.send(services, seller, message_id)


@router.patch("/{message_id}/schedule")
async def reschedule(
    message_id: str, body: RescheduleIn, seller: SellerDep, services: ServicesDep
) -> dict[str, Any]:
    """Move a scheduled message to another time."""
    return await messages.reschedule(services, seller, message_id, body.send_at)


@router.post("/{message_id}/cancel")
async def cancel(message_id: str, seller: SellerDep, services: ServicesDep) -> dict[str, Any]:
    """Cancel a scheduled message that has not gone out."""
    return await messages.cancel(services, seller, message_id)


@router.put("/{message_id}/reminder")
async def set_reminder(
    message_id: str, body: ReminderIn, seller: SellerDep, services: ServicesDep
) -> dict[str, Any]:
    """Set or replace the message's follow-up reminder (editable after sending too)."""
    return await messages.set_reminder(services, seller, message_id, body)


@router.delete("/{message_id}/reminder")
async def cancel_reminder(
    message_id: str, seller: SellerDep, services: ServicesDep
) -> dict[str, Any]:
    """Remove the message's pending reminder."""
    return await messages.cancel_reminder(services, seller, message_id)


@router.get("/{message_id}/preferences")
async def view_preferences(
    message_id: str, seller: SellerDep, services: ServicesDep
) -> dict[str, Any]:
    """The recipients' Follow Email preferences for this message (view preferences)."""
    return await messages.recipient_preferences(services, seller, message_id)


@router.get("/{message_id}")
async def get_message(
    message_id: str,
    seller: SellerDep,
    services: ServicesDep,
    history: Literal["summary", "full"] = "summary",
) -> dict[str, Any]:
    """The message, its KPIs and timeline (`?history=full` adds every event)."""
    return await messages.get(services, seller, message_id, full_history=history == "full")


@router.get("")
async def list_messages(
    seller: SellerDep,
    services: ServicesDep,
    sort: str = "sent_at",
    order: str = "desc",
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    continuation: str | None = None,
    follow_state: Literal["followed", "not_followed", "blocked", "any"] = "followed",
) -> dict[str, Any]:
    """All followed emails with their KPI columns, sortable and paged."""
    return await messages.list_messages(
        services,
        seller,
        sort=sort,
        order=order,
        limit=limit,
        continuation=continuation,
        follow_state=follow_state,
    )
