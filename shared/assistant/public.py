"""What the alert routes answer: the dicts of `alerts._view` and of `webhooks.configure` and
`webhooks.read`, typed."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from shared.core.public import IsoTime, Public
from shared.crm.public import RegardingPublic


class AlertPublic(Public):
    """An action card: a followed message was first opened, or a reminder fired."""

    id: str
    kind: Literal["first_open", "reminder"]
    priority: Literal["high", "normal"] = Field(description="reminders are high, listed first")
    message_id: str
    subject: str = Field(description="the message's subject, or the reminder's title")
    regarding: RegardingPublic | None
    created_at: IsoTime
    snoozed_until: IsoTime | None


class AlertListPublic(Public):
    """Open alerts: high priority first, then newest."""

    alerts: list[AlertPublic]


class WebhookPublic(Public):
    """Where new alerts are pushed, and the header that carries their signature."""

    url: str
    signature_header: str


class WebhookCreatedPublic(WebhookPublic):
    """The webhook just set, with its signing secret: shown this once."""

    secret: str
