"""The Graph client, built once per worker: credential, endpoint, retry on throttling, and a
gate that keeps at most N requests in flight per mailbox across every worker of the app
(shared.outlook.permits)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from azure.core.credentials import AccessToken
from kiota_authentication_azure.azure_identity_authentication_provider import (
    AzureIdentityAuthenticationProvider,
)
from kiota_http.middleware.options import RetryHandlerOption
from msgraph import GraphRequestAdapter, GraphServiceClient
from msgraph_core import GraphClientFactory

from shared.core.settings import Settings
from shared.outlook.permits import CONTAINER, MailboxPermits

if TYPE_CHECKING:
    from azure.storage.blob.aio import BlobServiceClient

# Graph answers 429 and 503 with Retry-After; the SDK's retry handler waits as told (holding
# the request's permit, which slows the mailbox down as Graph asks). Past this many tries the
# caller gets the error: the sync records it and tries again next cycle. Requests inside a
# $batch are answered one by one inside a 200, which the SDK does not retry: see
# shared.outlook.category_writes.write_categories.
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
    """The SDK client plus the mailbox permits every request goes through."""

    client: GraphServiceClient
    credential: Any
    http: Any  # the httpx client under the SDK, closed with the rest
    permits: MailboxPermits
    page_size: int

    @property
    def max_concurrency(self) -> int:
        return self.permits.size

    @asynccontextmanager
    async def gate(self, mailbox: str) -> AsyncIterator[None]:
        """Hold one of the mailbox's request permits (Graph allows 4 in flight per mailbox,
        across every instance of the app)."""
        async with self.permits.hold(mailbox):
            yield

    def gate_many(self, mailbox: str, wanted: int) -> AbstractAsyncContextManager[int]:
        """Hold between 1 and `wanted` permits, for a $batch of that many requests to the
        mailbox (each counts); yields how many are held."""
        return self.permits.hold(mailbox, wanted)

    async def close(self) -> None:
        await self.permits.close()
        await self.http.aclose()
        await self.credential.close()


def build_graph(settings: Settings, blobs: BlobServiceClient | None = None) -> Graph:
    """A Graph client for the configured endpoint and credential; its mailbox permits are
    blob leases in `blobs` (process-local without it, for tools that run without storage)."""
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
        permits=MailboxPermits(
            blobs.get_container_client(CONTAINER) if blobs is not None else None,
            settings.graph_max_concurrency,
        ),
        page_size=settings.graph_page_size,
    )
