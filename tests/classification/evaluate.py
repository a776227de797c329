"""`python -m tests.classification.evaluate`: replay the labelled evaluation set through the
app as production runs it (tests/classification/replay.py) and print what a seller would get
from it: precision and recall per class of the final event labels, false alerts, false
"opened", missed alerts and the delay of alerts.

Precision of a class: of the events called that class, the share that truly are. Recall: of
the events that truly are of a class, the share called that class; an event called "unknown"
(or with no row at all) counts against recall: the generator knows who made each one.

Per message, against the trace's truth (a person read it, seen or not; prefetches are not
reads):
- false alert: nobody read the message, yet a first-open alert stands at the end (alerts
  withdrawn by a later fold are counted apart);
- false "opened": nobody read it, yet its view counts an open (`kpis.opens` > 0);
- missed alert: a person's mail client or an on-open image proxy fetched the pixel, and no
  alert stands at the end;
- alert delay: when the alert was raised less when a person's open first reached us.
"""

from __future__ import annotations

import argparse
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from shared.core.vocabulary import EventClass
from tests.classification.replay import LANES, EventOutcome, MessageOutcome, Replayed, replay
from tests.classification.traces import READS, SEED, TRUTHS, Send, Truth, build

SENDS = 200  # the command's default: about ten minutes on a 2-core machine

PREDICTED: tuple[EventClass, ...] = ("human", "proxy_open", "prefetch", "scanner", "unknown")


@dataclass(frozen=True, slots=True)
class ClassScore:
    """Precision and recall of one class, with the counts behind them."""

    precision: float
    recall: float
    support: int  # events truly of the class
    predicted: int  # events called the class


@dataclass(frozen=True, slots=True)
class MessageFigures:
    """What sellers were told about messages, against who really read them."""

    messages: int
    unread: int  # nobody read it
    false_alerts: int  # unread, an alert stands
    withdrawn_unread: int  # unread, its alert was withdrawn (rightly)
    withdrawn_read: int  # read, its alert was withdrawn and not raised again
    false_opened: int  # unread, the view counts an open
    seen: int  # a person's open reached us (their client's or an on-open proxy's fetch)
    missed: int  # seen, no alert stands
    delays: tuple[float, ...]  # seconds from the person's first open to the alert
    early: int  # alerts raised before any person's open, on messages read later
    unmeasured: int  # alerts that do not say when they were raised

    @property
    def false_alert_rate(self) -> float:
        return self.false_alerts / self.unread if self.unread else 0.0

    @property
    def false_opened_rate(self) -> float:
        return self.false_opened / self.unread if self.unread else 0.0

    @property
    def missed_rate(self) -> float:
        return self.missed / self.seen if self.seen else 0.0

    @property
    def median_delay(self) -> float | None:
        return statistics.median(self.delays) if self.delays else None

    @property
    def p90_delay(self) -> float | None:
        return _quantile(self.delays, 0.9) if self.delays else None


def _quantile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def score(events: Sequence[EventOutcome]) -> dict[Truth, ClassScore]:
    """Precision and recall per class, from the labels production stored."""
    scores = {}
    for label in TRUTHS:
        hits = sum(1 for e in events if e.truth == label and e.label == label)
        support = sum(1 for e in events if e.truth == label)
        predicted = sum(1 for e in events if e.label == label)
        scores[label] = ClassScore(
            hits / predicted if predicted else 0.0,
            hits / support if support else 0.0,
            support,
            predicted,
        )
    return scores


def _stands(message: MessageOutcome) -> bool:
    return message.alert is not None and not message.alert.withdrawn


def figures(messages: Sequence[MessageOutcome]) -> MessageFigures:
    """The per-message figures of a replay."""
    unread = [m for m in messages if m.read_at is None]
    seen = [m for m in messages if m.first_seen_open is not None]
    delays, early, unmeasured = [], 0, 0
    for m in seen:
        if m.alert is None or m.alert.withdrawn:
            continue
        if m.alert.raised_at is None:
            unmeasured += 1
            continue
        assert m.first_seen_open is not None
        delay = (m.alert.raised_at - m.first_seen_open).total_seconds()
        if delay < 0:
            early += 1
        else:
            delays.append(delay)
    return MessageFigures(
        messages=len(messages),
        unread=len(unread),
        false_alerts=sum(1 for m in unread if _stands(m)),
        withdrawn_unread=sum(1 for m in unread if m.alert is not None and m.alert.withdrawn),
        withdrawn_read=sum(
            1 for m in messages if m.read_at and m.alert is not None and m.alert.withdrawn
        ),
        false_opened=sum(1 for m in unread if m.opens > 0),
        seen=len(seen),
        missed=sum(1 for m in seen if not _stands(m)),
        delays=tuple(delays),
        early=early,
        unmeasured=unmeasured,
    )


def class_table(events: Sequence[EventOutcome]) -> str:
    """Per-class precision and recall, as a Markdown table."""
    scores = score(events)
    unknown = Counter(e.truth for e in events if e.label == "unknown")
    missing = Counter(e.truth for e in events if e.label is None)
    lines = [
        "| class | events | precision | recall | called unknown | no row |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for label in TRUTHS:
        s = scores[label]
        lines.append(
            f"| {label} | {s.support} | {s.precision:.3f} | {s.recall:.3f} "
            f"| {unknown[label]} | {missing[label]} |"
        )
    return "\n".join(lines)


def confusion(events: Sequence[EventOutcome]) -> str:
    """Truth by final label."""
    counts = Counter((e.truth, e.label) for e in events)
    lines = [
        "| truth \\ called | " + " | ".join(PREDICTED) + " |",
        "| --- |" + " ---: |" * len(PREDICTED),
    ]
    for truth in TRUTHS:
        cells = " | ".join(str(counts[(truth, c)]) for c in PREDICTED)
        lines.append(f"| {truth} | {cells} |")
    return "\n".join(lines)


def mistakes(events: Sequence[EventOutcome]) -> str:
    """Which actors were called what, when the final label was wrong."""
    wrong = Counter((e.actor, e.truth, e.label) for e in events if e.label != e.truth)
    totals = Counter(e.actor for e in events)
    lines = ["| actor (truth) | called | events | of the actor's |", "| --- | --- | ---: | ---: |"]
    for (actor, truth, called), count in wrong.most_common():
        lines.append(
            f"| {actor} ({truth}) | {called or 'no row'} | {count} | {count / totals[actor]:.0%} |"
        )
    return "\n".join(lines)


def _seconds(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f} s"


def message_table(f: MessageFigures) -> str:
    """The per-message figures, as a Markdown table."""
    rows = [
        ("false alerts (nobody read; an alert stands)", f.false_alerts, f.unread,
         f"{f.false_alert_rate:.1%}"),
        ('false "opened" (nobody read; the view counts an open)', f.false_opened, f.unread,
         f"{f.false_opened_rate:.1%}"),
        ("missed alerts (a person's open reached us; no alert stands)", f.missed, f.seen,
         f"{f.missed_rate:.1%}"),
        ("alerts withdrawn, nobody read", f.withdrawn_unread, f.unread, ""),
        ("alerts withdrawn, read (not raised again)", f.withdrawn_read, f.messages - f.unread, ""),
        ("alerts raised before any person's open, read later", f.early, f.seen, ""),
        ("alert delay after a person's open, median", _seconds(f.median_delay), len(f.delays), ""),
        ("alert delay after a person's open, p90", _seconds(f.p90_delay), len(f.delays), ""),
    ]  # fmt: skip
    if f.unmeasured:
        rows.append(("alerts that do not say when they were raised", f.unmeasured, f.seen, ""))
    lines = ["| measure | value | of | rate |", "| --- | ---: | ---: | ---: |"]
    lines += [f"| {name} | {value} | {of} | {rate} |" for name, value, of, rate in rows]
    return "\n".join(lines)


def behind(replayed: Replayed, sends: Sequence[Send]) -> str:
    """The actors behind the message-level errors: the counted open a false alert or a false
    "opened" came from, and the person's open a missed alert did not report."""
    by_send: dict[int, list[EventOutcome]] = {}
    for e in replayed.events:
        by_send.setdefault(e.send, []).append(e)
    found: Counter[tuple[str, str, str]] = Counter()
    for m in replayed.messages:
        events = list(zip(sends[m.send].events, by_send.get(m.send, []), strict=True))
        opens = [(t, o) for t, o in events if t.signals.kind == "open"]
        if m.read_at is None and (_stands(m) or m.opens > 0):
            what = "false alert" if _stands(m) else 'false "opened" only'
            for _, o in opens:
                if o.label in ("human", "proxy_open"):
                    found[(what, f"{o.actor} ({o.truth})", str(o.label))] += 1
        if m.first_seen_open is not None and not _stands(m):
            first = min((t for t, o in opens if t.truth in READS), key=lambda t: t.signals.at)
            outcome = next(o for t, o in opens if t is first)
            why = "withdrawn" if m.alert is not None else "none"
            found[(f"missed alert ({why})", outcome.actor, str(outcome.label))] += 1
    lines = ["| error | actor | its label | events |", "| --- | --- | --- | ---: |"]
    for (what, actor, label), count in sorted(found.items()):
        lines.append(f"| {what} | {actor} | {label} | {count} |")
    return "\n".join(lines)


def report(replayed: Replayed, sends: Sequence[Send], seed: int) -> str:
    """Everything the command prints."""
    individually = sum(1 for s in sends if s.individually)
    r = replayed
    head = (
        f"evaluation set: seed {seed}, {len(sends)} sends ({individually} sent individually, "
        f"copies' tokens from {r.individually_by}), {len(r.events)} events\n"
        f"replayed through the API, the tracking endpoints and the timers' cycles: "
        f"{r.requests} tracking requests ({r.failed_requests} answered otherwise than a "
        f"recipient expects, {len(r.misrecorded)} recorded otherwise than sent),\n"
        f"{r.alert_ticks} alert ticks and {r.fold_ticks} fold ticks over {r.active} of simulated "
        f"time with the cycles running ({r.simulated} in all; {r.lanes} lane(s)), "
        f"{r.seconds:.0f} s"
    )
    return "\n\n".join(
        [
            head,
            "final labels (events table):\n\n" + class_table(r.events),
            "confusion:\n\n" + confusion(r.events),
            "misclassified, by actor:\n\n" + mistakes(r.events),
            "what sellers were shown, per message:\n\n" + message_table(figures(r.messages)),
            "behind the message errors:\n\n" + behind(r, sends),
            *(
                ["recorded otherwise than sent:\n\n" + "\n".join(r.misrecorded)]
                if r.misrecorded
                else []
            ),
        ]
    )


def evaluate(
    seed: int = SEED, sends: int = SENDS, lanes: int = LANES
) -> tuple[list[Send], Replayed]:
    """Build the set and replay it (each lane on an Azurite of its own)."""
    built = build(seed, sends)
    return built, replay(built, lanes)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m tests.classification.evaluate", description=__doc__
    )
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--sends", type=int, default=SENDS)
    parser.add_argument(
        "--lanes", type=int, default=LANES, help="independent replays side by side (processes)"
    )
    args = parser.parse_args(argv)
    built, replayed = evaluate(args.seed, args.sends, args.lanes)
    print(report(replayed, built, args.seed))


if __name__ == "__main__":
    main()
