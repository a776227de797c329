"""`make run`: the Functions app served by uvicorn on 127.0.0.1:7071, with its timer
functions fired in-process on their own schedules (Core Tools cannot be installed here).

The timers are read from function_app's registrations, and their `%SETTING%` schedules are
resolved from the settings, so the local run goes through the same functions as Azure.

It says what it is doing: each step of the start, then one block with the app's URL, the
API docs and how to get a token; then a line for each timer cycle that did something.
Nothing per request, and never a path, query or client address: LOG_LEVEL=DEBUG adds every
request as route template, method, status and time (shared.core.logs).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import logging
import socket
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import azure.functions as func
import uvicorn
from azure.core.exceptions import AzureError, ResourceExistsError
from azure.functions.timer import TimerRequest

from functions.ncrontab import Schedule
from shared.bootstrap import get_services
from shared.core.logs import configure_logging
from shared.core.settings import Settings, get_settings
from shared.core.storage import ensure_storage

logger = logging.getLogger("functions.local")
STORAGE_WAIT_SECONDS = 60  # Azurite starts alongside; a first start takes a few seconds
# As host.json's "queues" settings tell the Functions host.
QUEUE_BATCH = 4
QUEUE_VISIBILITY_SECONDS = 30
QUEUE_POLL_SECONDS = 2
MAX_DEQUEUE = 5


def resolve_schedule(expression: str, settings: Settings) -> str:
    """`%FOLD_SCHEDULE%` -> the setting's value, as the Functions host does."""
    if expression.startswith("%") and expression.endswith("%"):
        value = getattr(settings, expression.strip("%").lower(), None)
        if not isinstance(value, str):
            raise ValueError(f"no setting for schedule {expression}")
        return value
    return expression


_Registered = list[tuple[str, str, Callable[..., Awaitable[None]]]]


def _triggered(functions: list[func.Function], kind: str, field: str) -> _Registered:
    """(name, the trigger binding's `field`, user function) of every function of a trigger
    type among the app's (`app.get_functions()`, which may be called only once)."""
    found: _Registered = []
    for function in functions:
        trigger: Any = function.get_trigger()
        binding = trigger.get_dict_repr()
        if binding["type"] == kind:
            found.append(
                (str(function.get_function_name()), binding[field], function.get_user_function())
            )
    return found


def timer_functions(functions: list[func.Function]) -> _Registered:
    """(name, schedule expression, user function) of every timer among the app's functions."""
    return _triggered(functions, "timerTrigger", "schedule")


def queue_functions(functions: list[func.Function]) -> _Registered:
    """(name, queue name, user function) of every queue trigger among the app's functions."""
    return _triggered(functions, "queueTrigger", "queueName")


async def run_queue(name: str, queue: str, target: Callable[..., Awaitable[None]]) -> None:
    """Feed `target` the messages of `queue` as the Functions host does (host.json's
    queues settings): a few at a time, a message deleted once handled, seen again after
    its visibility timeout when the handler failed, moved to `<queue>-poison` after
    MAX_DEQUEUE tries."""
    client = get_services().store.queue_service.get_queue_client(queue)
    poison = get_services().store.queue_service.get_queue_client(f"{queue}-poison")
    with contextlib.suppress(ResourceExistsError):
        await poison.create_queue()
    while True:
        handled = 0
        try:
            async for item in client.receive_messages(
                messages_per_page=QUEUE_BATCH,
                visibility_timeout=QUEUE_VISIBILITY_SECONDS,
                max_messages=QUEUE_BATCH,
            ):
                handled += 1
                if item.dequeue_count and item.dequeue_count > MAX_DEQUEUE:
                    await poison.send_message(item.content)
                    await client.delete_message(item)
                    logger.error(
                        "queue %s: a message failed %s times: moved to %s-poison",
                        name,
                        MAX_DEQUEUE,
                        queue,
                    )
                    continue
                body = base64.b64decode(item.content)
                try:
                    await target(
                        message=func.QueueMessage(
                            id=item.id, body=body, pop_receipt=item.pop_receipt
                        )
                    )
                except Exception as error:
                    logger.error("queue %s failed: %s", name, type(error).__name__)
                    logger.debug("queue %s failed", name, exc_info=True)
                    continue
                await client.delete_message(item)
        except AzureError as error:
            logger.error("queue %s could not be read: %s", name, type(error).__name__)
        if not handled:
            await asyncio.sleep(QUEUE_POLL_SECONDS)


async def run_timer(name: str, schedule: Schedule, target: Callable[..., Awaitable[None]]) -> None:
    """Fire `target` on `schedule` forever; a failed run is logged, the next one still fires."""
    while True:
        now = datetime.now(UTC)
        due = schedule.next_after(now)
        await asyncio.sleep((due - now).total_seconds())
        past_due = (datetime.now(UTC) - due).total_seconds() > 5
        try:
            await target(timer=TimerRequest(past_due=past_due))
        except Exception as error:
            logger.error("timer %s failed: %s", name, type(error).__name__)
            logger.debug("timer %s failed", name, exc_info=True)


async def wait_for_storage() -> None:
    """Create the containers and tables, waiting for Azurite while it starts."""
    deadline = time.monotonic() + STORAGE_WAIT_SECONDS
    said = False
    while True:
        try:
            await ensure_storage(get_services().store)
            return
        except (AzureError, OSError) as error:
            if time.monotonic() > deadline:
                raise SystemExit(
                    f"storage did not answer in {STORAGE_WAIT_SECONDS} s "
                    f"({type(error).__name__}): is Azurite running?"
                ) from None
            if not said:
                logger.info("waiting for storage (Azurite) to answer...")
                said = True
            await asyncio.sleep(0.5)


def banner(host: str, port: int, timers: list[tuple[str, str]]) -> str:
    """What `make run` shows once it is ready: where the app is and how to call it."""
    base = f"http://{host}:{port}"
    width = max(len(name) for name, _ in timers) if timers else 0
    schedules = "\n".join(f"    {name:<{width}}  {schedule}" for name, schedule in timers)
    return (
        "\n"
        "Email engagement is running (Ctrl-C stops it).\n"
        f"  web app   {base}/app   (development sign-in: any address)\n"
        f"  app       {base}\n"
        f"  API docs  {base}/docs\n"
        "  a token   TOKEN=$(make -s dev-token EMAIL=<your address>)   (ADMIN=1: admin role)\n"
        f'            curl -H "Authorization: Bearer $TOKEN" {base}/api/messages\n'
        "  timers    each logs a line when a cycle does something:\n"
        f"{schedules}\n"
        "  more      LOG_LEVEL=DEBUG make run adds every request (route, status, time)\n"
    )


async def serve(host: str, port: int) -> None:
    settings = get_settings()
    logger.info("storage: creating the containers and tables")
    await wait_for_storage()
    logger.info("importing the app and its timers")
    import function_app

    functions = function_app.app.get_functions()
    registered = timer_functions(functions)
    schedules = [(name, resolve_schedule(expr, settings)) for name, expr, _ in registered]
    tasks = [
        asyncio.create_task(run_timer(name, Schedule(schedule), target))
        for (name, schedule), (_, _, target) in zip(schedules, registered, strict=True)
    ]
    tasks += [
        asyncio.create_task(run_queue(name, queue, target))
        for name, queue, target in queue_functions(functions)
    ]
    config = uvicorn.Config(
        function_app.asgi,
        host=host,
        port=port,
        log_config=None,  # our handler and levels (shared.core.logs)
        log_level=logging.WARNING,
        access_log=False,  # it would log paths (tokens) and forwarded client addresses
    )
    stopped = False

    async def stop() -> None:
        nonlocal stopped
        if not stopped:
            stopped = True
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await get_services().store.close()

    logger.info("starting the HTTP server")
    try:
        await _Server(config, banner(host, port, schedules), stop).serve()
    finally:
        await stop()


class _Server(uvicorn.Server):
    """uvicorn's server, showing the banner once it listens, and stopping the timers and
    closing storage as it shuts down (before it hands Ctrl-C on to the caller)."""

    def __init__(
        self, config: uvicorn.Config, text: str, stop: Callable[[], Awaitable[None]]
    ) -> None:
        super().__init__(config)
        self._text = text
        self._stop = stop

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started:
            print(self._text, flush=True)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        await super().shutdown(sockets=sockets)
        await self._stop()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m functions.local")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7071)
    args = parser.parse_args()
    configure_logging(get_settings(), console=True)
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C: uvicorn has shut down already
        asyncio.run(serve(args.host, args.port))
    logger.info("stopped")


if __name__ == "__main__":
    main()
