"""A compose request checked whole before anything is written: recipients, body or
template, copies sent individually, send time, and attachments decoded and measured against
the limits."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime

from shared.core.errors import InvalidInput
from shared.core.services import Services
from shared.messages.copies import recipients
from shared.messages.models import ComposeIn


@dataclass(frozen=True, slots=True)
class CheckedFile:
    index: int
    name: str
    content_type: str
    content: bytes
    followed: bool


def _decode_attachments(body: ComposeIn, services: Services) -> list[CheckedFile]:
    limits = services.settings
    if len(body.attachments) > limits.max_attachments:
        raise InvalidInput("attachments", f"at most {limits.max_attachments} attachments")
    files, total = [], 0
    for i, item in enumerate(body.attachments):
        try:
            content = base64.b64decode(item.content, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidInput(f"attachments[{i}].content", "is not valid base64") from None
        if len(content) > limits.max_attachment_bytes:
            raise InvalidInput(
                f"attachments[{i}].content",
                f"is over {limits.max_attachment_bytes} bytes",
                too_large=True,
            )
        total += len(content)
        files.append(CheckedFile(i, item.name, item.content_type, content, item.followed))
    if total > limits.max_total_attachment_bytes:
        raise InvalidInput(
            "attachments",
            f"together over {limits.max_total_attachment_bytes} bytes",
            too_large=True,
        )
    return files


def checked_files(body: ComposeIn, services: Services) -> list[CheckedFile]:
    if not (body.to or body.cc or body.bcc):
        raise InvalidInput("to", "at least one recipient is required in to, cc or bcc")
    if body.template_id is None and not body.html:
        raise InvalidInput("html", "is required unless template_id is given")
    if body.template_id is not None and (body.html or body.subject):
        raise InvalidInput("template_id", "leave subject and html empty to use a template")
    if body.send_individually:
        _check_copies(body, services.settings.max_individual_copies)
    if body.send_at is not None:
        check_future(services, body.send_at)
    if len(body.html.encode("utf-8")) > services.settings.max_html_bytes:
        raise InvalidInput(
            "html", f"is over {services.settings.max_html_bytes} bytes", too_large=True
        )
    return _decode_attachments(body, services)


def _check_copies(body: ComposeIn, limit: int) -> None:
    """One copy per recipient: at most `limit` of them (each is a message Exchange counts
    against the mailbox's sending rate), and not from a template, which is rendered for the
    first recipient only and would greet every other one by the wrong name."""
    count = len(recipients(body.to, body.cc, body.bcc))
    if count > limit:
        raise InvalidInput(
            "send_individually",
            f"sends at most {limit} copies; this message has {count} recipients",
        )
    if body.template_id is not None and count > 1:
        raise InvalidInput(
            "send_individually",
            "cannot send a template individually: it is rendered for the first recipient only",
        )


def check_future(services: Services, send_at: datetime) -> None:
    if send_at <= services.clock():
        raise InvalidInput("send_at", "must be in the future")
