"""Fold recorded events into KPIs: the timer (FOLD_SCHEDULE, every 10 s) hands the shards
with new events to the `fold-shards` queue and folds what the workers leave behind; the
queue-triggered worker folds one shard (shared.engagement.fold_queue).

Thin adapters: the cycles live in shared/ and are idempotent (timers fire at least once,
sometimes twice; queue messages are delivered at least once)."""

from __future__ import annotations

import logging

import azure.functions as func

from functions.timers.report import log_cycle
from shared.bootstrap import get_services
from shared.core.storage import FOLD_QUEUE
from shared.engagement.fold_queue import dispatch_cycle, fold_from_queue

logger = logging.getLogger(__name__)
bp = func.Blueprint()  # type: ignore[no-untyped-call]

# The queue trigger's storage connection: STORAGE__queueServiceUri and STORAGE__credential
# (managed identity) in Azure (infra/app/settings.bicep), a connection string locally.
QUEUE_CONNECTION = "STORAGE"


@bp.timer_trigger(schedule="%FOLD_SCHEDULE%", arg_name="timer", run_on_startup=False)
async def fold_events(timer: func.TimerRequest) -> None:
    """Queue the shards with closed buckets to fold; fold those the workers left behind."""
    report = await dispatch_cycle(get_services())
    log_cycle(
        logger,
        timer,
        bool(report.folded.events or report.folded.orphans or report.backstop),
        "fold: queued %s shards, folded %s events of %s messages itself (%s shards behind)",
        report.queued,
        report.folded.events,
        report.folded.messages,
        report.backstop,
    )


@bp.queue_trigger(arg_name="message", queue_name=FOLD_QUEUE, connection=QUEUE_CONNECTION)
async def fold_shard(message: func.QueueMessage) -> None:
    """Fold the shard a queue message names (a failure leaves the message to come back)."""
    report = await fold_from_queue(get_services(), message.get_body().decode("utf-8"))
    if report is not None and (report.events or report.orphans):
        logger.info(
            "fold: folded %s events of %s messages in a shard (up to %s)",
            report.events,
            report.messages,
            report.cursor,
        )
