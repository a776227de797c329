"""What the records, preferences and advice routes answer: the dicts of `records._view`,
`preferences.recipient_preferences` and `preferences.send_time_advice`, typed."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic.json_schema import SkipJsonSchema

from shared.core.public import IsoTime, Public
from shared.crm.records import FollowEmail, RecordType
from shared.crm.send_time import Basis


class AddressPublic(Public):
    """A record's postal address; only the parts given are there."""

    city: str | SkipJsonSchema[None] = None
    state: str | SkipJsonSchema[None] = None
    country: str | SkipJsonSchema[None] = None
    time_zone: str | SkipJsonSchema[None] = Field(None, description="an IANA zone, if given")


class RegardingPublic(Public):
    """The CRM record a message (and its alerts) is about."""

    type: Literal["contact", "lead", "account", "opportunity"]
    id: str


class SellerRefPublic(Public):
    """Who made a change: the seller's Entra tenant and object id, and their address as it
    was then (display only)."""

    tenant_id: str
    object_id: str
    email: str


class RecordChangePublic(Public):
    """One change to a record's Follow Email or addresses (its creation included)."""

    at: IsoTime
    by: SellerRefPublic
    field: Literal["follow_email", "emails"]
    old: FollowEmail | list[str] | None = Field(description="null when the record was created")
    new: FollowEmail | list[str]


class RecordPublic(Public):
    """A contact, lead or account."""

    type: RecordType
    id: str
    name: str
    emails: list[str]
    address: AddressPublic | None
    follow_email: FollowEmail
    updated_at: IsoTime
    can_change_follow_email: bool = Field(
        description="whether you may switch Follow Email now: undoing an opt-out (Do Not "
        "Allow back to Allow) needs the admin role"
    )
    can_remove_emails: bool = Field(
        description="whether you may remove an address: not from a Do Not Allow record "
        "without the admin role (that address would be followed again)"
    )
    follow_email_changed_by: Literal["seller", "admin"] = Field(
        description="who may change Follow Email now: any seller (Allow), or an admin only "
        "(Do Not Allow)"
    )
    history: list[RecordChangePublic] | SkipJsonSchema[None] = Field(
        None,
        description="one record only: every change to Follow Email and addresses, oldest first",
    )


class RecordListPublic(Public):
    """Records found by address, or a page of a search; `continuation` fetches the next
    page (null on the last, and for an address)."""

    records: list[RecordPublic]
    continuation: str | None


class RecipientRecordPublic(Public):
    """A record found for a recipient, as the preferences show it."""

    type: RecordType
    id: str
    name: str
    follow_email: FollowEmail


class RecipientPublic(Public):
    """One recipient's Follow Email preference: whether mail to them may be followed."""

    address: str
    field: Literal["to", "cc", "bcc"]
    followable: bool
    reason: str | None = Field(description="why they may not be followed")
    records: list[RecipientRecordPublic]


class PreferencesPublic(Public):
    """Each recipient's preference, and the follow state a message to them would get now."""

    follow_state: Literal["followed", "blocked"]
    recipients: list[RecipientPublic]


class AdvicePublic(Public):
    """When to send to one recipient, and why (no time, with the reason, when there is none)."""

    send_at: IsoTime | None = Field(description="the suggested instant, UTC")
    local_time: IsoTime | None = Field(description="the same instant in the recipient's zone")
    time_zone: str | None = Field(description="the recipient's IANA time zone")
    seller_time: IsoTime | None = Field(
        description="the same instant in the seller's display time zone (null until they set "
        "one with PUT /api/me: show it in the browser's zone then)"
    )
    seller_time_zone: str | None = Field(description="the seller's display time zone")
    basis: Basis
    reason: str
