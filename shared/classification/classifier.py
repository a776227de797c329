"""Who is behind an open or a click: a person, a privacy proxy fetching for a person who
opens the message, a prefetch at delivery, a security scanner, or unknown.

Two pure stages. `classify_event` judges one request from what it carries (user agent,
source network, request shape, seconds since sending); it runs in microseconds, so it can sit
on the pixel path. `classify_message` judges the events of one message together at fold time
(every link clicked at once, a click with no open before it, bursts across recipients' copies)
and may only move an event towards "scanner": human -> unknown -> scanner. A proxy's fetch
is never touched (but for a flood): the proxy fetched, whatever else happened.

Each rule adds scanner evidence with a weight; a verdict is "scanner" from SCANNER_AT on and
"unknown" from UNKNOWN_AT on, and every rule that fired is named in the verdict's reasons
("ua:http_library:curl", "net:microsoft_eop", "shape:head", "timing:link_burst", ...).
docs/measurement.md explains the rules, the weights and the evaluation behind them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache

from shared.classification.mail_clients import is_apple_mail_webkit, mail_client
from shared.classification.networks import NetworkMatch, Networks
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
DECISIVE = 3.0
_EMPTY_UA, _UNRECOGNISED_UA, _STALE = 2.0, 1.0, 1.5
_NO_ACCEPT, _ODD_METHOD = 1.5, 2.0
_INSTANT = {"open": 1.5, "click": 2.0, "attachment": 2.0}
_DELIVERY = {"open": 0.5, "click": 1.0, "attachment": 1.0}
_PROBABLE_EARLY, _PROBABLE_LATE, _CLOUD, _PROXY_NET_ON_CLICK = 2.0, 0.5, 1.0, 2.0
_MAIL_CLIENT = -1.0  # a mail client's own fetch is what a person's open looks like

# Browser release cadence, to tell a stale browser: version 100 shipped on these dates and a
# major release follows about every four weeks.
_VERSION_100 = {
    "chrome": datetime(2022, 3, 29, tzinfo=UTC).timestamp(),
    "firefox": datetime(2022, 5, 3, tzinfo=UTC).timestamp(),
}
_DAYS_PER_MAJOR = 29.5


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
class _Agent:
    """What a user agent says, computed once per distinct string."""

    reasons: tuple[str, ...]
    scanner: float
    proxy: str  # a privacy proxy the agent names ("gmail", "yahoo", "hey", "apple_mpp"), or ""
    person: bool  # a browser or mail client people use
    family: str  # "chrome" or "firefox" when the version can be checked
    major: int
    prefetch: bool = False  # a mail service's prefetch: a proxy's open from its own network


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
_PROXIES = (
    ("googleimageproxy", "gmail"),
    ("ggpht.com", "gmail"),
    ("yahoomailproxy", "yahoo"),
    ("hey.com/imageproxy", "hey"),
)
_NAMED_PROXIES = ("gmail", "yahoo", "hey")  # proxies that name themselves never click
# Proxies that fetch at delivery whatever the recipient does (Mail Privacy Protection, by its
# user agent or from Apple's networks): a prefetch; the others fetch when a person opens.
_PREFETCHERS = frozenset({"apple_mpp", "apple", "apple_private_relay"})
# Gmail's prefetch (a recipient with Gmail open as the message arrives) wears the legacy-Edge
# string of its content sampling; from Google's proxy network it fetches images, an open.
_GMAIL_PREFETCH = "chrome/42.0.2311.135 safari/537.36 edge/12.246"
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
        return _Agent((f"ua:http_library:{name}",), DECISIVE, "", False, "", 0)
    if any(token in lowered for token in _HEADLESS):
        return _Agent(("ua:headless",), DECISIVE, "", False, "", 0)
    if _GMAIL_PREFETCH in lowered:
        return _Agent(("ua:scanner:legacy_edge",), DECISIVE, "", False, "", 0, prefetch=True)
    for token, vendor in _SCANNERS:
        if token in lowered:
            return _Agent((f"ua:scanner:{vendor}",), DECISIVE, "", False, "", 0)
    if any(hint in lowered for hint in _BOT_HINTS) and _BOTS.search(lowered):
        return _Agent(("ua:bot",), DECISIVE, "", False, "", 0)
    client = mail_client(user_agent)
    if client not in ("unknown", "apple_mail"):  # a client that names itself beats WebKit's shape
        return _Agent((f"ua:client:{client}",), _MAIL_CLIENT, "", True, "", 0)
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


def _proxy_network(network: NetworkMatch) -> bool:
    return network.kind == "privacy_proxy" and network.certainty == "certain"


def decide(score: float, person: bool) -> EventClass:
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
    network = networks.lookup(signals.ip)
    if agent.prefetch and signals.kind == "open" and network and _proxy_network(network):
        return Verdict("prefetch", ("ua:prefetch:gmail", f"net:{network.label}"), 0.0)
    hard = max(agent.scanner, 0.0)  # evidence that nothing else can explain away
    soft = min(agent.scanner, 0.0)  # a mail client's counter-evidence only weighs the rest
    kind = signals.kind
    if signals.method != "GET":
        hard += DECISIVE if signals.method == "HEAD" else _ODD_METHOD
        reasons.append("shape:head" if signals.method == "HEAD" else "shape:method")
    if not signals.has_accept:
        # Every browser sends Accept with a navigation, so a "browser" following a link
        # without one is not a browser; an image fetch without it is only odd.
        if kind != "open" and agent.reasons == ("ua:browser",):
            hard += DECISIVE
        else:
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
    if network is not None:
        reasons.append(f"net:{network.label}")
        if network.kind == "scanner" and network.certainty == "certain":
            hard += DECISIVE
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
        hard += DECISIVE if proxy in _NAMED_PROXIES else _PROXY_NET_ON_CLICK
        reasons.append("ua:proxy_on_click")
    elif proxy and hard < SCANNER_AT:
        label: EventClass = "prefetch" if proxy in _PREFETCHERS else "proxy_open"
        return Verdict(label, tuple(reasons), hard + soft)
    score = hard + soft
    return Verdict(
        "scanner" if hard >= SCANNER_AT else decide(score, agent.person), tuple(reasons), score
    )
