"""`make run`: the Functions app served by uvicorn on 127.0.0.1:7071, with its timer
functions fired in-process on their own schedules (Core Tools cannot be installed here).

The timers are read from function_app's registrations, and their `%SETTING%` schedules are
resolved from the settings, so the local run goes through the same functions as Azure.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import azure.functions as func
import uvicorn
from azure.functions.timer import TimerRequest

from functions.ncrontab import Schedule
from shared.bootstrap import get_services
from shared.core.settings import Settings, get_settings
from shared.core.storage import ensure_storage

logger = logging.getLogger("local")


def resolve_schedule(expression: str, settings: Settings) -> str:
    """`%FOLD_SCHEDULE%` -> the setting's value, as the Functions host does."""
    if expression.startswith("%") and expression.endswith("%"):
        value = getattr(settings, expression.strip("%").lower(), None)
        if not isinstance(value, str):
            raise ValueError(f"no setting for schedule {expression}")
        return value
    return expression


def timer_functions(
    app: func.FunctionRegister,
) -> list[tuple[str, str, Callable[..., Awaitable[None]]]]:
    """(name, schedule expression, user function) of every timer the app registers."""
    found: list[tuple[str, str, Callable[..., Awaitable[None]]]] = []
    for function in app.get_functions():
        trigger: Any = function.get_trigger()
        binding = trigger.get_dict_repr()
        if binding["type"] == "timerTrigger":
            found.append(
                (
                    str(function.get_function_name()),
                    binding["schedule"],
                    function.get_user_function(),
                )
            )
    return found


async def run_timer(name: str, schedule: Schedule, target: Callable[..., Awaitable[None]]) -> None:
    """Fire `target` on `schedule` forever; a failed run is logged, the next one still fires."""
    while True:
        now = datetime.now(UTC)
        due = schedule.next_after(now)
        await asyncio.sleep((due - now).total_seconds())
        past_due = (datetime.now(UTC) - due).total_seconds() > 5
        try:
            await target(timer=TimerRequest(past_due=past_due))
        except Exception:
            logger.exception("timer %s failed", name)


async def serve(host: str, port: int) -> None:
    import function_app

    settings = get_settings()
    await ensure_storage(get_services().store)
    tasks = [
        asyncio.create_task(run_timer(name, Schedule(resolve_schedule(expr, settings)), target))
        for name, expr, target in timer_functions(function_app.app)
    ]
    server = uvicorn.Server(
        uvicorn.Config(function_app.asgi, host=host, port=port, log_level="info")
    )
    try:
        await server.serve()
    finally:
        for task in tasks:
            task.cancel()
        await get_services().store.close()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m functions.local")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7071)
    args = parser.parse_args()
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    asyncio.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
