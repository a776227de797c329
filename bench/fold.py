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
import time
from datetime import UTC, datetime, timedelta

import httpx
from pydantic import SecretStr

from functions.http_app import create_app
from shared.bootstrap import build_services
from shared.core.auth import dev_seller
from shared.core.ids import partition_of
from shared.core.services import Services
from shared.core.settings import Settings
from shared.core.storage import ensure_storage
from shared.crm import records
from shared.crm.records import RecordIn
from shared.engagement.fold import fold_cycle
from shared.engagement.kpis import from_columns
from shared.messages.compose import compose
from shared.messages.models import ComposeIn
from tests.utils.azurite import azurite

OUTLOOK = "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17328; Pro)"
IN_FLIGHT = 32
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
class FoldResult:
    shapes: list[ShapeResult]

    @property
    def checked(self) -> bool:
        return all(s.checked for s in self.shapes)


async def _shape(
    connection_string: str, name: str, messages: int, per_message: int, start: datetime
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
    started = time.perf_counter()
    await fold_cycle(services, now=clock() + timedelta(minutes=5), grace=services.grace)
    fold_seconds = time.perf_counter() - started
    counted = 0  # every open folded once, whatever its class
    async for row in services.store.messages.query_entities(
        "PartitionKey eq @pk", parameters={"pk": partition_of(made[0][0])}, select=["by_class"]
    ):
        counted += sum(from_columns(row).by_class.get("open", {}).values())
    await services.close()
    return ShapeResult(
        name, messages, messages * per_message, record_seconds, fold_seconds, counted
    )


def measure() -> FoldResult:
    """Both shapes, each on a fresh Azurite (about a minute)."""
    results = []
    for name, (messages, per_message) in SHAPES.items():
        with azurite() as connection_string:
            start = datetime.now(UTC)
            results.append(
                asyncio.run(_shape(connection_string, name, messages, per_message, start))
            )
    return FoldResult(results)


def report(result: FoldResult) -> str:
    lines = ["fold: throughput against the tracking endpoint that feeds it (same run)"]
    for s in result.shapes:
        lines.append(
            f"  {s.name} ({s.messages} messages, {s.events} events): recorded "
            f"{s.record_rate:.0f} events/s, folded {s.fold_rate:.0f} events/s, "
            f"ratio {s.ratio:.2f}"
        )
    lines.append(f"  check: {'every event folded once' if result.checked else 'FAILED'}")
    return "\n".join(lines)


if __name__ == "__main__":
    print(report(measure()))
