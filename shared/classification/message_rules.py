"""The classifier's second stage: an event judged together with the other events of its
message (and of the message's other copies): link bursts and sweeps, clicks without an open,
opens with a click at once, several copies hit at once from one network, and one client
fetching the same pixel or link over and over (a flood). Pure."""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from shared.classification.classifier import (
    BURST_COPIES,
    BURST_SECONDS,
    DECISIVE,
    FIRST_MINUTES_SECONDS,
    INSTANT_SECONDS,
    NETWORK_BURST_SECONDS,
    SWEEP_SECONDS,
    EventSignals,
    Verdict,
    decide,
)
from shared.core.vocabulary import EventClass

PROXY_CLASSES: tuple[EventClass, ...] = ("proxy_open", "prefetch")

# Weights of the rules across events (scanner evidence).
_LINK_BURST, _LINK_SWEEP, _NO_OPEN, _OPEN_AND_CLICK = 2.0, 1.5, 1.0, 2.0
_WITH_SCANNER, _NETWORK_BURST, _COPIES_BURST = DECISIVE, 1.5, 1.0
_Add = Callable[[int, float, str], None]  # (event, weight, reason): records fold evidence

# A person reopens a message a few times, and a mail client may fetch the pixel again when the
# message is redrawn; more fetches of one pixel or link by one client than this within the
# window are a loop (a broken client, a misbehaving proxy, someone inflating the numbers):
# recorded, tallied as "unknown" with a "flood:" reason, never counted.
FLOOD_LIMIT = 10
FLOOD_WINDOW_SECONDS = 600.0
FLOOD_PREFIX = "flood:"
_FLOOD_REASONS = {"open": "flood:pixel", "click": "flood:link", "attachment": "flood:attachment"}


def flooded(reasons: Iterable[str]) -> bool:
    """Whether an event's reasons say it was one fetch too many of a flood (never counted,
    whatever classes are counted)."""
    return any(reason.startswith(FLOOD_PREFIX) for reason in reasons)


@dataclass(frozen=True, slots=True)
class MessageContext:
    """What the fold knows about the message besides its events."""

    link_count: int = 0  # followed links in the body (0: not known)
    # Copies ("" for one sent to everyone) opened before the events given (the fold passes
    # only the recent ones): a click on them is not one without an open.
    opened_before: frozenset[str] = frozenset()


def classify_message(
    events: Sequence[tuple[EventSignals, Verdict]], context: MessageContext
) -> list[Verdict]:
    """The fold-time stage over every event of one message (all its copies): adds evidence
    that only shows across events and re-decides, never moving an event away from "scanner"
    nor touching a proxy's fetch (an open through a proxy, a prefetch), except that the
    fetches of a flood beyond FLOOD_LIMIT are "unknown" (or stay "scanner") with a "flood:"
    reason. Events already folded take part
    as context, so a flood split over fold cycles is judged as if it came at once.
    O(n log n)."""
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
    for copy, members in by_copy.items():
        _link_burst(events, members, context.link_count, add)
        _clicks_without_open(events, members, add, copy in context.opened_before)
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
    floods = _floods(events, live)
    for i in floods:
        found[i].append(_FLOOD_REASONS[events[i][0].kind])
        labels[i] = "scanner" if labels[i] == "scanner" else "unknown"
    return [
        replace(
            verdict,
            label=labels[i],
            reasons=(*verdict.reasons, *found[i]),
            score=verdict.score + extra[i],
        )
        if found[i] and (verdict.label not in PROXY_CLASSES or i in floods)
        else verdict
        for i, (_, verdict) in enumerate(events)
    ]


def _floods(events: Sequence[tuple[EventSignals, Verdict]], live: list[int]) -> set[int]:
    """The events (in time order) that find FLOOD_LIMIT earlier fetches of the same pixel or
    link by the same client (copy, network, user agent) within FLOOD_WINDOW_SECONDS. Every
    fetch counts towards the window, flooded or not, so a steady loop stays a flood. O(n)."""
    windows: dict[tuple[str, str, str, str, int], deque[float]] = defaultdict(deque)
    found: set[int] = set()
    for i in live:
        signals = events[i][0]
        key = (signals.copy, signals.ip, signals.user_agent, signals.kind, signals.index)
        window, at = windows[key], signals.at.timestamp()
        while window and at - window[0] > FLOOD_WINDOW_SECONDS:
            window.popleft()
        if len(window) >= FLOOD_LIMIT:
            found.add(i)
        window.append(at)
    return found


def _redecide(verdict: Verdict, extra: float) -> EventClass:
    if verdict.label in PROXY_CLASSES or verdict.label == "scanner" or extra == 0:
        return verdict.label
    return decide(verdict.score + extra, verdict.label == "human")


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
    events: Sequence[tuple[EventSignals, Verdict]],
    members: list[int],
    add: _Add,
    opened_before: bool = False,
) -> None:
    """A click on a copy nobody opened first. Weak: Outlook blocks images by default. A
    proxy's fetch counts as an open, since it hides the reader's own (a prefetch caches the
    images, so the reader's open never reaches us)."""
    last_open: datetime | None = datetime.min.replace(tzinfo=UTC) if opened_before else None
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
            and events[i][1].label not in PROXY_CLASSES
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
