"""GET /api/me and PUT /api/me: who the caller is, and their display time zone."""

from __future__ import annotations

import httpx

from shared.core.auth import ADMIN_ROLE, DEV_TENANT_ID, dev_object_id, make_dev_token
from shared.core.settings import Settings
from tests.functions.test_openapi import assert_error_shape


async def test_me_says_who_and_roles(client: httpx.AsyncClient, settings: Settings) -> None:
    token = make_dev_token(settings, "Zoe.Me@Contoso.example", roles=(ADMIN_ROLE,))
    response = await client.get("/api/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    assert response.json() == {
        "email": "zoe.me@contoso.example",
        "tenant_id": DEV_TENANT_ID,
        "object_id": dev_object_id("zoe.me@contoso.example"),
        "roles": [ADMIN_ROLE],
        "is_admin": True,
        "time_zone": None,
    }
    assert_error_shape(await client.get("/api/me"), 401, "authorization")


async def test_time_zone_is_kept_per_seller_and_validated(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    mine = {"Authorization": f"Bearer {make_dev_token(settings, 'tz.one@contoso.example')}"}
    other = {"Authorization": f"Bearer {make_dev_token(settings, 'tz.two@contoso.example')}"}
    response = await client.put("/api/me", json={"time_zone": "Europe/Paris"}, headers=mine)
    assert response.status_code == 200, response.text
    assert response.json()["time_zone"] == "Europe/Paris"
    assert (await client.get("/api/me", headers=mine)).json()["time_zone"] == "Europe/Paris"
    assert (await client.get("/api/me", headers=other)).json()["time_zone"] is None
    for bad in ({"time_zone": "Paris"}, {"time_zone": "W. Europe Standard Time"}, {}):
        refused = await client.put("/api/me", json=bad, headers=mine)
        assert_error_shape(refused, 422, "time_zone")
    extra = await client.put("/api/me", json={"time_zone": "UTC", "x": 1}, headers=mine)
    assert_error_shape(extra, 422, "x")
    assert (await client.get("/api/me", headers=mine)).json()["time_zone"] == "Europe/Paris"
