"""Tracked Outlook items: the activity records (one per Internet message id, or per iCalUId
for events), joined by every enrolled mailbox that holds a copy, and the per-cycle state the
sync keeps while it decides what to track.

An activity whose item still needs our category written is `pending`; it becomes `tracked`
when the write has landed (shared.outlook.sync), so `tracked` always means the seller sees the
category in Outlook."""

from __future__ import annotations

import contextlib
import json
import logging
from dataclasses import dataclass, field
from typing import Any

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.data.tables import TableTransactionError, UpdateMode

from shared.core.ids import index_key
from shared.core.services import Services
from shared.crm import records, timeline_index
from shared.outlook.categories import CategoryChange, has_category
from shared.outlook.item_rules import more_specific
from shared.outlook.items import EventItem, MailItem
from shared.outlook.mailboxes import Mailbox

logger = logging.getLogger(__name__)
ACTIVITY = "msg"  # partition of the activities table


@dataclass
class SyncReport:
    """What one mailbox's cycle did (counts, and Graph requests for the benchmark)."""

    mailbox: str
    items: int = 0
    tracked: int = 0
    untracked: int = 0
    replies: int = 0
    failed: int = 0
    category_writes: int = 0  # landed
    category_retries: int = 0  # writes sent again: throttled, failed or conflicting
    category_failures: int = 0  # writes that did not land this cycle (recorded as failures)
    delta_requests: int = 0
    resynced: list[str] = field(default_factory=list)


@dataclass
class PendingWrite:
    """A category write the cycle decided on, and what follows when it lands."""

    change: CategoryChange
    folder: str  # where the item was seen, for its failure row
    activity: str = ""  # the pending activity it makes tracked
    mark: bool = False  # the "(Undeliverable)" mark, not our category


@dataclass
class Cycle:
    """One mailbox's cycle: what it knows (loaded once, at the start) and what it decided."""

    services: Services
    mailbox: Mailbox
    report: SyncReport
    known: dict[str, dict[str, Any]]  # activity key -> how this mailbox tracks it
    failures: dict[str, dict[str, Any]]  # graph id -> failure row
    conversations: dict[str, str]  # conversation key -> the thread's root activity
    followed: dict[str, dict[str, str]]  # "imid"/"conv" -> key -> our message id
    enrolled: frozenset[str] = frozenset()
    writes: dict[str, PendingWrite] = field(default_factory=dict)  # graph id -> the last decided
    created: list[tuple[str, MailItem]] = field(default_factory=list)


def activity_key(internet_message_id: str) -> str:
    return index_key(internet_message_id)


def event_key(ical_uid: str) -> str:
    return index_key(f"event:{ical_uid}")


async def _remember(cycle: Cycle, key: str, graph_id: str, method: str) -> None:
    await cycle.services.store.mailboxes.upsert_entity(
        {
            "PartitionKey": cycle.mailbox.key,
            "RowKey": f"trk-{key}",
            "graph_id": graph_id,
            "method": method,
        }
    )
    cycle.known[key] = {"method": method}


async def regarding(services: Services, addresses: set[str]) -> str:
    """The contact, lead and account records whose addresses appear on an item (JSON)."""
    found: dict[tuple[str, str], dict[str, str]] = {}
    for address in sorted(addresses):
        for record in await records.by_address(services, address):
            found[(record["type"], record["id"])] = {"type": record["type"], "id": record["id"]}
    return json.dumps(list(found.values()))


async def index(
    services: Services, row: dict[str, Any], key: str, mailboxes: list[str] | None = None
) -> None:
    """Index an activity (shared.crm.timeline_index) for `mailboxes` (default: every mailbox
    holding it), before the row that makes it theirs is written."""
    boxes = list(json.loads(row["mailboxes"])) if mailboxes is None else mailboxes
    partitions = timeline_index.activity_partitions(
        boxes, json.loads(row.get("regarding") or "[]"), row.get("followed_message_id") or ""
    )
    await timeline_index.write(services.store, partitions, index_key_of(row, key))


def index_key_of(row: dict[str, Any], key: str) -> str:
    """The activity's RowKey in the index: by its time (an event without a start, by when it
    was tracked)."""
    return timeline_index.row_key(row.get("at") or row["tracked_at"], key)


async def track(
    cycle: Cycle, item: MailItem, method: str, followed: str | None, folder: str = ""
) -> None:
    """Create or join the activity for a message (one activity per Internet message id), and
    decide the category write if the item lacks our category."""
    services, mailbox = cycle.services, cycle.mailbox
    key = activity_key(item.internet_message_id)
    needs_write = not has_category(item.categories, mailbox.category_name)
    status = "pending" if needs_write else "tracked"
    try:
        existing: dict[str, Any] | None = dict(
            await services.store.activities.get_entity(ACTIVITY, key)
        )
    except ResourceNotFoundError:
        existing = await _create(cycle, key, item, method, followed, status)
    if existing is not None:
        status = await _join(cycle, key, item, method, existing, status)
    if item.conversation_id:
        await _thread_root(cycle, item.conversation_id, key)
    await _remember(cycle, key, item.id, method)
    if needs_write:
        change = CategoryChange(
            item.id, list(item.categories), add=mailbox.category_name, etag=item.etag
        )
        activity = key if status == "pending" else ""
        cycle.writes[item.id] = PendingWrite(change, folder, activity)
    cycle.report.tracked += 1


async def _create(
    cycle: Cycle, key: str, item: MailItem, method: str, followed: str | None, status: str
) -> dict[str, Any] | None:
    """A new activity for the message; the existing one (to join) if another cycle made it
    first, else None."""
    services, mailbox = cycle.services, cycle.mailbox
    await services.store.activity_blobs.upload_blob(
        f"{key}.html", item.body_html.encode(), overwrite=True
    )
    entity = {
        "PartitionKey": ACTIVITY,
        "RowKey": key,
        "kind": "email",
        "internet_message_id": item.internet_message_id,
        "subject": item.subject,
        "sender": item.sender,
        "addresses": json.dumps(sorted(item.addresses)),
        "at": (item.received or item.sent or services.clock()).isoformat(),
        "conversation_id": item.conversation_id,
        "method": method,
        "status": status,
        "mailboxes": json.dumps({mailbox.email: item.id}),
        "followed_message_id": followed or "",
        "regarding": await regarding(services, item.addresses - {mailbox.email}),
        "tracked_at": services.clock().isoformat(),
        "untracked_at": "",
    }
    await index(services, entity, key)
    try:
        await services.store.activities.create_entity(entity)
    except ResourceExistsError:
        return dict(await services.store.activities.get_entity(ACTIVITY, key))
    cycle.created.append((key, item))
    return None


async def _join(
    cycle: Cycle, key: str, item: MailItem, method: str, existing: dict[str, Any], status: str
) -> str:
    """This mailbox's copy joins an existing activity (the most specific method wins); the
    activity's status after it ("tracked" once any copy carries the category)."""
    mailbox = cycle.mailbox
    boxes = json.loads(existing["mailboxes"])
    best = more_specific(existing["method"], method)
    changed = boxes.get(mailbox.email) != item.id or best != existing["method"]
    if existing["status"] == "tracked":  # another copy carries the category already
        status = "tracked"
    if changed or existing["status"] != status:
        if mailbox.email not in boxes:
            await index(cycle.services, existing, key, [mailbox.email])
        boxes[mailbox.email] = item.id
        await cycle.services.store.activities.update_entity(
            {
                "PartitionKey": ACTIVITY,
                "RowKey": key,
                "mailboxes": json.dumps(boxes),
                "status": status,
                "method": best,
                "untracked_at": "",
            },
            mode=UpdateMode.MERGE,
        )
    return status


async def _thread_root(cycle: Cycle, conversation_id: str, key: str) -> None:
    """The thread's first tracked item is its root: later items (the replies) are tracked
    through it, the root itself only by its own method."""
    conversation = index_key(conversation_id)
    if conversation not in cycle.conversations:
        with contextlib.suppress(ResourceExistsError):
            await cycle.services.store.mailboxes.create_entity(
                {
                    "PartitionKey": cycle.mailbox.key,
                    "RowKey": f"conv-{conversation}",
                    "activity": key,
                }
            )
        cycle.conversations[conversation] = key


async def untrack(cycle: Cycle, key: str) -> None:
    """The tracking category was taken off: the activity stays, marked untracked."""
    services = cycle.services
    await services.store.activities.update_entity(
        {
            "PartitionKey": ACTIVITY,
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


async def confirm_tracked(services: Services, keys: list[str]) -> None:
    """Pending activities whose category write landed are tracked: one table transaction per
    hundred (they share a partition)."""
    table = services.store.activities
    for start in range(0, len(keys), 100):
        chunk = list(dict.fromkeys(keys[start : start + 100]))
        operations: list[Any] = [
            (
                "update",
                {"PartitionKey": ACTIVITY, "RowKey": k, "status": "tracked"},
                {"mode": UpdateMode.MERGE},
            )
            for k in chunk
        ]
        try:
            await table.submit_transaction(operations)
        except TableTransactionError:
            for key in chunk:  # one of them is gone (erased meanwhile): the others one by one
                with contextlib.suppress(ResourceNotFoundError):
                    await table.update_entity(
                        {"PartitionKey": ACTIVITY, "RowKey": key, "status": "tracked"},
                        mode=UpdateMode.MERGE,
                    )


async def tracked_elsewhere(services: Services, key: str) -> str | None:
    """The method of an activity another mailbox tracks, if it is tracked."""
    try:
        row = await services.store.activities.get_entity(ACTIVITY, key)
    except ResourceNotFoundError:
        return None
    return str(row["method"]) if row["status"] in ("tracked", "pending") else None


async def track_event(cycle: Cycle, event: EventItem) -> None:
    """An appointment activity for a calendar event that carries the category."""
    services, mailbox = cycle.services, cycle.mailbox
    key = event_key(event.ical_uid)
    try:
        row = dict(await services.store.activities.get_entity(ACTIVITY, key))
        boxes = json.loads(row["mailboxes"])
    except ResourceNotFoundError:
        row, boxes = {}, {}
    if row.get("status") == "tracked" and boxes.get(mailbox.email) == event.id:
        cycle.known[key] = {"method": "category"}
        return
    boxes[mailbox.email] = event.id
    await services.store.activity_blobs.upload_blob(
        f"{key}.html", event.body_html.encode(), overwrite=True
    )
    entity = {
        "PartitionKey": ACTIVITY,
        "RowKey": key,
        "kind": "appointment",
        "ical_uid": event.ical_uid,
        "internet_message_id": "",
        "subject": event.subject,
        "sender": event.organizer,
        "addresses": json.dumps(sorted({event.organizer, *event.attendees} - {""})),
        "at": event.start,
        "conversation_id": "",
        "method": "category",
        "status": "tracked",
        "mailboxes": json.dumps(boxes),
        "followed_message_id": "",
        "regarding": await regarding(services, {event.organizer, *event.attendees} - {""}),
        "tracked_at": row.get("tracked_at") or services.clock().isoformat(),
        "untracked_at": "",
    }
    await index(services, entity, key)  # its time may have moved: indexed at the new one
    await services.store.activities.upsert_entity(entity, mode=UpdateMode.MERGE)
    await _remember(cycle, key, event.id, "category")
    cycle.report.tracked += 1
