"""Sending each recipient their own copy (`send_individually`) with the outbox backend: one
.eml per recipient, each with its own tracking tokens, per-recipient rows in the message's
view; the default group send unchanged; refusals; send later, cancel and reminders."""

from __future__ import annotations

import email
import email.policy
import json
import re
from datetime import timedelta
from email.message import EmailMessage
from typing import Any

import httpx
import pytest

from shared.assistant.reminders import reminder_cycle
from shared.core.auth import make_dev_token
from shared.core.ids import partition_of
from shared.core.services import Services
from shared.core.storage import ATTACHMENTS, MESSAGE_BLOBS, OUTBOX
from shared.engagement.fold import fold_cycle
from shared.messages.dispatch import dispatch_cycle
from shared.tracking.tokens import TrackingRef
from tests.conftest import PERSON_USER_AGENT, Clock
from tests.utils.factories import attachment, compose, compose_body, ensure_contacts

TOKEN = re.compile(r'"http://track\.test/t/[oca]/([A-Za-z0-9]+\.[A-Za-z0-9_=-]+)')
TO = ["ada@fabrikam.example", "bo@fabrikam.example"]
CC = ["cy@fabrikam.example"]
SELLER = "one.by.one@contoso.example"


def seller_auth(services: Services, name: str) -> dict[str, str]:
    token = make_dev_token(services.settings, f"{name}@contoso.example")
    return {"Authorization": f"Bearer {token}"}


async def outbox(services: Services, message_id: str) -> dict[str, EmailMessage]:
    """The delivered .eml files of one message, by blob name."""
    found = {}
    async for name in services.store.outbox.list_blob_names(name_starts_with=message_id):
        data = await (await services.store.outbox.download_blob(name)).readall()
        found[name] = email.message_from_bytes(data, policy=email.policy.default)
    return found  # type: ignore[return-value]


def html_of(mime: EmailMessage) -> str:
    part = mime.get_body(("html",))
    assert part is not None
    return str(part.get_content()).removesuffix("\n")  # MIME ends the text with a newline


def tokens(services: Services, html: str) -> list[TrackingRef]:
    refs = []
    for token in TOKEN.findall(html):
        ref = services.signer.verify(token)
        assert ref is not None, token
        refs.append(ref)
    return refs


def pixel_path(html: str) -> str:
    found = re.search(r'src="http://track\.test(/t/o/[^"]+)"', html)
    assert found is not None
    return found[1]


async def footprint(services: Services, seller: str) -> tuple[int, int]:
    """(the seller's message rows, blobs in the message, attachment and outbox containers)."""
    rows = services.store.messages.query_entities("seller eq @s", parameters={"s": seller})
    blobs = 0
    for container in (MESSAGE_BLOBS, ATTACHMENTS, OUTBOX):
        client = services.store.blob_service.get_container_client(container)
        blobs += len([name async for name in client.list_blob_names()])
    return len([row async for row in rows]), blobs


async def view(client: httpx.AsyncClient, auth: dict[str, str], message_id: str) -> Any:
    response = await client.get(f"/api/messages/{message_id}?history=full", headers=auth)
    assert response.status_code == 200, response.text
    return response.json()


async def test_each_recipient_gets_a_copy_of_their_own_with_their_own_tokens(
    client: httpx.AsyncClient, services: Services, clock: Clock
) -> None:
    auth = seller_auth(services, SELLER.split("@")[0])
    await ensure_contacts(client, auth, [*TO, *CC])
    sent = await compose(
        client,
        auth,
        records=False,
        to=[*TO, TO[0].upper()],  # the same address twice is one copy
        cc=CC,
        bcc=["dee@fabrikam.example"],
        send_individually=True,
        attachments=[attachment("quote.pdf"), attachment("terms.pdf", b"%PDF", followed=False)],
    )
    assert sent["status"] == "sent" and sent["send_individually"] is True
    mails = await outbox(services, sent["id"])
    assert len(mails) == 4
    by_recipient = {str(m["To"]): m for m in mails.values()}
    assert set(by_recipient) == {*TO, *CC, "dee@fabrikam.example"}
    seen: set[str] = set()
    for number, address in enumerate([*TO, *CC, "dee@fabrikam.example"], start=1):
        mime = by_recipient[address]
        assert mime["Cc"] is None and mime["Bcc"] is None
        assert mime["X-Engagement-Message-Id"] == sent["id"]
        refs = tokens(services, html_of(mime))
        assert {r.kind for r in refs} == {"open", "click", "attachment"}
        assert {(r.message_id, r.copy) for r in refs} == {(sent["id"], number)}
        assert [a.get_filename() for a in mime.iter_attachments()] == ["terms.pdf"]
        seen.add(html_of(mime))
    assert len(seen) == 4  # four different bodies

    # copy 2's recipient opens it, as a person, after the delivery window (5 minutes)
    clock.advance(330)
    mime = by_recipient[TO[1]]
    answer = await client.get(pixel_path(html_of(mime)), headers={"User-Agent": PERSON_USER_AGENT})
    assert answer.status_code == 200
    live = await view(client, auth, sent["id"])  # before the fold: read from the events
    assert live["kpis_complete"] is True
    assert [(r["copy"], r["opens"]) for r in live["by_recipient"]] == [
        (1, 0),
        (2, 1),
        (3, 0),
        (4, 0),
    ]
    await fold_cycle(services, now=clock.advance(60), grace=services.grace)
    shown = await view(client, auth, sent["id"])
    assert shown["send_individually"] is True and shown["kpis"]["opens"] == 1
    rows = {r["address"]: r for r in shown["by_recipient"]}
    assert [r["address"] for r in shown["by_recipient"]] == [*TO, *CC, "dee@fabrikam.example"]
    assert rows[TO[1]]["opens"] == 1 and rows[TO[1]]["first_opened_at"] is not None
    assert rows[TO[1]]["first_opened_at"] == rows[TO[1]]["last_opened_at"]
    assert rows[TO[0]]["opens"] == 0 and rows[TO[0]]["first_opened_at"] is None
    assert all(r["link_clicks"] == r["attachment_views"] == 0 for r in rows.values())
    (opened,) = [h for h in shown["history"] if h["event"] == "open"]
    assert (opened["copy"], opened["recipient"]) == (2, TO[1])
    (first,) = [t for t in shown["timeline"] if t["event"] == "open"]
    assert first["recipient"] == TO[1] and first["how"] == "opened in Outlook on Windows"
    alerts = (await client.get("/api/alerts", headers=auth)).json()["alerts"]
    assert [(a["recipient"], a["how"]) for a in alerts if a["message_id"] == sent["id"]] == [
        (TO[1], "opened in Outlook on Windows")
    ]
    listed = (await client.get("/api/messages", headers=auth)).json()["items"]
    assert [item["id"] for item in listed] == [sent["id"]]  # one message in the list

    row = await services.store.messages.get_entity(partition_of(sent["id"]), sent["id"])
    copies = json.loads(row["copies"])
    assert [(c["copy"], c["address"]) for c in copies] == list(
        enumerate([*TO, *CC, "dee@fabrikam.example"], start=1)
    )
    assert len({c["internet_message_id"] for c in copies}) == 4
    assert row["internet_message_id"] == copies[0]["internet_message_id"]


async def test_the_default_group_send_is_one_mail_to_everyone(
    client: httpx.AsyncClient, auth: dict[str, str], services: Services
) -> None:
    sent = await compose(client, auth, to=TO, cc=CC)
    assert sent["send_individually"] is False and "by_recipient" not in sent
    mails = await outbox(services, sent["id"])
    assert list(mails) == [f"{sent['id']}.eml"]
    (mime,) = mails.values()
    assert str(mime["To"]) == ", ".join(TO) and str(mime["Cc"]) == CC[0]
    assert {r.copy for r in tokens(services, html_of(mime))} == {0}
    assert html_of(mime) == sent["html"]
    row = await services.store.messages.get_entity(partition_of(sent["id"]), sent["id"])
    assert not row.get("copies")


async def test_a_draft_keeps_the_choice_and_sends_copies_later(
    client: httpx.AsyncClient, services: Services
) -> None:
    auth = seller_auth(services, "drafting.copies")
    draft = await compose(client, auth, to=TO, send=False, send_individually=True)
    assert draft["status"] == "draft" and draft["send_individually"] is True
    assert [(r["copy"], r["address"]) for r in draft["by_recipient"]] == [(1, TO[0]), (2, TO[1])]
    assert await outbox(services, draft["id"]) == {}
    response = await client.post(f"/api/messages/{draft['id']}/send", headers=auth)
    assert response.status_code == 200, response.text
    assert response.json()["send_individually"] is True
    assert sorted(str(m["To"]) for m in (await outbox(services, draft["id"])).values()) == TO


async def test_an_unfollowed_message_sent_individually_goes_out_as_written(
    client: httpx.AsyncClient, services: Services
) -> None:
    auth = seller_auth(services, "unfollowed.copies")
    sent = await compose(client, auth, to=TO, follow=False, send_individually=True)
    mails = await outbox(services, sent["id"])
    assert sorted(str(m["To"]) for m in mails.values()) == TO
    assert all(html_of(m) == compose_body()["html"] for m in mails.values())


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"to": [f"r{i}@fabrikam.example" for i in range(26)]}, "send_individually"),
        ({"template_id": "t1", "html": "", "subject": ""}, "send_individually"),
    ],
    ids=["too-many-copies", "template-for-one-recipient"],
)
async def test_copies_that_make_no_sense_are_refused_and_nothing_is_written(
    client: httpx.AsyncClient, services: Services, change: dict[str, Any], field: str
) -> None:
    name = "refused.copies"
    auth = seller_auth(services, name)
    before = await footprint(services, f"{name}@contoso.example")
    body = compose_body(**{"to": TO, "send_individually": True, **change})
    response = await client.post("/api/messages", json=body, headers=auth)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == field
    assert await footprint(services, f"{name}@contoso.example") == before


async def test_send_later_sends_every_copy_once_and_cancel_stops_them_all(
    client: httpx.AsyncClient, services: Services, clock: Clock
) -> None:
    auth = seller_auth(services, "later.copies")
    at = clock.now() + timedelta(minutes=30)
    later = await compose(client, auth, to=TO, send_individually=True, send_at=at.isoformat())
    cancelled = await compose(client, auth, to=TO, send_individually=True, send_at=at.isoformat())
    assert later["status"] == "scheduled"
    answer = await client.post(f"/api/messages/{cancelled['id']}/cancel", headers=auth)
    assert answer.status_code == 200 and answer.json()["status"] == "cancelled"
    clock.advance(31 * 60)
    await dispatch_cycle(services)
    await dispatch_cycle(services)
    assert sorted(str(m["To"]) for m in (await outbox(services, later["id"])).values()) == TO
    assert await outbox(services, cancelled["id"]) == {}


async def test_one_reminder_per_message_sent_individually(
    client: httpx.AsyncClient, services: Services, clock: Clock
) -> None:
    auth = seller_auth(services, "reminded.copies")
    at = clock.now() + timedelta(hours=1)
    await ensure_contacts(client, auth, TO)
    opened = await compose(
        client,
        auth,
        to=TO,
        send_individually=True,
        reminder={"title": "Nobody opened", "condition": "not_opened_by", "at": at.isoformat()},
    )
    unopened = await compose(
        client,
        auth,
        to=TO,
        send_individually=True,
        reminder={"title": "Chase them", "condition": "not_opened_by", "at": at.isoformat()},
    )
    mails = await outbox(services, opened["id"])
    clock.advance(600)
    second = next(m for m in mails.values() if str(m["To"]) == TO[1])
    await client.get(pixel_path(html_of(second)), headers={"User-Agent": PERSON_USER_AGENT})
    await fold_cycle(services, now=clock.advance(60), grace=services.grace)
    clock.advance(2 * 3600)
    report = await reminder_cycle(services)
    assert (report.fired, report.satisfied) == (1, 1)
    alerts = (await client.get("/api/alerts", headers=auth)).json()["alerts"]
    reminders = [a for a in alerts if a["kind"] == "reminder"]
    assert [a["subject"] for a in reminders] == ["Chase them"]  # one, not one per copy
    assert (await reminder_cycle(services)).fired == 0
    states = [(await view(client, auth, m["id"]))["reminder"]["state"] for m in (opened, unopened)]
    assert states == ["satisfied", "fired"]


async def test_a_retry_with_the_same_key_sends_no_copy_twice(
    client: httpx.AsyncClient, services: Services
) -> None:
    auth = seller_auth(services, "retried.copies")
    await ensure_contacts(client, auth, TO)
    body = compose_body(to=TO, send_individually=True)
    headers = {**auth, "Idempotency-Key": "copies-once"}
    first = await client.post("/api/messages", json=body, headers=headers)
    again = await client.post("/api/messages", json=body, headers=headers)
    assert first.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["by_recipient"] == first.json()["by_recipient"]
    assert len(await outbox(services, first.json()["id"])) == 2
    grouped = await client.post("/api/messages", json=compose_body(to=TO), headers=headers)
    assert grouped.status_code == 422  # the same key with another body
    assert grouped.json()["error"]["field"] == "Idempotency-Key"
