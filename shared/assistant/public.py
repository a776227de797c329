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
    created_at: IsoTime = Field(description="when it happened: the open, or the reminder")
    raised_at: IsoTime = Field(description="when the assistant raised the alert")
    how: str | None = Field(
        description='how we know, e.g. "opened in Outlook on Windows", "opened via Gmail — '
        'time approximate" (first opens only)'
    )
    recipient: str | None = Field(
        description="who opened, for a message sent to each recipient separately"
    )
    snoozed_until: IsoTime | None
    withdrawn: str | None = Field(
        description="why a first-open alert was taken back (a later fold judged the open a "
        "scanner's); a withdrawn alert is no longer listed, a webhook receives it again"
    )


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
