"""Drafts: change one (recipients, subject, body, attachments, follow), decide its follow
state again (Retry Follow), or delete it. Only a `draft` may be changed or deleted; any other
status is a Conflict.

A change is checked whole before anything is written, and then made as compose makes a
message: the body signed again when followed, the blobs written, the row last. Blobs cannot
share a transaction with the row, so a change first takes the draft (`editing_until`, a
short lease set only if nobody changed the row since it was read): a second change or a
delete meanwhile is a Conflict, and sending waits (shared.messages.sending.claimable); the
row is then written, under the lease's ETag, with the lease cleared. Every write of a
draft's row (`_write_row`) carries the followed-emails list's index changes in its
transaction (shared.core.list_index)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from datetime import timedelta
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableTransactionError, UpdateMode

from shared.assistant import reminders
from shared.core import list_index
from shared.core.auth import Seller
from shared.core.errors import Conflict, InvalidInput, NotFound
from shared.core.rows import MessageRow
from shared.core.services import Services
from shared.engagement.kpis import from_columns
from shared.messages import compose_intents
from shared.messages.compose import (
    attachments_column,
    delivered_body,
    follow_decision,
    store_blobs,
)
from shared.messages.compose_checks import CheckedFile, checked_files
from shared.messages.models import ComposeIn, DraftPatch
from shared.messages.reading import load
from shared.messages.views import message_view
from shared.tracking.links import attachment_blob_name, links_blob_name

# Far longer than writing a draft's blobs takes; a change that dies frees the draft then.
EDIT_LEASE = timedelta(minutes=2)
_NOT_COLUMNS = ("etag", "previous_queued_at")  # MessageRow keys that are not stored


async def update(
    services: Services, seller: Seller, message_id: str, patch: DraftPatch
) -> dict[str, Any]:
    """Change a draft; its follow state is decided again, as compose decides it. The answer
    is the draft as it now is, with `follow_reason` when it is not followed."""
    before = await _draft(services, seller, message_id)
    original = await _blob(services, message_id, _original_name(before))
    wanted = patch.follow if patch.follow is not None else before["follow_state"] != "not_followed"
    body = ComposeIn(
        to=patch.to if patch.to is not None else json.loads(before["to"]),
        cc=patch.cc if patch.cc is not None else json.loads(before["cc"]),
        bcc=patch.bcc if patch.bcc is not None else json.loads(before["bcc"]),
        subject=patch.subject if patch.subject is not None else before["subject"],
        html=patch.html if patch.html is not None else original,
        attachments=patch.attachments or [],
        follow=wanted,
        send=False,
        send_individually=bool(before.get("send_individually")),
    )
    files = checked_files(body, services)
    if patch.attachments is None:  # kept: the stored files, followed as the draft will be
        files = await _stored_files(services, before)
    decision = await follow_decision(services, body)
    if decision.state != "followed":
        body = body.model_copy(update={"follow": False})
    _check_reminder(before, followed=body.follow, state=decision.state)
    html, links = delivered_body(services, message_id, body, files)
    after: MessageRow = {
        **before,
        "subject": body.subject,
        "to": json.dumps(body.to),
        "cc": json.dumps(body.cc),
        "bcc": json.dumps(body.bcc),
        "follow_state": decision.state,
        "blocked": json.dumps(decision.blocked) if decision.blocked else "",
        "attachments": attachments_column(files, follow=body.follow),
        "link_count": len(links),
        "editing_until": "",
    }
    taken = await _take(services, before)
    try:
        await store_blobs(services, message_id, body, files, html, links)
    except BaseException:
        with contextlib.suppress(Exception):  # free the draft now rather than at lease end
            await _write_row(services, taken, {**taken, "editing_until": ""})
        raise
    after["etag"] = await _write_row(services, taken, after)
    await _remove_stale_blobs(services, before, after)
    view = message_view(after, from_columns(after), links, html=html)
    if decision.reason:
        view["follow_reason"] = decision.reason
    return view


async def retry_follow(services: Services, seller: Seller, message_id: str) -> dict[str, Any]:
    """Retry Follow: decide a draft's follow state again, now that its recipients or their
    preferences may have changed; the seller wants it followed. `follow_state` says what it
    got; `follow_reason` and `blocked_recipients` why not, when it is still blocked."""
    return await update(services, seller, message_id, DraftPatch(follow=True))


async def delete(services: Services, seller: Seller, message_id: str) -> None:
    """Delete a draft: its row (the commit point), then its blobs and its reminder. An
    intent noted first has the dispatch cycle sweep the blobs if this dies in between."""
    entity = await _draft(services, seller, message_id)
    await compose_intents.begin(services, message_id)
    await _write_row(services, entity, None)
    for container in (services.store.message_blobs, services.store.attachments):
        async for name in container.list_blob_names(name_starts_with=f"{message_id}/"):
            with contextlib.suppress(ResourceNotFoundError):
                await container.delete_blob(name)
    reminder = json.loads(entity.get("reminder") or "{}")
    if reminder.get("state") == "pending":
        await reminders.unschedule(services, message_id, reminder["at"])
    await compose_intents.done(services, message_id)


async def _draft(services: Services, seller: Seller, message_id: str) -> MessageRow:
    """The seller's draft, free to change: NotFound for anyone else's, Conflict if it is not
    a draft or another change is being written."""
    entity = await load(services, seller, message_id)
    if entity["status"] != "draft":
        raise Conflict(
            f"only a draft can be changed or deleted; this message is {entity['status']}"
        )
    editing = entity.get("editing_until") or ""
    if editing and editing > services.clock().isoformat():
        raise Conflict("another change to this draft is being written; read it again shortly")
    return entity


async def _take(services: Services, entity: MessageRow) -> MessageRow:
    """Hold the draft while its blobs are written (Conflict if it changed since read)."""
    until = (services.clock() + EDIT_LEASE).isoformat()
    taken: MessageRow = {**entity, "editing_until": until}
    taken["etag"] = await _write_row(services, entity, taken)
    return taken


async def _write_row(services: Services, before: MessageRow, after: MessageRow | None) -> str:
    """Write a draft's row as `after` (None: delete it), only if it is still as `before`
    was read, with the list index's changes (shared.core.list_index) in the same
    transaction; the new ETag. Conflict if someone changed or sent it meanwhile. The one
    place a draft's row is written."""
    keys = {"PartitionKey": before["PartitionKey"], "RowKey": before["RowKey"]}
    condition = {"etag": before["etag"], "match_condition": MatchConditions.IfNotModified}
    stored = {k: v for k, v in before.items() if k not in _NOT_COLUMNS}
    operation: list_index.Operation
    if after is None:
        operation = ("delete", keys, condition)
        written = None
    else:
        written = {k: v for k, v in after.items() if k not in _NOT_COLUMNS}
        operation = ("update", written, {"mode": UpdateMode.MERGE, **condition})
    try:
        result = await services.store.messages.submit_transaction(
            [operation, *list_index.index_operations(stored, written)]
        )
    except TableTransactionError as error:
        try:
            list_index.raise_for(error)
        except ResourceModifiedError:
            raise Conflict("the draft changed meanwhile (edited or sent); read it again") from None
        except ResourceNotFoundError:
            raise NotFound("message") from None
        raise
    return str(result[0].get("etag", "")) if result else ""


def _original_name(entity: MessageRow) -> str:
    # A followed message keeps the seller's HTML beside the signed body; otherwise the body
    # as stored is the seller's HTML (shared.messages.compose.store_blobs).
    return "original.html" if entity["follow_state"] == "followed" else "body.html"


async def _blob(services: Services, message_id: str, name: str) -> str:
    blob = await services.store.message_blobs.download_blob(f"{message_id}/{name}")
    return (await blob.readall()).decode("utf-8")


async def _stored_files(services: Services, entity: MessageRow) -> list[CheckedFile]:
    """The draft's attachments as stored. A file of a draft that is not followed is kept
    followed (the default) should the draft become followed."""
    message_id = entity["RowKey"]
    followed_now = entity["follow_state"] == "followed"

    async def one(item: dict[str, Any]) -> CheckedFile:
        name = attachment_blob_name(message_id, item["index"], followed=item["followed"])
        content = await (await services.store.attachments.download_blob(name)).readall()
        wants = item["followed"] or not followed_now
        return CheckedFile(item["index"], item["name"], item["content_type"], content, wants)

    return list(await asyncio.gather(*(one(i) for i in json.loads(entity["attachments"]))))


def _check_reminder(entity: MessageRow, *, followed: bool, state: str) -> None:
    """A pending reminder that needs following refuses a change that stops following."""
    reminder = json.loads(entity.get("reminder") or "{}")
    if reminder.get("state") != "pending" or followed:
        return
    if reminder["condition"] in reminders.NEEDS_FOLLOWING:
        raise InvalidInput(
            "reminder.condition",
            f"the draft's reminder needs a followed message, and it would be {state}; "
            "change or remove the reminder first",
        )


async def _remove_stale_blobs(services: Services, before: MessageRow, after: MessageRow) -> None:
    """Blobs the new row no longer names (best effort: nothing reads them)."""
    message_id = before["RowKey"]

    def files(entity: MessageRow) -> set[str]:
        return {
            attachment_blob_name(message_id, a["index"], followed=a["followed"])
            for a in json.loads(entity.get("attachments") or "[]")
        }

    stale = [(services.store.attachments, n) for n in files(before) - files(after)]
    if after["follow_state"] != "followed":
        stale += [
            (services.store.message_blobs, f"{message_id}/original.html"),
            (services.store.message_blobs, links_blob_name(message_id)),
        ]
    for container, name in stale:
        with contextlib.suppress(ResourceNotFoundError):
            await container.delete_blob(name)
