"""Timers of the tracking data: fold recorded events into KPIs on FOLD_SCHEDULE; alert on
first opens and push alerts to webhooks on ALERT_SCHEDULE."""

from __future__ import annotations

import logging

import azure.functions as func

from shared.assistant import webhooks
from shared.assistant.first_open_alerts import first_open_cycle
from shared.bootstrap import get_services
from shared.engagement.fold import fold_cycle

logger = logging.getLogger(__name__)
bp = func.Blueprint()  # type: ignore[no-untyped-call]


@bp.timer_trigger(schedule="%FOLD_SCHEDULE%", arg_name="timer", run_on_startup=False)
async def fold_events(timer: func.TimerRequest) -> None:
    """Fold every closed time bucket since the last cycle (idempotent)."""
    if timer.past_due:
        logger.info("fold timer is past due; catching up")
    services = get_services()
    report = await fold_cycle(services)
    logger.info(
        "folded %s events of %s messages up to %s", report.events, report.messages, report.cursor
    )


@bp.timer_trigger(schedule="%ALERT_SCHEDULE%", arg_name="timer", run_on_startup=False)
async def alert_first_opens(timer: func.TimerRequest) -> None:
    """First-open alerts within seconds of the open, then due webhook deliveries."""
    services = get_services()
    report = await first_open_cycle(services.store, services.clock())
    delivered = await webhooks.delivery_cycle(services.store, services.clock())
    if report.created or delivered.delivered or delivered.retrying or delivered.failed:
        logger.info(
            "alerts: %s created; webhooks: %s delivered, %s retrying, %s failed",
            report.created,
            delivered.delivered,
            delivered.retrying,
            delivered.failed,
        )
