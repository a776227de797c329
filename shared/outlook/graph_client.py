"""The Graph client, built once per worker: credential, endpoint, retry on throttling, and a
gate that keeps at most N requests in flight per mailbox."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from azure.core.credentials import AccessToken
from kiota_authentication_azure.azure_identity_authentication_provider import (
    AzureIdentityAuthenticationProvider,
)
from kiota_http.middleware.options import RetryHandlerOption
from msgraph import GraphRequestAdapter, GraphServiceClient
from msgraph_core import GraphClientFactory

from shared.core.settings import Settings

# Graph answers 429 and 503 with Retry-After; the SDK's retry handler waits as told. Past
# this many tries the cycle records the item as throttled and tries again next cycle.
_MAX_RETRIES = 5


class StaticTokenCredential:
    """A fixed bearer token, for a local Graph stand-in only (settings refuse it in Azure)."""

    def __init__(self, token: str) -> None:
        self._token = token

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken(self._token, int(time.time()) + 3600)

    async def close(self) -> None:
        return None

    async def __aenter__(self) -> StaticTokenCredential:
        return self

    async def __aexit__(self, *args: object) -> None:
        return None


def _credential(settings: Settings) -> Any:
    if settings.graph_auth == "static":
        assert settings.graph_static_token is not None  # checked by Settings
        return StaticTokenCredential(settings.graph_static_token.get_secret_value())
    from azure.identity import aio

    if settings.graph_auth == "client_secret":
        assert (
            settings.graph_client_secret and settings.graph_tenant_id and settings.graph_client_id
        )
        return aio.ClientSecretCredential(
            settings.graph_tenant_id,
            settings.graph_client_id,
            settings.graph_client_secret.get_secret_value(),
        )
    if settings.graph_auth == "certificate":
        assert settings.graph_certificate_path and settings.graph_tenant_id
        assert settings.graph_client_id
        return aio.CertificateCredential(
            settings.graph_tenant_id, settings.graph_client_id, settings.graph_certificate_path
        )
    return aio.ManagedIdentityCredential(client_id=settings.azure_client_id)


@dataclass
class Graph:
    """The SDK client plus a per-mailbox concurrency gate."""

    client: GraphServiceClient
    credential: Any
    http: Any  # the httpx client under the SDK, closed with the rest
    max_concurrency: int
    page_size: int
    _gates: dict[str, asyncio.Semaphore] = field(default_factory=dict)
    _in_flight: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    @asynccontextmanager
    async def gate(self, mailbox: str) -> AsyncIterator[None]:
        """Hold one of the mailbox's request slots (Exchange allows 4 concurrent per mailbox)."""
        key = mailbox.lower()
        semaphore = self._gates.setdefault(key, asyncio.Semaphore(self.max_concurrency))
        async with semaphore:
            yield

    async def close(self) -> None:
        await self.http.aclose()
        await self.credential.close()


def build_graph(settings: Settings) -> Graph:
    """A Graph client for the configured endpoint and credential."""
    endpoint = urlsplit(settings.graph_base_url)
    host = endpoint.hostname or "graph.microsoft.com"
    scope = f"{endpoint.scheme}://{endpoint.netloc}/.default"
    credential = _credential(settings)
    auth = AzureIdentityAuthenticationProvider(credential, scopes=[scope], allowed_hosts=[host])
    retry = RetryHandlerOption(max_retries=_MAX_RETRIES, delay=3.0)
    http_client = GraphClientFactory.create_with_default_middleware(
        options={RetryHandlerOption.get_key(): retry}
    )
    adapter = GraphRequestAdapter(auth, client=http_client)
    adapter.base_url = settings.graph_base_url.rstrip("/")
    return Graph(
        client=GraphServiceClient(request_adapter=adapter),
        credential=credential,
        http=http_client,
        max_concurrency=settings.graph_max_concurrency,
        page_size=settings.graph_page_size,
    )
