"""Sending a composed message exactly once: now, or at its scheduled time.

A message is `draft`, `scheduled`, `sending`, `sent`, `failed` or `cancelled`, and no state
is a dead end. Whoever sends first claims it (an optimistic-concurrency update to `sending`
with a lease), so two timers or a timer and a seller never both deliver it. Every message
that may still go out has a row in the `schedule` table (the dispatch queue), written
before the message enters `sending`: scheduled mail at its time, mail sent now at the
moment it was queued. So a `sending` message whose attempt died, or whose transient failure
is waiting out its backoff, is taken again by the dispatch cycle once its lease runs out,
and the backend's "never twice" (the stamped draft) makes the retry safe. After
`send_max_attempts` transient failures, or one permanent failure, the message is `failed`
with the reason; the seller may send it again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import UpdateMode

from shared.core.errors import Conflict
from shared.core.ids import partition_of
from shared.core.services import Services
from shared.crm import preferences
from shared.messages import compose_intents
from shared.messages.delivery import Attachment, Outgoing
from shared.templates import library as template_library
from shared.tracking.links import attachment_blob_name

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


def _expired(entity: Mapping[str, Any], now: datetime) -> bool:
    lease = entity.get("lease_until") or ""
    return not lease or datetime.fromisoformat(lease) <= now


def claimable(entity: Mapping[str, Any], now: datetime, *, by_seller: bool) -> bool:
    """Whether a send attempt may take the message now. The seller may send a draft, a
    scheduled or a failed message; the dispatch cycle takes scheduled messages that are due
    (within the backend's lead) and, for either, a `sending` message whose lease ran out
    (a crashed attempt, or the backoff after a transient failure). Pure."""
    status = str(entity["status"])
    if status == "sending":
        return _expired(entity, now)
    if by_seller:
        return status in ("draft", "scheduled", "failed")
    return status == "scheduled"


async def _claim(
    services: Services, message_id: str, *, by_seller: bool, horizon: datetime | None = None
) -> dict[str, Any] | None:
    """Take the message for one send attempt (status `sending` with a lease), or None if it
    is not in a state this caller may send, or someone else took it first."""
    now = services.clock()
    try:
        entity = await services.store.messages.get_entity(partition_of(message_id), message_id)
    except ResourceNotFoundError:
        return None
    if not claimable(entity, now, by_seller=by_seller):
        return None
    send_at = entity.get("send_at") or ""
    # Only when due: a stale queue row (left by a reschedule) must not send it early.
    due = bool(send_at) and horizon is not None and datetime.fromisoformat(send_at) <= horizon
    if not by_seller and entity["status"] == "scheduled" and not due:
        return None
    patch: dict[str, Any] = {
        "PartitionKey": entity["PartitionKey"],
        "RowKey": message_id,
        "status": "sending",
        "lease_until": (now + LEASE).isoformat(),
    }
    if by_seller:
        patch["queued_at"] = now.isoformat()  # its queue row, written before this claim
        if send_at:
            patch["send_at"] = ""  # sent now, not at its time
        if entity["status"] == "failed":
            patch.update(attempts=0, failure="", next_attempt_at="")
    try:
        await services.store.messages.update_entity(
            patch,
            mode=UpdateMode.MERGE,
            etag=entity.metadata["etag"],
            match_condition=MatchConditions.IfNotModified,
        )
    except ResourceModifiedError:
        return None  # someone else claimed it (or changed it) first
    if by_seller and send_at:
        await unschedule(services, message_id, datetime.fromisoformat(send_at))
    return {**entity, **patch, "_old_queued_at": entity.get("queued_at") or ""}


def sending_entity(now: datetime) -> dict[str, Any]:
    """The columns of a message created already claimed for sending (compose, send now),
    queued at `now` so that the dispatch cycle recovers it if this attempt dies."""
    return {
        "status": "sending",
        "lease_until": (now + LEASE).isoformat(),
        "queued_at": now.isoformat(),
        "attempts": 0,
        "failure": "",
        "next_attempt_at": "",
    }


async def queue(services: Services, message_id: str, at: datetime) -> None:
    """The dispatch cycle's row for a message about to be sent now: if the attempt dies
    (crash, storage gone), the row brings the message back once its lease has run out."""
    await schedule(services, message_id, at)


async def send_now(services: Services, message_id: str) -> dict[str, Any]:
    """The seller's "send": a draft, a scheduled or a failed message goes out now. Conflict
    if it is sent, cancelled or being sent."""
    now = services.clock()
    await queue(services, message_id, now)
    entity = await _claim(services, message_id, by_seller=True)
    if entity is None:
        await unschedule(services, message_id, now)
        raise Conflict("the message was already sent, cancelled or is being sent")
    outcome = await attempt(services, entity)
    return {k: v for k, v in {**entity, **outcome}.items() if not k.startswith("_")}


async def attempt(services: Services, entity: dict[str, Any]) -> dict[str, Any]:
    """One attempt to send a claimed message; returns the columns it changed. Every outcome
    is recorded: sent; a transient failure (Graph 5xx or 429, a timeout, storage) leaves it
    `sending` until its backoff ends, and fails it after `send_max_attempts`; a permanent one
    fails it at once with the reason. Raises only when storage cannot record the outcome;
    then the lease runs out and the dispatch cycle tries again (the backend never sends a
    message twice)."""
    message_id = entity["RowKey"]
    send_at = datetime.fromisoformat(entity["send_at"]) if entity.get("send_at") else None
    try:
        blocked = await _now_blocked(services, entity)
        message = await outgoing(services, entity, followed=not blocked)
        receipt = await services.delivery.deliver(message, send_at=send_at)
    except Exception as error:  # every failure ends in a recorded state, never a dead end
        return await _failed_attempt(services, entity, error)
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
        "failure": "",
        "next_attempt_at": "",
    }
    await services.store.messages.update_entity(patch, mode=UpdateMode.MERGE)
    await _index(services, entity, receipt.internet_message_id, receipt.conversation_id)
    await _unqueue(services, entity)
    return patch


async def _failed_attempt(
    services: Services, entity: dict[str, Any], error: Exception
) -> dict[str, Any]:
    failure = describe_failure(error)
    attempts = int(entity.get("attempts") or 0) + 1
    now = services.clock()
    patch: dict[str, Any] = {
        "PartitionKey": entity["PartitionKey"],
        "RowKey": entity["RowKey"],
        "attempts": attempts,
    }
    if failure.transient and attempts < services.settings.send_max_attempts:
        retry_at = now + backoff(attempts, services.settings.send_retry_seconds)
        patch.update(
            status="sending",
            lease_until=retry_at.isoformat(),
            next_attempt_at=retry_at.isoformat(),
            failure=failure.reason,
        )
    else:
        reason = failure.reason
        if failure.transient:
            reason = f"{reason} (gave up after {attempts} attempts)"
        patch.update(status="failed", lease_until="", next_attempt_at="", failure=reason)
    logger.warning(
        "message send attempt %s failed (%s): %s",
        attempts,
        "transient" if failure.transient else "permanent",
        failure.reason,
    )
    await services.store.messages.update_entity(patch, mode=UpdateMode.MERGE)
    if patch["status"] == "failed":
        await _unqueue(services, entity)
    return patch


def backoff(attempts: int, base_seconds: int) -> timedelta:
    """Wait before the next attempt: base, 4x, 16x... capped at an hour. Pure."""
    return timedelta(seconds=min(base_seconds * 4 ** (attempts - 1), 3600))


@dataclass(frozen=True, slots=True)
class Failure:
    transient: bool
    reason: str  # shown to the seller: a status and Graph's error code, never content


_TRANSIENT_STATUSES = frozenset({408, 429})


def describe_failure(error: BaseException) -> Failure:
    """Whether a send failure may pass if tried again, and why it failed. Pure.

    Graph's 5xx, 429 and 408, timeouts, network and storage errors pass; Graph's other 4xx
    (a mailbox that does not exist, a recipient it refuses, a message too large) and a
    message that cannot be built do not."""
    status = getattr(error, "response_status_code", None) or getattr(error, "status_code", None)
    inner = getattr(error, "error", None)
    code = getattr(inner, "code", None) or type(error).__name__
    if isinstance(status, int):
        transient = status >= 500 or status in _TRANSIENT_STATUSES
        source = "Outlook" if hasattr(error, "response_status_code") else "storage"
        return Failure(transient, f"{source} answered {status} ({code})")
    if isinstance(error, ValueError | TypeError | UnicodeError | LookupError):
        return Failure(False, f"the message could not be built ({type(error).__name__})")
    return Failure(True, f"{type(error).__name__}")


def _unfollowed(entity: dict[str, Any], blocked: list[dict[str, Any]]) -> dict[str, Any]:
    # The attachments column keeps each file's "followed" flag: it names the stored blob.
    return {"follow_state": "blocked", "blocked": json.dumps(blocked)}


async def _unqueue(services: Services, entity: Mapping[str, Any]) -> None:
    """Remove the message's rows from the dispatch queue: it is sent or failed."""
    for column in ("send_at", "queued_at", "_old_queued_at"):
        if entity.get(column):
            await unschedule(services, entity["RowKey"], datetime.fromisoformat(entity[column]))


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
    """Hand over every queued message that is due: scheduled mail (with the backend's lead),
    and mail whose send attempt died or is waiting out its backoff. Per-message failures are
    recorded on the message; the cycle carries on. Then sweep what a compose that died
    before its message row left behind."""
    horizon = services.clock() + services.delivery.lead
    sent = skipped = failed = 0
    rows = services.store.schedule.query_entities(
        "PartitionKey eq @pk and RowKey le @due",
        parameters={"pk": _DUE, "due": f"{horizon.isoformat()}~"},
    )
    async for row in rows:
        message_id = row["message_id"]
        try:
            entity = await _claim(services, message_id, by_seller=False, horizon=horizon)
            if entity is None:
                skipped += 1
                await _drop_if_done(services, row)
                continue
            outcome = await attempt(services, entity)
            sent += outcome["status"] == "sent"
            failed += outcome["status"] != "sent"
        except Exception:
            failed += 1
            logger.exception("a queued message could not be handed over; will retry")
    await compose_intents.sweep(services)
    return DispatchReport(sent, skipped, failed)


async def _drop_if_done(services: Services, row: dict[str, Any]) -> None:
    """Drop a queue row nobody will need: its message is sent, cancelled or failed (a resend
    queues a new row), or, once the row is older than a lease, a draft or no message at all
    (a compose or a send that died before its claim)."""
    message_id = row["message_id"]
    queued_at = datetime.fromisoformat(row["RowKey"].rsplit("|", 1)[0])
    try:
        entity = await services.store.messages.get_entity(partition_of(message_id), message_id)
        status = entity["status"]
    except ResourceNotFoundError:
        status = "missing"
    done = status in ("sent", "cancelled", "failed") or (
        status in ("draft", "missing") and queued_at < services.clock() - LEASE
    )
    if done:
        with contextlib.suppress(ResourceNotFoundError):
            await services.store.schedule.delete_entity(_DUE, row["RowKey"])
