"""Seller API: the assistant's alerts."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request, Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from functions import conditional
from functions.deps import SellerDep, ServicesDep
from functions.errors import BODY_ERRORS, error_responses
from functions.routes import ExactAnswers
from shared.assistant import alerts, webhooks
from shared.assistant.public import (
    AlertListPublic,
    AlertPublic,
    WebhookCreatedPublic,
    WebhookPublic,
)

router = APIRouter(
    prefix="/api/alerts",
    tags=["alerts"],
    route_class=ExactAnswers,
    responses=error_responses(401, 422, 503),
)


class WebhookIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: Annotated[str, Field(min_length=1, max_length=2000)]


class SnoozeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    until: AwareDatetime


@router.get("", response_model=AlertListPublic, responses=conditional.NOT_MODIFIED)
async def list_alerts(
    request: Request, response: Response, seller: SellerDep, services: ServicesDep
) -> dict[str, Any] | Response:
    """Open alerts (not dismissed, not snoozed now), high priority first, then newest. With
    the ETag of the last answer in `If-None-Match`, 304 while nothing changed: poll cheaply."""
    body = {"alerts": await alerts.list_alerts(services, seller)}
    return conditional.answer(request, response, body)


@router.post(
    "/{alert_id}/snooze", response_model=AlertPublic, responses=error_responses(*BODY_ERRORS, 404)
)
async def snooze(
    alert_id: str, body: SnoozeIn, seller: SellerDep, services: ServicesDep
) -> dict[str, Any]:
    """Hide an alert until a time."""
    return await alerts.snooze(services, seller, alert_id, body.until)


@router.post("/{alert_id}/dismiss", response_model=AlertPublic, responses=error_responses(404))
async def dismiss(alert_id: str, seller: SellerDep, services: ServicesDep) -> dict[str, Any]:
    """Hide an alert for good."""
    return await alerts.dismiss(services, seller, alert_id)


@router.put(
    "/webhook", response_model=WebhookCreatedPublic, responses=error_responses(*BODY_ERRORS)
)
async def set_webhook(body: WebhookIn, seller: SellerDep, services: ServicesDep) -> dict[str, Any]:
    """Push new alerts to this https URL, signed; the answer shows the secret once."""
    local = services.settings.environment == "local"
    return await webhooks.configure(services.store, seller.key, body.url, local=local)


@router.get("/webhook", response_model=WebhookPublic, responses=error_responses(404))
async def get_webhook(seller: SellerDep, services: ServicesDep) -> dict[str, Any]:
    """The webhook alerts are pushed to (404 when there is none)."""
    return await webhooks.read(services.store, seller.key)


@router.delete("/webhook", status_code=204)
async def delete_webhook(seller: SellerDep, services: ServicesDep) -> None:
    """Stop pushing alerts."""
    await webhooks.remove(services.store, seller.key)
