"""Benchmark: the followed-emails list and the template statistics for a seller with many
messages, through the real HTTP app on real Azurite.

Set-up (not timed): the seller's message rows go straight into their partition of the
`messages` table, each with its list index rows (`shared.core.list_index.create_operations`,
as compose writes them), in transactions of at most 100 operations, shaped as compose and
delivery store them with KPI columns from `shared.engagement.kpis.to_columns`. Two more
sellers (2,000 and 100,000 messages by default) are set up the same way to count the
storage requests of each page at other sizes. Ten templates are created through the template
library and every message is counted for its template (sent, and opened or replied where it
was). Marking tens of thousands of messages one by one through `template_library.mark` takes
minutes on Azurite, so the big set's marker and counter rows are written directly, in the
same shape; a small set made both ways, side by side, shows one `GET /api/templates` gives
the same figures for each (and `mark`'s own rate is measured on it).

Timed: each request through `httpx.ASGITransport` on `functions.http_app.create_app()`, with
a development token, alternating with its bare-storage floor in the same rounds: the first
and a continuation page of the list for every sort. Storage requests are counted with
bench/sync.py's transport counter. The list as it was before its index (the seller's whole
partition read, sorted in memory) is timed a few times beside it, for comparison.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import dataclasses
import json
import random
import statistics
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from email.utils import make_msgid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from azure.core.exceptions import ServiceRequestError
from azure.data.tables.aio import TableClient
from pydantic import SecretStr

from bench.sync import count_storage_requests
from shared.bootstrap import build_services
from shared.core import list_index
from shared.core.auth import Seller, dev_seller, make_dev_token
from shared.core.ids import new_message_id
from shared.core.services import Services
from shared.core.settings import Settings
from shared.core.storage import ensure_storage
from shared.engagement.kpis import Kpis, Occurrence, to_columns
from shared.messages.reading import LIST_COLUMNS as MESSAGE_LIST_COLUMNS
from shared.templates import library as template_library
from shared.templates.library import MARKERS, Marker, TemplateIn
from shared.tracking.events import bucket_of
from tests.utils.azurite import azurite

SELLER = "bench.lists@contoso.example"
SIZES = (2_000, 100_000)  # more sellers, for the storage requests per page at other sizes
LIMIT = 50  # the list's default page size
PAGE_ROWS = 1000  # the most entities Table storage returns per query page
NOT_FOLLOWED = 0.02  # share of the seller's mail sent unfollowed by choice
_BATCH = 100  # the most operations one table transaction takes
_BEFORE_REPEATS = 3  # the list before its index takes seconds: timed a few times only
_WRITERS = 4  # transactions in flight during set-up
_SUBMIT_TRIES = 3
_SHARDS = 16  # the template library's counter rows per template
_MARKING = 8  # concurrent `mark` calls in the equality set, as concurrent sends would be
_HOST = "http://bench.test"
_DOMAINS = ("fabrikam.example", "northwind.example", "adatum.example", "litware.example")
_DEVICES = ("desktop", "desktop", "desktop", "mobile", "mobile", "tablet")
# Each template: share of the sends, open rate, reply rate (both per message sent).
_TEMPLATES = (
    ("Quote follow-up", 0.22, 0.62, 0.11),
    ("Renewal reminder", 0.17, 0.55, 0.08),
    ("Meeting request", 0.14, 0.58, 0.12),
    ("Product update", 0.11, 0.41, 0.03),
    ("Pricing change", 0.09, 0.47, 0.05),
    ("Case study", 0.08, 0.36, 0.02),
    ("Webinar invitation", 0.07, 0.44, 0.04),
    ("Contract ready", 0.06, 0.71, 0.15),
    ("Thank you", 0.04, 0.52, 0.06),
    ("Re-engagement", 0.02, 0.28, 0.03),
)
# The equality set: (sends, opened, replied) for each pair of twin templates.
_EQUALITY = ((45, 27, 6), (40, 18, 3), (12, 7, 1))
# Figures of a template that must match between the `mark` twin and the direct one.
_FIGURES = (
    "sent", "opened", "replied", "open_rate", "reply_rate", "open_rate_low", "reply_rate_low",
    "recommended", "why",
)  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Timing:
    """One request (or floor) timed over the rounds."""

    ms: list[float]  # wall time of each timed repeat
    cpu_ms: list[float]  # CPU time of the runner's thread (app, SDK and client) per repeat
    storage: dict[str, float]  # storage requests per request, by service, method and table

    @property
    def median_ms(self) -> float:
        return statistics.median(self.ms)

    @property
    def p90_ms(self) -> float:
        return statistics.quantiles(self.ms, n=10, method="inclusive")[-1]

    @property
    def cpu_median_ms(self) -> float:
        return statistics.median(self.cpu_ms)

    @property
    def storage_requests(self) -> float:
        return sum(self.storage.values())


def list_page(sort: str, order: str = "desc", *, continued: bool = False, state: str = "") -> str:
    """The name of one timed list request."""
    filtered = f"&follow_state={state}" if state else ""
    which = "continuation page" if continued else "first page"
    return f"GET /api/messages?sort={sort}&order={order}{filtered} ({which})"


# What is timed, in the order of each round: the app's requests and their floors.
LIST_FIRST = list_page("sent_at")  # the default
LIST_NEXT = list_page("sent_at", continued=True)
LIST_OPENS = list_page("opens")
LIST_ANY = list_page("sent_at", state="any")  # every follow_state's range, merged
LISTS = [
    list_page(sort, continued=continued)
    for sort in list_index.SORT_FIELDS
    for continued in (False, True)
] + [list_page("opens", "asc"), LIST_ANY]
TEMPLATES = "GET /api/templates?sort=recommended&order=desc"
TEMPLATE = "GET /api/templates/{id}"
LIST_FLOOR = "floor: one index range query + the page's point reads"
# The two parts of that floor apart: on Azurite a query reads every row of the table
# (LokiTableMetadataStore.queryTableEntities filters the whole collection, then sorts), so
# the range query's time grows with the table while a point read's does not.
RANGE_ALONE = "part of the floor: the index range query alone"
POINT_READ = "part of the floor: one point read"
TEMPLATES_FLOOR = "floor: templates query + one counter query"
TEMPLATES_BARE = "bare: templates query + every counter query"
TEMPLATE_FLOOR = "floor: template read + templates query + one counter query"
FLOORS = {
    **dict.fromkeys(LISTS, LIST_FLOOR),
    TEMPLATES: TEMPLATES_FLOOR,
    TEMPLATE: TEMPLATE_FLOOR,
}
BEFORE = "before the index: the seller's partition read to the end (key + sort column)"


@dataclasses.dataclass(frozen=True)
class ListsResult:
    """The figures of one run and the checks made on the answers."""

    messages: int  # the seller's message rows
    followed: int  # of which followed (the rest not followed)
    templates: int
    marks: dict[str, int]  # sent, opened and replied counts over the templates
    repeats: int
    timings: dict[str, Timing]
    setup_seconds: dict[str, float]  # what each set-up step took (not timed)
    before: Timing  # the list as it was made before its index, first page by sent_at
    pages: dict[int, dict[str, float]]  # messages -> list request -> storage requests
    mark_rate: float  # marks per second through `template_library.mark` (equality set)
    equality_marks: int  # marks made through `mark` for the equality set
    equal: bool  # the directly written counts read the same as the marked ones
    checks: dict[str, bool]  # each answer was what the rows say it should be

    def ratio(self, name: str) -> float:
        """A request's median over its floor's, from the same rounds."""
        return self.timings[name].median_ms / self.timings[FLOORS[name]].median_ms

    @property
    def marks_total(self) -> int:
        return sum(self.marks.values())

    @property
    def mark_estimate_seconds(self) -> float:
        """How long the big set's marks would take through `mark` at the measured rate."""
        return self.marks_total / self.mark_rate

    @property
    def speedup(self) -> float:
        """The list before its index over the list now, first page by sent_at."""
        return self.before.median_ms / self.timings[LIST_FIRST].median_ms

    @property
    def flat(self) -> bool:
        """The same storage requests for each page whatever the seller's message count."""
        return all(counts == self.pages[self.messages] for counts in self.pages.values())

    @property
    def checked(self) -> bool:
        return self.equal and self.flat and all(self.checks.values())


@dataclasses.dataclass(frozen=True)
class _Message:
    """What the checks need to know of a generated row."""

    id: str
    template: int
    followed: bool
    sent_at: str
    opens: int
    replies: int
    values: dict[str, Any]  # the sort columns


def _kpis(rng: random.Random, sent: datetime, open_rate: float, reply_rate: float) -> Kpis:
    """Folded KPIs for one followed message: opens, clicks and attachment views after it was
    sent (first and latest of each), a reply for some of the opened ones."""
    if rng.random() >= open_rate:
        return Kpis()
    first: dict[str, Occurrence] = {}
    last: dict[str, Occurrence] = {}
    devices: Counter[str] = Counter()
    at = sent + timedelta(minutes=rng.lognormvariate(4, 1.5))
    opens = 1 + min(int(rng.expovariate(0.6)), 40)
    for _ in range(opens):
        seen = Occurrence("open", at, 0, rng.choice(_DEVICES))
        first.setdefault("open", seen)
        last["open"] = seen
        devices[seen.device] += 1
        at += timedelta(hours=rng.expovariate(1 / 30))
    clicks: Counter[int] = Counter()
    if rng.random() < 0.35:
        for _ in range(rng.randint(1, 4)):
            seen = Occurrence("click", at, rng.randrange(3), rng.choice(_DEVICES))
            first.setdefault("click", seen)
            last["click"] = seen
            clicks[seen.index] += 1
            at += timedelta(minutes=rng.expovariate(1 / 20))
    views: Counter[int] = Counter()
    if rng.random() < 0.1:
        seen = Occurrence("attachment", at, 0, rng.choice(_DEVICES))
        first["attachment"] = last["attachment"] = seen
        views[0] += 1
    newest = max(o.at for o in last.values())
    replies = 0
    if rng.random() < reply_rate / open_rate:  # replies come from the opened ones
        replies = 1 + int(rng.random() < 0.15)
        reply = Occurrence("reply", at + timedelta(hours=rng.expovariate(1 / 6)), 0, "")
        first["reply"] = last["reply"] = reply
    return Kpis(
        opens=opens,
        link_clicks=sum(clicks.values()),
        attachment_views=sum(views.values()),
        replies=replies,
        previews=int(rng.random() < 0.1),
        clicks_by_link=dict(clicks),
        views_by_attachment=dict(views),
        devices=dict(devices),
        first=first,
        last=last,
        folded_bucket=bucket_of(newest),
    )


def _row(
    rng: random.Random, seller: Seller, n: int, template_id: str, template: int, now: datetime
) -> dict[str, Any]:
    """A message row as compose stores it and delivery completes it ("sent")."""
    name, _, open_rate, reply_rate = _TEMPLATES[template]
    sent = now - timedelta(seconds=rng.uniform(3600, 365 * 86400))
    followed = rng.random() >= NOT_FOLLOWED
    kpis = _kpis(rng, sent, open_rate, reply_rate) if followed else Kpis()
    message_id = new_message_id(seller.key)
    attachments = []
    if rng.random() < 0.15:
        attachments.append(
            {
                "index": 0,
                "name": "proposal.pdf",
                "content_type": "application/pdf",
                "size": rng.randint(20_000, 900_000),
                "followed": followed,
            }
        )
    regarding = (
        json.dumps({"type": "opportunity", "id": f"opp-{rng.randrange(10**6)}"})
        if rng.random() < 0.3
        else ""
    )
    return {
        "PartitionKey": seller.partition,
        "RowKey": message_id,
        "owner": seller.key,
        "seller": seller.email,
        "subject": f"{name}: Buyer {n}",
        "template_id": template_id,
        "to": json.dumps([f"buyer{n}@{_DOMAINS[n % len(_DOMAINS)]}"]),
        "cc": json.dumps([]),
        "bcc": json.dumps([]),
        "status": "sent",
        "follow_state": "followed" if followed else "not_followed",
        "created_at": (sent - timedelta(seconds=rng.uniform(2, 600))).isoformat(),
        "sent_at": sent.isoformat(),
        "internet_message_id": make_msgid(domain="engagement.local"),
        "regarding": regarding,
        "attachments": json.dumps(attachments),
        **to_columns(kpis),
        "conversation_id": "",
        "provider_id": "",
        "lease_until": "",
    }


async def _in_transactions(table: TableClient, partitions: dict[str, list[dict[str, Any]]]) -> None:
    """Write the rows, 100 per transaction (one partition each), a few transactions at once.
    Upserts, so a transaction whose body Azurite dropped under load can simply be sent again."""
    await _submit_all(
        table,
        [
            [("upsert", row) for row in rows[i : i + _BATCH]]
            for rows in partitions.values()
            for i in range(0, len(rows), _BATCH)
        ],
    )


def _message_transactions(rows: Sequence[dict[str, Any]]) -> list[list[list_index.Operation]]:
    """Message rows with their list index rows, as compose writes each (`listed`, and its
    index rows in the same transaction), packed whole into transactions of at most 100
    operations. Upserts, so a transaction can be sent again."""
    batches: list[list[list_index.Operation]] = [[]]
    for row in rows:
        operations = [("upsert", e) for _, e, *_ in list_index.create_operations(row)]
        if len(batches[-1]) + len(operations) > _BATCH:
            batches.append([])
        batches[-1] += operations
    return batches


async def _submit_all(table: TableClient, batches: list[list[list_index.Operation]]) -> None:
    gate = asyncio.Semaphore(_WRITERS)

    async def submit(batch: list[list_index.Operation]) -> None:
        async with gate:
            for attempt in range(_SUBMIT_TRIES):
                try:
                    await table.submit_transaction(batch)
                    return
                except ServiceRequestError:
                    if attempt == _SUBMIT_TRIES - 1:
                        raise
                    await asyncio.sleep(0.5)

    await asyncio.gather(*(submit(batch) for batch in batches if batch))


def _counts_of(rows: Sequence[dict[str, Any]]) -> dict[str, int]:
    totals = dict.fromkeys(MARKERS, 0)
    for row in rows:
        totals["sent"] += 1
        totals["opened"] += int(int(row["opens"]) > 0)
        totals["replied"] += int(int(row["replies"]) > 0)
    return totals


def _marks_of(rows: Sequence[dict[str, Any]]) -> list[tuple[str, Marker]]:
    """(message id, marker) for every mark the hooks would have made for these messages:
    sent at delivery, opened at the fold that first saw an open, replied at the first reply."""
    marks: list[tuple[str, Marker]] = []
    for row in rows:
        marks.append((row["RowKey"], "sent"))
        if int(row["opens"]) > 0:
            marks.append((row["RowKey"], "opened"))
        if int(row["replies"]) > 0:
            marks.append((row["RowKey"], "replied"))
    return marks


def _stats_rows(
    rng: random.Random, template_id: str, marks: Sequence[tuple[str, Marker]]
) -> list[dict[str, Any]]:
    """The `templatestats` rows `mark` leaves for these marks: one marker row per mark, and
    counter rows with every marker column, each mark counted on a shard picked at random."""
    shards: dict[int, dict[str, int]] = {}
    for _, what in marks:
        shard = shards.setdefault(rng.randrange(_SHARDS), dict.fromkeys(MARKERS, 0))
        shard[what] += 1
    markers = [{"PartitionKey": template_id, "RowKey": f"{what}-{m}"} for m, what in marks]
    counters = [
        {"PartitionKey": template_id, "RowKey": f"counts-{shard:02d}", **totals}
        for shard, totals in sorted(shards.items())
    ]
    return markers + counters


async def _create_templates(services: Services, seller: Seller, names: Sequence[str]) -> list[str]:
    ids: list[str] = []
    for name in names:
        body = TemplateIn(
            name=name,
            subject=f"{name}: {{{{ recipient.company | default('your team') }}}}",
            html="<p>Hello {{ recipient.first_name | default('there') }},</p>"
            f"<p>{name}: see <a href='https://contoso.example/{len(ids)}'>the details</a>.</p>"
            "<p>Best regards,<br>{{ sender.email }}</p>",
        )
        ids.append(str((await template_library.create(services, seller, body))["id"]))
    return ids


def _equality_rows(rng: random.Random, seller: Seller) -> list[list[dict[str, Any]]]:
    """Message stand-ins (id, opens, replies) for each pair of the equality set."""
    sets = []
    for sends, opened, replied in _EQUALITY:
        rows = [
            {"RowKey": new_message_id(seller.key), "opens": 0, "replies": 0} for _ in range(sends)
        ]
        for row in rng.sample(rows, opened):
            row["opens"] = 1
        for row in rng.sample(rows, replied):
            row["replies"] = 1
        sets.append(rows)
    return sets


async def _prove_equal(
    services: Services, seller: Seller, http: httpx.AsyncClient, headers: dict[str, str]
) -> tuple[bool, int, float]:
    """Twin templates, one marked through `template_library.mark`, one written directly with
    the same marks: one GET /api/templates must show the same figures for each twin, and
    their rows must have the same keys and columns. The twins are archived afterwards.
    Returns (equal, marks made through `mark`, seconds they took)."""
    rng = random.Random(7)
    sets = _equality_rows(rng, seller)
    names = [f"equality {n} {how}" for n in range(len(sets)) for how in ("mark", "direct")]
    ids = await _create_templates(services, seller, names)
    marked, direct = ids[0::2], ids[1::2]
    gate = asyncio.Semaphore(_MARKING)

    async def mark(template_id: str, message_id: str, what: Marker) -> bool:
        async with gate:
            return await template_library.mark(services.store, template_id, message_id, what)

    jobs = [
        (t, m, what) for t, rows in zip(marked, sets, strict=True) for m, what in _marks_of(rows)
    ]
    rng.shuffle(jobs)  # sends, opens and replies of different messages interleave
    start = time.perf_counter()
    counted = await asyncio.gather(*(mark(*job) for job in jobs))
    seconds = time.perf_counter() - start
    await _in_transactions(
        services.store.template_stats,
        {t: _stats_rows(rng, t, _marks_of(rows)) for t, rows in zip(direct, sets, strict=True)},
    )
    answer = await http.get("/api/templates", headers=headers)
    answer.raise_for_status()
    by_id = {item["id"]: item for item in answer.json()["items"]}
    equal = all(counted) and all(
        [by_id[a][f] for f in _FIGURES] == [by_id[b][f] for f in _FIGURES]
        for a, b in zip(marked, direct, strict=True)
    )
    for (a, b), (sends, opened, replied) in zip(
        zip(marked, direct, strict=True), _EQUALITY, strict=True
    ):
        equal &= (by_id[a]["sent"], by_id[a]["opened"], by_id[a]["replied"]) == (
            sends,
            opened,
            replied,
        )
        equal &= await _shape(services.store.template_stats, a) == await _shape(
            services.store.template_stats, b
        )
    for template_id in ids:
        await template_library.delete(services, seller, template_id)
    return equal, len(jobs), seconds


async def _shape(
    table: TableClient, template_id: str
) -> tuple[frozenset[str], frozenset[str], dict[str, int]]:
    """A template's stats rows without their partition: marker keys, the columns of its
    counter rows, and the counter totals."""
    markers, columns, totals = set(), set(), Counter[str]()
    async for row in table.query_entities("PartitionKey eq @pk", parameters={"pk": template_id}):
        key = row["RowKey"]
        if key.startswith("counts-"):
            columns.add(",".join(sorted(row)))
            totals.update({what: int(row[what]) for what in MARKERS})
        else:
            markers.add(key)
    return frozenset(markers), frozenset(columns), dict(totals)


async def _setup(
    services: Services,
    seller: Seller,
    count: int,
    http: httpx.AsyncClient,
    headers: dict[str, str],
) -> tuple[list[_Message], list[str], dict[str, int], dict[str, float], tuple[bool, int, float]]:
    setup: dict[str, float] = {}
    start = time.perf_counter()
    equality = await _prove_equal(services, seller, http, headers)
    setup["equality set (twin templates, marks through `mark` and direct)"] = (
        time.perf_counter() - start
    )

    start = time.perf_counter()
    ids = await _create_templates(services, seller, [p[0] for p in _TEMPLATES])
    setup["templates created through the library"] = time.perf_counter() - start

    start = time.perf_counter()
    rng = random.Random(20240611)
    now = services.clock()
    weights = [p[1] for p in _TEMPLATES]
    chosen = rng.choices(range(len(ids)), weights, k=count)
    rows = [_row(rng, seller, n, ids[t], t, now) for n, t in enumerate(chosen)]
    setup["message rows generated"] = time.perf_counter() - start
    _say(f"set-up: {count:,} messages and their index rows")
    start = time.perf_counter()
    batches = _message_transactions(rows)
    await _submit_all(services.store.messages, batches)
    setup[f"message rows and their index rows written ({len(batches):,} transactions)"] = (
        time.perf_counter() - start
    )

    start = time.perf_counter()
    by_template: dict[int, list[dict[str, Any]]] = {t: [] for t in range(len(ids))}
    for t, row in zip(chosen, rows, strict=True):
        by_template[t].append(row)
    stats = {ids[t]: _stats_rows(rng, ids[t], _marks_of(r)) for t, r in by_template.items()}
    await _in_transactions(services.store.template_stats, stats)
    setup["template marks written directly"] = time.perf_counter() - start

    marks = _counts_of(rows)
    messages = [
        _Message(
            r["RowKey"],
            t,
            r["follow_state"] == "followed",
            r["sent_at"],
            int(r["opens"]),
            int(r["replies"]),
            {field: r.get(field) for field in list_index.SORT_FIELDS},
        )
        for t, r in zip(chosen, rows, strict=True)
    ]
    return messages, ids, marks, setup, equality


async def _measure(
    connection_string: str,
    count: int,
    repeats: int,
    profile: cProfile.Profile | None,
    sizes: Sequence[int],
) -> ListsResult:
    services = build_services(Settings(storage_connection_string=SecretStr(connection_string)))
    table_netloc = next(
        urlsplit(part.split("=", 1)[1]).netloc
        for part in connection_string.split(";")
        if part.startswith("TableEndpoint=")
    )
    seller = dev_seller(SELLER)
    headers = {"Authorization": f"Bearer {make_dev_token(services.settings, SELLER)}"}
    from functions.http_app import create_app

    transport = httpx.ASGITransport(app=create_app(lambda: services))
    try:
        await ensure_storage(services.store)
        async with httpx.AsyncClient(transport=transport, base_url=_HOST) as http:
            messages, ids, marks, setup, (equal, equality_marks, mark_seconds) = await _setup(
                services, seller, count, http, headers
            )
            _say("timing the rounds")
            tokens = await _tokens(http, headers)
            calls = _calls(services, seller, http, headers, ids, tokens)
            timings = await _rounds(calls, repeats, table_netloc, profile)
            before = await _time(
                lambda: _before_the_index(services, seller), _BEFORE_REPEATS, table_netloc
            )
            checks = await _check(http, headers, messages, ids, marks, tokens)
            pages = {count: await _page_requests(http, headers, table_netloc)}
            for size in sizes:
                _say(f"set-up: another seller with {size:,} messages")
                start = time.perf_counter()
                other, other_headers = await _other_seller(services, size, ids[0])
                setup[f"{size:,} messages of another seller, with index rows"] = (
                    time.perf_counter() - start
                )
                pages[size] = await _page_requests(http, other_headers, table_netloc)
                checks[f"{size:,} messages: first page by sent_at"] = await _first_page_right(
                    http, other_headers, other
                )
        return ListsResult(
            messages=count,
            followed=sum(m.followed for m in messages),
            templates=len(ids),
            marks=marks,
            repeats=repeats,
            timings=timings,
            setup_seconds=setup,
            before=before,
            pages=dict(sorted(pages.items())),
            mark_rate=equality_marks / mark_seconds,
            equality_marks=equality_marks,
            equal=equal,
            checks=checks,
        )
    finally:
        await services.close()


def _say(what: str) -> None:
    """Progress on stderr: a big set-up takes minutes."""
    print(f"lists: {what}", file=sys.stderr, flush=True)


async def _other_seller(
    services: Services, count: int, template_id: str
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Another seller with `count` messages (and their index rows), for requests per page."""
    email = f"bench.lists.{count}@contoso.example"
    seller = dev_seller(email)
    rng, now = random.Random(count), services.clock()
    rows = [_row(rng, seller, n, template_id, 0, now) for n in range(count)]
    await _submit_all(services.store.messages, _message_transactions(rows))
    return rows, {"Authorization": f"Bearer {make_dev_token(services.settings, email)}"}


async def _first_page_right(
    http: httpx.AsyncClient, headers: dict[str, str], rows: Sequence[dict[str, Any]]
) -> bool:
    followed = [r for r in rows if r["follow_state"] == "followed"]
    expected = sorted(followed, key=lambda r: (r["sent_at"], r["RowKey"]), reverse=True)
    page = await _get(http, "/api/messages", headers, limit=LIMIT)
    return [i["id"] for i in page["items"]] == [r["RowKey"] for r in expected[:LIMIT]]


def _params(name: str) -> dict[str, Any]:
    """The query parameters of a timed list request, from its name (without continuation)."""
    query = name.split("?", 1)[1].split(" ", 1)[0]
    return {"limit": LIMIT, **dict(part.split("=", 1) for part in query.split("&"))}


async def _tokens(http: httpx.AsyncClient, headers: dict[str, str]) -> dict[str, str]:
    """The continuation token after the first page of each timed continuation request."""
    tokens = {}
    for name in LISTS:
        if name.endswith("(continuation page)"):
            first = await _get(http, "/api/messages", headers, **_params(name))
            tokens[name] = first["continuation"]
    return tokens


async def _page_requests(
    http: httpx.AsyncClient, headers: dict[str, str], table_netloc: str
) -> dict[str, float]:
    """Storage requests of each timed list request, made once, for this seller."""
    tokens = await _tokens(http, headers)
    counts = {}
    for name in LISTS:
        extra = {"continuation": tokens[name]} if name in tokens else {}
        with count_storage_requests(table_netloc) as counted:
            await _get(http, "/api/messages", headers, **_params(name), **extra)
        counts[name] = float(sum(counted.values()))
    return counts


async def _before_the_index(services: Services, seller: Seller) -> object:
    """The first page by sent_at as the list made it before its index: the key and sort
    column of every followed message of the seller's partition, sorted in memory, then
    the page's rows read whole (16 in flight)."""
    store = services.store
    keys = [
        (row["sent_at"], row["RowKey"])
        async for row in store.messages.query_entities(
            "PartitionKey eq @pk and owner eq @owner and follow_state eq @state",
            parameters={"pk": seller.partition, "owner": seller.key, "state": "followed"},
            select=["RowKey", "sent_at"],
        )
    ]
    keys.sort(reverse=True)
    return await _point_reads(services, seller, [k for _, k in keys[:LIMIT]])


async def _point_reads(services: Services, seller: Seller, ids: Sequence[str]) -> list[Any]:
    gate = asyncio.Semaphore(16)  # as shared.messages.reading reads a page

    async def read(message_id: str) -> Any:
        async with gate:
            return await services.store.messages.get_entity(
                seller.partition, message_id, select=MESSAGE_LIST_COLUMNS
            )

    return await asyncio.gather(*(read(m) for m in ids))


async def _time(call: Callable[[], Awaitable[object]], repeats: int, table_netloc: str) -> Timing:
    """One call timed `repeats` times, after one untimed."""
    await call()
    ms, cpu, storage = [], [], Counter[str]()
    for _ in range(repeats):
        with count_storage_requests(table_netloc) as counted:
            cpu_start, start = time.thread_time(), time.perf_counter()
            await call()
            ms.append((time.perf_counter() - start) * 1000)
            cpu.append((time.thread_time() - cpu_start) * 1000)
        storage.update(counted)
    return Timing(ms, cpu, {what: n / repeats for what, n in storage.most_common()})


async def _get(
    http: httpx.AsyncClient, path: str, headers: dict[str, str], **params: Any
) -> dict[str, Any]:
    answer = await http.get(path, params=params, headers=headers)
    answer.raise_for_status()
    result: dict[str, Any] = answer.json()
    return result


def _calls(
    services: Services,
    seller: Seller,
    http: httpx.AsyncClient,
    headers: dict[str, str],
    ids: Sequence[str],
    tokens: dict[str, str],
) -> dict[str, Callable[[], Awaitable[object]]]:
    """Each timed request and each floor, as a call that does it once."""
    store = services.store
    # What shared.messages.reading.list_messages reads for the default first page, bare: one
    # range of the list index (the seller's partition, followed, sent_at desc), then the
    # page's rows whole with its own column list.
    prefix = list_index.range_prefix(seller.key, "sent_at", "desc", "followed")

    known: list[str] = []  # a message id of the page, for the point read

    async def index_range() -> list[str]:
        keys: list[str] = []
        async for row in store.messages.query_entities(
            "PartitionKey eq @pk and RowKey gt @low and RowKey lt @high",
            parameters={
                "pk": seller.partition,
                "low": prefix,
                "high": list_index.range_end(prefix),
            },
            select=["RowKey"],
            results_per_page=LIMIT + 1,
        ):
            keys.append(list_index.message_at("desc", row["RowKey"][len(prefix) :]))
            if len(keys) > LIMIT:
                break
        known[:] = keys[:1]
        return keys

    async def list_floor() -> object:
        return await _point_reads(services, seller, (await index_range())[:LIMIT])

    async def point_read() -> object:
        return await _point_reads(services, seller, known or (await index_range())[:1])

    # The queries of shared.templates.library: the template list, then a template's counters.
    async def templates_query() -> list[Any]:
        return [
            row
            async for row in store.templates.query_entities(
                "PartitionKey eq @pk and archived eq false",
                parameters={"pk": "org"},
                select=["RowKey", "name", "subject", "created_by", "created_at", "updated_at"],
            )
        ]

    async def counter_query(template_id: str) -> list[Any]:
        return [
            row
            async for row in store.template_stats.query_entities(
                "PartitionKey eq @pk and RowKey ge @low and RowKey lt @high",
                parameters={"pk": template_id, "low": "counts-", "high": "counts."},
                select=list(MARKERS),
            )
        ]

    async def templates_floor() -> object:
        rows = await templates_query()
        return await counter_query(rows[0]["RowKey"])

    async def templates_bare() -> object:
        rows = await templates_query()
        return await asyncio.gather(*(counter_query(r["RowKey"]) for r in rows))

    async def template_floor() -> object:
        await store.templates.get_entity("org", ids[0])
        return await templates_floor()

    def app(path: str, **params: Any) -> Callable[[], Awaitable[object]]:
        return lambda: _get(http, path, headers, **params)

    lists = {
        name: app(
            "/api/messages",
            **_params(name),
            **({"continuation": tokens[name]} if name in tokens else {}),
        )
        for name in LISTS
    }
    return {
        LIST_FLOOR: list_floor,
        RANGE_ALONE: index_range,
        POINT_READ: point_read,
        **lists,
        TEMPLATES_FLOOR: templates_floor,
        TEMPLATES_BARE: templates_bare,
        TEMPLATES: app("/api/templates", sort="recommended", order="desc"),
        TEMPLATE_FLOOR: template_floor,
        TEMPLATE: app(f"/api/templates/{ids[0]}"),
    }


async def _rounds(
    calls: dict[str, Callable[[], Awaitable[object]]],
    repeats: int,
    table_netloc: str,
    profile: cProfile.Profile | None,
) -> dict[str, Timing]:
    """`repeats` rounds after a warm-up round; each round makes every call once, a floor
    just before the requests it is the floor of, so noise falls on both alike. A profile is
    enabled around the list requests only."""
    ms: dict[str, list[float]] = {name: [] for name in calls}
    cpu: dict[str, list[float]] = {name: [] for name in calls}
    storage: dict[str, Counter[str]] = {name: Counter() for name in calls}
    for round_ in range(repeats + 1):
        for name, call in calls.items():
            profiled = profile is not None and name in LISTS
            with count_storage_requests(table_netloc) as counted:
                cpu_start, start = time.thread_time(), time.perf_counter()
                if profiled:
                    profile.enable()  # type: ignore[union-attr]
                await call()
                if profiled:
                    profile.disable()  # type: ignore[union-attr]
                wall, used = time.perf_counter() - start, time.thread_time() - cpu_start
            if round_:
                ms[name].append(wall * 1000)
                cpu[name].append(used * 1000)
                storage[name].update(counted)
    return {
        name: Timing(
            ms[name],
            cpu[name],
            {what: n / repeats for what, n in storage[name].most_common()},
        )
        for name in calls
    }


async def _check(
    http: httpx.AsyncClient,
    headers: dict[str, str],
    messages: Sequence[_Message],
    ids: Sequence[str],
    marks: dict[str, int],
    tokens: dict[str, str],
) -> dict[str, bool]:
    """The answers against the rows written: every timed page in the order the rows give
    (sorted in memory as the list was before its index), the template counts."""
    listed = await _get(http, "/api/templates", headers, sort="recommended", order="desc")
    one = await _get(http, f"/api/templates/{ids[0]}", headers)
    expected = {t: Counter[str]() for t in ids}
    for m in messages:
        expected[ids[m.template]].update(
            sent=1, opened=int(m.opens > 0), replied=int(m.replies > 0)
        )
    items = {item["id"]: item for item in listed["items"]}
    checks = {}
    for name in LISTS:
        params = _params(name)
        sort, order = params["sort"], params["order"]
        state = params.get("follow_state", "followed")
        mine = [m for m in messages if state == "any" or m.followed == (state == "followed")]

        def key(m: _Message, sort: str = sort) -> tuple[Any, str]:
            value = m.values.get(sort)
            text = sort in list_index.TIME_FIELDS
            return (str(value or "") if text else int(value or 0), m.id)

        ordered = sorted(mine, key=key, reverse=order == "desc")
        skip = LIMIT if name in tokens else 0
        extra = {"continuation": tokens[name]} if name in tokens else {}
        page = await _get(http, "/api/messages", headers, **params, **extra)
        checks[f"{name}: the rows' order"] = [i["id"] for i in page["items"]] == [
            m.id for m in ordered[skip : skip + LIMIT]
        ]
    return {
        **checks,
        "templates: each one's sent, opened and replied": set(items) == set(ids)
        and all([items[t][w] for w in MARKERS] == [expected[t][w] for w in MARKERS] for t in ids),
        "templates: the counts add up to the messages'": [
            sum(i[w] for i in items.values()) for w in MARKERS
        ]
        == [marks[w] for w in MARKERS],
        "one template: the list's figures and its HTML": all(
            one[f] == items[ids[0]][f] for f in _FIGURES
        )
        and bool(one.get("html")),
    }


def measure(
    messages: int = 20_000,
    repeats: int = 15,
    profile: cProfile.Profile | None = None,
    sizes: Sequence[int] = SIZES,
) -> ListsResult:
    """Run the benchmark end to end (Azurite is started and torn down here). A profile
    handed in is enabled around the timed list requests only. `sizes`: the message counts
    of the other sellers whose pages' storage requests are counted."""
    if min(messages, *sizes) < 2 * LIMIT + 1:
        raise ValueError(f"the list needs more than {2 * LIMIT} messages for two full pages")
    with azurite(in_memory=True) as connection_string:
        return asyncio.run(_measure(connection_string, messages, repeats, profile, sizes))


def report(result: ListsResult) -> str:
    """Plain-text lines for the terminal."""
    r = result
    lines = [
        f"lists: {r.messages:,} messages ({r.followed:,} followed), {r.templates} templates "
        f"({r.marks['sent']:,} sent, {r.marks['opened']:,} opened, {r.marks['replied']:,} "
        f"replied), {r.repeats} repeats",
    ]
    for name, timing in r.timings.items():
        ratio = f", {r.ratio(name):.2f}x its floor" if name in FLOORS else ""
        lines.append(
            f"  {name}: median {timing.median_ms:.1f} ms, p90 {timing.p90_ms:.1f} ms, "
            f"CPU {timing.cpu_median_ms:.1f} ms, {timing.storage_requests:g} storage "
            f"requests{ratio}"
        )
    lines.append(
        f"  {BEFORE}: median {r.before.median_ms:,.1f} ms, {r.before.storage_requests:g} storage "
        f"requests ({len(r.before.ms)} repeats); the list now: {r.speedup:,.0f}x faster"
    )
    for size, counts in r.pages.items():
        lines.append(
            f"  storage requests per page at {size:,} messages: "
            + ", ".join(f"{n:g}" for n in counts.values())
            + f" (in the order above{'' if size != r.messages else '; the timed seller'})"
        )
    lines.append(
        "  storage requests per page "
        + ("the same at every size" if r.flat else "DIFFER between sizes")
    )
    lines.append(
        "  set-up: "
        + ", ".join(f"{what} {seconds:.1f} s" for what, seconds in r.setup_seconds.items())
    )
    lines.append(
        f"  mark: {r.equality_marks} marks through template_library.mark at "
        f"{r.mark_rate:.0f}/s; the {r.marks_total:,} marks of the big set would take "
        f"~{r.mark_estimate_seconds:.0f} s that way"
    )
    failed = [what for what, ok in r.checks.items() if not ok]
    lines.append(
        "  check: "
        + ("direct counts equal the marked ones" if r.equal else "direct counts DIFFER")
        + "; "
        + ("every answer as the rows say" if not failed else "FAILED: " + "; ".join(failed))
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.lists", description=__doc__)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument(
        "--sizes",
        type=int,
        nargs="*",
        default=list(SIZES),
        help="message counts of other sellers whose storage requests per page are counted",
    )
    parser.add_argument("--profile", type=Path, help="write a cProfile of the timed list requests")
    args = parser.parse_args()
    profile = cProfile.Profile() if args.profile else None
    result = measure(args.messages, args.repeats, profile, args.sizes)
    print(report(result))
    if profile is not None:
        profile.dump_stats(args.profile)
        print(f"  profile written to {args.profile}")
    if not result.checked:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
