"""Renders docs/performance.md from one run of the benchmarks: every figure in it comes from
the results handed in, none is written by hand."""

from __future__ import annotations

import os
import platform
import statistics
from datetime import UTC, datetime
from pathlib import Path

from bench import alerts, bench_rewrite, fold, imports, lists, pixel, sync, webapp
from shared.tracking.events import SHARDS

PIXEL_TARGET = 0.8


def cpu_model() -> str:
    """The CPU's model name as the kernel reports it."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _verdict(met: bool) -> str:
    return "met" if met else "**missed**"


def render(
    pixel_result: pixel.PixelResult,
    rewrite: bench_rewrite.RewriteRun,
    import_result: imports.ImportResult,
    sync_result: sync.SyncRuns,
    lists_result: lists.ListsResult,
    classify_result: dict[str, float],
    alerts_result: alerts.AlertResult,
    fold_result: fold.FoldResult,
    now: datetime | None = None,
) -> str:
    """The whole document."""
    moment = (now or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M UTC")
    p, r, i = pixel_result, rewrite, import_result
    runs_per_server = len(p.runs) // 2
    if i.graph_imported:
        graph_note = f"{', '.join(i.graph_modules)} loaded by `import {imports.APP}`"
    else:
        graph_note = f"no `msgraph*` or `kiota*` module loaded by `import {imports.APP}`"
    if not i.graph_installed:
        graph_note += "; msgraph is not installed in this environment, so this cannot fail here"
    lines = [
        "# Performance",
        "",
        f"Written by `python -m bench` (or `make bench`) on {moment}. Every figure below comes "
        "from that run; run it again to refresh this page rather than editing it.",
        "",
        "## Machine",
        "",
        "| What | Value |",
        "| --- | --- |",
        f"| Platform | {platform.platform()} |",
        f"| CPU | {cpu_model()} |",
        f"| Logical CPUs | {os.cpu_count()} |",
        f"| Python | {platform.python_version()} ({platform.python_implementation()}) |",
        "",
        "## Summary",
        "",
        "| Benchmark | Result | Target | Verdict |",
        "| --- | --- | --- | --- |",
        f"| Open pixel throughput, app / bare ASGI baseline | {p.ratio:.2f} | "
        f"≥ {PIXEL_TARGET:.1f} | {_verdict(p.ratio >= PIXEL_TARGET)} |",
        f"| Open pixel server CPU per request, baseline / app | "
        f"{p.baseline.cpu_ms / p.app.cpu_ms:.2f} | reported | — |",
        *_rewrite_summary(r),
        f"| Import time, `function_app` / its bare dependencies | {i.ratio:.2f} | reported | — |",
        f"| Graph SDK imported on the HTTP path | {'yes' if i.graph_imported else 'no'} | no | "
        f"{_verdict(not i.graph_imported)} |",
        *_sync_summary(sync_result),
        "",
        "## Open pixel (`bench/pixel.py`)",
        "",
        "Azurite and two servers run on this machine: the real app (`function_app:asgi`) and a "
        "bare ASGI app (`bench/baseline_app.py`) that writes the same event blob with the same "
        "async storage client and answers the same GIF and headers, with no framework and no "
        "token check. Each is `uvicorn` with one worker in its own process. A load generator "
        f"in the runner's process keeps {p.concurrency} keep-alive clients busy: "
        f"{p.warmup} warm-up requests, then {p.baseline.requests} measured ones. Runs "
        f"alternate, baseline then app, {runs_per_server} times each, and the faster run of "
        "each server is kept. The load generator, the server and Azurite share the machine's "
        "cores, so the absolute rates are lower than on a dedicated host; the ratio is what "
        "is judged. Anything else running on the machine lowers the rates too: the 1-minute "
        f"load average was {p.load_average:.2f} when the runs began. The "
        "server's CPU time per request (from /proc) is reported beside the rates: it is "
        "what each server spends itself, and is less swayed by the load around it. "
        "Every answer must be a 200 with the 43-byte GIF, and the blobs filed "
        "under each run's message id are counted afterwards: one per request.",
        "",
        "| Server | Run | Requests/s | p50 (ms) | p99 (ms) | Server CPU (ms/request) "
        "| GIF answers | Blobs | Kept |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    seen: dict[str, int] = {}
    for run in p.runs:
        seen[run.server] = seen.get(run.server, 0) + 1
        kept = run is p.app or run is p.baseline
        lines.append(
            f"| {run.server} | {seen[run.server]} | {run.rps:.0f} | {run.p50_ms:.1f} | "
            f"{run.p99_ms:.1f} | {run.cpu_ms:.2f} | {run.good}/{run.requests} | "
            f"{run.blobs}/{run.requests} | {'yes' if kept else ''} |"
        )
    lines += [
        "",
        f"Kept runs: app {p.app.rps:.0f} req/s, baseline {p.baseline.rps:.0f} req/s, ratio "
        f"**{p.ratio:.2f}** (target ≥ {PIXEL_TARGET:.1f}); server CPU per request "
        f"{p.app.cpu_ms:.2f} ms (app) and {p.baseline.cpu_ms:.2f} ms (baseline). Check: "
        + (
            "every answer was the GIF and every request wrote exactly one blob."
            if p.checked
            else "**failed** (see the GIF and blob columns)."
        )
        + f" One stored blob each: body {p.app_blob.body_bytes} bytes (app) and "
        f"{p.baseline_blob.body_bytes} (baseline), metadata {p.app_blob.metadata_bytes} and "
        f"{p.baseline_blob.metadata_bytes} bytes.",
        "",
        *_rewrite_section(r),
        "",
        "## Imports (`bench/imports.py`)",
        "",
        "A cold Functions worker imports `function_app` before it serves anything. Each "
        "import below runs in a fresh interpreter and is timed inside it, so interpreter "
        f"start-up is left out; the two sides alternate, {len(i.app_seconds)} runs each, and "
        "the median is kept. Bytecode is compiled beforehand into a temporary cache, so both "
        "are timed warm. The bare side imports only the libraries the app cannot do "
        f"without: `{imports.DEPENDENCIES}`.",
        "",
        "| Import | Median (ms) | Fastest (ms) | Slowest (ms) |",
        "| --- | ---: | ---: | ---: |",
        f"| `{imports.APP}` | {i.app_median * 1000:.0f} | {min(i.app_seconds) * 1000:.0f} | "
        f"{max(i.app_seconds) * 1000:.0f} |",
        f"| bare dependencies | {i.dependencies_median * 1000:.0f} | "
        f"{min(i.dependencies_seconds) * 1000:.0f} | {max(i.dependencies_seconds) * 1000:.0f} |",
        "",
        f"Ratio **{i.ratio:.2f}**. Graph imported on HTTP path: "
        f"**{'yes' if i.graph_imported else 'no'}** ({graph_note}).",
        "",
        *_sync_section(sync_result),
        "",
        *_lists_section(lists_result),
        "",
        *_classify_section(classify_result),
        "",
        *_alerts_section(alerts_result),
        "",
        *_fold_section(fold_result),
        "",
        *_capacity_section(fold_result),
    ]
    return "\n".join(lines) + "\n"


def _sync_summary(runs: sync.SyncRuns) -> list[str]:
    """The summary table's sync rows (each starts "| Mailbox sync" or "| Mailbox permit")."""
    s, t = runs.clean, runs.throttled
    return [
        f"| Mailbox sync, Graph reads per 100 changed messages | {s.reads_per_100:.2f} | "
        f"≤ {sync.READS_PER_100_TARGET:.0f} | "
        f"{_verdict(s.reads_per_100 <= sync.READS_PER_100_TARGET)} |",
        f"| Mailbox sync, most Graph requests in flight for the mailbox | {s.max_concurrency} | "
        f"≤ {sync.CONCURRENCY_LIMIT} | {_verdict(s.max_concurrency <= sync.CONCURRENCY_LIMIT)} |",
        f"| Mailbox sync, one cycle of {s.messages:,} changed messages | {s.seconds:.0f} s "
        f"({s.messages / s.seconds:.0f} messages/s) | reported | — |",
        f"| Mailbox sync throttled (limit {sync.CONCURRENCY_LIMIT} enforced per batch item, 429 "
        f"on {sync.THROTTLE_FRACTION:.0%} of requests), category writes lost | {t.lost} | 0 | "
        f"{_verdict(t.lost == 0)} |",
        f"| Mailbox sync throttled, wall time / clean run | {runs.slowdown:.2f} | reported | — |",
        f"| Mailbox permit (blob lease) taken and given back, per Graph request | "
        f"{runs.permit.storage_ms:.1f} ms | reported | — |",
    ]


_SYNC_ROWS = ("| Mailbox sync", "| Mailbox permit")
_SYNC_HEADING = "## Mailbox sync (`bench/sync.py`)"


def _rewrite_summary(r: bench_rewrite.RewriteRun) -> list[str]:
    target = bench_rewrite.TARGET
    return [
        "| Link rewriting, compose path with signing, speed-up over pytracking (default "
        f"configuration) | {r.speedup('default'):.1f}× | ≥ {target:.0f}× | {_verdict(r.met)} |",
        "| Link rewriting, compose path with signing, speed-up over pytracking with encryption "
        f"| {r.speedup('encrypted'):.1f}× | reported | — |",
    ]


def _rewrite_section(r: bench_rewrite.RewriteRun) -> list[str]:
    rows = {
        "compose": "ours: compose path, signing included",
        "rewrite": "ours: rewrite function alone, URLs signed beforehand",
        "default": "pytracking `adapt_html`, default configuration",
        "encrypted": "pytracking `adapt_html`, encryption on",
    }
    lines = [
        "## Link rewriting (`bench/bench_rewrite.py`)",
        "",
        "The newsletter is built from the real templates of the shared corpus "
        f"(`../shared/corpus/emails`, MIT): each of the {r.templates} templates gives its body "
        "once, as a row of one outer table, nesting and inline styles untouched, and its head "
        "(styles, conditional comments) to the one head. The links a template leaves for the "
        "sender to fill in (`#`, merge tags such as `{{c2a_link}}`, bare domains) are filled "
        "with tracked-looking URLs, as a sender would: "
        f"{r.bytes / 1e6:.2f} MB with {r.links} followable links. Four contenders rewrite it in "
        "the same process: our compose-time path (`shared/tracking/followed_body.py` "
        "`followed_body`), which HMAC-SHA256-signs every link inside the timed part; our "
        "rewrite function alone (`shared/tracking/rewrite.py`), its tracking URLs signed "
        "beforehand; and pytracking's `adapt_html`, which reserialises the document through "
        "lxml, in its default configuration (each link's JSON in base64; only the two base "
        "URLs set) and with `encryption_bytestring_key` set (Fernet, per link). After one "
        f"untimed run of each (the check), {r.rounds} rounds run the four once each, in a fresh "
        "shuffled order, every call after a garbage collection; the median of each is kept, "
        "in the thread's CPU time (what the call costs, whatever else runs on the machine) and "
        f"in wall time. The 1-minute load average was {r.load_average:.2f} when the runs began.",
        "",
        "| Rewriter | Median CPU (ms) | Median wall (ms) | Links rewritten "
        "| pytracking default / this | pytracking encrypted / this |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, label in rows.items():
        t = r.timings[name]
        lines.append(
            f"| {label} | {t.cpu:.1f} | {t.wall:.1f} | {r.rewritten[name]}/{r.links} | "
            f"{r.speedup('default', name):.1f}× | {r.speedup('encrypted', name):.1f}× |"
        )
    lines += [
        "",
        "Ratios in CPU time. The compose path, signing included, is "
        f"**{r.speedup('default'):.1f}×** as fast as pytracking's default configuration "
        f"({r.speedup('default', wall=True):.1f}× in wall time; target ≥ "
        f"{bench_rewrite.TARGET:.0f}× in both: {_verdict(r.met)}) and "
        f"{r.speedup('encrypted'):.1f}× as fast as pytracking with encryption. Check: "
        + (
            "every contender rewrote exactly the newsletter's links and added its open pixel."
            if r.checked
            else "**failed** (see the links column)."
        ),
    ]
    return lines


def splice_sync(document: str, runs: sync.SyncRuns, now: datetime | None = None) -> str:
    """The document with its sync rows and section replaced by a separate run's (`--only
    sync`), which the section says, with the run's time."""
    moment = (now or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M UTC")
    lines = document.split("\n")
    rows = [n for n, line in enumerate(lines) if line.startswith(_SYNC_ROWS)]
    start = lines.index(_SYNC_HEADING)
    end = next((n for n in range(start + 1, len(lines)) if lines[n].startswith("## ")), len(lines))
    section = _sync_section(runs)
    note = (
        f"These figures, and the summary's sync rows, come from a separate run on {moment} "
        "(`python -m bench --only sync`, same machine); the rest of the page from the run above."
    )
    section[1:1] = ["", note]
    spliced = [*lines[: rows[0]], *_sync_summary(runs), *lines[rows[-1] + 1 : start]]
    return "\n".join([*spliced, *section, "", *lines[end:]])


def splice_alerts(document: str, result: alerts.AlertResult, now: datetime | None = None) -> str:
    """The document with its alert section replaced by a separate run's (`--only alerts`),
    which the section says, with the run's time."""
    section = _separate(_alerts_section(result), "alerts", now, "This section comes")
    return _replace_section(document, section)


def _separate(section: list[str], only: str, now: datetime | None, what: str) -> list[str]:
    """A section from a separate `--only` run, saying so under its heading."""
    moment = (now or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M UTC")
    note = (
        f"{what} from a separate run on {moment} (`python -m bench --only {only}`, same "
        "machine); the rest of the page from the run above."
    )
    return [section[0], "", note, *section[1:]]


def splice_fold(document: str, result: fold.FoldResult, now: datetime | None = None) -> str:
    """The document with its fold and capacity sections replaced by a separate run's
    (`--only fold`), which they say, with the run's time."""
    section = _separate(_fold_section(result), "fold", now, "This section and the next come")
    return _replace_section(_replace_section(document, section), _capacity_section(result))


# Azure list prices (USD, pay as you go, LRS hot tier, 2026) the cost model uses; they change:
# check the pricing pages before relying on the figure.
_PRICE_BLOB_WRITE_10K = 0.065  # a tracking hit writes one blob
_PRICE_BLOB_LIST_10K = 0.065  # listings, the fold's and the alert cycle's
_PRICE_TABLE_10K = 0.00036  # table transactions (a batch is billed per entity here, to be safe)
_PRICE_QUEUE_10K = 0.0004
_PRICE_GB_SECOND = 0.000026  # Flex Consumption on-demand execution, per GB-s
_INSTANCE_GB = 2.048  # the plan's instance memory (infra/app/api.bicep)
_LIST_TARGET_MS = 100.0  # issue 14: a page at 20,000 messages, locally
_ENTITIES_PER_EVENT = 11  # the event row, the KPI row and up to 8 list index rows, the alert
_PARTITION_ENTITIES = 2000  # Table storage: entities per second per partition
_ACCOUNT_REQUESTS = 20000  # Storage: requests per second per account


def _fold_section(r: fold.FoldResult) -> list[str]:
    lines = [
        "## Folding events into KPIs (`bench/fold.py`)",
        "",
        "The events are recorded through the real tracking endpoint (in-process ASGI, "
        f"{fold.IN_FLIGHT} requests in flight: the rate that feeds the fold), then folded by "
        "`fold_cycle` in one worker, on the same fresh Azurite, in the same run. The worker has "
        "compiled the user-agent rules before it is timed, as a long-lived worker has (once per "
        "process, 0.2 to 0.6 s here). Target: the fold at least as fast as the recording "
        "(ratio ≥ 1) for both shapes of traffic.",
        "",
        "| traffic | events | recorded, events/s | folded, events/s | fold / record |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for shape in r.shapes:
        lines.append(
            f"| {shape.name} ({shape.messages} messages) | {shape.events} | "
            f"{shape.record_rate:.0f} | {shape.fold_rate:.0f} | **{shape.ratio:.2f}** |"
        )
    if r.workers:
        one = r.workers[0].rate
        lines += [
            "",
            f"Scaling out: {r.workers[0].events} messages with one open each, folded by 1, 2 and "
            f"4 worker processes side by side (each its own services and connections, as separate "
            f"instances would be), the {SHARDS} shards dealt out between them; the time runs "
            "from the first worker's start to the last one's end. This machine has "
            f"{os.cpu_count()} cores, shared with Azurite: past that, more workers cannot help "
            "here, where in Azure each instance brings its own.",
            "",
            "| workers | folded, events/s | against one worker |",
            "| ---: | ---: | ---: |",
            *(f"| {w.workers} | {w.rate:.0f} | {w.rate / one:.2f}x |" for w in r.workers),
        ]
    lines += ["", f"Check: {'every event folded once' if r.checked else 'FAILED'}."]
    return lines


def _capacity_section(r: fold.FoldResult) -> list[str]:
    per_worker = min(s.fold_rate for s in r.shapes)  # the harder shape
    per_partition = _PARTITION_ENTITIES / _ENTITIES_PER_EVENT
    account = _ACCOUNT_REQUESTS / 1.5  # a blob write per event, and the fold's requests
    fold_seconds_per_100k = 100_000 / per_worker
    writes = 100_000 * _PRICE_BLOB_WRITE_10K / 10_000
    entities = 100_000 * _ENTITIES_PER_EVENT * _PRICE_TABLE_10K / 10_000
    compute = fold_seconds_per_100k * _INSTANCE_GB * _PRICE_GB_SECOND
    cost = writes + entities + compute
    # fixed: the fold timer's listing every 10 s, the alert cycle's two every 5 s
    listings_day = (1 / 10 + 2 / 5) * 86_400
    listings_cost = listings_day * _PRICE_BLOB_LIST_10K / 10_000
    rows = []
    for sellers, per_day in ((100, 20), (1_000, 20), (10_000, 30)):
        events_day = sellers * per_day * 8  # 8 events per followed message (opens, clicks...)
        peak = events_day / 86_400 * 20  # a burst 20 times the day's mean (newsletters)
        workers = max(1, -(-peak // per_worker))
        rows.append(f"| {sellers:,} | {per_day} | {events_day:,} | {peak:.0f} | {workers:.0f} |")
    return [
        "## Capacity model",
        "",
        "From the measured figures above, and Azure Storage's published limits.",
        "",
        f"- **One worker folds about {per_worker:.0f} events/s** (the slower shape above, on "
        "this 2-core machine with Azurite beside it). The tracking endpoint records about "
        f"{max(s.record_rate for s in r.shapes):.0f} events/s per instance here; the Functions "
        "plan adds instances for HTTP load and for the `fold-shards` queue's length separately, "
        f"and {SHARDS} shards let up to {SHARDS} fold workers share the work.",
        "- **Workers needed** (8 events per followed message: opens, clicks, scanners' sweeps; "
        "a peak 20 times the day's mean, a newsletter or a scanner wave at delivery):",
        "",
        "| sellers | followed messages per seller per day | events per day | peak events/s "
        "| fold workers at the peak |",
        "| ---: | ---: | ---: | ---: | ---: |",
        *rows,
        "",
        "- **What binds first.** Table storage serves 2,000 entities/s per partition. A seller's "
        "messages, their event rows and their list index share the seller's partition, and a "
        f"folded event writes up to {_ENTITIES_PER_EVENT} entities there (its row, the message's "
        "KPIs and list index rows when a sorted column changes, an alert): about "
        f"**{per_partition:.0f} folded events/s for one seller** is the hottest partition in our "
        "key design (the seller with the largest burst). Past that, the fold's transactions are "
        "throttled (503) and retried by the next cycle; events are never lost (they stay in "
        "their blobs until folded). The account's 20,000 requests/s come next: a tracking hit "
        "is one blob write and the fold adds about half a request per event (batched reads, "
        f"transactions of up to 100): about **{account:,.0f} events/s per storage account**. "
        "Blob names begin with the time bucket, one hot name range for writes: Azure balances "
        "it by splitting ranges, and the account limit above is the figure to plan by.",
        f"- **Cost per 100,000 events** at list prices (USD; see the constants in "
        f"`bench/performance_doc.py`): about **${cost:.2f}**: blob writes ${writes:.2f}, table "
        f"entities ${entities:.3f}, the fold's compute {fold_seconds_per_100k:.0f} s of one "
        f"{_INSTANCE_GB:.0f} GB instance ${compute:.3f} (the tracking requests' own compute "
        "comes on top, as before). The timers' listings (the fold timer's every 10 s, the "
        f"alert cycle's two every 5 s: {listings_day:,.0f} a day; a busy shard's worker lists "
        f"again, a cost per busy bucket) are a fixed ${listings_cost:.2f} a "
        "day whatever the traffic; the queue's messages (at most 16 every 10 s) cost less than "
        f"${(SHARDS / 10) * 86_400 * 3 * _PRICE_QUEUE_10K / 10_000:.3f} a day. "
        '(`docs/admin.md`, "Cost per 100,000 tracked events", has the full breakdown.)',
    ]


def splice_lists(document: str, result: lists.ListsResult, now: datetime | None = None) -> str:
    """The document with its list section replaced by a separate run's (`--only lists`),
    which the section says, with the run's time."""
    section = _separate(_lists_section(result), "lists", now, "This section comes")
    return _replace_section(document, section)


def _webapp_section(r: webapp.WebappResult) -> list[str]:
    rows = [
        f"| {label} | {r.median(what):,.1f} | "
        + ("— |" if what == "floor" else f"{r.ratio(what):.2f} |")
        for what, label in (
            ("floor", "floor: the page's first API request (`GET /api/messages`), over HTTP"),
            ("cold", "cold: a new tab (empty cache), `/app` opened, until the rows show"),
            ("warm", "warm: the page reloaded (scripts from the cache), until the rows show"),
            ("sort", "sort: the Opens header clicked, until the page sorted by opens shows"),
        )
    ]
    return [
        "## Web app: time to a usable Followed emails page (`bench/webapp.py`)",
        "",
        f"One seller with **{r.messages:,} messages** (written with their list index rows as "
        "in the list benchmark), the real app served by uvicorn on this machine's Azurite, "
        "and Debian's headless Chromium driven by Playwright, signed in with a development "
        f"token. Median of {r.rounds} rounds after a warm-up round; each round times the "
        "floor, then the page. The page is usable when its first page of rows shows; what it "
        "adds to the floor is the shell, its scripts and the vendored libraries, `GET /api/me` "
        "and the rendering.",
        "",
        "| Measured | Median (ms) | Median / floor |",
        "| --- | ---: | ---: |",
        *rows,
        "",
        "Check: "
        + (
            "**passed**: every page showed the rows the API gives, in its order."
            if r.checked
            else "**failed**: a page showed other rows than the API gives."
        ),
    ]


def splice_webapp(
    document: str, result: webapp.WebappResult, now: datetime | None = None, *, separate: bool
) -> str:
    """The document with its web app section replaced (or added); `separate`: from an
    `--only webapp` run, which the section then says."""
    section = _webapp_section(result)
    if separate:
        section = _separate(section, "webapp", now, "This section comes")
    return _replace_section(document, section)


def _replace_section(document: str, section: list[str]) -> str:
    """`document` with the section of the same heading as `section` replaced (appended when
    it has none)."""
    lines = document.split("\n")
    if section[0] not in lines:
        return "\n".join([*lines, *section, ""])
    start = lines.index(section[0])
    end = next((n for n in range(start + 1, len(lines)) if lines[n].startswith("## ")), len(lines))
    return "\n".join([*lines[:start], *section, "", *lines[end:]])


def _sync_section(runs: sync.SyncRuns) -> list[str]:
    s = runs.clean
    g, report = s.graph, s.report
    batched = ", ".join(f"{n} {method}" for method, n in sorted(s.batched.items())) or "none"
    lines = [
        "## Mailbox sync (`bench/sync.py`)",
        "",
        "Azurite and the Graph stand-in (`devtools/graph_standin.py`, an HTTP server on "
        "loopback in a thread of the runner's process) run on this machine, and the app's "
        "services reach them through the real msgraph SDK and the real storage SDKs. Set-up, "
        f"not timed: one mailbox is enrolled, {s.followed} followed messages are sent from it "
        "through the compose path (draft, then send, through Graph), and two sync cycles take "
        "the baseline delta links (the second takes in the category the first wrote on the "
        f"sent items). Then {s.messages:,} messages arrive in the Inbox: "
        f"{s.replies_delivered} replies to the followed mail (In-Reply-To and References "
        f"naming a sent message, in its conversation), {s.categorised} carrying the tracking "
        "category and the rest ordinary mail from many senders, spread through each other at "
        f"random; their HTML bodies average {s.body_bytes:,} bytes. The timed part is one "
        "`sync_mailbox` call for that mailbox. The app asks Graph for pages of "
        f"{s.page_size} messages. Graph requests are counted from the stand-in's log, and "
        "the requests inside each `$batch` from its batch log. Storage requests are counted "
        "by a wrapper around azure-core's aiohttp transport for the duration of the call, so "
        "retries count too. CPU time comes from /proc for the runner's event loop thread "
        "(the app), the stand-in's thread and the Azurite process. The stand-in shares the "
        "runner's process and its interpreter lock, so its CPU time is part of the wall time "
        "here, where in production it would be Graph's. Afterwards the reply count of every "
        "followed message is read back through the app's own read path and summed, and the "
        "activities tracked since the cycle began are counted by method.",
        "",
        f"Target: at most {sync.READS_PER_100_TARGET:.0f} Graph read per 100 changed messages, "
        "plus the batched category writes, and never more than "
        f"{sync.CONCURRENCY_LIMIT} requests in flight for the mailbox (Exchange's limit).",
        "",
        "| Graph requests in the cycle | Count |",
        "| --- | ---: |",
        f"| Delta GETs (every page: Inbox, Sent Items, calendar) | {g['delta GET']} |",
        f"| Other GETs | {g['other GET']} |",
        f"| `$batch` POSTs | {g['$batch POST']} |",
        f"| Requests inside the `$batch` POSTs | {sum(s.batched.values())} ({batched}) |",
        f"| Other writes | {g['other write']} |",
        f"| Reads per 100 changed messages | {s.reads_per_100:.2f} |",
        f"| Most requests in flight for the mailbox | {s.max_concurrency} |",
        "",
        "| What the cycle reported | Count |",
        "| --- | ---: |",
        f"| Items processed | {report.items:,} |",
        f"| Tracked | {report.tracked} |",
        f"| Replies to followed mail | {report.replies} |",
        f"| Untracked | {report.untracked} |",
        f"| Failed | {report.failed} |",
        f"| Category writes | {report.category_writes} |",
        "",
        f"Wall time **{s.seconds:.1f} s** for {s.messages:,} changed messages "
        f"({s.seconds * 1000 / s.messages:.1f} ms per message). CPU time in that span:",
        "",
        "| Where | CPU (s) | Share of wall time |",
        "| --- | ---: | ---: |",
        *(
            f"| {where} | {seconds:.1f} | {seconds / s.seconds:.0%} |"
            for where, seconds in s.cpu.items()
        ),
        "",
        f"Storage requests: **{s.storage_requests:,}** "
        f"({s.storage_requests / s.messages:.1f} per changed message).",
        "",
        "| Storage request (service, method, table or container) | Count |",
        "| --- | ---: |",
        *(f"| {what} | {n:,} |" for what, n in s.storage.items()),
        "",
        "Check: reply count summed over the followed messages "
        f"{s.replies_counted}/{s.replies_delivered}; activities tracked in the cycle by method "
        + ", ".join(f"{method} {n}" for method, n in sorted(s.tracked_by_method.items()))
        + f" (expected token {s.replies_delivered}, category {s.categorised}): "
        + (
            "**passed**, every item seen, every reply counted once, nothing failed."
            if s.checked
            else "**failed** (see the tables above)."
        ),
        "",
        *_throttled_section(runs),
    ]
    return lines


def _throttled_section(runs: sync.SyncRuns) -> list[str]:
    c, t, cost = runs.clean, runs.throttled, runs.permit
    g, p = t.graph, t.permits
    batched = ", ".join(f"{n} {method}" for method, n in sorted(t.batched.items())) or "none"
    return [
        "### When Graph throttles",
        "",
        "The same run does it all again on a second mailbox, set up the same way, with the "
        f"stand-in enforcing Graph's limit of {sync.CONCURRENCY_LIMIT} requests in flight per "
        "mailbox (each request inside a `$batch` counted, the excess answered 429 "
        "`ApplicationThrottled`) and answering 429 with `Retry-After: "
        f"{sync.THROTTLE_RETRY_AFTER}` to {sync.THROTTLE_FRACTION:.0%} of requests picked at "
        "random (fixed seed; single requests and requests inside a batch alike). The SDK "
        "waits out a throttled single request; a throttled request inside a batch is sent "
        "again by the app after its own Retry-After (`shared/outlook/category_writes.py`). "
        "Every Graph request holds a mailbox permit, a blob lease shared by every worker "
        "(`shared/outlook/permits.py`); a batch holds one per request in it. Afterwards every "
        "item tracked in the cycle that had to get the tracking category is looked up in the "
        "stand-in: a write is lost if the category is not on it. Both runs share the machine "
        "with whatever else runs on it: the 1-minute load average was "
        f"{runs.load_average:.2f} when they began.",
        "",
        "| | Clean | Throttled |",
        "| --- | ---: | ---: |",
        f"| Wall time (s) | {c.seconds:.1f} | {t.seconds:.1f} |",
        f"| 429s injected at random | {c.injected} | {t.injected} |",
        f"| 429s for the concurrency limit | {c.refused} | {t.refused} |",
        f"| Most requests in flight for the mailbox | {c.max_concurrency} | {t.max_concurrency} |",
        f"| Delta GETs / other GETs | {c.graph['delta GET']} / {c.graph['other GET']} | "
        f"{g['delta GET']} / {g['other GET']} |",
        f"| `$batch` POSTs | {c.graph['$batch POST']} | {g['$batch POST']} |",
        f"| Requests inside them | {sum(c.batched.values())} | {sum(t.batched.values())} "
        f"({batched}) |",
        f"| Category writes landed | {c.report.category_writes} | {t.report.category_writes} |",
        f"| Category write retries (throttled or failed batch items) | "
        f"{c.report.category_retries} | {t.report.category_retries} |",
        f"| Items that had to get the category / of which lost | "
        f"{c.needing_category} / {c.lost} | {t.needing_category} / {t.lost} |",
        f"| Failed items | {c.report.failed} | {t.report.failed} |",
        f"| Permits held / leases taken / handed on inside the process | "
        f"{c.permits.holds} / {c.permits.taken} / {c.permits.reused} | "
        f"{p.holds} / {p.taken} / {p.reused} |",
        f"| Lease requests to storage / seconds in them | {c.permits.storage_requests} / "
        f"{c.permits.storage_seconds:.2f} | {p.storage_requests} / {p.storage_seconds:.2f} |",
        "",
        f"Throttled / clean wall time **{runs.slowdown:.2f}** "
        f"({t.seconds - c.seconds:+.1f} s)"
        + (
            ": below 1, so the throttling cost less than the noise of the machine between the "
            "two runs (the Retry-After waits overlap with other batches' work). "
            if runs.slowdown < 1
            else ". "
        )
        + f"Category writes lost: **{t.lost}** (target 0). "
        "Check: "
        + (
            "**passed**, every item seen, every reply counted once, nothing failed, no "
            "category write lost, the limit held."
            if t.checked
            else "**failed** (see the table above)."
        ),
        "",
        f"One permit timed alone ({cost.rounds} in a row, uncontended, Azurite on this "
        f"machine): taken and given back through storage **{cost.storage_ms:.2f} ms** "
        f"({cost.storage_requests_per_permit:.1f} storage requests; the give-back runs in the "
        f"background), handed on to the process's next request {cost.reused_ms:.3f} ms, a "
        f"process-local semaphore {cost.local_ms:.3f} ms. A process keeps a permit it has "
        "just used for 50 ms and hands it to its own next request for up to a second from "
        "when it took it, so a busy cycle takes few leases (the table's last rows).",
    ]


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} minutes"


def _lists_section(r: lists.ListsResult) -> list[str]:
    t = r.timings
    floor, templates = t[lists.LIST_FLOOR], t[lists.TEMPLATES]
    bare = t[lists.TEMPLATES_BARE]
    checked = (
        "**passed**: every page was the one the rows give (sorted in memory as the list was "
        "before its index), and each template's counts were its messages'."
        if all(r.checks.values())
        else "**failed**: " + "; ".join(what for what, ok in r.checks.items() if not ok) + "."
    )
    number = {name: n for n, name in enumerate(t, 1)}
    rows = [
        f"| {number[name]}. {name} | {timing.median_ms:,.1f} | {timing.p90_ms:,.1f} | "
        f"{timing.cpu_median_ms:,.1f} | {timing.storage_requests:g} | "
        + (
            f"row {number[lists.FLOORS[name]]} | {r.ratio(name):.2f} |"
            if name in lists.FLOORS
            else "— | — |"
        )
        for name, timing in t.items()
    ]
    slowest = max(lists.LISTS, key=lambda name: t[name].median_ms)
    sizes = list(r.pages)
    pages = [
        f"| {name} | " + " | ".join(f"{r.pages[size][name]:g}" for size in sizes) + " |"
        for name in lists.LISTS
    ]
    return [
        "## Followed-emails list and template statistics (`bench/lists.py`)",
        "",
        "Azurite runs on this machine; the real app (`functions.http_app.create_app()`) runs "
        "in the runner's process and is called through httpx's ASGI transport with a "
        "development token, so no server or socket sits between the client and the app, and "
        "the storage SDKs reach Azurite over loopback. Set-up, not timed: one seller with "
        f"**{r.messages:,} messages** in their partition of the `messages` table "
        f"({r.followed:,} followed, the rest not followed), each written with its list index "
        "rows as compose writes them (`shared.core.list_index`), in transactions of at most "
        "100 operations, in the shape compose and delivery store them, with folded KPIs "
        "(opens, clicks, attachment views, replies, first and last open), sent over the past "
        f"year. {r.templates} templates are created through the template library and each "
        f"message is counted for its template: {r.marks['sent']:,} sent, "
        f"{r.marks['opened']:,} opened and {r.marks['replied']:,} replied. "
        f"`template_library.mark` counts {r.mark_rate:.0f} marks/s here ({r.equality_marks} "
        f"measured), so those {r.marks_total:,} marks would take "
        f"~{_duration(r.mark_estimate_seconds)}; their marker and counter rows are written "
        "directly in the same shape instead, and twin templates made both ways (one marked "
        "through `mark`, one written directly, with the same marks) showed "
        + (
            "the same figures in one `GET /api/templates` and the same rows: **equal**."
            if r.equal
            else "**different** figures or rows in one `GET /api/templates`."
        ),
        "",
        f"Timed: {r.repeats} rounds after a warm-up round; each round makes every request "
        "once, right after its floor, so the machine's noise falls on both. Wall time per "
        "request (median and p90), the CPU time of the runner's thread (the app, the storage "
        "SDK and the HTTP client share it), and the storage requests per request, counted "
        "on azure-core's transport as in the sync benchmark. The list is timed for its first "
        f"page and a continuation page ({lists.LIMIT} rows each) for every sort, descending, "
        "and besides for one ascending sort and for `follow_state=any`. The floors are bare "
        "SDK calls with no app: for the list, one range query of its index "
        f"({lists.LIMIT + 1} rows) and the page's {lists.LIMIT} rows read whole (16 in "
        "flight), the requests any page read from an index pays; for the template list, the "
        "templates query and then one counter query, the two round trips in a row that any "
        "template list with counters needs (and the template read before them, for one "
        f"template). Row {number[lists.TEMPLATES_BARE]} makes the same storage requests as "
        "the template list, gathered as the app gathers them, with no app.",
        "",
        "| Request | Median (ms) | p90 (ms) | CPU (ms) | Storage requests | Floor | "
        "Median / floor |",
        "| --- | ---: | ---: | ---: | ---: | --- | ---: |",
        *rows,
        "",
        "The list reads its index (`shared.core.list_index`): rows in the seller's message "
        "partition whose keys are in the order of each sort (descending ones inverted), one "
        "range per follow_state, so a page is one range query of "
        f"{lists.LIMIT + 1} rows (one per follow_state, merged, for `any`), the seller's "
        f"older partitions looked up (one read), and the page's {lists.LIMIT} rows read whole. "
        f"Its first page by `sent_at` takes **{t[lists.LIST_FIRST].median_ms:,.1f} ms** "
        f"({r.ratio(lists.LIST_FIRST):.2f}× the floor); the slowest list request, "
        f"{slowest}, {t[slowest].median_ms:,.1f} ms. Before the index the list read the key "
        "and sort column of every followed message of the partition, sorted them in Python "
        f"and read the page: {r.before.median_ms:,.0f} ms here for the same first page "
        f"({r.before.storage_requests:g} storage requests, median of {len(r.before.ms)}), "
        f"**{r.speedup:,.0f}×** the time it takes now.",
        "",
        f"Target: {_LIST_TARGET_MS:.0f} ms for a page at 20,000 messages. "
        + (
            "**Met.**"
            if t[slowest].median_ms <= _LIST_TARGET_MS
            else "**Not met on Azurite, and it cannot be with any index kept in Table "
            "storage:** the index range query alone (row "
            f"{number[lists.RANGE_ALONE]}) takes {t[lists.RANGE_ALONE].median_ms:,.1f} ms, "
            f"while one point read (row {number[lists.POINT_READ]}) takes "
            f"{t[lists.POINT_READ].median_ms:,.1f} ms. Azurite answers every query by "
            "filtering every row of the table in JavaScript and sorting what passes "
            "(`LokiTableMetadataStore.queryTableEntities` in its source: `chain().where(...)"
            ".sort(...).limit(...)`), so a query's time grows with the table (here "
            f"{r.messages:,} message rows and {r.messages * 12:,} index rows), whatever its "
            "key range. Azure Table storage serves a range of one partition from its key "
            "order; what the list controls is the number of requests, constant above, and "
            "its own time over the storage's, the ratio to the floor."
        ),
        "",
        "Storage requests per list request for sellers with these many messages (the others "
        "set up the same way, each request made once); "
        + ("**the same at every size**." if r.flat else "**they differ between sizes**."),
        "",
        "| Request | " + " | ".join(f"{size:,} messages" for size in sizes) + " |",
        "| --- | " + " | ".join("---:" for _ in sizes) + " |",
        *pages,
        "",
        f"The template list makes {templates.storage_requests:g} storage requests (the "
        "templates query, then one counter query per template, gathered) and takes "
        f"**{r.ratio(lists.TEMPLATES):.2f}×** the two-request floor and "
        f"{templates.median_ms / bare.median_ms:.2f}× the same requests made bare: its time "
        "is the counter queries, which grow with the number of templates, not of messages. "
        f"(Floor of the list: {floor.median_ms:,.1f} ms.)",
        "",
        "Set-up, not timed: "
        + "; ".join(f"{what} {seconds:.1f} s" for what, seconds in r.setup_seconds.items())
        + ". Check: "
        + checked,
    ]


def _classify_section(c: dict[str, float]) -> list[str]:
    target = c["target_us"]
    met = c["warm_p99_us"] < target and c["cold_p50_us"] < target
    return [
        "## Scanner classification cost (`bench/classify.py`)",
        "",
        "`shared.classification.classifier.classify_event` classifies each tracking event "
        "(human, privacy proxy, scanner, unknown) on the pixel path. It is timed one call at a "
        "time over the "
        f"{c['events']:.0f} events of the evaluation set ({c['distinct_user_agents']:.0f} "
        "distinct user agents), against `shared.classification.devices.truncate_ip` on the "
        "same events' "
        "client addresses (the client analysis the pixel path already pays for), in the "
        "same run. Cached: user agents and networks seen before, a worker's steady state; "
        "uncached: both caches emptied before every call, a never-seen client. Per-call "
        "figures include the timer's own cost on both sides; means come from whole passes.",
        "",
        "| Per event | p50 (µs) | p99 (µs) | Mean (µs) | / baseline |",
        "| --- | ---: | ---: | ---: | ---: |",
        f"| `classify_event`, cached | {c['warm_p50_us']:.1f} | {c['warm_p99_us']:.1f} | "
        f"{c['warm_mean_us']:.1f} | {c['ratio_warm_mean']:.2f}× (mean) |",
        f"| `classify_event`, uncached | {c['cold_p50_us']:.1f} | {c['cold_p99_us']:.1f} | — | "
        f"{c['ratio_cold_p50']:.2f}× (p50) |",
        f"| baseline `truncate_ip` | {c['baseline_p50_us']:.1f} | "
        f"{c['baseline_p99_us']:.1f} | {c['baseline_mean_us']:.1f} | 1.00× |",
        f"| `classify_message` (the fold), per event | — | — | {c['fold_us_per_event']:.1f} | — |",
        "",
        f"Target: under {target:.0f} µs per event, cached at p99 and uncached at the median: "
        f"{_verdict(met)}.",
    ]


def _alerts_section(a: alerts.AlertResult) -> list[str]:
    cycle = statistics.median(a.alert_cycle_ms) if a.alert_cycle_ms else 0.0
    return [
        "## First-open alert latency (`bench/alerts.py`)",
        "",
        f"Real time, with Azurite: {a.opens} followed messages, sent ten minutes before, are "
        "opened at random moments over 30 s while the alert cycle runs every "
        f"{alerts.ALERT_PERIOD:.0f} s and the fold every {alerts.FOLD_PERIOD:.0f} s (their "
        "default schedules; 30-s grace), in-process as `make run` runs them. Half are opened "
        "in Outlook on Windows (clearly a person's: alerted at once), half in a current "
        f"browser (the alert waits `ALERT_WAIT_SECONDS` = {a.wait_setting:.0f} s for later "
        "evidence, then comes from the due index once the fold has absorbed that time). "
        "Latency: from the pixel request until the seller's `GET /api/alerts` lists the "
        "alert, polled every 100 ms. Baseline, same run: until the fold has counted the open.",
        "",
        "| | Median (s) | Max (s) |",
        "| --- | ---: | ---: |",
        f"| first-open alert, clear open | {a.alert_median:.1f} | {a.alert_max:.1f} |",
        f"| first-open alert, open waiting for evidence | {a.waited_median:.1f} | "
        f"{a.waited_max:.1f} |",
        f"| open counted by the fold (baseline) | {a.fold_median:.1f} | "
        f"{max(a.fold_seconds):.1f} |",
        f"| follow-up reminder, after its due time ({a.reminders} due at random moments) | "
        f"{a.reminder_median:.1f} | {a.reminder_max:.1f} |",
        "",
        f"Ratio (clear opens / baseline) **{a.ratio:.2f}**; one alert cycle (first opens, "
        f"due alerts and due reminders: one query of each due index) takes {cycle:.0f} ms "
        "(median). Reminders used to wait for "
        "`REMINDER_SCHEDULE` (every 15 min: up to 15 min late), which now only backs the "
        "alert timer up. Check: "
        + ("every open alerted and counted, every reminder fired." if a.checked else "**FAILED**."),
    ]
