"""First-open alerts within seconds.

The fold waits for a time bucket to close (plus a grace period) before it counts anything,
so that its KPIs are exact; an alert does not need to wait. This cycle, run every few
seconds, lists the current and the previous bucket (two listings, metadata only), finds
opens of messages that have no alert yet, and creates the alert from the first open made
after the message was sent. The fold still creates the same alert (same id) as a backstop,
for an open this cycle missed.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta

from azure.core.exceptions import ResourceNotFoundError

from shared.assistant import alerts
from shared.core.ids import partition_of
from shared.core.storage import Store
from shared.engagement.fold import list_events
from shared.engagement.kpis import from_columns, opened_by_someone
from shared.tracking.events import BUCKET_SECONDS, Event, bucket_of
from shared.tracking.labelling import label_event

_REMEMBERED = 100_000  # message ids a worker remembers as alerted (or not followable)
_LOOKUPS = 16  # message reads in flight at once
_done: OrderedDict[str, None] = OrderedDict()


@dataclass(frozen=True, slots=True)
class AlertReport:
    opens: int  # opens seen in the listed buckets
    checked: int  # messages looked up
    created: int  # alerts made


def _remember(message_id: str) -> None:
    _done[message_id] = None
    _done.move_to_end(message_id)
    while len(_done) > _REMEMBERED:
        _done.popitem(last=False)


def _first_counted(opens: list[Event], sent_at: datetime) -> Event | None:
    """The first open after sending that no scanner made (earlier ones are the seller's
    previews; the fold may still find a scanner the per-event stage did not)."""
    counted = [e for e in opens if e.at >= sent_at and label_event(e, sent_at).label != "scanner"]
    return min(counted, key=lambda e: e.at) if counted else None


async def _check(store: Store, message_id: str, opens: list[Event]) -> bool:
    try:
        entity = await store.messages.get_entity(partition_of(message_id), message_id)
    except ResourceNotFoundError:
        return False  # not a message of ours (or being erased): nothing to alert
    if entity.get("follow_state") != "followed" or opened_by_someone(from_columns(entity)):
        _remember(message_id)  # not followed, or already opened (and alerted) before
        return False
    if not entity.get("sent_at"):
        return False  # a preview of a draft; the real first open is still to come
    first = _first_counted(opens, datetime.fromisoformat(entity["sent_at"]))
    if first is None:
        return False
    created = await alerts.first_open(store, dict(entity), first.at)
    _remember(message_id)
    return created


async def first_open_cycle(store: Store, now: datetime) -> AlertReport:
    """Alert on every message opened for the first time in the last 10-20 seconds."""
    buckets = {bucket_of(now - timedelta(seconds=BUCKET_SECONDS)), bucket_of(now)}
    listed = await asyncio.gather(*(list_events(store, f"{b}/") for b in sorted(buckets)))
    by_message: dict[str, list[Event]] = {}
    for event in (e for group in listed for e in group):
        if event.kind == "open" and event.message_id not in _done:
            by_message.setdefault(event.message_id, []).append(event)
    limit = asyncio.Semaphore(_LOOKUPS)

    async def check(message_id: str, opens: list[Event]) -> bool:
        async with limit:
            return await _check(store, message_id, opens)

    made = await asyncio.gather(*(check(m, o) for m, o in by_message.items()))
    return AlertReport(
        opens=sum(len(o) for o in by_message.values()),
        checked=len(by_message),
        created=sum(made),
    )
