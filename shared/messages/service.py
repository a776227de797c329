"""The seller's messages: compose, send, read one with its engagement, list them."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import (
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.data.tables import UpdateMode
from azure.storage.blob import ContentSettings

from shared.assistant import reminders
from shared.core.auth import Seller
from shared.core.errors import Conflict, InvalidInput, NotFound
from shared.core.ids import is_message_id, new_message_id, partition_of
from shared.core.services import Services
from shared.crm import preferences
from shared.engagement.fold import pending_events, read_cursor
from shared.engagement.kpis import Kpis, counts, fold, from_columns, occurrence, to_columns
from shared.engagement.labelling import label_event
from shared.messages import compose_intents, idempotency, sending
from shared.messages.listing import check_sort, page
from shared.messages.models import ComposeIn, ReminderIn
from shared.messages.views import list_item, message_view, parse_time
from shared.templates import library as template_library
from shared.tracking.events import BUCKET_SECONDS, Event, bucket_of
from shared.tracking.followed_body import FollowedFile, followed_body
from shared.tracking.links import attachment_blob_name, links_blob_name

logger = logging.getLogger(__name__)
_PAGE_READS = 16  # point reads in flight for one page of the list
_LIST_COLUMNS = [
    "RowKey", "subject", "to", "status", "follow_state", "created_at", "sent_at", "regarding",
    "opens", "last_opened_at", "first_opened_at", "link_clicks", "attachment_views", "replies",
    "by_class",
]  # fmt: skip


@dataclass(frozen=True, slots=True)
class _File:
    index: int
    name: str
    content_type: str
    content: bytes
    followed: bool


def _decode_attachments(body: ComposeIn, services: Services) -> list[_File]:
    limits = services.settings
    if len(body.attachments) > limits.max_attachments:
        raise InvalidInput("attachments", f"at most {limits.max_attachments} attachments")
    files, total = [], 0
    for i, item in enumerate(body.attachments):
        try:
            content = base64.b64decode(item.content, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidInput(f"attachments[{i}].content", "is not valid base64") from None
        if len(content) > limits.max_attachment_bytes:
            raise InvalidInput(
                f"attachments[{i}].content",
                f"is over {limits.max_attachment_bytes} bytes",
                too_large=True,
            )
        total += len(content)
        files.append(_File(i, item.name, item.content_type, content, item.followed))
    if total > limits.max_total_attachment_bytes:
        raise InvalidInput(
            "attachments",
            f"together over {limits.max_total_attachment_bytes} bytes",
            too_large=True,
        )
    return files


def _validate(body: ComposeIn, services: Services) -> list[_File]:
    if not (body.to or body.cc or body.bcc):
        raise InvalidInput("to", "at least one recipient is required in to, cc or bcc")
    if body.template_id is None and not body.html:
        raise InvalidInput("html", "is required unless template_id is given")
    if body.template_id is not None and (body.html or body.subject):
        raise InvalidInput("template_id", "leave subject and html empty to use a template")
    if body.send_at is not None:
        _check_future(services, body.send_at)
    if len(body.html.encode("utf-8")) > services.settings.max_html_bytes:
        raise InvalidInput(
            "html", f"is over {services.settings.max_html_bytes} bytes", too_large=True
        )
    return _decode_attachments(body, services)


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
    files = _validate(body, services)
    message_id = new_message_id(seller.email)
    if idempotency_key is not None:
        request = idempotency.fingerprint(body.model_dump(mode="json"))
        reserved = await idempotency.reserve(services, seller, idempotency_key, request, message_id)
        if reserved.replay:
            try:
                return Composed(await _current_view(services, seller, reserved.message_id), True)
            except NotFound:
                if reserved.in_flight(services.clock()):
                    raise Conflict(
                        "a request with this Idempotency-Key is still at work; retry shortly"
                    ) from None
            message_id = reserved.message_id  # the first request died before its commit
    body = await template_library.apply(services, seller, body)
    decision = await _follow_decision(services, body)
    if decision.state != "followed":
        body = body.model_copy(update={"follow": False})
    if body.reminder is not None:
        reminders.check(body.reminder, followed=body.follow, now=services.clock())
    if body.follow:
        built = followed_body(
            body.html,
            message_id=message_id,
            signer=services.signer,
            base_url=services.settings.tracking_base_url,
            own_hosts=[services.settings.tracking_host],
            files=[FollowedFile(f.index, f.name, len(f.content)) for f in files if f.followed],
        )
        html, links = built.html, [link.url for link in built.links]
    else:
        html, links = body.html, []
    await compose_intents.begin(services, message_id)
    await _store_blobs(services, message_id, body, files, html, links)
    now = services.clock()
    entity = _message_row(seller, message_id, body, files, decision, now, link_count=len(links))
    if body.reminder is not None:
        entity["reminder"] = reminders.as_column(body.reminder)
        await reminders.schedule(services, message_id, body.reminder.at.isoformat())
    if body.send and body.send_at is not None:
        entity.update(status="scheduled", send_at=body.send_at.isoformat())
        await sending.schedule(services, message_id, body.send_at)
    elif body.send:
        entity.update(sending.sending_entity(now))
        await sending.queue(services, message_id, now)
    try:
        await services.store.messages.create_entity(entity)
    except ResourceExistsError:  # a retry of a compose whose first request got this far
        return Composed(await _current_view(services, seller, message_id), True)
    await compose_intents.done(services, message_id)
    if entity["status"] == "sending":
        try:
            entity.update(await sending.attempt(services, entity))
        except Exception:
            # Only storage failing to record the outcome gets here: the message stays
            # `sending` under its lease, and the dispatch cycle finishes it.
            logger.warning("a send's outcome could not be recorded; the dispatch cycle will")
    view = message_view(entity, from_columns(entity), links, html=html)
    if decision.reason:
        view["follow_reason"] = decision.reason
    if decision.recipients == 1:
        try:
            view["advice"] = await preferences.send_time_advice(
                services, seller, [*body.to, *body.cc, *body.bcc]
            )
        except Exception:  # advice is a courtesy: the message exists either way
            logger.warning("send-time advice could not be read")
    return Composed(view)


async def _store_blobs(
    services: Services,
    message_id: str,
    body: ComposeIn,
    files: list[_File],
    html: str,
    links: list[str],
) -> None:
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
    if links:
        blobs[links_blob_name(message_id)] = json.dumps(links).encode()
    uploads += [store.message_blobs.upload_blob(n, d, overwrite=True) for n, d in blobs.items()]
    await asyncio.gather(*uploads)


def _message_row(
    seller: Seller,
    message_id: str,
    body: ComposeIn,
    files: list[_File],
    decision: _FollowDecision,
    now: datetime,
    *,
    link_count: int,
) -> dict[str, Any]:
    entity: dict[str, Any] = {
        "PartitionKey": seller.key,
        "RowKey": message_id,
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
        "regarding": body.regarding.model_dump_json() if body.regarding else "",
        "attachments": json.dumps(
            [
                {
                    "index": f.index,
                    "name": f.name,
                    "content_type": f.content_type,
                    "size": len(f.content),
                    "followed": f.followed and body.follow,
                }
                for f in files
            ]
        ),
        **to_columns(Kpis()),
        "link_count": link_count,
    }
    if decision.blocked:
        entity["blocked"] = json.dumps(decision.blocked)
    return entity


async def _current_view(services: Services, seller: Seller, message_id: str) -> dict[str, Any]:
    entity = await _load(services, seller, message_id)
    return message_view(entity, from_columns(entity), await _links(services, entity))


async def recipient_preferences(
    services: Services, seller: Seller, message_id: str
) -> dict[str, Any]:
    """View preferences for a stored message: each recipient's Follow Email preference now,
    and whether the message would be followed if it were sent now."""
    entity = await _load(services, seller, message_id)
    found = await preferences.recipient_preferences(
        services, json.loads(entity["to"]), json.loads(entity["cc"]), json.loads(entity["bcc"])
    )
    return {
        "id": message_id,
        "status": entity["status"],
        "message_follow_state": entity["follow_state"],
        **found,
    }


@dataclass(frozen=True, slots=True)
class _FollowDecision:
    state: str  # followed, not_followed (the seller's choice or the organisation's) or blocked
    reason: str | None = None
    blocked: list[dict[str, Any]] = field(default_factory=list)
    recipients: int = 0


async def _follow_decision(services: Services, body: ComposeIn) -> _FollowDecision:
    """Whether the message will be followed. The seller may choose not to; the organisation
    may have turned engagement off; and a message is followable only when every To and Cc
    recipient is a contact, lead or account record and no recipient, Bcc included, has
    Follow Email set to Do Not Allow."""
    recipients = len(dict.fromkeys(a.lower() for a in [*body.to, *body.cc, *body.bcc]))
    if not body.follow:
        return _FollowDecision("not_followed", recipients=recipients)
    if not await services.org.enabled():
        reason = "email engagement is turned off for the organisation"
        return _FollowDecision("not_followed", reason, recipients=recipients)
    blocked = await preferences.blocked_recipients(services, body.to, body.cc, body.bcc)
    if not blocked:
        return _FollowDecision("followed", recipients=recipients)
    reason = "a recipient cannot be followed; see blocked_recipients"
    return _FollowDecision("blocked", reason, blocked, recipients)


async def _load(services: Services, seller: Seller, message_id: str) -> dict[str, Any]:
    if not is_message_id(message_id) or partition_of(message_id) != seller.key:
        raise NotFound("message")
    try:
        entity = await services.store.messages.get_entity(seller.key, message_id)
    except ResourceNotFoundError:
        raise NotFound("message") from None
    if entity.get("seller") != seller.email:
        raise NotFound("message")
    return {**entity, "_etag": entity.metadata["etag"]}


async def send(services: Services, seller: Seller, message_id: str) -> dict[str, Any]:
    """Deliver a draft, a scheduled or a failed message now."""
    entity = await _load(services, seller, message_id)
    if not sending.claimable(entity, services.clock(), by_seller=True):
        raise Conflict("the message was already sent, cancelled or is being sent")
    entity.update(await sending.send_now(services, message_id))
    return message_view(entity, from_columns(entity), await _links(services, entity))


async def _merge(services: Services, entity: dict[str, Any], **changes: Any) -> None:
    """Change some columns, only if nobody changed the message since it was read."""
    try:
        await services.store.messages.update_entity(
            {"PartitionKey": entity["PartitionKey"], "RowKey": entity["RowKey"], **changes},
            mode=UpdateMode.MERGE,
            etag=entity["_etag"],
            match_condition=MatchConditions.IfNotModified,
        )
    except ResourceModifiedError:
        raise Conflict(
            "the message changed meanwhile (it may be going out); read it again"
        ) from None


async def set_reminder(
    services: Services, seller: Seller, message_id: str, reminder: ReminderIn
) -> dict[str, Any]:
    """Set or replace a message's reminder (still editable after sending)."""
    entity = await _load(services, seller, message_id)
    reminders.check(reminder, followed=entity["follow_state"] == "followed", now=services.clock())
    await reminders.schedule(services, message_id, reminder.at.isoformat())
    column = reminders.as_column(reminder)
    await _merge(services, entity, reminder=column)
    old = json.loads(entity.get("reminder") or "{}")
    if old.get("state") == "pending" and old["at"] != reminder.at.isoformat():
        await reminders.unschedule(services, message_id, old["at"])
    entity["reminder"] = column
    return message_view(entity, from_columns(entity), await _links(services, entity))


async def cancel_reminder(services: Services, seller: Seller, message_id: str) -> dict[str, Any]:
    """Remove a message's pending reminder."""
    entity = await _load(services, seller, message_id)
    old = json.loads(entity.get("reminder") or "{}")
    if old.get("state") != "pending":
        raise Conflict("the message has no pending reminder")
    await _merge(services, entity, reminder="")
    await reminders.unschedule(services, message_id, old["at"])
    entity["reminder"] = ""
    return message_view(entity, from_columns(entity), await _links(services, entity))


async def reschedule(
    services: Services, seller: Seller, message_id: str, send_at: datetime
) -> dict[str, Any]:
    """Move a scheduled message to another time (before it has been handed over)."""
    entity = await _load(services, seller, message_id)
    if entity["status"] != "scheduled":
        raise Conflict("only a scheduled message that has not gone out can be rescheduled")
    _check_future(services, send_at)
    await sending.schedule(services, message_id, send_at)
    await _merge(services, entity, send_at=send_at.isoformat())
    await sending.unschedule(services, message_id, datetime.fromisoformat(entity["send_at"]))
    entity["send_at"] = send_at.isoformat()
    return message_view(entity, from_columns(entity), await _links(services, entity))


async def cancel(services: Services, seller: Seller, message_id: str) -> dict[str, Any]:
    """Cancel a scheduled message, even one handed over with a deferred-send time, until it
    has gone out."""
    entity = await _load(services, seller, message_id)
    send_at = datetime.fromisoformat(entity["send_at"]) if entity.get("send_at") else None
    if entity["status"] == "scheduled" and send_at is not None:
        await _merge(services, entity, status="cancelled")
        await sending.unschedule(services, message_id, send_at)
    elif (
        entity["status"] == "sent"
        and send_at is not None
        and send_at > services.clock()
        and await services.delivery.cancel(entity["seller"], entity.get("provider_id") or "")
    ):
        await _merge(services, entity, status="cancelled", sent_at="")
    else:
        raise Conflict("only a scheduled message that has not gone out can be cancelled")
    entity.update(status="cancelled")
    return message_view(entity, from_columns(entity), await _links(services, entity))


def _check_future(services: Services, send_at: datetime) -> None:
    if send_at <= services.clock():
        raise InvalidInput("send_at", "must be in the future")


async def get(
    services: Services, seller: Seller, message_id: str, *, full_history: bool = False
) -> dict[str, Any]:
    """One message with its KPIs, timeline and (on request) every event, including events
    recorded since the last fold cycle."""
    entity = await _load(services, seller, message_id)
    sent_at = parse_time(entity.get("sent_at"))
    stored = from_columns(entity)
    cursor = await read_cursor(services.store) or ""
    # No event of this message can be older than the message itself.
    created = datetime.fromisoformat(entity["created_at"]) - timedelta(seconds=BUCKET_SECONDS)
    after = max(cursor, stored.folded_bucket, bucket_of(created))
    found = await pending_events(services.store, message_id, after, services.clock())
    pending = None if found is None else [label_event(e, sent_at) for e in found]
    kpis = fold(stored, pending or [], sent_at, services.settings.counted)
    view = message_view(entity, kpis, await _links(services, entity))
    view["kpis_complete"] = pending is not None
    if full_history:
        view["history"] = await _history(services, message_id, pending or [], sent_at)
    return view


async def _history(
    services: Services, message_id: str, pending: list[Event], sent_at: datetime | None
) -> list[dict[str, Any]]:
    counted = services.settings.counted
    rows = [
        {
            "event": row["kind"],
            "at": row["at"],
            "index": row["index"],
            "device": row["device"],
            "class": row.get("label") or None,
            "reasons": (row.get("reasons") or "").split(),
            "counted": row["kind"] != "auto_reply"
            and sent_at is not None
            and datetime.fromisoformat(row["at"]) >= sent_at
            and (row["kind"] == "reply" or row.get("label", "") in counted),
        }
        async for row in services.store.events.query_entities(
            "PartitionKey eq @pk", parameters={"pk": message_id}
        )
    ]
    seen = {(r["at"], r["event"], r["index"]) for r in rows}
    for event in pending:
        key = (event.at.isoformat(), event.kind, event.index)
        if key not in seen:
            rows.append(
                {
                    "event": event.kind,
                    "at": event.at.isoformat(),
                    "index": event.index,
                    "device": occurrence(event).device,
                    "class": event.label,
                    "reasons": list(event.reasons),
                    "counted": counts(event, sent_at) and event.label in counted,
                }
            )
    rows.sort(key=lambda r: r["at"], reverse=True)
    return rows


async def _links(services: Services, entity: dict[str, Any]) -> list[str]:
    if entity["follow_state"] != "followed":
        return []
    return list(await services.links.links(entity["RowKey"]) or ())


async def list_messages(
    services: Services,
    seller: Seller,
    *,
    sort: str,
    order: str,
    limit: int,
    continuation: str | None,
    follow_state: str,
) -> dict[str, Any]:
    """The seller's followed emails with their KPI columns, sorted and paged."""
    query = "PartitionKey eq @pk and seller eq @seller"
    parameters = {"pk": seller.key, "seller": seller.email}
    if follow_state != "any":
        query += " and follow_state eq @state"
        parameters["state"] = follow_state
    # Table storage cannot sort by a KPI: read only each row's key and sort column (most of a
    # large list's cost is turning wide rows into entities), sort and page those, then read
    # the page's rows whole.
    check_sort(sort)
    keys = [
        row
        async for row in services.store.messages.query_entities(
            query, parameters=parameters, select=["RowKey", sort]
        )
    ]
    result = page(keys, sort=sort, order=order, limit=limit, continuation=continuation)
    limit_reads = asyncio.Semaphore(_PAGE_READS)

    async def whole(row_key: str) -> dict[str, Any] | None:
        async with limit_reads:
            try:
                entity = await services.store.messages.get_entity(
                    seller.key, row_key, select=_LIST_COLUMNS
                )
            except ResourceNotFoundError:
                return None  # gone between the two reads
            return dict(entity)

    rows = await asyncio.gather(*(whole(str(row["RowKey"])) for row in result.rows))
    return {
        "items": [list_item(row) for row in rows if row is not None],
        "continuation": result.continuation,
    }
