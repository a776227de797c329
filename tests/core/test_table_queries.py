"""shared.core.table_queries on Azurite: the SDK's requests, entities and errors, by comparison
with `query_entities` on the same rows."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.data.tables import EdmType, EntityProperty, TableEntity
from azure.data.tables.aio import TableClient

from shared.core.services import Services
from shared.core.table_queries import query
from shared.core.transactions import submit
from tests.utils.requests import Recorder

AT = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
GUID = UUID("12345678-1234-5678-1234-567812345678")
TYPED: dict[str, Any] = {
    "text": "Grüße, 'quoted' \"and\" {braced} 🙂",
    "small": 7,
    "negative": -(2**31),
    "big": EntityProperty(2**40 + 3, EdmType.INT64),
    "big_negative": EntityProperty(-(2**62), EdmType.INT64),
    "small_int64": EntityProperty(5, EdmType.INT64),
    "flag": True,
    "off": False,
    "ratio": 1.25,
    "whole": 2.0,
    "endless": float("inf"),
    "at": AT,
    "blob": b"\x00\xffbytes",
    "guid": GUID,
    "empty": "",
}
# The row keys the fold queries by: ids, here with quotes and non-ASCII characters.
KEYS = [f"r{i:02}'é" for i in range(20)]


@pytest.fixture
async def table(services: Services) -> TableClient:
    return await services.store.table_service.create_table_if_not_exists("queries")


def entity(pk: str, rk: str, **props: Any) -> dict[str, Any]:
    return {"PartitionKey": pk, "RowKey": rk, **props}


async def seed(table: TableClient, pk: str, rows: list[dict[str, Any]]) -> None:
    for start in range(0, len(rows), 100):
        await submit(table, [("upsert", row) for row in rows[start : start + 100]])


def described(entities: list[TableEntity]) -> list[tuple[Any, ...]]:
    """Everything a caller can see of the entities: values, metadata, the Python type of each
    value and the service's text of each datetime (kept for round trips)."""
    return [
        (
            dict(e),
            e.metadata,
            {k: type(v) for k, v in e.items()},
            {k: getattr(v, "tables_service_value", None) for k, v in e.items()},
            getattr(e.metadata["timestamp"], "tables_service_value", None),
        )
        for e in entities
    ]


async def collected(entities: AsyncIterator[TableEntity]) -> Any:
    """The entities as `described` shows them, or what was raised (without the request id)."""
    try:
        return described([e async for e in entities])
    except HttpResponseError as error:
        return type(error), error.error_code, error.status_code  # type: ignore[attr-defined]


async def both(table: TableClient, query_filter: str, **options: Any) -> tuple[Any, Any]:
    """What `query_entities` yields (or raises), and what `query` does."""
    sdk = await collected(table.query_entities(query_filter, **options))
    ours = await collected(query(table, query_filter, **options))
    return sdk, ours


async def test_typed_rows_read_by_ids_are_the_sdks(table: TableClient) -> None:
    pk = f"p'é{uuid4().hex[:8]}"
    await seed(table, pk, [entity(pk, rk, n=i, **TYPED) for i, rk in enumerate(KEYS)])
    names = [f"r{i}" for i in range(14)]
    wanted = " or ".join(f"RowKey eq @{n}" for n in names)
    parameters = {"pk": pk, **dict(zip(names, KEYS[3:17], strict=True))}
    sdk, ours = await both(table, f"PartitionKey eq @pk and ( {wanted} )", parameters=parameters)
    assert ours == sdk
    assert len(ours) == 14
    values, _, types, _, _ = ours[0]
    assert types["big"] is EntityProperty and values["big"].value == 2**40 + 3
    assert types["guid"] is UUID and types["blob"] is bytes and types["flag"] is bool


PARAMETERS: dict[str, tuple[str, Any]] = {
    "text with quotes": ("text", TYPED["text"]),
    "empty text": ("empty", ""),
    "int32": ("small", 7),
    "negative int32": ("negative", -(2**31)),
    "int64": ("big", 2**40 + 3),
    "float": ("ratio", 1.25),
    "bool": ("flag", True),
    "datetime": ("at", AT),
    "guid": ("guid", GUID),
    "binary": ("blob", b"\x00\xffbytes"),
}


@pytest.mark.parametrize("name", PARAMETERS)
async def test_a_parameter_of_each_type_filters_as_in_the_sdk(
    table: TableClient, name: str
) -> None:
    pk = f"p'{uuid4().hex[:8]}"
    await seed(table, pk, [entity(pk, "a", **TYPED), entity(pk, "b", text="other", small=8)])
    column, value = PARAMETERS[name]
    sdk, ours = await both(
        table, f"PartitionKey eq @pk and {column} eq @v", parameters={"pk": pk, "v": value}
    )
    assert ours == sdk
    assert [values["RowKey"] for values, *_ in ours] == ["a"]


async def test_select_and_pages_of_a_few_rows_are_the_sdks(table: TableClient) -> None:
    pk = f"p{uuid4().hex[:8]}"
    await seed(table, pk, [entity(pk, rk, n=i, **TYPED) for i, rk in enumerate(KEYS)])
    for select in (["n", "text", "at"], "n,big", None):
        sdk, ours = await both(
            table, "PartitionKey eq @pk", parameters={"pk": pk}, select=select, results_per_page=3
        )
        assert ours == sdk
        assert len(ours) == len(KEYS)


@pytest.fixture(scope="module")
async def thousands(services: Services) -> tuple[TableClient, str]:
    """A partition of 1,100 rows and its neighbours: more than one page of the service."""
    table = await services.store.table_service.create_table_if_not_exists("queries")
    run = uuid4().hex[:8]
    await seed(table, f"big{run}", [entity(f"big{run}", f"r{i:05}", n=i) for i in range(1100)])
    for neighbour in ("a", "c"):
        pk = f"big{run}{neighbour}"
        await seed(table, pk, [entity(pk, f"r{i}", n=i) for i in range(3)])
    return table, f"big{run}"


async def test_more_than_a_thousand_rows_come_in_pages_as_in_the_sdk(
    thousands: tuple[TableClient, str],
) -> None:
    table, pk = thousands
    sdk, ours = await both(table, "PartitionKey eq @pk", parameters={"pk": pk})
    assert ours == sdk
    assert [values["n"] for values, *_ in ours] == list(range(1100))


async def test_pages_across_partitions_are_the_sdks(thousands: tuple[TableClient, str]) -> None:
    table, pk = thousands
    sdk, ours = await both(
        table,
        "PartitionKey ge @low and PartitionKey le @high and n lt @n",
        parameters={"low": pk, "high": pk + "z", "n": 2},
        results_per_page=1,
    )
    assert ours == sdk
    assert len({values["PartitionKey"] for values, *_ in ours}) == 3


async def test_no_rows_is_no_rows(table: TableClient) -> None:
    sdk, ours = await both(table, "PartitionKey eq @pk", parameters={"pk": uuid4().hex})
    assert ours == sdk == []


async def test_a_missing_table_raises_what_the_sdk_raises(services: Services) -> None:
    table = services.store.table_service.get_table_client(f"missing{uuid4().hex[:8]}")
    sdk, ours = await both(table, "PartitionKey eq @pk", parameters={"pk": "p"})
    assert ours == sdk
    assert issubclass(ours[0], ResourceNotFoundError) and ours[1] == "TableNotFound"


async def test_a_malformed_filter_raises_what_the_sdk_raises(table: TableClient) -> None:
    sdk, ours = await both(table, "PartitionKey eq eq 'p'")
    assert ours == sdk
    assert ours[0] is HttpResponseError


async def test_a_rejected_request_raises_what_the_sdk_raises(connection_string: str) -> None:
    wrong = re.sub(r"AccountKey=[^;]+", "AccountKey=" + "A" * 86 + "==", connection_string)
    async with TableClient.from_connection_string(wrong, "queries") as table:
        sdk, ours = await both(table, "PartitionKey eq 'p'")
    assert ours == sdk
    assert isinstance(ours, tuple) and ours[2] == 403


async def test_the_requests_are_the_sdks(thousands: tuple[TableClient, str]) -> None:
    table, pk = thousands
    query_filter = "PartitionKey eq @pk and n lt @n and RowKey ne @quoted and Timestamp gt @at"
    options: dict[str, Any] = {
        "parameters": {"pk": pk, "n": 5, "quoted": "it's é & + % ?", "at": AT},
        "select": ["n", "RowKey"],
        "results_per_page": 2,
    }
    sdk, ours = Recorder(), Recorder()
    rows = [e async for e in table.query_entities(query_filter, raw_request_hook=sdk, **options)]
    assert [e async for e in query(table, query_filter, raw_request_hook=ours, **options)] == rows
    assert len(ours.requests) == 3  # two pages of two, one of one
    assert ours.requests == sdk.requests
