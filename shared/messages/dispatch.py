"""The dispatch cycle (a timer, every minute): hands over every queued message that is due,
recovers the ones whose send attempt died or waits out its backoff, and sweeps what a
compose that died before its message row left behind."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from azure.core.exceptions import ResourceNotFoundError

from shared.core.ids import partition_of
from shared.core.services import Services
from shared.messages import compose_intents, dispatch_queue
from shared.messages.sending import LEASE, attempt, claim

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DispatchReport:
    sent: int
    skipped: int
    failed: int


async def dispatch_cycle(services: Services) -> DispatchReport:
    """Hand over every queued message that is due: scheduled mail (with the backend's lead),
    and mail whose send attempt died or is waiting out its backoff. Per-message failures are
    recorded on the message; the cycle carries on. Then sweep what a compose that died
    before its message row left behind."""
    horizon = services.clock() + services.delivery.lead
    sent = skipped = failed = 0
    rows = dispatch_queue.due_rows(services, horizon)
    async for row in rows:
        message_id = row["message_id"]
        try:
            entity = await claim(services, message_id, by_seller=False, horizon=horizon)
            if entity is None:
                skipped += 1
                await _drop_if_done(services, row)
                continue
            outcome = await attempt(services, entity)
            sent += outcome["status"] == "sent"
            failed += outcome["status"] != "sent"
        except Exception:
            failed += 1
            logger.exception("a queued message could not be handed over; will retry")
    await compose_intents.sweep(services)
    return DispatchReport(sent, skipped, failed)


async def _drop_if_done(services: Services, row: dict[str, Any]) -> None:
    """Drop a queue row nobody will need: its message is sent, cancelled or failed (a resend
    queues a new row), or, once the row is older than a lease, a draft or no message at all
    (a compose or a send that died before its claim)."""
    message_id = row["message_id"]
    queued_at = dispatch_queue.queued_at(row)
    try:
        entity = await services.store.messages.get_entity(partition_of(message_id), message_id)
        status = entity["status"]
    except ResourceNotFoundError:
        status = "missing"
    done = status in ("sent", "cancelled", "failed") or (
        status in ("draft", "missing") and queued_at < services.clock() - LEASE
    )
    if done:
        await dispatch_queue.drop(services, row)
