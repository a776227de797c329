"""Request bodies and helpers shared by the API tests."""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import urlsplit

import httpx

HTML = (
    "<html><body><p>Hello,</p>"
    '<p><a href="https://contoso.example/pricing?plan=pro&amp;seats=5">Pricing</a> and '
    '<a href="https://contoso.example/demo">a demo</a>.</p></body></html>'
)


def compose_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "to": ["customer@fabrikam.example"],
        "subject": "Your quote",
        "html": HTML,
    }
    body.update(overrides)
    return body


def attachment(
    name: str = "quote.pdf", data: bytes = b"%PDF-1.4 quote", followed: bool = True
) -> dict[str, Any]:
    return {
        "name": name,
        "content_type": "application/pdf",
        "content": base64.b64encode(data).decode(),
        "followed": followed,
    }


def path_of(url: str) -> str:
    """The path of a tracking URL, to call it through the test client."""
    return urlsplit(url).path


async def compose(
    client: httpx.AsyncClient, auth: dict[str, str], **overrides: Any
) -> dict[str, Any]:
    response = await client.post("/api/messages", json=compose_body(**overrides), headers=auth)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result
