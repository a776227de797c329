"""`python -m tests.classification.evaluate`: score the open/click classifier on the labelled
evaluation set and print precision and recall per class, for the per-event stage alone and
with the fold-time stage, then the confusion matrix and the misclassified actors.

Precision of a class: of the events called that class, the share that truly are. Recall: of
the events that truly are of a class, the share called that class; an event called "unknown"
counts against recall (no event in the set is unknown in truth: the generator knows who made
each one).
"""

from __future__ import annotations

import argparse
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from shared.classification.classifier import (
    classify_event,
)
from shared.classification.message_rules import MessageContext, classify_message
from shared.classification.networks import Networks, load_networks
from shared.core.vocabulary import EventClass
from tests.classification.traces import SEED, SENDS, Send, Truth, build

CLASSES: tuple[Truth, ...] = ("human", "scanner", "privacy_proxy")
PREDICTED: tuple[EventClass, ...] = ("human", "scanner", "privacy_proxy", "unknown")


@dataclass(frozen=True, slots=True)
class ClassScore:
    """Precision and recall of one class, with the counts behind them."""

    precision: float
    recall: float
    support: int  # events truly of the class
    predicted: int  # events called the class


@dataclass(frozen=True, slots=True)
class Outcome:
    """One event: the truth, the generator's actor, and each stage's call."""

    truth: Truth
    actor: str
    event_stage: EventClass
    full: EventClass


def run(sends: Sequence[Send], networks: Networks) -> list[Outcome]:
    """Classify every event of every send with both stages."""
    outcomes = []
    for send in sends:
        first = [(e.signals, classify_event(e.signals, networks)) for e in send.events]
        final = classify_message(first, MessageContext(link_count=send.link_count))
        for event, (_, verdict), folded in zip(send.events, first, final, strict=True):
            outcomes.append(Outcome(event.truth, event.actor, verdict.label, folded.label))
    return outcomes


def score(pairs: Sequence[tuple[Truth, EventClass]]) -> dict[Truth, ClassScore]:
    """Precision and recall per class."""
    scores = {}
    for label in CLASSES:
        hits = sum(1 for truth, called in pairs if truth == label and called == label)
        support = sum(1 for truth, _ in pairs if truth == label)
        predicted = sum(1 for _, called in pairs if called == label)
        scores[label] = ClassScore(
            hits / predicted if predicted else 0.0,
            hits / support if support else 0.0,
            support,
            predicted,
        )
    return scores


def stage_scores(outcomes: Sequence[Outcome], stage: str) -> dict[Truth, ClassScore]:
    """The scores of one stage ("event" or "full")."""
    return score([(o.truth, o.event_stage if stage == "event" else o.full) for o in outcomes])


def table(outcomes: Sequence[Outcome]) -> str:
    """Per-class precision and recall of both stages, as a Markdown table."""
    event, full = stage_scores(outcomes, "event"), stage_scores(outcomes, "full")
    unknown_event = Counter(o.truth for o in outcomes if o.event_stage == "unknown")
    unknown_full = Counter(o.truth for o in outcomes if o.full == "unknown")
    lines = [
        "| class | events | per-event precision | per-event recall | with fold precision "
        "| with fold recall | called unknown (with fold) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for label in CLASSES:
        e, f = event[label], full[label]
        lines.append(
            f"| {label} | {f.support} | {e.precision:.3f} | {e.recall:.3f} | {f.precision:.3f} "
            f"| {f.recall:.3f} | {unknown_full[label]} ({unknown_event[label]} per-event) |"
        )
    return "\n".join(lines)


def confusion(outcomes: Sequence[Outcome]) -> str:
    """Truth by final call."""
    counts = Counter((o.truth, o.full) for o in outcomes)
    lines = [
        "| truth \\ called | " + " | ".join(PREDICTED) + " |",
        "| --- |" + " ---: |" * len(PREDICTED),
    ]
    for truth in CLASSES:
        lines.append(
            f"| {truth} | " + " | ".join(str(counts[(truth, c)]) for c in PREDICTED) + " |"
        )
    return "\n".join(lines)


def mistakes(outcomes: Sequence[Outcome]) -> str:
    """Which actors were called what, when the final call was wrong."""
    wrong = Counter((o.actor, o.truth, o.full) for o in outcomes if o.full != o.truth)
    totals = Counter(o.actor for o in outcomes)
    lines = ["| actor (truth) | called | events | of the actor's |", "| --- | --- | ---: | ---: |"]
    for (actor, truth, called), count in wrong.most_common():
        lines.append(f"| {actor} ({truth}) | {called} | {count} | {count / totals[actor]:.0%} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m tests.classification.evaluate", description=__doc__
    )
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--sends", type=int, default=SENDS)
    parser.add_argument(
        "--no-networks",
        action="store_true",
        help="classify without the network data files (what the lists are worth)",
    )
    args = parser.parse_args(argv)
    sends = build(args.seed, args.sends)
    outcomes = run(sends, Networks([]) if args.no_networks else load_networks())
    shipped = "without network data" if args.no_networks else "with the shipped network data"
    print(
        f"evaluation set: seed {args.seed}, {len(sends)} sends, {len(outcomes)} events, {shipped}\n"
    )
    print(table(outcomes))
    print("\nconfusion (with fold):\n")
    print(confusion(outcomes))
    print("\nmisclassified, by actor (with fold):\n")
    print(mistakes(outcomes))


if __name__ == "__main__":
    main()
