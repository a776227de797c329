"""Mailbox permits as blob leases on Azurite: shared by workers, sized for batches, handed on
inside a worker, and freed by themselves when their holder dies."""

from __future__ import annotations

import asyncio
import itertools
import time

from azure.storage.blob.aio import BlobLeaseClient

from shared.core.ids import mailbox_key
from shared.core.services import Services
from shared.outlook.permits import CONTAINER, LEASE_SECONDS, MailboxPermits

_numbers = itertools.count(1)


def mailbox() -> str:
    return f"permits{next(_numbers)}@contoso.example"


def permits(services: Services, **options: float) -> MailboxPermits:
    """One worker's permits (4 per mailbox) in the test storage account."""
    return MailboxPermits(services.store.blob_service.get_container_client(CONTAINER), 4, **options)


async def test_permits_are_shared_by_workers_and_a_batch_gets_what_is_free(
    services: Services,
) -> None:
    email, first, second = mailbox(), permits(services), permits(services)
    try:
        async with first.hold(email, 3) as held_first, second.hold(email, 4) as held_second:
            assert (held_first, held_second) == (3, 1)
            waiting = asyncio.create_task(_hold_one(second, email))
            await asyncio.sleep(0.3)
            assert not waiting.done()  # all four are held, by two workers
        started = time.monotonic()
        await waiting
        assert time.monotonic() - started < 2
        assert first.stats.taken == 3 and second.stats.holds == 2 and second.stats.waits >= 1
    finally:
        await first.close()
        await second.close()


async def _hold_one(permits: MailboxPermits, email: str) -> None:
    async with permits.hold(email) as held:
        assert held == 1


async def test_a_permit_is_handed_on_inside_a_worker_then_given_back(
    services: Services,
) -> None:
    email, worker, other = mailbox(), permits(services, linger_seconds=0.5), permits(services)
    try:
        for _ in range(5):
            async with worker.hold(email):
                pass
        assert worker.stats.taken == 1 and worker.stats.reused == 4  # one lease, no more
        await asyncio.sleep(0.7)  # unused past its linger: given back
        async with other.hold(email, 4) as held:
            assert held == 4
    finally:
        await worker.close()
        await other.close()


async def test_a_crashed_holders_permits_free_themselves(services: Services) -> None:
    email, survivor = mailbox(), permits(services)
    container = services.store.blob_service.get_container_client(CONTAINER)
    async with survivor.hold(email, 4):  # makes the four permit blobs
        pass
    await survivor.close()
    for slot in range(4):  # a worker takes all four and dies without giving them back
        blob = container.get_blob_client(f"{mailbox_key(email)}/{slot}")
        await BlobLeaseClient(blob).acquire(lease_duration=LEASE_SECONDS)
    started = time.monotonic()
    try:
        async with survivor.hold(email) as held:
            waited = time.monotonic() - started
    finally:
        await survivor.close()
    assert held == 1 and LEASE_SECONDS - 2 <= waited <= LEASE_SECONDS + 5
