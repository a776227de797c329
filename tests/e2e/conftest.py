"""Browser tests: the real app served by uvicorn on a free loopback port, in a thread with
its own event loop, on the session's Azurite and controlled clock; Debian's chromium driven by
Playwright for Python (Playwright's own browser download cannot work here).

Without a browser these tests fail, never skip: `make test` installs chromium where apt-get
is; elsewhere set CHROMIUM to a Chromium's path, or E2E_BROWSER=off to leave them out on a
machine that has none.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import uvicorn
from playwright.sync_api import Browser, Page, Playwright, expect, sync_playwright
from pydantic import SecretStr

from devtools.graph_standin import DEFAULT_TOKEN, GraphStandIn
from functions.http_app import create_app
from shared.bootstrap import build_services
from shared.core.services import Services
from shared.core.settings import Settings
from shared.core.storage import ensure_storage
from shared.engagement.fold import fold_cycle
from tests.conftest import PERSON_USER_AGENT, Clock
from tests.utils.azurite import ROOT, free_port
from tests.utils.factories import compose_body, path_of

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
BROWSER_USER_AGENT = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/142.0.0.0 Safari/537.36"
)
T = TypeVar("T")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if os.environ.get("E2E_BROWSER") == "off":  # asked for by name: never a silent skip
        here = Path(__file__).parent
        reason = "E2E_BROWSER=off: the browser tests were left out on purpose"
        for item in items:
            if here in item.path.parents:
                item.add_marker(pytest.mark.skip(reason=reason))


@dataclass
class LiveApp:
    """The app on a real port. `run` runs a coroutine on the server's loop with its
    services (a fold cycle, say): they belong to that loop."""

    base: str
    loop: asyncio.AbstractEventLoop
    services: Services
    clock: Clock

    def run(self, make: Callable[[Services], Awaitable[T]]) -> T:
        async def call() -> T:
            return await make(self.services)

        return asyncio.run_coroutine_threadsafe(call(), self.loop).result(120)

    def later(self, seconds: float) -> None:
        """Time passes: the clock moves on, and the fold timer (not running here) does what
        it would have done meanwhile. The single-message view reads events not folded yet
        only as far back as the fold's recent past."""
        self.clock.advance(seconds)
        self.run(lambda s: fold_cycle(s, grace=s.grace))


@contextlib.contextmanager
def serve(settings: Settings, clock: Clock) -> Iterator[LiveApp]:
    """The app (create_app, as function_app builds it) served by uvicorn on a free port, in a
    thread with its own event loop and services built in it, on `settings` and `clock`."""
    port = free_port()
    started: dict[str, Any] = {}
    failed: list[BaseException] = []

    def run() -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            services = build_services(settings, clock.now)
            loop.run_until_complete(ensure_storage(services.store))
            config = uvicorn.Config(
                create_app(lambda: services),
                host="127.0.0.1",
                port=port,
                log_config=None,
                log_level=logging.WARNING,
                access_log=False,
                lifespan="off",
            )
            server = uvicorn.Server(config)
            started.update(loop=loop, services=services, server=server)
            loop.run_until_complete(server.serve())
            loop.run_until_complete(services.store.close())
        except BaseException as error:
            failed.append(error)
        finally:
            loop.close()

    thread = threading.Thread(target=run, name=f"app-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not (started.get("server") and started["server"].started):
        if failed or not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the app did not start: {failed!r}")
        time.sleep(0.05)
    try:
        yield LiveApp(f"http://127.0.0.1:{port}", started["loop"], started["services"], clock)
    finally:
        started["server"].should_exit = True
        thread.join(15)


@pytest.fixture(scope="session")
def live_app(settings: Settings, clock: Clock) -> Iterator[LiveApp]:
    """The app as `make run` serves it (AUTH_MODE=dev), for the whole session."""
    if not (ROOT / "webapp" / "vendor" / "preact.mjs").exists():
        pytest.fail("webapp/vendor/ is empty: run `make webapp-vendor`", pytrace=False)
    with serve(settings, clock) as app:
        yield app


# Package scope: Playwright's sync API runs an event loop of its own in this thread while it
# is started, and the async tests of the other packages need the thread's loop back.
@pytest.fixture(scope="package")
def playwright() -> Iterator[Playwright]:
    expect.set_options(timeout=20_000)  # as the pages' own default, below
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="package")
def browser(playwright: Playwright) -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"no Chromium at {CHROMIUM}: `make test` installs Debian's chromium where apt-get "
            "is; elsewhere install Chromium and set CHROMIUM=<its path>, or E2E_BROWSER=off",
            pytrace=False,
        )
    launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
    yield launched
    launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(
        locale="en-US", timezone_id="UTC", viewport={"width": 1280, "height": 900}
    )
    # A busy CI machine (2 cores: Azurite, the app and Chromium) can be slower than
    # Playwright's 5-s defaults; these bound a wait, they time nothing.
    context.set_default_timeout(20_000)
    opened = context.new_page()
    errors: list[str] = []
    opened.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    opened.on("pageerror", lambda e: errors.append(f"uncaught: {e}"))
    opened.console_errors = errors  # type: ignore[attr-defined]
    yield opened
    context.close()


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where each test leaves its screenshots: E2E_SCREENSHOTS, else a temporary folder."""
    chosen = os.environ.get("E2E_SCREENSHOTS")
    folder = Path(chosen) if chosen else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def shoot(page: Page, folder: Path, name: str, *, full_page: bool = False) -> Path:
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page, animations="disabled")
    return path


def axe_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the page as it is now. The app's CSP
    refuses inline scripts (add_script_tag is one), so axe goes in through the DevTools
    protocol, which the page's policy does not govern."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(AXE.read_text())
    found: list[dict[str, Any]] = page.evaluate(
        """async () => (await axe.run(document, {resultTypes: ["violations"]})).violations
            .filter(v => v.impact === "serious" || v.impact === "critical")
            .map(v => ({id: v.id, impact: v.impact, help: v.help,
                        nodes: v.nodes.slice(0, 5).map(n => n.target.join(" "))}))"""
    )
    return found


def assert_accessible(page: Page) -> None:
    violations = axe_violations(page)
    assert not violations, violations


def assert_no_console_errors(page: Page, *allowed: str) -> None:
    errors = [e for e in page.console_errors if not any(a in e for a in allowed)]  # type: ignore[attr-defined]
    assert not errors, errors


def new_seller() -> str:
    return f"e2e.{uuid.uuid4().hex[:10]}@contoso.example"


def sign_in(page: Page, base: str, email: str, *, admin: bool = False, start: str = "/app") -> None:
    """Through the development sign-in page, as a person does."""
    page.goto(base + start)
    page.get_by_label("Email address").fill(email)
    if admin:
        page.get_by_label("Admin").check()
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: "/app/signin" not in url)
    page.get_by_text(email).wait_for()


class SellerApi:
    """The seller API over HTTP, with a development token: what the tests set up through."""

    def __init__(self, live: LiveApp, email: str) -> None:
        from shared.core.auth import make_dev_token

        token = make_dev_token(live.services.settings, email)
        self.live = live
        self.http = httpx.Client(
            base_url=live.base, headers={"Authorization": f"Bearer {token}"}, timeout=30
        )

    def contact(self, address: str, name: str = "Bob Customer") -> dict[str, Any]:
        found = self.http.get("/api/records", params={"email": address}).json()["records"]
        if found:
            record: dict[str, Any] = found[0]
            return record
        created = self.http.post("/api/records/contact", json={"name": name, "emails": [address]})
        assert created.status_code == 201, created.text
        result: dict[str, Any] = created.json()
        return result

    def compose(self, **overrides: Any) -> dict[str, Any]:
        response = self.http.post("/api/messages", json=compose_body(**overrides))
        assert response.status_code == 201, response.text
        sent: dict[str, Any] = response.json()
        return sent

    def close(self) -> None:
        self.http.close()


def be_the_recipient(live: LiveApp, url: str, *, person: str) -> httpx.Response:
    """Fetch a tracking URL of a delivered body from the app, as a person's mail client
    (`person="mail"`: Outlook loading images) or browser (`"browser"`: a link followed)."""
    headers = (
        {"User-Agent": PERSON_USER_AGENT, "Accept": "image/*,*/*;q=0.8"}
        if person == "mail"
        else {"User-Agent": BROWSER_USER_AGENT, "Accept": "text/html,*/*;q=0.8"}
    )
    with httpx.Client(base_url=live.base, timeout=30) as http:
        return http.get(path_of(url), headers=headers)


@pytest.fixture
def seller(live_app: LiveApp) -> Iterator[tuple[str, SellerApi]]:
    email = new_seller()
    api = SellerApi(live_app, email)
    yield email, api
    api.close()


@contextlib.contextmanager
def no_reload(page: Page) -> Iterator[None]:
    """Asserts that the page was not reloaded or navigated away while inside."""
    page.evaluate("() => { window.__noReload = true; }")
    yield
    assert page.evaluate("() => window.__noReload === true"), "the page was reloaded"


@pytest.fixture(scope="session")
def graph_standin(clock: Clock) -> Iterator[GraphStandIn]:
    """The Graph stand-in (devtools/graph_standin.py), on the session's clock."""
    with GraphStandIn(clock=clock.now) as server:
        yield server


@pytest.fixture(scope="session")
def graph_live_app(
    settings: Settings, clock: Clock, graph_standin: GraphStandIn
) -> Iterator[LiveApp]:
    """A second app, wired to the Graph stand-in through the real msgraph SDK (sending from
    the seller's mailbox, mailbox syncs), on the same Azurite: its `run` syncs mailboxes."""
    configured = settings.model_copy(
        update={
            "delivery_backend": "graph",
            "graph_auth": "static",
            "graph_static_token": SecretStr(DEFAULT_TOKEN),
            "graph_base_url": graph_standin.base_url,
        }
    )
    with serve(configured, clock) as app:
        yield app
