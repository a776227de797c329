"""The stand-in's HTTP face: a Starlette app run by uvicorn in a background thread on loopback.

Around the endpoints it checks the bearer token, logs requests, counts requests in flight per
mailbox and answers injected faults in Graph's throttling shape.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
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

from devtools.graph.batch import BatchStep, batch_steps, concurrent_levels, run_batch
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
    """The next `remaining` requests matching method, path and body fail with `status` (every
    matching request, while `persistent`), once `after` matching requests have passed."""

    remaining: int
    status: int
    retry_after: int | None
    path_contains: str | None
    method: str | None
    body_contains: str | None = None
    persistent: bool = False
    after: int = 0  # matching requests still let through before the first failure

    def matches(self, call: Call, *, batch_envelope: bool) -> bool:
        if self.method is not None and self.method.upper() != call.method:
            return False
        if self.body_contains is not None and self.body_contains.encode() not in call.body:
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
        self.limit = mailbox_concurrency_limit
        self._clock = clock
        self.faults: list[Fault] = []
        self.requests: deque[RequestRecord] = deque(maxlen=MAX_LOGGED_REQUESTS)
        self.batch_requests: deque[RequestRecord] = deque(maxlen=MAX_LOGGED_REQUESTS)
        self.max_in_flight: dict[str, int] = {}
        self.refused: dict[str, int] = {}  # requests answered 429 for the concurrency limit
        self.faults_served = 0
        self.throttle_fraction = 0.0  # that share of requests answers 429 (random, seeded)
        self.throttle_retry_after = 1
        self._random = random.Random(0)  # noqa: S311 (repeatable faults, not secrets)
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
        if call.path == "/$batch":
            return await self._handle_batch(call)
        keys = {self.user_key(u) for u in [user_of(call.path)] if u}
        admitted = self._enter({key: [1] for key in keys})
        try:
            if self._latency:
                await asyncio.sleep(self._latency)
            if any(not admitted[key][0] for key in keys):
                return self._over_limit()
            return self._execute(call)
        finally:
            self._leave({key: admitted[key][0] for key in keys})

    async def _handle_batch(self, call: Call) -> Reply:
        """Every request inside a batch counts against its mailbox's concurrency, as Graph
        counts them: the requests that run at the same time (those not ordered by dependsOn)
        past the limit answer 429 one by one, and the rest run."""
        try:
            steps = batch_steps(call) if call.method == "POST" else []
        except GraphError as exc:
            return self.error(exc.status, exc.code, exc.message, exc.headers)
        levels: dict[str, list[list[BatchStep]]] = {}
        for level in concurrent_levels(steps):
            by_key: dict[str, list[BatchStep]] = {}
            for step in level:
                if (user := user_of(step.call.path)) is not None:
                    by_key.setdefault(self.user_key(user), []).append(step)
            for key, same in by_key.items():
                levels.setdefault(key, []).append(same)
        admitted = self._enter({k: [len(s) for s in lv] for k, lv in levels.items()})
        refused = {
            step.id
            for key, lv in levels.items()
            for same, allowed in zip(lv, admitted[key], strict=True)
            for step in same[allowed:]
        }
        widths = {key: max(admitted[key], default=0) for key in levels}
        try:
            if self._latency:
                await asyncio.sleep(self._latency)
            fault = self._take_fault(call, batch_envelope=True)
            if fault is not None:
                return fault
            if call.method != "POST":
                return self.error(405, "Request_BadRequest", "Use POST for $batch.")

            def execute(step: BatchStep) -> Reply:
                return self._over_limit() if step.id in refused else self._execute_inner(step.call)

            return run_batch(steps, execute)
        finally:
            self._leave(widths)

    def reseed(self, seed: int) -> None:
        with self._lock:
            self._random = random.Random(seed)  # noqa: S311 (repeatable faults)

    def _over_limit(self) -> Reply:
        reply = self._throttled(429, 1)
        assert reply.body is not None
        reply.body["error"]["code"] = "ApplicationThrottled"
        reply.body["error"]["message"] = "Application is over its MailboxConcurrency limit."
        return reply

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
                    if fault.after > 0:
                        fault.after -= 1
                        continue
                    if not fault.persistent:
                        fault.remaining -= 1
                    self.faults = [f for f in self.faults if f.remaining > 0]
                    self.faults_served += 1
                    return self._throttled(fault.status, fault.retry_after)
            if (
                not batch_envelope
                and self.throttle_fraction
                and self._random.random() < self.throttle_fraction
            ):
                self.faults_served += 1
                return self._throttled(429, self.throttle_retry_after)
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

    def _enter(self, wanted: Mapping[str, list[int]]) -> dict[str, list[int]]:
        """Counts requests in: for each mailbox, groups of requests that would run at once
        (a lone request is a group of one). Returns how many of each group the limit admits;
        the peak counts as in flight until `_leave`, and the attempt shows in max_in_flight."""
        with self._lock:
            admitted: dict[str, list[int]] = {}
            for key, groups in wanted.items():
                current = self._in_flight.get(key, 0)
                peak = max(groups, default=0)
                self.max_in_flight[key] = max(self.max_in_flight.get(key, 0), current + peak)
                room = peak if self.limit is None else max(0, self.limit - current)
                admitted[key] = [min(size, room) for size in groups]
                refused = sum(groups) - sum(admitted[key])
                if refused:
                    self.refused[key] = self.refused.get(key, 0) + refused
                self._in_flight[key] = current + max(admitted[key], default=0)
            return admitted

    def _leave(self, counted: Mapping[str, int]) -> None:
        with self._lock:
            for key, n in counted.items():
                self._in_flight[key] -= n
