"""Seller API: tracked Outlook activities, by mailbox, and one with its body."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from functions.deps import SellerDep, ServicesDep
from functions.errors import error_responses
from functions.routes import ExactAnswers
from shared.outlook import tracked
from shared.outlook.public import ActivityDetailPublic, ActivityListPublic

router = APIRouter(
    prefix="/api/activities",
    tags=["activities"],
    route_class=ExactAnswers,
    responses=error_responses(401, 422, 503),
)
Limit = Annotated[int, Query(ge=1, le=200)]


@router.get("", response_model=ActivityListPublic, responses=error_responses(404))
async def list_activities(
    seller: SellerDep,
    services: ServicesDep,
    mailbox: Annotated[str | None, Query(max_length=320)] = None,
    limit: Limit = 50,
    continuation: str | None = None,
) -> dict[str, Any]:
    """The activities a mailbox holds, newest first: the seller's own; an admin may name
    any mailbox (`mailbox`)."""
    return await tracked.by_mailbox(
        services, seller, mailbox, limit=limit, continuation=continuation
    )


@router.get("/{activity_id}", response_model=ActivityDetailPublic, responses=error_responses(404))
async def get_activity(
    activity_id: str, seller: SellerDep, services: ServicesDep
) -> dict[str, Any]:
    """One activity with its body (`body_html`, inline)."""
    return await tracked.get(services, seller, activity_id)
