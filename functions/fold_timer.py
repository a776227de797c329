"""Timer: fold recorded events into KPIs on FOLD_SCHEDULE."""

from __future__ import annotations

import logging

import azure.functions as func

from shared.folding import fold_cycle
from shared.runtime import get_services

logger = logging.getLogger(__name__)
bp = func.Blueprint()  # type: ignore[no-untyped-call]


@bp.timer_trigger(schedule="%FOLD_SCHEDULE%", arg_name="timer", run_on_startup=False)
async def fold_events(timer: func.TimerRequest) -> None:
    """Fold every closed time bucket since the last cycle (idempotent)."""
    if timer.past_due:
        logger.info("fold timer is past due; catching up")
    services = get_services()
    report = await fold_cycle(services.store, grace=services.grace)
    logger.info(
        "folded %s events of %s messages up to %s", report.events, report.messages, report.cursor
    )
