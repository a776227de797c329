"""Turning a seller's HTML into the followed body that is delivered. Pure: no I/O."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from html import escape

from shared.core.errors import InvalidInput
from shared.tracking.rewrite import FollowedLink, rewrite_html
from shared.tracking.tokens import MAX_INDEX, TokenSigner, TrackingRef


@dataclass(frozen=True, slots=True)
class FollowedFile:
    """A followed attachment as the body lists it."""

    index: int
    name: str
    size: int


@dataclass(frozen=True, slots=True)
class FollowedBody:
    """The body as delivered and the links it follows."""

    html: str
    links: tuple[FollowedLink, ...]


def tracking_url(base_url: str, signer: TokenSigner, ref: TrackingRef) -> str:
    """The public URL of a tracking endpoint for `ref`."""
    path = {"open": "o", "click": "c", "attachment": "a"}[ref.kind]
    suffix = ".gif" if ref.kind == "open" else ""
    return f"{base_url.rstrip('/')}/t/{path}/{signer.sign(ref)}{suffix}"


def _human_size(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.0f} KB"
    return f"{size / (1024 * 1024):.1f} MB"


def attachments_block(links: Sequence[tuple[str, FollowedFile]]) -> str:
    """The list of followed attachments added to the body, one tracked link each."""
    rows = "".join(
        f'<p style="margin:0 0 4px 0"><a href="{escape(url)}">{escape(item.name)}</a>'
        f" ({_human_size(item.size)})</p>"
        for url, item in links
    )
    return (
        '<table role="presentation" cellpadding="0" cellspacing="0" border="0" '
        'style="margin:16px 0;font-family:Segoe UI,Arial,sans-serif;font-size:14px">'
        '<tr><td><p style="margin:0 0 4px 0;font-weight:600">Attachments</p>'
        f"{rows}</td></tr></table>"
    )


def followed_body(
    html: str,
    *,
    message_id: str,
    signer: TokenSigner,
    base_url: str,
    own_hosts: Collection[str],
    files: Sequence[FollowedFile],
    copy: int = 0,
) -> FollowedBody:
    """Rewrite every followable link to its redirect, add the tracked attachment links and
    the open pixel; everything else stays byte for byte what the seller wrote. `copy` (1,
    2, ...) gives one recipient's copy its own tokens."""

    click_token = signer.signer_for("click", message_id, copy)
    click_base = f"{base_url.rstrip('/')}/t/c/"

    def click_url(index: int, _target: str) -> str:
        if index > MAX_INDEX:
            raise InvalidInput("html", f"has more than {MAX_INDEX + 1} links to follow")
        return click_base + click_token(index)

    def attachment_ref(index: int) -> TrackingRef:
        return TrackingRef("attachment", message_id, index, copy)

    pixel = tracking_url(base_url, signer, TrackingRef("open", message_id, 0, copy))
    result = rewrite_html(html, tracked_url=click_url, pixel_url=pixel, own_hosts=own_hosts)
    out = result.html
    if files:
        block = attachments_block(
            [(tracking_url(base_url, signer, attachment_ref(f.index)), f) for f in files]
        )
        at = result.pixel_at if result.pixel_at is not None else len(out)
        out = out[:at] + block + out[at:]
    return FollowedBody(out, result.links)
