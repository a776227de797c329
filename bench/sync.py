"""Benchmark: one sync cycle of a mailbox with many changed messages, against the Graph
stand-in, through the real msgraph SDK and real Azurite.

Set-up (not timed): followed mail is sent from the mailbox through the app's own compose
path, two cycles take the baseline delta links (the second absorbs the category the first
wrote on the sent items), then the Inbox fills with changed messages: some replies to the
followed mail, some carrying the tracking category, the rest ordinary mail. The timed part
is one `sync_mailbox` call. Graph requests come from the stand-in's log, storage requests
from a counter on azure-core's aiohttp transport, and the outcome is checked afterwards
(reply counts on the followed messages, activities created, category writes landed).

It runs twice in one go, each time on a mailbox of its own: clean, then with the stand-in
enforcing Graph's limit of 4 requests in flight per mailbox (each request inside a $batch
counted) and answering 429 with Retry-After to 5% of requests picked at random. Besides, the
cost of one mailbox permit (shared.outlook.permits, a blob lease) is timed alone.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import dataclasses
import json
import math
import os
import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from azure.core.pipeline.transport import AioHttpTransport
from pydantic import SecretStr

from bench.pixel import cpu_seconds
from devtools.graph_standin import DEFAULT_TOKEN, GraphStandIn
from shared.bootstrap import build_services
from shared.core.auth import dev_seller
from shared.core.services import Services
from shared.core.settings import Settings
from shared.core.storage import ensure_storage
from shared.crm import records
from shared.crm.records import RecordIn
from shared.messages.compose import compose
from shared.messages.models import ComposeIn
from shared.messages.reading import get as read_message
from shared.outlook import mailboxes
from shared.outlook.mail import STAMP_PROPERTY
from shared.outlook.permits import CONTAINER, MailboxPermits, PermitStats
from shared.outlook.sync import SyncReport, sync_mailbox
from tests.utils.azurite import azurite

SELLER = "bench.sync@contoso.example"
THROTTLED_SELLER = "bench.sync.throttled@contoso.example"
FOLLOWED = 50
CONCURRENCY_LIMIT = 4  # Exchange's limit of requests in flight per mailbox
THROTTLE_FRACTION = 0.05  # of requests answered 429 in the throttled run
THROTTLE_RETRY_AFTER = 1  # seconds
PERMIT_ROUNDS = 300
READS_PER_100_TARGET = 1.0
_DOMAINS = ("fabrikam.example", "northwind.example", "adatum.example", "litware.example")
_WORDS = (
    "quote", "renewal", "pricing", "seats", "delivery", "invoice", "contract", "meeting",
    "schedule", "proposal", "discount", "support", "licence", "upgrade", "review", "order",
    "shipment", "account", "terms",
)  # fmt: skip


@dataclasses.dataclass(frozen=True)
class SyncResult:
    """The timed cycle's figures and the checks made after it."""

    messages: int  # changed messages put in the Inbox
    categorised: int  # of which carried the tracking category
    replies_delivered: int  # of which answered followed mail
    followed: int  # followed messages sent beforehand
    body_bytes: int  # mean HTML body size of the changed messages
    page_size: int  # odata.maxpagesize the app asks for
    seconds: float  # wall time of the one sync_mailbox call
    cpu: dict[str, float]  # CPU seconds in the timed part: app, stand-in, Azurite
    graph: dict[str, int]  # Graph HTTP requests by kind
    batched: dict[str, int]  # requests inside the $batch posts, by method
    storage: dict[str, int]  # storage HTTP requests, "table GET messageindex" and so on
    max_concurrency: int  # most Graph requests in flight for the mailbox (set-up included)
    report: SyncReport
    replies_counted: int  # reply KPI summed over the followed messages
    tracked_by_method: dict[str, int]  # activities tracked from the timed cycle's items
    needing_category: int  # items tracked in the cycle that had to get our category
    lost: int  # of which do not carry it afterwards
    limited: bool  # the stand-in enforced the concurrency limit
    throttle_fraction: float  # share of requests the stand-in answered 429
    injected: int  # 429s the stand-in injected in the timed cycle
    refused: int  # 429s for the concurrency limit in the timed cycle
    permits: PermitStats  # what the mailbox permits cost in the timed cycle

    @property
    def storage_requests(self) -> int:
        return sum(self.storage.values())

    @property
    def reads(self) -> int:
        """Every Graph GET: delta pages and any other read."""
        return self.graph["delta GET"] + self.graph["other GET"]

    @property
    def reads_per_100(self) -> float:
        return self.reads * 100 / self.messages

    @property
    def target_met(self) -> bool:
        return (
            self.reads_per_100 <= READS_PER_100_TARGET and self.max_concurrency <= CONCURRENCY_LIMIT
        )

    @property
    def checked(self) -> bool:
        """The cycle did what it should: every item seen, every reply counted once, the
        categorised items tracked, nothing failed, no category write lost, the concurrency
        limit held."""
        return (
            self.report.items == self.messages
            and self.report.replies == self.replies_delivered
            and self.replies_counted == self.replies_delivered
            and self.tracked_by_method.get("category", 0) == self.categorised
            and self.tracked_by_method.get("token", 0) == self.replies_delivered
            and self.report.failed == 0
            and self.lost == 0
            and self.refused == 0
            and self.max_concurrency <= CONCURRENCY_LIMIT
        )


@dataclasses.dataclass(frozen=True)
class PermitCost:
    """One mailbox permit timed alone: taken and given back through storage, handed on
    inside the process, and a process-local semaphore for comparison (milliseconds each)."""

    rounds: int
    storage_ms: float
    storage_requests_per_permit: float
    reused_ms: float
    local_ms: float


@dataclasses.dataclass(frozen=True)
class SyncRuns:
    """The clean run, the throttled run and the permit's cost, from one bench run."""

    clean: SyncResult
    throttled: SyncResult
    permit: PermitCost
    load_average: float  # 1-minute load average when the runs began

    @property
    def checked(self) -> bool:
        return self.clean.checked and self.throttled.checked

    @property
    def slowdown(self) -> float:
        return self.throttled.seconds / self.clean.seconds


@dataclasses.dataclass(frozen=True)
class _Sent:
    message_id: str  # ours
    internet_message_id: str
    conversation_id: str


def _settings(connection_string: str, standin: GraphStandIn) -> Settings:
    settings = Settings(storage_connection_string=SecretStr(connection_string))
    return settings.model_copy(
        update={
            "delivery_backend": "graph",
            "graph_auth": "static",
            "graph_static_token": SecretStr(DEFAULT_TOKEN),
            "graph_base_url": standin.base_url,
        }
    )


def _stamp(item: dict[str, Any]) -> str | None:
    for prop in item.get("singleValueExtendedProperties") or []:
        if str(prop["id"]).lower() == STAMP_PROPERTY.lower():
            return str(prop["value"])
    return None


async def _send_followed(
    services: Services, standin: GraphStandIn, address: str, count: int
) -> list[_Sent]:
    """Followed mail sent from the mailbox the way a seller sends it (compose, then Graph)."""
    seller = dev_seller(address)
    ours = []
    for n in range(count):
        buyer = f"buyer{n}@{_DOMAINS[n % len(_DOMAINS)]}"
        await records.create(
            services, seller, "contact", RecordIn(name=f"Buyer {n}", emails=[buyer])
        )
        body = ComposeIn(
            to=[buyer],
            subject=f"Your quote {n}",
            html=f'<p>Hello,</p><p>Your quote: <a href="https://contoso.example/q/{n}">view</a>.</p>',
        )
        ours.append(str((await compose(services, seller, body))["id"]))
    by_stamp = {_stamp(item): item for item in standin.sent(address)}
    return [_Sent(m, by_stamp[m]["internetMessageId"], by_stamp[m]["conversationId"]) for m in ours]


def _body(rng: random.Random, n: int) -> str:
    paragraphs = [
        "<p>" + " ".join(rng.choice(_WORDS) for _ in range(40)) + ".</p>" for _ in range(6)
    ]
    return f"<html><body><p>Message {n}</p>{''.join(paragraphs)}</body></html>"


def _fill_inbox(
    standin: GraphStandIn,
    seller: str,
    sent: list[_Sent],
    count: int,
    categorised: int,
    replies: int,
    category: str,
) -> int:
    """Deliver `count` messages, the replies and categorised ones spread through them at
    random (a fixed seed); returns the mean body size in bytes."""
    rng = random.Random(20240611)
    kinds = ["reply"] * replies + ["categorised"] * categorised
    kinds += ["plain"] * (count - len(kinds))
    rng.shuffle(kinds)
    body_bytes = answered = 0
    for n, kind in enumerate(kinds):
        sender = f"contact{n % 997}@{_DOMAINS[n % len(_DOMAINS)]}"
        html = _body(rng, n)
        body_bytes += len(html)
        if kind == "reply":
            original = sent[answered % len(sent)]
            answered += 1
            standin.deliver(
                seller,
                subject=f"Re: Your quote {n}",
                body_html=html,
                sender=sender,
                to=[seller],
                in_reply_to=original.internet_message_id,
                references=original.internet_message_id,
                conversation_id=original.conversation_id,
            )
        else:
            standin.deliver(
                seller,
                subject=f"{rng.choice(_WORDS).capitalize()} {n}",
                body_html=html,
                sender=sender,
                to=[seller],
                categories=[category] if kind == "categorised" else [],
            )
    return body_bytes // max(count, 1)


@contextlib.contextmanager
def count_storage_requests(table_netloc: str) -> Iterator[Counter[str]]:
    """Count every HTTP request the storage SDKs send (retries included), by service, method
    and table or container. The app's Store builds its clients with no hook for a counting
    policy, so azure-core's aiohttp transport class is wrapped for the duration instead."""
    counts: Counter[str] = Counter()
    original = AioHttpTransport.send

    async def send(self: AioHttpTransport, request: Any, **kwargs: Any) -> Any:
        parts = urlsplit(request.url)
        service = "table" if parts.netloc == table_netloc else "blob"
        # /account/name..., where a table name may end in "(keys)" or "()"
        name = unquote(parts.path).split("/")[2].split("(")[0] if parts.path.count("/") > 1 else ""
        counts[f"{service} {request.method} {name}"] += 1
        return await original(self, request, **kwargs)

    setattr(AioHttpTransport, "send", send)  # noqa: B010 (mypy refuses assigning a method)
    try:
        yield counts
    finally:
        setattr(AioHttpTransport, "send", original)  # noqa: B010


def _thread_cpu(tid: int | None) -> float:
    """CPU seconds one thread of this process has used (Linux /proc; NaN elsewhere)."""
    if tid is None:
        return math.nan
    try:
        stat = Path(f"/proc/self/task/{tid}/stat").read_text()
    except OSError:
        return math.nan
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _azurite_pid() -> int | None:
    """Azurite is a child of this process (started by tests.utils.azurite)."""
    try:
        for task in Path("/proc/self/task").iterdir():
            for child in (task / "children").read_text().split():
                if b"azurite" in Path(f"/proc/{child}/cmdline").read_bytes():
                    return int(child)
    except OSError:
        pass
    return None


def _standin_tid() -> int | None:
    found = [t for t in threading.enumerate() if t.name == "graph-standin"]
    return found[0].native_id if found else None


def _cpu_now(standin_tid: int | None, azurite_pid: int | None) -> tuple[float, ...]:
    return (
        time.thread_time(),
        _thread_cpu(standin_tid),
        time.process_time(),
        cpu_seconds(azurite_pid) if azurite_pid is not None else math.nan,
    )


def _cpu_used(before: tuple[float, ...], after: tuple[float, ...]) -> dict[str, float]:
    loop, standin, process, azurite_cpu = (b - a for a, b in zip(before, after, strict=True))
    return {
        "app event loop": loop,
        "stand-in thread": standin,
        "other runner threads": process - loop - standin,
        "Azurite": azurite_cpu,
    }


def _kind(method: str, path: str) -> str:
    if method == "GET":
        return "delta GET" if "/delta" in path.split("?")[0] else "other GET"
    if method == "POST" and path.split("?")[0].endswith("/$batch"):
        return "$batch POST"
    return "other write"


@dataclasses.dataclass(frozen=True)
class _Timed:
    report: SyncReport
    seconds: float
    cpu: dict[str, float]
    storage: Counter[str]
    start: float  # time.monotonic(), the clock of the stand-in's request log
    end: float
    permits: PermitStats


def _permit_stats(services: Services) -> PermitStats:
    return dataclasses.replace(services.graph().permits.stats)


def _stats_since(before: PermitStats, after: PermitStats) -> PermitStats:
    return PermitStats(
        **{
            f.name: getattr(after, f.name) - getattr(before, f.name)
            for f in dataclasses.fields(PermitStats)
        }
    )


async def _timed_cycle(
    services: Services, seller: str, table_netloc: str, profile: cProfile.Profile | None
) -> _Timed:
    standin_tid, azurite_pid = _standin_tid(), _azurite_pid()
    permits_before = _permit_stats(services)
    with count_storage_requests(table_netloc) as storage:
        before = _cpu_now(standin_tid, azurite_pid)
        start, wall = time.monotonic(), time.perf_counter()
        if profile is not None:
            profile.enable()
        report = await sync_mailbox(services, seller)
        if profile is not None:
            profile.disable()
        seconds, end = time.perf_counter() - wall, time.monotonic()
        cpu = _cpu_used(before, _cpu_now(standin_tid, azurite_pid))
    if report is None:
        raise RuntimeError("the mailbox was held by another cycle")
    permits = _stats_since(permits_before, _permit_stats(services))
    return _Timed(report, seconds, cpu, storage, start, end, permits)


async def _tracked_by_method(services: Services, since: str) -> dict[str, int]:
    counts: Counter[str] = Counter()
    async for row in services.store.activities.list_entities():
        if row["status"] == "tracked" and row["tracked_at"] >= since:
            counts[str(row["method"])] += 1
    return dict(counts)


async def _category_writes_lost(
    services: Services, standin: GraphStandIn, seller: str, since: str
) -> tuple[int, int]:
    """(items tracked in the cycle that had to get our category, of which lack it now)."""
    category = services.settings.tracking_category
    carried = {m["id"]: category in m["categories"] for m in standin.messages(seller)}
    needing = lost = 0
    async for row in services.store.activities.list_entities():
        graph_id = json.loads(row["mailboxes"]).get(seller)
        if row["tracked_at"] < since or graph_id is None or row["method"] == "category":
            continue
        needing += 1
        lost += not carried.get(graph_id, False)
    return needing, lost


async def _measure(
    connection_string: str,
    standin: GraphStandIn,
    seller_address: str,
    count: int,
    categorised: int,
    replies: int,
    profile: cProfile.Profile | None,
    *,
    throttled: bool,
) -> SyncResult:
    services = build_services(_settings(connection_string, standin))
    table_netloc = next(
        urlsplit(part.split("=", 1)[1]).netloc
        for part in connection_string.split(";")
        if part.startswith("TableEndpoint=")
    )
    try:
        await ensure_storage(services.store)
        await mailboxes.enrol(services, seller_address, [])
        sent = await _send_followed(services, standin, seller_address, FOLLOWED)
        for _ in range(2):  # the baseline, then the category writes it caused
            await sync_mailbox(services, seller_address)
        category = services.settings.tracking_category
        body_bytes = _fill_inbox(
            standin, seller_address, sent, count, categorised, replies, category
        )
        since = services.clock().isoformat()
        injected_before, refused_before = standin.faults_served, standin.refused(seller_address)
        if throttled:
            standin.mailbox_concurrency_limit = CONCURRENCY_LIMIT
            standin.throttle_randomly(THROTTLE_FRACTION, retry_after=THROTTLE_RETRY_AFTER)
        try:
            timed = await _timed_cycle(services, seller_address, table_netloc, profile)
        finally:
            standin.clear_faults()
            standin.mailbox_concurrency_limit = None
        start, end = timed.start, timed.end
        graph = Counter({"delta GET": 0, "other GET": 0, "$batch POST": 0, "other write": 0})
        graph.update(_kind(m, p) for m, p, at in standin.requests if start <= at <= end)
        batched = Counter(m for m, _, at in standin.batch_requests if start <= at <= end)
        seller = dev_seller(seller_address)
        replies_counted = 0
        for item in sent:
            view = await read_message(services, seller, item.message_id)
            replies_counted += int(view["kpis"]["replies"])
        needing, lost = await _category_writes_lost(services, standin, seller_address, since)
        return SyncResult(
            messages=count,
            categorised=categorised,
            replies_delivered=replies,
            followed=len(sent),
            body_bytes=body_bytes,
            page_size=services.settings.graph_page_size,
            seconds=timed.seconds,
            cpu=timed.cpu,
            graph=dict(graph),
            batched=dict(batched),
            storage=dict(timed.storage.most_common()),
            max_concurrency=standin.max_concurrency(seller_address),
            report=timed.report,
            replies_counted=replies_counted,
            tracked_by_method=await _tracked_by_method(services, since),
            needing_category=needing,
            lost=lost,
            limited=throttled,
            throttle_fraction=THROTTLE_FRACTION if throttled else 0.0,
            injected=standin.faults_served - injected_before,
            refused=standin.refused(seller_address) - refused_before,
            permits=timed.permits,
        )
    finally:
        await services.close()


async def _permit_cost(connection_string: str, rounds: int = PERMIT_ROUNDS) -> PermitCost:
    """One request's permit alone, uncontended: taken from storage and given back (no reuse),
    handed on inside the process, and a process-local semaphore."""
    services = build_services(Settings(storage_connection_string=SecretStr(connection_string)))
    container = services.store.blob_service.get_container_client(CONTAINER)
    mailbox = "bench.permits@contoso.example"

    async def per_hold(permits: MailboxPermits) -> float:
        async with permits.hold(mailbox):  # warm: blobs made, connection open
            pass
        await permits.close()
        started = time.perf_counter()
        for _ in range(rounds):
            async with permits.hold(mailbox):
                pass
        await permits.close()  # the give-backs run in the background: wait for them
        return (time.perf_counter() - started) * 1000 / rounds

    try:
        fresh = MailboxPermits(container, CONCURRENCY_LIMIT, reuse_seconds=0)
        storage_ms = await per_hold(fresh)
        requests = fresh.stats.storage_requests / fresh.stats.holds
        reused_ms = await per_hold(MailboxPermits(container, CONCURRENCY_LIMIT, reuse_seconds=60))
        local_ms = await per_hold(MailboxPermits(None, CONCURRENCY_LIMIT))
        return PermitCost(rounds, storage_ms, requests, reused_ms, local_ms)
    finally:
        await services.close()


def measure(
    messages: int = 10_000,
    categorised: int = 100,
    replies: int = 500,
    profile: cProfile.Profile | None = None,
) -> SyncRuns:
    """Run the sync benchmark end to end, clean then throttled (Azurite and the stand-in are
    started and torn down here). A profile handed in is enabled around the clean cycle."""
    if categorised + replies > messages:
        raise ValueError("categorised and replies are part of the changed messages")
    load = os.getloadavg()[0]
    with azurite() as connection_string, GraphStandIn() as standin:
        runs = []
        for seller, throttled in ((SELLER, False), (THROTTLED_SELLER, True)):
            standin.add_mailbox(seller)
            runs.append(
                asyncio.run(
                    _measure(
                        connection_string,
                        standin,
                        seller,
                        messages,
                        categorised,
                        replies,
                        None if throttled else profile,
                        throttled=throttled,
                    )
                )
            )
        permit = asyncio.run(_permit_cost(connection_string))
        return SyncRuns(runs[0], runs[1], permit, load)


def _run_lines(r: SyncResult) -> list[str]:
    g, p = r.graph, r.permits
    batched = ", ".join(f"{n} {m}" for m, n in sorted(r.batched.items())) or "none"
    cpu = ", ".join(f"{name} {seconds:.1f}" for name, seconds in r.cpu.items())
    storage = ", ".join(f"{k} {n}" for k, n in list(r.storage.items())[:6])
    check = (
        "every item seen, replies counted once, categorised and replies tracked, none failed, "
        "no category write lost"
        if r.checked
        else "FAILED"
    )
    return [
        f"  one cycle {r.seconds:.1f} s wall, {r.messages / r.seconds:.0f} messages/s; CPU {cpu}",
        f"  Graph: {g['delta GET']} delta GETs, {g['other GET']} other GETs, "
        f"{g['$batch POST']} $batch POSTs ({batched} inside), {g['other write']} other "
        f"writes; {r.reads_per_100:.2f} reads per 100 changed messages "
        f"(target <= {READS_PER_100_TARGET:.0f}); max concurrency {r.max_concurrency} "
        f"(limit {CONCURRENCY_LIMIT}); 429s injected {r.injected}, for the limit {r.refused}",
        f"  report: items {r.report.items}, tracked {r.report.tracked}, replies "
        f"{r.report.replies}, untracked {r.report.untracked}, failed {r.report.failed}, "
        f"category writes {r.report.category_writes} (retries {r.report.category_retries}, "
        f"lost {r.lost} of {r.needing_category})",
        f"  permits: {p.holds} held, {p.taken} leases taken, {p.reused} handed on, "
        f"{p.waits} waits; {p.storage_requests} lease requests, {p.storage_seconds:.2f} s",
        f"  storage: {r.storage_requests} requests ({storage}, ...)",
        f"  check: reply KPI summed over followed mail {r.replies_counted}/"
        f"{r.replies_delivered}, activities tracked by method {r.tracked_by_method}: {check}",
    ]


def report(runs: SyncRuns) -> str:
    """Plain-text lines for the terminal."""
    c, t, cost = runs.clean, runs.throttled, runs.permit
    return "\n".join(
        [
            f"sync: {c.messages} changed messages ({c.replies_delivered} replies to "
            f"{c.followed} followed, {c.categorised} categorised), page size {c.page_size}",
            "  clean:",
            *_run_lines(c),
            f"  throttled (limit {CONCURRENCY_LIMIT} enforced per batch item, 429 on "
            f"{THROTTLE_FRACTION:.0%} of requests):",
            *_run_lines(t),
            f"  throttled / clean wall time {runs.slowdown:.2f}",
            f"  one permit: {cost.storage_ms:.2f} ms taken and given back through storage "
            f"({cost.storage_requests_per_permit:.1f} requests), {cost.reused_ms:.3f} ms handed "
            f"on, {cost.local_ms:.3f} ms process-local",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.sync", description=__doc__)
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--categorised", type=int, default=100)
    parser.add_argument("--replies", type=int, default=500)
    parser.add_argument(
        "--profile", type=Path, help="write a cProfile of the timed cycle (event loop thread)"
    )
    args = parser.parse_args()
    profile = cProfile.Profile() if args.profile else None
    result = measure(args.messages, args.categorised, args.replies, profile)
    print(report(result))
    if profile is not None:
        profile.dump_stats(args.profile)
        print(f"  profile written to {args.profile}")
    if not result.checked:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
