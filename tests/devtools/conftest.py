"""Fixtures for the Graph stand-in tests: a running stand-in, a movable clock, and the real
msgraph-sdk sdk built the way the app builds it, pointed at the stand-in."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from kiota_authentication_azure.azure_identity_authentication_provider import (
    AzureIdentityAuthenticationProvider,
)
from msgraph import GraphRequestAdapter, GraphServiceClient

from devtools.graph_standin import DEFAULT_TOKEN, GraphStandIn
from shared.outlook.graph_client import StaticTokenCredential
from tests.conftest import Clock

ANA = "ana@contoso.example"


def graph_client(base_url: str, token: str = DEFAULT_TOKEN) -> GraphServiceClient:
    """The sdk as the app builds it, with base_url pointed at the stand-in."""
    auth = AzureIdentityAuthenticationProvider(
        StaticTokenCredential(token), allowed_hosts=["127.0.0.1"]
    )
    adapter = GraphRequestAdapter(auth)
    adapter.base_url = base_url
    return GraphServiceClient(request_adapter=adapter)


@pytest.fixture
def manual_clock() -> Clock:
    return Clock()


@pytest.fixture
def graph(manual_clock: Clock) -> Iterator[GraphStandIn]:
    with GraphStandIn(clock=manual_clock.now) as standin:
        standin.add_mailbox(ANA, "Ana Seller")
        yield standin


@pytest.fixture
def sdk(graph: GraphStandIn) -> GraphServiceClient:
    return graph_client(graph.base_url)


@pytest.fixture
def make_client() -> Callable[..., GraphServiceClient]:
    return graph_client
