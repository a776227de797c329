"""What the mailbox routes answer: the dict of `mailboxes.health`, typed."""

from __future__ import annotations

from pydantic import Field

from shared.core.public import IsoTime, Public


class MailboxErrors(Public):
    """Failed Graph calls of the mailbox's syncs by class (mailboxes.FAILURE_CLASSES)."""

    throttled: int
    timeout: int
    rejected: int
    unknown: int


class TrackingCategoryPublic(Public):
    """The mailbox's tracking category, known by id (null until the first sync makes it)."""

    id: str | None
    name: str | None


class MailboxHealthPublic(Public):
    """An enrolled mailbox's sync health."""

    email: str
    enrolled_at: IsoTime
    folders: list[str] = Field(description="tracked folders")
    last_sync_at: IsoTime | None
    last_success_at: IsoTime | None
    lag_seconds: float | None = Field(description="seconds since the last successful sync")
    items_tracked: int
    items_failing: int
    undeliverable: int
    last_error: str | None
    errors: MailboxErrors
    category: TrackingCategoryPublic


class MailboxListPublic(Public):
    """Every enrolled mailbox, by address."""

    mailboxes: list[MailboxHealthPublic]
