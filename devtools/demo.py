"""`make demo`: the app, run locally with the Graph stand-in as Ana's Outlook mailbox, in a
short narrated walk-through — a followed mail goes out, a reply is detected and a categorised
mail is tracked. No tenant and no running Azurite: everything starts here on 127.0.0.1 (a
throwaway Azurite, the stand-in, the app under uvicorn) and is gone at the end.

    .venv/bin/python -m devtools.demo [--keep-running]

It drives the real app over HTTP and runs the real sync cycle; every step checks what it
shows, and the demo exits non-zero when a check fails.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import re
import signal
import socket
import sys
from collections import Counter
from collections.abc import AsyncIterator, Generator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import FrameType
from typing import Any

import httpx
import uvicorn
from pydantic import SecretStr

from devtools.graph_standin import DEFAULT_TOKEN, GraphStandIn
from functions.http_app import create_app
from shared.bootstrap import build_services
from shared.core.auth import ADMIN_ROLE, make_dev_token
from shared.core.services import Services
from shared.core.settings import Settings
from shared.core.storage import ensure_storage
from shared.engagement.fold import fold_cycle
from shared.messages.dispatch import dispatch_cycle
from shared.outlook.mail import STAMP_PROPERTY
from shared.outlook.sync import sync_cycle, sync_mailbox
from tests.utils.azurite import azurite

logger = logging.getLogger(__name__)

ANA = "ana@contoso.example"
CUSTOMER = "bob@fabrikam.example"
LEAD = "lead@northwind.example"
SUBJECT = "Your quote"
PRICING = "https://contoso.example/pricing?plan=pro&seats=5"
HTML = (
    "<html><body><p>Hi Bob,</p><p>Here is "
    '<a href="https://contoso.example/pricing?plan=pro&amp;seats=5">the pricing</a> '
    "we talked about.</p><p>Ana</p></body></html>"
)
IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 Mobile"
SAFARI = (  # the link opens in Safari on the same phone
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, "
    "like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
)
STEPS_SECONDS = 40  # the whole walk-through; it takes a few seconds
CYCLE_SECONDS = 10  # --keep-running: how often the timers' cycles run
# The order the history is told in (the API lists it newest first).
_STORY = {kind: i for i, kind in enumerate(["open", "click", "attachment", "reply", "auto_reply"])}


class DemoFailed(Exception):
    """A step's check did not hold."""


def check(condition: bool, failure: str) -> None:
    """An explicit check, kept under `python -O` (asserts are not)."""
    if not condition:
        raise DemoFailed(failure)


def say(text: str = "") -> None:
    print(text, flush=True)


def step(number: int, title: str) -> None:
    say(f"\n{number}. {title}")


def show(text: str) -> None:
    say(f"   {text}")


def answer(response: httpx.Response, status: int, what: str) -> dict[str, Any]:
    """The JSON body of a response that must have `status`."""
    check(
        response.status_code == status,
        f"{what}: expected HTTP {status}, got {response.status_code} {response.text[:300]}",
    )
    body: dict[str, Any] = response.json()
    return body


def short(url: str, keep: int = 10) -> str:
    """A tracking URL with its long signed token cut, for reading."""
    head, _, token = url.rpartition("/")
    return f"{head}/{token[:keep]}…" if len(token) > keep else url


def tracking_url(html: str, app_url: str, kind: str) -> str:
    """The first open (o) or click (c) URL of ours in a delivered body."""
    found = re.search(re.escape(f"{app_url}/t/{kind}/") + r"[^\"'\s<>]+", html)
    if found is None:
        raise DemoFailed(f"no /t/{kind}/ tracking URL in the delivered body")
    return found.group(0)


class _Server(uvicorn.Server):
    """uvicorn without its own Ctrl-C handling: the interrupt reaches the demo, which then
    takes the app, the stand-in and Azurite down in order."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


@contextlib.asynccontextmanager
async def serve(services: Services, sock: socket.socket) -> AsyncIterator[None]:
    """The app under uvicorn on an already bound loopback socket, in this event loop (the
    sync cycles the demo runs share the app's storage and Graph clients)."""
    config = uvicorn.Config(
        create_app(lambda: services),
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=3,
    )
    server = _Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            check(not task.done(), "the app stopped during start-up")
            await asyncio.sleep(0.02)
        yield
    finally:
        server.should_exit = True
        try:
            await asyncio.wait_for(task, 10)
        except TimeoutError:
            logger.warning("the app did not stop within 10 s; it was cancelled")


class DemoClock:
    """The real clock, which the demo moves on when Bob reads "later that morning": a
    person reads after the delivery window, when security gateways check mail, and nobody
    wants to wait ten minutes for a demo."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += timedelta(seconds=seconds)


@dataclass
class Walkthrough:
    """The steps, sharing what the previous ones made."""

    clock: DemoClock
    services: Services
    standin: GraphStandIn
    http: httpx.AsyncClient
    app_url: str
    seller: dict[str, str] = field(init=False)
    admin: dict[str, str] = field(init=False)
    message_id: str = ""
    sent: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        settings = self.services.settings
        self.seller = {"Authorization": f"Bearer {make_dev_token(settings, ANA)}"}
        admin_token = make_dev_token(settings, "admin@contoso.example", roles=(ADMIN_ROLE,))
        self.admin = {"Authorization": f"Bearer {admin_token}"}

    async def run(self) -> None:
        await self.enrol()
        await self.send_followed()
        await self.open_and_click()
        await self.reply()
        await self.categorise()

    async def enrol(self) -> None:
        step(1, "Enrol Ana's mailbox (POST /api/admin/mailboxes, with an admin token)")
        response = await self.http.post(
            "/api/admin/mailboxes", json={"email": ANA, "folders": []}, headers=self.admin
        )
        box = answer(response, 201, "enrol")
        check(box["email"] == ANA, f"enrolled {box['email']!r}, not {ANA}")
        show(f"enrolled {box['email']}: mail goes out from it, its Inbox and Sent Items are read")

    async def send_followed(self) -> None:
        step(2, f"{CUSTOMER} is a contact who allows following (POST /api/records/contact)")
        contact = {"name": "Bob", "emails": [CUSTOMER], "follow_email": "allow"}
        answer(
            await self.http.post("/api/records/contact", json=contact, headers=self.seller),
            201,
            "create the contact",
        )
        show("only mail to contacts, leads and accounts that allow it is followed")
        step(3, f"Ana sends a followed mail to {CUSTOMER} (POST /api/messages)")
        body = {"to": [CUSTOMER], "subject": SUBJECT, "html": HTML}
        created = answer(
            await self.http.post("/api/messages", json=body, headers=self.seller), 201, "compose"
        )
        check(created["status"] == "sent", f"the message is {created['status']}, not sent")
        self.message_id = created["id"]
        link = tracking_url(created["html"], self.app_url, "c")
        pixel = tracking_url(created["html"], self.app_url, "o")
        show(f"link   {created['links'][0]['url']}")
        show(f"    -> {short(link)}")
        show(f"pixel  {short(pixel)}")
        sent = [m for m in self.standin.sent(ANA) if m["subject"] == SUBJECT]
        check(len(sent) == 1, f"{len(sent)} messages titled {SUBJECT!r} in Sent Items, not 1")
        self.sent = sent[0]
        stamps = {p["id"].lower(): p["value"] for p in self.sent["singleValueExtendedProperties"]}
        stamp = stamps.get(STAMP_PROPERTY.lower())
        check(stamp == self.message_id, f"Sent Items copy stamped {stamp!r}, not our id")
        check(link in self.sent["body"]["content"], "the mail went out without its followed link")
        show(f'Sent Items of {ANA}: "{self.sent["subject"]}" to {CUSTOMER},')
        show(f"    stamped EngagementMessageId={stamp} (so a retry never sends it twice)")

    async def open_and_click(self) -> None:
        step(4, "Ten minutes later Bob opens it on his phone and clicks the link")
        show("(the demo's clock jumps ten minutes: a person reads after the delivery window)")
        body: str = self.sent["body"]["content"]  # as it left Ana's mailbox for Bob
        pixel = tracking_url(body, self.app_url, "o")
        link = tracking_url(body, self.app_url, "c")
        self.clock.advance(600)
        image = await self.http.get(pixel, headers={"User-Agent": IPHONE, "Accept": "image/*"})
        kind = image.headers.get("content-type", "")
        check(image.status_code == 200 and kind == "image/gif", f"pixel answered {kind}")
        show(f"GET pixel -> {image.status_code} {kind}, {len(image.content)} bytes")
        self.clock.advance(20)  # he reads a little, then follows the link
        click = await self.http.get(link, headers={"User-Agent": SAFARI, "Accept": "text/html"})
        location = click.headers.get("location", "")
        check(click.status_code == 302 and location == PRICING, f"link went to {location!r}")
        show(f"GET link  -> {click.status_code} to {location}")
        self.clock.advance(60)  # a minute on, the fold has counted them
        await fold_cycle(self.services, grace=self.services.grace)
        kpis = (await self.view())["kpis"]
        check(kpis["opens"] == 1 and kpis["link_clicks"] == 1, f"KPIs are {kpis}")
        alerts = answer(await self.http.get("/api/alerts", headers=self.seller), 200, "alerts")
        hows = [a["how"] for a in alerts["alerts"] if a["message_id"] == self.message_id]
        check(hows == ["opened in Apple Mail on iPhone"], f"first-open alerts say {hows}")
        show(f"Ana's assistant: first-open alert, {hows[0]}")
        devices = ", ".join(f"{n} {d}" for d, n in kpis["devices"].items()) or "no device"
        show(
            f"KPIs: opens {kpis['opens']} ({devices}), link clicks {kpis['link_clicks']}, "
            f"replies {kpis['replies']}"
        )

    async def reply(self) -> None:
        step(5, "Bob replies, his out-of-office answers too; one sync cycle of Ana's mailbox")
        sent_id, conversation = self.sent["internetMessageId"], self.sent["conversationId"]
        self.standin.deliver(
            ANA,
            subject=f"Re: {SUBJECT}",
            body_html="<p>Looks good, please send the contract.</p>",
            sender=("Bob", CUSTOMER),
            to=[ANA],
            in_reply_to=sent_id,
            references=sent_id,
            conversation_id=conversation,
        )
        self.standin.deliver(
            ANA,
            subject=f"Automatic reply: {SUBJECT}",
            body_html="<p>I am out of the office until Monday.</p>",
            sender=("Bob", CUSTOMER),
            to=[ANA],
            in_reply_to=sent_id,
            conversation_id=conversation,
            headers={"Auto-Submitted": "auto-replied"},
        )
        show(f"In-Reply-To {sent_id}, same conversationId")
        report = await sync_mailbox(self.services, ANA)
        if report is None:
            raise DemoFailed("another sync cycle held Ana's mailbox")
        check(report.failed == 0, f"{report.failed} items failed to sync")
        show(
            f"sync: {report.items} changed items read, {report.replies} of them answer the "
            "followed mail"
        )
        view = await self.view(history=True)
        check(view["kpis"]["replies"] == 1, f"replies is {view['kpis']['replies']}, not 1")
        history = view["history"]
        answers = sorted((h["event"], h["counted"]) for h in history if "reply" in h["event"])
        check(answers == [("auto_reply", False), ("reply", True)], f"reply events: {answers}")
        show(f"KPIs: replies {view['kpis']['replies']}; every event (?history=full):")
        for event in sorted(history, key=lambda h: _STORY.get(h["event"], len(_STORY))):
            counted = "counted" if event["counted"] else "recorded, not counted"
            show(f"    {event['event']:<10}  {counted}")

    async def categorise(self) -> None:
        category = self.services.settings.tracking_category
        step(6, "Ana tags an unrelated customer mail in Outlook; one sync cycle")
        item = self.standin.deliver(
            ANA,
            subject="Pricing question",
            body_html="<p>What would 20 seats cost?</p>",
            sender=("Lee", LEAD),
            to=[ANA],
            categories=[category],
        )
        show(f'"{item["subject"]}" from {LEAD} gets the category "{category}"')
        report = await sync_mailbox(self.services, ANA)
        check(report is not None and report.failed == 0, f"the sync cycle reported {report}")
        rows = [dict(r) async for r in self.services.store.activities.list_entities()]
        mine = [r for r in rows if r["internet_message_id"] == item["internetMessageId"]]
        check(len(mine) == 1, f"{len(mine)} activities for the categorised mail, not 1")
        activity = mine[0]
        check(
            activity["method"] == "category" and activity["status"] == "tracked",
            f"the activity is {activity['status']} by {activity['method']}",
        )
        show(
            f'activity: "{activity["subject"]}" from {activity["sender"]}, '
            f"{activity['status']} by {activity['method']}"
        )
        methods = Counter(r["method"] for r in rows if r["status"] == "tracked")
        listed = ", ".join(f"{n} by {m}" for m, n in sorted(methods.items()))
        show(f"activities table: {sum(methods.values())} tracked ({listed})")
        health = answer(
            await self.http.get("/api/admin/mailboxes", headers=self.admin), 200, "health"
        )
        boxes = [b for b in health["mailboxes"] if b["email"] == ANA]
        check(len(boxes) == 1, "Ana's mailbox is missing from the health view")
        box = boxes[0]
        check(
            box["last_error"] is None and box["items_failing"] == 0,
            f"mailbox health shows errors: {box}",
        )
        check(box["items_tracked"] == sum(methods.values()), f"health counts {box}")
        errors = ", ".join(f"{n} {kind}" for kind, n in box["errors"].items() if n) or "none"
        check(errors == "none", f"mailbox health counts errors: {errors}")
        show("mailbox health (GET /api/admin/mailboxes):")
        show(
            f"    {box['items_tracked']} items tracked, {box['items_failing']} failing, "
            f"last sync {box['lag_seconds']:.1f} s ago, errors: {errors}"
        )

    async def view(self, *, history: bool = False) -> dict[str, Any]:
        path = f"/api/messages/{self.message_id}" + ("?history=full" if history else "")
        return answer(await self.http.get(path, headers=self.seller), 200, f"GET {path}")

    async def stay_up(self) -> None:
        """--keep-running: the app and the stand-in stay up, with the timers' cycles."""
        say("\nStill running; Ctrl-C to stop.")
        show(f"app             {self.app_url}  (OpenAPI: {self.app_url}/docs)")
        show(f"Graph stand-in  {self.standin.base_url}  (Bearer {DEFAULT_TOKEN})")
        show(f"seller token    {self.seller['Authorization'].removeprefix('Bearer ')}")
        show(f"admin token     {self.admin['Authorization'].removeprefix('Bearer ')}")
        show(f'try: curl -H "Authorization: Bearer <seller token>" {self.app_url}/api/messages')
        show(f"sync, fold and dispatch cycles run every {CYCLE_SECONDS} s, as the timers would")
        while True:
            await asyncio.sleep(CYCLE_SECONDS)
            try:
                await sync_cycle(self.services)
                await fold_cycle(self.services, grace=self.services.grace)
                await dispatch_cycle(self.services)
            except Exception:
                logger.exception("a background cycle failed; the next one runs anyway")


def _settings(connection_string: str, app_url: str, graph_url: str) -> Settings:
    """Local settings: storage on the throwaway Azurite, Outlook on the stand-in."""
    return Settings(
        environment="local",
        auth_mode="dev",
        storage_connection_string=SecretStr(connection_string),
        tracking_base_url=app_url,
        delivery_backend="graph",
        graph_auth="static",
        graph_static_token=SecretStr(DEFAULT_TOKEN),
        graph_base_url=graph_url,
    )


async def run(connection_string: str, standin: GraphStandIn, *, keep_running: bool) -> None:
    """Start the app, walk through the steps, and stop the app again."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))  # bound before the settings: the links must name this port
    app_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    clock = DemoClock()
    services = build_services(_settings(connection_string, app_url, standin.base_url), clock.now)
    try:
        async with asyncio.timeout(STEPS_SECONDS) as bound:
            await ensure_storage(services.store)
            async with (
                serve(services, sock),
                httpx.AsyncClient(base_url=app_url, timeout=10, trust_env=False) as http,
            ):
                show(f"app on {app_url}, Graph stand-in on {standin.base_url}")
                walkthrough = Walkthrough(clock, services, standin, http, app_url)
                await walkthrough.run()
                if keep_running:
                    bound.reschedule(None)  # the bound is for the walk-through only
                    await walkthrough.stay_up()
                step(7, "Tear down")
    finally:
        await services.close()
        sock.close()


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devtools.demo",
        description="A followed mail, a reply and a tracked mail, against the Graph stand-in.",
    )
    parser.add_argument(
        "--keep-running",
        action="store_true",
        help="leave the app and the stand-in up afterwards (Ctrl-C to stop)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # Stopped like Ctrl-C, so that Azurite (a child process) and its folder never outlive us.
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _interrupt)
    say("Email engagement demo: Ana's Outlook mailbox is the Graph stand-in; no tenant needed.")
    say(f"Starting a throwaway Azurite, the Graph stand-in with {ANA}, and the app...")
    try:
        with azurite() as connection_string, GraphStandIn() as standin:
            standin.add_mailbox(ANA, "Ana")
            asyncio.run(run(connection_string, standin, keep_running=args.keep_running))
    except DemoFailed as failure:
        say(f"\nDEMO FAILED: {failure}")
        return 1
    except TimeoutError:
        say(f"\nDEMO FAILED: the walk-through took longer than {STEPS_SECONDS} s")
        return 1
    except KeyboardInterrupt:
        say("\nStopped: the app, the Graph stand-in and Azurite are down.")
        return 0 if args.keep_running else 130
    show("the app, the Graph stand-in and Azurite are stopped; Azurite's data is deleted")
    say("\nRead more:")
    show("README.md                  the seller API; the curl walk-through with `make run`")
    show("devtools/README.md         the Graph stand-in, and how the tests use it")
    show("shared/outlook/delivery.py   sending from the seller's own mailbox, never twice")
    show("shared/outlook/replies.py          how replies and automatic replies are told apart")
    show(
        "shared/outlook/sync.py             the sync cycle: replies, tracking by category or folder"
    )
    show("python -m devtools.demo --keep-running   leaves the app and the stand-in up")
    return 0


if __name__ == "__main__":
    sys.exit(main())
