"""Who is behind an open or a click: a person, a security scanner, a privacy proxy, or unknown.

Two pure stages. `classify_event` judges one request from what it carries (user agent,
source network, request shape, seconds since sending); it runs in microseconds, so it can sit
on the pixel path. `classify_message` judges the events of one message together at fold time
(every link clicked at once, a click with no open before it, bursts across recipients' copies)
and may only move an event towards "scanner": human -> unknown -> scanner. A privacy-proxy
open is never touched: the open happened, only who and when are hidden.

Each rule adds scanner evidence with a weight; a verdict is "scanner" from SCANNER_AT on and
"unknown" from UNKNOWN_AT on, and every rule that fired is named in the verdict's reasons
("ua:http_library:curl", "net:microsoft_eop", "shape:head", "timing:link_burst", ...).
docs/measurement.md explains the rules, the weights and the evaluation behind them.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections import defaultdict, deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import lru_cache

from shared.classification.mail_clients import is_apple_mail_webkit, mail_client
from shared.classification.networks import Networks
from shared.core.vocabulary import EventClass, EventKind

SCANNER_AT = 3.0  # evidence from which an event is a scanner's
UNKNOWN_AT = 1.5  # evidence from which a person's event is no longer called human
INSTANT_SECONDS = 2.0  # nobody reads and clicks this soon after sending
DELIVERY_WINDOW_SECONDS = 300.0  # scanners' delivery-time checks: median ~40 s, long tail
PROBABLE_WINDOW_SECONDS = 900.0  # a "probable" scanner network only counts this early
STALE_MAJORS = 20  # a browser this many releases behind (about 18 months) is not updated
BURST_SECONDS = 2.0  # distinct links of one copy clicked within this: nobody's hands
SWEEP_SECONDS = 30.0  # one client following every link of a message within this
NETWORK_BURST_SECONDS = 10.0  # one network hitting several copies within this
FIRST_MINUTES_SECONDS = 900.0  # bursts only count this soon after sending
BURST_COPIES = 3

# Weights of the rules (scanner evidence).
_DECISIVE = 3.0
_EMPTY_UA, _UNRECOGNISED_UA, _STALE = 2.0, 1.0, 1.5
_NO_ACCEPT, _ODD_METHOD = 1.5, 2.0
_INSTANT = {"open": 1.5, "click": 2.0, "attachment": 2.0}
_DELIVERY = {"open": 0.5, "click": 1.0, "attachment": 1.0}
_PROBABLE_EARLY, _PROBABLE_LATE, _CLOUD, _PROXY_NET_ON_CLICK = 2.0, 0.5, 1.0, 2.0
_MAIL_CLIENT = -1.0  # a mail client's own fetch is what a person's open looks like
_LINK_BURST, _LINK_SWEEP, _NO_OPEN, _OPEN_AND_CLICK = 2.0, 1.5, 1.0, 2.0
_WITH_SCANNER, _NETWORK_BURST, _COPIES_BURST = _DECISIVE, 1.5, 1.0

# Browser release cadence, to tell a stale browser: version 100 shipped on these dates and a
# major release follows about every four weeks.
_VERSION_100 = {
    "chrome": datetime(2022, 3, 29, tzinfo=UTC).timestamp(),
    "firefox": datetime(2022, 5, 3, tzinfo=UTC).timestamp(),
}
_DAYS_PER_MAJOR = 29.5


_Add = Callable[[int, float, str], None]  # (event, weight, reason): records fold evidence


@dataclass(frozen=True, slots=True, kw_only=True)
class EventSignals:
    """What one tracking request tells, plus what the message adds (when it was sent)."""

    kind: EventKind
    user_agent: str
    ip: str  # already truncated to its /24 or /48, "" when unknown
    at: datetime
    method: str = "GET"
    has_accept: bool = True
    sent_at: datetime | None = None
    index: int = 0  # which link or attachment
    copy: str = ""  # which recipient's copy, when a send has several


@dataclass(frozen=True, slots=True)
class Verdict:
    """A class, the reasons that led to it, and the scanner evidence summed."""

    label: EventClass
    reasons: tuple[str, ...]
    score: float = 0.0


@dataclass(frozen=True, slots=True)
class MessageContext:
    """What the fold knows about the message besides its events."""

    link_count: int = 0  # followed links in the body (0: not known)


@dataclass(frozen=True, slots=True)
class _Agent:
    """What a user agent says, computed once per distinct string."""

    reasons: tuple[str, ...]
    scanner: float
    proxy: str  # a privacy proxy the agent names ("gmail", "yahoo", "apple_mpp"), or ""
    person: bool  # a browser or mail client people use
    family: str  # "chrome" or "firefox" when the version can be checked
    major: int


# Substring tests (a regular expression with many alternatives is several times slower).
_HTTP_LIBRARIES = (
    "python-requests", "python-urllib", "aiohttp", "httpx", "go-http-client", "okhttp",
    "apache-httpclient", "axios/", "node-fetch", "undici", "libwww-perl", "powershell",
    "guzzlehttp", "scrapy",
)  # fmt: skip
_HTTP_PREFIXES = ("curl/", "wget/", "java/", "ruby")
_HEADLESS = ("headlesschrome", "phantomjs", "puppeteer", "playwright", "selenium", "slimerjs")
_SCANNERS = (
    ("barracuda", "barracuda"),
    ("proofpoint", "proofpoint"),
    ("mimecast", "mimecast"),
    ("safelinks", "safelinks"),
    ("microsoft office existence discovery", "ms_office_discovery"),
    ("microsoft office protocol discovery", "ms_office_discovery"),
    ("gmail-content-sampling", "gmail_content_sampling"),
    ("edge/12.", "legacy_edge"),
)
_BOT_HINTS = ("bot", "crawler", "spider", "slurp", "preview", "facebookexternalhit", "whatsapp")
_BOTS = re.compile(r"(?<!cu)bot\b|bot/|crawler|spider|slurp|preview|facebookexternalhit|whatsapp")
_PROXIES = (("googleimageproxy", "gmail"), ("ggpht.com", "gmail"), ("yahoomailproxy", "yahoo"))
_BROWSER = re.compile(r"mozilla/5\.0 \((?:windows|macintosh|iphone|ipad|linux|x11|android|cros)")
_VERSIONS = re.compile(r"(chrome|crios|firefox|fxios)/(\d+)")


@lru_cache(maxsize=8192)
def _agent(user_agent: str) -> _Agent:
    lowered = user_agent.strip().lower()
    if not lowered:
        return _Agent(("ua:empty",), _EMPTY_UA, "", False, "", 0)
    for token, proxy in _PROXIES:
        if token in lowered:
            return _Agent((f"ua:proxy:{proxy}",), 0.0, proxy, False, "", 0)
    library = next((t for t in _HTTP_LIBRARIES if t in lowered), None)
    library = library or next((t for t in _HTTP_PREFIXES if lowered.startswith(t)), None)
    if library:
        name = re.sub(r"[^a-z]+", "_", library).strip("_")
        return _Agent((f"ua:http_library:{name}",), _DECISIVE, "", False, "", 0)
    if any(token in lowered for token in _HEADLESS):
        return _Agent(("ua:headless",), _DECISIVE, "", False, "", 0)
    for token, vendor in _SCANNERS:
        if token in lowered:
            return _Agent((f"ua:scanner:{vendor}",), _DECISIVE, "", False, "", 0)
    if any(hint in lowered for hint in _BOT_HINTS) and _BOTS.search(lowered):
        return _Agent(("ua:bot",), _DECISIVE, "", False, "", 0)
    client = mail_client(user_agent)
    if is_apple_mail_webkit(lowered) and "macintosh" in lowered:
        # Mail Privacy Protection fetches with exactly this string; so does Apple Mail on a Mac
        # with protection off, a minority since most users accept it when Mail asks.
        return _Agent(("ua:apple_mail_webkit",), 0.0, "apple_mpp", False, "", 0)
    if client != "unknown":
        return _Agent((f"ua:client:{client}",), _MAIL_CLIENT, "", True, "", 0)
    if _BROWSER.match(lowered):
        version = _VERSIONS.search(lowered)
        family = (
            ""
            if version is None
            else ("chrome" if version[1] in ("chrome", "crios") else "firefox")
        )
        return _Agent(("ua:browser",), 0.0, "", True, family, int(version[2]) if version else 0)
    return _Agent(("ua:unrecognised",), _UNRECOGNISED_UA, "", False, "", 0)


def clear_caches() -> None:
    """Forget the user agents seen so far (benchmarks time the uncached path with it)."""
    _agent.cache_clear()
    mail_client.cache_clear()


def _stale(agent: _Agent, at: datetime) -> bool:
    if not agent.family:
        return False
    elapsed = at.timestamp() - _VERSION_100[agent.family]
    expected = 100 + elapsed / 86400 / _DAYS_PER_MAJOR
    return agent.major < expected - STALE_MAJORS


def _decide(score: float, person: bool) -> EventClass:
    if score >= SCANNER_AT:
        return "scanner"
    if score >= UNKNOWN_AT or not person:
        return "unknown"
    return "human"


def classify_event(signals: EventSignals, networks: Networks) -> Verdict:
    """The per-request stage: user agent, source network, request shape and seconds since
    the message was sent. Cheap (cached user-agent and network lookups)."""
    agent = _agent(signals.user_agent)
    reasons = list(agent.reasons)
    hard = max(agent.scanner, 0.0)  # evidence that nothing else can explain away
    soft = min(agent.scanner, 0.0)  # a mail client's counter-evidence only weighs the rest
    kind = signals.kind
    if signals.method != "GET":
        hard += _DECISIVE if signals.method == "HEAD" else _ODD_METHOD
        reasons.append("shape:head" if signals.method == "HEAD" else "shape:method")
    if not signals.has_accept:
        soft += _NO_ACCEPT
        reasons.append("shape:no_accept")
    if _stale(agent, signals.at):
        soft += _STALE
        reasons.append("ua:stale_browser")
    seconds = None
    if signals.sent_at is not None:
        seconds = (signals.at - signals.sent_at).total_seconds()
        if seconds < 0:
            return Verdict("unknown", (*reasons, "timing:before_send"), hard + soft)
        if seconds < INSTANT_SECONDS:
            soft += _INSTANT[kind]
            reasons.append("timing:instant")
        elif seconds < DELIVERY_WINDOW_SECONDS:
            soft += _DELIVERY[kind]
            reasons.append("timing:delivery_window")
    proxy = agent.proxy
    network = networks.lookup(signals.ip)
    if network is not None:
        reasons.append(f"net:{network.label}")
        if network.kind == "scanner" and network.certainty == "certain":
            hard += _DECISIVE
        elif network.kind == "scanner":
            early = seconds is not None and seconds < PROBABLE_WINDOW_SECONDS
            soft += _PROBABLE_EARLY if early else _PROBABLE_LATE
        elif network.kind == "cloud":
            soft += _CLOUD
        elif kind == "open" and (network.certainty == "certain" or proxy or not agent.person):
            proxy = proxy or network.label
        elif kind != "open" and network.certainty == "certain":
            soft += _PROXY_NET_ON_CLICK  # a proxy's network never carries a person's click
    if proxy and kind != "open":  # a proxy fetches images; it does not click
        hard += _DECISIVE if proxy in ("gmail", "yahoo") else _PROXY_NET_ON_CLICK
        reasons.append("ua:proxy_on_click")
    elif proxy and hard < SCANNER_AT:
        return Verdict("privacy_proxy", tuple(reasons), hard + soft)
    score = hard + soft
    label = "scanner" if hard >= SCANNER_AT else _decide(score, agent.person)
    return Verdict(label, tuple(reasons), score)


def classify_message(
    events: Sequence[tuple[EventSignals, Verdict]], context: MessageContext
) -> list[Verdict]:
    """The fold-time stage over every event of one message (all its copies): adds evidence
    that only shows across events and re-decides, never moving an event away from "scanner"
    nor touching a privacy-proxy open. O(n log n)."""
    order = sorted(range(len(events)), key=lambda i: events[i][0].at)
    extra: list[float] = [0.0] * len(events)
    found: list[list[str]] = [[] for _ in events]
    live = [i for i in order if "timing:before_send" not in events[i][1].reasons]

    def add(i: int, weight: float, reason: str) -> None:
        if reason not in found[i]:
            extra[i] += weight
            found[i].append(reason)

    by_copy: dict[str, list[int]] = defaultdict(list)
    by_agent: dict[tuple[str, str, str], list[int]] = defaultdict(list)  # one client's requests
    for i in live:
        signals = events[i][0]
        by_copy[signals.copy].append(i)
        if signals.ip:
            by_agent[(signals.copy, signals.ip, signals.user_agent)].append(i)
    for members in by_copy.values():
        _link_burst(events, members, context.link_count, add)
        _clicks_without_open(events, members, add)
    for members in by_agent.values():
        _open_and_click(events, members, add)
        _link_sweep(events, members, context.link_count, add)
    _first_minutes_bursts(events, live, add)
    labels = [_redecide(events[i][1], extra[i]) for i in range(len(events))]
    scanners = {i for i in live if labels[i] == "scanner"}
    if scanners:  # a second pass: what the same client sent with a scanner's requests
        for members in by_agent.values():
            _with_scanner(events, members, scanners, add)
        labels = [_redecide(events[i][1], extra[i]) for i in range(len(events))]
    return [
        replace(
            verdict,
            label=labels[i],
            reasons=(*verdict.reasons, *found[i]),
            score=verdict.score + extra[i],
        )
        if found[i] and verdict.label != "privacy_proxy"
        else verdict
        for i, (_, verdict) in enumerate(events)
    ]


def _redecide(verdict: Verdict, extra: float) -> EventClass:
    if verdict.label in ("privacy_proxy", "scanner") or extra == 0:
        return verdict.label
    return _decide(verdict.score + extra, verdict.label == "human")


def _since_sent(signals: EventSignals) -> float | None:
    if signals.sent_at is None:
        return None
    return (signals.at - signals.sent_at).total_seconds()


def _distinct_links_within(
    events: Sequence[tuple[EventSignals, Verdict]], members: list[int], seconds: float, needed: int
) -> Iterator[deque[int]]:
    """Each window of clicks (by time) spanning at most `seconds` that holds `needed` or more
    distinct links. O(n): a sliding window with a count per link."""
    clicks = [i for i in members if events[i][0].kind == "click"]
    window: deque[int] = deque()
    seen: dict[int, int] = defaultdict(int)
    for i in clicks:
        window.append(i)
        seen[events[i][0].index] += 1
        while (events[i][0].at - events[window[0]][0].at).total_seconds() > seconds:
            gone = events[window.popleft()][0].index
            seen[gone] -= 1
            if not seen[gone]:
                del seen[gone]
        if len(seen) >= needed:
            yield window


def _link_burst(
    events: Sequence[tuple[EventSignals, Verdict]], members: list[int], link_count: int, add: _Add
) -> None:
    if link_count == 1:
        return
    needed = 3 if link_count == 0 else max(2, min(link_count, 3))
    for window in _distinct_links_within(events, members, BURST_SECONDS, needed):
        for j in window:
            add(j, _LINK_BURST, "timing:link_burst")


def _link_sweep(
    events: Sequence[tuple[EventSignals, Verdict]], members: list[int], link_count: int, add: _Add
) -> None:
    """One client following every link of the message within half a minute: a slower
    scanner's sweep (people rarely want every link, let alone at once)."""
    if link_count < 2:
        return
    for window in _distinct_links_within(events, members, SWEEP_SECONDS, link_count):
        for j in window:
            add(j, _LINK_SWEEP, "timing:link_sweep")


def _clicks_without_open(
    events: Sequence[tuple[EventSignals, Verdict]], members: list[int], add: _Add
) -> None:
    """A click on a copy nobody opened first. Weak: Outlook blocks images by default. A
    privacy proxy's open counts as an open, since it hides the reader's own."""
    last_open: datetime | None = None
    for i in members:
        signals, verdict = events[i]
        if signals.kind == "open":
            if verdict.label != "scanner":
                last_open = signals.at
            continue
        if last_open is None or (signals.at - last_open).total_seconds() < INSTANT_SECONDS:
            add(i, _NO_OPEN, "timing:click_without_open")


def _open_and_click(
    events: Sequence[tuple[EventSignals, Verdict]], members: list[int], add: _Add
) -> None:
    """One client loading the pixel and following a link within two seconds: a renderer, not a
    reader (a person's mail client and browser are two different agents anyway)."""
    opens = [i for i in members if events[i][0].kind == "open"]
    if not opens:
        return
    times = [events[i][0].at.timestamp() for i in opens]
    for i in members:
        if events[i][0].kind == "open":
            continue
        at = events[i][0].at.timestamp()
        first = bisect_left(times, at - BURST_SECONDS)
        last = bisect_left(times, at + BURST_SECONDS + 1e-6)
        if first < last:
            add(i, _OPEN_AND_CLICK, "timing:open_and_click")
            for j in opens[first:last]:
                add(j, _OPEN_AND_CLICK, "timing:open_and_click")


def _first_minutes_bursts(
    events: Sequence[tuple[EventSignals, Verdict]], live: list[int], add: _Add
) -> None:
    early = []
    for i in live:
        since = _since_sent(events[i][0])
        if (
            since is not None
            and since < FIRST_MINUTES_SECONDS
            and events[i][1].label != "privacy_proxy"
        ):
            early.append(i)
    by_network: dict[str, list[int]] = defaultdict(list)
    for i in early:
        if events[i][0].ip:
            by_network[events[i][0].ip].append(i)
    for members in by_network.values():
        _copies_within(
            events, members, NETWORK_BURST_SECONDS, _NETWORK_BURST, "timing:network_burst", add
        )
    _copies_within(events, early, BURST_SECONDS, _COPIES_BURST, "timing:copies_burst", add)


def _copies_within(
    events: Sequence[tuple[EventSignals, Verdict]],
    members: list[int],
    seconds: float,
    weight: float,
    reason: str,
    add: _Add,
) -> None:
    window: deque[int] = deque()
    copies: dict[str, int] = defaultdict(int)
    for i in members:
        window.append(i)
        copies[events[i][0].copy] += 1
        while (events[i][0].at - events[window[0]][0].at).total_seconds() > seconds:
            gone = events[window.popleft()][0].copy
            copies[gone] -= 1
            if not copies[gone]:
                del copies[gone]
        if len(copies) >= BURST_COPIES:
            for j in window:
                add(j, weight, reason)


def _with_scanner(
    events: Sequence[tuple[EventSignals, Verdict]],
    members: list[int],
    scanners: set[int],
    add: _Add,
) -> None:
    """Requests of one client (copy, network and user agent) within half a minute of a
    request already judged a scanner's are that scanner's."""
    marks = [events[i][0].at.timestamp() for i in members if i in scanners]  # in time order
    if not marks:
        return
    for i in members:
        at = events[i][0].at.timestamp()
        near = bisect_left(marks, at - SWEEP_SECONDS)
        if i not in scanners and near < len(marks) and marks[near] <= at + SWEEP_SECONDS:
            add(i, _WITH_SCANNER, "timing:with_scanner")
