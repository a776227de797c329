"""Refreshing the network data files from the lists vendors publish in a machine-readable
form: how to read each feed, and rewriting its file atomically (a list that shrank by more
than half needs --force). The curated files (Barracuda, Mimecast, Proofpoint, Apple's /8)
have no such list and are left alone.

    python -m shared.classification.feeds refresh [--from SOURCE ...]
"""

from __future__ import annotations

import argparse
import csv
import io
import ipaddress
import json
import logging
import os
import tempfile
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shared.classification.networks import (
    DATA_DIR,
    read_source,
)

logger = logging.getLogger(__name__)
_FETCH_TIMEOUT_SECONDS = 60
_MAX_SHRINK = 0.5  # a refreshed list under half its previous size needs --force

ParsedList = tuple[list[str], str]  # ranges, and the list's own version if it states one


def parse_office365(data: Any) -> ParsedList:
    """Microsoft's endpoints web service: the protection (mail filtering) endpoint sets, minus
    any range also listed for Outlook itself, where real readers' image loads come from."""
    if not isinstance(data, list):
        raise ValueError("not an Office 365 endpoints list")
    scanner: set[str] = set()
    people: set[str] = set()
    for endpoint_set in data:
        urls = set(endpoint_set.get("urls") or ())
        ips = set(endpoint_set.get("ips") or ())
        if urls & {"*.mail.protection.outlook.com", "*.protection.outlook.com"}:
            scanner |= ips
        if urls & {"outlook.office.com", "outlook.office365.com"}:
            people |= ips
    return sorted(scanner - people), ""


def _prefixes(data: Any, v4: str, v6: str) -> list[str]:
    if not isinstance(data, dict) or not isinstance(data.get("prefixes"), list):
        raise ValueError("no prefixes list")
    found: list[str] = []
    for item in data["prefixes"]:
        if isinstance(item, dict):
            value = item.get(v4) or item.get(v6)
            if isinstance(value, str):
                found.append(value)
    return found


def parse_google_prefixes(data: Any) -> ParsedList:
    """Google's range files (user-triggered fetchers, goog.json, cloud.json share a shape)."""
    version = str(data.get("creationTime") or data.get("syncToken") or "")
    return _prefixes(data, "ipv4Prefix", "ipv6Prefix"), version


def parse_aws(data: Any) -> ParsedList:
    """AWS ip-ranges.json: IPv4 and IPv6 prefixes of every service."""
    found = _prefixes(data, "ip_prefix", "ipv6_prefix")
    for item in data.get("ipv6_prefixes") or ():
        if isinstance(item, dict) and isinstance(item.get("ipv6_prefix"), str):
            found.append(item["ipv6_prefix"])
    return found, str(data.get("createDate") or data.get("syncToken") or "")


def parse_apple_egress(text: str) -> ParsedList:
    """Apple's egress-ip-ranges.csv: one range per city and row; only the range is kept."""
    return [row[0].strip() for row in csv.reader(io.StringIO(text)) if row and row[0]], ""


def collapse(ranges: Iterable[str]) -> list[str]:
    """Valid ranges merged into the fewest networks (per-city rows become a few blocks)."""
    v4: list[ipaddress.IPv4Network] = []
    v6: list[ipaddress.IPv6Network] = []
    for text in ranges:
        try:
            network = ipaddress.ip_network(text.strip(), strict=False)
        except ValueError:
            continue
        if not network.is_global:
            continue
        if isinstance(network, ipaddress.IPv4Network):
            v4.append(network)
        else:
            v6.append(network)
    return [str(n) for n in ipaddress.collapse_addresses(v4)] + [
        str(n) for n in ipaddress.collapse_addresses(v6)
    ]


@dataclass(frozen=True, slots=True)
class Feed:
    """A published list refresh knows how to read."""

    label: str
    url: str
    parse: Callable[[bytes], ParsedList]


def _json(parser: Callable[[Any], ParsedList]) -> Callable[[bytes], ParsedList]:
    return lambda raw: parser(json.loads(raw))


FEEDS = {
    feed.label: feed
    for feed in (
        Feed(
            "microsoft_eop",
            f"https://endpoints.office.com/endpoints/worldwide?clientrequestid={uuid.uuid4()}",
            _json(parse_office365),
        ),
        Feed(
            "google_image_proxy",
            "https://developers.google.com/static/crawling/ipranges/user-triggered-fetchers-google.json",
            _json(parse_google_prefixes),
        ),
        Feed(
            "apple_private_relay",
            "https://mask-api.icloud.com/egress-ip-ranges.csv",
            lambda raw: parse_apple_egress(raw.decode("utf-8")),
        ),
        Feed("cloud_aws", "https://ip-ranges.amazonaws.com/ip-ranges.json", _json(parse_aws)),
        Feed(
            "cloud_gcp", "https://www.gstatic.com/ipranges/cloud.json", _json(parse_google_prefixes)
        ),
    )
}


def detect_feed(raw: bytes) -> str:
    """Which list a downloaded document is, from its shape, for `--from` without a label."""
    text = raw.lstrip()
    if not text.startswith((b"{", b"[")):
        return "apple_private_relay"
    data = json.loads(raw)
    if isinstance(data, list):
        return "microsoft_eop"
    if "ipv6_prefixes" in data or "createDate" in data:
        return "cloud_aws"
    services = {p.get("service") for p in data.get("prefixes", ()) if isinstance(p, dict)}
    return "cloud_gcp" if "Google Cloud" in services else "google_image_proxy"


def fetch(location: str) -> bytes:
    """A list from an http(s) URL or a local file."""
    if location.startswith(("http://", "https://")):
        request = urllib.request.Request(location, headers={"User-Agent": "email-engagement"})  # noqa: S310  # scheme checked just above
        with urllib.request.urlopen(request, timeout=_FETCH_TIMEOUT_SECONDS) as response:  # noqa: S310
            return bytes(response.read())
    return Path(location).read_bytes()


@dataclass(frozen=True, slots=True)
class RefreshResult:
    """What refreshing one list did."""

    label: str
    location: str
    before: int
    after: int
    written: bool
    reason: str = ""


def refresh(
    requests: Sequence[tuple[str | None, str]],
    directory: Path = DATA_DIR,
    *,
    force: bool = False,
    today: str | None = None,
) -> list[RefreshResult]:
    """Download each (label or None, location), parse it and rewrite the label's data file.
    A list that parses to nothing, or to under half of what the file holds, is refused
    (a truncated download must not wipe a list) unless `force`."""
    stamp = today or datetime.now(UTC).date().isoformat()
    results = []
    for wanted, location in requests:
        try:
            raw = fetch(location)
            label = wanted or detect_feed(raw)
            ranges, version = FEEDS[label].parse(raw)
        except (OSError, ValueError, KeyError, UnicodeDecodeError) as error:
            results.append(RefreshResult(wanted or "?", location, 0, 0, False, repr(error)))
            continue
        ranges = collapse(ranges)
        path = directory / f"{label}.json"
        current = json.loads(path.read_text(encoding="utf-8"))
        before = len(current.get("ranges") or ())
        if not force and (not ranges or len(ranges) < before * _MAX_SHRINK):
            results.append(RefreshResult(label, location, before, len(ranges), False, "shrank"))
            continue
        current.update(
            ranges=ranges,
            retrieved=stamp,
            method="refreshed",
            version=version,
            refreshed_from=location,
        )
        _write_atomically(path, json.dumps(current, indent=2) + "\n")
        read_source(path)  # what was written must load
        results.append(RefreshResult(label, location, before, len(ranges), True))
    return results


def _write_atomically(path: Path, text: str) -> None:
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp")
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        out.write(text)
    os.replace(temporary, path)


def _request(value: str) -> tuple[str | None, str]:
    label, sep, location = value.partition("=")
    if sep and label in FEEDS:
        return label, location
    if sep and "/" not in label and ":" not in label:
        raise ValueError(f"no refreshable list called {label!r}; known: {', '.join(FEEDS)}")
    return None, value


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m shared.classification.feeds refresh`: rewrite the refreshable data files."""
    parser = argparse.ArgumentParser(prog="python -m shared.classification.networks")
    commands = parser.add_subparsers(dest="command", required=True)
    command = commands.add_parser("refresh", help="download the published lists")
    command.add_argument(
        "--from",
        dest="sources",
        action="append",
        default=[],
        metavar="[LABEL=]URL-or-file",
        help=f"read these lists instead of all defaults; LABEL is one of {', '.join(FEEDS)} "
        "(guessed from the content when left out)",
    )
    command.add_argument("--dir", type=Path, default=DATA_DIR, help="data directory")
    command.add_argument("--force", action="store_true", help="write even a much shorter list")
    args = parser.parse_args(argv)
    try:
        requests = [_request(value) for value in args.sources]
    except ValueError as error:
        parser.error(str(error))
    requests = requests or [(feed.label, feed.url) for feed in FEEDS.values()]
    failed = False
    for result in refresh(requests, args.dir, force=args.force):
        if result.written:
            print(f"{result.label}: {result.before} -> {result.after} ranges, wrote")
        elif result.reason == "shrank":
            print(
                f"{result.label}: {result.before} -> {result.after} ranges, not written "
                "(much shorter than the current list; --force to accept)"
            )
        else:
            print(f"{result.label}: not written ({result.location}: {result.reason})")
        failed |= not result.written
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
