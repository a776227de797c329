"""NCRONTAB schedules (the six-field form Azure Functions timers use), so the local runner
fires the timer cycles on the same schedules as production. Pure."""

from __future__ import annotations

from datetime import datetime, timedelta

_RANGES = ((0, 59), (0, 59), (0, 23), (1, 31), (1, 12), (0, 6))


def _field(text: str, low: int, high: int) -> frozenset[int]:
    values: set[int] = set()
    for part in text.split(","):
        spec, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if step < 1:
            raise ValueError(f"bad step in {text!r}")
        if spec == "*":
            start, end = low, high
        elif "-" in spec:
            a, b = spec.split("-", 1)
            start, end = int(a), int(b)
        else:
            start = int(spec)
            end = high if step_text else start
        if not low <= start <= end <= high:
            raise ValueError(f"{text!r} is outside {low}-{high}")
        values.update(range(start, end + 1, step))
    return frozenset(values)


class Schedule:
    """`{second} {minute} {hour} {day} {month} {day-of-week}`, with *, lists, ranges, steps."""

    def __init__(self, expression: str) -> None:
        fields = expression.split()
        if len(fields) != 6:
            raise ValueError("an NCRONTAB schedule has six fields")
        self.expression = expression
        parsed = [_field(f, lo, hi) for f, (lo, hi) in zip(fields, _RANGES, strict=True)]
        self._second, self._minute, self._hour, self._day, self._month, self._weekday = parsed

    def _matches(self, at: datetime) -> bool:
        return (
            at.second in self._second
            and at.minute in self._minute
            and at.hour in self._hour
            and at.day in self._day
            and at.month in self._month
            and (at.weekday() + 1) % 7 in self._weekday  # Sunday is 0 in cron
        )

    def next_after(self, at: datetime) -> datetime:
        """The first matching second strictly after `at`."""
        moment = at.replace(microsecond=0) + timedelta(seconds=1)
        for _ in range(366 * 24 * 3600):
            weekday = (moment.weekday() + 1) % 7  # Sunday is 0 in cron
            if (
                moment.month not in self._month
                or moment.day not in self._day
                or weekday not in self._weekday
            ):
                moment = (moment + timedelta(days=1)).replace(hour=0, minute=0, second=0)
                continue
            if moment.hour not in self._hour:
                moment = (moment + timedelta(hours=1)).replace(minute=0, second=0)
                continue
            if moment.minute not in self._minute:
                moment = (moment + timedelta(minutes=1)).replace(second=0)
                continue
            if self._matches(moment):
                return moment
            moment += timedelta(seconds=1)
        raise ValueError(f"{self.expression!r} never fires")
