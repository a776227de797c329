"""What a compose that dies leaves behind, found and swept.

Compose writes its blobs first and the message row last (the row is the commit point), so a
compose cut short leaves only blobs. Before the first blob it writes an intent row (the
message id, in the `schedule` table's `composing` partition); once the message row exists
the intent is deleted. The dispatch cycle sweeps intents older than `_ORPHAN_AFTER`: with
no message row, their blobs are deleted; either way, the intent goes.
"""

from __future__ import annotations

import contextlib
import logging
from datetime import timedelta

from azure.core.exceptions import ResourceNotFoundError

from shared.core.ids import partition_of
from shared.core.services import Services

logger = logging.getLogger(__name__)
_INTENTS = "composing"
# Far longer than any compose can take (bounded storage and Graph timeouts).
_ORPHAN_AFTER = timedelta(minutes=10)


async def begin(services: Services, message_id: str) -> None:
    """Note that a compose is writing this message's blobs."""
    await services.store.schedule.upsert_entity(
        {
            "PartitionKey": _INTENTS,
            "RowKey": message_id,
            "started_at": services.clock().isoformat(),
        }
    )


async def done(services: Services, message_id: str) -> None:
    """The message row exists: nothing to sweep. Best effort: the sweep also clears it."""
    with contextlib.suppress(Exception):
        await services.store.schedule.delete_entity(_INTENTS, message_id)


async def sweep(services: Services) -> int:
    """Delete the blobs of composes that died before their message row; returns how many."""
    cutoff = (services.clock() - _ORPHAN_AFTER).isoformat()
    swept = 0
    rows = services.store.schedule.query_entities(
        "PartitionKey eq @pk and started_at lt @cutoff",
        parameters={"pk": _INTENTS, "cutoff": cutoff},
    )
    async for row in rows:
        message_id = row["RowKey"]
        try:
            await services.store.messages.get_entity(
                partition_of(message_id), message_id, select=["RowKey"]
            )
        except ResourceNotFoundError:
            await _delete_blobs(services, message_id)
            swept += 1
        with contextlib.suppress(ResourceNotFoundError):
            await services.store.schedule.delete_entity(_INTENTS, message_id)
    if swept:
        logger.info("swept the blobs of %s composes that never committed", swept)
    return swept


async def _delete_blobs(services: Services, message_id: str) -> None:
    for container in (services.store.message_blobs, services.store.attachments):
        async for name in container.list_blob_names(name_starts_with=f"{message_id}/"):
            with contextlib.suppress(ResourceNotFoundError):
                await container.delete_blob(name)
