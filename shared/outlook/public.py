"""What the mailbox and activity routes answer: the dicts of `mailboxes.health`,
`tracked.view` and `record_timeline.timeline`, typed."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic.json_schema import SkipJsonSchema

from shared.core.public import IsoTime, Public
from shared.crm.public import RegardingPublic
from shared.messages.public import MessageListItemPublic
from shared.outlook.item_rules import Method


class MailboxErrors(Public):
    """Failed Graph calls of the mailbox's syncs by class (mailboxes.FAILURE_CLASSES)."""

    throttled: int
    timeout: int
    rejected: int
    unknown: int


class MailboxErrorsOnDay(MailboxErrors):
    """A UTC day's failed Graph calls of the mailbox's syncs, by class."""

    date: str = Field(description="the UTC day, YYYY-MM-DD")


class TrackingCategoryPublic(Public):
    """The mailbox's tracking category, known by id (null until the first sync makes it)."""

    id: str | None
    name: str | None


class MailboxHealthPublic(Public):
    """An enrolled mailbox's sync health."""

    email: str
    enrolled_at: IsoTime
    folders: list[str] = Field(description="tracked folders")
    status: Literal["pending", "ok", "degraded", "failing"] = Field(
        description="pending: never synced; failing: the last sync failed (see last_error); "
        "degraded: it syncs, but items fail to track; ok"
    )
    last_sync_at: IsoTime | None
    last_success_at: IsoTime | None
    lag_seconds: float | None = Field(description="seconds since the last successful sync")
    items_tracked: int
    items_failing: int
    undeliverable: int
    last_error: str | None
    errors: MailboxErrors = Field(description="every failed Graph call since enrolment")
    errors_by_day: list[MailboxErrorsOnDay] = Field(
        description="failed Graph calls per UTC day, oldest first, today last (`days` of them)"
    )
    category: TrackingCategoryPublic


class MailboxListPublic(Public):
    """Every enrolled mailbox, by address."""

    mailboxes: list[MailboxHealthPublic]


class ActivityPublic(Public):
    """A tracked Outlook item: an e-mail (one per Internet message id) or an appointment
    (one per iCalUId), joined by every enrolled mailbox that holds a copy."""

    id: str
    kind: Literal["email", "appointment"]
    subject: str
    sender: str = Field(description="the sender, or an appointment's organiser")
    addresses: list[str] = Field(description="every address on the item")
    at: IsoTime = Field(description="received or sent; an appointment's start")
    method: Method = Field(
        description="how it came to be tracked: a reply to followed mail (token), a later "
        "message of a tracked thread, a tracked folder, or the tracking category"
    )
    status: Literal["pending", "tracked", "untracked"] = Field(
        description="pending until the category is written in Outlook; untracked once the "
        "category was taken off"
    )
    mailboxes: list[str] = Field(description="the enrolled mailboxes holding a copy")
    regarding: list[RegardingPublic] = Field(
        description="the contact, lead and account records it was tracked to"
    )
    followed_message_id: str | None = Field(description="the followed message it answers")
    internet_message_id: str | None
    tracked_at: IsoTime
    untracked_at: IsoTime | None


class ActivityDetailPublic(ActivityPublic):
    """A tracked item with its body."""

    body_html: str = Field(description="the item's body as Outlook gave it, inline")


class ActivityListPublic(Public):
    """One page, newest first; `continuation` fetches the next (null on the last page)."""

    items: list[ActivityPublic]
    continuation: str | None


class TimelineItemPublic(Public):
    """One entry of a record's timeline: a followed message or a tracked Outlook item."""

    type: Literal["message", "activity"]
    at: IsoTime = Field(description="when the message was sent, or the item's time")
    message: MessageListItemPublic | SkipJsonSchema[None] = Field(
        None, description="a message: its KPI columns, as in the followed-emails list"
    )
    activity: ActivityPublic | SkipJsonSchema[None] = Field(
        None, description="a tracked Outlook item"
    )


class TimelinePublic(Public):
    """One page of a record's timeline, newest first; `continuation` fetches the next."""

    items: list[TimelineItemPublic]
    continuation: str | None
