"""JSON batching ($batch) for the Graph stand-in, as the JSON batching docs describe it.

Up to 20 requests; each runs through the same dispatch as a request sent alone and gets its own
status, headers and body (a throttled one its own 429 and Retry-After). dependsOn orders them,
and a request whose dependency failed answers 424. Requests not ordered by dependsOn run at the
same time, as in Graph, so each of them counts against its mailbox's concurrency limit.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from devtools.graph.odata import GraphError
from devtools.graph.routes import Call, Reply, json_body, make_call

MAX_BATCH_REQUESTS = 20


@dataclass(frozen=True)
class BatchStep:
    id: str
    call: Call
    depends_on: tuple[str, ...]


def batch_steps(call: Call) -> list[BatchStep]:
    """The requests of a $batch payload, checked as the JSON batching docs describe."""
    requests = json_body(call).get("requests")
    if not isinstance(requests, list) or not requests:
        raise GraphError(400, "BadRequest", "Invalid batch payload format.")
    if len(requests) > MAX_BATCH_REQUESTS:
        raise GraphError(
            400,
            "BadRequest",
            f"The number of batch requests exceeds the maximum of {MAX_BATCH_REQUESTS}.",
        )
    steps: list[BatchStep] = []
    seen: set[str] = set()
    for raw in requests:
        if (
            not isinstance(raw, dict)
            or not raw.get("id")
            or not raw.get("method")
            or not raw.get("url")
        ):
            raise GraphError(400, "BadRequest", "Each batch request needs id, method and url.")
        step_id = str(raw["id"])
        if step_id.lower() in seen:
            raise GraphError(400, "BadRequest", f"Duplicate batch request id '{step_id}'.")
        seen.add(step_id.lower())
        # The Python SDK writes depends_on; the documented name is dependsOn.
        depends = raw.get("dependsOn") or raw.get("depends_on") or []
        steps.append(BatchStep(step_id, _inner_call(call, raw), tuple(str(d) for d in depends)))
    _execution_order(steps)
    return steps


def _execution_order(steps: list[BatchStep]) -> list[BatchStep]:
    """Steps with each after what it depends on; unknown ids and cycles are a 400."""
    known = {s.id for s in steps}
    for step in steps:
        for dep in step.depends_on:
            if dep not in known:
                raise GraphError(
                    400, "BadRequest", f"Request '{step.id}' depends on unknown '{dep}'."
                )
    done: set[str] = set()
    order: list[BatchStep] = []
    pending = list(steps)
    while pending:
        ready = [s for s in pending if all(d in done for d in s.depends_on)]
        if not ready:
            raise GraphError(400, "BadRequest", "The dependsOn references form a cycle.")
        for step in ready:
            pending.remove(step)
            done.add(step.id)
            order.append(step)
    return order


def _inner_call(outer: Call, raw: Mapping[str, Any]) -> Call:
    url = urlsplit(str(raw["url"]))
    path = url.path if url.path.startswith("/") else f"/{url.path}"
    given = raw.get("headers") or {}
    if not isinstance(given, dict):
        raise GraphError(400, "BadRequest", "A batch request's headers must be an object.")
    headers: dict[str, str] = {}
    for name, value in given.items():
        headers[name.lower()] = ", ".join(value) if isinstance(value, list) else str(value)
    body = raw.get("body")
    if isinstance(body, dict | list):
        payload = json.dumps(body).encode()
    elif isinstance(body, str):
        try:
            payload = base64.b64decode(body, validate=True)
        except binascii.Error as exc:
            raise GraphError(400, "BadRequest", "A batch body must be JSON or base64.") from exc
    else:
        payload = b""
    return make_call(str(raw["method"]), path, url.query, headers, payload, outer.base_url)


def concurrent_levels(steps: list[BatchStep]) -> list[list[BatchStep]]:
    """The steps in groups that run at the same time: those without dependencies first, then
    those whose dependencies are all in earlier groups, and so on."""
    level: dict[str, int] = {}
    for step in _execution_order(steps):
        level[step.id] = 1 + max((level[d] for d in step.depends_on), default=-1)
    groups: list[list[BatchStep]] = [[] for _ in range(max(level.values(), default=-1) + 1)]
    for step in steps:
        groups[level[step.id]].append(step)
    return groups


def run_batch(steps: list[BatchStep], execute: Callable[[BatchStep], Reply]) -> Reply:
    """Runs checked steps in dependency order; a step whose dependency failed answers 424.
    Responses come in the order of the requests."""
    results: dict[str, Reply] = {}
    for step in _execution_order(steps):
        if any(results[d].status >= 400 for d in step.depends_on):
            failed = {"error": {"code": "FailedDependency", "message": "A dependency failed."}}
            results[step.id] = Reply(424, failed)
        else:
            results[step.id] = execute(step)
    responses = []
    for step in steps:
        reply = results[step.id]
        item: dict[str, Any] = {
            "id": step.id,
            "status": reply.status,
            "headers": dict(reply.headers),
        }
        if reply.body is not None:
            item["headers"].setdefault("Content-Type", "application/json")
            item["body"] = reply.body
        responses.append(item)
    return Reply(200, {"responses": responses})
