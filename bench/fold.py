"""Fold throughput against the tracking endpoint that feeds it, in the same run, on Azurite.

Two shapes of traffic: many messages with one open each (a newsletter, a scanner wave at
delivery), and few messages with many events each. For each, the events are recorded through
the real tracking endpoint (in-process ASGI, 32 requests in flight: the recording rate), then
the fold cycle folds them all (the folding rate). The ratio folding / recording says whether
the fold keeps up with what feeds it (target: at least 1). Fold workers: the same events are
also folded by 1, 2 and 4 shard workers side by side (each its own services, as separate
instances would be), each folding its own shards.
"""

from __future__ import annotations

import asyncio
import dataclasses
import multiprocessing
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from pydantic import SecretStr

from functions.http_app import create_app
from shared.bootstrap import build_services
from shared.classification.devices import device_type
from shared.core.auth import dev_seller
from shared.core.ids import partition_of
from shared.core.list_index import MESSAGE_ROWS_FILTER
from shared.core.services import Services
from shared.core.settings import Settings
from shared.core.storage import ensure_storage
from shared.crm import records
from shared.crm.records import RecordIn
from shared.engagement import shards as cursors
from shared.engagement.fold import fold_cycle, fold_shards, started_cursors
from shared.engagement.kpis import from_columns
from shared.messages.compose import compose
from shared.messages.models import ComposeIn
from shared.tracking.events import SHARDS, last_closed_bucket
from tests.utils.azurite import azurite

OUTLOOK = "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17328; Pro)"
IN_FLIGHT = 32
WORKER_SHAPE = (600, 1)
WORKERS = (1, 2, 4)
SHAPES = {"many messages, one open each": (600, 1), "few messages, many events each": (20, 30)}


@dataclasses.dataclass(frozen=True)
class ShapeResult:
    name: str
    messages: int
    events: int
    record_seconds: float
    fold_seconds: float
    opens_folded: int

    @property
    def record_rate(self) -> float:
        return self.events / self.record_seconds

    @property
    def fold_rate(self) -> float:
        return self.events / self.fold_seconds

    @property
    def ratio(self) -> float:
        return self.fold_rate / self.record_rate

    @property
    def checked(self) -> bool:
        return self.opens_folded == self.events


@dataclasses.dataclass(frozen=True)
class WorkersResult:
    workers: int
    events: int
    seconds: float  # from the first worker's start to the last one's end
    opens_folded: int

    @property
    def rate(self) -> float:
        return self.events / self.seconds


@dataclasses.dataclass(frozen=True)
class FoldResult:
    shapes: list[ShapeResult]
    workers: list[WorkersResult] = dataclasses.field(default_factory=list)

    @property
    def checked(self) -> bool:
        return all(s.checked for s in self.shapes) and all(
            w.opens_folded == w.events for w in self.workers
        )


async def _shape(
    connection_string: str,
    name: str,
    messages: int,
    per_message: int,
    start: datetime,
    fold: bool = True,
) -> ShapeResult:
    offset = [datetime.now(UTC) - start]

    def clock() -> datetime:
        return datetime.now(UTC) - offset[0]

    settings = Settings(storage_connection_string=SecretStr(connection_string))
    services: Services = build_services(settings, clock)
    await ensure_storage(services.store)
    seller = dev_seller(f"bench.fold.{messages}@contoso.example")
    address = f"folded.{messages}@fabrikam.example"
    await records.create(services, seller, "contact", RecordIn(name="Folded", emails=[address]))
    limit = asyncio.Semaphore(IN_FLIGHT)

    async def one_message(n: int) -> tuple[str, str]:
        async with limit:
            body = ComposeIn(to=[address], subject=f"News {n}", html="<p>News.</p>")
            view = await compose(services, seller, body)
            html = str(view["html"])
            return str(view["id"]), html.split('src="http://127.0.0.1:7071', 1)[1].split('"')[0]

    made = await asyncio.gather(*(one_message(n) for n in range(messages)))
    pixels = [pixel for _, pixel in made]
    offset[0] -= timedelta(hours=3)  # read in the afternoon: people's opens, counted
    transport = httpx.ASGITransport(app=create_app(lambda: services))
    headers = {"User-Agent": OUTLOOK, "Accept": "image/*"}
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:

        async def fetch(pixel: str, reader: int) -> None:
            # each open from a reader of its own (one client fetching one pixel again and
            # again would be a flood, rightly not counted)
            address = {"X-Forwarded-For": f"81.{reader // 250 % 250}.{reader % 250}.7"}
            async with limit:
                answer = await client.get(pixel, headers={**headers, **address})
                assert answer.status_code == 200

        started = time.perf_counter()
        await asyncio.gather(*(fetch(p, r) for p in pixels for r in range(per_message)))
        record_seconds = time.perf_counter() - started
    if not fold:  # folded by worker processes (_workers)
        await services.close()
        return ShapeResult(name, messages, messages * per_message, record_seconds, 0.0, 0)
    _warm()
    started = time.perf_counter()
    await fold_cycle(services, now=clock() + timedelta(minutes=5), grace=services.grace)
    fold_seconds = time.perf_counter() - started
    counted = 0  # every open folded once, whatever its class
    async for row in services.store.messages.query_entities(
        f"PartitionKey eq @pk and {MESSAGE_ROWS_FILTER}",
        parameters={"pk": partition_of(made[0][0])},
        select=["by_class"],
    ):
        counted += sum(from_columns(row).by_class.get("open", {}).values())
    await services.close()
    return ShapeResult(
        name, messages, messages * per_message, record_seconds, fold_seconds, counted
    )


def _warm() -> None:
    """What a long-lived worker does once, not per cycle: compile the user-agent rules (their
    first parse takes 0.2 to 0.6 s here). Another agent than the events', so their own
    parse is still timed."""
    device_type("Mozilla/5.0 (warm-up)")


def _worker(connection_string: str, which: list[int], now: datetime, gate: Any, out: Any) -> None:
    """One fold worker, a process of its own as an instance would be: its shards, timed."""

    async def run() -> tuple[float, float]:
        settings = Settings(storage_connection_string=SecretStr(connection_string))
        services = build_services(settings, lambda: now)
        await cursors.read(services.store)  # connected before the gate opens
        _warm()
        gate.wait()
        began = time.time()
        await fold_shards(services, which, now=now)
        ended = time.time()
        await services.close()
        return began, ended

    out.put(asyncio.run(run()))


async def _opens_folded(connection_string: str, partition: str) -> int:
    settings = Settings(storage_connection_string=SecretStr(connection_string))
    services = build_services(settings, lambda: datetime.now(UTC))
    counted = 0
    async for row in services.store.messages.query_entities(
        "PartitionKey eq @pk and RowKey lt '~'", parameters={"pk": partition}, select=["by_class"]
    ):
        counted += sum(from_columns(row).by_class.get("open", {}).values())
    await services.close()
    return counted


async def _prepare(connection_string: str, now: datetime) -> str:
    """Start the legacy cursor (none here) as the timer would, so shards may be folded."""
    settings = Settings(storage_connection_string=SecretStr(connection_string))
    services = build_services(settings, lambda: now)
    await started_cursors(services, now, last_closed_bucket(now, services.grace))
    async for row in services.store.messages.query_entities(
        "RowKey lt '~'", select=["PartitionKey"]
    ):
        partition = str(row["PartitionKey"])
        break
    await services.close()
    return partition


def _workers(count: int) -> WorkersResult:
    """The many-messages shape folded by `count` worker processes, the shards dealt out."""
    messages, per_message = WORKER_SHAPE
    with azurite() as connection_string:
        start = datetime.now(UTC)
        asyncio.run(_shape(connection_string, "workers", messages, per_message, start, False))
        now = datetime.now(UTC) + timedelta(hours=3, minutes=5)
        partition = asyncio.run(_prepare(connection_string, now))
        context = multiprocessing.get_context("spawn")
        gate, out = context.Barrier(count), context.Queue()
        processes = [
            context.Process(
                target=_worker,
                args=(connection_string, list(range(n, SHARDS, count)), now, gate, out),
            )
            for n in range(count)
        ]
        for process in processes:
            process.start()
        spans = [out.get(timeout=600) for _ in processes]
        for process in processes:
            process.join()
        seconds = max(end for _, end in spans) - min(begin for begin, _ in spans)
        folded = asyncio.run(_opens_folded(connection_string, partition))
    return WorkersResult(count, messages * per_message, seconds, folded)


def measure() -> FoldResult:
    """Both shapes, each on a fresh Azurite, then 1, 2 and 4 worker processes (a few
    minutes)."""
    results = []
    for name, (messages, per_message) in SHAPES.items():
        with azurite() as connection_string:
            start = datetime.now(UTC)
            results.append(
                asyncio.run(_shape(connection_string, name, messages, per_message, start))
            )
        print(f"  (fold: {name}: ratio {results[-1].ratio:.2f})", flush=True)
    workers = []
    for count in WORKERS:
        workers.append(_workers(count))
        print(f"  (fold: {count} worker(s): {workers[-1].rate:.0f} events/s)", flush=True)
    return FoldResult(results, workers)


def report(result: FoldResult) -> str:
    lines = ["fold: throughput against the tracking endpoint that feeds it (same run)"]
    for s in result.shapes:
        lines.append(
            f"  {s.name} ({s.messages} messages, {s.events} events): recorded "
            f"{s.record_rate:.0f} events/s, folded {s.fold_rate:.0f} events/s, "
            f"ratio {s.ratio:.2f}"
        )
    if result.workers:
        one = result.workers[0].rate
        lines.append(
            f"  worker processes, {result.workers[0].events} messages with one open each "
            f"({SHARDS} shards dealt out):"
        )
        for w in result.workers:
            lines.append(
                f"    {w.workers} worker(s): {w.rate:.0f} events/s, {w.rate / one:.2f}x one worker"
            )
    lines.append(f"  check: {'every event folded once' if result.checked else 'FAILED'}")
    return "\n".join(lines)


if __name__ == "__main__":
    print(report(measure()))
