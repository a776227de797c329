"""The evaluation set replayed as production runs it: through the API and the tracking
endpoints, with the timers' cycles ticking on a controlled clock.

Each send is composed through `POST /api/messages` (a dev token, outbox delivery) at its time,
with as many followed links as its trace follows and a followed attachment where the trace
has one. Each event of its trace is a request to the tracking endpoint its token names, at
its time, with its user agent (none when empty), method, Accept header (or none) and client
address, which reaches the app in `X-Forwarded-For` with a source port, as the Functions
front end passes it on (the socket peer is the front end). A message sent to everyone at once
has one set of tokens for all its recipients, so its events carry no copy; one sent
individually gives each recipient's events the tokens of that recipient's copy, taken from the
.eml the outbox delivered. The alert cycle runs every 5 s and the fold every 10 s (after the
alert cycle when both are due: one order, so that a replay gives the same figures every time),
without a break for TAIL_SECONDS after any request; with nothing pending the clock jumps to
the next one and the fold catches up over the gap as it would after an outage.

What production then shows is read back: each event's row in the events table (its final
label), each message's view (`GET /api/messages/{id}`) and its first-open alert.

Cost: a tick is a handful of storage requests (25 to 50 ms on a shared 2-core machine), so a
replay costs simulated active time, not events. `schedule` chooses when each send goes out so
that the sends' active stretches overlap as much as they can; every event keeps its time
relative to its own send, which is all the product reads (it judges each message's events
apart from every other message's). With several lanes, each lane is a production of its own
(a process, an Azurite, a clock) replaying a share of the sends.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import email
import email.policy
import hashlib
import math
import multiprocessing
import re
import subprocess
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import httpx

from shared.assistant.first_open_alerts import first_open_cycle
from shared.bootstrap import build_services
from shared.core.auth import make_dev_token
from shared.core.services import Services
from shared.core.settings import Settings
from shared.core.storage import ensure_storage
from shared.core.vocabulary import EventClass, EventKind, current_class
from shared.engagement import history
from shared.engagement.fold import fold_cycle
from shared.messages.models import ComposeIn
from shared.tracking.followed_body import tracking_url
from shared.tracking.tokens import TokenSigner, TrackingRef
from tests.classification.traces import START, LabelledEvent, Send, Truth
from tests.utils import azurite as azurite_utils

TAIL_SECONDS = 600  # the cycles run at least this long after any event
ALERT_SECONDS = 5  # the alert timer (ALERT_SCHEDULE)
FOLD_SECONDS = 10  # the fold timer (FOLD_SCHEDULE)
LANES = 1  # independent replays side by side (processes): worth it only on idle cores
TRACKING_BASE = "http://track.test"
SELLER = "evaluation.seller@contoso.example"
# Sends marked `individually` go out with compose's `send_individually` (one .eml per
# recipient, each with its own tokens) when compose has it; without it, the harness signs
# each copy's tokens itself, as compose would.
COMPOSE_SENDS_INDIVIDUALLY = "send_individually" in ComposeIn.model_fields
_TOKEN = re.compile(r'"https?://[^/"]+(/t/[oca]/([A-Za-z0-9]+\.[A-Za-z0-9_=-]+?)(?:\.gif)?)"')
_ACCEPT: dict[EventKind, str] = {  # what a browser or a mail client's renderer asks for
    "open": "image/avif,image/webp,image/apng,image/*,*/*;q=0.8",
    "click": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "attachment": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
}
_EXPECTED_STATUS = {"open": 200, "click": 302, "attachment": 302}


async def alert_cycle(services: Services, now: datetime) -> None:
    """The first-open step of the alert timer (functions/timers/alerts.py)."""
    await first_open_cycle(services, now)


async def fold(services: Services, now: datetime) -> None:
    """The fold timer (functions/timers/fold.py)."""
    await fold_cycle(services, now=now)


class SimClock:
    """The services' clock: simulated time, moved forward only by the replay."""

    def __init__(self, start: datetime) -> None:
        self.at = start

    def now(self) -> datetime:
        return self.at

    def move(self, to: datetime) -> None:
        if to < self.at:
            raise ValueError(f"the clock cannot go back from {self.at} to {to}")
        self.at = to


@dataclass(frozen=True, slots=True)
class Alert:
    """A message's first-open alert as stored at the end."""

    opened_at: datetime  # created_at: the open it was raised on
    raised_at: datetime | None  # None where alerts do not record it
    withdrawn: str  # why a later fold took it back; "" if it stands


@dataclass(frozen=True, slots=True)
class EventOutcome:
    """One event: the truth, the actor, and the label production stored for it."""

    truth: Truth
    actor: str
    label: EventClass | None  # None: no row in the events table
    reasons: tuple[str, ...]
    send: int


@dataclass(frozen=True, slots=True)
class MessageOutcome:
    """One send as production shows it at the end, beside the truth (times on the replay's
    clock)."""

    send: int
    message_id: str
    sent_at: datetime
    read_at: datetime | None  # a person first read it, seen or not (the trace's truth)
    first_seen_open: datetime | None  # a person's client or an on-open proxy fetched the pixel
    alert: Alert | None
    opens: int  # kpis.opens of the message's view
    by_class: dict[str, dict[str, int]]
    individually: bool


@dataclass
class Replayed:
    """Everything the replay read back, and what it cost."""

    events: list[EventOutcome] = field(default_factory=list)
    messages: list[MessageOutcome] = field(default_factory=list)
    requests: int = 0
    failed_requests: int = 0  # answered otherwise than the recipient's client expects
    # rows whose client network, agent, method or Accept differ from what the request sent
    misrecorded: list[str] = field(default_factory=list)
    alert_ticks: int = 0
    fold_ticks: int = 0
    simulated: timedelta = timedelta()
    active: timedelta = timedelta()
    seconds: float = 0.0
    individually_by: str = ""  # how copies got their tokens
    lanes: int = 1


# --- when each send goes out ---------------------------------------------------------------


def _merge(intervals: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    merged: list[tuple[float, float]] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def stretches(send: Send) -> list[tuple[float, float]]:
    """The stretches, in seconds after sending, when the cycles must tick for this send."""
    moments = [0.0] + [(e.signals.at - send.sent_at).total_seconds() for e in send.events]
    return _merge([(t, t + TAIL_SECONDS) for t in moments])


def _uncovered(
    active: list[tuple[float, float]], starts: list[float], own: list[tuple[float, float]]
) -> float:
    """Seconds of `own` that `active` does not cover."""
    total = 0.0
    for start, end in own:
        covered = 0.0
        j = max(bisect.bisect_right(starts, start) - 1, 0)
        while j < len(active) and active[j][0] < end:
            covered += max(0.0, min(end, active[j][1]) - max(start, active[j][0]))
            j += 1
        total += end - start - covered
    return total


def schedule(sends: Sequence[Send]) -> list[float]:
    """Seconds after START at which each send goes out: greedily, largest first, where it adds
    the least active time to the sends placed before it (its stretches lined up against
    theirs). Deterministic."""
    spans = [stretches(send) for send in sends]
    order = sorted(range(len(sends)), key=lambda i: (-sum(b - a for a, b in spans[i]), i))
    offsets = [0.0] * len(sends)
    active: list[tuple[float, float]] = []
    for i in order:
        own = spans[i]
        if active:
            starts = [a for a, _ in active]
            candidates = {
                o
                for a0, a1 in active
                for r0, r1 in own
                for o in (a0 - r0, a1 - r1, a0 - r1, a1 - r0)
                if o >= 0
            }
            offsets[i] = min(
                sorted(candidates), key=lambda o: _uncovered(active, starts, _shift(own, o))
            )
        active = _merge([*active, *_shift(own, offsets[i])])
    return offsets


def _shift(spans: list[tuple[float, float]], by: float) -> list[tuple[float, float]]:
    return [(a + by, b + by) for a, b in spans]


def packed(sends: Sequence[Send]) -> list[tuple[float, float]]:
    """The stretches, in seconds after START, when the cycles tick for `sends` as scheduled."""
    return _merge(
        [
            s
            for send, o in zip(sends, schedule(sends), strict=True)
            for s in _shift(stretches(send), o)
        ]
    )


# --- the replay ------------------------------------------------------------------------------


def _client_address(network: str, salt: str) -> str:
    """A full client address inside the event's stored network, with a source port, as the
    Functions front end writes it into X-Forwarded-For."""
    number = int.from_bytes(hashlib.sha256(salt.encode()).digest()[:4], "big")
    port = 1024 + number % 60000
    if ":" in network:
        return f"[{network}{number % 0xFFFF + 1:x}]:{port}"
    return f"{network.rsplit('.', 1)[0]}.{number % 254 + 1}:{port}"


def _html(link_count: int) -> str:
    links = " ".join(
        f'<a href="https://contoso.example/offer/{i}?ref=mail">part {i + 1}</a>'
        for i in range(link_count)
    )
    return f"<html><body><p>Hello,</p><p>Our offer: {links}.</p></body></html>"


_ATTACHMENT = {
    "name": "quote.pdf",
    "content_type": "application/pdf",
    "content": "JVBERi0xLjQgcXVvdGU=",  # "%PDF-1.4 quote"
    "followed": True,
}


@dataclass
class _Message:
    send: int
    message_id: str
    sent_at: datetime
    paths: dict[tuple[str, int, int], str]  # (kind, index, copy) -> tracking path


class _Replay:
    def __init__(self, services: Services, clock: SimClock, http: httpx.AsyncClient) -> None:
        self.services = services
        self.clock = clock
        self.http = http
        self.auth = {"Authorization": f"Bearer {make_dev_token(services.settings, SELLER)}"}
        self.result = Replayed(
            individually_by="compose (send_individually)"
            if COMPOSE_SENDS_INDIVIDUALLY
            else "copy tokens signed by the harness"
        )
        self.messages: dict[int, _Message] = {}
        self.recipients: list[str] = []

    async def contacts(self, count: int) -> None:
        """Recipients the seller may follow (contact records), one per copy number."""
        self.recipients = [f"reader{k + 1}@fabrikam.example" for k in range(count)]
        for address in self.recipients:
            created = await self.http.post(
                "/api/records/contact",
                json={"name": address.split("@")[0], "emails": [address]},
                headers=self.auth,
            )
            if created.status_code != 201:
                raise RuntimeError(f"could not create a contact: {created.text}")

    async def compose(self, number: int, send: Send) -> None:
        body: dict[str, Any] = {
            "to": self.recipients[: send.recipients],
            "subject": f"Evaluation {send.name}",
            "html": _html(send.link_count),
        }
        if send.attachment:
            body["attachments"] = [_ATTACHMENT]
        if send.individually and COMPOSE_SENDS_INDIVIDUALLY:
            body["send_individually"] = True
        answer = await self.http.post("/api/messages", json=body, headers=self.auth)
        if answer.status_code != 201:
            raise RuntimeError(f"compose failed ({answer.status_code}): {answer.text}")
        view = answer.json()
        if view.get("follow_state") != "followed":
            raise RuntimeError(f"the message is not followed: {view}")
        message_id = view["id"]
        paths = self.paths(view["html"])
        if send.individually:
            paths = (
                await self.delivered_paths(message_id)
                if COMPOSE_SENDS_INDIVIDUALLY
                else copy_paths(self.services.signer, message_id, send)
            )
        self.messages[number] = _Message(
            number, message_id, datetime.fromisoformat(view["sent_at"]), paths
        )

    def paths(self, html: str) -> dict[tuple[str, int, int], str]:
        found: dict[tuple[str, int, int], str] = {}
        for path, token in _TOKEN.findall(html):
            ref = self.services.signer.verify(token)
            if ref is not None:
                found[(ref.kind, ref.index, ref.copy)] = path
        return found

    async def delivered_paths(self, message_id: str) -> dict[tuple[str, int, int], str]:
        """Each copy's tokens, from the .eml files the outbox delivered."""
        outbox = self.services.store.outbox
        found: dict[tuple[str, int, int], str] = {}
        async for name in outbox.list_blob_names(name_starts_with=message_id):
            data = await (await outbox.download_blob(name)).readall()
            mime = email.message_from_bytes(data, policy=email.policy.default)
            assert isinstance(mime, EmailMessage)
            part = mime.get_body(("html",))
            if part is not None:
                found.update(self.paths(str(part.get_content())))
        return found

    async def hit(self, number: int, position: int, event: LabelledEvent) -> None:
        signals = event.signals
        message = self.messages[number]
        copy = int(signals.copy) if signals.copy else 0
        path = message.paths[(signals.kind, signals.index, copy)]
        headers = {"X-Forwarded-For": _client_address(signals.ip, f"{number}/{position}")}
        if signals.user_agent:
            headers["User-Agent"] = signals.user_agent
        if signals.has_accept:
            headers["Accept"] = _ACCEPT[signals.kind]
        answer = await self.http.request(signals.method, path, headers=headers)
        self.result.requests += 1
        if answer.status_code != _EXPECTED_STATUS[signals.kind]:
            self.result.failed_requests += 1

    async def tick(self, now: datetime) -> None:
        """The timers due at `now`: the alert cycle, then on the tens the fold (both timers
        fire together there; the alert cycle, the shorter, finishes first). One after the
        other, so that a replay gives the same figures every time."""
        await alert_cycle(self.services, now)
        self.result.alert_ticks += 1
        if int(now.timestamp()) % FOLD_SECONDS == 0:
            await fold(self.services, now)
            self.result.fold_ticks += 1


def copy_paths(signer: TokenSigner, message_id: str, send: Send) -> dict[tuple[str, int, int], str]:
    """Each recipient's copy's tracking paths, signed as compose signs a copy's body (for a
    compose without `send_individually`)."""
    found: dict[tuple[str, int, int], str] = {}
    for copy in range(1, send.recipients + 1):
        refs = [TrackingRef("open", message_id, 0, copy)]
        refs += [TrackingRef("click", message_id, i, copy) for i in range(send.link_count)]
        refs += [TrackingRef("attachment", message_id, 0, copy)] if send.attachment else []
        for ref in refs:
            url = tracking_url(TRACKING_BASE, signer, ref)
            found[(ref.kind, ref.index, copy)] = url.removeprefix(TRACKING_BASE)
    return found


def _next_tick(after: datetime) -> datetime:
    """The first timer tick at or after a moment (ticks fall on whole multiples of 5 s)."""
    return datetime.fromtimestamp(math.ceil(after.timestamp() / ALERT_SECONDS) * ALERT_SECONDS, UTC)


def steps(moments: Sequence[datetime]) -> Iterator[tuple[datetime, int | None]]:
    """The replay's steps, in time order: (moment, i) for the i-th action (`moments` sorted),
    (moment, None) for a timer tick. Ticks come every 5 s for TAIL_SECONDS after any action;
    with nothing pending, the clock jumps to the next action and the timers resume there."""
    until: datetime | None = None
    tick: datetime | None = None
    for i, at in enumerate(moments):
        while tick is not None and until is not None and tick <= until and tick <= at:
            yield tick, None
            tick += timedelta(seconds=ALERT_SECONDS)
        yield at, i
        if until is None or tick is None or tick > until:  # the timers had nothing to do
            tick = _next_tick(at)
        until = max(until or at, at + timedelta(seconds=TAIL_SECONDS))
    while tick is not None and until is not None and tick <= until:
        yield tick, None
        tick += timedelta(seconds=ALERT_SECONDS)


async def _run(part: Sequence[tuple[int, Send]], services: Services, clock: SimClock) -> Replayed:
    from functions.http_app import create_app

    started = time.perf_counter()
    sends = [send for _, send in part]
    offsets = schedule(sends)
    transport = httpx.ASGITransport(app=create_app(lambda: services))
    async with httpx.AsyncClient(transport=transport, base_url=TRACKING_BASE) as http:
        for default in ("User-Agent", "Accept", "Accept-Encoding"):
            http.headers.pop(default, None)  # a request carries only what its client sends
        replay = _Replay(services, clock, http)
        await replay.contacts(max((s.recipients for s in sends), default=1))
        shift = [
            START + timedelta(seconds=o) - s.sent_at for s, o in zip(sends, offsets, strict=True)
        ]
        # (time, compose before events, which send, which event or -1 for the compose)
        actions: list[tuple[datetime, int, int, int]] = []
        for k, send in enumerate(sends):
            actions.append((send.sent_at + shift[k], 0, k, -1))
            actions += [(e.signals.at + shift[k], 1, k, j) for j, e in enumerate(send.events)]
        actions.sort()
        first = clock.now()
        for at, i in steps([a[0] for a in actions]):
            clock.move(at)
            if i is None:
                await replay.tick(at)
                replay.result.active += timedelta(seconds=ALERT_SECONDS)
                continue
            _, _, k, j = actions[i]
            if j < 0:
                await replay.compose(k, sends[k])
            else:
                await replay.hit(k, j, sends[k].events[j])
        replay.result.simulated = clock.now() - first
        await _read_back(replay, part, shift)
    replay.result.seconds = time.perf_counter() - started
    return replay.result


async def _read_back(
    replay: _Replay, part: Sequence[tuple[int, Send]], shift: list[timedelta]
) -> None:
    store = replay.services.store
    alerts: dict[str, Alert] = {}
    async for alert in store.alerts.query_entities("kind eq 'first_open'"):
        raised = alert.get("raised_at")
        alerts[str(alert["message_id"])] = Alert(
            datetime.fromisoformat(alert["created_at"]),
            datetime.fromisoformat(raised) if raised else None,
            str(alert.get("withdrawn") or ""),
        )
    for k, (number, send) in enumerate(part):
        message = replay.messages[k]
        rows: dict[tuple[str, int, int, datetime], list[Any]] = defaultdict(list)
        for stored in await history.read(store, message.message_id):
            key = (
                str(stored["kind"]),
                int(stored["index"]),
                int(stored.get("copy") or 0),
                datetime.fromisoformat(stored["at"]),
            )
            rows[key].append(stored)
        for event in send.events:
            signals = event.signals
            key = (
                signals.kind,
                signals.index,
                int(signals.copy) if signals.copy else 0,
                signals.at + shift[k],
            )
            sent = (signals.ip, signals.user_agent, signals.method, signals.has_accept)
            # events of one link at the same instant (the generator's noise shares a moment)
            # are told apart by what their client sent
            same = [n for n, r in enumerate(rows[key]) if _recorded(r) == sent]
            row: Any = rows[key].pop(same[0] if same else 0) if rows[key] else None
            reasons = tuple(str(row.get("reasons") or "").split()) if row else ()
            if row and _recorded(row) != sent:
                kept = _recorded(row)
                replay.result.misrecorded.append(f"{event.actor}: sent {sent}, kept {kept}")
            replay.result.events.append(
                EventOutcome(
                    event.truth,
                    event.actor,
                    current_class(str(row.get("label") or ""), reasons) if row else None,
                    reasons,
                    number,
                )
            )
        view = (
            await replay.http.get(f"/api/messages/{message.message_id}", headers=replay.auth)
        ).json()
        seen = [
            e.signals.at + shift[k]
            for e in send.events
            if e.signals.kind == "open" and e.truth in ("human", "proxy_open")
        ]
        replay.result.messages.append(
            MessageOutcome(
                send=number,
                message_id=message.message_id,
                sent_at=message.sent_at,
                read_at=send.read_at + shift[k] if send.read_at else None,
                first_seen_open=min(seen) if seen else None,
                alert=alerts.get(message.message_id),
                opens=int(view["kpis"]["opens"]),
                by_class=view["kpis"].get("by_class", {}),
                individually=send.individually,
            )
        )


def _recorded(row: Any) -> tuple[str, str, str, bool]:
    """What production kept of a request's client: its network, agent, method, Accept."""
    return (
        str(row.get("ip") or ""),
        str(row.get("user_agent") or ""),
        str(row.get("method") or ""),
        bool(row.get("has_accept")),
    )


@contextlib.contextmanager
def storage() -> Iterator[str]:
    """An Azurite of the replay's own (its fold cursor and buckets are the replay's alone),
    in memory: the replay is storage requests from end to end."""
    binary = azurite_utils.ROOT / "node_modules" / ".bin" / "azurite"
    if not binary.exists():
        raise RuntimeError("Azurite is not installed: run `make test` (it runs npm ci)")
    blob, table, queue = (azurite_utils.free_port() for _ in range(3))
    with tempfile.TemporaryDirectory(prefix="azurite-replay-") as folder:
        arguments = [
            str(binary), "--silent", "--inMemoryPersistence",
            "--blobHost", "127.0.0.1", "--blobPort", str(blob),
            "--tableHost", "127.0.0.1", "--tablePort", str(table),
            "--queueHost", "127.0.0.1", "--queuePort", str(queue),
            "--disableTelemetry", "--skipApiVersionCheck", "--loose",
        ]  # fmt: skip
        process = subprocess.Popen(
            arguments, cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            deadline = time.monotonic() + 30
            azurite_utils.wait_for_port(blob, process, deadline)
            azurite_utils.wait_for_port(table, process, deadline)
            azurite_utils.wait_for_port(queue, process, deadline)
            account, key = azurite_utils.ACCOUNT, azurite_utils.KEY
            yield (
                f"DefaultEndpointsProtocol=http;AccountName={account};AccountKey={key};"
                f"BlobEndpoint=http://127.0.0.1:{blob}/{account};"
                f"TableEndpoint=http://127.0.0.1:{table}/{account};"
                f"QueueEndpoint=http://127.0.0.1:{queue}/{account};"
            )
        finally:
            azurite_utils.stop(process)


async def replay_on(part: Sequence[tuple[int, Send]], connection_string: str) -> Replayed:
    """Replay numbered sends against the storage behind `connection_string` (empty: the
    replay's own)."""
    clock = SimClock(START - timedelta(minutes=1))  # the seller's contacts come first
    settings = Settings(
        storage_connection_string=connection_string, tracking_base_url=TRACKING_BASE
    )
    services = build_services(settings, clock.now)
    await ensure_storage(services.store)
    try:
        return await _run(part, services, clock)
    finally:
        await services.store.close()


def _lane(part: list[tuple[int, Send]]) -> Replayed:
    with storage() as connection_string:
        return asyncio.run(replay_on(part, connection_string))


def lanes_of(sends: Sequence[Send], lanes: int) -> list[list[tuple[int, Send]]]:
    """The sends dealt to `lanes` independent replays, the longest-active first to the lane
    with the least so far, so that the lanes take about as long."""
    parts: list[list[tuple[int, Send]]] = [[] for _ in range(max(1, min(lanes, len(sends))))]
    load = [0.0] * len(parts)
    by_cost = sorted(enumerate(sends), key=lambda p: -sum(b - a for a, b in stretches(p[1])))
    for number, send in by_cost:
        lightest = load.index(min(load))
        parts[lightest].append((number, send))
        load[lightest] += sum(b - a for a, b in stretches(send))
    return [sorted(part, key=lambda p: p[0]) for part in parts]


def replay(sends: Sequence[Send], lanes: int = LANES) -> Replayed:
    """Replay `sends` and read back what production shows. With several lanes, each is a
    production of its own (a process, an Azurite, a clock) replaying a share of the sends:
    messages never meet in the product, and the lanes use more of the machine's cores (they
    pack less well, so they pay only where cores are idle)."""
    started = time.perf_counter()
    parts = lanes_of(sends, lanes)
    if len(parts) == 1:
        results = [_lane(parts[0])]
    else:
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(len(parts), mp_context=context) as pool:
            results = list(pool.map(_lane, parts))
    merged = Replayed(individually_by=results[0].individually_by, lanes=len(parts))
    for result in results:
        merged.events += result.events
        merged.messages += result.messages
        merged.requests += result.requests
        merged.failed_requests += result.failed_requests
        merged.misrecorded += result.misrecorded
        merged.alert_ticks += result.alert_ticks
        merged.fold_ticks += result.fold_ticks
        merged.active += result.active
        merged.simulated += result.simulated
    merged.events.sort(key=lambda e: e.send)  # stable: each send's events stay in order
    merged.messages.sort(key=lambda m: m.send)
    merged.seconds = time.perf_counter() - started
    return merged
