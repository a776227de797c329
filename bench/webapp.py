"""Benchmark: time to a usable Followed emails page in the web app, for a seller with 20,000
messages, in headless Chromium (Debian's package) against the real app served by uvicorn on
real Azurite.

Set-up (not timed): the seller's message rows and their list index rows, written as
bench/lists.py writes them (compose's shape, folded KPIs, sent over the past year).

Timed, in rounds, each after a warm-up round:
- cold: a new browser context (empty HTTP cache, a signed-in tab), `/app` opened, until the
  grid shows its first page of rows;
- warm: the same page reloaded (the app's scripts and the vendored libraries from the cache);
- sort: the Opens header clicked, until the grid shows the page sorted by opens;
- the floor, in the same rounds: the API request the page's first page makes
  (`GET /api/messages`, the page's default sort and size), through HTTP to the same server.
The page is usable when the rows are there: the ratio to the floor is what the app adds to
the API (the shell, the scripts, `GET /api/me`, rendering).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import random
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx
from playwright.sync_api import Browser, Page, sync_playwright
from pydantic import SecretStr

from bench import lists
from shared.bootstrap import build_services
from shared.core.auth import dev_seller, make_dev_token
from shared.core.settings import Settings
from shared.core.storage import ensure_storage
from tests.conftest import Clock
from tests.e2e.conftest import CHROMIUM, serve
from tests.utils.azurite import ROOT, azurite

SELLER = "bench.webapp@contoso.example"
PAGE_SIZE = 25  # the Followed emails page's default (webapp/pages/followed.js)
ROWS = "table tbody tr.clickable"
TOKEN_KEY = "engagement.token"  # noqa: S105  (webapp/lib/api.js: a storage key name)


@dataclasses.dataclass(frozen=True)
class WebappResult:
    messages: int
    rounds: int
    ms: dict[str, list[float]]  # by what was timed: cold, warm, sort, floor
    checked: bool  # every page showed the rows the API gives

    def median(self, what: str) -> float:
        return statistics.median(self.ms[what])

    def ratio(self, what: str) -> float:
        return self.median(what) / self.median("floor")


def _say(what: str) -> None:
    print(f"webapp: {what}", file=sys.stderr, flush=True)


async def _setup(connection_string: str, count: int) -> None:
    services = build_services(
        Settings(storage_connection_string=SecretStr(connection_string)), lambda: datetime.now(UTC)
    )
    await ensure_storage(services.store)
    seller = dev_seller(SELLER)
    rng = random.Random(20261207)
    now = datetime.now(UTC)
    rows = [
        lists._row(rng, seller, n, "template", n % len(lists._TEMPLATES), now) for n in range(count)
    ]
    await lists._submit_all(services.store.messages, lists._message_transactions(rows))
    await services.close()


@contextmanager
def _browser() -> Iterator[Browser]:
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()


def _first_ids(http: httpx.Client, **params: str) -> list[str]:
    answer = http.get("/api/messages", params={"limit": PAGE_SIZE, **params})
    answer.raise_for_status()
    return [item["id"] for item in answer.json()["items"]]


def _shown_ids(page: Page) -> list[str]:
    hrefs: list[str] = page.eval_on_selector_all(
        ROWS, "rows => rows.map(r => r.querySelector('a') ? r.querySelector('a').href : '')"
    )
    return [href.rstrip("/").rsplit("/", 1)[-1] for href in hrefs]


def measure(messages: int = 20_000, rounds: int = 7) -> WebappResult:
    if not (ROOT / "webapp" / "vendor" / "preact.mjs").exists():
        raise SystemExit("webapp/vendor/ is empty: run `make webapp-vendor`")
    if not Path(CHROMIUM).exists():
        raise SystemExit(f"no Chromium at {CHROMIUM}: `make browser` installs it")
    with azurite(in_memory=True) as connection_string:
        _say(f"set-up: {messages:,} messages and their index rows")
        asyncio.run(_setup(connection_string, messages))
        settings = Settings(storage_connection_string=SecretStr(connection_string))
        token = make_dev_token(settings, SELLER)
        with serve(settings, Clock()) as live, _browser() as browser:
            http = httpx.Client(
                base_url=live.base, headers={"Authorization": f"Bearer {token}"}, timeout=60
            )
            expected = _first_ids(http)
            by_opens = _first_ids(http, sort="opens", order="desc")
            ms: dict[str, list[float]] = {"cold": [], "warm": [], "sort": [], "floor": []}
            checked = True
            _say(f"timing {rounds} rounds")
            for round_ in range(rounds + 1):
                start = time.perf_counter()
                _first_ids(http)
                floor = (time.perf_counter() - start) * 1000
                context = browser.new_context(
                    locale="en-US", timezone_id="UTC", viewport={"width": 1280, "height": 900}
                )
                context.add_init_script(f"sessionStorage.setItem({TOKEN_KEY!r}, {token!r})")
                page = context.new_page()
                page.set_default_timeout(60_000)
                start = time.perf_counter()
                page.goto(live.base + "/app", wait_until="commit")
                page.locator(ROWS).first.wait_for()
                cold = (time.perf_counter() - start) * 1000
                checked &= _shown_ids(page) == expected
                start = time.perf_counter()
                page.reload(wait_until="commit")
                page.locator(ROWS).first.wait_for()
                warm = (time.perf_counter() - start) * 1000
                checked &= _shown_ids(page) == expected
                start = time.perf_counter()
                page.get_by_role("button", name="Opens").click()
                page.locator(f"{ROWS}:first-child a[href$='/{by_opens[0]}']").wait_for()
                sort = (time.perf_counter() - start) * 1000
                checked &= _shown_ids(page) == by_opens
                context.close()
                if round_:
                    for what, value in (("cold", cold), ("warm", warm), ("sort", sort)):
                        ms[what].append(value)
                    ms["floor"].append(floor)
            http.close()
    return WebappResult(messages, rounds, ms, checked)


def report(result: WebappResult) -> str:
    lines = [f"webapp: Followed emails page, {result.messages:,} messages, {result.rounds} rounds"]
    for what in ("floor", "cold", "warm", "sort"):
        ratio = "" if what == "floor" else f", {result.ratio(what):.2f}x the floor"
        lines.append(f"  {what}: median {result.median(what):,.1f} ms{ratio}")
    lines.append("  check: " + ("every page showed the API's rows" if result.checked else "FAILED"))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.webapp", description=__doc__)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    result = measure(args.messages, args.rounds)
    print(report(result))
    if not result.checked:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
