"""Which mail is followed: only mail to contact, lead and account records that allow it,
checked at compose and again when the mail leaves; the compose response's send-time advice."""

from __future__ import annotations

import email
from email.message import EmailMessage
from email.policy import default
from typing import Any

import httpx

from shared.core.services import Services
from tests.utils.factories import HTML, attachment, compose, compose_body, ensure_contacts


async def post(client: httpx.AsyncClient, auth: dict[str, str], **overrides: Any) -> Any:
    response = await client.post("/api/messages", json=compose_body(**overrides), headers=auth)
    assert response.status_code == 201, response.text
    return response.json()


async def contact(
    client: httpx.AsyncClient, auth: dict[str, str], email_address: str, **body: Any
) -> dict[str, Any]:
    response = await client.post(
        "/api/records/contact",
        json={"name": "Someone", "emails": [email_address], **body},
        headers=auth,
    )
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def set_follow(
    client: httpx.AsyncClient, auth: dict[str, str], record: dict[str, Any], value: str
) -> None:
    response = await client.patch(
        f"/api/records/contact/{record['id']}", json={"follow_email": value}, headers=auth
    )
    assert response.status_code == 200, response.text


async def delivered(services: Services, message_id: str) -> EmailMessage:
    blob = await services.store.outbox.download_blob(f"{message_id}.eml")
    parsed = email.message_from_bytes(await blob.readall(), policy=default)
    assert isinstance(parsed, EmailMessage)
    return parsed


async def test_mail_to_an_address_that_is_no_record_is_sent_but_not_followed(
    client: httpx.AsyncClient, auth: dict[str, str], services: Services
) -> None:
    sent = await post(client, auth, to=["stranger@else.example"], attachments=[attachment()])
    assert sent["follow_state"] == "blocked" and sent["status"] == "sent"
    assert sent["blocked_recipients"] == [
        {
            "address": "stranger@else.example",
            "field": "to",
            "followable": False,
            "reason": "not a contact, lead or account record",
            "records": [],
        }
    ]
    assert sent["html"] == HTML and sent["links"] == []
    mime = await delivered(services, sent["id"])
    assert [part.get_filename() for part in mime.iter_attachments()] == ["quote.pdf"]
    again = (await client.get(f"/api/messages/{sent['id']}", headers=auth)).json()
    assert again["follow_state"] == "blocked"
    assert again["blocked_recipients"][0]["address"] == "stranger@else.example"


async def test_one_recipient_who_does_not_allow_blocks_following_for_all(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    await ensure_contacts(client, auth, ["allows@fabrikam.example"])
    await contact(client, auth, "refuses@fabrikam.example", follow_email="do_not_allow")
    sent = await post(client, auth, to=["allows@fabrikam.example"], cc=["Refuses@Fabrikam.example"])
    assert sent["follow_state"] == "blocked"
    assert [(r["address"], r["field"], r["reason"]) for r in sent["blocked_recipients"]] == [
        ("refuses@fabrikam.example", "cc", "Follow Email is Do Not Allow")
    ]
    assert sent["blocked_recipients"][0]["records"][0]["follow_email"] == "do_not_allow"


async def test_bcc_need_not_be_a_record_but_its_refusal_counts(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    await ensure_contacts(client, auth, ["buyer@fabrikam.example"])
    copied = await post(
        client, auth, to=["buyer@fabrikam.example"], bcc=["colleague@contoso.example"]
    )
    assert copied["follow_state"] == "followed" and copied["links"]
    await contact(client, auth, "hidden.no@fabrikam.example", follow_email="do_not_allow")
    hidden = await post(
        client, auth, to=["buyer@fabrikam.example"], bcc=["hidden.no@fabrikam.example"]
    )
    assert hidden["follow_state"] == "blocked"
    assert [r["field"] for r in hidden["blocked_recipients"]] == ["bcc"]


async def test_the_sellers_choice_not_to_follow_is_not_a_block(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    sent = await post(client, auth, to=["stranger@else.example"], follow=False)
    assert sent["follow_state"] == "not_followed" and "blocked_recipients" not in sent


async def test_preference_changed_before_sending_sends_the_mail_unfollowed(
    client: httpx.AsyncClient, auth: dict[str, str], services: Services
) -> None:
    person = await contact(client, auth, "changes.mind@fabrikam.example")
    draft = await compose(
        client, auth, to=["changes.mind@fabrikam.example"], send=False, attachments=[attachment()]
    )
    assert draft["follow_state"] == "followed" and draft["html"] != HTML
    await set_follow(client, auth, person, "do_not_allow")
    view = (await client.get(f"/api/messages/{draft['id']}/preferences", headers=auth)).json()
    assert view["message_follow_state"] == "followed" and view["follow_state"] == "blocked"

    response = await client.post(f"/api/messages/{draft['id']}/send", headers=auth)
    assert response.status_code == 200, response.text
    mime = await delivered(services, draft["id"])
    body = mime.get_body(("html",))
    assert body is not None and body.get_content().strip() == HTML  # no pixel, no rewritten link
    assert [part.get_filename() for part in mime.iter_attachments()] == ["quote.pdf"]
    sent = (await client.get(f"/api/messages/{draft['id']}", headers=auth)).json()
    assert sent["follow_state"] == "blocked" and sent["links"] == []
    assert sent["attachments"][0]["followed"] is False
    assert sent["blocked_recipients"][0]["reason"] == "Follow Email is Do Not Allow"


async def test_preference_changed_after_sending_leaves_the_sent_mail_followed(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    person = await contact(client, auth, "later.no@fabrikam.example")
    sent = await compose(client, auth, to=["later.no@fabrikam.example"])
    assert sent["follow_state"] == "followed"
    await set_follow(client, auth, person, "do_not_allow")
    view = (await client.get(f"/api/messages/{sent['id']}/preferences", headers=auth)).json()
    assert view["status"] == "sent" and view["message_follow_state"] == "followed"
    assert view["follow_state"] == "blocked"
    assert view["recipients"][0]["records"][0]["follow_email"] == "do_not_allow"
    # The mail already carries its links; the next one to this contact is not followed.
    again = await post(client, auth, to=["later.no@fabrikam.example"])
    assert again["follow_state"] == "blocked"


async def test_preferences_of_another_sellers_message_are_not_found(
    client: httpx.AsyncClient, auth: dict[str, str], services: Services
) -> None:
    from shared.core.auth import make_dev_token

    sent = await compose(client, auth)
    other = {"Authorization": f"Bearer {make_dev_token(services.settings, 'x@contoso.example')}"}
    response = await client.get(f"/api/messages/{sent['id']}/preferences", headers=other)
    assert response.status_code == 404


async def test_compose_to_one_recipient_carries_send_time_advice(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    await contact(
        client,
        auth,
        "in.tokyo@fabrikam.example",
        address={"city": "Tokyo", "country": "JP"},
    )
    sent = await post(client, auth, to=["in.tokyo@fabrikam.example"], send=False)
    advice = sent["advice"]
    assert advice["time_zone"] == "Asia/Tokyo" and advice["send_at"] is not None
    several = await post(
        client, auth, to=["in.tokyo@fabrikam.example"], cc=["other@fabrikam.example"], send=False
    )
    assert "advice" not in several
