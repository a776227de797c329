"""What the storage SDKs send, to compare a request made another way with theirs."""

from __future__ import annotations

from typing import Any


class Recorder:
    """A raw_request_hook that keeps each request's method, URL and lasting headers."""

    VOLATILE = frozenset({"x-ms-client-request-id", "x-ms-date", "date", "authorization"})

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, dict[str, str]]] = []

    def __call__(self, request: Any) -> None:
        sent = request.http_request
        headers = {k.lower(): v for k, v in sent.headers.items() if k.lower() not in self.VOLATILE}
        self.requests.append((sent.method, sent.url, headers))
