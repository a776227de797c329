"""Benchmark: the open pixel served by the real app against a bare ASGI baseline.

Both servers are uvicorn with one worker, in their own processes, writing to the same
Azurite; the load generator runs in this process with keep-alive connections. Runs alternate
(baseline, app, baseline, app, ...) and the better run of each server is kept, since a
shared 2-core machine is noisy. Every response and every written blob is checked.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import aiohttp
from azure.storage.blob.aio import ContainerClient
from pydantic import SecretStr

from shared.bootstrap import build_services
from shared.core.ids import new_message_id
from shared.core.settings import Settings
from shared.core.storage import INTERACTIONS, ensure_storage
from shared.tracking.tokens import TokenSigner, TrackingRef
from tests.utils.azurite import azurite, free_port, stop, wait_for_port

ROOT = Path(__file__).resolve().parents[1]
APP = "function_app:asgi"
BASELINE = "bench.baseline_app:app"
GIF_BYTES = 43
SELLER = "bench@contoso.example"
# A desktop Outlook user agent, as most opens arrive with; the same for both servers.
USER_AGENT = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Microsoft Outlook 16.0.17928; Pro"
)
_START_SECONDS = 60
_REQUEST_SECONDS = 30
_RUN_SECONDS = 600


@dataclasses.dataclass(frozen=True)
class Run:
    """One measured run against one server."""

    server: str
    message_id: str
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    good: int  # answers that were 200 with the 43-byte GIF
    cpu_ms: float  # the server process's CPU time per measured request
    blobs: int = -1  # blobs filed under message_id, counted after all runs

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    @property
    def checked(self) -> bool:
        return self.good == self.requests == self.blobs


@dataclasses.dataclass(frozen=True)
class BlobShape:
    """Sizes of one written blob, to show both servers store the same amount."""

    body_bytes: int
    metadata_bytes: int


@dataclasses.dataclass(frozen=True)
class PixelResult:
    """Every run, the better run of each server and the checks."""

    runs: list[Run]
    baseline: Run
    app: Run
    baseline_blob: BlobShape
    app_blob: BlobShape
    concurrency: int
    warmup: int
    load_average: float  # the machine's 1-minute load average when the runs began

    @property
    def ratio(self) -> float:
        """App throughput as a fraction of the baseline's."""
        return self.app.rps / self.baseline.rps

    @property
    def checked(self) -> bool:
        return all(run.checked for run in self.runs)


@dataclasses.dataclass(frozen=True)
class Server:
    """A running server: where to reach it and its process id."""

    url: str
    pid: int


@contextlib.contextmanager
def server(target: str, env: dict[str, str], log_dir: str) -> Iterator[Server]:
    """Run `target` under uvicorn, one worker, on a free local port."""
    port = free_port()
    log_path = Path(log_dir) / f"{target.split(':')[0]}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                target,
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                "1",
                "--log-level",
                "warning",
                "--no-access-log",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            try:
                wait_for_port(port, process, time.monotonic() + _START_SECONDS)
            except RuntimeError:
                raise RuntimeError(
                    f"server did not start:\n{log_path.read_text()[-2000:]}"
                ) from None
            yield Server(f"http://127.0.0.1:{port}", process.pid)
        finally:
            stop(process)


async def _load(url: str, requests: int, concurrency: int) -> tuple[float, list[float], int]:
    """Send `requests` GETs to `url` from `concurrency` keep-alive clients; returns the wall
    time, each latency in seconds and how many answers were the 43-byte GIF."""
    latencies: list[float] = []
    good = 0
    left = requests
    connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=concurrency)
    timeout = aiohttp.ClientTimeout(total=_REQUEST_SECONDS)
    headers = {"User-Agent": USER_AGENT}
    async with aiohttp.ClientSession(
        connector=connector, timeout=timeout, headers=headers
    ) as session:

        async def client() -> None:
            nonlocal good, left
            while left > 0:
                left -= 1
                start = time.perf_counter()
                try:
                    async with session.get(url) as response:
                        body = await response.read()
                        ok = response.status == 200 and len(body) == GIF_BYTES
                except (aiohttp.ClientError, TimeoutError):
                    ok = False
                latencies.append(time.perf_counter() - start)
                good += ok

        start = time.perf_counter()
        await asyncio.wait_for(
            asyncio.gather(*(client() for _ in range(concurrency))), _RUN_SECONDS
        )
        wall = time.perf_counter() - start
    return wall, latencies, good


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used so far (Linux /proc; NaN elsewhere)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return math.nan
    fields = stat.rsplit(")", 1)[1].split()  # the name may hold spaces; it ends at ")"
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _pixel_url(server_name: str, target: Server, signer: TokenSigner, message_id: str) -> str:
    # The baseline files its blob under the path as given; the app under the message id
    # that its signed token names.
    if server_name == "baseline":
        return f"{target.url}/t/o/{message_id}"
    return f"{target.url}/t/o/{signer.sign(TrackingRef('open', message_id, 0))}.gif"


def _run(
    server_name: str,
    target: Server,
    signer: TokenSigner,
    message_id: str,
    requests: int,
    concurrency: int,
) -> Run:
    url = _pixel_url(server_name, target, signer, message_id)
    cpu = cpu_seconds(target.pid)
    wall, latencies, good = asyncio.run(_load(url, requests, concurrency))
    cpu = cpu_seconds(target.pid) - cpu
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    return Run(
        server=server_name,
        message_id=message_id,
        requests=requests,
        seconds=wall,
        p50_ms=cuts[49] * 1000,
        p99_ms=cuts[98] * 1000,
        good=good,
        cpu_ms=cpu * 1000 / requests,
    )


async def _prepare(connection_string: str) -> None:
    store = build_services(_settings(connection_string)).store
    try:
        await ensure_storage(store)
    finally:
        await store.close()


async def _inspect(
    connection_string: str, samples: dict[str, str]
) -> tuple[Counter[str], dict[str, BlobShape]]:
    """Blobs per message id in the interactions container, and the shape of one blob for
    each message id in `samples` (message id -> label)."""
    counts: Counter[str] = Counter()
    picked: dict[str, str] = {}
    async with ContainerClient.from_connection_string(connection_string, INTERACTIONS) as box:
        async for name in box.list_blob_names():
            parts = name.split("/")
            message_id = parts[1] if len(parts) == 3 else ""
            counts[message_id] += 1
            if message_id in samples:
                picked.setdefault(samples[message_id], name)
        shapes: dict[str, BlobShape] = {}
        for label, name in picked.items():
            properties = await box.get_blob_client(name).get_blob_properties()
            shapes[label] = BlobShape(
                body_bytes=int(properties.size),
                metadata_bytes=sum(len(k) + len(v) for k, v in properties.metadata.items()),
            )
    return counts, shapes


def _settings(connection_string: str) -> Settings:
    return Settings(storage_connection_string=SecretStr(connection_string))


def measure(
    requests: int = 3000, concurrency: int = 50, warmup: int = 200, rounds: int = 2
) -> PixelResult:
    """Run the pixel benchmark end to end (Azurite and both servers are started and torn
    down here) and return every run with its checks."""
    with azurite() as connection_string, tempfile.TemporaryDirectory(prefix="bench-") as logs:
        asyncio.run(_prepare(connection_string))
        signer = build_services(_settings(connection_string)).signer
        env = {**os.environ, "STORAGE_CONNECTION_STRING": connection_string}
        runs: list[Run] = []
        load_average = os.getloadavg()[0]
        with server(BASELINE, env, logs) as baseline, server(APP, env, logs) as app:
            for _ in range(rounds):
                for name, target in (("baseline", baseline), ("app", app)):
                    _run(name, target, signer, new_message_id(SELLER), warmup, concurrency)
                    measured = new_message_id(SELLER)
                    runs.append(_run(name, target, signer, measured, requests, concurrency))
        best = {
            name: max((r for r in runs if r.server == name), key=lambda r: r.rps)
            for name in ("baseline", "app")
        }
        samples = {best[name].message_id: name for name in best}
        counts, shapes = asyncio.run(_inspect(connection_string, samples))
    runs = [dataclasses.replace(r, blobs=counts[r.message_id]) for r in runs]
    best = {name: next(r for r in runs if r.message_id == best[name].message_id) for name in best}
    return PixelResult(
        runs=runs,
        baseline=best["baseline"],
        app=best["app"],
        baseline_blob=shapes["baseline"],
        app_blob=shapes["app"],
        concurrency=concurrency,
        warmup=warmup,
        load_average=load_average,
    )


def report(result: PixelResult) -> str:
    """Plain-text lines for the terminal."""
    lines = [
        f"pixel: {result.concurrency} clients, {result.warmup} warm-up requests per run, "
        f"load average {result.load_average:.2f} at start"
    ]
    for run in result.runs:
        lines.append(
            f"  {run.server:8} {run.rps:8.0f} req/s  p50 {run.p50_ms:6.1f} ms  "
            f"p99 {run.p99_ms:6.1f} ms  CPU {run.cpu_ms:4.2f} ms/req  "
            f"GIFs {run.good}/{run.requests}  "
            f"blobs {run.blobs}/{run.requests}  {'ok' if run.checked else 'FAILED'}"
        )
    lines.append(
        f"  blob body bytes app/baseline {result.app_blob.body_bytes}/"
        f"{result.baseline_blob.body_bytes}, metadata bytes {result.app_blob.metadata_bytes}/"
        f"{result.baseline_blob.metadata_bytes}"
    )
    check = "every response a 43-byte GIF, one blob per request" if result.checked else "FAILED"
    lines.append(
        f"  best: app {result.app.rps:.0f} req/s, baseline {result.baseline.rps:.0f} req/s, "
        f"ratio {result.ratio:.2f} (target >= 0.80); check: {check}"
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.pixel")
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    result = measure(args.requests, args.concurrency, args.warmup, args.rounds)
    print(report(result))
    if not result.checked:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
