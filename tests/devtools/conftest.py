"""Fixtures for the Graph stand-in tests: a running stand-in, a movable clock, and the real
msgraph-sdk sdk built the way the app builds it, pointed at the stand-in."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from azure.core.credentials import AccessToken
from kiota_authentication_azure.azure_identity_authentication_provider import (
    AzureIdentityAuthenticationProvider,
)
from msgraph import GraphRequestAdapter, GraphServiceClient

from devtools.graph_standin import DEFAULT_TOKEN, GraphStandIn

ANA = "ana@contoso.example"


class StaticTokenCredential:
    """An async TokenCredential that always hands out the same bearer token."""

    def __init__(self, token: str) -> None:
        self._token = token

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken(self._token, int((datetime.now(UTC) + timedelta(hours=1)).timestamp()))

    async def close(self) -> None:
        return None

    async def __aenter__(self) -> StaticTokenCredential:
        return self

    async def __aexit__(self, *args: object) -> None:
        return None


class ManualClock:
    """Real time plus an offset a test moves forward."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += timedelta(seconds=seconds)


def graph_client(base_url: str, token: str = DEFAULT_TOKEN) -> GraphServiceClient:
    """The sdk as the app builds it, with base_url pointed at the stand-in."""
    auth = AzureIdentityAuthenticationProvider(
        StaticTokenCredential(token), allowed_hosts=["127.0.0.1"]
    )
    adapter = GraphRequestAdapter(auth)
    adapter.base_url = base_url
    return GraphServiceClient(request_adapter=adapter)


@pytest.fixture
def manual_clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def graph(manual_clock: ManualClock) -> Iterator[GraphStandIn]:
    with GraphStandIn(clock=manual_clock.now) as standin:
        standin.add_mailbox(ANA, "Ana Seller")
        yield standin


@pytest.fixture
def sdk(graph: GraphStandIn) -> GraphServiceClient:
    return graph_client(graph.base_url)


@pytest.fixture
def make_client() -> Callable[..., GraphServiceClient]:
    return graph_client
