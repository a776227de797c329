"""Our recorded events put through the classifier's two stages
(shared/classification/classifier.py). Pure.

The per-event stage runs on the tracking path (without the send time, which that path does
not read) and again wherever the send time is known; the message stage runs when events are
folded, over the new events and the ones already folded: those within the revision window
of the new ones are judged afresh and may move towards "scanner"; older ones keep their
labels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from shared.classification.classifier import (
    EventSignals,
    Verdict,
    classify_event,
)
from shared.classification.evidence import clear_read, how_opened
from shared.classification.message_rules import MessageContext, classify_message, flooded
from shared.classification.networks import default_networks
from shared.core.services import OpenEvidence
from shared.core.vocabulary import current_class
from shared.tracking.events import Event


def signals_of(event: Event, sent_at: datetime | None) -> EventSignals:
    return EventSignals(
        kind=event.kind,
        user_agent=event.user_agent,
        ip=event.ip,
        at=event.at,
        method=event.method,
        has_accept=event.has_accept,
        sent_at=sent_at,
        index=event.index,
        copy=str(event.copy) if event.copy else "",
    )


def _labelled(event: Event, verdict: Verdict) -> Event:
    return replace(event, label=verdict.label, reasons=verdict.reasons)


def label_event(event: Event, sent_at: datetime | None = None) -> Event:
    """The event with the per-event verdict (microseconds: cached lookups)."""
    return _labelled(event, classify_event(signals_of(event, sent_at), default_networks()))


@dataclass(frozen=True, slots=True)
class Labelled:
    """A message's new events labelled, and its folded events whose labels changed."""

    new: list[Event]
    revised: list[Event]


# How far towards "scanner" a class is: a revision never moves an event back.
_RANK = {"human": 0, "proxy_open": 0, "prefetch": 0, "unknown": 1, "scanner": 2}


def label_message(
    new: Sequence[Event],
    folded: Sequence[Event],
    sent_at: datetime | None,
    link_count: int,
    window: timedelta = timedelta(0),
    *,
    opened_before: frozenset[str] = frozenset(),
) -> Labelled:
    """`new` labelled with both stages, judged together with the message's events already
    folded. A folded event within `window` of the newest new event is still open to
    revision: judged afresh, it takes its new label when later evidence (a sweep seconds
    after a scanner's pixel fetch) moves it towards "scanner"; older ones keep the labels
    they were counted with. `opened_before` names the copies opened before the folded events
    given (when only the recent ones are). Pure."""
    networks = default_networks()
    newest = max((e.at for e in new), default=None)
    open_to_revision = [
        newest is not None and abs(newest - e.at) <= window and bool(e.label) for e in folded
    ]
    pairs = [
        (
            signals_of(e, sent_at),
            classify_event(signals_of(e, sent_at), networks)
            if revisable
            else Verdict(current_class(e.label, e.reasons), e.reasons),
        )
        for e, revisable in zip(folded, open_to_revision, strict=True)
    ] + [
        (signals, classify_event(signals, networks))
        for signals in (signals_of(e, sent_at) for e in new)
    ]
    verdicts = classify_message(
        pairs, MessageContext(link_count=link_count, opened_before=opened_before)
    )
    revised = []
    for event, revisable, verdict in zip(folded, open_to_revision, verdicts, strict=False):
        before = current_class(event.label, event.reasons)
        if (
            revisable
            and (verdict.label, verdict.reasons) != (before, event.reasons)
            and _RANK[verdict.label] > _RANK[before]
        ):
            revised.append(_labelled(event, verdict))
    return Labelled(
        [_labelled(e, v) for e, v in zip(new, verdicts[len(folded) :], strict=True)], revised
    )


def first_counted_open(
    events: Sequence[Event], sent_at: datetime, counted: frozenset[str]
) -> Event | None:
    """The first open after sending that the KPIs count (events labelled by both stages)."""
    found = [
        e
        for e in events
        if e.kind == "open" and e.at >= sent_at and e.label in counted and not flooded(e.reasons)
    ]
    return min(found, key=lambda e: (e.at, e.event_id)) if found else None


def open_evidence(event: Event) -> OpenEvidence:
    """What the seller is told of a counted open, and whether it needs later evidence."""
    return OpenEvidence(
        at=event.at,
        how=how_opened(event.user_agent, event.label),
        clear=clear_read(event.label, event.reasons),
        copy=event.copy,
    )
