"""What the template routes answer: the dicts of `library.list_templates` and `library.get`
(a template's fields with its statistics), typed."""

from __future__ import annotations

from pydantic import Field

from shared.core.public import IsoTime, Public
from shared.crm.public import RegardingPublic


class TemplateSummaryPublic(Public):
    """A template with its live counts, rates and whether it is the one to use."""

    id: str
    name: str
    subject: str
    created_by: str
    created_at: IsoTime
    updated_at: IsoTime
    sent: int
    opened: int = Field(description="messages opened at least once")
    replied: int = Field(description="messages replied to at least once")
    open_rate: float | None = Field(description="null before the first send")
    reply_rate: float | None
    open_rate_low: float | None = Field(description="lower bound of its 95% Wilson interval")
    reply_rate_low: float | None
    recommended: bool
    why: str = Field(description="why it is recommended, or not")


class TemplatePublic(TemplateSummaryPublic):
    """A template with its HTML."""

    html: str


class TemplateListPublic(Public):
    """Every template, sorted as asked."""

    items: list[TemplateSummaryPublic]


class TemplatePreviewPublic(Public):
    """A template rendered for a record, as compose would send it to the record's first
    address (not followed yet: links are signed only when a message is composed)."""

    subject: str
    html: str
    record: RegardingPublic = Field(description="the record it was rendered for")
    to: str = Field(description="the address it was rendered for: the record's first")
