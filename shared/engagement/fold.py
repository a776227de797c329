"""Folding recorded events into KPIs and the events table.

The work is split into SHARDS shards by a hash of the message id (shared.tracking.events),
each with its own cursor (shared.engagement.shards), so several workers fold disjoint
messages side by side. A fold of one shard reads the closed time buckets since its cursor
(one listing per bucket, or per hour when catching up; metadata included, so no blob is
downloaded) and folds their messages partition by partition (a partition is one owner's):
- the partition's message rows, read by queries of 14 ids;
- each message's new events labelled with the context the labels need (its folded events
  of the last 15 minutes, read only for a message with a recent event);
- then the partition's event rows, in transactions of up to 100; the milestones; the KPI
  updates, in etag-conditional transactions of up to 100 (one that meets a row changed
  since it was read is redone message by message, re-reading each); and the rows of revised
  events.
Doubled or racing folds are harmless: rows are upserts and KPIs skip buckets they hold.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import partial
from typing import Any, TypeVar

from azure.core import MatchConditions
from azure.core.exceptions import (
    HttpResponseError,
    ResourceModifiedError,
    ResourceNotFoundError,
    ServiceRequestError,
)
from azure.data.tables import UpdateMode

from shared.classification.classifier import FIRST_MINUTES_SECONDS
from shared.classification.message_rules import FLOOD_WINDOW_SECONDS
from shared.core import blob_listing, list_index, table_queries, telemetry, transactions
from shared.core.ids import partition_of
from shared.core.services import OpenEvidence, Services
from shared.core.storage import Store
from shared.engagement import history, shards
from shared.engagement.kpis import Kpis, fold, from_columns, to_columns
from shared.tracking.events import (
    BUCKET_SECONDS,
    SHARDS,
    Event,
    bucket_of,
    bucket_prefix,
    bucket_start,
    event_from_blob,
    last_closed_bucket,
    next_bucket,
    shard_of,
    shard_of_blob,
)
from shared.tracking.labelling import Labelled, first_counted_open, label_message, open_evidence

logger = logging.getLogger(__name__)
_MAX_PENDING_BUCKETS = 60  # ten minutes: past that the cycle is behind, and says so
_LISTINGS_AT_ONCE = 8  # bucket listings made together, when keeping up
_BATCH = 100  # table transactions take at most 100 operations
_IDS_PER_QUERY = 14  # a filter takes at most 15 comparisons: the partition and 14 ids
_CONCURRENCY = 32  # storage requests in flight in one fold
_TRIES = 3  # of a storage call whose connection failed
# How far back the message stage looks: floods (10 min), sweeps and bursts (seconds), the
# first minutes after sending (15 min); revisions look back REVISION_SECONDS.
_CONTEXT = timedelta(seconds=max(FLOOD_WINDOW_SECONDS, FIRST_MINUTES_SECONDS))
_CONTEXT_COLUMNS = [
    "kind", "index", "at", "user_agent", "ip", "method", "has_accept", "label", "reasons", "copy",
]  # fmt: skip
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class FoldReport:
    """What one fold did (of one shard, or of all of them)."""

    cursor: str
    buckets: int
    events: int
    messages: int
    orphans: int


def _parse_time(value: str) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


async def read_cursor(store: Store, message_id: str) -> str:
    """The newest bucket of which every event of the message is folded ("" if none)."""
    return (await shards.read(store)).folded(message_id)


async def list_events(store: Store, prefix: str) -> list[Event]:
    """The events under a blob prefix (a bucket, a bucket and a shard...), from one listing."""
    return [event for _, event in await _listed(store, prefix)]


async def _listed(store: Store, prefix: str) -> list[tuple[int | None, Event]]:
    """The events under a blob prefix, each with its shard (None: the legacy layout)."""
    events = []
    async for name, metadata in blob_listing.names_and_metadata(store.interactions, prefix):
        event = event_from_blob(name, metadata)
        if event is not None:
            events.append((shard_of_blob(name), event))
    return events


def _chunks(after: str, through: str, prefix: str) -> list[tuple[str, str]]:
    """(listing prefix, newest bucket it covers) for the buckets in (after, through]: one
    listing per bucket when the cycle is keeping up (a few, mostly empty; `prefix` after the
    bucket narrows it to a shard), one per hour when it is catching up (every shard's), so
    that neither case lists the same events again and again."""
    buckets: list[str] = []
    bucket = next_bucket(after)
    while bucket <= through and len(buckets) <= _MAX_PENDING_BUCKETS:
        buckets.append(bucket)
        bucket = next_bucket(bucket)
    if len(buckets) <= _MAX_PENDING_BUCKETS:
        return [(f"{b}/{prefix}", b) for b in buckets]
    start = bucket_start(next_bucket(after)).replace(minute=0, second=0)
    chunks = []
    while start <= bucket_start(through):
        hour_last = bucket_of(start + timedelta(seconds=3600 - BUCKET_SECONDS))
        chunks.append((start.strftime("%Y%m%d%H"), min(through, hour_last)))
        start += timedelta(hours=1)
    return chunks


async def _bounded(limit: asyncio.Semaphore, work: Callable[[], Awaitable[_T]]) -> _T:
    """One storage call among at most `limit` in flight, tried again when its connection
    failed (a pooled connection the server had closed: every call here is safe to repeat,
    being an upsert, a read or conditional on an etag)."""
    async with limit:
        for attempt in range(_TRIES):
            try:
                return await work()
            except ServiceRequestError:
                if attempt == _TRIES - 1:
                    raise
        raise AssertionError("unreachable")


async def _submit(
    table: Any, operations: Sequence[tuple[Any, ...]], limit: asyncio.Semaphore
) -> None:
    """Table transactions of up to 100 operations, side by side (one partition each)."""
    chunks = [operations[i : i + _BATCH] for i in range(0, len(operations), _BATCH)]
    await asyncio.gather(
        *(_bounded(limit, partial(transactions.submit, table, list(c))) for c in chunks)
    )


def _recount(
    current: Kpis, events: list[Event], sent_at: datetime | None, counted: frozenset[str]
) -> Kpis:
    """The KPIs counted again from every event of the message up to the newest bucket this
    fold covers (a revision changed labels already counted); replies are counted elsewhere."""
    limit = max(current.folded_bucket, max(e.bucket for e in events))
    upto = [e for e in events if e.bucket <= limit]
    return replace(fold(Kpis(replies=current.replies), upto, sent_at, counted), folded_bucket=limit)


def _opened_before(kpis: Kpis) -> frozenset[str]:
    """The copies ("" for a message sent to everyone at once) opened by other than a
    scanner before the context the fold reads (a click after that is not one "without an
    open")."""
    tally = kpis.by_class.get("open", {})
    group = {""} if any(n for label, n in tally.items() if label != "scanner") else set()
    return frozenset({*group, *(str(c) for c, k in kpis.by_copy.items() if k.opens)})


def _taken_back(before: list[Event], after: list[Event], counted: frozenset[str]) -> str:
    """Why opens once counted are not any more: the new class and reasons of the first."""
    now = {e.event_id: e for e in after}
    for event in sorted(before, key=lambda e: e.at):
        later = now.get(event.event_id)
        if event.kind == "open" and event.label in counted and later and later.label not in counted:
            return f"judged {later.label} on later evidence: {' '.join(later.reasons)}"
    return "no open is counted any more"


async def _folded_events(
    store: Store, message_id: str, skip: set[str], since: datetime | None = None
) -> list[Event]:
    """The message's events already folded (the context of the message-level stage), all
    of them or those from `since` on."""
    rows = await history.read(store, message_id, since=since, select=_CONTEXT_COLUMNS)
    return [
        history.to_event(message_id, row)
        for row in rows
        if row["event_id"] not in skip and row.get("kind") in history.TRACKED
    ]


@dataclass(frozen=True, slots=True)
class _Change:
    """What one fold of one message changed: its events before and after labelling (new
    ones and revised ones), and the whole history as now labelled."""

    before: list[Event]
    after: list[Event]
    history: list[Event]


@dataclass(slots=True)
class _Plan:
    """One message's new events, labelled, and what they do to it."""

    entity: Any
    events: list[Event]
    labelled: Labelled
    folded: list[Event]  # the context read (the whole history when a label was revised)
    sent_at: datetime | None
    revised: dict[str, Event] = field(default_factory=dict)

    @property
    def message_id(self) -> str:
        return str(self.entity["RowKey"])

    @property
    def change(self) -> _Change:
        return _Change(
            before=[*self.events, *(e for e in self.folded if e.event_id in self.revised)],
            after=[*self.labelled.new, *self.labelled.revised],
            history=[self.revised.get(e.event_id, e) for e in self.folded] + self.labelled.new,
        )

    def updated(self, current: Kpis, counted: frozenset[str]) -> Kpis:
        if self.revised:
            return _recount(current, self.change.history, self.sent_at, counted)
        return fold(current, self.labelled.new, self.sent_at, counted)


async def _plan(
    services: Services, entity: Any, events: list[Event], limit: asyncio.Semaphore
) -> _Plan:
    """Label a message's new events, judged with its folded ones (revising those still
    within the revision window)."""
    store = services.store
    message_id = str(entity["RowKey"])
    sent_at = _parse_time(entity.get("sent_at", ""))
    window = timedelta(seconds=services.settings.revision_seconds)
    ids = {e.event_id for e in events}
    # The context the labels need: what the message stage looks back at. A message whose
    # newest folded event is older than that (most are) needs no read at all.
    since = min(e.at for e in events) - max(window, _CONTEXT)
    stored = from_columns(entity)
    newest = stored.folded_bucket
    recent = bool(newest) and bucket_start(newest) + timedelta(seconds=BUCKET_SECONDS) >= since
    folded = (
        await _bounded(limit, partial(_folded_events, store, message_id, ids, since))
        if recent
        else []
    )
    link_count = int(entity.get("link_count") or 0)
    opened = _opened_before(stored)
    labelled = label_message(events, folded, sent_at, link_count, window, opened_before=opened)
    revised = {e.event_id: e for e in labelled.revised}
    if revised:  # the KPIs are counted again from the whole history (rare: a full read)
        folded = await _bounded(limit, partial(_folded_events, store, message_id, ids))
    return _Plan(entity, events, labelled, folded, sent_at, revised)


def _record_telemetry(events: Iterable[Event]) -> None:
    for (kind, label), n in Counter((e.kind, e.label or "unknown") for e in events).items():
        telemetry.record_events(kind, label, n)


def _kpi_write(entity: Any, updated: Kpis) -> list[list_index.Operation]:
    """The etag-conditional update of a message's KPIs, with the list index's changes."""
    patch = {"PartitionKey": entity["PartitionKey"], "RowKey": entity["RowKey"]}
    patch.update(to_columns(updated))
    condition = {
        "mode": UpdateMode.MERGE,
        "etag": entity.metadata["etag"],
        "match_condition": MatchConditions.IfNotModified,
    }
    return [("update", patch, condition), *list_index.index_operations(entity, {**entity, **patch})]


def _transactions(writes: list[list[list_index.Operation]]) -> list[list[int]]:
    """The messages' writes grouped into transactions of at most 100 operations (a message's
    write is never split): the indexes into `writes` of each."""
    groups: list[list[int]] = []
    size = _BATCH
    for n, write in enumerate(writes):
        if size + len(write) > _BATCH:
            groups.append([])
            size = 0
        groups[-1].append(n)
        size += len(write)
    return groups


async def apply_events(
    services: Services,
    message_id: str,
    events: list[Event],
    now: datetime | None = None,
    limit: asyncio.Semaphore | None = None,
) -> bool:
    """Fold one message's new events on their own (re-reading the message when it changed
    under the fold); False when the message does not exist."""
    store, counted = services.store, services.settings.counted
    limit = limit or asyncio.Semaphore(_CONCURRENCY)
    keys = {"partition_key": partition_of(message_id), "row_key": message_id}
    try:
        entity = await store.messages.get_entity(**keys)
    except ResourceNotFoundError:
        return False
    plan = await _plan(services, entity, events, limit)
    # New rows first, revised ones after the KPIs: a crash in between leaves the revised
    # rows with their old labels, so the retry finds the revision again and counts once.
    await _submit(
        store.events, [("upsert", history.event_row(e)) for e in plan.labelled.new], limit
    )
    _record_telemetry(plan.labelled.new)
    for _ in range(20):
        current = from_columns(entity)
        updated = plan.updated(current, counted)
        if updated == current:
            break
        await _milestones(services, entity, current, updated, plan.change, now or services.clock())
        patch = {"PartitionKey": entity["PartitionKey"], "RowKey": message_id}
        patch.update(to_columns(updated))
        try:
            await list_index.update_message(
                store.messages, entity, patch, str(entity.metadata["etag"])
            )
            break
        except ResourceModifiedError:
            # someone else changed the message: read again and re-fold
            try:
                entity = await store.messages.get_entity(**keys)
            except ResourceNotFoundError:
                return False
    else:
        raise RuntimeError("message KPIs kept changing under the fold")
    await _submit(
        store.events, [("upsert", history.event_row(e)) for e in plan.labelled.revised], limit
    )
    return True


async def _read_messages(
    store: Store, partition: str, ids: list[str], limit: asyncio.Semaphore
) -> dict[str, Any]:
    """The message rows of a partition with these ids, by queries of 14 ids."""

    async def query(chunk: list[str]) -> list[Any]:
        names = [f"r{i}" for i in range(len(chunk))]
        wanted = " or ".join(f"RowKey eq @{n}" for n in names)
        parameters = {"pk": partition, **dict(zip(names, chunk, strict=True))}
        return [
            row
            async for row in table_queries.query(
                store.messages, f"PartitionKey eq @pk and ( {wanted} )", parameters=parameters
            )
        ]

    chunks = [ids[i : i + _IDS_PER_QUERY] for i in range(0, len(ids), _IDS_PER_QUERY)]
    found = await asyncio.gather(*(_bounded(limit, partial(query, c)) for c in chunks))
    return {str(row["RowKey"]): row for rows in found for row in rows}


async def _fold_partition(
    services: Services,
    partition: str,
    by_message: dict[str, list[Event]],
    now: datetime,
    limit: asyncio.Semaphore,
) -> int:
    """Fold the new events of one partition's messages; how many events had no message."""
    store, counted = services.store, services.settings.counted
    entities = await _read_messages(store, partition, list(by_message), limit)
    orphans = sum(len(items) for m, items in by_message.items() if m not in entities)
    plans = await asyncio.gather(
        *(_plan(services, entity, by_message[m], limit) for m, entity in entities.items())
    )
    await _submit(
        store.events,
        [("upsert", history.event_row(e)) for p in plans for e in p.labelled.new],
        limit,
    )
    _record_telemetry(e for p in plans for e in p.labelled.new)
    changed = []
    for plan in plans:
        current = from_columns(plan.entity)
        updated = plan.updated(current, counted)
        if updated != current:
            changed.append((plan, current, updated))
    # Before the KPIs are written, so a crash in between loses nothing (both sides are
    # idempotent). First opens all at once (alerts batched per seller), the rest (opens
    # taken back: rare) one by one.
    firsts = [
        (p, _first_open(p.entity, current, updated, p.change, counted))
        for p, current, updated in changed
    ]
    opened = [(p.entity, first) for p, first in firsts if first is not None]
    if opened:
        await services.milestones.opened_all(opened, now)
    await asyncio.gather(
        *(
            _bounded(
                limit, partial(_milestones, services, p.entity, current, updated, p.change, now)
            )
            for (p, current, updated), (_, first) in zip(changed, firsts, strict=True)
            if first is None
        )
    )
    writes = [_kpi_write(p.entity, updated) for p, _, updated in changed]
    groups = [
        ([changed[n] for n in group], [op for n in group for op in writes[n]])
        for group in _transactions(writes)
    ]

    async def write(group: list[tuple[_Plan, Kpis, Kpis]], operations: list[Any]) -> int:
        try:
            await _bounded(limit, partial(transactions.submit, store.messages, operations))
        except HttpResponseError:
            # a message changed (a reply, a racing fold) or went since it was read: each
            # message of the transaction on its own, re-read
            results = await asyncio.gather(
                *(apply_events(services, p.message_id, p.events, now, limit) for p, _, _ in group)
            )
            return sum(
                len(p.events) for (p, _, _), ok in zip(group, results, strict=True) if not ok
            )
        await _submit(
            store.events,
            [("upsert", history.event_row(e)) for p, _, _ in group for e in p.labelled.revised],
            limit,
        )
        return 0

    return orphans + sum(await asyncio.gather(*(write(g, ops) for g, ops in groups)))


async def fold_events(
    services: Services, events: list[Event], now: datetime, limit: asyncio.Semaphore
) -> tuple[int, int]:
    """Fold a set of new events (messages, orphans)."""
    by_partition: dict[str, dict[str, list[Event]]] = defaultdict(lambda: defaultdict(list))
    for event in events:
        by_partition[partition_of(event.message_id)][event.message_id].append(event)
    async with asyncio.TaskGroup() as group:  # a failure cancels the rest: all redone
        tasks = [
            group.create_task(_fold_partition(services, p, dict(m), now, limit))
            for p, m in by_partition.items()
        ]
    messages = sum(len(m) for m in by_partition.values())
    return messages, sum(task.result() for task in tasks)


def _first_open(
    entity: Any, current: Kpis, updated: Kpis, change: _Change, counted: frozenset[str]
) -> OpenEvidence | None:
    """The message's first counted open, if this fold counts it."""
    if not (current.opens == 0 and updated.opens > 0):
        return None
    sent_at = _parse_time(entity.get("sent_at", ""))
    first = first_counted_open(change.history, sent_at, counted) if sent_at else None
    return None if first is None else open_evidence(first)


async def _milestones(
    services: Services,
    entity: Any,
    current: Kpis,
    updated: Kpis,
    change: _Change,
    now: datetime,
) -> None:
    """The first counted open raises the first-open alert (and counts the message opened for
    its template); a fold that leaves no counted open takes both back, with the reason.
    Called before the KPIs are written, so a crash in between loses nothing (both sides
    are idempotent)."""
    counted = services.settings.counted
    first = _first_open(entity, current, updated, change, counted)
    if first is not None:
        await services.milestones.opened(entity, first, now)
    elif updated.opens == 0 and any(e.kind == "open" and e.label in counted for e in change.before):
        # Counted before (or by the alert cycle's first look, which may have alerted on it),
        # and not now: take the open back.
        reason = _taken_back(change.before, change.after, counted)
        await services.milestones.unopened(entity, reason, now)


Shard = int | None  # a shard, or None for the legacy layout


async def _fold_range(
    services: Services,
    cursors: dict[Shard, shards.Cursor],
    through: str,
    now: datetime,
    limit: asyncio.Semaphore,
) -> FoldReport:
    """Fold the buckets of some shards (or of the legacy layout) from each one's cursor to
    `through`, listing each bucket once for all of them, and move their cursors after each
    listing that found events, and at the end."""
    store = services.store
    cursors = {k: c for k, c in cursors.items() if c.bucket < through}
    if not cursors:
        return FoldReport(through, 0, 0, 0, 0)
    events_total = messages = orphans = buckets = 0
    narrow = f"{next(iter(cursors)):02d}/" if len(cursors) == 1 and None not in cursors else ""
    start = min(c.bucket for c in cursors.values())
    chunks = _chunks(start, through, narrow)
    # Keeping up (a chunk per bucket, ten minutes at most): the buckets are listed 8 at once
    # and the cursors saved once at the end (a crash folds those minutes again: folding is
    # idempotent). Catching up (a chunk per hour): one listing at a time, and the cursors
    # saved after each hour with events.
    hourly = len(chunks) > _MAX_PENDING_BUCKETS
    step = 1 if hourly else _LISTINGS_AT_ONCE
    for first in range(0, len(chunks), step):
        batch = chunks[first : first + step]
        async with asyncio.TaskGroup() as group:  # a failure cancels the others: all redone
            listings = [group.create_task(_listed(store, prefix)) for prefix, _ in batch]
        for n, ((_, chunk_end), listing) in enumerate(zip(batch, listings, strict=True), first):
            events = [
                e
                for shard, e in listing.result()
                if (cursor := cursors.get(shard)) and cursor.bucket < e.bucket <= through
            ]
            if events:
                folded, lost = await fold_events(services, events, now, limit)
                messages, orphans = messages + folded, orphans + lost
                events_total += len(events)
                buckets += len({e.bucket for e in events})
            if (events and hourly) or n == len(chunks) - 1:
                cursors = await _save_all(store, cursors, chunk_end)
                if not cursors:
                    break  # racing folds own every cursor now; they did the same work
        if not cursors:
            break
    if orphans:
        logger.warning("fold dropped %s events of unknown messages", orphans)
    return FoldReport(through, buckets, events_total, messages, orphans)


async def _save_all(
    store: Store, cursors: dict[Shard, shards.Cursor], bucket: str
) -> dict[Shard, shards.Cursor]:
    """Move each cursor behind `bucket` to it; those someone else moved meanwhile are left
    out of what follows (that fold does the same work)."""

    async def save(shard: Shard, cursor: shards.Cursor) -> shards.Cursor | None:
        if cursor.bucket >= bucket:
            return cursor
        key = shards.LEGACY if shard is None else shards.row_key(shard)
        return await shards.save(store, key, bucket, cursor)

    moved = await asyncio.gather(*(save(k, c) for k, c in cursors.items()))
    return {k: c for k, c in zip(cursors, moved, strict=True) if c is not None}


async def _first_buckets(store: Store) -> tuple[str | None, str | None]:
    """The earliest bucket with an event, and whether it holds legacy ones (names without a
    shard: the previous version's events, if any, are older than any sharded one)."""
    async for item in store.interactions.walk_blobs(delimiter="/"):
        bucket = str(item.name)
        async for inner in store.interactions.walk_blobs(name_starts_with=bucket, delimiter="/"):
            second = str(inner.name)[len(bucket) :].rstrip("/")
            if not (len(second) == 2 and second.isdigit()):
                return bucket.rstrip("/"), bucket.rstrip("/")
        return bucket.rstrip("/"), None
    return None, None


def _before(bucket: str) -> str:
    return bucket_of(bucket_start(bucket) - timedelta(seconds=BUCKET_SECONDS))


def _closed(
    services: Services, now: datetime | None, grace: timedelta | None
) -> tuple[datetime, str]:
    moment = now or services.clock()
    return moment, last_closed_bucket(moment, services.grace if grace is None else grace)


async def _shard_cursors(
    services: Services, cursors: shards.Cursors, wanted: list[int], through: str
) -> dict[Shard, shards.Cursor]:
    """The cursors of these shards, made for those folded for the first time (from before
    the first sharded event)."""
    store = services.store
    missing = [k for k in wanted if k not in cursors.shards]
    if missing:
        start = min(cursors.shards_from or through, through)
        await asyncio.gather(*(shards.save(store, shards.row_key(k), start, None) for k in missing))
        cursors = await shards.read(store)
    return {k: cursors.shards[k] for k in wanted}


async def fold_shards(
    services: Services,
    which: Iterable[int] = range(SHARDS),
    *,
    now: datetime | None = None,
    grace: timedelta | None = None,
) -> FoldReport:
    """Fold every closed bucket of some shards (all by default: one worker alone), each from
    its cursor, listing each bucket once for all of them. Nothing while events of the
    layout before shards remain: `fold_cycle` folds both layouts together then. Safe to run
    twice or concurrently, beside workers folding other shards or the same ones."""
    moment, closed = _closed(services, now, grace)
    cursors = await shards.read(services.store)
    if not cursors.legacy_done:
        return FoldReport("", 0, 0, 0, 0)
    mine = await _shard_cursors(services, cursors, list(which), closed)
    return await _fold_range(services, mine, closed, moment, asyncio.Semaphore(_CONCURRENCY))


async def started_cursors(services: Services, moment: datetime, closed: str) -> shards.Cursors:
    """Every cursor, the legacy layout's started if this is the first sharded run."""
    store = services.store
    cursors = await shards.read(store)
    if not cursors.legacy_started:
        first, legacy = await _first_buckets(store) if cursors.legacy is None else (None, None)
        legacy_from = _before(legacy) if legacy else None
        await shards.start_legacy(
            store, legacy_from, _before(first) if first else None, closed, moment
        )
        cursors = await shards.read(store)
    return cursors


async def fold_cycle(
    services: Services, *, now: datetime | None = None, grace: timedelta | None = None
) -> FoldReport:
    """Fold everything closed in this worker: every shard, and while events of the layout
    before shards may still come, those too, in the same listings (a message's events of
    one bucket must be folded together, whatever their names). Safe to run twice or
    concurrently."""
    moment, closed = _closed(services, now, grace)
    cursors = await started_cursors(services, moment, closed)
    if cursors.legacy_done or cursors.legacy is None:
        return await fold_shards(services, now=moment, grace=grace)
    everything = await _shard_cursors(services, cursors, list(range(SHARDS)), closed)
    everything[None] = cursors.legacy
    return await _fold_range(services, everything, closed, moment, asyncio.Semaphore(_CONCURRENCY))


async def pending_events(
    store: Store, message_id: str, after: str, now: datetime, *, legacy: bool = False
) -> list[Event] | None:
    """Events of one message in buckets newer than `after`, up to now (not yet folded); with
    `legacy`, those recorded without a shard too. None when that is more than the pending
    window: the cycle is behind."""
    buckets: list[str] = []
    bucket, newest = next_bucket(after), bucket_of(now)
    while bucket <= newest:
        buckets.append(bucket)
        if len(buckets) > _MAX_PENDING_BUCKETS:
            return None
        bucket = next_bucket(bucket)
    shard = shard_of(message_id)
    prefixes = [f"{bucket_prefix(shard, b)}{message_id}/" for b in buckets]
    if legacy:
        prefixes += [f"{b}/{message_id}/" for b in buckets]
    found = await asyncio.gather(*(list_events(store, p) for p in prefixes))
    return [e for group in found for e in group]
