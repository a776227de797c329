"""Command line: `python -m shared.ops.cli dev-token EMAIL | fold | init-storage |
migrate-identities | build-list-index | build-timeline-index | build-record-search ...`."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

from shared.bootstrap import build_services
from shared.core.auth import ADMIN_ROLE, make_dev_token
from shared.core.settings import get_settings
from shared.core.storage import ensure_storage
from shared.crm import search
from shared.engagement.fold import fold_cycle
from shared.messages.dispatch import dispatch_cycle
from shared.ops import identities, list_index_build, timeline_index_build
from shared.outlook import mailboxes


async def _run(args: argparse.Namespace) -> None:
    """One cycle of a timer's work, now, printed as JSON."""
    services = build_services(get_settings())
    try:
        await ensure_storage(services.store)
        result: Any
        if args.command == "fold":
            result = dataclasses.asdict(await fold_cycle(services, grace=services.grace))
        elif args.command == "enrol":
            result = await mailboxes.enrol(services, args.email, args.folder)
        elif args.command == "dispatch":
            result = dataclasses.asdict(await dispatch_cycle(services))
        elif args.command == "migrate-identities":
            keys = (
                identities.read_map(args.map)
                if args.map
                else identities.dev_map(await identities.seller_addresses(services.store))
            )
            result = dataclasses.asdict(await identities.migrate(services, keys))
        elif args.command == "build-timeline-index":
            result = dataclasses.asdict(await timeline_index_build.build(services))
        elif args.command == "build-record-search":
            result = {"records": await search.reindex_all(services)}
        elif args.command == "build-list-index":
            built = await list_index_build.build(services.store, _progress)
            result = dataclasses.asdict(built)
        else:
            from shared.outlook.sync import sync_cycle

            reports = await sync_cycle(services, retry=args.command == "retry")
            result = [dataclasses.asdict(r) for r in reports]
        print(json.dumps(result, indent=2, default=str))
    finally:
        await services.close()


def _progress(report: list_index_build.BuildReport, partition: str) -> None:
    print(
        f"partition {partition}: {report.messages:,} messages read in {report.partitions:,} "
        f"partitions, {report.indexed:,} indexed, {report.already:,} already, "
        f"{report.unowned:,} without an owner",
        file=sys.stderr,
        flush=True,
    )


async def _init_storage() -> None:
    services = build_services(get_settings())
    try:
        await ensure_storage(services.store)
    finally:
        await services.store.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m shared.ops.cli")
    commands = parser.add_subparsers(dest="command", required=True)
    token = commands.add_parser("dev-token", help="print a development bearer token for a seller")
    token.add_argument("email")
    token.add_argument("--hours", type=int, default=12)
    token.add_argument("--admin", action="store_true", help="with the admin app role")
    token.add_argument(
        "--object-id",
        help="the seller's id (a GUID); by default one made from the address, always the same",
    )
    commands.add_parser("fold", help="run one fold cycle now")
    enrol = commands.add_parser("enrol", help="enrol a seller's mailbox")
    enrol.add_argument("email")
    enrol.add_argument("--folder", action="append", default=[], help="a folder to track")
    commands.add_parser("sync", help="run one mailbox sync cycle now")
    commands.add_parser("retry", help="retry failed items now")
    commands.add_parser("dispatch", help="hand over scheduled mail that is due now")
    commands.add_parser("init-storage", help="create the containers and tables")
    migration = commands.add_parser(
        "migrate-identities",
        help="key data written before sellers had ids by their Entra id (docs/admin.md)",
    )
    source = migration.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--map", type=Path, help="CSV file with the columns email, tenant_id, object_id"
    )
    source.add_argument(
        "--dev", action="store_true", help="the development ids of `dev-token` (local data)"
    )
    commands.add_parser(
        "build-timeline-index",
        help="index existing activities and sent mail for record timelines (docs/admin.md)",
    )
    commands.add_parser(
        "build-record-search",
        help="make records created before the record search findable by name and address",
    )
    commands.add_parser(
        "build-list-index",
        help="build the followed-emails list's index for existing messages (docs/admin.md)",
    )
    args = parser.parse_args(argv)
    if args.command == "dev-token":
        roles = (ADMIN_ROLE,) if args.admin else ()
        try:
            bearer = make_dev_token(
                get_settings(), args.email, hours=args.hours, roles=roles, object_id=args.object_id
            )
        except ValueError as error:
            sys.exit(f"dev-token: {error}")
        print(bearer)
    elif args.command == "init-storage":
        asyncio.run(_init_storage())
    else:
        asyncio.run(_run(args))


if __name__ == "__main__":
    main()
