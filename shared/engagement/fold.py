"""Folding recorded events into KPIs and the events table.

A cycle reads the closed time buckets since its cursor (one listing per hour of events,
metadata included, so no blob is downloaded), groups their events by message, writes each
event as a row (the full history) and merges the KPIs with an optimistic-concurrency update.
Doubled or racing cycles are harmless: rows are upserts and KPIs skip buckets they hold.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter, defaultdict
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from azure.core.exceptions import (
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)

from shared.classification.classifier import FIRST_MINUTES_SECONDS
from shared.classification.message_rules import FLOOD_WINDOW_SECONDS
from shared.core import telemetry
from shared.core.ids import partition_of
from shared.core.services import Services
from shared.core.storage import Store, update_if_unchanged
from shared.engagement.kpis import (
    Kpis,
    fold,
    from_columns,
    occurrence,
    to_columns,
)
from shared.tracking.events import (
    BUCKET_SECONDS,
    Event,
    bucket_of,
    bucket_start,
    event_from_blob,
    last_closed_bucket,
    next_bucket,
)
from shared.tracking.labelling import first_counted_open, label_message, open_evidence

logger = logging.getLogger(__name__)
_CURSOR_KEYS = {"PartitionKey": "fold", "RowKey": "cursor"}
_MAX_PENDING_BUCKETS = 60  # ten minutes: past that the cycle is behind, and says so
_BATCH = 100  # table transactions take at most 100 operations
_CONCURRENCY = 32  # messages folded at once in a cycle
# How far back the message stage looks: floods (10 min), sweeps and bursts (seconds), the
# first minutes after sending (15 min); revisions look back REVISION_SECONDS.
_CONTEXT = timedelta(seconds=max(FLOOD_WINDOW_SECONDS, FIRST_MINUTES_SECONDS))
_CONTEXT_COLUMNS = [
    "RowKey", "kind", "index", "at", "user_agent", "ip", "method", "has_accept", "label", "reasons",
    "copy",
]  # fmt: skip


@dataclass(frozen=True, slots=True)
class FoldReport:
    """What one cycle did."""

    cursor: str
    buckets: int
    events: int
    messages: int
    orphans: int


def _parse_time(value: str) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


async def _read_cursor(store: Store) -> tuple[str | None, str | None]:
    try:
        entity = await store.state.get_entity("fold", "cursor")
    except ResourceNotFoundError:
        return None, None
    return str(entity["bucket"]), entity.metadata.get("etag")


async def read_cursor(store: Store) -> str | None:
    """The newest bucket every message has absorbed."""
    return (await _read_cursor(store))[0]


async def _earliest_bucket(store: Store) -> str | None:
    async for item in store.interactions.walk_blobs(delimiter="/"):
        return str(item.name).rstrip("/")
    return None


async def list_events(store: Store, prefix: str) -> list[Event]:
    """The events under a blob prefix (a bucket, or a bucket and a message), from one listing."""
    events = []
    async for blob in store.interactions.list_blobs(name_starts_with=prefix, include=["metadata"]):
        event = event_from_blob(blob.name, blob.metadata or {})
        if event is not None:
            events.append(event)
    return events


def _chunks(after: str, through: str) -> list[tuple[str, str]]:
    """(listing prefix, newest bucket it covers) for the buckets in (after, through]: one
    listing per bucket when the cycle is keeping up (a few, mostly empty), one per hour when
    it is catching up, so that neither case lists the same events again and again."""
    buckets: list[str] = []
    bucket = next_bucket(after)
    while bucket <= through and len(buckets) <= _MAX_PENDING_BUCKETS:
        buckets.append(bucket)
        bucket = next_bucket(bucket)
    if len(buckets) <= _MAX_PENDING_BUCKETS:
        return [(b, b) for b in buckets]
    start = bucket_start(next_bucket(after)).replace(minute=0, second=0)
    chunks = []
    while start <= bucket_start(through):
        hour_last = bucket_of(start + timedelta(seconds=3600 - BUCKET_SECONDS))
        chunks.append((start.strftime("%Y%m%d%H"), min(through, hour_last)))
        start += timedelta(hours=1)
    return chunks


async def _write_rows(store: Store, message_id: str, events: list[Event]) -> None:
    rows = [
        (
            "upsert",
            {
                "PartitionKey": message_id,
                "RowKey": e.event_id,
                "kind": e.kind,
                "index": e.index,
                "at": e.at.isoformat(),
                "bucket": e.bucket,
                "device": occurrence(e).device,
                "user_agent": e.user_agent,
                "ip": e.ip,
                "method": e.method,
                "has_accept": e.has_accept,
                "label": e.label,
                "reasons": " ".join(e.reasons),
                "copy": e.copy,
            },
        )
        for e in events
    ]
    for start in range(0, len(rows), _BATCH):
        await store.events.submit_transaction(rows[start : start + _BATCH])


async def _folded_events(
    store: Store, message_id: str, skip: set[str], since: datetime | None = None
) -> list[Event]:
    """The message's events already folded (the context of the message-level stage), all
    of them or those from `since` on (event ids begin with their time)."""
    query, parameters = "PartitionKey eq @pk", {"pk": message_id}
    if since is not None:
        query += " and RowKey ge @since"
        parameters["since"] = f"{max(0, int(since.timestamp() * 1000)):012x}"
    found = []
    async for row in store.events.query_entities(
        query, parameters=parameters, select=_CONTEXT_COLUMNS
    ):
        if row["RowKey"] in skip or row.get("kind") not in ("open", "click", "attachment"):
            continue
        found.append(
            Event(
                event_id=row["RowKey"],
                message_id=message_id,
                kind=row["kind"],
                index=int(row["index"]),
                at=datetime.fromisoformat(row["at"]),
                user_agent=row.get("user_agent") or "",
                ip=row.get("ip") or "",
                method=row.get("method") or "GET",
                has_accept=bool(row.get("has_accept", True)),
                label=row.get("label") or "",
                reasons=tuple((row.get("reasons") or "").split()),
                copy=int(row.get("copy") or 0),
            )
        )
    return found


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


async def apply_events(
    services: Services, message_id: str, events: list[Event], now: datetime | None = None
) -> bool:
    """Label one message's new events (judged with its folded ones, revising those still
    within the revision window), record them in the events table and merge them into its
    KPIs; False when the message does not exist."""
    store, counted = services.store, services.settings.counted
    keys = {"partition_key": partition_of(message_id), "row_key": message_id}
    try:
        entity = await store.messages.get_entity(**keys)
    except ResourceNotFoundError:
        return False
    sent_at = _parse_time(entity.get("sent_at", ""))
    window = timedelta(seconds=services.settings.revision_seconds)
    ids = {e.event_id for e in events}
    # The context the labels need: what the message stage looks back at. A message whose
    # newest folded event is older than that (most are) needs no read at all.
    since = min(e.at for e in events) - max(window, _CONTEXT)
    stored = from_columns(entity)
    newest = stored.folded_bucket
    recent = bool(newest) and bucket_start(newest) + timedelta(seconds=BUCKET_SECONDS) >= since
    folded = await _folded_events(store, message_id, ids, since) if recent else []
    link_count = int(entity.get("link_count") or 0)
    opened = _opened_before(stored)
    labelled = label_message(events, folded, sent_at, link_count, window, opened_before=opened)
    revised = {e.event_id: e for e in labelled.revised}
    if revised:  # the KPIs are counted again from the whole history (rare: a full read)
        folded = await _folded_events(store, message_id, ids)
    # New rows first, revised ones after the KPIs: a crash in between leaves the revised
    # rows with their old labels, so the retry finds the revision again and counts once.
    await _write_rows(store, message_id, labelled.new)
    for (kind, label), n in Counter((e.kind, e.label or "unknown") for e in labelled.new).items():
        telemetry.record_events(kind, label, n)
    history = [revised.get(e.event_id, e) for e in folded] + labelled.new
    change = _Change(
        before=[*events, *(e for e in folded if e.event_id in revised)],
        after=[*labelled.new, *labelled.revised],
        history=history,
    )
    for _ in range(20):
        current = from_columns(entity)
        if revised:
            updated = _recount(current, history, sent_at, counted)
        else:
            updated = fold(current, labelled.new, sent_at, counted)
        if updated == current:
            break
        await _milestones(services, entity, current, updated, change, now or services.clock())
        patch: dict[str, Any] = {
            "PartitionKey": keys["partition_key"],
            "RowKey": message_id,
            **to_columns(updated),
        }
        try:
            await update_if_unchanged(store.messages, patch, entity.metadata["etag"])
            break
        except ResourceModifiedError:
            # someone else changed the message: read again and re-fold
            try:
                entity = await store.messages.get_entity(**keys)
            except ResourceNotFoundError:
                return False
    else:
        raise RuntimeError("message KPIs kept changing under the fold")
    await _write_rows(store, message_id, labelled.revised)
    return True


@dataclass(frozen=True, slots=True)
class _Change:
    """What one fold of one message changed: its events before and after labelling (new
    ones and revised ones), and the whole history as now labelled."""

    before: list[Event]
    after: list[Event]
    history: list[Event]


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
    if current.opens == 0 and updated.opens > 0:
        sent_at = _parse_time(entity.get("sent_at", ""))
        first = first_counted_open(change.history, sent_at, counted) if sent_at else None
        if first is not None:
            await services.milestones.opened(entity, open_evidence(first), now)
    elif updated.opens == 0 and any(e.kind == "open" and e.label in counted for e in change.before):
        # Counted before (or by the alert cycle's first look, which may have alerted on it),
        # and not now: take the open back.
        reason = _taken_back(change.before, change.after, counted)
        await services.milestones.unopened(entity, reason, now)


async def _save_cursor(store: Store, bucket: str, etag: str | None) -> str | None:
    entity = {**_CURSOR_KEYS, "bucket": bucket}
    try:
        if etag is None:
            await store.state.create_entity(entity)
        else:
            await update_if_unchanged(store.state, entity, etag, replace=True)
    except (ResourceExistsError, ResourceModifiedError):
        return None  # another cycle moved it; ours did the same work, idempotently
    return (await _read_cursor(store))[1]


async def fold_cycle(
    services: Services, *, now: datetime | None = None, grace: timedelta | None = None
) -> FoldReport:
    """Fold every closed bucket since the cursor. Safe to run twice or concurrently."""
    store = services.store
    moment = now or services.clock()
    closed = last_closed_bucket(moment, services.grace if grace is None else grace)
    cursor, etag = await _read_cursor(store)
    if cursor is None:
        earliest = await _earliest_bucket(store)
        cursor = (
            bucket_of(bucket_start(earliest) - timedelta(seconds=BUCKET_SECONDS))
            if earliest
            else closed
        )
    if cursor >= closed:
        if etag is None:
            await _save_cursor(store, cursor, None)
        return FoldReport(cursor, 0, 0, 0, 0)
    total_events = messages = orphans = buckets = 0
    limit = asyncio.Semaphore(_CONCURRENCY)

    async def apply(message_id: str, items: list[Event]) -> int:
        async with limit:
            return 0 if await apply_events(services, message_id, items, moment) else len(items)

    for prefix, chunk_end in _chunks(cursor, closed):
        events = [e for e in await list_events(store, prefix) if cursor < e.bucket <= closed]
        by_message: dict[str, list[Event]] = defaultdict(list)
        for event in events:
            by_message[event.message_id].append(event)
        async with asyncio.TaskGroup() as group:  # a failure cancels the rest: all redone
            tasks = [group.create_task(apply(m, items)) for m, items in by_message.items()]
        orphans += sum(task.result() for task in tasks)
        total_events += len(events)
        messages += len(by_message)
        buckets += len({e.bucket for e in events})
        etag = await _save_cursor(store, chunk_end, etag)
        if etag is None:
            break  # a racing cycle owns the cursor now; it did the same work
        cursor = chunk_end
    if orphans:
        logger.warning("fold dropped %s events of unknown messages", orphans)
    return FoldReport(cursor, buckets, total_events, messages, orphans)


async def pending_events(
    store: Store, message_id: str, after: str, now: datetime
) -> list[Event] | None:
    """Events of one message in buckets newer than `after`, up to now (not yet folded).
    None when that is more than the pending window: the cycle is behind."""
    buckets: list[str] = []
    bucket, newest = next_bucket(after), bucket_of(now)
    while bucket <= newest:
        buckets.append(bucket)
        if len(buckets) > _MAX_PENDING_BUCKETS:
            return None
        bucket = next_bucket(bucket)
    found = await asyncio.gather(*(list_events(store, f"{b}/{message_id}/") for b in buckets))
    return [e for group in found for e in group]
