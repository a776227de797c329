"""Our recorded events put through the classifier's two stages
(shared/classification/classifier.py). Pure.

The per-event stage runs on the tracking path (without the send time, which that path does
not read) and again wherever the send time is known; the message stage runs when events are
folded, over the new events and the ones already folded (which keep their labels).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from shared.classification.classifier import (
    EventSignals,
    Verdict,
    classify_event,
)
from shared.classification.message_rules import MessageContext, classify_message
from shared.classification.networks import default_networks
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


def label_message(
    new: Sequence[Event], folded: Sequence[Event], sent_at: datetime | None, link_count: int
) -> list[Event]:
    """`new` labelled with both stages, judged together with the message's events already
    folded (whose labels stay as they were counted)."""
    networks = default_networks()
    pairs = [
        (signals_of(e, sent_at), Verdict(current_class(e.label, e.reasons), e.reasons))
        for e in folded
    ] + [
        (signals, classify_event(signals, networks))
        for signals in (signals_of(e, sent_at) for e in new)
    ]
    verdicts = classify_message(pairs, MessageContext(link_count=link_count))
    return [_labelled(e, v) for e, v in zip(new, verdicts[len(folded) :], strict=True)]
