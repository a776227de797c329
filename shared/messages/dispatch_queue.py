"""The dispatch queue: one row per message that may still go out, keyed by when it is due
(the `schedule` table, partition `due`). Scheduled mail is queued at its time; mail sent now
is queued at the moment it was, before it enters `sending`, so that a send attempt that dies
is found again once its lease runs out (shared.messages.dispatch)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from datetime import datetime
from typing import Any

from azure.core.exceptions import ResourceNotFoundError

from shared.core.rows import MessageRow
from shared.core.services import Services

_DUE = "due"


def _schedule_key(send_at: datetime, message_id: str) -> str:
    return f"{send_at.isoformat()}|{message_id}"


async def schedule(services: Services, message_id: str, send_at: datetime) -> None:
    """List the message as due at send_at."""
    await services.store.schedule.upsert_entity(
        {
            "PartitionKey": _DUE,
            "RowKey": _schedule_key(send_at, message_id),
            "message_id": message_id,
        }
    )


async def unschedule(services: Services, message_id: str, send_at: datetime) -> None:
    with contextlib.suppress(ResourceNotFoundError):
        await services.store.schedule.delete_entity(_DUE, _schedule_key(send_at, message_id))


async def unqueue(services: Services, entity: MessageRow) -> None:
    """Remove the message's rows from the dispatch queue: it is sent or failed."""
    for at in (entity.get("send_at"), entity.get("queued_at"), entity.get("previous_queued_at")):
        if at:
            await unschedule(services, entity["RowKey"], datetime.fromisoformat(at))


async def due_rows(services: Services, horizon: datetime) -> AsyncIterator[dict[str, Any]]:
    """The queue's rows due by `horizon`, oldest first."""
    rows = services.store.schedule.query_entities(
        "PartitionKey eq @pk and RowKey le @due",
        parameters={"pk": _DUE, "due": f"{horizon.isoformat()}~"},
    )
    async for row in rows:
        yield dict(row)


def queued_at(row: Mapping[str, Any]) -> datetime:
    """When a queue row was due."""
    return datetime.fromisoformat(str(row["RowKey"]).rsplit("|", 1)[0])


async def drop(services: Services, row: Mapping[str, Any]) -> None:
    with contextlib.suppress(ResourceNotFoundError):
        await services.store.schedule.delete_entity(_DUE, row["RowKey"])
