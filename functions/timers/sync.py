"""The mailbox sync (SYNC_SCHEDULE): replies and tracked Outlook items of every enrolled
mailbox. The sync is imported when it runs: it brings the Graph SDK, which the HTTP
functions of the same app must not pay for.

A thin adapter: the cycle lives in shared/ and is idempotent (timers fire at least once,
sometimes twice)."""

from __future__ import annotations

import logging
from typing import Any

import azure.functions as func

from functions.timers.report import log_cycle
from shared.bootstrap import get_services, import_off_loop
from shared.core import telemetry

logger = logging.getLogger(__name__)
bp = func.Blueprint()  # type: ignore[no-untyped-call]


async def run_sync(timer: func.TimerRequest, *, retry: bool) -> list[Any]:
    """One sync (or retry) cycle of every mailbox, timed; its per-mailbox reports."""
    name = "retry" if retry else "sync"
    sync = await import_off_loop("shared.outlook.sync")
    with telemetry.timed_cycle(name):
        reports: list[Any] = await sync.sync_cycle(get_services(), retry=retry)
    return reports


@bp.timer_trigger(schedule="%SYNC_SCHEDULE%", arg_name="timer", run_on_startup=False)
async def sync_mailboxes(timer: func.TimerRequest) -> None:
    """Replies and tracked items of every enrolled mailbox."""
    reports = await run_sync(timer, retry=False)
    log_cycle(
        logger,
        timer,
        bool(reports),
        "sync: synced %s mailboxes, %s items, %s replies, %s failed",
        len(reports),
        sum(r.items for r in reports),
        sum(r.replies for r in reports),
        sum(r.failed for r in reports),
    )
