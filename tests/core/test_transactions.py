"""shared.core.transactions on Azurite: the SDK's body, rows and errors, by comparison with
`submit_transaction` on a twin partition."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import pytest
from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError
from azure.data.tables import EdmType, EntityProperty, TableTransactionError, UpdateMode
from azure.data.tables.aio import TableClient

from shared.core.services import Services
from shared.core.transactions import submit

Ops = list[tuple[Any, ...]]
Etags = dict[str, str]

TYPED: dict[str, Any] = {
    "text": "Grüße, 'quoted' \"and\" {braced}",
    "small": 7,
    "big": EntityProperty(2**40 + 3, EdmType.INT64),
    "flag": True,
    "ratio": 1.25,
    "at": datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC),
    "blob": b"\x00\xffbytes",
    "guid": UUID("12345678-1234-5678-1234-567812345678"),
    "nothing": None,
}
OLD: dict[str, Any] = {"text": "old", "kept": 41, "small": 1}


@pytest.fixture
async def table(services: Services) -> TableClient:
    return await services.store.table_service.create_table_if_not_exists("transactions")


def partitions() -> tuple[str, str]:
    """Twin partitions: the SDK's and ours."""
    run = uuid4().hex[:12]
    return f"sdk-{run}", f"ours-{run}"


async def seed(table: TableClient, pk: str, rows: dict[str, dict[str, Any]]) -> Etags:
    etags = {}
    for rk, props in rows.items():
        meta = await table.upsert_entity({"PartitionKey": pk, "RowKey": rk, **props})
        etags[rk] = meta["etag"]
    return etags


async def rows(table: TableClient, pk: str) -> dict[str, dict[str, Any]]:
    """Each row's properties without the partition key (which differs between the twins)."""
    found = {}
    async for entity in table.query_entities("PartitionKey eq @pk", parameters={"pk": pk}):
        found[entity["RowKey"]] = {k: v for k, v in entity.items() if k != "PartitionKey"}
    return found


async def twins(
    table: TableClient,
    build: Callable[[str, Etags], Ops],
    seeded: dict[str, dict[str, Any]] | None = None,
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """The rows after the SDK's submit_transaction and after ours, of the same operations."""
    sdk, ours = partitions()
    sdk_etags = await seed(table, sdk, seeded or {})
    ours_etags = await seed(table, ours, seeded or {})
    await table.submit_transaction(build(sdk, sdk_etags))
    await submit(table, build(ours, ours_etags))
    return await rows(table, sdk), await rows(table, ours)


def entity(pk: str, rk: str, **props: Any) -> dict[str, Any]:
    return {"PartitionKey": pk, "RowKey": rk, **props}


IF_NOT_MODIFIED = MatchConditions.IfNotModified
OPERATIONS: dict[str, Callable[[str, Etags], Ops]] = {
    "create": lambda pk, _: [("create", entity(pk, "new", **TYPED))],
    "upsert merge": lambda pk, _: [("upsert", entity(pk, "a", **TYPED))],
    "upsert merge new": lambda pk, _: [("upsert", entity(pk, "new", **TYPED))],
    "upsert replace": lambda pk, _: [
        ("upsert", entity(pk, "a", **TYPED), {"mode": UpdateMode.REPLACE})
    ],
    "update merge": lambda pk, _: [("update", entity(pk, "a", **TYPED))],
    "update replace": lambda pk, _: [
        ("update", entity(pk, "a", **TYPED), {"mode": UpdateMode.REPLACE})
    ],
    "update merge with etag": lambda pk, etags: [
        (
            "update",
            entity(pk, "a", **TYPED),
            {"etag": etags["a"], "match_condition": IF_NOT_MODIFIED},
        )
    ],
    "update replace with etag": lambda pk, etags: [
        (
            "update",
            entity(pk, "a", **TYPED),
            {"mode": "replace", "etag": etags["a"], "match_condition": IF_NOT_MODIFIED},
        )
    ],
    "delete": lambda pk, _: [("delete", entity(pk, "a"))],
    "delete with etag": lambda pk, etags: [
        ("delete", entity(pk, "a"), {"etag": etags["a"], "match_condition": IF_NOT_MODIFIED})
    ],
    "mixed": lambda pk, etags: [
        ("create", entity(pk, "new", **TYPED)),
        ("upsert", entity(pk, "a", extra="x")),
        ("update", entity(pk, "b", small=2), {"mode": UpdateMode.REPLACE}),
        ("delete", entity(pk, "c"), {"etag": etags["c"], "match_condition": IF_NOT_MODIFIED}),
    ],
}


@pytest.mark.parametrize("name", OPERATIONS)
async def test_rows_after_submit_are_the_sdks(table: TableClient, name: str) -> None:
    seeded = {"a": OLD, "b": OLD, "c": OLD}
    sdk, ours = await twins(table, OPERATIONS[name], seeded)
    assert ours == sdk
    assert sdk != seeded  # the operation did something


async def test_a_hundred_operations(table: TableClient) -> None:
    def build(pk: str, _: Etags) -> Ops:
        return [("upsert", entity(pk, f"r{i:03}", n=i, **TYPED)) for i in range(100)]

    sdk, ours = await twins(table, build)
    assert len(ours) == 100 and ours == sdk


class Captured(Exception):
    """Stops a request in the pipeline once its headers and body are seen."""


def capture(request: Any) -> None:
    raise Captured(dict(request.http_request.headers), request.http_request.content)


def normalized(headers: dict[str, str], body: bytes) -> tuple[dict[str, str], str]:
    text = body.decode()
    text = re.sub(r"(batch|changeset)_[0-9a-f-]{36}", r"\1_X", text)
    text = re.sub(r"\r\n(x-ms-date|Date): [^\r]+", r"\r\n\1: X", text)
    volatile = {"x-ms-client-request-id", "x-ms-date", "date", "authorization", "content-type"}
    kept = {k.lower(): v for k, v in headers.items() if k.lower() not in volatile}
    kept["content-type"] = re.sub(r"batch_[0-9a-f-]{36}", "batch_X", headers["Content-Type"])
    return kept, text


async def test_the_request_is_the_sdks_byte_for_byte(table: TableClient) -> None:
    pk = f"p'{uuid4().hex[:8]}"
    etag = "W/\"datetime'2024-05-06T07%3A08%3A09.1234567Z'\""
    operations: Ops = [
        ("create", entity(pk, "r'1 /é?", **TYPED)),
        ("upsert", entity(pk, "r2", **TYPED), {"mode": UpdateMode.REPLACE}),
        ("upsert", entity(pk, "r3", n=1)),
        ("update", entity(pk, "r4", **TYPED), {"etag": etag, "match_condition": IF_NOT_MODIFIED}),
        ("update", entity(pk, "r5", n=1), {"mode": UpdateMode.REPLACE}),
        ("delete", entity(pk, "r6"), {"etag": etag, "match_condition": IF_NOT_MODIFIED}),
        ("delete", entity(pk, "r7")),
    ]
    with pytest.raises(Captured) as sdk:
        await table.submit_transaction(operations, raw_request_hook=capture)
    with pytest.raises(Captured) as ours:
        await submit(table, operations, raw_request_hook=capture)
    assert normalized(*ours.value.args) == normalized(*sdk.value.args)


FAILURES: dict[str, Callable[[str, Etags], Ops]] = {
    "create of an existing row": lambda pk, _: [
        ("upsert", entity(pk, "new", n=1)),
        ("create", entity(pk, "a", n=2)),
    ],
    "update with a stale etag": lambda pk, etags: [
        ("upsert", entity(pk, "new", n=1)),
        ("delete", entity(pk, "b")),
        (
            "update",
            entity(pk, "a", n=2),
            {"etag": etags["stale"], "match_condition": IF_NOT_MODIFIED},
        ),
    ],
    "delete of a missing row": lambda pk, _: [
        ("create", entity(pk, "new", n=1)),
        ("upsert", entity(pk, "a", n=3)),
        ("delete", entity(pk, "missing")),
    ],
}


@pytest.mark.parametrize("name", FAILURES)
async def test_a_failed_operation_raises_what_the_sdk_raises_and_writes_nothing(
    table: TableClient, name: str
) -> None:
    build = FAILURES[name]
    sdk, ours = partitions()
    found = {}
    for pk, send in ((sdk, table.submit_transaction), (ours, lambda ops: submit(table, ops))):
        etags = await seed(table, pk, {"a": OLD, "b": OLD})
        etags["stale"] = etags["a"]
        await seed(table, pk, {"a": {"kept": 42}})
        before = await rows(table, pk)
        with pytest.raises(TableTransactionError) as raised:
            await send(build(pk, etags))
        assert await rows(table, pk) == before  # atomic
        found[pk] = raised.value
    expected, actual = found[sdk], found[ours]
    assert (type(actual), actual.index, actual.error_code, actual.status_code) == (
        type(expected),
        expected.index,
        expected.error_code,
        expected.status_code,
    )
    assert actual.index > 0


async def raised_by_both(table: TableClient, operations: Ops) -> tuple[Any, Any]:
    """What the SDK's submit_transaction raises, and what ours does."""
    with pytest.raises(HttpResponseError) as sdk:
        await table.submit_transaction(operations)
    with pytest.raises(HttpResponseError) as ours:
        await submit(table, operations)
    return sdk.value, ours.value


async def test_a_missing_table_raises_what_the_sdk_raises(services: Services) -> None:
    table = services.store.table_service.get_table_client(f"missing{uuid4().hex[:8]}")
    sdk, ours = await raised_by_both(table, [("upsert", entity("p", "r", n=1))])
    assert isinstance(ours, TableTransactionError) and ours.error_code == "TableNotFound"
    assert (type(ours), ours.error_code, ours.status_code, ours.index) == (
        type(sdk),
        sdk.error_code,
        sdk.status_code,
        sdk.index,
    )


async def test_a_rejected_batch_raises_what_the_sdk_raises(connection_string: str) -> None:
    """A whole answer other than 202 (here a wrong account key) goes through _decode_error."""
    wrong = re.sub(r"AccountKey=[^;]+", "AccountKey=" + "A" * 86 + "==", connection_string)
    async with TableClient.from_connection_string(wrong, "transactions") as table:
        sdk, ours = await raised_by_both(table, [("upsert", entity("p", "r", n=1))])
    assert not isinstance(ours, TableTransactionError)
    assert (type(ours), ours.error_code, ours.status_code) == (
        type(sdk),
        sdk.error_code,
        sdk.status_code,
    )


async def test_more_than_a_hundred_or_two_partitions_are_refused(table: TableClient) -> None:
    with pytest.raises(ValueError, match="at most 100"):
        await submit(table, [("upsert", entity("p", f"r{i}")) for i in range(101)])
    with pytest.raises(ValueError, match="Partition Keys"):
        await submit(table, [("upsert", entity("p", "r")), ("upsert", entity("q", "r"))])
    with pytest.raises(ValueError, match="Unrecognized operation"):
        await submit(table, [("insert", entity("p", "r"))])
    await submit(table, [])  # nothing to do


@pytest.mark.parametrize(
    "text",
    [
        "",
        "abc-DEF_0.9~",
        "seller|2026-12",
        "a b",
        "it''s",
        "slash/and?query#frag",
        "é ünïcode",
        "%41",
        "".join(chr(c) for c in range(32, 127)),
    ],
)
def test_keys_are_quoted_as_urllib_quotes_them(text: str) -> None:
    from urllib.parse import quote

    from shared.core.transactions import _quote

    assert _quote(text) == quote(text, safe="")
