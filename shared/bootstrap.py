"""Building a worker's services from settings: storage clients, the token signer, the
delivery backend (the Graph one imported on first send), the milestones, and the Graph
client factory. The HTTP app, the timers, the CLI and the tests all start here."""

from __future__ import annotations

import asyncio
import importlib
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from shared.core import telemetry
from shared.core.auth import Authenticator
from shared.core.services import Services
from shared.core.settings import Settings, get_settings
from shared.core.storage import Store, build_store
from shared.messages.delivery import DeliveryBackend, OutboxBackend, Outgoing, Receipt
from shared.milestones import StoredMilestones
from shared.tracking.links import LinkResolver
from shared.tracking.org_switch import OrgSwitch
from shared.tracking.tokens import TokenSigner

if TYPE_CHECKING:
    from shared.outlook.graph_client import Graph


def utc_now() -> datetime:
    return datetime.now(UTC)


def build_services(
    settings: Settings, clock: Callable[[], datetime] = utc_now, *, store: Store | None = None
) -> Services:
    """Everything a worker needs, from settings alone (tests hand in a clock they control,
    and may hand in a store of their own)."""
    store = store or build_store(settings)
    signer = TokenSigner(
        {kid: key.get_secret_value().encode("utf-8") for kid, key in settings.token_keys.items()},
        settings.token_active_kid,
    )

    def graph() -> Graph:
        # Imported here, on first use: the Graph SDK takes seconds to import.
        from shared.outlook.graph_client import build_graph

        return build_graph(settings, store.blob_service)

    services = Services(
        settings=settings,
        store=store,
        signer=signer,
        auth=Authenticator(settings),
        delivery=OutboxBackend(store, clock),
        clock=clock,
        links=LinkResolver(store),
        org=OrgSwitch(store),
        milestones=StoredMilestones(store, settings),
        graph_factory=graph,
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
            module = await import_off_loop("shared.outlook.delivery")
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
