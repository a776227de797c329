"""One log line per timer cycle, the same way for every timer."""

from __future__ import annotations

import logging

import azure.functions as func


def log_cycle(
    logger: logging.Logger, timer: func.TimerRequest, worked: bool, text: str, *args: object
) -> None:
    """Say what the cycle did: at INFO when it did something, at DEBUG when it found nothing
    to do (a 5-s timer would otherwise fill the log with zeros); a late run says so in the
    same line. Counts only: never an address, id or URL."""
    if timer.past_due:
        text += " (the timer was past due)"
    logger.log(logging.INFO if worked else logging.DEBUG, text, *args)
