"""Shapes of what sellers send and receive. Pydantic validates input; no web types here."""

from __future__ import annotations

import re
from datetime import UTC
from typing import Annotated, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
)

from shared.assistant.reminders import ReminderIn
from shared.core.text import Address, BodyText, HeaderText

_CONTENT_TYPE = re.compile(r"^[A-Za-z0-9!#$&^_.+-]+/[A-Za-z0-9!#$&^_.+-]+$")
_FORBIDDEN_NAME = re.compile(r"[/\\:*?\"<>|]")


class AttachmentIn(BaseModel):
    """One attachment: followed ones become tracked download links in the body."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[HeaderText, Field(min_length=1, max_length=255)]
    content_type: str = "application/octet-stream"
    content: Annotated[str, Field(description="the file, base64-encoded")]
    followed: bool = True

    @field_validator("name")
    @classmethod
    def _plain_file_name(cls, value: str) -> str:
        if (
            _FORBIDDEN_NAME.search(value)
            or value.strip() in ("", ".", "..")
            or value != value.strip()
        ):
            raise ValueError("must be a plain file name, without path parts")
        return value

    @field_validator("content_type")
    @classmethod
    def _media_type(cls, value: str) -> str:
        if not _CONTENT_TYPE.match(value):
            raise ValueError("must be a media type such as application/pdf")
        return value.lower()


class Regarding(BaseModel):
    """The CRM record a message is about."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["contact", "lead", "account", "opportunity"]
    id: Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._:-]+$")]


class ComposeIn(BaseModel):
    """POST /api/messages."""

    model_config = ConfigDict(extra="forbid")

    to: list[Address] = Field(default_factory=list, max_length=100)
    cc: list[Address] = Field(default_factory=list, max_length=100)
    bcc: list[Address] = Field(default_factory=list, max_length=100)
    subject: Annotated[HeaderText, Field(max_length=998)] = ""
    html: BodyText = ""
    # A stored template: its subject and HTML, rendered for the recipient and the sender,
    # replace `subject` and `html` (which must then be left empty).
    template_id: Annotated[str | None, Field(max_length=64, pattern=r"^[A-Za-z0-9_-]+$")] = None
    follow: bool = True
    attachments: list[AttachmentIn] = Field(default_factory=list)
    regarding: Regarding | None = None
    send: bool = True
    send_at: AwareDatetime | None = None
    reminder: ReminderIn | None = None
    # One copy per recipient (To, then Cc, then Bcc), each addressed to that recipient alone
    # with its own tracking links, so opens, clicks and replies say who. The default, one
    # message to everyone, cannot tell recipients apart.
    send_individually: bool = False

    @field_validator("send_at")
    @classmethod
    def _utc(cls, value: AwareDatetime | None) -> AwareDatetime | None:
        return value.astimezone(UTC) if value is not None else None


class RescheduleIn(BaseModel):
    """PATCH /api/messages/{id}/schedule."""

    model_config = ConfigDict(extra="forbid")

    send_at: AwareDatetime


class DraftPatch(BaseModel):
    """PATCH /api/messages/{id}: the fields of a draft to change; those left out (or null)
    stay. `attachments` replaces the whole list; `follow` is the seller's choice, decided
    again against the recipients' preferences."""

    model_config = ConfigDict(extra="forbid")

    to: list[Address] | None = Field(None, max_length=100)
    cc: list[Address] | None = Field(None, max_length=100)
    bcc: list[Address] | None = Field(None, max_length=100)
    subject: Annotated[HeaderText, Field(max_length=998)] | None = None
    html: BodyText | None = None
    attachments: list[AttachmentIn] | None = None
    follow: bool | None = None
