"""First-open alerts within seconds of the open, due follow-up reminders within seconds of
their time, then due webhook deliveries (ALERT_SCHEDULE, every 5 s).

A thin adapter: the cycle lives in shared/ and is idempotent (timers fire at least once,
sometimes twice)."""

from __future__ import annotations

import logging

import azure.functions as func

from functions.timers.report import log_cycle
from shared.assistant import webhooks
from shared.assistant.first_open_alerts import first_open_cycle
from shared.assistant.reminders import reminder_cycle
from shared.bootstrap import get_services

logger = logging.getLogger(__name__)
bp = func.Blueprint()  # type: ignore[no-untyped-call]


@bp.timer_trigger(schedule="%ALERT_SCHEDULE%", arg_name="timer", run_on_startup=False)
async def alert_first_opens(timer: func.TimerRequest) -> None:
    """First-open alerts and due reminders within seconds, then due webhook deliveries (a
    reminder's alert is delivered in the same tick)."""
    services = get_services()
    report = await first_open_cycle(services, services.clock())
    reminded = await reminder_cycle(services)
    local = services.settings.environment == "local"
    delivered = await webhooks.delivery_cycle(services.store, services.clock(), local=local)
    worked = report.created or report.due or reminded.fired or reminded.satisfied
    worked = worked or delivered.delivered or delivered.retrying or delivered.failed
    log_cycle(
        logger,
        timer,
        bool(worked),
        "alerts: %s at once, %s after waiting for evidence (%s waiting), %s reminders fired, "
        "%s satisfied; webhooks: %s delivered, %s retrying, %s failed",
        report.created,
        report.due,
        report.waiting,
        reminded.fired,
        reminded.satisfied,
        delivered.delivered,
        delivered.retrying,
        delivered.failed,
    )
