"""The fold-time labelling of a message's events: flood protection across fold cycles, and
labels revised while later evidence may still arrive."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from shared.classification.message_rules import FLOOD_LIMIT, FLOOD_WINDOW_SECONDS, flooded
from shared.core.vocabulary import EventKind
from shared.engagement.kpis import Kpis, fold
from shared.tracking.events import Event, new_event
from shared.tracking.labelling import label_message

SENT = datetime(2026, 3, 29, 9, 0, tzinfo=UTC)
OUTLOOK = "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17328; Pro)"
OFFICE = "203.0.113.0"


def fetches(
    n: int,
    start: float,
    step: float = 0.01,
    kind: EventKind = "open",
    ua: str = OUTLOOK,
    ip: str = OFFICE,
) -> list[Event]:
    return [
        new_event(
            message_id="m" * 26,
            kind=kind,
            index=0,
            user_agent=ua,
            ip=ip,
            at=SENT + timedelta(seconds=start + i * step),
        )
        for i in range(n)
    ]


def test_one_client_fetching_the_pixel_11000_times_counts_a_plausible_few() -> None:
    labelled = label_message(fetches(11_000, 3 * 3600), [], SENT, link_count=2).new
    kept = [e for e in labelled if not flooded(e.reasons)]
    assert len(kept) == FLOOD_LIMIT and all(e.label == "human" for e in kept)
    floods = [e for e in labelled if flooded(e.reasons)]
    assert len(floods) == 11_000 - FLOOD_LIMIT
    assert all(e.label == "unknown" and "flood:pixel" in e.reasons for e in floods)
    kpis = fold(Kpis(), labelled, SENT)
    assert kpis.opens == FLOOD_LIMIT
    assert kpis.by_class["open"] == {"human": FLOOD_LIMIT, "unknown": 11_000 - FLOOD_LIMIT}
    # even where the unknown class is counted, a flood is not
    counting_unknown = frozenset({"human", "proxy_open", "unknown", ""})
    assert fold(Kpis(), labelled, SENT, counting_unknown).opens == FLOOD_LIMIT


def test_a_flood_split_over_fold_cycles_is_judged_the_same() -> None:
    events = fetches(300, 3 * 3600)
    at_once = label_message(events, [], SENT, link_count=2).new
    first = label_message(events[:7], [], SENT, link_count=2).new
    second = label_message(events[7:150], first, SENT, link_count=2).new
    third = label_message(events[150:], [*first, *second], SENT, link_count=2).new
    assert [e.label for e in [*first, *second, *third]] == [e.label for e in at_once]
    assert sum(not flooded(e.reasons) for e in [*first, *second, *third]) == FLOOD_LIMIT


def test_a_person_reopening_now_and_then_is_never_a_flood() -> None:
    events = fetches(30, 3 * 3600, step=FLOOD_WINDOW_SECONDS / FLOOD_LIMIT + 1)
    events += fetches(5, 3 * 3600, kind="click")  # another kind, another count
    events += fetches(FLOOD_LIMIT, 3 * 3600, ip="198.51.100.0")  # a colleague: another client
    labelled = label_message(events, [], SENT, link_count=2).new
    assert not any(flooded(e.reasons) for e in labelled)


def test_a_flooded_link_is_recorded_and_not_counted() -> None:
    labelled = label_message(
        fetches(50, 3 * 3600, step=1, kind="click"), [], SENT, link_count=1
    ).new
    floods = [e for e in labelled if flooded(e.reasons)]
    assert len(floods) == 50 - FLOOD_LIMIT and all("flood:link" in e.reasons for e in floods)
    assert fold(Kpis(), labelled, SENT).link_clicks <= FLOOD_LIMIT


CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/142.0.0.0 Safari/537.36"
)


def pixel_then_sweep(gap: float) -> tuple[list[Event], list[Event]]:
    """A gateway's pixel fetch (already folded), then its sweep of both links `gap` s later."""
    pixel = label_message(fetches(1, 3600, ua=CHROME), [], SENT, link_count=2).new
    sweep = [
        replace(e, index=i)
        for i, e in enumerate(fetches(2, 3600 + gap, step=0.3, kind="click", ua=CHROME))
    ]
    return pixel, sweep


def test_a_sweep_revises_the_pixel_fetch_before_it_within_the_window() -> None:
    pixel, sweep = pixel_then_sweep(gap=8)
    assert pixel[0].label == "human"  # on its own, a current browser
    labelled = label_message(sweep, pixel, SENT, link_count=2, window=timedelta(minutes=10))
    assert {e.label for e in labelled.new} == {"scanner"}
    (revised,) = labelled.revised
    assert revised.event_id == pixel[0].event_id
    assert revised.label == "scanner" and "timing:with_scanner" in revised.reasons


def test_outside_the_window_a_label_is_final() -> None:
    pixel, sweep = pixel_then_sweep(gap=8)
    labelled = label_message(sweep, pixel, SENT, link_count=2, window=timedelta(seconds=5))
    assert labelled.revised == [] and {e.label for e in labelled.new} == {"scanner"}
    assert label_message(sweep, pixel, SENT, link_count=2).revised == []  # no window: none


def test_a_revision_never_moves_an_event_back_from_scanner() -> None:
    pixel, sweep = pixel_then_sweep(gap=8)
    window = timedelta(minutes=10)
    scanned = label_message(sweep, pixel, SENT, link_count=2, window=window)
    folded = [*scanned.revised, *scanned.new]
    later = fetches(1, 3600 + 60, ua=OUTLOOK, ip="198.51.100.0")  # a person, another client
    again = label_message(later, folded, SENT, link_count=2, window=window)
    assert again.revised == [] and again.new[0].label == "human"
