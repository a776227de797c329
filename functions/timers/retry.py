"""Items that failed to track, tried again (RETRY_SCHEDULE), at most
MAX_TRACKING_ATTEMPTS times. Imported when it runs, like the sync.

A thin adapter: the cycle lives in shared/ and is idempotent (timers fire at least once,
sometimes twice)."""

from __future__ import annotations

import logging

import azure.functions as func

from shared.bootstrap import get_services, import_off_loop
from shared.core import telemetry

logger = logging.getLogger(__name__)
bp = func.Blueprint()  # type: ignore[no-untyped-call]


@bp.timer_trigger(schedule="%RETRY_SCHEDULE%", arg_name="timer", run_on_startup=False)
async def retry_failed_items(timer: func.TimerRequest) -> None:
    """Items that failed to track, tried again (at most MAX_TRACKING_ATTEMPTS times)."""
    sync = await import_off_loop("shared.outlook.sync")
    if timer.past_due:
        logger.info("retry timer is past due")
    with telemetry.timed_cycle("retry"):
        reports = await sync.sync_cycle(get_services(), retry=True)
    logger.info(
        "retry: %s mailboxes, %s still failing", len(reports), sum(r.failed for r in reports)
    )
