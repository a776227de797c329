"""Fold recorded events into KPIs (FOLD_SCHEDULE, every 10 s).

A thin adapter: the cycle lives in shared/ and is idempotent (timers fire at least once,
sometimes twice)."""

from __future__ import annotations

import logging

import azure.functions as func

from functions.timers.report import log_cycle
from shared.bootstrap import get_services
from shared.engagement.fold import fold_cycle

logger = logging.getLogger(__name__)
bp = func.Blueprint()  # type: ignore[no-untyped-call]


@bp.timer_trigger(schedule="%FOLD_SCHEDULE%", arg_name="timer", run_on_startup=False)
async def fold_events(timer: func.TimerRequest) -> None:
    """Fold every closed time bucket since the last cycle (idempotent)."""
    report = await fold_cycle(get_services())
    log_cycle(
        logger,
        timer,
        bool(report.events or report.orphans),
        "fold: folded %s events of %s messages (%s buckets, up to %s)",
        report.events,
        report.messages,
        report.buckets,
        report.cursor,
    )
