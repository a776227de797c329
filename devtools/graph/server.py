"""The stand-in's HTTP face: a Starlette app run by uvicorn in a background thread on loopback.

Around the endpoints it checks the bearer token, logs requests, counts requests in flight per
mailbox and answers injected faults in Graph's throttling shape.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from devtools.graph.batch import batch_steps, inner_users, run_batch
from devtools.graph.odata import GraphError, error_body, throttled_body
from devtools.graph.routes import Call, GraphApi, Reply, make_call, user_of

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 8 * 1024 * 1024
MAX_LOGGED_REQUESTS = 100_000
JSON_TYPE = (
    "application/json;odata.metadata=minimal;odata.streaming=true;"
    "IEEE754Compatible=false;charset=utf-8"
)
RequestRecord = tuple[str, str, float]


@dataclass
class Fault:
    """The next `remaining` requests matching method and path fail with `status`."""

    remaining: int
    status: int
    retry_after: int | None
    path_contains: str | None
    method: str | None

    def matches(self, call: Call, *, batch_envelope: bool) -> bool:
        if self.method is not None and self.method.upper() != call.method:
            return False
        if self.path_contains is None:
            # An unscoped fault hits single and batched requests but not the $batch envelope:
            # Graph throttles the requests inside a batch one by one.
            return not batch_envelope
        return self.path_contains in call.path_with_query


class GraphServer:
    """Serves a GraphApi; shares the stand-in's lock with the Python API."""

    def __init__(
        self,
        api: GraphApi,
        lock: threading.RLock,
        *,
        token: str,
        latency: float,
        mailbox_concurrency_limit: int | None,
        clock: Callable[[], datetime],
    ) -> None:
        self._api = api
        self._lock = lock
        self._token = token
        self._latency = latency
        self._limit = mailbox_concurrency_limit
        self._clock = clock
        self.faults: list[Fault] = []
        self.requests: deque[RequestRecord] = deque(maxlen=MAX_LOGGED_REQUESTS)
        self.batch_requests: deque[RequestRecord] = deque(maxlen=MAX_LOGGED_REQUESTS)
        self.max_in_flight: dict[str, int] = {}
        self._in_flight: dict[str, int] = {}
        self._uvicorn: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        methods = ["GET", "POST", "PATCH", "PUT", "DELETE"]
        self.app = Starlette(routes=[Route("/{path:path}", self._endpoint, methods=methods)])

    # -- lifecycle -------------------------------------------------------------------------

    def start(self, port: int) -> int:
        """Serves on 127.0.0.1 from a background thread; returns the port."""
        # IPPROTO_TCP, not 0: asyncio only sets TCP_NODELAY on sockets that say they are TCP,
        # and without it every kept-alive response waits 40 ms for a delayed ACK.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        config = uvicorn.Config(
            self.app,
            log_level="warning",
            lifespan="off",
            limit_concurrency=200,
            timeout_keep_alive=5,
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="graph-standin", daemon=True
        )
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                server.should_exit = True
                raise RuntimeError("the Graph stand-in did not start")
            time.sleep(0.01)
        self._uvicorn, self._thread = server, thread
        return int(sock.getsockname()[1])

    def stop(self) -> None:
        if self._uvicorn is not None and self._thread is not None:
            self._uvicorn.should_exit = True
            self._thread.join(timeout=10)
        self._uvicorn = self._thread = None

    # -- requests --------------------------------------------------------------------------

    async def _endpoint(self, request: Request) -> Response:
        raw_query = request.url.query
        with self._lock:
            shown = request.url.path + (f"?{raw_query}" if raw_query else "")
            self.requests.append((request.method, shown, time.monotonic()))
        request_id = request.headers.get("client-request-id") or str(uuid.uuid4())
        scheme, _, presented = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not presented:
            reply = self.error(401, "InvalidAuthenticationToken", "Access token is empty.")
            return self._respond(reply, request_id)
        if presented != self._token:
            reply = self.error(
                401, "InvalidAuthenticationToken", "Access token validation failure."
            )
            return self._respond(reply, request_id)
        if not (request.url.path + "/").startswith("/v1.0/"):
            return self._respond(self.error(400, "BadRequest", "Invalid version."), request_id)
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY_BYTES:
                reply = self.error(413, "RequestEntityTooLarge", "The request body is too large.")
                return self._respond(reply, request_id)
        call = make_call(
            request.method,
            request.url.path,
            raw_query,
            dict(request.headers),
            bytes(body),
            f"{request.url.scheme}://{request.url.netloc}/v1.0",
        )
        return self._respond(await self._handle(call), request_id)

    async def _handle(self, call: Call) -> Reply:
        is_batch = call.path == "/$batch"
        try:
            steps = batch_steps(call) if is_batch and call.method == "POST" else []
        except GraphError as exc:
            return self.error(exc.status, exc.code, exc.message, exc.headers)
        users = inner_users(steps) if is_batch else {u for u in [user_of(call.path)] if u}
        keys = {self.user_key(u) for u in users}
        over_limit = self._enter(keys)
        try:
            if self._latency:
                await asyncio.sleep(self._latency)
            if over_limit:
                reply = self._throttled(429, 1)
                assert reply.body is not None
                reply.body["error"]["code"] = "ApplicationThrottled"
                reply.body["error"]["message"] = "Application is over its MailboxConcurrency limit."
                return reply
            if not is_batch:
                return self._execute(call)
            fault = self._take_fault(call, batch_envelope=True)
            if fault is not None:
                return fault
            if call.method != "POST":
                return self.error(405, "Request_BadRequest", "Use POST for $batch.")
            return run_batch(steps, self._execute_inner)
        finally:
            self._leave(keys)

    def _execute_inner(self, call: Call) -> Reply:
        with self._lock:
            self.batch_requests.append((call.method, call.path_with_query, time.monotonic()))
        if call.path == "/$batch":
            return self.error(400, "BadRequest", "A batch can't contain a batch.")
        return self._execute(call)

    def _execute(self, call: Call) -> Reply:
        with self._lock:
            fault = self._take_fault(call, batch_envelope=False)
            if fault is not None:
                return fault
            self._api.store.release_due()
            try:
                return self._api.dispatch(call)
            except GraphError as exc:
                return self.error(exc.status, exc.code, exc.message, exc.headers)
            except Exception:
                # A stand-in bug: log it whole, answer as Graph answers its own failures.
                logger.exception("Graph stand-in failed on %s %s", call.method, call.path)
                return self.error(500, "generalException", "An unspecified error has occurred.")

    def _take_fault(self, call: Call, *, batch_envelope: bool) -> Reply | None:
        with self._lock:
            for fault in self.faults:
                if fault.remaining > 0 and fault.matches(call, batch_envelope=batch_envelope):
                    fault.remaining -= 1
                    self.faults = [f for f in self.faults if f.remaining > 0]
                    return self._throttled(fault.status, fault.retry_after)
        return None

    def _throttled(self, status: int, retry_after: int | None) -> Reply:
        body = throttled_body(status, str(uuid.uuid4()), self._clock())
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        return Reply(status, body, headers)

    def error(
        self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None
    ) -> Reply:
        body = error_body(code, message, str(uuid.uuid4()), self._clock())
        return Reply(status, body, dict(headers or {}))

    def _respond(self, reply: Reply, request_id: str) -> Response:
        headers = {"request-id": request_id, "client-request-id": request_id, **reply.headers}
        inner = (reply.body or {}).get("error", {}).get("innerError")
        if isinstance(inner, dict):
            inner["request-id"] = inner["client-request-id"] = request_id
        if reply.body is None:
            return Response(status_code=reply.status, headers=headers)
        media = "application/json" if reply.status >= 400 else JSON_TYPE
        return Response(
            json.dumps(reply.body), status_code=reply.status, headers=headers, media_type=media
        )

    # -- per-mailbox concurrency -----------------------------------------------------------

    def user_key(self, user: str) -> str:
        """The mailbox's address when it exists (so its id and address count together)."""
        with self._lock:
            try:
                return self._api.store.mailbox(user).address
            except GraphError:
                return user.lower()

    def _enter(self, keys: set[str]) -> bool:
        """Counts a request in; True when a mailbox is over its concurrency limit."""
        with self._lock:
            over = False
            for key in keys:
                self._in_flight[key] = self._in_flight.get(key, 0) + 1
                self.max_in_flight[key] = max(self.max_in_flight.get(key, 0), self._in_flight[key])
                over = over or (self._limit is not None and self._in_flight[key] > self._limit)
            return over

    def _leave(self, keys: set[str]) -> None:
        with self._lock:
            for key in keys:
                self._in_flight[key] -= 1
