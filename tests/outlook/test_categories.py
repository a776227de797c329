"""Category changes as the sync writes them: only ours added or taken off, names compared
without regard to case; and Retry-After as Graph sends it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

from shared.outlook.categories import CategoryChange, has_category, undeliverable_mark
from shared.outlook.category_writes import retry_after


def test_adding_ours_keeps_the_users_categories_in_their_order() -> None:
    change = CategoryChange("id", ["Hot lead", "Blue category"], add="Tracked")
    assert change.result() == ["Hot lead", "Blue category", "Tracked"]


def test_a_category_present_in_another_case_is_not_added_again() -> None:
    assert CategoryChange("id", ["tracked", "Hot lead"], add="Tracked").result() is None
    assert has_category(["TRACKED to engagement"], "Tracked to Engagement")
    assert not has_category(["Tracked to Engagement (Undeliverable)"], "Tracked to Engagement")


def test_taking_ours_off_leaves_the_rest() -> None:
    change = CategoryChange("id", ["Hot lead", "tracked"], remove="Tracked", add="Tracked (x)")
    assert change.result() == ["Hot lead", "Tracked (x)"]
    assert CategoryChange("id", ["Hot lead"], remove="Tracked").result() is None


def test_the_undeliverable_mark_names_the_tracking_category() -> None:
    assert undeliverable_mark("Tracked to Engagement") == "Tracked to Engagement (Undeliverable)"


def test_retry_after_in_seconds_or_as_a_date() -> None:
    assert retry_after({"Retry-After": "7"}) == 7.0
    assert retry_after({"retry-after": "0"}) == 0.0
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 25 <= (retry_after({"Retry-After": later}) or 0) <= 30
    assert retry_after({"Content-Type": "application/json"}) is None
    assert retry_after({"Retry-After": "soon"}) is None
    assert retry_after(None) is None
