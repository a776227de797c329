"""The seller's drafts listed (GET /api/messages/drafts) and a stored message's body
(GET /api/messages/{id}/body), through the HTTP app on Azurite: own messages only."""

from __future__ import annotations

import uuid

import httpx

from shared.core.auth import make_dev_token
from shared.core.settings import Settings
from tests.functions.test_openapi import assert_error_shape
from tests.utils.factories import HTML, compose


def _new_seller(settings: Settings) -> dict[str, str]:
    email = f"drafts.{uuid.uuid4().hex[:10]}@contoso.example"
    return {"Authorization": f"Bearer {make_dev_token(settings, email)}"}


async def test_drafts_lists_only_the_sellers_drafts_paged(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    auth = _new_seller(settings)
    drafts = {
        (await compose(client, auth, send=False, subject=f"Draft {n}"))["id"] for n in range(3)
    }
    await compose(client, auth, subject="Sent one")
    blocked = await compose(client, auth, records=False, send=False, to=["nobody@x.example"])
    drafts.add(blocked["id"])  # a draft that is not followed is a draft all the same
    await compose(client, _new_seller(settings), send=False, subject="Someone else's")

    seen: list[str] = []
    continuation = None
    for _ in range(4):
        params = {"limit": 3, **({"continuation": continuation} if continuation else {})}
        page = await client.get("/api/messages/drafts", params=params, headers=auth)
        assert page.status_code == 200, page.text
        body = page.json()
        assert all(item["status"] == "draft" for item in body["items"])
        seen += [item["id"] for item in body["items"]]
        continuation = body["continuation"]
        if continuation is None:
            break
    assert sorted(seen) == sorted(drafts)

    first = (await client.get("/api/messages/drafts", headers=auth)).json()
    deleted = await client.delete(f"/api/messages/{first['items'][0]['id']}", headers=auth)
    assert deleted.status_code == 204
    after = (await client.get("/api/messages/drafts", headers=auth)).json()
    assert len(after["items"]) == len(drafts) - 1


async def test_drafts_refuses_a_token_from_another_list(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    auth = _new_seller(settings)
    for _ in range(2):
        await compose(client, auth, subject="Sent")
    listed = await client.get("/api/messages", params={"limit": 1}, headers=auth)
    token = listed.json()["continuation"]
    refused = await client.get("/api/messages/drafts", params={"continuation": token}, headers=auth)
    assert_error_shape(refused, 422, "continuation")


async def test_body_answers_as_delivered_and_as_written_to_its_seller_only(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    auth = _new_seller(settings)
    sent = await compose(client, auth, subject="With a body")
    answer = await client.get(f"/api/messages/{sent['id']}/body", headers=auth)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["id"] == sent["id"]
    assert body["html"] == sent["html"]  # signed links and the pixel, as delivered
    assert "/t/o/" in body["html"] and "/t/o/" not in body["original"]
    assert body["original"] == HTML

    unfollowed = await compose(client, auth, follow=False, subject="Not followed")
    plain = (await client.get(f"/api/messages/{unfollowed['id']}/body", headers=auth)).json()
    assert plain["html"] == plain["original"] == HTML

    other = _new_seller(settings)
    assert_error_shape(
        await client.get(f"/api/messages/{sent['id']}/body", headers=other), 404, "id"
    )
    assert_error_shape(await client.get("/api/messages/not-an-id/body", headers=auth), 404, "id")
