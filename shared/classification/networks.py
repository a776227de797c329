"""Known source networks: security scanners, privacy proxies and clouds, from data files the
project ships (``data/networks/*.json`` beside this module, one file per published list)
and a lookup that answers for the truncated addresses events store.

Events keep only the /24 (IPv4) or /48 (IPv6) network of a client, so most published ranges
become plain dictionary keys; ranges wider than that go to a sorted interval table. A range
narrower than the stored network marks its whole /24 or /48 (the match says ``partial``).

Refreshing the files from vendors' published feeds is shared.classification.feeds.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
from bisect import bisect_right
from collections.abc import Callable, Iterable
from dataclasses import dataclass
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
