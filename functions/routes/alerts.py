"""Seller API: the assistant's alerts."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import AwareDatetime, BaseModel, ConfigDict

from functions.deps import SellerDep, ServicesDep
from shared import alerts

router = APIRouter(prefix="/api/alerts", tags=["alerts"])


class SnoozeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    until: AwareDatetime


@router.get("")
async def list_alerts(seller: SellerDep, services: ServicesDep) -> dict[str, Any]:
    """Open alerts, high priority first, then newest."""
    return {"alerts": await alerts.list_alerts(services, seller)}


@router.post("/{alert_id}/snooze")
async def snooze(
    alert_id: str, body: SnoozeIn, seller: SellerDep, services: ServicesDep
) -> dict[str, Any]:
    """Hide an alert until a time."""
    return await alerts.snooze(services, seller, alert_id, body.until)


@router.post("/{alert_id}/dismiss")
async def dismiss(alert_id: str, seller: SellerDep, services: ServicesDep) -> dict[str, Any]:
    """Hide an alert for good."""
    return await alerts.dismiss(services, seller, alert_id)
