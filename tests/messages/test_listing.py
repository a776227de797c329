"""The list index's keys and the list's paging over them, pure: values in string order, the
desc inversion, index operations that touch only what changed, keyset tokens."""

from __future__ import annotations

import base64
import json
import random
from datetime import UTC, datetime, timedelta, timezone

import pytest

from shared.core import list_index
from shared.core.errors import InvalidInput
from shared.core.ids import new_message_id, seller_key
from shared.messages import listing

OWNER = seller_key("tenant", "user")
OTHER = seller_key("tenant", "someone else")


def row(**columns: object) -> dict[str, object]:
    message_id = str(columns.pop("RowKey", new_message_id(OWNER)))
    base: dict[str, object] = {
        "PartitionKey": message_id[:8],
        "RowKey": message_id,
        "owner": OWNER,
        "follow_state": "followed",
        "sent_at": "",
        "last_opened_at": "",
        **dict.fromkeys(("opens", "link_clicks", "attachment_views", "replies"), 0),
    }
    return list_index.listed({**base, **columns})


@pytest.mark.parametrize("order", ["asc", "desc"])
def test_positions_sort_as_the_values_then_the_ids(order: str) -> None:
    rng = random.Random(7)
    start = datetime(2025, 3, 1, tzinfo=UTC)
    times = [""] + [
        (start + timedelta(seconds=rng.choice([0, 1, 59, 3600]) * k, microseconds=m)).isoformat()
        for k in range(8)
        for m in (0, 1, 999_999)
    ]
    ids = sorted({new_message_id(OWNER) for _ in range(6)})
    for field, values in (("sent_at", times), ("opens", [0, 1, 2, 9, 10, 11, 99, 100, 10**12])):
        pairs = [(v, i) for v in values for i in ids]
        by_key = sorted(pairs, key=lambda p: list_index.position(field, order, p[0], p[1]))
        expected = sorted(pairs, key=lambda p: (_value(field, p[0]), p[1]), reverse=order == "desc")
        assert by_key == expected


def _value(field: str, value: object) -> object:
    if field in list_index.TIME_FIELDS:
        return datetime.fromisoformat(str(value)) if value else datetime.min.replace(tzinfo=UTC)
    return int(value or 0)  # type: ignore[call-overload]


def test_times_are_compared_as_times_whatever_their_offset() -> None:
    utc = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    paris = utc.astimezone(timezone(timedelta(hours=1)))
    assert list_index.encode_value("sent_at", utc.isoformat()) == list_index.encode_value(
        "sent_at", paris.isoformat()
    )
    assert list_index.encode_value("sent_at", "") < list_index.encode_value("sent_at", utc)


def test_a_message_has_one_index_row_per_sort_and_order_under_its_owner_and_state() -> None:
    made = row(opens=3, follow_state="blocked")
    rows = list_index.index_rows(made)
    assert len(rows) == len(list_index.SORT_FIELDS) * 2
    for key, entity in rows.items():
        assert key.startswith(f"~{OWNER}|") and "|blocked|" in key
        assert entity == {
            "PartitionKey": made["PartitionKey"],
            "RowKey": key,
            "message": made["RowKey"],
        }
        assert key > "~" > str(made["RowKey"])  # apart from every message id
    assert list_index.index_rows({**made, "owner": ""}) == {}
    assert list_index.index_rows({**made, list_index.LISTED: None}) == {}


def test_index_operations_move_only_what_changed() -> None:
    before = row(opens=1, last_opened_at="2025-03-01T10:00:00+00:00")
    assert list_index.index_operations(before, dict(before)) == []
    after = {**before, "opens": 2, "last_opened_at": "2025-03-01T11:00:00+00:00"}
    operations = list_index.index_operations(before, after)
    assert sorted(op for op, _ in operations) == ["delete"] * 4 + ["upsert"] * 4
    touched = {entity["RowKey"].split("|")[1] for _, entity in operations}
    assert touched == {"opens", "last_opened_at"}
    assert len({entity["RowKey"] for _, entity in operations}) == len(operations)
    moved = list_index.index_operations(before, {**before, "follow_state": "blocked"})
    assert len(moved) == 24
    created = list_index.index_operations(None, before)
    assert [op for op, _ in created] == ["upsert"] * 12
    deleted = list_index.index_operations(before, None)
    assert [op for op, _ in deleted] == ["delete"] * 12
    assert list_index.create_operations(before)[0] == ("create", before)


def test_pages_merge_the_ranges_in_order_and_continue_after_the_last() -> None:
    ids = sorted(new_message_id(OWNER) for _ in range(9))
    positions = [list_index.position("opens", "desc", n % 3, i) for n, i in enumerate(ids)]
    ranges = [sorted(positions[0::2]), sorted(positions[1::2])]
    page = listing.merge([r[:5] for r in ranges], sort="opens", order="desc", limit=4)
    everything = sorted(positions)
    assert page.ids == [list_index.message_at("desc", p) for p in everything[:4]]
    assert page.continuation is not None
    after = listing.check("opens", "desc", 4, page.continuation)
    assert after == everything[3]
    rest = listing.merge(
        [[p for p in r if p > after][:5] for r in ranges], sort="opens", order="desc", limit=4
    )
    assert rest.ids == [list_index.message_at("desc", p) for p in everything[4:8]]
    last = listing.merge([[everything[-1]]], sort="opens", order="desc", limit=4)
    assert last.continuation is None


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (("subject", "desc", 5, None), "sort"),
        (("opens", "sideways", 5, None), "order"),
        (("opens", "desc", 0, None), "limit"),
        (("opens", "desc", 5, "not-a-token"), "continuation"),
    ],
)
def test_bad_list_parameters_name_the_field(
    args: tuple[str, str, int, str | None], field: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        listing.check(*args)
    assert caught.value.field == field


def _token(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


def test_tokens_of_another_ordering_or_of_the_old_list_are_refused() -> None:
    at = list_index.position("opens", "desc", 3, new_message_id(OWNER))
    token = listing.encode_continuation("opens", "desc", at)
    assert listing.check("opens", "desc", 5, token) == at
    for sort, order in (("sent_at", "desc"), ("opens", "asc")):
        with pytest.raises(InvalidInput, match="another sort order"):
            listing.check(sort, order, 5, token)
    old = _token(["opens", "desc", [3, new_message_id(OWNER)]])  # before the index
    forged = _token(["opens", "desc", "9" * 19 + "|" + "a" * 25 + "'"])
    for bad in (old, forged):
        with pytest.raises(InvalidInput) as caught:
            listing.check("opens", "desc", 5, bad)
        assert caught.value.field == "continuation"
