"""What production shows on the labelled evaluation set, replayed through the API, the
tracking endpoints and the timers' cycles on a simulated clock (tests/classification/
replay.py), stays within the floors and ceilings that docs/measurement.md justifies.

One replay per session (it is most of this module's cost): SUITE_SENDS sends of the default
seed, sized to keep it near two minutes on a 2-core machine; EVALUATION_SENDS=N in the
environment replays more (`python -m tests.classification.evaluate --sends N` prints them)."""

from __future__ import annotations

import os
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from shared.core.ids import new_message_id
from shared.core.settings import Settings
from shared.tracking.tokens import TokenSigner
from tests.classification.evaluate import MessageFigures, evaluate, figures, report, score
from tests.classification.replay import (
    ALERT_SECONDS,
    TAIL_SECONDS,
    Replayed,
    copy_paths,
    lanes_of,
    packed,
    schedule,
    steps,
    stretches,
)
from tests.classification.traces import SEED, Send, build

SUITE_SENDS = int(os.environ.get("EVALUATION_SENDS", "30"))

# (class, metric) -> floor, on the final labels. See docs/measurement.md, "Thresholds".
FLOORS = {
    ("scanner", "precision"): 0.97,
    ("scanner", "recall"): 0.97,
    ("human", "precision"): 0.95,
}
FALSE_ALERTS_AT_MOST = 0.03  # of messages nobody read
FALSE_OPENED_AT_MOST = 0.05  # of messages nobody read
MISSED_ALERTS_AT_MOST = 0.03  # of messages whose reader's open reached us
MEDIAN_ALERT_DELAY_AT_MOST = 10.0  # seconds after a person's open


@pytest.fixture(scope="session")
def replayed() -> tuple[list[Send], Replayed]:
    return evaluate(SEED, SUITE_SENDS)


@pytest.fixture(scope="session")
def shown(replayed: tuple[list[Send], Replayed]) -> MessageFigures:
    return figures(replayed[1].messages)


@pytest.mark.parametrize(("label", "metric"), sorted(FLOORS))
def test_final_labels_stay_above_their_floor(
    replayed: tuple[list[Send], Replayed], label: str, metric: str
) -> None:
    value = getattr(score(replayed[1].events)[label], metric)  # type: ignore[index]
    assert value >= FLOORS[(label, metric)], f"{label} {metric} = {value:.3f}"


def test_few_alerts_for_messages_nobody_read(shown: MessageFigures) -> None:
    assert shown.unread > 0
    assert shown.false_alert_rate <= FALSE_ALERTS_AT_MOST, (
        f"{shown.false_alerts} of {shown.unread} messages nobody read have an alert"
    )


def test_few_messages_nobody_read_show_an_open(shown: MessageFigures) -> None:
    assert shown.false_opened_rate <= FALSE_OPENED_AT_MOST, (
        f"{shown.false_opened} of {shown.unread} messages nobody read show an open"
    )


def test_few_opens_by_people_go_without_an_alert(shown: MessageFigures) -> None:
    assert shown.seen > 0
    assert shown.missed_rate <= MISSED_ALERTS_AT_MOST, (
        f"{shown.missed} of {shown.seen} messages a person opened visibly have no alert"
    )


def test_a_person_s_open_is_alerted_within_seconds(shown: MessageFigures) -> None:
    assert shown.unmeasured == 0, "alerts must say when they were raised (raised_at)"
    assert shown.median_delay is not None
    assert shown.median_delay <= MEDIAN_ALERT_DELAY_AT_MOST, f"median {shown.median_delay:.1f} s"


def test_every_event_reached_production_as_its_client_sent_it(
    replayed: tuple[list[Send], Replayed],
) -> None:
    sends, result = replayed
    assert result.requests == sum(len(s.events) for s in sends)
    assert result.failed_requests == 0  # the pixel answered, links and attachments redirected
    assert all(e.label is not None for e in result.events), "an event has no row"
    assert not result.misrecorded  # the network, agent, method and Accept as the client sent
    assert len(result.messages) == len(sends)


def test_the_timers_ran_for_the_whole_tail_of_every_event(
    replayed: tuple[list[Send], Replayed],
) -> None:
    sends, result = replayed
    needed = 0
    for part in lanes_of(sends, result.lanes):
        spans = packed([send for _, send in part])
        needed += sum(int((end - start) // ALERT_SECONDS) for start, end in spans)
    assert result.alert_ticks >= needed
    assert result.active >= timedelta(seconds=TAIL_SECONDS)


def test_ticks_come_every_5_s_until_10_minutes_after_the_last_event() -> None:
    start = datetime(2024, 5, 6, 7, 0, 2, tzinfo=UTC)
    moments = [start, start + timedelta(seconds=30), start + timedelta(hours=5, seconds=1)]
    ran = list(steps(moments))
    assert [i for _, i in ran if i is not None] == [0, 1, 2]
    ticks = [at for at, i in ran if i is None]
    assert all(int(t.timestamp()) % ALERT_SECONDS == 0 for t in ticks)
    assert [at for at, _ in ran] == sorted(at for at, _ in ran)
    for moment in moments:  # every tick of each event's tail, none long after
        tail = [t for t in ticks if moment <= t <= moment + timedelta(seconds=TAIL_SECONDS)]
        assert len(tail) == TAIL_SECONDS // ALERT_SECONDS
    first_run = [t for t in ticks if t < moments[2]]
    assert first_run[-1] <= moments[1] + timedelta(seconds=TAIL_SECONDS)  # then a jump
    assert len(ticks) == len(first_run) + TAIL_SECONDS // ALERT_SECONDS


def test_the_report_prints_every_figure(replayed: tuple[list[Send], Replayed]) -> None:
    sends, result = replayed
    text = report(result, sends, SEED)
    for heading in ("| class | events | precision | recall", "confusion:", "misclassified"):
        assert heading in text
    for measure in ("false alerts", 'false "opened"', "missed alerts", "median", "p90"):
        assert measure in text


# --- the set itself (no replay) ---------------------------------------------------------------


def test_the_set_holds_the_hard_cases() -> None:
    actors = Counter(e.actor for send in build(SEED) for e in send.events)
    for hard in (
        "defender_sandbox",  # browser agents from a network no list names
        "sandbox_pixel_first",  # the pixel seconds before the sweep, from a cloud
        "sandbox_pixel_only",  # a scanner that loads the pixel and nothing else
        "quiet_fetcher",  # a browser agent, no Accept header, from a cloud
        "apple_mpp_bare",  # Apple's proxy as a bare "Mozilla/5.0"
        "gmail_prefetch",  # Gmail's fetch at delivery
        "hey_proxy",  # HEY's image proxy
        "person_outlook_mac",  # Outlook for Mac
        "person_outlook_images_off",  # clicks without an open
        "person_apple_mail_mac",  # a person whose user agent is the privacy proxy's
        "office_probe",  # a machine request just before a person's click
    ):
        assert actors[hard] >= 10, hard


def test_labels_come_from_the_actor_alone() -> None:
    truths: dict[str, set[str]] = {}
    for send in build(SEED, 100):
        for event in send.events:
            truths.setdefault(event.actor, set()).add(event.truth)
    assert all(len(labels) == 1 for labels in truths.values()), truths


def test_only_copies_sent_individually_say_whose_they_are() -> None:
    sends = build(SEED, 200)
    assert any(s.individually and s.recipients > 1 for s in sends)
    for send in sends:
        copies = {e.signals.copy for e in send.events}
        if send.individually:
            assert copies <= {str(k + 1) for k in range(send.recipients)}
        else:
            assert copies <= {""}  # one set of tokens for everyone: no copy to tell


def test_a_send_nobody_read_has_no_event_of_a_person() -> None:
    for send in build(SEED, 200):
        people = [e for e in send.events if e.truth in ("human", "proxy_open")]
        assert (send.read_at is None) <= (not people)
        assert all(send.read_at is not None and send.read_at <= e.signals.at for e in people)


def test_the_set_is_the_same_for_the_same_seed() -> None:
    first, again, other = build(7, 30), build(7, 30), build(8, 30)
    assert first == again
    assert first != other


def test_the_schedule_overlaps_the_sends() -> None:
    sends = build(SEED, 30)
    offsets = schedule(sends)
    assert offsets == schedule(sends) and min(offsets) >= 0
    alone = sum(end - start for s in sends for start, end in stretches(s))
    assert sum(end - start for start, end in packed(sends)) < alone / 2


def test_copies_signed_by_the_harness_carry_their_copy_number() -> None:
    settings = Settings()
    signer = TokenSigner(
        {k: v.get_secret_value().encode() for k, v in settings.token_keys.items()},
        settings.token_active_kid,
    )
    send = next(s for s in build(SEED, 100) if s.individually and s.recipients > 1)
    message_id = new_message_id("seller")
    paths = copy_paths(signer, message_id, send)
    assert len(paths) == send.recipients * (1 + send.link_count + send.attachment)
    for (kind, index, copy), path in paths.items():
        ref = signer.verify(path.split("/")[3].removesuffix(".gif"))
        assert ref is not None and (ref.kind, ref.index, ref.copy) == (kind, index, copy)
        assert ref.message_id == message_id
