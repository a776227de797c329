"""Data keyed the old way (a seller was 40 bits of their address) moved to sellers keyed by
their Entra id: after `migrate-identities` the seller sees their older messages, alerts,
webhook and templates again, and each mailbox its sync state and sent-mail index."""

from __future__ import annotations

from pathlib import Path

import httpx
import jwt
import pytest
from azure.data.tables import UpdateMode

from shared.core.auth import DEV_TENANT_ID, dev_seller, make_dev_token
from shared.core.ids import index_key, mailbox_key, message_partition, new_message_id, seller_key
from shared.core.services import Services
from shared.messages.sent_index import index_partition
from shared.ops import cli, identities
from shared.outlook import mailboxes
from shared.outlook.mailboxes import Mailbox
from shared.outlook.replies import load_followed
from tests.utils.factories import compose

LEGACY = "legacy.seller@contoso.example"
OID = "3c1b2a9d-7e6f-4d5c-8b4a-39281706f5e4"  # Entra's id for them, from the map


def bearer(services: Services, email: str, object_id: str | None = None) -> dict[str, str]:
    token = make_dev_token(services.settings, email, object_id=object_id)
    return {"Authorization": f"Bearer {token}"}


async def old_style_data(client: httpx.AsyncClient, services: Services) -> dict[str, str]:
    """What the old code left for LEGACY: a message in the partition of their address with no
    owner, its alert and webhook delivery there too, a template known by address, a
    mailbox and its sent-mail index under the 40-bit key."""
    store, old = services.store, message_partition(LEGACY)
    scratch = bearer(services, "legacy.scratch@contoso.example")
    made = await compose(client, scratch, to=["legacy.reader@fabrikam.example"], follow=False)
    row = dict(await store.messages.get_entity(made["id"][:8], made["id"]))
    message_id = new_message_id(LEGACY)
    del row["owner"]
    await store.messages.create_entity(
        {**row, "PartitionKey": old, "RowKey": message_id, "seller": LEGACY, "subject": "Old"}
    )
    alert = f"open-{message_id}"
    await store.alerts.create_entity(
        {
            "PartitionKey": old,
            "RowKey": alert,
            "kind": "first_open",
            "priority": "normal",
            "message_id": message_id,
            "subject": "Old",
            "regarding": "",
            "created_at": "2024-05-01T10:00:00+00:00",
            "snoozed_until": "",
            "dismissed": False,
            "webhook": "",
        }
    )
    await store.webhooks.create_entity(
        {
            "PartitionKey": "config",
            "RowKey": old,
            "url": "https://hooks.contoso.example/old",
            "secret": "s" * 43,
        }
    )
    await store.webhooks.create_entity(
        {
            "PartitionKey": "pending",
            "RowKey": f"{old}|{alert}",
            "attempts": 0,
            "queued_at": "2024-05-01T10:00:00+00:00",
            "next_at": "",
            "lease_until": "",
        }
    )
    template = await client.post(
        "/api/templates",
        json={"name": "Old one", "subject": "Hi", "html": "<p>Hi</p>"},
        headers=bearer(services, LEGACY, OID),
    )
    assert template.status_code == 201, template.text
    stored = dict(await store.templates.get_entity("org", template.json()["id"]))
    del stored["created_by_id"]
    await store.templates.upsert_entity(stored, mode=UpdateMode.REPLACE)
    state = Mailbox(email=LEGACY, enrolled_at="2024-05-01T10:00:00+00:00", folders=["inbox"])
    await store.mailboxes.upsert_entity({**state.to_entity(), "PartitionKey": old})
    await store.mailboxes.upsert_entity(
        {"PartitionKey": old, "RowKey": "trk-abc", "graph_id": "AAMk", "method": "token"}
    )
    await store.message_index.upsert_entity(
        {
            "PartitionKey": f"imid-{old}",
            "RowKey": index_key("<old@contoso.example>"),
            "message_id": message_id,
        }
    )
    return {"message": message_id, "alert": alert, "template": template.json()["id"]}


async def test_migration_gives_old_data_to_the_seller_keyed_by_their_entra_id(
    client: httpx.AsyncClient, services: Services, tmp_path: Path
) -> None:
    old = await old_style_data(client, services)
    seller = bearer(services, LEGACY, OID)
    assert (await client.get(f"/api/messages/{old['message']}", headers=seller)).status_code == 404
    mapping = tmp_path / "sellers.csv"
    mapping.write_text(f"email,tenant_id,object_id\n{LEGACY.upper()},{DEV_TENANT_ID},{OID}\n")
    keys = identities.read_map(mapping)
    assert keys == {LEGACY: seller_key(DEV_TENANT_ID, OID)}

    report = await identities.migrate(services, keys)
    assert report.messages_owned >= 1 and report.alerts_moved >= 1
    assert (report.webhooks_moved, report.deliveries_moved) == (1, 1)
    assert report.templates_owned >= 1 and report.mailbox_rows_moved >= 2
    assert report.index_rows_moved >= 1

    shown = await client.get(f"/api/messages/{old['message']}", headers=seller)
    assert shown.status_code == 200 and shown.json()["subject"] == "Old"
    new = await compose(client, seller, to=["legacy.reader@fabrikam.example"], follow=False)
    listed = await client.get("/api/messages", params={"follow_state": "any"}, headers=seller)
    assert {m["id"] for m in listed.json()["items"]} == {old["message"], new["id"]}
    alerts = (await client.get("/api/alerts", headers=seller)).json()["alerts"]
    assert [a["id"] for a in alerts] == [old["alert"]]
    hook = await client.get("/api/alerts/webhook", headers=seller)
    assert hook.json()["url"] == "https://hooks.contoso.example/old"
    key = seller_key(DEV_TENANT_ID, OID)
    pending = [
        r["RowKey"]
        async for r in services.store.webhooks.query_entities("PartitionKey eq 'pending'")
    ]
    assert f"{key}|{old['alert']}" in pending
    renamed = await client.patch(
        f"/api/templates/{old['template']}", json={"name": "Renamed"}, headers=seller
    )
    assert renamed.status_code == 200, renamed.text
    box = await mailboxes.load(services, LEGACY)
    assert box.folders == ["inbox"] and box.key == mailbox_key(LEGACY)
    assert await services.store.mailboxes.get_entity(mailbox_key(LEGACY), "trk-abc")
    followed = await load_followed(services, mailbox_key(LEGACY))
    assert followed["imid"][index_key("<old@contoso.example>")] == old["message"]
    assert index_partition("imid", mailbox_key(LEGACY)).startswith("imid-")

    again = await identities.migrate(services, keys)  # idempotent: nothing left to move
    assert (again.messages_owned, again.alerts_moved, again.webhooks_moved) == (0, 0, 0)
    assert (again.templates_owned, again.mailbox_rows_moved, again.index_rows_moved) == (0, 0, 0)
    # Someone else who is given the address later does not get any of it.
    newcomer = bearer(services, LEGACY, "00000000-0000-4000-8000-0000000000bb")
    assert (
        await client.get(f"/api/messages/{old['message']}", headers=newcomer)
    ).status_code == 404
    assert (await client.get("/api/alerts", headers=newcomer)).json()["alerts"] == []


async def test_addresses_the_map_does_not_name_are_reported_and_left(
    client: httpx.AsyncClient, services: Services
) -> None:
    store, stranger = services.store, "not.in.map@contoso.example"
    message_id = new_message_id(stranger)
    await store.messages.create_entity(
        {"PartitionKey": message_partition(stranger), "RowKey": message_id, "seller": stranger}
    )
    report = await identities.migrate(services, {})
    assert stranger in report.unmapped_sellers
    row = await store.messages.get_entity(message_partition(stranger), message_id)
    assert "owner" not in row


def test_the_development_map_uses_the_ids_of_dev_tokens() -> None:
    keys = identities.dev_map(["Ana@Contoso.example", "not an address"])
    assert keys == {"ana@contoso.example": dev_seller("ana@contoso.example").key}


def test_a_map_with_a_bad_line_names_it(tmp_path: Path) -> None:
    mapping = tmp_path / "sellers.csv"
    mapping.write_text("email,tenant_id,object_id\nana@contoso.example,not-a-guid,x\n")
    with pytest.raises(ValueError, match="line 2"):
        identities.read_map(mapping)


@pytest.mark.parametrize("argv", [["dev-token", "ana"], ["dev-token", "ana contoso.example"]])
def test_dev_token_command_refuses_what_is_not_an_address(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(argv)
    assert exited.value.code not in (0, None)
    assert capsys.readouterr().out == ""


def test_dev_token_command_prints_a_token_for_an_address(
    capsys: pytest.CaptureFixture[str],
) -> None:
    cli.main(["dev-token", "ana@contoso.example", "--object-id", OID])
    claims = jwt.decode(capsys.readouterr().out.strip(), options={"verify_signature": False})
    assert (claims["tid"], claims["oid"]) == (DEV_TENANT_ID, OID)
    assert claims["preferred_username"] == "ana@contoso.example"
