"""First-open alert latency, in real time: followed messages, sent ten minutes before (past
the delivery window), are opened at random moments while the two timers run on their default
schedules in-process (the alert cycle every 5 s, the fold every 10 s with its 30-s grace).
Half are opened in Outlook on Windows (clearly a person's: alerted by the alert cycle), half
in a current browser (webmail: the alert waits ALERT_WAIT_SECONDS for later evidence, such as
a scanner's sweep, then comes from the due index once the fold has absorbed that time). For
each open, the latency is the time from the pixel request until the seller's alert list shows
it (polled every 100 ms); the baseline, in the same run, is the time until the fold has
counted the open.

Reminders ride the same alert cycle: a few messages carry an "at" reminder due at a random
moment of the run; a reminder's delay is the time from its due moment to the moment its
alert row exists (polled every 100 ms). They used to wait for REMINDER_SCHEDULE (every 15
minutes): up to 15 minutes late, 7.5 on average.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import statistics
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import httpx
from pydantic import SecretStr

from functions.http_app import create_app
from shared.assistant.first_open_alerts import first_open_cycle
from shared.assistant.reminders import ReminderIn, reminder_cycle
from shared.bootstrap import build_services
from shared.core.auth import dev_seller, make_dev_token
from shared.core.services import Services
from shared.core.settings import Settings
from shared.core.storage import ensure_storage
from shared.crm import records
from shared.crm.records import RecordIn
from shared.engagement.fold import fold_cycle
from shared.messages.compose import compose
from shared.messages.models import ComposeIn
from tests.utils.azurite import azurite

SELLER = "bench.alerts@contoso.example"
OUTLOOK = "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17328; Pro)"
BROWSER = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/142.0.0.0 Safari/537.36"
)
SENT_BEFORE = timedelta(minutes=10)  # the messages went out this long before the run
ALERT_PERIOD = 5.0
FOLD_PERIOD = 10.0


@dataclasses.dataclass(frozen=True)
class AlertResult:
    opens: int
    alert_seconds: list[float]  # clear opens (a person's mail client)
    fold_seconds: list[float]
    alert_cycle_ms: list[float]
    reminder_seconds: list[float] = dataclasses.field(default_factory=list)
    reminders: int = 0
    waited_seconds: list[float] = dataclasses.field(default_factory=list)  # browser opens
    wait_setting: float = 0.0

    @property
    def waited_median(self) -> float:
        return statistics.median(self.waited_seconds) if self.waited_seconds else 0.0

    @property
    def waited_max(self) -> float:
        return max(self.waited_seconds, default=0.0)

    @property
    def alert_median(self) -> float:
        return statistics.median(self.alert_seconds)

    @property
    def alert_max(self) -> float:
        return max(self.alert_seconds)

    @property
    def fold_median(self) -> float:
        return statistics.median(self.fold_seconds)

    @property
    def ratio(self) -> float:
        return self.alert_median / self.fold_median

    @property
    def reminder_median(self) -> float:
        return statistics.median(self.reminder_seconds) if self.reminder_seconds else 0.0

    @property
    def reminder_max(self) -> float:
        return max(self.reminder_seconds, default=0.0)

    @property
    def checked(self) -> bool:
        return (
            len(self.alert_seconds) + len(self.waited_seconds) == len(self.fold_seconds)
            and len(self.fold_seconds) == self.opens
            and len(self.reminder_seconds) == self.reminders
        )


async def _timer(period: float, stop: asyncio.Event, run: Callable[[], Awaitable[None]]) -> None:
    """Call `run` at each multiple of `period` seconds (as an NCRONTAB `*/n` does)."""
    while not stop.is_set():
        await asyncio.sleep(period - time.time() % period)
        await run()


async def _measure(connection_string: str, opens: int, seed: int, reminders: int) -> AlertResult:
    settings = Settings(storage_connection_string=SecretStr(connection_string))
    offset = [SENT_BEFORE]  # composed in the past, then the clock is the real one

    def clock() -> datetime:
        return datetime.now(UTC) - offset[0]

    services: Services = build_services(settings, clock)
    await ensure_storage(services.store)
    rng = random.Random(seed)
    seller = dev_seller(SELLER)
    messages = []
    for n in range(opens):
        address = f"reader{n}@fabrikam.example"
        await records.create(
            services, seller, "contact", RecordIn(name=f"Reader {n}", emails=[address])
        )
        body = ComposeIn(to=[address], subject=f"Quote {n}", html="<p>Your quote.</p>")
        messages.append(await compose(services, seller, body))
    offset[0] = timedelta(0)
    due: list[tuple[str, datetime]] = []
    for n in range(reminders):
        at = datetime.now(UTC) + timedelta(seconds=rng.uniform(5, 35))
        reminder = ReminderIn(title=f"Call {n}", condition="at", at=at)
        body = ComposeIn(
            to=[f"reminded{n}@fabrikam.example"],
            subject=f"Reminded {n}",
            html="<p>Talk soon.</p>",
            reminder=reminder,
        )
        due.append((str((await compose(services, seller, body))["id"]), at))
    cycle_ms: list[float] = []

    async def alert_cycle() -> None:  # what the alert timer runs (webhooks aside)
        started = time.perf_counter()
        await first_open_cycle(services, datetime.now(UTC))
        await reminder_cycle(services)
        cycle_ms.append((time.perf_counter() - started) * 1000)

    async def fold() -> None:
        await fold_cycle(services, grace=services.grace)

    stop = asyncio.Event()
    timers = [
        asyncio.create_task(_timer(ALERT_PERIOD, stop, alert_cycle)),
        asyncio.create_task(_timer(FOLD_PERIOD, stop, fold)),
    ]
    alert_seconds: list[float] = []
    waited_seconds: list[float] = []
    fold_seconds: list[float] = []
    reminder_seconds: list[float] = []
    transport = httpx.ASGITransport(app=create_app(lambda: services))
    token = make_dev_token(settings, SELLER)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:

        async def one(message: dict[str, object], delay: float, agent: str) -> None:
            await asyncio.sleep(delay)
            html = str(message["html"])
            pixel = html.split('src="http://127.0.0.1:7071', 1)[1].split('"', 1)[0]
            opened = time.monotonic()
            await client.get(pixel, headers={"User-Agent": agent, "Accept": "image/*"})
            alerted = counted = None
            while alerted is None or counted is None:
                await asyncio.sleep(0.1)
                now = time.monotonic() - opened
                if alerted is None:
                    listed = await client.get(
                        "/api/alerts", headers={"Authorization": f"Bearer {token}"}
                    )
                    if any(a["message_id"] == message["id"] for a in listed.json()["alerts"]):
                        alerted = now
                if counted is None:
                    entity = await services.store.messages.get_entity(
                        str(message["id"])[:8], str(message["id"])
                    )
                    if int(entity.get("opens") or 0) > 0:
                        counted = now
                if now > 300:
                    return
            (alert_seconds if agent == OUTLOOK else waited_seconds).append(alerted)
            fold_seconds.append(counted)

        async def reminded(message_id: str, at: datetime) -> None:
            await asyncio.sleep(max(0.0, (at - datetime.now(UTC)).total_seconds()))
            while (late := (datetime.now(UTC) - at).total_seconds()) < 180:
                listed = await client.get(
                    "/api/alerts", headers={"Authorization": f"Bearer {token}"}
                )
                alerts = listed.json()["alerts"]
                if any(a["message_id"] == message_id and a["kind"] == "reminder" for a in alerts):
                    reminder_seconds.append(late)
                    return
                await asyncio.sleep(0.1)

        await asyncio.gather(
            *(
                one(m, rng.uniform(0, 30), OUTLOOK if n % 2 == 0 else BROWSER)
                for n, m in enumerate(messages)
            ),
            *(reminded(message_id, at) for message_id, at in due),
        )
    stop.set()
    for task in timers:
        task.cancel()
    await asyncio.gather(*timers, return_exceptions=True)
    await services.close()
    return AlertResult(
        opens,
        alert_seconds,
        fold_seconds,
        cycle_ms,
        reminder_seconds,
        len(due),
        waited_seconds,
        float(settings.alert_wait_seconds),
    )


def measure(opens: int = 30, seed: int = 7, reminders: int = 8) -> AlertResult:
    """Run the alert-latency benchmark (about a minute and a half of real time)."""
    with azurite() as connection_string:
        return asyncio.run(_measure(connection_string, opens, seed, reminders))


_CHECKED = "every open alerted and counted, every reminder fired"


def report(result: AlertResult) -> str:
    """Plain-text lines for the terminal."""
    r = result
    cycle = statistics.median(r.alert_cycle_ms) if r.alert_cycle_ms else 0.0
    return (
        f"alerts: {r.opens} opens at random moments, timers on their default schedules\n"
        f"  first-open alert, clear opens: {r.alert_median:.1f} s median, {r.alert_max:.1f} s "
        f"at most (alert cycle every {ALERT_PERIOD:.0f} s, {cycle:.0f} ms per cycle)\n"
        f"  first-open alert, opens waiting for evidence ({r.wait_setting:.0f} s): "
        f"{r.waited_median:.1f} s median, {r.waited_max:.1f} s at most\n"
        f"  baseline, counted by the fold: {r.fold_median:.1f} s median, "
        f"{max(r.fold_seconds):.1f} s at most; ratio {r.ratio:.2f}\n"
        f"  reminders ({r.reminders}, due at random moments): fired {r.reminder_median:.1f} s "
        f"after their time median, {r.reminder_max:.1f} s at most\n"
        f"  check: {_CHECKED if r.checked else 'FAILED'}"
    )


if __name__ == "__main__":
    print(report(measure()))
