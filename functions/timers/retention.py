"""Delete interaction blobs older than RETENTION_DAYS and forget old Idempotency-Keys
(RETENTION_SCHEDULE).

A thin adapter: the cycle lives in shared/ and is idempotent (timers fire at least once,
sometimes twice)."""

from __future__ import annotations

import logging

import azure.functions as func

from functions.timers.report import log_cycle
from shared.bootstrap import get_services
from shared.ops.retention import purge_cycle

logger = logging.getLogger(__name__)
bp = func.Blueprint()  # type: ignore[no-untyped-call]


@bp.timer_trigger(schedule="%RETENTION_SCHEDULE%", arg_name="timer", run_on_startup=False)
async def purge_old_interactions(timer: func.TimerRequest) -> None:
    """Delete interaction blobs older than RETENTION_DAYS."""
    report = await purge_cycle(get_services())
    log_cycle(
        logger,
        timer,
        bool(report.blobs_deleted or report.idempotency_keys_forgotten),
        "retention: %s interaction blobs before %s deleted, %s idempotency keys forgotten",
        report.blobs_deleted,
        report.cutoff_bucket,
        report.idempotency_keys_forgotten,
    )
