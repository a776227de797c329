"""Fire due follow-up reminders whose condition holds (REMINDER_SCHEDULE): a backstop. The
5-s alert timer runs the same cycle and fires them on time; this one keeps reminders firing
if that timer is disabled or keeps failing on its other work (first opens, webhooks).

A thin adapter: the cycle lives in shared/ and is idempotent (timers fire at least once,
sometimes twice)."""

from __future__ import annotations

import logging

import azure.functions as func

from functions.timers.report import log_cycle
from shared.assistant.reminders import reminder_cycle
from shared.bootstrap import get_services

logger = logging.getLogger(__name__)
bp = func.Blueprint()  # type: ignore[no-untyped-call]


@bp.timer_trigger(schedule="%REMINDER_SCHEDULE%", arg_name="timer", run_on_startup=False)
async def fire_reminders(timer: func.TimerRequest) -> None:
    """Fire due follow-up reminders whose condition holds, as high-priority alerts."""
    report = await reminder_cycle(get_services())
    log_cycle(
        logger,
        timer,
        bool(report.fired or report.satisfied),
        "reminders: %s fired, %s satisfied",
        report.fired,
        report.satisfied,
    )
