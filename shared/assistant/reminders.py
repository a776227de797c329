"""Follow-up reminders: "if I do not receive a reply by", "if the email is not opened by",
or "remind me anyway at". The 5-s alert timer (and REMINDER_SCHEDULE's, a backstop) fires
each due reminder whose condition holds as a high-priority alert, exactly once (the alert's
id is the reminder's), and closes one whose condition no longer holds as satisfied; a cycle
with nothing due costs one query of the due index. Reminders stay editable after sending."""

from __future__ import annotations

import contextlib
import json
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from shared.assistant import alerts
from shared.core.errors import InvalidInput
from shared.core.ids import partition_of
from shared.core.rows import owner_of
from shared.core.services import Services
from shared.core.storage import update_if_unchanged
from shared.core.text import HeaderText
from shared.engagement.kpis import from_columns

logger = logging.getLogger(__name__)
_DUE = "due"
NEEDS_FOLLOWING = ("no_reply_by", "not_opened_by")


class ReminderIn(BaseModel):
    """A follow-up reminder, at compose or later (PUT /api/messages/{id}/reminder)."""

    model_config = ConfigDict(extra="forbid")

    title: Annotated[HeaderText, Field(min_length=1, max_length=200)]
    condition: Literal["no_reply_by", "not_opened_by", "at"]
    at: AwareDatetime


@dataclass(frozen=True, slots=True)
class ReminderReport:
    fired: int
    satisfied: int
    skipped: int


def check(reminder: ReminderIn, *, followed: bool, now: datetime) -> None:
    """Refuse a reminder that cannot work: in the past, or a condition on a message we do
    not follow (we would never learn of the reply or the open)."""
    if reminder.at <= now:
        raise InvalidInput("reminder.at", "must be in the future")
    if reminder.condition in NEEDS_FOLLOWING and not followed:
        raise InvalidInput("reminder.condition", "needs a followed message; use 'at'")


def as_column(reminder: ReminderIn) -> str:
    return json.dumps(
        {
            "title": reminder.title,
            "condition": reminder.condition,
            "at": reminder.at.isoformat(),
            "state": "pending",
        }
    )


def _key(at: str, message_id: str) -> str:
    return f"{at}|{message_id}"


async def schedule(services: Services, message_id: str, at: str) -> None:
    await services.store.reminders.upsert_entity(
        {"PartitionKey": _DUE, "RowKey": _key(at, message_id), "message_id": message_id}
    )


async def unschedule(services: Services, message_id: str, at: str) -> None:
    with contextlib.suppress(ResourceNotFoundError):
        await services.store.reminders.delete_entity(_DUE, _key(at, message_id))


def holds(condition: str, opens: int, replies: int) -> bool:
    """Whether the reminder's condition is still true."""
    if condition == "no_reply_by":
        return replies == 0
    if condition == "not_opened_by":
        return opens == 0
    return True


async def _fire_one(services: Services, row: Any) -> str:
    message_id = row["message_id"]
    try:
        entity = await services.store.messages.get_entity(partition_of(message_id), message_id)
    except ResourceNotFoundError:
        return "skipped"
    reminder = json.loads(entity.get("reminder") or "{}")
    if reminder.get("state") != "pending" or _key(reminder["at"], message_id) != row["RowKey"]:
        return "skipped"  # changed or cancelled since it was scheduled
    kpis = from_columns(entity)
    fire = holds(reminder["condition"], kpis.opens, kpis.replies)
    if fire:
        await alerts.create(
            services.store,
            {
                "PartitionKey": owner_of(entity),
                "RowKey": f"reminder-{message_id}-{reminder['at'][:19].replace(':', '')}",
                "kind": "reminder",
                "priority": "high",
                "message_id": message_id,
                "subject": reminder["title"],
                "regarding": entity.get("regarding", ""),
                "created_at": services.clock().isoformat(),
            },
        )
    reminder["state"] = "fired" if fire else "satisfied"
    reminder["closed_at"] = services.clock().isoformat()
    try:
        await update_if_unchanged(
            services.store.messages,
            {
                "PartitionKey": entity["PartitionKey"],
                "RowKey": message_id,
                "reminder": json.dumps(reminder),
            },
            entity.metadata["etag"],
        )
    except ResourceModifiedError:
        # A concurrent cycle closed it first, or the message changed meanwhile: the due row
        # stays and the next cycle decides again (an alert already made is not made twice).
        return "raced"
    return str(reminder["state"])


async def reminder_cycle(services: Services) -> ReminderReport:
    """Every due reminder, once. Safe to run twice or concurrently: the alert is created at
    most once, and the reminder's state moves only from pending. One query of the due index
    (its RowKeys sort by due time) up to now."""
    counts = {"fired": 0, "satisfied": 0, "skipped": 0, "raced": 0}
    rows = services.store.reminders.query_entities(
        "PartitionKey eq @pk and RowKey le @due",
        parameters={"pk": _DUE, "due": f"{services.clock().isoformat()}~"},
    )
    async for row in rows:
        try:
            outcome = await _fire_one(services, row)
            counts[outcome] += 1
            if outcome == "raced":
                continue
            with contextlib.suppress(ResourceNotFoundError):
                await services.store.reminders.delete_entity(_DUE, row["RowKey"])
        except Exception:
            logger.exception("a reminder failed; it is tried again next cycle")
    return ReminderReport(counts["fired"], counts["satisfied"], counts["skipped"])
