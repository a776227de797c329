"""`python -m bench.transactions`: CPU and wall time of entity-group transactions, the SDK's
`submit_transaction` against shared.core.transactions.submit, on a fresh Azurite.

Each side commits the same 50 transactions of 100 upserts of wide rows (~2 KB of JSON
strings each), one at a time, into partitions of its own; a warm-up transaction first.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from azure.data.tables.aio import TableClient, TableServiceClient

from shared.core.transactions import submit
from tests.utils.azurite import azurite

TRANSACTIONS = 50
OPERATIONS = 100
TABLE = "benchtransactions"

Submit = Callable[[TableClient, list[tuple[Any, ...]]], Awaitable[object]]


def operations(partition: str) -> list[tuple[Any, ...]]:
    """100 upserts of rows with ten 200-character string columns (~2 KB of JSON each)."""
    return [
        (
            "upsert",
            {
                "PartitionKey": partition,
                "RowKey": f"r{row:03}",
                **{f"c{column}": f"{row:03}-{column}-" + "x" * 194 for column in range(10)},
            },
        )
        for row in range(OPERATIONS)
    ]


async def sdk_submit(table: TableClient, ops: list[tuple[Any, ...]]) -> object:
    return await table.submit_transaction(ops)


async def measure(table: TableClient, name: str, send: Submit) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of TRANSACTIONS transactions, one after the other."""
    await send(table, operations(f"{name}-warmup"))
    batches = [operations(f"{name}-{i}") for i in range(TRANSACTIONS)]
    cpu, wall = time.process_time(), time.perf_counter()
    for ops in batches:
        await send(table, ops)
    return time.process_time() - cpu, time.perf_counter() - wall


async def run(connection_string: str) -> None:
    async with TableServiceClient.from_connection_string(connection_string) as service:
        table = await service.create_table_if_not_exists(TABLE)
        sdk = await measure(table, "sdk", sdk_submit)
        ours = await measure(table, "ours", submit)
    print(f"{TRANSACTIONS} transactions of {OPERATIONS} upserts (~2 KB rows) on Azurite")
    for name, (cpu, wall) in (("submit_transaction", sdk), ("transactions.submit", ours)):
        print(f"  {name:20} CPU {cpu:6.2f} s   wall {wall:6.2f} s")
    print(f"  ratio SDK/ours       CPU {sdk[0] / ours[0]:6.1f} x   wall {sdk[1] / ours[1]:6.1f} x")


def main() -> None:
    with azurite(in_memory=True) as connection_string:
        asyncio.run(run(connection_string))


if __name__ == "__main__":
    main()
