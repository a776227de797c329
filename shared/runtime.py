"""The services of one worker: settings, storage clients, token signer, authenticator and
delivery backend, built once and shared by the HTTP app and the timers."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from shared.auth import Authenticator
from shared.config import Settings, get_settings
from shared.delivery import DeliveryBackend, OutboxBackend
from shared.storage import Store, build_store
from shared.tokens import TokenSigner
from shared.tracking import LinkResolver


@dataclass
class Services:
    settings: Settings
    store: Store
    signer: TokenSigner
    auth: Authenticator
    delivery: DeliveryBackend
    links: LinkResolver = field(init=False)

    def __post_init__(self) -> None:
        self.links = LinkResolver(self.store)

    @property
    def grace(self) -> timedelta:
        return timedelta(seconds=self.settings.fold_grace_seconds)


def build_services(settings: Settings) -> Services:
    """Everything a worker needs, from settings alone."""
    store = build_store(settings)
    signer = TokenSigner(
        {kid: key.get_secret_value().encode("utf-8") for kid, key in settings.token_keys.items()},
        settings.token_active_kid,
    )
    return Services(
        settings=settings,
        store=store,
        signer=signer,
        auth=Authenticator(settings),
        delivery=OutboxBackend(store),
    )


_services: Services | None = None


def get_services() -> Services:
    """The worker's services, built on first use (clients open no connection until then)."""
    global _services
    if _services is None:
        _services = build_services(get_settings())
    return _services
