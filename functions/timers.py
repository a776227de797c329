"""Timers other than folding: hand over scheduled mail, sync mailboxes, retry failed items.
Each is a thin adapter; the cycles live in shared/ and are idempotent (timers fire at least
once, sometimes twice). The sync cycle is imported when it runs: it brings the Graph SDK,
which the HTTP functions of the same app must not pay for."""

from __future__ import annotations

import logging

import azure.functions as func

from shared.assistant.reminders import reminder_cycle
from shared.bootstrap import get_services, import_off_loop
from shared.core import telemetry
from shared.messages.dispatch import dispatch_cycle
from shared.ops.retention import purge_cycle

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


@bp.timer_trigger(schedule="%SYNC_SCHEDULE%", arg_name="timer", run_on_startup=False)
async def sync_mailboxes(timer: func.TimerRequest) -> None:
    """Replies and tracked items of every enrolled mailbox."""
    sync = await import_off_loop("shared.outlook.sync")
    if timer.past_due:
        logger.info("sync timer is past due")
    with telemetry.timed_cycle("sync"):
        reports = await sync.sync_cycle(get_services())
    logger.info("sync: %s mailboxes, %s items", len(reports), sum(r.items for r in reports))


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


@bp.timer_trigger(schedule="%RETENTION_SCHEDULE%", arg_name="timer", run_on_startup=False)
async def purge_old_interactions(timer: func.TimerRequest) -> None:
    """Delete interaction blobs older than RETENTION_DAYS."""
    if timer.past_due:
        logger.info("retention timer is past due")
    report = await purge_cycle(get_services())
    logger.info("retention: %s blobs before %s deleted", report.blobs_deleted, report.cutoff_bucket)


@bp.timer_trigger(schedule="%REMINDER_SCHEDULE%", arg_name="timer", run_on_startup=False)
async def fire_reminders(timer: func.TimerRequest) -> None:
    """Fire due follow-up reminders whose condition holds, as high-priority alerts."""
    if timer.past_due:
        logger.info("reminder timer is past due")
    report = await reminder_cycle(get_services())
    logger.info("reminders: %s fired, %s satisfied", report.fired, report.satisfied)
