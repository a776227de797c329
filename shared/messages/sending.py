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

A message sent individually goes out as one copy per recipient (shared.messages.copies), each
signed when it leaves and delivered once: "never twice" holds per copy, so an attempt after
copy 2 failed records copy 1 as sent and delivers only the copies still to go. A failure of
any copy is the message's, through the same retry and backoff.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import UpdateMode

from shared.core import list_index
from shared.core.errors import Conflict
from shared.core.ids import partition_of
from shared.core.rows import MessageRow, message_row
from shared.core.services import Services
from shared.core.storage import update_if_unchanged
from shared.crm import preferences, timeline_index
from shared.messages import copies, dispatch_queue, sent_index
from shared.messages.delivery import Attachment, Outgoing, Receipt
from shared.tracking import links
from shared.tracking.followed_body import FollowedFile
from shared.tracking.links import attachment_blob_name

logger = logging.getLogger(__name__)
LEASE = timedelta(minutes=5)


async def outgoing(services: Services, entity: MessageRow, *, followed: bool) -> Outgoing:
    """The message as the backend needs it: the delivered body and the direct attachments.
    A message that may no longer be followed goes out as the seller wrote it, every file
    attached directly."""
    name = "body.html" if followed or entity["follow_state"] != "followed" else "original.html"
    return Outgoing(
        message_id=entity["RowKey"],
        sender=entity["seller"],
        to=json.loads(entity["to"]),
        cc=json.loads(entity["cc"]),
        bcc=json.loads(entity["bcc"]),
        subject=entity["subject"],
        html=await _body(services, entity, name),
        attachments=await _attached(services, entity, followed=followed),
    )


async def outgoing_copies(
    services: Services, entity: MessageRow, *, followed: bool
) -> list[Outgoing]:
    """A message sent individually as its copies, each to its one recipient: signed now from
    the seller's original for that copy, or as written when the message is not followed (or
    no longer may be)."""
    message_id = entity["RowKey"]
    was_followed = entity["follow_state"] == "followed"  # else body.html is as written
    html = await _body(services, entity, "original.html" if was_followed else "body.html")
    signs = followed and was_followed
    tracked = [
        FollowedFile(a["index"], a["name"], a["size"])
        for a in json.loads(entity["attachments"])
        if a["followed"]
    ]
    attached = await _attached(services, entity, followed=followed)
    return [
        Outgoing(
            message_id=message_id,
            sender=entity["seller"],
            to=[address],
            cc=[],
            bcc=[],
            subject=entity["subject"],
            html=copies.signed_body(services, message_id, html, tracked, copy=n).html
            if signs
            else html,
            attachments=attached,
            copy=n,
        )
        for n, address in copies.planned(entity)
    ]


async def _body(services: Services, entity: MessageRow, name: str) -> str:
    blob = await services.store.message_blobs.download_blob(f"{entity['RowKey']}/{name}")
    return (await blob.readall()).decode("utf-8")


async def _attached(services: Services, entity: MessageRow, *, followed: bool) -> list[Attachment]:
    """The files attached to the mail itself: every file of a message no longer followed."""
    files = []
    for item in json.loads(entity["attachments"]):
        if not item["followed"] or not followed:
            blob = attachment_blob_name(entity["RowKey"], item["index"], followed=item["followed"])
            content = await (await services.store.attachments.download_blob(blob)).readall()
            files.append(Attachment(item["name"], item["content_type"], content))
    return files


async def _now_blocked(services: Services, entity: MessageRow) -> list[dict[str, Any]]:
    """The recipients who stopped allowing following (or stopped being records) between
    compose and sending: preferences are honoured when the mail leaves, not only when it
    was written."""
    if entity["follow_state"] != "followed":
        return []
    return await preferences.blocked_recipients(
        services, json.loads(entity["to"]), json.loads(entity["cc"]), json.loads(entity["bcc"])
    )


def _expired(entity: MessageRow, now: datetime) -> bool:
    lease = entity.get("lease_until") or ""
    return not lease or datetime.fromisoformat(lease) <= now


def claimable(entity: MessageRow, now: datetime, *, by_seller: bool) -> bool:
    """Whether a send attempt may take the message now. The seller may send a draft, a
    scheduled or a failed message; the dispatch cycle takes scheduled messages that are due
    (within the backend's lead) and, for either, a `sending` message whose lease ran out
    (a crashed attempt, or the backoff after a transient failure). A draft being changed
    waits for the change. Pure."""
    status = str(entity["status"])
    editing = entity.get("editing_until") or ""
    if status == "draft" and editing and datetime.fromisoformat(editing) > now:
        return False  # a change to the draft is being written (shared.messages.drafts)
    if status == "sending":
        return _expired(entity, now)
    if by_seller:
        return status in ("draft", "scheduled", "failed")
    return status == "scheduled"


async def claim(
    services: Services, message_id: str, *, by_seller: bool, horizon: datetime | None = None
) -> MessageRow | None:
    """Take the message for one send attempt (status `sending` with a lease), or None if it
    is not in a state this caller may send, or someone else took it first."""
    now = services.clock()
    try:
        read = await services.store.messages.get_entity(partition_of(message_id), message_id)
    except ResourceNotFoundError:
        return None
    entity = message_row(read)
    if not claimable(entity, now, by_seller=by_seller):
        return None
    send_at = entity.get("send_at") or ""
    # Only when due: a stale queue row (left by a reschedule) must not send it early.
    due = bool(send_at) and horizon is not None and datetime.fromisoformat(send_at) <= horizon
    if not by_seller and entity["status"] == "scheduled" and not due:
        return None
    patch: MessageRow = {
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
            patch.update({"attempts": 0, "failure": "", "next_attempt_at": ""})
    try:
        await update_if_unchanged(services.store.messages, dict(patch), read.metadata["etag"])
    except ResourceModifiedError:
        return None  # someone else claimed it (or changed it) first
    if by_seller and send_at:
        await dispatch_queue.unschedule(services, message_id, datetime.fromisoformat(send_at))
    if entity["status"] == "draft" and entity["follow_state"] == "followed":
        await _finalise_links(services, message_id)
    claimed: MessageRow = {**entity, **patch}
    claimed["previous_queued_at"] = entity.get("queued_at") or ""
    return claimed


async def _finalise_links(services: Services, message_id: str) -> None:
    """A draft's links are final once it is claimed (no edit can take it now): workers may
    cache them from here on. Best effort: left unmarked, they are only read on every click."""
    try:
        await links.finalise(services.store, message_id)
    except Exception:
        logger.warning("a sent draft's links were not marked final; clicks read them each time")


def sending_entity(now: datetime) -> MessageRow:
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


async def send_now(services: Services, message_id: str) -> MessageRow:
    """The seller's "send": a draft, a scheduled or a failed message goes out now. Conflict
    if it is sent, cancelled or being sent."""
    now = services.clock()
    await dispatch_queue.schedule(services, message_id, now)
    entity = await claim(services, message_id, by_seller=True)
    if entity is None:
        await dispatch_queue.unschedule(services, message_id, now)
        raise Conflict("the message was already sent, cancelled or is being sent")
    outcome = await attempt(services, entity)
    done: MessageRow = {**entity, **outcome}
    done.pop("previous_queued_at", None)
    return done


async def attempt(services: Services, entity: MessageRow) -> MessageRow:
    """One attempt to send a claimed message; returns the columns it changed. Every outcome
    is recorded: sent; a transient failure (Graph 5xx or 429, a timeout, storage) leaves it
    `sending` until its backoff ends, and fails it after `send_max_attempts`; a permanent one
    fails it at once with the reason. Raises only when storage cannot record the outcome;
    then the lease runs out and the dispatch cycle tries again (the backend never sends a
    message twice)."""
    message_id = entity["RowKey"]
    send_at = datetime.fromisoformat(entity["send_at"]) if entity.get("send_at") else None
    messages: list[Outgoing] = []
    delivered: list[tuple[Outgoing, Receipt]] = []
    try:
        blocked = await _now_blocked(services, entity)
        if entity.get("send_individually"):
            messages = await outgoing_copies(services, entity, followed=not blocked)
        else:
            messages = [await outgoing(services, entity, followed=not blocked)]
        for message in messages:  # one after another: Exchange limits messages per minute
            delivered.append((message, await services.delivery.deliver(message, send_at=send_at)))
    except Exception as error:  # every failure ends in a recorded state, never a dead end
        where = ""
        if entity.get("send_individually") and messages:
            where = f"copy {len(delivered) + 1} of {len(messages)}"
        return await _failed_attempt(services, entity, error, where)
    # Counted before the status is written, so a crash in between loses nothing: a retry
    # goes through the backend's "never twice" and marks again, idempotently.
    await services.milestones.sent(entity)
    receipt = delivered[0][1]
    patch: MessageRow = {
        "PartitionKey": entity["PartitionKey"],
        "RowKey": message_id,
        "status": "sent",
        "sent_at": min(r.sent_at for _, r in delivered).isoformat(),
        "internet_message_id": receipt.internet_message_id,
        "conversation_id": receipt.conversation_id,
        "provider_id": receipt.provider_id,
        "lease_until": "",
        "failure": "",
        "next_attempt_at": "",
    }
    if entity.get("send_individually"):
        patch["copies"] = copies.column(copies.entry(m.copy, m.to[0], r) for m, r in delivered)
    if blocked:
        patch.update(_unfollowed(blocked))
    await index_sent(services, entity, patch["sent_at"])
    # sent_at (and follow_state) move the message in the list index: merged into the row as
    # it is now, with its index rows, in one transaction.
    await list_index.merge_message(
        services.store.messages, entity["PartitionKey"], message_id, patch
    )
    for message, sent in delivered:  # a reply to any copy finds the message
        await sent_index.record(
            services, entity, sent.internet_message_id, sent.conversation_id, copy=message.copy
        )
    await dispatch_queue.unqueue(services, entity)
    return patch


async def index_sent(services: Services, entity: MessageRow, sent_at: str) -> None:
    """Index the message under its recipients and record for the record timeline, before
    its status says sent (a crash in between leaves a row the timeline does not show)."""
    owner = entity.get("owner")
    if not owner:  # made before sellers had ids: build-timeline-index, after the migration
        return
    regarding = json.loads(entity["regarding"]) if entity.get("regarding") else None
    to = [
        *json.loads(entity.get("to") or "[]"),
        *json.loads(entity.get("cc") or "[]"),
        *json.loads(entity.get("bcc") or "[]"),
    ]
    partitions = timeline_index.message_partitions(owner, to, regarding)
    await timeline_index.write(
        services.store, partitions, timeline_index.row_key(sent_at, entity["RowKey"])
    )


async def _failed_attempt(
    services: Services, entity: MessageRow, error: Exception, where: str = ""
) -> MessageRow:
    failure = describe_failure(error)
    if where:  # which copy of a message sent individually
        failure = Failure(failure.transient, f"{failure.reason}, sending {where}")
    attempts = int(entity.get("attempts") or 0) + 1
    now = services.clock()
    patch: MessageRow = {
        "PartitionKey": entity["PartitionKey"],
        "RowKey": entity["RowKey"],
        "attempts": attempts,
    }
    if failure.transient and attempts < services.settings.send_max_attempts:
        retry_at = now + backoff(attempts, services.settings.send_retry_seconds)
        patch.update(
            {
                "status": "sending",
                "lease_until": retry_at.isoformat(),
                "next_attempt_at": retry_at.isoformat(),
                "failure": failure.reason,
            }
        )
    else:
        reason = failure.reason
        if failure.transient:
            reason = f"{reason} (gave up after {attempts} attempts)"
        patch.update(
            {"status": "failed", "lease_until": "", "next_attempt_at": "", "failure": reason}
        )
    logger.warning(
        "message send attempt %s failed (%s): %s",
        attempts,
        "transient" if failure.transient else "permanent",
        failure.reason,
    )
    await services.store.messages.update_entity(dict(patch), mode=UpdateMode.MERGE)
    if patch["status"] == "failed":
        await dispatch_queue.unqueue(services, entity)
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


def _unfollowed(blocked: list[dict[str, Any]]) -> MessageRow:
    # The attachments column keeps each file's "followed" flag: it names the stored blob.
    return {"follow_state": "blocked", "blocked": json.dumps(blocked)}
