"""Storage that goes away on cue: the real clients, talking to the real Azurite, through a
transport that stops reaching it from the n-th write on (as a network cut or an outage
would: the SDK sees a connection error, like aiohttp's, and nothing reaches Azurite)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from azure.core.exceptions import ServiceRequestError
from azure.core.pipeline.transport import AioHttpTransport
from azure.data.tables.aio import TableServiceClient
from azure.storage.blob.aio import BlobServiceClient, LinearRetry
from azure.storage.queue.aio import QueueServiceClient

from shared.bootstrap import build_services
from shared.core.services import Services
from shared.core.storage import Store

_WRITES = frozenset({"PUT", "POST", "MERGE", "PATCH", "DELETE"})


@dataclass
class Cut:
    """Counts writes; from write number `at` (0-based) on, every request fails."""

    at: int | None = None
    writes: int = 0
    down: bool = False

    def reset(self, at: int | None) -> None:
        self.at, self.writes, self.down = at, 0, False


class CuttableTransport(AioHttpTransport):
    def __init__(self, cut: Cut, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._cut = cut

    async def send(self, request: Any, **kwargs: Any) -> Any:
        cut = self._cut
        if request.method in _WRITES:
            if cut.at is not None and cut.writes >= cut.at:
                cut.down = True
            cut.writes += 1
        if cut.down:
            raise ServiceRequestError("storage is unreachable (cut by the test)")
        return await super().send(request, **kwargs)


def cuttable_services(base: Services, connection_string: str, cut: Cut) -> Services:
    """The app's services on a store whose every client goes through `cut`. No retries, so
    a cut fails at once (the production retry policy is measured elsewhere)."""
    store = Store(
        blob_service=BlobServiceClient.from_connection_string(
            connection_string,
            transport=CuttableTransport(cut),
            retry_policy=LinearRetry(retry_total=0),
        ),
        tracking_blob_service=BlobServiceClient.from_connection_string(
            connection_string, transport=CuttableTransport(cut)
        ),
        table_service=TableServiceClient.from_connection_string(
            connection_string, transport=CuttableTransport(cut), retry_total=0
        ),
        queue_service=QueueServiceClient.from_connection_string(
            connection_string, transport=CuttableTransport(cut), retry_total=0
        ),
    )
    return build_services(base.settings, base.clock, store=store)
