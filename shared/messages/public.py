"""What the message routes answer: the dicts of `views.message_view` (with what compose and
`reading.get` add to it), `views.list_item` and `reading.recipient_preferences`, typed. Keys
a view only sometimes carries are optional and left out when absent, as the view leaves
them out."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic.json_schema import SkipJsonSchema

from shared.core.public import IsoTime, Public
from shared.core.rows import FollowState, MessageStatus
from shared.core.vocabulary import EventClass
from shared.crm.public import AdvicePublic, RecipientPublic, RegardingPublic


class ClassTally(Public):
    """Events of one kind by who made them."""

    human: int
    proxy_open: int = Field(description="a proxy fetched as a person opened (time approximate)")
    prefetch: int = Field(description="fetched at delivery, read or not: never an open")
    unknown: int
    scanner: int


class ByClassPublic(Public):
    """Every open, click and attachment view after sending per class, counted or not."""

    opens: ClassTally
    link_clicks: ClassTally
    attachment_views: ClassTally


class HeadlineKpis(Public):
    """The headline KPIs: counted classes only (COUNTED_CLASSES), replies included."""

    opens: int
    first_opened_at: IsoTime | None
    last_opened_at: IsoTime | None
    link_clicks: int
    attachment_views: int
    replies: int


class KpisPublic(HeadlineKpis):
    """The headline KPIs, with devices, mail clients and the per-class totals beside them."""

    devices: dict[str, int] = Field(description="counted opens and clicks by device type")
    mail_clients: dict[str, int] = Field(description="counted opens by mail client")
    previews_not_counted: int = Field(description="events before the message was sent")
    by_class: ByClassPublic


class LinkPublic(Public):
    """A followed link and its counted clicks."""

    index: int
    url: str
    clicks: int


class AttachmentPublic(Public):
    """An attachment; a followed one with its counted views."""

    index: int
    name: str
    content_type: str
    size: int
    followed: bool
    views: int | None = Field(description="null when the attachment is not followed")


class TimelineEntryPublic(Public):
    """The first and the latest occurrence of an event type (once if it happened once)."""

    event: str = Field(description="sent, open, click, attachment or reply")
    at: IsoTime
    occurrence: Literal["first", "latest", "only"]
    index: int | None = Field(description="the link's or attachment's index")
    device: str | None
    how: str | None = Field(
        description='for an open, how we know: "opened in Outlook on Windows", "opened via '
        'Gmail — time approximate"'
    )
    recipient: str | None = Field(
        description="whose copy, for a message sent to each recipient separately"
    )


class HistoryEventPublic(Public):
    """One recorded event, with who made it and whether the KPIs count it."""

    event: str = Field(description="open, click, attachment, reply or auto_reply")
    at: IsoTime
    index: int
    device: str
    class_: EventClass | None = Field(alias="class", description="who made it")
    reasons: list[str]
    counted: bool
    copy_: int = Field(
        alias="copy",
        description="the recipient's copy (1, 2, ...) of a message sent individually; 0 for "
        "one message to everyone",
    )
    recipient: str | None = Field(description="sent individually: whose copy it was")


class RecipientCopyPublic(Public):
    """One recipient's own copy of a message sent individually, and its counted events."""

    copy_: int = Field(alias="copy", description="1, 2, ... in the order To, Cc, Bcc")
    address: str
    opens: int
    first_opened_at: IsoTime | None
    last_opened_at: IsoTime | None
    link_clicks: int
    attachment_views: int


class ReminderPublic(Public):
    """A message's follow-up reminder and where it stands."""

    title: str
    condition: Literal["no_reply_by", "not_opened_by", "at"]
    at: IsoTime
    state: Literal["pending", "fired", "satisfied"] = Field(
        description="pending until the reminders timer fires it, or closes it as satisfied"
    )
    closed_at: IsoTime | SkipJsonSchema[None] = Field(None, description="once fired or satisfied")


class MessagePublic(Public):
    """A message with its sending state, KPIs, per-link and per-attachment counts and its
    timeline."""

    id: str
    status: MessageStatus
    follow_state: FollowState
    subject: str
    to: list[str]
    cc: list[str]
    bcc: list[str]
    regarding: RegardingPublic | None
    created_at: IsoTime
    sent_at: IsoTime | None
    send_at: IsoTime | None = Field(description="when a scheduled message goes out")
    attempts: int = Field(description="failed attempts to send")
    failure: str | None = Field(description="why the last attempt failed")
    next_attempt_at: IsoTime | None = Field(description="while `sending`: the next attempt")
    reminder: ReminderPublic | None
    send_individually: bool = Field(
        description="one copy per recipient; else one message to everyone, whose recipients "
        "cannot be told apart"
    )
    kpis: KpisPublic
    links: list[LinkPublic]
    attachments: list[AttachmentPublic]
    timeline: list[TimelineEntryPublic] = Field(description="newest first")
    by_recipient: list[RecipientCopyPublic] | SkipJsonSchema[None] = Field(
        None, description="sent individually: each recipient's copy, in copy order"
    )
    blocked_recipients: list[RecipientPublic] | SkipJsonSchema[None] = Field(
        None, description="when `blocked`: the recipients who stop it being followed"
    )
    html: str | SkipJsonSchema[None] = Field(None, description="compose: the body as delivered")
    follow_reason: str | SkipJsonSchema[None] = Field(
        None, description="compose: why the message is not followed"
    )
    advice: AdvicePublic | SkipJsonSchema[None] = Field(
        None, description="compose, to one recipient: when to send"
    )
    kpis_complete: bool | SkipJsonSchema[None] = Field(
        None,
        description="reading one message: whether events not folded yet could all be read",
    )
    history: list[HistoryEventPublic] | SkipJsonSchema[None] = Field(
        None, description="with `?history=full`: every event, newest first"
    )


class MessageListItemPublic(HeadlineKpis):
    """A row of the followed-emails list: the message's KPI columns as last folded."""

    id: str
    subject: str
    to: list[str]
    status: MessageStatus
    follow_state: FollowState
    sent_at: IsoTime | None
    by_class: ByClassPublic


class MessageListPublic(Public):
    """One page of the list; `continuation` fetches the next (null on the last page)."""

    items: list[MessageListItemPublic]
    continuation: str | None


class MessagePreferencesPublic(Public):
    """A stored message's recipients' preferences now, and the follow state it would get."""

    id: str
    status: MessageStatus
    message_follow_state: FollowState = Field(description="the message's follow state")
    follow_state: Literal["followed", "blocked"] = Field(description="what it would get now")
    recipients: list[RecipientPublic]


class MessageBodyPublic(Public):
    """A stored message's body: as delivered, and as the seller wrote it."""

    id: str
    html: str = Field(
        description="as delivered (links signed and the pixel in, when followed); sent "
        "individually, the first recipient's copy"
    )
    original: str = Field(
        description="as the seller wrote it: what a draft is edited from (the same as "
        "`html` when not followed)"
    )
