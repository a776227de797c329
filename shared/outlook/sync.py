"""The mailbox sync cycle: replies to followed mail, and category, folder and conversation
tracking of Outlook items — like server-side synchronisation, but exact and idempotent.

One cycle per mailbox: make sure the tracking category exists (a failure there is recorded
and never stops reply detection), read each folder's changes with a delta query (large pages,
only the fields needed), act on every changed item, write categories back in $batch requests,
and keep the new delta links. What the cycle needs to decide (the seller's sent mail, the items
and threads it tracks, its failures) is read once at the start, so most items cost no storage
call at all.

Category writes land or fail visibly: a write is retried (throttled ones after their own
Retry-After) until it lands, and one that does not land in the cycle is a failure of its item,
like an item that could not be processed. Failures are retried by the retry cycle, at most
`max_tracking_attempts` times (throttling does not use up attempts); then the item gets the
"(Undeliverable)" category beside its own and is left alone, however often it comes back in
delta, until the user takes the mark off: then it is tried afresh.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

from azure.core.exceptions import ResourceModifiedError

from shared.core import telemetry
from shared.core.services import Services
from shared.outlook.activities import (
    Cycle,
    SyncReport,
    confirm_tracked,
)
from shared.outlook.category_writes import WriteOutcome, write_categories
from shared.outlook.copies import link_copies
from shared.outlook.delta import DeltaExpired, delta_events, delta_messages
from shared.outlook.item_rules import classify
from shared.outlook.item_sync import (
    CategoryWriteFailed,
    clear_failure,
    process_event,
    process_item,
    queue_mark,
    record_failure,
    retry_one,
    set_marked,
)
from shared.outlook.items import MailItem
from shared.outlook.mail import ensure_category
from shared.outlook.mailboxes import all_mailboxes, claim, save
from shared.outlook.replies import load_followed

logger = logging.getLogger(__name__)
_WELL_KNOWN = ("inbox", "sentitems")
_PARALLEL_ITEMS = 16
_CALENDAR = "calendar"
_CALENDAR_BACK = timedelta(days=30)
_CALENDAR_AHEAD = timedelta(days=365)

__all__ = ["SyncReport", "retry_mailbox", "sync_cycle", "sync_mailbox"]


async def _bounded(tasks: list[Awaitable[None]]) -> None:
    gate = asyncio.Semaphore(_PARALLEL_ITEMS)

    async def run(task: Awaitable[None]) -> None:
        async with gate:
            await task

    await asyncio.gather(*(run(t) for t in tasks))


async def _guarded(cycle: Cycle, item: MailItem, folder: str) -> None:
    try:
        await process_item(cycle, item, folder)
    except Exception as error:
        await record_failure(cycle, item.id, folder, error)


async def _sync_folder(cycle: Cycle, folder: str) -> None:
    mailbox, graph = cycle.mailbox, cycle.services.graph()
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


async def _sync_calendar(cycle: Cycle) -> None:
    mailbox, graph, now = cycle.mailbox, cycle.services.graph(), cycle.services.clock()
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
            await record_failure(cycle, event.id, _CALENDAR, error)
    if page.delta_link:
        mailbox.delta_links[_CALENDAR] = page.delta_link


async def _write_categories(cycle: Cycle) -> None:
    """Write the cycle's category decisions. A landed write makes its activity tracked (or its
    item marked); one that did not land is a failure of its item. A failure that makes an
    item Undeliverable queues its mark: one more round writes it."""
    for _ in range(3):  # decisions, then the marks their failures queued, then no more
        if not cycle.writes:
            return
        writes, cycle.writes = cycle.writes, {}
        try:
            outcome = await write_categories(
                cycle.services.graph(), cycle.mailbox.email, [w.change for w in writes.values()]
            )
        except Exception as whole:
            # The call failed as a whole (no permit: storage is down, say): each write is a
            # failure of its item, recorded below, so the retry cycle takes it up.
            logger.warning("category writes failed as a whole: %s", classify(whole))
            outcome = WriteOutcome(failed=dict.fromkeys(writes, 0))
        report = cycle.report
        report.category_writes += len(outcome.landed)
        report.category_retries += outcome.retries
        # Throttling waited out is no error of the mailbox's, but operators watch its rate.
        for _ in range(outcome.throttled):
            telemetry.record_error_class("throttled")
        tracked = []
        for graph_id, write in writes.items():
            if graph_id in outcome.landed and write.mark:
                await set_marked(cycle, graph_id)
            elif graph_id in outcome.landed or graph_id in outcome.gone:
                tracked += [write.activity] if write.activity else []
                await clear_failure(cycle, graph_id)
            else:
                report.category_failures += 1
                error = CategoryWriteFailed(outcome.failed.get(graph_id, 0))
                current, etag = write.change.current, write.change.etag
                await record_failure(
                    cycle, graph_id, write.folder, error, categories=current, etag=etag
                )
        await confirm_tracked(cycle.services, tracked)


async def _open_cycle(services: Services, email: str) -> Cycle | None:
    mailbox = await claim(services, email)
    if mailbox is None:
        return None  # another cycle is syncing this mailbox right now
    rows: dict[str, dict[str, Any]] = {
        row["RowKey"]: dict(row)
        async for row in services.store.mailboxes.query_entities(
            "PartitionKey eq @pk", parameters={"pk": mailbox.key}
        )
    }

    def with_prefix(prefix: str) -> dict[str, dict[str, Any]]:
        return {k[len(prefix) :]: v for k, v in rows.items() if k.startswith(prefix)}

    return Cycle(
        services=services,
        mailbox=mailbox,
        report=SyncReport(mailbox.email),
        known=with_prefix("trk-"),
        failures={row["graph_id"]: row for row in with_prefix("fail-").values()},
        conversations={k: v["activity"] for k, v in with_prefix("conv-").items()},
        followed=await load_followed(services, mailbox.key),
        enrolled=frozenset(m.email for m in await all_mailboxes(services)),
    )


async def _ensure_category(cycle: Cycle) -> None:
    mailbox = cycle.mailbox
    mailbox.category_id, mailbox.category_name = await ensure_category(
        cycle.services.graph(),
        mailbox.email,
        mailbox.category_id or None,
        cycle.services.settings.tracking_category,
    )


async def _close_cycle(cycle: Cycle, *, success: bool) -> None:
    mailbox, now = cycle.mailbox, cycle.services.clock().isoformat()
    mailbox.last_sync_at = now
    if success:
        mailbox.last_success_at = now
    mailbox.items_failing = sum(1 for f in cycle.failures.values() if not f.get("undeliverable"))
    mailbox.undeliverable = sum(1 for f in cycle.failures.values() if f.get("undeliverable"))
    mailbox.items_tracked = len(cycle.known)
    mailbox.lease_until = ""
    try:
        await save(cycle.services, mailbox)
    except ResourceModifiedError:
        logger.warning("mailbox state changed during the cycle; the next cycle catches up")


def _failed(cycle: Cycle, error: BaseException) -> None:
    klass = classify(error)
    telemetry.record_error_class(klass)
    cycle.mailbox.failed(klass, cycle.services.clock(), f"{klass}: {type(error).__name__}")


@asynccontextmanager
async def _running(services: Services, email: str) -> AsyncIterator[Cycle | None]:
    """A mailbox's cycle, from claiming it to saving its state (and its error, if any);
    None when another cycle holds the mailbox."""
    cycle = await _open_cycle(services, email)
    if cycle is None:
        yield None
        return
    try:
        try:
            await _ensure_category(cycle)
        except Exception as error:
            # Replies are counted without the category: go on with the name known (or the
            # configured one); the failure shows in the mailbox's health.
            _failed(cycle, error)
            logger.warning("the tracking category could not be checked: %s", classify(error))
            cycle.mailbox.category_name = (
                cycle.mailbox.category_name or cycle.services.settings.tracking_category
            )
        yield cycle
    except Exception as error:
        _failed(cycle, error)
        await _close_cycle(cycle, success=False)
        raise
    await _close_cycle(cycle, success=True)


async def sync_mailbox(services: Services, email: str) -> SyncReport | None:
    """One sync cycle of one mailbox; None if another cycle holds it."""
    async with _running(services, email) as cycle:
        if cycle is None:
            return None
        for folder in dict.fromkeys([*_WELL_KNOWN, *cycle.mailbox.folders]):
            await _sync_folder(cycle, folder)
        await _sync_calendar(cycle)
        await _write_categories(cycle)
        await link_copies(cycle)
        return cycle.report


async def retry_mailbox(services: Services, email: str) -> SyncReport | None:
    """Try the failed items of one mailbox again (fetching each afresh)."""
    async with _running(services, email) as cycle:
        if cycle is None:
            return None
        for graph_id, row in list(cycle.failures.items()):
            if row.get("undeliverable"):
                if not row.get("marked"):  # its mark did not land yet: write it again
                    queue_mark(cycle, graph_id, None, "", row.get("folder", ""))
                continue
            try:
                await retry_one(cycle, graph_id, row.get("folder", ""))
            except Exception as error:
                await record_failure(cycle, graph_id, row.get("folder", ""), error)
        await _write_categories(cycle)
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
