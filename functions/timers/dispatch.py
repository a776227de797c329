"""Hand over queued mail that is due (DISPATCH_SCHEDULE, every minute): scheduled
messages, and sends whose attempt died or waits out its backoff.

A thin adapter: the cycle lives in shared/ and is idempotent (timers fire at least once,
sometimes twice)."""

from __future__ import annotations

import logging

import azure.functions as func

from functions.timers.report import log_cycle
from shared.bootstrap import get_services
from shared.messages.dispatch import dispatch_cycle

logger = logging.getLogger(__name__)
bp = func.Blueprint()  # type: ignore[no-untyped-call]


@bp.timer_trigger(schedule="%DISPATCH_SCHEDULE%", arg_name="timer", run_on_startup=False)
async def dispatch_scheduled(timer: func.TimerRequest) -> None:
    """Hand over scheduled messages that are due."""
    report = await dispatch_cycle(get_services())
    log_cycle(
        logger,
        timer,
        bool(report.sent or report.skipped or report.failed),
        "dispatch: %s sent, %s skipped, %s failed",
        report.sent,
        report.skipped,
        report.failed,
    )
