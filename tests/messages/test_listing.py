from __future__ import annotations

import pytest

from shared.core.errors import InvalidInput
from shared.messages.listing import page


def rows(n: int) -> list[dict[str, object]]:
    return [
        {
            "RowKey": f"m{i:03d}",
            "opens": i % 4,
            "sent_at": f"2026-01-{1 + i % 28:02d}",
            "last_opened_at": "",
        }
        for i in range(n)
    ]


@pytest.mark.parametrize(
    ("sort", "order"), [("opens", "desc"), ("opens", "asc"), ("sent_at", "desc")]
)
def test_pages_cover_every_row_once_in_order(sort: str, order: str) -> None:
    data = rows(23)
    seen: list[dict[str, object]] = []
    token = None
    while True:
        result = page(data, sort=sort, order=order, limit=5, continuation=token)
        seen.extend(result.rows)
        token = result.continuation
        if token is None:
            break
    assert sorted(r["RowKey"] for r in seen) == sorted(r["RowKey"] for r in data)  # type: ignore[type-var]
    keys = [(r[sort], r["RowKey"]) for r in seen]
    assert keys == sorted(keys, reverse=order == "desc")  # type: ignore[type-var]


def test_new_rows_between_pages_do_not_shift_the_next_page() -> None:
    data = rows(10)
    first = page(data, sort="opens", order="desc", limit=4, continuation=None)
    data.insert(0, {"RowKey": "m999", "opens": 3, "sent_at": "2026-02-01"})
    second = page(data, sort="opens", order="desc", limit=4, continuation=first.continuation)
    assert not {r["RowKey"] for r in first.rows} & {r["RowKey"] for r in second.rows}


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"sort": "subject"}, "sort"),
        ({"order": "sideways"}, "order"),
        ({"limit": 0}, "limit"),
        ({"continuation": "not-a-token"}, "continuation"),
    ],
)
def test_bad_list_parameters_name_the_field(kwargs: dict[str, object], field: str) -> None:
    args: dict[str, object] = {
        "sort": "opens",
        "order": "desc",
        "limit": 5,
        "continuation": None,
        **kwargs,
    }
    with pytest.raises(InvalidInput) as caught:
        page(rows(3), **args)  # type: ignore[arg-type]
    assert caught.value.field == field


def test_continuation_made_for_another_sort_is_refused() -> None:
    token = page(rows(10), sort="opens", order="desc", limit=3, continuation=None).continuation
    with pytest.raises(InvalidInput):
        page(rows(10), sort="sent_at", order="desc", limit=3, continuation=token)
