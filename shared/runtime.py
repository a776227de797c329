"""The services of one worker: settings, storage clients, token signer, authenticator and
delivery backend, built once and shared by the HTTP app and the timers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from shared.auth import Authenticator
from shared.config import Settings, get_settings
from shared.delivery import DeliveryBackend, OutboxBackend
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
    _graph: Graph | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.links = LinkResolver(self.store)

    def graph(self) -> Graph:
        """The Graph client, built on first use: the SDK is imported only here, so the HTTP
        tracking path never pays for it."""
        if self._graph is None:
            from shared.graph.client import build_graph

            self._graph = build_graph(self.settings)
        return self._graph

    async def close(self) -> None:
        await self.store.close()
        if self._graph is not None:
            await self._graph.close()

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
        from shared.graph.delivery import GraphDelivery

        services.delivery = GraphDelivery(services.graph, clock)
    return services


_services: Services | None = None


def get_services() -> Services:
    """The worker's services, built on first use (clients open no connection until then)."""
    global _services
    if _services is None:
        _services = build_services(get_settings())
    return _services
