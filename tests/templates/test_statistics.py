from __future__ import annotations

import random
from typing import Any

import pytest

from shared.core.errors import InvalidInput
from shared.templates.statistics import (
    MIN_SENT,
    Z_95,
    TemplateCounts,
    TemplateStats,
    choose_metric,
    sort_templates,
    template_stats,
    wilson_lower,
)


def stats(*rows: tuple[str, int, int, int]) -> dict[str, TemplateStats]:
    result = template_stats(TemplateCounts(*row) for row in rows)
    return {s.template_id: s for s in result}


def recommended(result: dict[str, TemplateStats]) -> list[str]:
    return [s.template_id for s in result.values() if s.recommended]


# Published Wilson 95% intervals (e.g. statsmodels' proportion_confint(method="wilson")),
# and the closed form n / (n + z²) when every trial succeeded.
@pytest.mark.parametrize(
    ("successes", "trials", "expected"),
    [
        (40, 100, 0.30940),
        (50, 100, 0.40383),
        (1, 10, 0.01788),
        (3, 3, 3 / (3 + Z_95**2)),
        (10, 10, 10 / (10 + Z_95**2)),
        (0, 10, 0.0),
        (0, 1, 0.0),
    ],
)
def test_wilson_lower_bound_matches_known_values(
    successes: int, trials: int, expected: float
) -> None:
    assert wilson_lower(successes, trials) == pytest.approx(expected, abs=5e-6)


def test_wilson_constants() -> None:
    assert pytest.approx(1.959964, abs=1e-6) == Z_95
    assert wilson_lower(3, 3) == pytest.approx(0.4385, abs=1e-4)
    assert wilson_lower(0, 0) is None


@pytest.mark.parametrize("seed", range(5))
def test_wilson_lower_bound_solves_the_score_equation(seed: int) -> None:
    """The bound is the root below p̂ of n(p̂ - p)² = z² p(1 - p)."""
    rng = random.Random(seed)
    for _ in range(200):
        n = rng.randint(1, 5_000)
        k = rng.randint(1, n)
        p_hat = k / n
        low = wilson_lower(k, n)
        assert low is not None
        assert 0.0 <= low < p_hat
        assert n * (p_hat - low) ** 2 == pytest.approx(Z_95**2 * low * (1 - low), rel=1e-9)


def test_rates_with_no_sends_are_none() -> None:
    row = stats(("t", 0, 0, 0))["t"]
    assert (row.open_rate, row.reply_rate, row.open_rate_low, row.reply_rate_low) == (
        None,
        None,
        None,
        None,
    )
    assert not row.recommended
    assert row.why == "Not sent yet."


def test_rates_with_no_opens_and_with_every_message_opened() -> None:
    result = stats(("none", 40, 0, 0), ("all", 40, 40, 0))
    assert result["none"].open_rate == 0.0
    assert result["none"].open_rate_low == 0.0
    assert result["all"].open_rate == 1.0
    assert result["all"].open_rate_low == pytest.approx(40 / (40 + Z_95**2))
    assert result["all"].reply_rate == 0.0


def test_counts_that_disagree_are_clamped_not_refused() -> None:
    row = stats(("t", 10, 12, -1))["t"]
    assert (row.opened, row.replied, row.open_rate, row.reply_rate) == (10, 0, 1.0, 0.0)


def test_three_lucky_sends_are_not_crowned() -> None:
    result = stats(("lucky", 3, 3, 3), ("proven", 100, 70, 40))
    assert not result["lucky"].recommended
    assert "needs 30 sends" in result["lucky"].why
    # One template with enough sends has nothing to be compared with.
    assert recommended(result) == []
    assert "no other template" in result["proven"].why


def test_the_clearly_better_proven_template_wins_over_a_lucky_one() -> None:
    result = stats(("lucky", 3, 3, 3), ("proven", 100, 70, 40), ("weak", 100, 60, 10))
    assert recommended(result) == ["proven"]
    assert result["proven"].why.startswith("Recommended: over 100 sends its reply rate")
    assert "30.9%" in result["proven"].why
    assert "Another template" in result["weak"].why


def test_a_close_race_crowns_nobody() -> None:
    # 40% vs 35%: the leader's lower bound (30.9%) does not clear 35%.
    result = stats(("a", 100, 60, 40), ("b", 100, 60, 35))
    assert recommended(result) == []
    assert "no template's reply rate is clearly higher" in result["a"].why


def test_equal_templates_crown_nobody() -> None:
    assert recommended(stats(("a", 200, 100, 60), ("b", 200, 100, 60))) == []
    for sent in (MIN_SENT, 40, 50, 99, 1000):
        assert recommended(stats(("a", sent, 0, 0), ("b", sent, 0, 0))) == []


def test_reply_rate_decides_once_there_are_enough_replies() -> None:
    # "opens" is opened far more, but "replies" gets the answers.
    result = stats(("opens", 200, 180, 10), ("replies", 200, 60, 50))
    assert recommended(result) == ["replies"]


def test_open_rate_stands_in_while_replies_are_too_few() -> None:
    result = stats(("a", 50, 40, 1), ("b", 50, 15, 2), ("small", 10, 1, 9))
    assert recommended(result) == ["a"]
    assert "open rate" in result["a"].why
    assert "Replies are still too few" in result["a"].why


def test_replies_of_templates_without_enough_sends_do_not_pick_the_metric() -> None:
    # Nine replies on a 10-send template must not switch the proven ones to reply rate.
    result = stats(("a", 60, 50, 1), ("b", 60, 10, 3), ("small", 10, 9, 9))
    assert "open rate" in result["a"].why


@pytest.mark.parametrize("seed", range(20))
def test_at_most_one_is_recommended_and_only_with_evidence(seed: int) -> None:
    rng = random.Random(seed)
    rows = []
    for i in range(rng.randint(1, 8)):
        sent = rng.choice([0, 3, 20, MIN_SENT, 80, 500])
        opened = rng.randint(0, sent)
        rows.append((f"t{i}", sent, opened, rng.randint(0, opened)))
    result = stats(*rows)
    winners = [s for s in result.values() if s.recommended]
    assert len(winners) <= 1
    for winner in winners:
        assert winner.sent >= MIN_SENT
        metric = choose_metric(result.values())
        low = winner.low(metric)
        assert low is not None
        others = [s for s in result.values() if s is not winner and s.sent >= MIN_SENT]
        assert others
        assert all(low > (s.rate(metric) or 0.0) for s in others)


def test_stats_keep_the_input_order_and_serialise() -> None:
    result = template_stats([TemplateCounts("b", 1, 1, 0), TemplateCounts("a", 0, 0, 0)])
    assert [s.template_id for s in result] == ["b", "a"]
    assert set(result[0].to_json()) == {
        "template_id",
        "sent",
        "opened",
        "replied",
        "open_rate",
        "reply_rate",
        "open_rate_low",
        "reply_rate_low",
        "recommended",
        "why",
    }


ROWS: list[dict[str, Any]] = [
    {
        "id": 1,
        "name": "beta",
        "sent": 10,
        "reply_rate": 0.2,
        "recommended": False,
        "created_at": "2026-01-03",
    },
    {
        "id": 2,
        "name": "Alpha",
        "sent": 10,
        "reply_rate": None,
        "recommended": False,
        "created_at": "2026-01-01",
    },
    {
        "id": 3,
        "name": "gamma",
        "sent": 0,
        "reply_rate": None,
        "recommended": False,
        "created_at": "2026-01-02",
    },
    {
        "id": 4,
        "name": "alpha",
        "sent": 10,
        "reply_rate": 0.2,
        "recommended": True,
        "created_at": None,
    },
    {
        "id": 5,
        "name": "delta",
        "sent": 50,
        "reply_rate": 0.5,
        "recommended": False,
        "created_at": "2026-01-05",
    },
]


def ids(key: str, order: str) -> list[int]:
    return [row["id"] for row in sort_templates(ROWS, key, order)]


@pytest.mark.parametrize(
    ("key", "order", "expected"),
    [
        # None last either way; ties by name (case-insensitive), then input order.
        ("reply_rate", "desc", [5, 4, 1, 2, 3]),
        ("reply_rate", "asc", [4, 1, 5, 2, 3]),
        ("sent", "desc", [5, 2, 4, 1, 3]),
        ("sent", "asc", [3, 2, 4, 1, 5]),
        ("recommended", "desc", [4, 2, 1, 5, 3]),
        ("name", "asc", [2, 4, 1, 5, 3]),
        ("name", "desc", [3, 5, 1, 2, 4]),
        ("created_at", "desc", [5, 1, 3, 2, 4]),
        ("created_at", "asc", [2, 3, 1, 5, 4]),
    ],
)
def test_sort_templates(key: str, order: str, expected: list[int]) -> None:
    assert ids(key, order) == expected


def test_sort_does_not_change_its_input() -> None:
    before = [row["id"] for row in ROWS]
    sort_templates(ROWS, "sent", "desc")
    assert [row["id"] for row in ROWS] == before


@pytest.mark.parametrize(
    ("key", "order", "field"), [("opens", "desc", "sort"), ("sent", "up", "order")]
)
def test_bad_sort_parameters_name_the_field(key: str, order: str, field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        sort_templates(ROWS, key, order)
    assert caught.value.field == field
