"""The fold-time labelling of a message's events: flood protection across fold cycles."""

from __future__ import annotations

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
    labelled = label_message(fetches(11_000, 3 * 3600), [], SENT, link_count=2)
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
    at_once = label_message(events, [], SENT, link_count=2)
    first = label_message(events[:7], [], SENT, link_count=2)
    second = label_message(events[7:150], first, SENT, link_count=2)
    third = label_message(events[150:], [*first, *second], SENT, link_count=2)
    assert [e.label for e in [*first, *second, *third]] == [e.label for e in at_once]
    assert sum(not flooded(e.reasons) for e in [*first, *second, *third]) == FLOOD_LIMIT


def test_a_person_reopening_now_and_then_is_never_a_flood() -> None:
    events = fetches(30, 3 * 3600, step=FLOOD_WINDOW_SECONDS / FLOOD_LIMIT + 1)
    events += fetches(5, 3 * 3600, kind="click")  # another kind, another count
    events += fetches(FLOOD_LIMIT, 3 * 3600, ip="198.51.100.0")  # a colleague: another client
    labelled = label_message(events, [], SENT, link_count=2)
    assert not any(flooded(e.reasons) for e in labelled)


def test_a_flooded_link_is_recorded_and_not_counted() -> None:
    labelled = label_message(fetches(50, 3 * 3600, step=1, kind="click"), [], SENT, link_count=1)
    floods = [e for e in labelled if flooded(e.reasons)]
    assert len(floods) == 50 - FLOOD_LIMIT and all("flood:link" in e.reasons for e in floods)
    assert fold(Kpis(), labelled, SENT).link_clicks <= FLOOD_LIMIT
