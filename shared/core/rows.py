"""The columns of the messages table, typed: one row per message, read and written by
compose, sending, the fold, reply detection and the views. Table storage hands rows back as
mappings; `message_row` gives one this type, and the keys mypy knows are the columns that
exist. Columns hold text where the table has no type for a value: lists and maps as JSON,
times as ISO 8601 ("" for none)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, TypedDict, cast

MessageStatus = Literal["draft", "scheduled", "sending", "sent", "failed", "cancelled"]
FollowState = Literal["followed", "not_followed", "blocked"]


class MessageRow(TypedDict, total=False):
    PartitionKey: str  # the message partition (shared.core.ids.partition_of)
    RowKey: str  # the message id
    owner: str  # the seller's key (shared.core.ids.seller_key): whose message it is
    seller: str  # the seller's address: display, and the mailbox it leaves from
    subject: str
    template_id: str
    to: str  # JSON list of addresses, as are cc and bcc
    cc: str
    bcc: str
    status: MessageStatus
    follow_state: FollowState
    blocked: str  # JSON: the recipients who could not be followed, and why
    created_at: str
    send_at: str  # scheduled time ("" once sent now)
    sent_at: str
    internet_message_id: str  # of the first copy, for a message sent individually
    conversation_id: str
    provider_id: str  # the message's id in the seller's mailbox (Graph)
    send_individually: bool  # one copy per recipient (shared.messages.copies)
    copies: str  # JSON list, once sent individually: copy, address, ids (SentCopy)
    regarding: str  # JSON: the CRM record the message is about
    attachments: str  # JSON list: index, name, content_type, size, followed
    link_count: int
    reminder: str  # JSON: the follow-up reminder and its state
    # Sending (shared.messages.sending): the lease of the attempt holding it, when it was
    # queued, failed attempts so far, the last failure and when the next attempt is due.
    lease_until: str
    queued_at: str
    attempts: int
    failure: str
    next_attempt_at: str
    editing_until: str  # a draft being changed (shared.messages.drafts): not sent until then
    # KPIs (shared.engagement.kpis.to_columns).
    opens: int
    link_clicks: int
    attachment_views: int
    replies: int
    previews: int
    first_opened_at: str
    last_opened_at: str
    clicks_by_link: str
    views_by_attachment: str
    devices: str
    by_class: str
    clients: str
    first_json: str
    last_json: str
    by_copy: str
    folded_bucket: str
    listed: int  # the list index version its index rows follow (shared.core.list_index)
    # Not columns: the ETag the row was read with (for updates that must not clobber), and
    # the queue time a claim replaced (so the attempt removes both queue rows).
    etag: str
    previous_queued_at: str


def message_row(entity: Mapping[str, Any]) -> MessageRow:
    """A row read from the messages table, typed (a copy: table entities carry metadata)."""
    return cast(MessageRow, dict(entity))


def owner_of(row: Mapping[str, Any]) -> str:
    """The key of the seller a message belongs to: its `owner`. A message made before
    sellers were keyed by id has none until the migration sets it; things made for it
    meanwhile (alerts) are keyed by its partition, and the migration moves them."""
    return str(row.get("owner") or row["PartitionKey"])


def kpi_columns(columns: Mapping[str, Any]) -> MessageRow:
    """The KPI columns (shared.engagement.kpis.to_columns) as part of a message row."""
    return cast(MessageRow, dict(columns))
