"""Hand over queued mail that is due (DISPATCH_SCHEDULE, every minute): scheduled
messages, and sends whose attempt died or waits out its backoff.

A thin adapter: the cycle lives in shared/ and is idempotent (timers fire at least once,
sometimes twice)."""

from __future__ import annotations

import logging

import azure.functions as func

from shared.bootstrap import get_services
from shared.messages.dispatch import dispatch_cycle

logger = logging.getLogger(__name__)
bp = func.Blueprint()  # type: ignore[no-untyped-call]


@bp.timer_trigger(schedule="%DISPATCH_SCHEDULE%", arg_name="timer", run_on_startup=False)
async def dispatch_scheduled(timer: func.TimerRequest) -> None:
    """Hand over scheduled messages that are due."""
    if timer.past_due:
        logger.info("dispatch timer is past due")
    report = await dispatch_cycle(get_services())
    logger.info(
        "dispatch: %s sent, %s skipped, %s failed", report.sent, report.skipped, report.failed
    )
