"""Command line: `python -m shared.cli dev-token EMAIL | fold | init-storage`."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json

from shared.auth import make_dev_token
from shared.config import get_settings
from shared.folding import fold_cycle
from shared.runtime import build_services
from shared.storage import ensure_storage


async def _fold() -> None:
    services = build_services(get_settings())
    try:
        report = await fold_cycle(services.store, grace=services.grace)
        print(json.dumps(dataclasses.asdict(report)))
    finally:
        await services.store.close()


async def _init_storage() -> None:
    services = build_services(get_settings())
    try:
        await ensure_storage(services.store)
    finally:
        await services.store.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m shared.cli")
    commands = parser.add_subparsers(dest="command", required=True)
    token = commands.add_parser("dev-token", help="print a development bearer token for a seller")
    token.add_argument("email")
    token.add_argument("--hours", type=int, default=12)
    commands.add_parser("fold", help="run one fold cycle now")
    commands.add_parser("init-storage", help="create the containers and tables")
    args = parser.parse_args(argv)
    if args.command == "dev-token":
        print(make_dev_token(get_settings(), args.email, hours=args.hours))
    elif args.command == "fold":
        asyncio.run(_fold())
    else:
        asyncio.run(_init_storage())


if __name__ == "__main__":
    main()
