"""Category writes on many messages at once: in $batch requests sized to the mailbox permits
held, conditional on the version read, and sent again until they land (or handed back as
failed, for the caller's attempt count). Graph answers each request inside a batch on its own,
inside a 200: the SDK's retry handler never sees a throttled one, so this module retries it
after its own Retry-After, as Graph's throttling guidance asks.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx
from msgraph.generated.models.message import Message
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.users.item.messages.item.message_item_request_builder import (
    MessageItemRequestBuilder,
)
from msgraph_core.requests.batch_request_content import BatchRequestContent
from msgraph_core.requests.batch_request_item import BatchRequestItem

from shared.outlook.categories import CategoryChange
from shared.outlook.graph_client import Graph
from shared.outlook.mail import BATCH_LIMIT, request_config, send_raw, status_of

logger = logging.getLogger(__name__)

_NO_ANSWER = (httpx.HTTPError, OSError, TimeoutError)
THROTTLED = frozenset({429, 503})  # wait as Graph says, then again, as long as it takes
ERROR_TRIES = 3  # other failures: tries in one call before the caller records a failure
ERROR_WAIT = 0.25  # seconds before the first of those retries, doubling
THROTTLE_WAIT = 2.0  # seconds when a throttled answer names no Retry-After, doubling
PATIENCE = 300.0  # seconds one call waits out throttling before handing the rest back


@dataclass
class WriteOutcome:
    """What became of a call's category writes."""

    landed: dict[str, list[str]] = field(default_factory=dict)  # id -> categories it has now
    failed: dict[str, int] = field(default_factory=dict)  # id -> last status (0: no answer)
    gone: set[str] = field(default_factory=set)  # deleted meanwhile (404)
    retries: int = 0  # writes sent again: throttled, failed or conflicting
    throttled: int = 0  # answers 429 or 503 (each one waited out)


@dataclass
class _Write:
    change: CategoryChange
    not_before: float = 0.0
    errors: int = 0
    throttles: int = 0
    status: int = 0


def retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Seconds a Retry-After header asks for (a number or an HTTP date), if it has one."""
    value = next((v for k, v in (headers or {}).items() if k.lower() == "retry-after"), None)
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(str(value))
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


async def read_categories(
    graph: Graph, mailbox: str, graph_id: str
) -> tuple[list[str], str] | None:
    """A message's categories and the version they are at (its etag); None if it is gone."""
    query = MessageItemRequestBuilder.MessageItemRequestBuilderGetQueryParameters(
        select=["id", "categories"]
    )
    builder = graph.client.users.by_user_id(mailbox).messages.by_message_id(graph_id)
    try:
        data = await send_raw(
            graph, mailbox, builder.to_get_request_information(request_config(query))
        )
    except ODataError as error:
        if status_of(error) == 404:
            return None
        raise
    if not data.get("id"):
        return None
    return [str(c) for c in data.get("categories") or []], str(data.get("@odata.etag") or "")


async def write_categories(
    graph: Graph,
    mailbox: str,
    changes: Sequence[CategoryChange],
    *,
    error_tries: int = ERROR_TRIES,
    patience: float = PATIENCE,
) -> WriteOutcome:
    """Make category changes on many messages, each landed or reported failed, never lost.

    Changes go in $batch requests sized to the mailbox permits held (each request in a batch
    counts against Graph's limit). Each PATCH sends the message's categories with ours added or
    taken off, on condition of the etag they were read at; a conflict (412) reads them again.
    A request Graph throttles inside the batch (429, 503) is sent again after its own
    Retry-After, as often as it takes within `patience` seconds; any other failure is retried
    `error_tries` times in all, then reported in `failed` for the caller's attempt count."""
    outcome = WriteOutcome()
    queue = [_Write(change) for change in changes]
    deadline = time.monotonic() + patience
    while queue:
        now = time.monotonic()
        ready = [w for w in queue if w.not_before <= now]
        if not ready:
            wake = min(w.not_before for w in queue)
            if wake > deadline:
                break
            await asyncio.sleep(wake - now)
            continue
        sendable: list[tuple[_Write, list[str]]] = []
        for write in ready:
            change = write.change
            if change.current is None:
                try:
                    found = await read_categories(graph, mailbox, change.graph_id)
                except (ODataError, *_NO_ANSWER) as error:
                    status = (status_of(error) or 0) if isinstance(error, ODataError) else 0
                    _settle(outcome, queue, write, [], status, None, time.monotonic(), error_tries)
                    continue
                if found is None:
                    outcome.gone.add(change.graph_id)
                    queue.remove(write)
                    continue
                change.current, change.etag = found
            categories = change.result()
            if categories is None:  # nothing to change (any more)
                outcome.landed[change.graph_id] = list(change.current)
                queue.remove(write)
            else:
                sendable.append((write, categories))
        if not sendable:
            continue
        async with graph.gate_many(mailbox, min(len(sendable), BATCH_LIMIT)) as held:
            chunk = sendable[:held]
            answers = await _patch_categories(graph, mailbox, chunk)
        now = time.monotonic()
        for (write, categories), (status, wait) in zip(chunk, answers, strict=True):
            _settle(outcome, queue, write, categories, status, wait, now, error_tries)
    for write in queue:  # still throttled when patience ran out
        outcome.failed[write.change.graph_id] = write.status
    return outcome


def _settle(
    outcome: WriteOutcome,
    queue: list[_Write],
    write: _Write,
    categories: list[str],
    status: int,
    wait: float | None,
    now: float,
    error_tries: int,
) -> None:
    """One batch answer: landed, gone, to read again, to wait out, or failed."""
    graph_id, write.status = write.change.graph_id, status
    if 200 <= status < 300:
        outcome.landed[graph_id] = categories
        queue.remove(write)
    elif status == 404:
        outcome.gone.add(graph_id)
        queue.remove(write)
    elif status == 412 and write.errors + 1 < error_tries:
        # The user changed the message meanwhile: read it again and merge, at once.
        write.errors += 1
        write.change.current = None
        outcome.retries += 1
    elif status in THROTTLED:
        outcome.throttled += 1
        outcome.retries += 1
        write.not_before = now + (wait if wait is not None else THROTTLE_WAIT * 2**write.throttles)
        write.throttles += 1
    else:
        write.errors += 1
        if write.errors >= error_tries:
            outcome.failed[graph_id] = status
            queue.remove(write)
        else:
            outcome.retries += 1
            write.not_before = now + max(wait or 0.0, ERROR_WAIT * 2 ** (write.errors - 1))


async def _patch_categories(
    graph: Graph, mailbox: str, chunk: Sequence[tuple[_Write, list[str]]]
) -> list[tuple[int, float | None]]:
    """One $batch of PATCHes (the caller holds a permit per request); (status, Retry-After)
    per request. A batch that fails as a whole answers for each request in it."""
    messages = graph.client.users.by_user_id(mailbox).messages
    batch = BatchRequestContent()
    for number, (write, categories) in enumerate(chunk, start=1):
        config = request_config()
        if write.change.etag:
            config.headers.add("If-Match", write.change.etag)
        info = messages.by_message_id(write.change.graph_id).to_patch_request_information(
            Message(categories=categories), config
        )
        # add_request_information would drop our id for a random one
        batch.add_request(None, BatchRequestItem(info, id=str(number)))
    try:
        response = await graph.client.batch.post(batch_request_content=batch)
    except ODataError as error:
        status = status_of(error) or 0
        wait = retry_after(error.response_headers) if error.response_headers else None
        return [(status, wait)] * len(chunk)
    except _NO_ANSWER as error:
        logger.warning("a category batch got no answer: %s", type(error).__name__)
        return [(0, None)] * len(chunk)
    answers = []
    for number in range(1, len(chunk) + 1):
        item = response.get_response_by_id(str(number)) if response is not None else None
        status = int(getattr(item, "status", None) or 0)
        answers.append((status, retry_after(getattr(item, "headers", None))))
    return answers
