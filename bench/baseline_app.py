"""The pixel benchmark's floor: a bare ASGI app that does what the real pixel does for storage
and the wire (one event blob written with the same async client, the same GIF and headers)
and nothing else: no framework, no token check, no dependency injection.

Serve it with ``uvicorn bench.baseline_app:app`` and STORAGE_CONNECTION_STRING set. The
path ``/t/o/{id}`` names the message the blob is filed under, so a run can count its blobs.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from azure.storage.blob.aio import BlobServiceClient, ContainerClient

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

logger = logging.getLogger(__name__)

CONTAINER = "interactions"
PREFIX = "/t/o/"
# The same 1x1 GIF, headers, client options and upload timeout as the real pixel route, so
# that the two servers put the same bytes on the wire and in storage.
PIXEL_GIF = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00"
    b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)
_HEADERS = [
    (b"content-type", b"image/gif"),
    (b"content-length", str(len(PIXEL_GIF)).encode()),
    (b"cache-control", b"no-store, no-cache, must-revalidate, max-age=0"),
    (b"pragma", b"no-cache"),
    (b"expires", b"0"),
]
_CLIENT_OPTIONS: dict[str, Any] = {"connection_timeout": 3, "read_timeout": 5, "retry_total": 1}
_UPLOAD_TIMEOUT_SECONDS = 5
_BUCKET_SECONDS = 10
_MAX_USER_AGENT = 512


def event_blob(
    message_id: str, user_agent: str, peer: str, method: str
) -> tuple[str, bytes, dict[str, str]]:
    """Blob name, body and metadata of an open, shaped like the real app's event blob."""
    at = datetime.now(UTC)
    event_id = f"{int(at.timestamp() * 1000):012x}{secrets.token_hex(6)}"
    bucket = at.replace(second=at.second - at.second % _BUCKET_SECONDS, microsecond=0)
    ip = peer.rsplit(".", 1)[0] + ".0" if peer.count(".") == 3 else ""
    user_agent = user_agent[:_MAX_USER_AGENT]
    record = {
        "event_id": event_id,
        "message_id": message_id,
        "kind": "open",
        "index": 0,
        "at": at.isoformat(),
        "user_agent": user_agent,
        "ip": ip,
        "method": method,
    }
    metadata = {
        "kind": "open",
        "index": "0",
        "at": at.isoformat(),
        "ua": quote(user_agent, safe=""),
        "ip": ip,
        "method": method,
    }
    name = f"{bucket.strftime('%Y%m%d%H%M%S')}/{message_id}/{event_id}"
    return name, json.dumps(record, separators=(",", ":")).encode("utf-8"), metadata


class PixelApp:
    """The ASGI callable; its blob client is built at start-up and closed at shutdown."""

    def __init__(self) -> None:
        self._service: BlobServiceClient | None = None
        self._container: ContainerClient | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            await self._http(scope, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self._service = BlobServiceClient.from_connection_string(
                    os.environ["STORAGE_CONNECTION_STRING"], **_CLIENT_OPTIONS
                )
                self._container = self._service.get_container_client(CONTAINER)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._service is not None:
                    await self._service.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, send: Send) -> None:
        path: str = scope["path"]
        if not path.startswith(PREFIX) or scope["method"] not in ("GET", "HEAD"):
            await send({"type": "http.response.start", "status": 404, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        headers = dict(scope["headers"])
        user_agent = headers.get(b"user-agent", b"").decode("latin-1")
        peer = scope["client"][0] if scope.get("client") else ""
        name, body, metadata = event_blob(
            path[len(PREFIX) :], user_agent, peer, str(scope["method"])
        )
        try:
            assert self._container is not None, "lifespan start-up did not run"
            await self._container.upload_blob(
                name, body, metadata=metadata, timeout=_UPLOAD_TIMEOUT_SECONDS
            )
        except Exception:  # answer the GIF anyway, as the real pixel does
            logger.exception("baseline upload failed")
        await send({"type": "http.response.start", "status": 200, "headers": _HEADERS})
        await send({"type": "http.response.body", "body": PIXEL_GIF})


app = PixelApp()
