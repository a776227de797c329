"""Items that failed to track, tried again (RETRY_SCHEDULE), at most MAX_TRACKING_ATTEMPTS
times; the same cycle as the sync (functions.timers.sync), on the failed items only."""

from __future__ import annotations

import logging

import azure.functions as func

from functions.timers.report import log_cycle
from functions.timers.sync import run_sync

logger = logging.getLogger(__name__)
bp = func.Blueprint()  # type: ignore[no-untyped-call]


@bp.timer_trigger(schedule="%RETRY_SCHEDULE%", arg_name="timer", run_on_startup=False)
async def retry_failed_items(timer: func.TimerRequest) -> None:
    """Items that failed to track, tried again (at most MAX_TRACKING_ATTEMPTS times)."""
    reports = await run_sync(timer, retry=True)
    log_cycle(
        logger,
        timer,
        bool(reports),
        "retry: %s mailboxes, %s items still failing",
        len(reports),
        sum(r.failed for r in reports),
    )
