"""Which tracking method claims an Outlook item, and how failures are classified. Pure."""

from __future__ import annotations

import asyncio
from typing import Literal

Method = Literal["token", "conversation", "folder", "category"]
# Most specific first: an item that several methods match is tracked once, by the first.
METHODS: tuple[Method, ...] = ("token", "conversation", "folder", "category")


class Rejected(Exception):
    """An item we cannot track as it is (no Internet message id, say)."""


def choose_method(
    *, token: bool, conversation: bool, folder: bool, category: bool
) -> Method | None:
    """The most specific method that matches, None if none does."""
    matches = {"token": token, "conversation": conversation, "folder": folder, "category": category}
    return next((m for m in METHODS if matches[m]), None)


def more_specific(a: str, b: str) -> str:
    """The more specific of two methods."""
    order: tuple[str, ...] = METHODS
    return a if order.index(a) <= order.index(b) else b


def classify(error: BaseException) -> str:
    """throttled, timeout, rejected or unknown: what the mailbox health counts."""
    status = getattr(error, "response_status_code", None)
    if status in (429, 503, 509):
        return "throttled"
    name = type(error).__name__.lower()
    if isinstance(error, TimeoutError | asyncio.TimeoutError) or "timeout" in name:
        return "timeout"
    if isinstance(error, Rejected) or (isinstance(status, int) and 400 <= status < 500):
        return "rejected"
    return "unknown"
