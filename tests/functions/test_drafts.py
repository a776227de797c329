"""Drafts through the HTTP app: change one (PATCH), delete one, Retry Follow; refused for a
message that is not a draft, for another seller's, for bad input (nothing written) and for
a change that races another."""

from __future__ import annotations

import asyncio
import contextlib
import re
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx

from shared.bootstrap import build_services
from shared.core.auth import make_dev_token
from shared.core.ids import partition_of
from shared.core.services import Services
from shared.core.settings import Settings
from shared.tracking.links import FINAL_METADATA, links_blob_name
from tests.functions.test_openapi import assert_error_shape
from tests.utils.factories import attachment, compose, ensure_contacts


def _unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}@fabrikam.example"


async def _draft(
    client: httpx.AsyncClient, auth: dict[str, str], **overrides: Any
) -> dict[str, Any]:
    return await compose(client, auth, send=False, **overrides)


async def _get(client: httpx.AsyncClient, auth: dict[str, str], message_id: str) -> httpx.Response:
    return await client.get(f"/api/messages/{message_id}", headers=auth)


async def _blob_names(services: Services, message_id: str) -> set[str]:
    names = set()
    for container in (services.store.message_blobs, services.store.attachments):
        async for name in container.list_blob_names(name_starts_with=f"{message_id}/"):
            names.add(name)
    return names


async def test_patch_changes_a_draft_and_signs_its_new_body(
    client: httpx.AsyncClient, auth: dict[str, str], services: Services
) -> None:
    draft = await _draft(client, auth, attachments=[attachment()])
    assert draft["status"] == "draft" and draft["follow_state"] == "followed"
    new_to = _unique("bea")
    await ensure_contacts(client, auth, [new_to])
    html = '<p>New text, <a href="https://contoso.example/new">new link</a></p>'
    changed = await client.patch(
        f"/api/messages/{draft['id']}",
        json={
            "to": [new_to],
            "cc": [],
            "subject": "Your new quote",
            "html": html,
            "attachments": [attachment("terms.txt", b"terms", followed=False)],
        },
        headers=auth,
    )
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert body["to"] == [new_to] and body["subject"] == "Your new quote"
    assert body["follow_state"] == "followed"
    assert [link["url"] for link in body["links"]] == ["https://contoso.example/new"]
    assert "/t/c/" in body["html"] and "/t/o/" in body["html"]  # signed again
    assert [(a["name"], a["followed"]) for a in body["attachments"]] == [("terms.txt", False)]
    shown = (await _get(client, auth, draft["id"])).json()
    assert shown["subject"] == "Your new quote" and shown["to"] == [new_to]
    names = await _blob_names(services, draft["id"])
    assert f"{draft['id']}/d0" in names and f"{draft['id']}/f0" not in names  # old file gone
    # Only the subject: the rest stays, the body as it was written.
    again = await client.patch(
        f"/api/messages/{draft['id']}", json={"subject": "Third"}, headers=auth
    )
    assert again.status_code == 200, again.text
    assert again.json()["to"] == [new_to] and again.json()["links"] == body["links"]


async def test_patch_follow_false_unfollows_and_keeps_the_seller_html(
    client: httpx.AsyncClient, auth: dict[str, str], services: Services
) -> None:
    draft = await _draft(client, auth)
    changed = await client.patch(
        f"/api/messages/{draft['id']}", json={"follow": False}, headers=auth
    )
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert body["follow_state"] == "not_followed" and body["links"] == []
    assert "/t/" not in body["html"] and "contoso.example/pricing" in body["html"]
    assert f"{draft['id']}/original.html" not in await _blob_names(services, draft["id"])
    back = await client.patch(f"/api/messages/{draft['id']}", json={"follow": True}, headers=auth)
    assert back.json()["follow_state"] == "followed" and len(back.json()["links"]) == 2


async def test_bad_patch_names_the_field_and_writes_nothing(
    client: httpx.AsyncClient, auth: dict[str, str], services: Services
) -> None:
    draft = await _draft(client, auth, attachments=[attachment()])
    before = (await _get(client, auth, draft["id"])).json()
    blobs = await _blob_names(services, draft["id"])
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"to": ["not an address"]}, 422, "to[0]"),
        ({"to": [], "cc": [], "bcc": []}, 422, "to"),
        ({"html": ""}, 422, "html"),
        ({"subject": "line\r\nBcc: x@y.example"}, 422, "subject"),
        ({"attachments": [{**attachment(), "content": "%%%"}]}, 422, "attachments[0].content"),
        ({"attachments": [{**attachment(), "name": "../x"}]}, 422, "attachments[0].name"),
        ({"status": "sent"}, 422, "status"),
        (
            {"attachments": [attachment(data=b"x" * (70 * 1024))]},
            413,
            "attachments[0].content",
        ),
    ]
    for patch, status, field in cases:
        response = await client.patch(f"/api/messages/{draft['id']}", json=patch, headers=auth)
        assert_error_shape(response, status, field)
    bad_json = await client.patch(
        f"/api/messages/{draft['id']}",
        content=b"{nope",
        headers={**auth, "Content-Type": "application/json"},
    )
    assert_error_shape(bad_json, 400, "body")
    assert (await _get(client, auth, draft["id"])).json() == before
    assert await _blob_names(services, draft["id"]) == blobs


async def test_a_message_that_is_not_a_draft_is_not_changed_or_deleted(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    sent = await compose(client, auth)
    assert sent["status"] == "sent"
    for response in (
        await client.patch(f"/api/messages/{sent['id']}", json={"subject": "x"}, headers=auth),
        await client.delete(f"/api/messages/{sent['id']}", headers=auth),
        await client.post(f"/api/messages/{sent['id']}/retry-follow", headers=auth),
    ):
        assert_error_shape(response, 409, "status")
    assert (await _get(client, auth, sent["id"])).json()["subject"] == "Your quote"


async def test_another_sellers_draft_is_not_found(
    client: httpx.AsyncClient, auth: dict[str, str], settings: Settings
) -> None:
    draft = await _draft(client, auth)
    other = {"Authorization": f"Bearer {make_dev_token(settings, 'bob.other@contoso.example')}"}
    for response in (
        await client.patch(f"/api/messages/{draft['id']}", json={"subject": "x"}, headers=other),
        await client.delete(f"/api/messages/{draft['id']}", headers=other),
        await client.post(f"/api/messages/{draft['id']}/retry-follow", headers=other),
        await client.patch("/api/messages/not-an-id", json={"subject": "x"}, headers=auth),
    ):
        assert_error_shape(response, 404, "id")
    assert (await _get(client, auth, draft["id"])).json()["subject"] == "Your quote"


async def test_delete_removes_the_draft_and_its_blobs(
    client: httpx.AsyncClient, auth: dict[str, str], services: Services
) -> None:
    draft = await _draft(client, auth, attachments=[attachment()])
    assert await _blob_names(services, draft["id"])
    deleted = await client.delete(f"/api/messages/{draft['id']}", headers=auth)
    assert deleted.status_code == 204 and deleted.content == b""
    assert_error_shape(await _get(client, auth, draft["id"]), 404, "id")
    assert await _blob_names(services, draft["id"]) == set()
    assert_error_shape(await client.delete(f"/api/messages/{draft['id']}", headers=auth), 404, "id")


async def test_a_draft_being_changed_refuses_another_change_a_delete_and_a_send(
    client: httpx.AsyncClient, auth: dict[str, str], services: Services
) -> None:
    draft = await _draft(client, auth)
    # Another request holds the draft while it writes the blobs (as drafts.update does).
    until = (services.clock() + timedelta(minutes=1)).isoformat()
    await services.store.messages.update_entity(
        {"PartitionKey": partition_of(draft["id"]), "RowKey": draft["id"], "editing_until": until}
    )
    for response in (
        await client.patch(f"/api/messages/{draft['id']}", json={"subject": "x"}, headers=auth),
        await client.delete(f"/api/messages/{draft['id']}", headers=auth),
        await client.post(f"/api/messages/{draft['id']}/send", headers=auth),
    ):
        assert_error_shape(response, 409, "status")
    shown = (await _get(client, auth, draft["id"])).json()
    assert shown["status"] == "draft" and shown["subject"] == "Your quote"


async def test_concurrent_changes_never_mix(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    draft = await _draft(client, auth)
    first = {"subject": "From A", "html": "<p>Body A</p>"}
    second = {"subject": "From B", "html": "<p>Body B</p>"}
    answers = await asyncio.gather(
        *(
            client.patch(f"/api/messages/{draft['id']}", json=patch, headers=auth)
            for patch in (first, second)
        )
    )
    statuses = sorted(a.status_code for a in answers)
    assert statuses in ([200, 200], [200, 409]), [a.text for a in answers]
    for answer in answers:
        if answer.status_code == 409:
            assert_error_shape(answer, 409, "status")
    winner = [a.json() for a in answers if a.status_code == 200][-1]
    shown = (await _get(client, auth, draft["id"])).json()
    assert shown["subject"] == winner["subject"]
    # The stored body is the winner's, never the other's.
    letter = winner["subject"][-1]
    sent = await client.post(f"/api/messages/{draft['id']}/send", headers=auth)
    assert sent.status_code == 200, sent.text
    assert sent.json()["subject"] == f"From {letter}"


async def test_retry_follow_follows_once_the_recipient_may_be_followed(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    stranger = _unique("stranger")
    draft = await compose(client, auth, records=False, to=[stranger], send=False)
    assert draft["follow_state"] == "blocked"
    still = await client.post(f"/api/messages/{draft['id']}/retry-follow", headers=auth)
    assert still.status_code == 200, still.text
    assert still.json()["follow_state"] == "blocked"
    assert still.json()["follow_reason"]
    assert [r["address"] for r in still.json()["blocked_recipients"]] == [stranger]
    await ensure_contacts(client, auth, [stranger])
    followed = await client.post(f"/api/messages/{draft['id']}/retry-follow", headers=auth)
    assert followed.status_code == 200, followed.text
    body = followed.json()
    assert body["follow_state"] == "followed" and "blocked_recipients" not in body
    assert len(body["links"]) == 2 and "/t/o/" in body["html"]
    shown = (await _get(client, auth, draft["id"])).json()
    assert shown["follow_state"] == "followed"


async def test_attachments_kept_by_a_patch_go_out_with_the_mail(
    client: httpx.AsyncClient, auth: dict[str, str], services: Services
) -> None:
    draft = await _draft(client, auth, attachments=[attachment(data=b"kept bytes")])
    await client.patch(f"/api/messages/{draft['id']}", json={"subject": "Kept"}, headers=auth)
    sent = await client.post(f"/api/messages/{draft['id']}/send", headers=auth)
    assert sent.status_code == 200 and sent.json()["status"] == "sent", sent.text
    blob = await services.store.attachments.download_blob(f"{draft['id']}/f0")
    assert await blob.readall() == b"kept bytes"


CLICK = re.compile(r'href="http://track\.test(/t/c/[^"]+)"')


@contextlib.asynccontextmanager
async def _other_worker(services: Services) -> AsyncIterator[httpx.AsyncClient]:
    """Another worker of the app: its own services (its own link cache), the same storage."""
    from functions.http_app import create_app

    worker = build_services(services.settings, services.clock, store=services.store)
    transport = httpx.ASGITransport(app=create_app(lambda: worker))
    async with httpx.AsyncClient(transport=transport, base_url="http://track.test") as http:
        yield http


async def _location(http: httpx.AsyncClient, path: str) -> str | None:
    """Where a click goes: the redirect's target, or None for the plain 404 page."""
    response = await http.get(path)
    assert response.status_code in (302, 404), response.text
    return response.headers["location"] if response.status_code == 302 else None


async def test_a_click_after_a_draft_is_edited_goes_where_the_edited_body_says(
    client: httpx.AsyncClient, auth: dict[str, str], services: Services
) -> None:
    old = '<p><a href="https://contoso.example/old">old</a></p>'
    draft = await _draft(client, auth, html=old)
    async with _other_worker(services) as worker:
        # The seller's preview click, on another worker than the one that takes the edit.
        (first,) = CLICK.findall(draft["html"])
        assert await _location(worker, first) == "https://contoso.example/old"
        new = (
            '<p><a href="https://contoso.example/new">new</a> and '
            '<a href="https://contoso.example/more">more</a></p>'
        )
        edited = await client.patch(
            f"/api/messages/{draft['id']}", json={"html": new}, headers=auth
        )
        assert edited.status_code == 200, edited.text
        clicks = CLICK.findall(edited.json()["html"])
        assert [await _location(worker, c) for c in clicks] == [
            "https://contoso.example/new",
            "https://contoso.example/more",
        ]
        shown = (await worker.get(f"/api/messages/{draft['id']}", headers=auth)).json()
        assert [link["url"] for link in shown["links"]] == [
            "https://contoso.example/new",
            "https://contoso.example/more",
        ]
        # Unfollowed, the draft's links lead nowhere any more.
        unfollowed = await client.patch(
            f"/api/messages/{draft['id']}", json={"follow": False}, headers=auth
        )
        assert unfollowed.status_code == 200, unfollowed.text
        assert [await _location(worker, c) for c in clicks] == [None, None]
        # Followed again and sent: the links are final, and a worker may keep them.
        again = await client.patch(
            f"/api/messages/{draft['id']}", json={"follow": True}, headers=auth
        )
        assert again.json()["follow_state"] == "followed"
        sent = await client.post(f"/api/messages/{draft['id']}/send", headers=auth)
        assert sent.status_code == 200, sent.text
        final = CLICK.findall(again.json()["html"])
        assert await _location(worker, final[1]) == "https://contoso.example/more"
    properties = await services.store.message_blobs.get_blob_client(
        links_blob_name(draft["id"])
    ).get_blob_properties()
    assert properties.metadata == FINAL_METADATA  # final now: workers may cache them


async def test_a_deleted_drafts_links_lead_nowhere(
    client: httpx.AsyncClient, auth: dict[str, str], services: Services
) -> None:
    draft = await _draft(client, auth)
    async with _other_worker(services) as worker:
        clicks = CLICK.findall(draft["html"])
        assert await _location(worker, clicks[1]) == "https://contoso.example/demo"
        gone = await client.delete(f"/api/messages/{draft['id']}", headers=auth)
        assert gone.status_code == 204
        assert await _location(worker, clicks[1]) is None
