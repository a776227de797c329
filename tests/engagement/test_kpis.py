from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shared.engagement.kpis import Kpis, fold, from_columns, timeline, to_columns
from shared.tracking.events import (
    Event,
    bucket_of,
    event_from_blob,
    last_closed_bucket,
    new_event,
    next_bucket,
)

SENT = datetime(2026, 3, 29, 0, 59, 0, tzinfo=UTC)
IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148"
OUTLOOK = "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17328; Pro)"


def event(kind: str, seconds: float, index: int = 0, ua: str = IPHONE) -> Event:
    return new_event(
        message_id="m" * 26, kind=kind, index=index, user_agent=ua, ip="203.0.113.0",  # type: ignore[arg-type]
        at=SENT + timedelta(seconds=seconds),
    )  # fmt: skip


def test_fold_counts_per_kind_link_attachment_and_device() -> None:
    events = [event("open", 5), event("open", 50, ua=OUTLOOK), event("click", 60, 1), event("click", 61, 1),
              event("click", 70, 0), event("attachment", 80, 2)]  # fmt: skip
    kpis = fold(Kpis(), events, SENT)
    assert (kpis.opens, kpis.link_clicks, kpis.attachment_views) == (2, 3, 1)
    assert kpis.clicks_by_link == {1: 2, 0: 1}
    assert kpis.views_by_attachment == {2: 1}
    assert kpis.devices == {"mobile": 1, "desktop": 1}
    assert kpis.first_opened_at == SENT + timedelta(seconds=5)
    assert kpis.last_opened_at == SENT + timedelta(seconds=50)


def test_each_recipients_copy_is_counted_apart() -> None:
    from dataclasses import replace

    events = [replace(event("open", 5), copy=1), replace(event("open", 50), copy=1),
              replace(event("click", 60, 1), copy=2), event("open", 70)]  # fmt: skip
    kpis = fold(Kpis(), events, SENT)
    assert kpis.opens == 3 and kpis.link_clicks == 1
    assert set(kpis.by_copy) == {1, 2}
    assert (kpis.by_copy[1].opens, kpis.by_copy[1].link_clicks) == (2, 0)
    assert kpis.by_copy[1].first["open"] == SENT + timedelta(seconds=5)
    assert kpis.by_copy[1].last["open"] == SENT + timedelta(seconds=50)
    assert (kpis.by_copy[2].opens, kpis.by_copy[2].link_clicks) == (0, 1)
    assert from_columns(to_columns(kpis)) == kpis


def test_events_before_sending_are_previews_not_opens() -> None:
    kpis = fold(Kpis(), [event("open", -30), event("open", 30)], SENT)
    assert kpis.opens == 1 and kpis.previews == 1
    draft = fold(Kpis(), [event("open", 30)], None)
    assert draft.opens == 0 and draft.previews == 1


def test_fold_is_idempotent_per_bucket() -> None:
    events = [event("open", 1), event("open", 25)]
    once = fold(Kpis(), events, SENT)
    assert fold(once, events, SENT) == once
    later = event("open", 100)
    assert fold(once, [*events, later], SENT).opens == 3


def test_columns_round_trip() -> None:
    kpis = fold(Kpis(), [event("open", 1), event("click", 2, 4), event("attachment", 3, 1)], SENT)
    assert from_columns(to_columns(kpis)) == kpis
    assert from_columns({}) == Kpis()


def test_timeline_shows_first_and_latest_newest_first() -> None:
    kpis = fold(
        Kpis(), [event("open", 1), event("open", 30), event("open", 90), event("click", 40)], SENT
    )
    entries = [(t.event, t.occurrence, t.at - SENT) for t in timeline(kpis, SENT)]
    assert entries == [
        ("open", "latest", timedelta(seconds=90)),
        ("click", "only", timedelta(seconds=40)),
        ("open", "first", timedelta(seconds=1)),
        ("sent", "only", timedelta(0)),
    ]


def test_event_blob_metadata_round_trips_non_ascii_user_agent() -> None:
    original = event("click", 3, 7, ua="Mozilla/5.0 (Linux; Android 14; Pixel ☃) ünïcode")
    metadata = original.metadata()
    assert all(v.isascii() for v in metadata.values())
    assert event_from_blob(original.blob_name, metadata) == original
    assert event_from_blob("x/y", metadata) is None
    assert event_from_blob(original.blob_name, {**metadata, "kind": "evil"}) is None


def test_buckets_are_ten_seconds_and_close_after_grace() -> None:
    at = datetime(2026, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)
    assert bucket_of(at) == "20261231235950"
    assert next_bucket("20261231235950") == "20270101000000"
    assert last_closed_bucket(at, timedelta(seconds=30)) == "20261231235910"
