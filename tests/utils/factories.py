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


async def ensure_contacts(
    client: httpx.AsyncClient, auth: dict[str, str], addresses: list[str]
) -> None:
    """Make each address a contact record (Follow Email: Allow) unless it is a record already:
    only mail to records can be followed."""
    for address in addresses:
        found = await client.get("/api/records", params={"email": address}, headers=auth)
        assert found.status_code == 200, found.text
        if not found.json()["records"]:
            created = await client.post(
                "/api/records/contact",
                json={"name": address.split("@")[0], "emails": [address]},
                headers=auth,
            )
            assert created.status_code == 201, created.text


async def compose(
    client: httpx.AsyncClient, auth: dict[str, str], *, records: bool = True, **overrides: Any
) -> dict[str, Any]:
    """Compose through the API; `records` first makes the To and Cc recipients contacts."""
    body = compose_body(**overrides)
    if records:
        await ensure_contacts(client, auth, [*body.get("to", []), *body.get("cc", [])])
    response = await client.post("/api/messages", json=body, headers=auth)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def template_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "Quote follow-up",
        "subject": "Your quote, {{ recipient.first_name | default('there') }}",
        "html": "<p>Hi {{ recipient.first_name | default('there') }},</p><p>{{ sender.email }}</p>",
    }
    body.update(overrides)
    return body


async def create_template(
    client: httpx.AsyncClient, auth: dict[str, str], **overrides: Any
) -> dict[str, Any]:
    response = await client.post("/api/templates", json=template_body(**overrides), headers=auth)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result
