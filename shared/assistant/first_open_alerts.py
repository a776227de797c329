"""First-open alerts: within seconds for an open that is clearly a person's, after a bounded
wait for one that needs later evidence, and only on an open the KPIs count.

One alert per message (its id derives from the message), which three paths may raise:
- The fast path: this cycle, every few seconds, lists the current and the previous time
  bucket (two listings, metadata only), judges the new events of each message not alerted
  yet with both classifier stages and the send time, and alerts on the first counted open
  that is clearly a person's (a mail client naming itself, from a network we do not know,
  after the delivery window; an image proxy that fetches only when a person opens).
- The fold: when it counts a message's first open it calls `on_first_open`, which alerts at
  once if that open is clear or has already stood ALERT_WAIT_SECONDS, and otherwise queues
  the message in the due index for open + wait: a scanner's pixel fetch is often followed
  by its link sweep seconds later, and the fold revises the open's label when it comes.
- The due index: this cycle reads it up to now (one query) and, once the fold has absorbed
  every event up to the due time, alerts on each message whose KPIs still count an open.
When a fold takes every counted open back, `on_no_open` withdraws the alert with the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from azure.core.exceptions import ResourceNotFoundError

from shared.assistant import alerts
from shared.classification.evidence import clear_read
from shared.core import transactions
from shared.core.ids import partition_of
from shared.core.services import OpenEvidence, Services
from shared.core.settings import Settings
from shared.core.storage import Store
from shared.engagement import shards
from shared.engagement.fold import list_events
from shared.engagement.kpis import from_columns
from shared.tracking.events import BUCKET_SECONDS, Event, bucket_of
from shared.tracking.labelling import first_counted_open, label_message, open_evidence

logger = logging.getLogger(__name__)
_DUE = "alert-due"  # state-table partition: RowKey "{due time}|{message id}"
_REMEMBERED = 100_000  # message ids a worker remembers as alerted (or not followable)
_LOOKUPS = 16  # message reads in flight at once
_BATCH = 100  # the most operations one table transaction takes
_done: OrderedDict[str, None] = OrderedDict()


@dataclass(frozen=True, slots=True)
class AlertReport:
    opens: int  # opens seen in the listed buckets
    checked: int  # messages looked up
    created: int  # alerts made by the fast path
    due: int = 0  # alerts made from the due index (opens that waited for evidence)
    waiting: int = 0  # due rows whose evidence the fold has not absorbed yet


def _remember(message_id: str) -> None:
    _done[message_id] = None
    _done.move_to_end(message_id)
    while len(_done) > _REMEMBERED:
        _done.popitem(last=False)


def _recipient(message: Mapping[str, Any], copy: int) -> str:
    """The address of one recipient's copy, for a message sent individually."""
    if not copy:
        return ""
    for item in json.loads(message.get("copies") or "[]"):
        if int(item.get("copy", 0)) == copy:
            return str(item.get("address") or "")
    return ""


async def _raise(
    store: Store, message: Mapping[str, Any], first: OpenEvidence, now: datetime
) -> bool:
    created = await alerts.first_open(
        store,
        message,
        opened_at=first.at,
        how=first.how,
        raised_at=now,
        recipient=_recipient(message, first.copy),
    )
    _remember(str(message["RowKey"]))
    return created


def _due_key(at: datetime, message_id: str) -> str:
    return f"{at.isoformat()}|{message_id}"


async def on_first_open(
    store: Store, settings: Settings, message: Mapping[str, Any], first: OpenEvidence, now: datetime
) -> None:
    """The fold counted the message's first open: alert now if the open is clearly a
    person's or has stood the wait already (a fold catching up), else queue it."""
    if message.get("follow_state") != "followed":
        return
    due = first.at + timedelta(seconds=settings.alert_wait_seconds)
    if first.clear or due <= now:
        await _raise(store, message, first, now)
        return
    await _queue(store, message, due)


async def on_first_opens(
    store: Store,
    settings: Settings,
    opened: list[tuple[Mapping[str, Any], OpenEvidence]],
    now: datetime,
) -> None:
    """`on_first_open` for many messages (a fold's partition) in a few requests."""
    raising, queued = [], []
    for message, first in opened:
        if message.get("follow_state") != "followed":
            continue
        due = first.at + timedelta(seconds=settings.alert_wait_seconds)
        if first.clear or due <= now:
            raising.append(_row(message, first, now))
        else:
            queued.append(_due_row(message, due))
    for start in range(0, len(queued), _BATCH):
        await transactions.submit(
            store.state, [("upsert", r) for r in queued[start : start + _BATCH]]
        )
    await alerts.first_opens(store, raising)
    for row in raising:
        _remember(str(row["message_id"]))


def _row(message: Mapping[str, Any], first: OpenEvidence, now: datetime) -> dict[str, Any]:
    return alerts.first_open_row(
        message,
        opened_at=first.at,
        how=first.how,
        raised_at=now,
        recipient=_recipient(message, first.copy),
    )


def _due_row(message: Mapping[str, Any], due: datetime) -> dict[str, Any]:
    message_id = message["RowKey"]
    return {"PartitionKey": _DUE, "RowKey": _due_key(due, message_id), "message_id": message_id}


async def _queue(store: Store, message: Mapping[str, Any], due: datetime) -> None:
    await store.state.upsert_entity(_due_row(message, due))


async def on_no_open(store: Store, message: Mapping[str, Any], reason: str, now: datetime) -> None:
    """A fold counts no open of the message any more: withdraw an alert raised on one."""
    if await alerts.withdraw_first_open(store, message, reason, now):
        logger.info("withdrew a first-open alert: %s", reason)
    _done.pop(str(message["RowKey"]), None)


async def _check(services: Services, message_id: str, events: list[Event], now: datetime) -> bool:
    store = services.store
    try:
        entity = await store.messages.get_entity(partition_of(message_id), message_id)
    except ResourceNotFoundError:
        return False  # not a message of ours (or being erased): nothing to alert
    if entity.get("follow_state") != "followed" or from_columns(entity).opens > 0:
        _remember(message_id)  # not followed, or the fold counted an open and took it over
        return False
    if not entity.get("sent_at"):
        return False  # a preview of a draft; the real first open is still to come
    sent_at = datetime.fromisoformat(entity["sent_at"])
    labelled = label_message(events, [], sent_at, int(entity.get("link_count") or 0)).new
    first = first_counted_open(labelled, sent_at, services.settings.counted)
    if first is None or not clear_read(first.label, first.reasons):
        return False  # nothing counted yet, or it needs the evidence only the fold will have
    return await _raise(store, entity, open_evidence(first), now)


async def _due_alerts(services: Services, now: datetime) -> tuple[int, int]:
    """Alert on each queued message whose wait is over, once the fold has absorbed every
    event up to its due time, if its KPIs still count an open. (created, still waiting)"""
    store = services.store
    cursors = await shards.read(store)
    created = waiting = 0
    rows = store.state.query_entities(
        "PartitionKey eq @pk and RowKey le @due",
        parameters={"pk": _DUE, "due": f"{now.isoformat()}~"},
    )
    async for row in rows:
        due = datetime.fromisoformat(str(row["RowKey"]).partition("|")[0])
        if cursors.folded(str(row["message_id"])) < bucket_of(due):
            waiting += 1  # the fold is still catching up with the evidence: next cycle
            continue
        try:
            created += await _due_one(services, str(row["message_id"]), now)
            with contextlib.suppress(ResourceNotFoundError):
                await store.state.delete_entity(_DUE, row["RowKey"])
        except Exception:
            logger.exception("a queued first-open alert failed; it is tried again next cycle")
    return created, waiting


async def _due_one(services: Services, message_id: str, now: datetime) -> bool:
    store = services.store
    try:
        entity = await store.messages.get_entity(partition_of(message_id), message_id)
    except ResourceNotFoundError:
        return False
    kpis = from_columns(entity)
    if entity.get("follow_state") != "followed" or kpis.opens == 0 or "open" not in kpis.first:
        return False  # the open it was queued for was taken back since
    first = kpis.first["open"]
    due = first.at + timedelta(seconds=services.settings.alert_wait_seconds)
    if due > now:  # the open queued was taken back; a later one counts: let it wait too
        await _queue(store, entity, due)
        return False
    return await _raise(
        store, entity, OpenEvidence(first.at, first.how or "opened", False, first.copy), now
    )


async def first_open_cycle(services: Services, now: datetime) -> AlertReport:
    """Alert on every message clearly opened by a person in the last 10-20 seconds, and on
    every queued message whose wait is over."""
    store = services.store
    buckets = {bucket_of(now - timedelta(seconds=BUCKET_SECONDS)), bucket_of(now)}
    listed = await asyncio.gather(*(list_events(store, f"{b}/") for b in sorted(buckets)))
    by_message: dict[str, list[Event]] = {}
    for event in (e for group in listed for e in group):
        if event.message_id not in _done:
            by_message.setdefault(event.message_id, []).append(event)
    opened = {m: items for m, items in by_message.items() if any(e.kind == "open" for e in items)}
    limit = asyncio.Semaphore(_LOOKUPS)

    async def check(message_id: str, events: list[Event]) -> bool:
        async with limit:
            return await _check(services, message_id, events, now)

    made = await asyncio.gather(*(check(m, items) for m, items in opened.items()))
    due, waiting = await _due_alerts(services, now)
    return AlertReport(
        opens=sum(1 for items in opened.values() for e in items if e.kind == "open"),
        checked=len(opened),
        created=sum(made),
        due=due,
        waiting=waiting,
    )
