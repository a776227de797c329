"""The services of one worker: settings, storage clients, token signer, authenticator and
delivery backend, built once and shared by the HTTP app and the timers."""

from __future__ import annotations

import asyncio
import importlib
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from shared import telemetry
from shared.auth import Authenticator
from shared.config import Settings, get_settings
from shared.delivery import DeliveryBackend, OutboxBackend, Outgoing, Receipt
from shared.org import OrgSwitch
from shared.storage import Store, build_store
from shared.tokens import TokenSigner
from shared.tracking import LinkResolver

if TYPE_CHECKING:
    from shared.graph.client import Graph


@dataclass
class Services:
    settings: Settings
    store: Store
    signer: TokenSigner
    auth: Authenticator
    delivery: DeliveryBackend
    clock: Callable[[], datetime]
    links: LinkResolver = field(init=False)
    org: OrgSwitch = field(init=False)
    _graph: Graph | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.links = LinkResolver(self.store)
        self.org = OrgSwitch(self.store)

    def graph(self) -> Graph:
        """The Graph client, built on first use: the SDK is imported only here, so the HTTP
        tracking path never pays for it."""
        if self._graph is None:
            from shared.graph.client import build_graph

            self._graph = build_graph(self.settings, self.store.blob_service)
        return self._graph

    async def close(self) -> None:
        if self._graph is not None:
            await self._graph.close()  # first: it gives its permits back through the store
        await self.store.close()

    @property
    def grace(self) -> timedelta:
        return timedelta(seconds=self.settings.fold_grace_seconds)


def utc_now() -> datetime:
    return datetime.now(UTC)


def build_services(settings: Settings, clock: Callable[[], datetime] = utc_now) -> Services:
    """Everything a worker needs, from settings alone (tests hand in a clock they control)."""
    store = build_store(settings)
    signer = TokenSigner(
        {kid: key.get_secret_value().encode("utf-8") for kid, key in settings.token_keys.items()},
        settings.token_active_kid,
    )
    services = Services(
        settings=settings,
        store=store,
        signer=signer,
        auth=Authenticator(settings),
        delivery=OutboxBackend(store, clock),
        clock=clock,
    )
    if settings.delivery_backend == "graph":
        services.delivery = _LazyGraphDelivery(services)
    return services


class _LazyGraphDelivery:
    """The Graph backend, imported on the first send: building the services (which every
    tracking request does) must not import the Graph SDK."""

    lead = timedelta(minutes=5)  # handed over early, with Exchange's deferred-send time

    def __init__(self, services: Services) -> None:
        self._services = services
        self._backend: DeliveryBackend | None = None

    async def _real(self) -> DeliveryBackend:
        if self._backend is None:
            module = await import_off_loop("shared.graph.delivery")
            self._backend = module.GraphDelivery(self._services.graph, self._services.clock)
        return self._backend

    async def deliver(self, message: Outgoing, *, send_at: datetime | None = None) -> Receipt:
        return await (await self._real()).deliver(message, send_at=send_at)

    async def cancel(self, mailbox: str, provider_id: str) -> bool:
        return await (await self._real()).cancel(mailbox, provider_id)


async def import_off_loop(name: str) -> Any:
    """Import a module in a worker thread: the Graph SDK takes seconds to import, and the
    event loop keeps serving (pixels included) meanwhile."""
    if name in sys.modules:
        return sys.modules[name]
    return await asyncio.to_thread(importlib.import_module, name)


_services: Services | None = None


def get_services() -> Services:
    """The worker's services, built on first use (clients open no connection until then)."""
    global _services
    if _services is None:
        _services = build_services(get_settings())
        telemetry.configure(_services.settings)  # once per worker: HTTP and timers come here
    return _services
