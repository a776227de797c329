"""The mailbox sync cycle: replies to followed mail, and category, folder and conversation
tracking of Outlook items — like server-side synchronisation, but exact and idempotent.

One cycle per mailbox: make sure the tracking category exists, read each folder's changes
with a delta query (large pages, only the fields needed), act on every changed item, write
categories back in $batch requests, and keep the new delta links. Per-item failures are
recorded and retried by the retry cycle, at most `max_tracking_attempts` times; then the
item gets the "(Undeliverable)" category and is left alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import UpdateMode

from shared.errors import NotFound
from shared.graph.mail import (
    DeltaExpired,
    addresses,
    delta_events,
    delta_messages,
    ensure_category,
    find_by_internet_id,
    get_event,
    get_message,
    header,
    sender_address,
    set_categories,
)
from shared.ids import seller_key
from shared.mailboxes import Mailbox, all_mailboxes, claim, load, save
from shared.replies import find_followed, is_automatic, record_reply
from shared.runtime import Services
from shared.sending import index_key
from shared.tracking_rules import Rejected, choose_method, classify, more_specific

logger = logging.getLogger(__name__)
_WELL_KNOWN = ("inbox", "sentitems")
_PARALLEL_ITEMS = 16
_ACTIVITY = "msg"
_CALENDAR = "calendar"
_CALENDAR_BACK = timedelta(days=30)
_CALENDAR_AHEAD = timedelta(days=365)


@dataclass
class SyncReport:
    """What one mailbox's cycle did (counts, and Graph requests for the benchmark)."""

    mailbox: str
    items: int = 0
    tracked: int = 0
    untracked: int = 0
    replies: int = 0
    failed: int = 0
    category_writes: int = 0
    delta_requests: int = 0
    resynced: list[str] = field(default_factory=list)


@dataclass
class _Cycle:
    services: Services
    mailbox: Mailbox
    report: SyncReport
    known: dict[str, dict[str, Any]]  # items tracked from this mailbox, by activity key
    failures: dict[str, dict[str, Any]]  # failing items of this mailbox, by graph id
    enrolled: frozenset[str] = frozenset()
    writes: list[tuple[str, list[str]]] = field(default_factory=list)
    created: list[tuple[str, Any]] = field(default_factory=list)  # new activities: key, item


def _activity_key(internet_message_id: str) -> str:
    return index_key(internet_message_id)


async def _mailbox_rows(services: Services, mailbox: Mailbox, prefix: str) -> dict[str, Any]:
    rows = services.store.mailboxes.query_entities(
        "PartitionKey eq @pk and RowKey ge @lo and RowKey lt @hi",
        parameters={"pk": mailbox.key, "lo": prefix, "hi": prefix + "~"},
    )
    return {row["RowKey"][len(prefix) :]: row async for row in rows}


async def _track(cycle: _Cycle, item: Any, method: str, followed: str | None) -> None:
    """Create or join the activity for an item (one activity per Internet message id)."""
    services, mailbox = cycle.services, cycle.mailbox
    key = _activity_key(item.internet_message_id)
    table = services.store.activities
    try:
        existing: dict[str, Any] | None = dict(await table.get_entity(_ACTIVITY, key))
    except ResourceNotFoundError:
        existing = None
    now = services.clock().isoformat()
    if existing is None:
        body = item.body.content if item.body and item.body.content else ""
        await services.store.activity_blobs.upload_blob(
            f"{key}.html", body.encode(), overwrite=True
        )
        entity = {
            "PartitionKey": _ACTIVITY,
            "RowKey": key,
            "kind": "email",
            "internet_message_id": item.internet_message_id,
            "subject": item.subject or "",
            "sender": sender_address(item),
            "addresses": json.dumps(sorted(addresses(item))),
            "at": (item.received_date_time or item.sent_date_time or services.clock()).isoformat(),
            "conversation_id": item.conversation_id or "",
            "method": method,
            "status": "tracked",
            "mailboxes": json.dumps({mailbox.email: item.id}),
            "followed_message_id": followed or "",
            "tracked_at": now,
            "untracked_at": "",
        }
        try:
            await table.create_entity(entity)
            cycle.created.append((key, item))
        except ResourceExistsError:
            existing = dict(await table.get_entity(_ACTIVITY, key))
    if existing is not None:
        boxes = json.loads(existing["mailboxes"])
        best = more_specific(existing["method"], method)
        if (
            boxes.get(mailbox.email) != item.id
            or existing["status"] != "tracked"
            or best != existing["method"]
        ):
            boxes[mailbox.email] = item.id
            await table.update_entity(
                {
                    "PartitionKey": _ACTIVITY,
                    "RowKey": key,
                    "mailboxes": json.dumps(boxes),
                    "status": "tracked",
                    "method": best,
                    "untracked_at": "",
                },
                mode=UpdateMode.MERGE,
            )
    if item.conversation_id:
        # The conversation's first tracked item is its root: later items of the thread (the
        # replies) are tracked through it, the root itself only by its own method.
        with contextlib.suppress(ResourceExistsError):
            await services.store.message_index.create_entity(
                {
                    "PartitionKey": "actconv",
                    "RowKey": index_key(item.conversation_id),
                    "activity": key,
                }
            )
    await services.store.mailboxes.upsert_entity(
        {"PartitionKey": mailbox.key, "RowKey": f"trk-{key}", "graph_id": item.id, "method": method}
    )
    cycle.known[key] = {"method": method}
    if cycle.mailbox.category_name not in (item.categories or []):
        cycle.writes.append((item.id, [*(item.categories or []), cycle.mailbox.category_name]))
    cycle.report.tracked += 1


async def _untrack(cycle: _Cycle, key: str) -> None:
    """The tracking category was taken off: the activity stays, marked untracked."""
    services = cycle.services
    await services.store.activities.update_entity(
        {
            "PartitionKey": _ACTIVITY,
            "RowKey": key,
            "status": "untracked",
            "untracked_at": services.clock().isoformat(),
        },
        mode=UpdateMode.MERGE,
    )
    with contextlib.suppress(ResourceNotFoundError):
        await services.store.mailboxes.delete_entity(cycle.mailbox.key, f"trk-{key}")
    cycle.known.pop(key, None)
    cycle.report.untracked += 1


async def _in_tracked_conversation(services: Services, conversation: str | None, key: str) -> bool:
    """Whether the item belongs to a thread whose root (another item) is tracked."""
    if not conversation:
        return False
    try:
        row = await services.store.message_index.get_entity("actconv", index_key(conversation))
    except ResourceNotFoundError:
        return False
    return bool(row["activity"] != key)


async def _tracked_elsewhere(services: Services, key: str) -> str | None:
    try:
        row = await services.store.activities.get_entity(_ACTIVITY, key)
    except ResourceNotFoundError:
        return None
    return str(row["method"]) if row["status"] == "tracked" else None


async def _ours(services: Services, internet_message_id: str) -> str | None:
    try:
        row = await services.store.message_index.get_entity("imid", index_key(internet_message_id))
    except ResourceNotFoundError:
        return None
    return str(row["message_id"])


async def process_item(cycle: _Cycle, item: Any, folder: str) -> None:
    """Act on one changed message: a reply to followed mail is counted; an item that a
    tracking method claims becomes (or joins) an activity; one that lost the category is
    untracked."""
    services, mailbox = cycle.services, cycle.mailbox
    if not item.internet_message_id:
        raise Rejected("the item has no Internet message id")
    cycle.report.items += 1
    own = sender_address(item) == mailbox.email
    if own:
        followed = await _ours(services, item.internet_message_id)
    else:
        followed = await find_followed(
            services,
            header(item, "In-Reply-To"),
            header(item, "References"),
            item.conversation_id,
        )
        if followed is not None:
            headers = {h.name or "": h.value or "" for h in item.internet_message_headers or []}
            await record_reply(
                services,
                followed,
                reply_key=item.internet_message_id,
                at=item.received_date_time or services.clock(),
                automatic=is_automatic(headers, item.subject),
            )
            cycle.report.replies += 1
    key = _activity_key(item.internet_message_id)
    method: str | None = choose_method(
        token=followed is not None,
        conversation=await _in_tracked_conversation(services, item.conversation_id, key),
        folder=folder in mailbox.folders,
        category=mailbox.category_name in (item.categories or []),
    )
    if method is None and key not in cycle.known:
        # Already tracked from another enrolled mailbox: link this copy, do not duplicate.
        method = await _tracked_elsewhere(services, key)
    if method is not None:
        await _track(cycle, item, method, followed)
    elif cycle.known.get(key, {}).get("method") == "category":
        await _untrack(cycle, key)
    await _clear_failure(cycle, item.id)


async def _clear_failure(cycle: _Cycle, graph_id: str) -> None:
    """An item that failed before went through: forget its failure."""
    if graph_id in cycle.failures:
        with contextlib.suppress(ResourceNotFoundError):
            await cycle.services.store.mailboxes.delete_entity(
                cycle.mailbox.key, f"fail-{index_key(graph_id)}"
            )
        cycle.failures.pop(graph_id)


async def process_event(cycle: _Cycle, event: Any) -> None:
    """A calendar event with the tracking category becomes an appointment activity; one that
    lost it is untracked."""
    if not event.i_cal_u_id:
        raise Rejected("the event has no iCalUId")
    cycle.report.items += 1
    key = index_key(f"event:{event.i_cal_u_id}")
    if cycle.mailbox.category_name in (event.categories or []):
        await _track_event(cycle, event, key)
    elif cycle.known.get(key, {}).get("method") == "category":
        await _untrack(cycle, key)
    await _clear_failure(cycle, event.id)


async def _track_event(cycle: _Cycle, event: Any, key: str) -> None:
    services, mailbox = cycle.services, cycle.mailbox
    attendees = [
        a.email_address.address.lower()
        for a in event.attendees or []
        if a.email_address and a.email_address.address
    ]
    organizer = (
        event.organizer.email_address.address.lower()
        if (
            event.organizer
            and event.organizer.email_address
            and event.organizer.email_address.address
        )
        else ""
    )
    try:
        row = dict(await services.store.activities.get_entity(_ACTIVITY, key))
        boxes = json.loads(row["mailboxes"])
    except ResourceNotFoundError:
        row, boxes = {}, {}
    if row.get("status") == "tracked" and boxes.get(mailbox.email) == event.id:
        cycle.known[key] = {"method": "category"}
        return
    boxes[mailbox.email] = event.id
    body = event.body.content if event.body and event.body.content else ""
    await services.store.activity_blobs.upload_blob(f"{key}.html", body.encode(), overwrite=True)
    await services.store.activities.upsert_entity(
        {
            "PartitionKey": _ACTIVITY,
            "RowKey": key,
            "kind": "appointment",
            "ical_uid": event.i_cal_u_id,
            "internet_message_id": "",
            "subject": event.subject or "",
            "sender": organizer,
            "addresses": json.dumps(sorted({organizer, *attendees} - {""})),
            "at": event.start.date_time if event.start and event.start.date_time else "",
            "conversation_id": "",
            "method": "category",
            "status": "tracked",
            "mailboxes": json.dumps(boxes),
            "followed_message_id": "",
            "tracked_at": row.get("tracked_at") or services.clock().isoformat(),
            "untracked_at": "",
        },
        mode=UpdateMode.MERGE,
    )
    await services.store.mailboxes.upsert_entity(
        {
            "PartitionKey": mailbox.key,
            "RowKey": f"trk-{key}",
            "graph_id": event.id,
            "method": "category",
        }
    )
    cycle.known[key] = {"method": "category"}
    cycle.report.tracked += 1


async def _sync_calendar(cycle: _Cycle) -> None:
    services, mailbox = cycle.services, cycle.mailbox
    graph, now = services.graph(), services.clock()
    window = (now - _CALENDAR_BACK, now + _CALENDAR_AHEAD)
    try:
        page = await delta_events(graph, mailbox.email, mailbox.delta_links.get(_CALENDAR), *window)
    except DeltaExpired:
        cycle.report.resynced.append(_CALENDAR)
        page = await delta_events(graph, mailbox.email, None, *window)
    cycle.report.delta_requests += page.requests
    for event in page.items:
        try:
            await process_event(cycle, event)
        except Exception as error:
            await _record_failure(cycle, event.id or "", _CALENDAR, error)
    if page.delta_link:
        mailbox.delta_links[_CALENDAR] = page.delta_link


async def _record_failure(cycle: _Cycle, graph_id: str, folder: str, error: BaseException) -> None:
    services, mailbox = cycle.services, cycle.mailbox
    klass = classify(error)
    previous = cycle.failures.get(graph_id, {})
    attempts = int(previous.get("attempts", 0)) + 1
    row = {
        "PartitionKey": mailbox.key,
        "RowKey": f"fail-{index_key(graph_id)}",
        "graph_id": graph_id,
        "folder": folder,
        "attempts": attempts,
        "failure_class": klass,
        "undeliverable": attempts >= services.settings.max_tracking_attempts,
        "last_error": type(error).__name__,
    }
    await services.store.mailboxes.upsert_entity(row)
    cycle.failures[graph_id] = row
    mailbox.errors[klass] = mailbox.errors.get(klass, 0) + 1
    mailbox.last_error = f"{klass}: {type(error).__name__}"
    cycle.report.failed += 1
    if row["undeliverable"]:
        undeliverable = f"{services.settings.tracking_category} (Undeliverable)"
        cycle.writes.append((graph_id, [undeliverable]))
    logger.warning("item failed to track in a mailbox (%s, attempt %s)", klass, attempts)


async def _bounded(tasks: list[Awaitable[None]]) -> None:
    gate = asyncio.Semaphore(_PARALLEL_ITEMS)

    async def run(task: Awaitable[None]) -> None:
        async with gate:
            await task

    await asyncio.gather(*(run(t) for t in tasks))


async def _guarded(cycle: _Cycle, item: Any, folder: str) -> None:
    try:
        await process_item(cycle, item, folder)
    except Exception as error:
        await _record_failure(cycle, item.id or "", folder, error)


async def _sync_folder(cycle: _Cycle, folder: str) -> None:
    services, mailbox = cycle.services, cycle.mailbox
    graph = services.graph()
    try:
        page = await delta_messages(graph, mailbox.email, folder, mailbox.delta_links.get(folder))
    except DeltaExpired:
        # The token was lost: read the folder again from the start. Everything below is
        # idempotent, so items seen before change nothing.
        cycle.report.resynced.append(folder)
        page = await delta_messages(graph, mailbox.email, folder, None)
    cycle.report.delta_requests += page.requests
    await _bounded([_guarded(cycle, item, folder) for item in page.items])
    if page.delta_link:
        mailbox.delta_links[folder] = page.delta_link


async def _link_copies(cycle: _Cycle) -> None:
    """A newly tracked item may sit in other enrolled mailboxes too (a colleague on the
    thread): link their copies to the one activity and give them the category. Only the
    mailboxes whose address is on the item are asked."""
    services, graph = cycle.services, cycle.services.graph()
    for key, item in cycle.created:
        for other in sorted((addresses(item) & cycle.enrolled) - {cycle.mailbox.email}):
            try:
                copy = await find_by_internet_id(graph, other, item.internet_message_id)
                if copy is None or copy.id is None:
                    continue
                row = await services.store.activities.get_entity(_ACTIVITY, key)
                boxes = json.loads(row["mailboxes"])
                boxes[other] = copy.id
                await services.store.activities.update_entity(
                    {"PartitionKey": _ACTIVITY, "RowKey": key, "mailboxes": json.dumps(boxes)},
                    mode=UpdateMode.MERGE,
                )
                await services.store.mailboxes.upsert_entity(
                    {
                        "PartitionKey": seller_key(other),
                        "RowKey": f"trk-{key}",
                        "graph_id": copy.id,
                        "method": row["method"],
                    }
                )
                category = await _category_name(services, other)
                if category and category not in (copy.categories or []):
                    await set_categories(
                        graph, other, [(copy.id, [*(copy.categories or []), category])]
                    )
            except Exception as error:
                logger.warning("could not link a copy in another mailbox: %s", classify(error))


async def _category_name(services: Services, email: str) -> str:
    try:
        return (await load(services, email)).category_name
    except NotFound:
        return ""


async def _write_categories(cycle: _Cycle) -> None:
    if not cycle.writes:
        return
    latest = dict(cycle.writes)  # one write per item: the last decided
    statuses = await set_categories(
        cycle.services.graph(), cycle.mailbox.email, list(latest.items())
    )
    cycle.report.category_writes += len(statuses)
    for status in statuses.values():
        if not 200 <= status < 300:
            klass = "throttled" if status in (429, 503) else "rejected"
            cycle.mailbox.errors[klass] = cycle.mailbox.errors.get(klass, 0) + 1
            cycle.mailbox.last_error = f"{klass}: category write answered {status}"


async def _open_cycle(services: Services, email: str) -> _Cycle | None:
    mailbox = await claim(services, email)
    if mailbox is None:
        return None  # another cycle is syncing this mailbox right now
    known = await _mailbox_rows(services, mailbox, "trk-")
    failures = {
        row["graph_id"]: row for row in (await _mailbox_rows(services, mailbox, "fail-")).values()
    }
    enrolled = frozenset(m.email for m in await all_mailboxes(services))
    return _Cycle(services, mailbox, SyncReport(mailbox.email), known, failures, enrolled)


async def _ensure_category(cycle: _Cycle) -> None:
    mailbox = cycle.mailbox
    mailbox.category_id, mailbox.category_name = await ensure_category(
        cycle.services.graph(),
        mailbox.email,
        mailbox.category_id or None,
        cycle.services.settings.tracking_category,
    )


async def _close_cycle(cycle: _Cycle, *, success: bool) -> None:
    mailbox, now = cycle.mailbox, cycle.services.clock().isoformat()
    mailbox.last_sync_at = now
    if success:
        mailbox.last_success_at = now
    failing = [f for f in cycle.failures.values() if f]
    mailbox.items_failing = sum(1 for f in failing if not f.get("undeliverable"))
    mailbox.undeliverable = sum(1 for f in failing if f.get("undeliverable"))
    mailbox.items_tracked = len(cycle.known)
    mailbox.lease_until = ""
    try:
        await save(cycle.services, mailbox)
    except ResourceModifiedError:
        logger.warning("mailbox state changed during the cycle; the next cycle catches up")


async def sync_mailbox(services: Services, email: str) -> SyncReport | None:
    """One sync cycle of one mailbox; None if another cycle holds it."""
    cycle = await _open_cycle(services, email)
    if cycle is None:
        return None
    try:
        await _ensure_category(cycle)
        for folder in dict.fromkeys([*_WELL_KNOWN, *cycle.mailbox.folders]):
            await _sync_folder(cycle, folder)
        await _sync_calendar(cycle)
        await _write_categories(cycle)
        await _link_copies(cycle)
    except Exception as error:
        klass = classify(error)
        cycle.mailbox.errors[klass] = cycle.mailbox.errors.get(klass, 0) + 1
        cycle.mailbox.last_error = f"{klass}: {type(error).__name__}"
        await _close_cycle(cycle, success=False)
        raise
    await _close_cycle(cycle, success=True)
    return cycle.report


async def retry_mailbox(services: Services, email: str) -> SyncReport | None:
    """Try the failed items of one mailbox again (fetching each afresh)."""
    cycle = await _open_cycle(services, email)
    if cycle is None:
        return None
    try:
        await _ensure_category(cycle)
        for graph_id, row in list(cycle.failures.items()):
            if row.get("undeliverable"):
                continue
            try:
                if row.get("folder") == _CALENDAR:
                    event = await get_event(services.graph(), cycle.mailbox.email, graph_id)
                    if event is None:
                        raise Rejected("the event is gone")
                    await process_event(cycle, event)
                    continue
                item = await get_message(services.graph(), cycle.mailbox.email, graph_id)
                if item is None:
                    raise Rejected("the item is gone")
                await process_item(cycle, item, row.get("folder", ""))
            except Exception as error:
                await _record_failure(cycle, graph_id, row.get("folder", ""), error)
        await _write_categories(cycle)
    finally:
        await _close_cycle(cycle, success=True)
    return cycle.report


async def sync_cycle(services: Services, *, retry: bool = False) -> list[SyncReport]:
    """Every enrolled mailbox once. A failing mailbox is recorded and the others go on."""
    reports = []
    for mailbox in await all_mailboxes(services):
        try:
            run = retry_mailbox if retry else sync_mailbox
            report = await run(services, mailbox.email)
        except Exception:
            logger.exception("mailbox sync failed; recorded in its health")
            continue
        if report is not None:
            reports.append(report)
    return reports
