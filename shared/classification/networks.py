"""Known source networks: security scanners, privacy proxies and clouds, from data files the
project ships (``shared/data/networks/*.json``, one file per published list) and a lookup that
answers for the truncated addresses events store.

Events keep only the /24 (IPv4) or /48 (IPv6) network of a client, so most published ranges
become plain dictionary keys; ranges wider than that go to a sorted interval table. A range
narrower than the stored network marks its whole /24 or /48 (the match says ``partial``).

``python -m shared.classification.networks refresh [--from SOURCE ...]`` downloads the lists
that vendors publish in a machine-readable form and rewrites their files; the curated files
(Barracuda, Mimecast, Proofpoint, Apple's /8) have no such list and are left alone.
"""

from __future__ import annotations

import argparse
import csv
import io
import ipaddress
import json
import logging
import os
import re
import tempfile
import urllib.request
import uuid
from bisect import bisect_right
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, cast

logger = logging.getLogger(__name__)

DATA_DIR = Path(__file__).resolve().parent / "data" / "networks"
NetworkKind = Literal["scanner", "privacy_proxy", "cloud"]
Certainty = Literal["certain", "probable"]
_KINDS = ("scanner", "privacy_proxy", "cloud")
_CERTAINTIES = ("certain", "probable")
_V4_KEY, _V6_KEY = 24, 48  # what events store (shared.classification.devices.truncate_ip)
_V4_EXPAND, _V6_EXPAND = 16, 40  # ranges this narrow become dictionary keys (<= 256 each)
_V6_HOST_BITS = 128 - _V6_KEY
_DOTTED_QUAD = re.compile(
    r"(0|[1-9][0-9]{0,2})\.(0|[1-9][0-9]{0,2})\.(0|[1-9][0-9]{0,2})\.(0|[1-9][0-9]{0,2})"
)
_LOOKUP_CACHE = 1 << 16
_FETCH_TIMEOUT_SECONDS = 60
_MAX_SHRINK = 0.5  # a refreshed list under half its previous size needs --force


@dataclass(frozen=True, slots=True)
class NetworkMatch:
    """The known network an address falls in."""

    label: str
    kind: NetworkKind
    certainty: Certainty
    partial: bool  # the published range is narrower than the stored /24 or /48


@dataclass(frozen=True, slots=True)
class NetworkSource:
    """One data file: a published list and what it says about its networks."""

    label: str
    kind: NetworkKind
    certainty: Certainty
    ranges: tuple[str, ...]
    meta: dict[str, Any]


class Networks:
    """Answers which known network a truncated address belongs to. Built once per process;
    each distinct address is resolved once (the lookups are cached)."""

    def __init__(self, sources: Iterable[NetworkSource]) -> None:
        self.sources = tuple(sources)
        keyed: dict[str, tuple[int, NetworkMatch]] = {}
        wide: dict[int, list[tuple[int, int, int, NetworkMatch]]] = {4: [], 6: []}
        for source in self.sources:
            for text in source.ranges:
                network = ipaddress.ip_network(text, strict=False)
                key_len, expand = (
                    (_V4_KEY, _V4_EXPAND) if network.version == 4 else (_V6_KEY, _V6_EXPAND)
                )
                match = NetworkMatch(
                    source.label, source.kind, source.certainty, network.prefixlen > key_len
                )
                if network.prefixlen < expand:
                    start = int(network.network_address)
                    end = int(network.broadcast_address)
                    wide[network.version].append((start, end, network.prefixlen, match))
                    continue
                keys = (
                    network.subnets(new_prefix=key_len)
                    if network.prefixlen <= key_len
                    else (network.supernet(new_prefix=key_len),)
                )
                for key in keys:
                    name = str(key.network_address)
                    held = keyed.get(name)
                    if held is None or held[0] < network.prefixlen:
                        keyed[name] = (network.prefixlen, match)
        self._keyed = {name: match for name, (_, match) in keyed.items()}
        self._wide = {version: _IntervalTable(rows) for version, rows in wide.items()}
        self._cached = lru_cache(maxsize=_LOOKUP_CACHE)(self._lookup)
        self.lookup: Callable[[str], NetworkMatch | None] = self._cached

    def clear_cache(self) -> None:
        """Forget resolved addresses (benchmarks time the uncached path with it)."""
        self._cached.cache_clear()

    def __len__(self) -> int:
        return sum(len(source.ranges) for source in self.sources)

    def _lookup(self, ip: str) -> NetworkMatch | None:
        if not ip:
            return None
        found = self._keyed.get(ip)
        if found is not None:
            return found
        value = _ipv4(ip)
        if value is not None:  # the common case, without the (slow) ipaddress module
            if value & 0xFF and (found := self._keyed.get(_ipv4_key(value))) is not None:
                return found  # the caller passed a full address: match its stored network
            return self._wide[4].find(value)
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return None
        if address.version == 4:  # an unusual spelling of an IPv4 address
            return self._lookup(str(address))
        value = int(address)
        key = str(ipaddress.IPv6Address(value >> _V6_HOST_BITS << _V6_HOST_BITS))
        if key != ip and (found := self._keyed.get(key)) is not None:
            return found
        return self._wide[6].find(value)


def _ipv4(text: str) -> int | None:
    match = _DOTTED_QUAD.fullmatch(text)
    if match is None:
        return None
    a, b, c, d = map(int, match.groups())
    if a > 255 or b > 255 or c > 255 or d > 255:
        return None
    return a << 24 | b << 16 | c << 8 | d


def _ipv4_key(value: int) -> str:
    return f"{value >> 24}.{value >> 16 & 0xFF}.{value >> 8 & 0xFF}.0"


class _IntervalTable:
    """Ranges too wide to expand, searched by binary search; the most specific range wins."""

    def __init__(self, rows: list[tuple[int, int, int, NetworkMatch]]) -> None:
        rows.sort(key=lambda row: row[0])
        self._starts = [row[0] for row in rows]
        self._rows = rows
        self._reach: list[int] = []  # the furthest end of any range starting at or before i
        furthest = -1
        for _, end, _, _ in rows:
            furthest = max(furthest, end)
            self._reach.append(furthest)

    def find(self, value: int) -> NetworkMatch | None:
        best: tuple[int, NetworkMatch] | None = None
        index = bisect_right(self._starts, value) - 1
        while index >= 0 and self._reach[index] >= value:
            start, end, prefixlen, match = self._rows[index]
            if start <= value <= end and (best is None or prefixlen > best[0]):
                best = (prefixlen, match)
            index -= 1
        return best[1] if best else None


def read_source(path: Path) -> NetworkSource:
    """One data file, checked: a known kind and certainty, every range a valid network."""
    data = json.loads(path.read_text(encoding="utf-8"))
    label, kind, certainty = data.get("label"), data.get("kind"), data.get("certainty")
    if not isinstance(label, str) or not label or kind not in _KINDS:
        raise ValueError(f"{path.name}: needs a label and a kind in {_KINDS}")
    if certainty not in _CERTAINTIES:
        raise ValueError(f"{path.name}: certainty must be one of {_CERTAINTIES}")
    ranges = data.get("ranges")
    if not isinstance(ranges, list):
        raise ValueError(f"{path.name}: ranges must be a list")
    for text in ranges:
        try:
            ipaddress.ip_network(text, strict=False)
        except (TypeError, ValueError) as error:
            raise ValueError(f"{path.name}: bad range {text!r}") from error
    meta = {k: v for k, v in data.items() if k not in ("label", "kind", "certainty", "ranges")}
    return NetworkSource(
        label, cast(NetworkKind, kind), cast(Certainty, certainty), tuple(ranges), meta
    )


def load_networks(directory: Path = DATA_DIR) -> Networks:
    """The lookup built from every data file in `directory`."""
    return Networks(read_source(path) for path in sorted(directory.glob("*.json")))


@lru_cache(maxsize=1)
def default_networks() -> Networks:
    """The shipped networks, loaded once per process."""
    return load_networks()


# Refresh: the machine-readable lists, how to read them, and rewriting the data files.

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
    """`python -m shared.classification.networks refresh`: rewrite the refreshable data files."""
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
