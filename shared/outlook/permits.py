"""Permits to send Graph requests to a mailbox, shared by every process and instance of the app.

Graph allows an app 4 requests in flight per mailbox, counting each request inside a $batch and
every instance of the app; past that it answers 429 (MailboxConcurrency), and a throttled batch
item is work to redo. A semaphore in one process cannot see the sync timer and the senders in
the other workers, so a permit is a lease on one of N small blobs per mailbox (container
`graphpermits`, blobs `{seller key}/{0..N-1}`): holding the lease is holding the permit.

- A lease lasts 15 s, the shortest Azure Storage grants, and is renewed every 10 s while its
  request runs, so a holder that crashes frees its permit within 15 s by itself.
- Cost: taking a permit is one storage request and giving it back another. A process hands a
  permit it has just used to its own next request instead (no storage request), within
  REUSE_SECONDS of having taken it; after that the permit goes back, so other workers get
  their turn. A permit left unused for LINGER_SECONDS goes back too.
- A batch asks for as many permits as it has items and gets at least one; it is then sent with
  as many items as permits it holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.storage.blob.aio import BlobClient, BlobLeaseClient, ContainerClient

from shared.core.ids import mailbox_key
from shared.core.storage import GRAPH_PERMITS

logger = logging.getLogger(__name__)

CONTAINER = GRAPH_PERMITS
LEASE_SECONDS = 15  # Azure Storage's shortest lease
RENEW_SECONDS = 10.0
REUSE_SECONDS = 1.0
LINGER_SECONDS = 0.05
_FIRST_WAIT, _LONGEST_WAIT = 0.02, 0.25


@dataclass
class PermitStats:
    """What the permits cost, for the benchmark and the logs."""

    holds: int = 0  # permits handed to requests
    taken: int = 0  # leases taken from storage
    reused: int = 0  # permits handed on inside the process, no storage request
    busy: int = 0  # lease attempts that found the permit held by another process
    waits: int = 0  # times every permit was held elsewhere and the request waited
    storage_requests: int = 0
    storage_seconds: float = 0.0  # spent in lease requests (take, give back, renew)
    wait_seconds: float = 0.0  # spent waiting for another process to give a permit back


@dataclass
class _Lease:
    slot: int
    client: BlobLeaseClient | None  # None: process-local permits only
    taken_at: float
    idle_since: float = 0.0
    renewal: asyncio.TimerHandle | None = None
    given_back: bool = False


@dataclass
class _Pool:
    """One mailbox's permits in this process."""

    local: asyncio.Semaphore
    idle: list[_Lease] = field(default_factory=list)
    slots: set[int] = field(default_factory=set)  # slots whose lease this process holds


class MailboxPermits:
    """N permits per mailbox across processes (blob leases), or in this process only when no
    container is given (tools that run without storage)."""

    def __init__(
        self,
        container: ContainerClient | None,
        size: int,
        *,
        reuse_seconds: float = REUSE_SECONDS,
        linger_seconds: float = LINGER_SECONDS,
    ) -> None:
        if size < 1:
            raise ValueError("a mailbox needs at least one permit")
        self.size = size
        self.stats = PermitStats()
        self._container = container
        self._reuse = reuse_seconds
        self._linger = linger_seconds
        self._pools: dict[str, _Pool] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    @asynccontextmanager
    async def hold(self, mailbox: str, wanted: int = 1) -> AsyncIterator[int]:
        """Hold between 1 and `wanted` of the mailbox's permits (waiting for the first only);
        yields how many are held."""
        key = mailbox_key(mailbox)
        pool = self._pools.setdefault(key, _Pool(asyncio.Semaphore(self.size)))
        leases: list[_Lease] = []
        try:
            await pool.local.acquire()
            try:
                first = await self._take(pool, key, wait=True)
                assert first is not None  # it waits until it has one
                leases.append(first)
            except BaseException:
                pool.local.release()
                raise
            while len(leases) < min(wanted, self.size) and not pool.local.locked():
                await pool.local.acquire()  # free: it does not wait
                try:
                    extra = await self._take(pool, key, wait=False)
                except BaseException:
                    pool.local.release()
                    raise
                if extra is None:
                    pool.local.release()
                    break
                leases.append(extra)
            self.stats.holds += len(leases)
            yield len(leases)
        finally:
            for lease in leases:
                self._put_back(pool, lease)
                pool.local.release()

    async def close(self) -> None:
        """Give back every permit this process keeps, and wait for the give-backs."""
        for pool in self._pools.values():
            while pool.idle:
                self._give_back(pool, pool.idle.pop())
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # -- taking ---------------------------------------------------------------------------

    async def _take(self, pool: _Pool, key: str, *, wait: bool) -> _Lease | None:
        delay = _FIRST_WAIT
        while True:
            reused = self._reusable(pool)
            if reused is not None:
                self.stats.reused += 1
                return reused
            if self._container is None:
                free = min(set(range(self.size)) - pool.slots)
                pool.slots.add(free)
                return _Lease(free, None, time.monotonic())
            taken = await self._take_a_slot(pool, key)
            if taken is not None:
                return taken
            if not wait:
                return None
            self.stats.waits += 1
            pause = delay * (0.5 + random.random())  # noqa: S311 (jitter, not a secret)
            self.stats.wait_seconds += pause
            await asyncio.sleep(pause)
            delay = min(delay * 2, _LONGEST_WAIT)

    def _reusable(self, pool: _Pool) -> _Lease | None:
        now = time.monotonic()
        while pool.idle:
            lease = pool.idle.pop()
            if now - lease.taken_at < self._reuse:
                return lease
            self._give_back(pool, lease)
        return None

    async def _take_a_slot(self, pool: _Pool, key: str) -> _Lease | None:
        assert self._container is not None
        start = random.randrange(self.size)  # noqa: S311 (spreads processes over the blobs)
        for n in range(self.size):
            slot = (start + n) % self.size
            if slot in pool.slots:
                continue
            pool.slots.add(slot)
            try:
                lease = await self._lease(self._container.get_blob_client(f"{key}/{slot}"), slot)
            except BaseException:
                pool.slots.discard(slot)
                raise
            if lease is not None:
                return lease
            pool.slots.discard(slot)
        return None

    async def _lease(self, blob: BlobClient, slot: int) -> _Lease | None:
        client = BlobLeaseClient(blob)
        for _ in range(3):
            try:
                await self._timed(client.acquire(lease_duration=LEASE_SECONDS))
            except ResourceNotFoundError:
                await self._create(blob)
                continue
            except HttpResponseError as error:
                if error.status_code != 409:  # 409: another process holds this permit
                    raise
                self.stats.busy += 1
                return None
            self.stats.taken += 1
            lease = _Lease(slot, client, time.monotonic())
            self._schedule_renewal(lease)
            return lease
        raise RuntimeError("the permit blob could not be created")

    async def _create(self, blob: BlobClient) -> None:
        """The permit blobs are made on first use (empty); so is their container."""
        try:
            await blob.upload_blob(b"", overwrite=False)
        except ResourceNotFoundError:
            assert self._container is not None
            with contextlib.suppress(ResourceExistsError):
                await self._container.create_container()
            with contextlib.suppress(ResourceExistsError):
                await blob.upload_blob(b"", overwrite=False)
        except HttpResponseError as error:
            if error.status_code not in (409, 412):  # made (and maybe leased) meanwhile
                raise

    # -- giving back ----------------------------------------------------------------------

    def _put_back(self, pool: _Pool, lease: _Lease) -> None:
        now = time.monotonic()
        if lease.client is None or now - lease.taken_at >= self._reuse:
            self._give_back(pool, lease)
            return
        lease.idle_since = now
        pool.idle.append(lease)
        asyncio.get_running_loop().call_later(self._linger, self._sweep, pool)

    def _sweep(self, pool: _Pool) -> None:
        now = time.monotonic()
        for lease in [x for x in pool.idle if now - x.idle_since >= self._linger]:
            pool.idle.remove(lease)
            self._give_back(pool, lease)

    def _give_back(self, pool: _Pool, lease: _Lease) -> None:
        lease.given_back = True
        if lease.renewal is not None:
            lease.renewal.cancel()
        if lease.client is None:
            pool.slots.discard(lease.slot)
            return
        self._spawn(self._release(pool, lease, lease.client))

    async def _release(self, pool: _Pool, lease: _Lease, client: BlobLeaseClient) -> None:
        try:
            await self._timed(client.release())
        except HttpResponseError as error:
            # Expired and taken by another process already: it is given back either way.
            logger.warning("a Graph permit could not be given back (%s)", error.status_code)
        finally:
            pool.slots.discard(lease.slot)

    def _schedule_renewal(self, lease: _Lease) -> None:
        def renew() -> None:
            self._spawn(self._renew(lease))

        lease.renewal = asyncio.get_running_loop().call_later(RENEW_SECONDS, renew)

    async def _renew(self, lease: _Lease) -> None:
        assert lease.client is not None
        if lease.given_back:
            return
        try:
            await self._timed(lease.client.renew())
        except HttpResponseError as error:
            logger.warning("a Graph permit's lease could not be renewed (%s)", error.status_code)
            return
        if not lease.given_back:
            self._schedule_renewal(lease)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _timed(self, request: Awaitable[Any]) -> None:
        started = time.perf_counter()
        try:
            await request
        finally:
            self.stats.storage_requests += 1
            self.stats.storage_seconds += time.perf_counter() - started
