"""The timer triggers, one per module, each a thin adapter over a cycle in shared/; ALL lists
their blueprints for function_app.py."""

from __future__ import annotations

import azure.functions as func

from functions.timers import alerts, dispatch, fold, reminders, retention, retry, sync

ALL: tuple[func.Blueprint, ...] = tuple(
    m.bp for m in (fold, alerts, dispatch, sync, retry, retention, reminders)
)
