"""Alerts pushed to a seller's own webhook: configured per seller, signed, retried with
backoff, delivered by the alert timer (never by a tracking request).

Rows of the `webhooks` table: PartitionKey "config", RowKey the seller's key, holds the URL
and signing secret; PartitionKey "pending", RowKey "{seller key}|{alert id}", is one
delivery still to make. The pending row is written before its alert, so a crash between
the two cannot lose a delivery, and it is keyed by the alert so it is never made twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import ipaddress
import json
import logging
import secrets
import socket
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from azure.core.exceptions import (
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.data.tables import UpdateMode

from shared.assistant.views import alert_view
from shared.core.errors import InvalidInput, NotFound
from shared.core.storage import Store, update_if_unchanged

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Engagement-Signature"
# Waits after the first, second, ... failed attempt; after the last one the alert is marked
# as not delivered (it is still listed by the API).
BACKOFF = (
    timedelta(seconds=30),
    timedelta(minutes=2),
    timedelta(minutes=10),
    timedelta(hours=1),
    timedelta(hours=6),
)
MAX_ATTEMPTS = len(BACKOFF) + 1
_LEASE = timedelta(seconds=60)
_ORPHAN_AFTER = timedelta(hours=1)
_TIMEOUT = aiohttp.ClientTimeout(total=10)
_CONFIG_TTL = 30.0  # seconds a worker trusts its copy of a seller's webhook setting
_ENQUEUE_WRITES = 16  # alerts queued at once for one seller
_configs: dict[str, tuple[float, dict[str, Any] | None]] = {}


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    delivered: int
    retrying: int
    failed: int


def check_url(url: str, *, local: bool) -> str:
    """A webhook URL we are willing to call: https with a public host name (http is allowed
    for localhost in local development only); no credentials in it."""
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").lower()
    if parts.username or parts.password:
        raise InvalidInput("url", "must not carry credentials")
    loopback = host in ("localhost", "127.0.0.1", "::1")
    if parts.scheme != "https" and not (local and parts.scheme == "http" and loopback):
        raise InvalidInput("url", "must be an https URL")
    if not host:
        raise InvalidInput("url", "must name a host")
    if not local:
        with contextlib.suppress(ValueError):
            if not ipaddress.ip_address(host).is_global:
                raise InvalidInput("url", "must not point at a private or loopback address")
        if loopback or host.endswith((".local", ".internal", ".localhost")):
            raise InvalidInput("url", "must not point at a private or loopback address")
    return parts.geturl()


class PrivateAddress(OSError):
    """The webhook's host resolved to no public address."""


class PublicAddressesOnly(AbstractResolver):
    """Resolves as usual (or with `inner`), then keeps only public addresses: the check is
    on the addresses the connection is made to, not on the name."""

    def __init__(self, inner: AbstractResolver | None = None) -> None:
        self._inner = inner or aiohttp.DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await self._inner.resolve(host, port, family)
        public = [r for r in found if ipaddress.ip_address(r["host"]).is_global]
        if not public:
            raise PrivateAddress("the webhook's host resolves to no public address")
        return public

    async def close(self) -> None:
        await self._inner.close()


async def configure(store: Store, seller_key: str, url: str, *, local: bool) -> dict[str, Any]:
    """Set (or replace) the seller's webhook; the answer carries the signing secret, which
    is shown this once."""
    checked = check_url(url, local=local)
    row = {
        "PartitionKey": "config",
        "RowKey": seller_key,
        "url": checked,
        "secret": secrets.token_urlsafe(32),
    }
    await store.webhooks.upsert_entity(row, mode=UpdateMode.REPLACE)
    _configs[seller_key] = (time.monotonic(), row)
    return {"url": checked, "secret": row["secret"], "signature_header": SIGNATURE_HEADER}


async def read(store: Store, seller_key: str) -> dict[str, Any]:
    """The seller's webhook URL (never the secret)."""
    config = await _config(store, seller_key, fresh=True)
    if config is None:
        raise NotFound("webhook")
    return {"url": config["url"], "signature_header": SIGNATURE_HEADER}


async def remove(store: Store, seller_key: str) -> None:
    """Stop pushing alerts; deliveries still queued are dropped by the next cycle."""
    with contextlib.suppress(ResourceNotFoundError):
        await store.webhooks.delete_entity("config", seller_key)
    _configs[seller_key] = (time.monotonic(), None)


async def _config(store: Store, seller_key: str, *, fresh: bool = False) -> dict[str, Any] | None:
    cached = _configs.get(seller_key)
    if cached and not fresh and time.monotonic() - cached[0] < _CONFIG_TTL:
        return cached[1]
    try:
        config: dict[str, Any] | None = dict(await store.webhooks.get_entity("config", seller_key))
    except ResourceNotFoundError:
        config = None
    _configs[seller_key] = (time.monotonic(), config)
    return config


async def enqueue(store: Store, seller_key: str, alert_id: str) -> None:
    """Queue the alert for the seller's webhook, if they have one (idempotent)."""
    await enqueue_all(store, seller_key, [alert_id])


async def enqueue_all(store: Store, seller_key: str, alert_ids: list[str]) -> None:
    """Queue these alerts for the seller's webhook, if they have one (idempotent: one queued
    already, by a racing cycle, is left as it is), 16 writes at once."""
    if not alert_ids or await _config(store, seller_key) is None:
        return
    writes = asyncio.Semaphore(_ENQUEUE_WRITES)

    async def one(alert_id: str) -> None:
        async with writes:
            with contextlib.suppress(ResourceExistsError):
                await store.webhooks.create_entity(
                    {
                        "PartitionKey": "pending",
                        "RowKey": f"{seller_key}|{alert_id}",
                        "attempts": 0,
                        "queued_at": datetime.now(UTC).isoformat(),
                        "next_at": "",
                        "lease_until": "",
                    }
                )

    await asyncio.gather(*map(one, alert_ids))


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """`t=<unix time>,v1=<hex HMAC-SHA256 of "<t>." + body>`: the receiver recomputes it
    with its copy of the secret and rejects old timestamps, so a replayed call is refused."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def payload(alert: dict[str, Any]) -> bytes:
    """What the webhook receives: the alert as the API lists it (a withdrawn first-open
    alert comes again, with `withdrawn` saying why)."""
    return json.dumps(alert_view(alert), separators=(",", ":")).encode()


async def _claim(store: Store, row: Any, now: datetime) -> bool:
    """Take a delivery for this cycle (a doubled cycle skips it)."""
    try:
        await update_if_unchanged(
            store.webhooks,
            {
                "PartitionKey": "pending",
                "RowKey": row["RowKey"],
                "lease_until": (now + _LEASE).isoformat(),
            },
            row.metadata["etag"],
        )
    except (ResourceModifiedError, ResourceNotFoundError):
        return False
    return True


async def _post(session: aiohttp.ClientSession, url: str, secret: str, body: bytes) -> str:
    """'' when the receiver took it (2xx), else a short reason."""
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: sign(secret, int(time.time()), body),
        "User-Agent": "email-engagement-webhook/1",
    }
    try:
        async with session.post(url, data=body, headers=headers, allow_redirects=False) as answer:
            return "" if 200 <= answer.status < 300 else f"HTTP {answer.status}"
    except aiohttp.ClientConnectorError as exc:
        return "no public address" if isinstance(exc.os_error, PrivateAddress) else "connect"
    except (aiohttp.ClientError, TimeoutError) as exc:
        return type(exc).__name__


async def _drop(store: Store, row_key: str) -> None:
    with contextlib.suppress(ResourceNotFoundError):
        await store.webhooks.delete_entity("pending", row_key)


async def _finish(store: Store, seller_key: str, alert_id: str, outcome: str) -> None:
    with contextlib.suppress(ResourceNotFoundError):
        await store.alerts.update_entity(
            {"PartitionKey": seller_key, "RowKey": alert_id, "webhook": outcome},
            mode=UpdateMode.MERGE,
        )
    await _drop(store, f"{seller_key}|{alert_id}")


def _session(local: bool, resolver: AbstractResolver | None) -> aiohttp.ClientSession:
    if local:  # a laptop's own receiver on 127.0.0.1 is the point there
        return aiohttp.ClientSession(timeout=_TIMEOUT)
    connector = aiohttp.TCPConnector(resolver=PublicAddressesOnly(resolver), use_dns_cache=False)
    return aiohttp.ClientSession(timeout=_TIMEOUT, connector=connector)


def _allowed(url: str, local: bool) -> bool:
    try:
        check_url(url, local=local)
    except InvalidInput:
        return False
    return True


async def delivery_cycle(
    store: Store, now: datetime, *, local: bool, resolver: AbstractResolver | None = None
) -> DeliveryReport:
    """Post every queued alert that is due; failures wait (BACKOFF) and are tried again.
    Outside local development only public addresses are reached (`resolver` stands in for
    DNS in tests)."""
    delivered = retrying = failed = 0
    due = [
        row
        async for row in store.webhooks.query_entities("PartitionKey eq 'pending'")
        if (not row["next_at"] or datetime.fromisoformat(row["next_at"]) <= now)
        and (not row["lease_until"] or datetime.fromisoformat(row["lease_until"]) <= now)
    ]
    if not due:
        return DeliveryReport(0, 0, 0)
    async with _session(local, resolver) as session:
        for row in due:
            seller_key, _, alert_id = row["RowKey"].partition("|")
            config = await _config(store, seller_key)
            try:
                alert = await store.alerts.get_entity(seller_key, alert_id)
            except ResourceNotFoundError:
                alert = None  # the pending row is written first: the alert may be coming
            settled = alert is not None and alert.get("webhook")
            orphan = (
                alert is None and now - datetime.fromisoformat(row["queued_at"]) > _ORPHAN_AFTER
            )
            if config is None or settled or orphan:  # no webhook now, done, or never alerted
                await _drop(store, row["RowKey"])
                continue
            if alert is None:
                continue  # the pending row is written first: the alert may be coming
            if not await _claim(store, row, now):
                continue
            reason = (
                await _post(session, config["url"], config["secret"], payload(dict(alert)))
                if _allowed(config["url"], local)
                else "address not allowed"
            )
            attempts = int(row["attempts"]) + 1
            if not reason:
                delivered += 1
                await _finish(store, seller_key, alert_id, "delivered")
            elif attempts >= MAX_ATTEMPTS:
                failed += 1
                logger.warning("webhook gave up after %s attempts: %s", attempts, reason)
                await _finish(store, seller_key, alert_id, "failed")
            else:
                retrying += 1
                await store.webhooks.update_entity(
                    {
                        "PartitionKey": "pending",
                        "RowKey": row["RowKey"],
                        "attempts": attempts,
                        "next_at": (now + BACKOFF[attempts - 1]).isoformat(),
                        "lease_until": "",
                        "last_error": reason,
                    },
                    mode=UpdateMode.MERGE,
                )
    return DeliveryReport(delivered, retrying, failed)
