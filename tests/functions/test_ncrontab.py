from __future__ import annotations

from datetime import UTC, datetime

import pytest

from functions.ncrontab import Schedule

T = datetime(2026, 11, 22, 23, 59, 58, 500000, tzinfo=UTC)  # a Sunday


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("*/10 * * * * *", datetime(2026, 11, 23, 0, 0, 0, tzinfo=UTC)),
        ("0 */15 * * * *", datetime(2026, 11, 23, 0, 0, 0, tzinfo=UTC)),
        ("30 5 9 * * 1-5", datetime(2026, 11, 23, 9, 5, 30, tzinfo=UTC)),
        ("0 0 3 1 * *", datetime(2026, 12, 1, 3, 0, 0, tzinfo=UTC)),
        ("59 59 23 * * 0", datetime(2026, 11, 22, 23, 59, 59, tzinfo=UTC)),
        ("0 0 0 * * 6", datetime(2026, 11, 28, 0, 0, 0, tzinfo=UTC)),
    ],
)
def test_next_after(expression: str, expected: datetime) -> None:
    assert Schedule(expression).next_after(T) == expected


@pytest.mark.parametrize("bad", ["* * * * *", "61 * * * * *", "*/0 * * * * *", "a * * * * *"])
def test_bad_schedules_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match=r"."):
        Schedule(bad)
