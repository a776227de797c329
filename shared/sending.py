"""Sending a composed message exactly once: now, or at its scheduled time.

A message moves draft -> (scheduled) -> sending -> sent, or to cancelled. Whoever sends
first claims it (an optimistic-concurrency update to `sending` with a lease), so two timers
or a timer and a seller never both deliver it; a claim left by a crash expires and the next
attempt resumes, relying on the backend's own "never twice" (the stamped draft).
Scheduled messages are listed in the `schedule` table by due time, so the dispatch cycle
reads only what is due.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import UpdateMode

from shared import preferences, template_library
from shared.delivery import Attachment, Outgoing
from shared.errors import Conflict
from shared.ids import partition_of
from shared.runtime import Services
from shared.tracking import attachment_blob_name

logger = logging.getLogger(__name__)
LEASE = timedelta(minutes=5)
_DUE = "due"


@dataclass(frozen=True, slots=True)
class DispatchReport:
    sent: int
    skipped: int
    failed: int


def _schedule_key(send_at: datetime, message_id: str) -> str:
    return f"{send_at.isoformat()}|{message_id}"


def index_key(value: str) -> str:
    """Row key for an Internet message id or conversation id (they hold '/' and '#')."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()[:40]


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


async def outgoing(services: Services, entity: dict[str, Any], *, followed: bool) -> Outgoing:
    """The message as the backend needs it: the delivered body and the direct attachments.
    A message that may no longer be followed goes out as the seller wrote it, every file
    attached directly."""
    store = services.store
    message_id = entity["RowKey"]
    name = "body.html" if followed or entity["follow_state"] != "followed" else "original.html"
    body = await store.message_blobs.download_blob(f"{message_id}/{name}")
    files = []
    for item in json.loads(entity["attachments"]):
        if not item["followed"] or not followed:
            blob = attachment_blob_name(message_id, item["index"], followed=item["followed"])
            content = await (await store.attachments.download_blob(blob)).readall()
            files.append(Attachment(item["name"], item["content_type"], content))
    return Outgoing(
        message_id=message_id,
        sender=entity["seller"],
        to=json.loads(entity["to"]),
        cc=json.loads(entity["cc"]),
        bcc=json.loads(entity["bcc"]),
        subject=entity["subject"],
        html=(await body.readall()).decode("utf-8"),
        attachments=files,
    )


async def _now_blocked(services: Services, entity: dict[str, Any]) -> list[dict[str, Any]]:
    """The recipients who stopped allowing following (or stopped being records) between
    compose and sending: preferences are honoured when the mail leaves, not only when it
    was written."""
    if entity["follow_state"] != "followed":
        return []
    return await preferences.blocked_recipients(
        services, json.loads(entity["to"]), json.loads(entity["cc"]), json.loads(entity["bcc"])
    )


async def _claim(services: Services, message_id: str) -> dict[str, Any] | None:
    """Take the message for sending, or None if it is sent, cancelled or being sent."""
    now = services.clock()
    try:
        entity = await services.store.messages.get_entity(partition_of(message_id), message_id)
    except ResourceNotFoundError:
        return None
    status = entity["status"]
    lease = entity.get("lease_until") or ""
    if status not in ("draft", "scheduled") and not (
        status == "sending" and lease and datetime.fromisoformat(lease) < now
    ):
        return None
    patch = {
        "PartitionKey": entity["PartitionKey"],
        "RowKey": message_id,
        "status": "sending",
        "lease_until": (now + LEASE).isoformat(),
    }
    try:
        await services.store.messages.update_entity(
            patch,
            mode=UpdateMode.MERGE,
            etag=entity.metadata["etag"],
            match_condition=MatchConditions.IfNotModified,
        )
    except ResourceModifiedError:
        return None  # someone else claimed it (or changed it) first
    return {**entity, **patch}


async def deliver(services: Services, message_id: str) -> dict[str, Any]:
    """Send the message now (or hand it over for its scheduled time); Conflict if it is not
    in a state that can be sent."""
    entity = await _claim(services, message_id)
    if entity is None:
        raise Conflict("the message was already sent, cancelled or is being sent")
    send_at = datetime.fromisoformat(entity["send_at"]) if entity.get("send_at") else None
    blocked = await _now_blocked(services, entity)
    message = await outgoing(services, entity, followed=not blocked)
    receipt = await services.delivery.deliver(message, send_at=send_at)
    # Counted before the status is written, so a crash in between loses nothing: a retry
    # goes through the backend's "never twice" and marks again, idempotently.
    await template_library.mark(services.store, entity.get("template_id", ""), message_id, "sent")
    patch = {
        "PartitionKey": entity["PartitionKey"],
        "RowKey": message_id,
        **(_unfollowed(entity, blocked) if blocked else {}),
        "status": "sent",
        "sent_at": receipt.sent_at.isoformat(),
        "internet_message_id": receipt.internet_message_id,
        "conversation_id": receipt.conversation_id,
        "provider_id": receipt.provider_id,
        "lease_until": "",
    }
    await services.store.messages.update_entity(patch, mode=UpdateMode.MERGE)
    await _index(services, entity, receipt.internet_message_id, receipt.conversation_id)
    if send_at is not None:
        await unschedule(services, message_id, send_at)
    return patch


def _unfollowed(entity: dict[str, Any], blocked: list[dict[str, Any]]) -> dict[str, Any]:
    # The attachments column keeps each file's "followed" flag: it names the stored blob.
    return {"follow_state": "blocked", "blocked": json.dumps(blocked)}


def index_partition(kind: str, seller_partition: str) -> str:
    """Sent mail is indexed per seller, so one sync cycle loads its seller's index at once."""
    return f"{kind}-{seller_partition}"


async def _index(services: Services, entity: dict[str, Any], imid: str, conversation: str) -> None:
    """Find the message again from a reply: by its Internet message id and conversation."""
    for kind, value in (("imid", imid), ("conv", conversation)):
        if value:
            await services.store.message_index.upsert_entity(
                {
                    "PartitionKey": index_partition(kind, entity["PartitionKey"]),
                    "RowKey": index_key(value),
                    "message_id": entity["RowKey"],
                }
            )


async def dispatch_cycle(services: Services) -> DispatchReport:
    """Hand over every scheduled message that is due (with the backend's lead). Per-message
    failures are logged and retried next cycle; the cycle carries on."""
    horizon = services.clock() + services.delivery.lead
    sent = skipped = failed = 0
    rows = services.store.schedule.query_entities(
        "PartitionKey eq @pk and RowKey le @due",
        parameters={"pk": _DUE, "due": f"{horizon.isoformat()}~"},
    )
    async for row in rows:
        message_id = row["message_id"]
        try:
            await deliver(services, message_id)
            sent += 1
        except Conflict:
            skipped += 1
            await _drop_if_done(services, row)
        except Exception:
            failed += 1
            logger.exception("scheduled message could not be handed over; will retry")
    return DispatchReport(sent, skipped, failed)


async def _drop_if_done(services: Services, row: dict[str, Any]) -> None:
    message_id = row["message_id"]
    try:
        entity = await services.store.messages.get_entity(partition_of(message_id), message_id)
        done = entity["status"] in ("sent", "cancelled")
    except ResourceNotFoundError:
        done = True
    if done:
        with contextlib.suppress(ResourceNotFoundError):
            await services.store.schedule.delete_entity(_DUE, row["RowKey"])
