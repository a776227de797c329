"""Compose: validate everything before the first write, decide whether the message is
followed, build the followed body, store it (the message row last, the commit point) and
send it unless asked not to. Idempotent with an Idempotency-Key."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from azure.core.exceptions import (
    ResourceExistsError,
)
from azure.storage.blob import ContentSettings

from shared.assistant import reminders
from shared.core import list_index
from shared.core.auth import Seller
from shared.core.errors import Conflict, NotFound
from shared.core.ids import new_message_id, partition_of
from shared.core.rows import FollowState, MessageRow, kpi_columns
from shared.core.services import Services
from shared.crm import preferences
from shared.engagement.kpis import Kpis, from_columns, to_columns
from shared.messages import compose_intents, copies, dispatch_queue, idempotency, sending
from shared.messages.compose_checks import CheckedFile, checked_files
from shared.messages.models import ComposeIn
from shared.messages.reading import current_view
from shared.messages.views import message_view
from shared.templates import library as template_library
from shared.tracking.followed_body import FollowedFile
from shared.tracking.links import FINAL_METADATA, attachment_blob_name, links_blob_name

logger = logging.getLogger(__name__)


def _disposition(name: str) -> str:
    from urllib.parse import quote

    ascii_name = name.encode("ascii", "replace").decode().replace('"', "_").replace("?", "_")
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}"


@dataclass(frozen=True, slots=True)
class Composed:
    """A compose's answer: the message as it is, and whether an earlier request with the
    same Idempotency-Key made it."""

    view: dict[str, Any]
    replayed: bool = False


async def compose(services: Services, seller: Seller, body: ComposeIn) -> dict[str, Any]:
    """Create a message (see `create`) and answer its view."""
    return (await create(services, seller, body)).view


async def create(
    services: Services, seller: Seller, body: ComposeIn, *, idempotency_key: str | None = None
) -> Composed:
    """Create a message (followed or not), store it, and deliver it unless `send` is false.

    Everything is validated before the first write, so bad input stores nothing. The writes
    are ordered so that a compose cut short leaves nothing a seller can see: an intent, the
    blobs, the queue rows, then the message row (the commit point); anything before it is
    swept (shared.messages.compose_intents). Sending comes after the commit and always ends in a
    recorded state (shared.messages.sending): a failure to send never fails the compose."""
    files = checked_files(body, services)
    message_id = new_message_id(seller.key)
    if idempotency_key is not None:
        reserved = await _reserve(services, seller, idempotency_key, body, message_id)
        if isinstance(reserved, Composed):
            return reserved
        message_id = reserved  # a new message, or the first request's that died before its commit
    body = await _with_template(services, seller, body)
    decision = await follow_decision(services, body)
    if decision.state != "followed":
        body = body.model_copy(update={"follow": False})
    if body.reminder is not None:
        reminders.check(body.reminder, followed=body.follow, now=services.clock())
    html, links = delivered_body(services, message_id, body, files)
    await compose_intents.begin(services, message_id)
    await store_blobs(services, message_id, body, files, html, links)
    now = services.clock()
    entity = _message_row(seller, message_id, body, files, decision, now, link_count=len(links))
    await _queue(services, entity, body, now)
    try:  # with its rows in the list index, in one transaction
        await list_index.create_message(services.store.messages, entity)
    except ResourceExistsError:  # a retry of a compose whose first request got this far
        return Composed(await current_view(services, seller, message_id), True)
    await compose_intents.done(services, message_id)
    if entity["status"] == "sending":
        try:
            entity.update(await sending.attempt(services, entity))
        except Exception:
            # Only storage failing to record the outcome gets here: the message stays
            # `sending` under its lease, and the dispatch cycle finishes it.
            logger.warning("a send's outcome could not be recorded; the dispatch cycle will")
    view = message_view(entity, from_columns(entity), links, html=html)
    await _annotate(services, seller, body, decision, view)
    return Composed(view)


async def _reserve(
    services: Services, seller: Seller, key: str, body: ComposeIn, message_id: str
) -> Composed | str:
    """The message id to compose under, or the first answer when a request with this key
    made its message already."""
    # Left out while false, so a key used before the field existed still matches its body.
    unset = {"send_individually"} if not body.send_individually else None
    request = idempotency.fingerprint(body.model_dump(mode="json", exclude=unset))
    reserved = await idempotency.reserve(services, seller, key, request, message_id)
    if not reserved.replay:
        return message_id
    try:
        return Composed(await current_view(services, seller, reserved.message_id), True)
    except NotFound:
        if reserved.in_flight(services.clock()):
            raise Conflict(
                "a request with this Idempotency-Key is still at work; retry shortly"
            ) from None
    return reserved.message_id


async def _with_template(services: Services, seller: Seller, body: ComposeIn) -> ComposeIn:
    """The body with its template's subject and HTML rendered for the first recipient."""
    if body.template_id is None:
        return body
    rendered = await template_library.render_for(
        services, seller, body.template_id, (body.to or body.cc or body.bcc)[0]
    )
    return body.model_copy(update={"subject": rendered.subject, "html": rendered.html})


def delivered_body(
    services: Services, message_id: str, body: ComposeIn, files: list[CheckedFile]
) -> tuple[str, list[str]]:
    """The HTML that goes out and its followed links (none for an unfollowed message). Sent
    individually, the first recipient's copy: sending signs each copy from the original."""
    if not body.follow:
        return body.html, []
    built = copies.signed_body(
        services,
        message_id,
        body.html,
        [FollowedFile(f.index, f.name, len(f.content)) for f in files if f.followed],
        copy=1 if body.send_individually else 0,
    )
    return built.html, [link.url for link in built.links]


async def _queue(services: Services, entity: MessageRow, body: ComposeIn, now: datetime) -> None:
    """The rows that bring the message back later (its reminder, its send), written before
    the message row; the row's columns to match."""
    message_id = entity["RowKey"]
    if body.reminder is not None:
        entity["reminder"] = reminders.as_column(body.reminder)
        await reminders.schedule(services, message_id, body.reminder.at.isoformat())
    if body.send and body.send_at is not None:
        entity.update({"status": "scheduled", "send_at": body.send_at.isoformat()})
        await dispatch_queue.schedule(services, message_id, body.send_at)
    elif body.send:
        entity.update(sending.sending_entity(now))
        await dispatch_queue.schedule(services, message_id, now)


async def _annotate(
    services: Services,
    seller: Seller,
    body: ComposeIn,
    decision: FollowDecision,
    view: dict[str, Any],
) -> None:
    """Why the message is not followed, and send-time advice for a single recipient."""
    if decision.reason:
        view["follow_reason"] = decision.reason
    if decision.recipients == 1:
        try:
            view["advice"] = await preferences.send_time_advice(
                services, seller, [*body.to, *body.cc, *body.bcc]
            )
        except Exception:  # advice is a courtesy: the message exists either way
            logger.warning("send-time advice could not be read")


async def store_blobs(
    services: Services,
    message_id: str,
    body: ComposeIn,
    files: list[CheckedFile],
    html: str,
    links: list[str],
) -> None:
    """The message's blobs: its attachments, the body as delivered, the seller's original
    (kept while followed) and the followed links (marked final unless a draft's); each
    overwritten if there."""
    store = services.store
    uploads = [
        store.attachments.upload_blob(
            attachment_blob_name(message_id, f.index, followed=f.followed and body.follow),
            f.content,
            overwrite=True,
            content_settings=ContentSettings(
                content_type=f.content_type, content_disposition=_disposition(f.name)
            ),
        )
        for f in files
    ]
    blobs = {f"{message_id}/body.html": html.encode("utf-8")}
    if body.follow:  # kept to send unfollowed if a recipient's preference changes before sending
        blobs[f"{message_id}/original.html"] = body.html.encode()
    uploads += [store.message_blobs.upload_blob(n, d, overwrite=True) for n, d in blobs.items()]
    if links:  # final unless a draft's, which an edit may change (shared.tracking.links)
        uploads.append(
            store.message_blobs.upload_blob(
                links_blob_name(message_id),
                json.dumps(links).encode(),
                overwrite=True,
                metadata=FINAL_METADATA if body.send else None,
            )
        )
    await asyncio.gather(*uploads)


def _message_row(
    seller: Seller,
    message_id: str,
    body: ComposeIn,
    files: list[CheckedFile],
    decision: FollowDecision,
    now: datetime,
    *,
    link_count: int,
) -> MessageRow:
    entity: MessageRow = {
        "PartitionKey": partition_of(message_id),
        "RowKey": message_id,
        "owner": seller.key,
        "seller": seller.email,
        "subject": body.subject,
        "template_id": body.template_id or "",
        "to": json.dumps(body.to),
        "cc": json.dumps(body.cc),
        "bcc": json.dumps(body.bcc),
        "status": "draft",
        "follow_state": decision.state,
        "created_at": now.isoformat(),
        "sent_at": "",
        "internet_message_id": "",
        "send_individually": body.send_individually,
        "regarding": body.regarding.model_dump_json() if body.regarding else "",
        "attachments": attachments_column(files, follow=body.follow),
        "link_count": link_count,
    }
    entity.update(kpi_columns(to_columns(Kpis())))
    if decision.blocked:
        entity["blocked"] = json.dumps(decision.blocked)
    return entity


def attachments_column(files: Sequence[CheckedFile], *, follow: bool) -> str:
    """The message row's `attachments`: each file's name, type, size and whether it is
    followed (never when the message is not)."""
    return json.dumps(
        [
            {
                "index": f.index,
                "name": f.name,
                "content_type": f.content_type,
                "size": len(f.content),
                "followed": f.followed and follow,
            }
            for f in files
        ]
    )


@dataclass(frozen=True, slots=True)
class FollowDecision:
    state: FollowState  # not_followed: the seller's choice or the organisation's
    reason: str | None = None
    blocked: list[dict[str, Any]] = field(default_factory=list)
    recipients: int = 0


async def follow_decision(services: Services, body: ComposeIn) -> FollowDecision:
    """Whether the message will be followed. The seller may choose not to; the organisation
    may have turned engagement off; and a message is followable only when every To and Cc
    recipient is a contact, lead or account record and no recipient, Bcc included, has
    Follow Email set to Do Not Allow."""
    recipients = len(dict.fromkeys(a.lower() for a in [*body.to, *body.cc, *body.bcc]))
    if not body.follow:
        return FollowDecision("not_followed", recipients=recipients)
    if not await services.org.enabled():
        reason = "email engagement is turned off for the organisation"
        return FollowDecision("not_followed", reason, recipients=recipients)
    blocked = await preferences.blocked_recipients(services, body.to, body.cc, body.bcc)
    if not blocked:
        return FollowDecision("followed", recipients=recipients)
    reason = "a recipient cannot be followed; see blocked_recipients"
    return FollowDecision("blocked", reason, blocked, recipients)
