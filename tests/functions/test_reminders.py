"""Follow-up reminders: fired once as high-priority alerts when their condition holds,
closed as satisfied when it no longer does, editable after sending."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

import httpx
import pytest

from shared.assistant.reminders import reminder_cycle
from shared.core.auth import make_dev_token
from shared.core.services import Services
from shared.engagement.fold import fold_cycle
from shared.outlook.replies import record_reply
from tests.conftest import Clock
from tests.utils.factories import compose, compose_body


def seller_auth(services: Services, name: str) -> dict[str, str]:
    return {
        "Authorization": f"Bearer {make_dev_token(services.settings, f'{name}@contoso.example')}"
    }


async def test_no_reply_reminder_fires_once_and_sorts_first(
    client: httpx.AsyncClient, services: Services, clock: Clock
) -> None:
    auth = seller_auth(services, "reminded")
    at = clock.now() + timedelta(hours=1)
    sent = await compose(
        client,
        auth,
        reminder={"title": "Chase Bob", "condition": "no_reply_by", "at": at.isoformat()},
    )
    assert sent["reminder"]["state"] == "pending"
    pixel = sent["html"].split('src="http://track.test', 1)[1].split('"', 1)[0]
    await client.get(pixel)  # opened, but no reply
    await fold_cycle(services, now=clock.advance(60), grace=services.grace)
    await reminder_cycle(services)  # not due yet
    shown = (await client.get(f"/api/messages/{sent['id']}", headers=auth)).json()
    assert shown["reminder"]["state"] == "pending"
    clock.advance(2 * 3600)
    reports = await asyncio.gather(reminder_cycle(services), reminder_cycle(services))
    assert sum(r.fired for r in reports) >= 1
    listed = (await client.get("/api/alerts", headers=auth)).json()["alerts"]
    assert [a["kind"] for a in listed] == ["reminder", "first_open"]  # high priority first
    assert listed[0]["subject"] == "Chase Bob" and listed[0]["priority"] == "high"
    shown = (await client.get(f"/api/messages/{sent['id']}", headers=auth)).json()
    assert shown["reminder"]["state"] == "fired"
    await reminder_cycle(services)
    assert len((await client.get("/api/alerts", headers=auth)).json()["alerts"]) == 2


async def test_doubled_and_concurrent_cycles_fire_a_reminder_exactly_once(
    client: httpx.AsyncClient, services: Services, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    """The 5-s alert timer and the backstop timer both run the cycle, and timers fire twice
    at times: one alert, one "fired", and no failure logged for the cycles that lost."""
    auth = seller_auth(services, "raced")
    at = clock.now() + timedelta(minutes=10)
    sent = await compose(
        client, auth, reminder={"title": "Call", "condition": "at", "at": at.isoformat()}
    )
    clock.advance(10 * 60 + 1)
    with caplog.at_level(logging.ERROR):
        reports = await asyncio.gather(*(reminder_cycle(services) for _ in range(4)))
        reports.append(await reminder_cycle(services))
    assert sum(r.fired for r in reports) == 1
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    listed = (await client.get("/api/alerts", headers=auth)).json()["alerts"]
    assert [a["kind"] for a in listed] == ["reminder"]
    shown = (await client.get(f"/api/messages/{sent['id']}", headers=auth)).json()
    assert shown["reminder"]["state"] == "fired"


async def test_reply_just_before_the_reminder_closes_it_as_satisfied(
    client: httpx.AsyncClient, services: Services, clock: Clock
) -> None:
    auth = seller_auth(services, "satisfied")
    at = clock.now() + timedelta(minutes=30)
    sent = await compose(
        client, auth, reminder={"title": "Chase", "condition": "no_reply_by", "at": at.isoformat()}
    )
    clock.advance(29 * 60)
    await record_reply(
        services, sent["id"], reply_key="<reply@fabrikam.example>", at=clock.now(), automatic=False
    )
    clock.advance(2 * 60)
    assert (await reminder_cycle(services)).satisfied == 1
    assert (await client.get("/api/alerts", headers=auth)).json()["alerts"] == []
    shown = (await client.get(f"/api/messages/{sent['id']}", headers=auth)).json()
    assert shown["reminder"]["state"] == "satisfied" and shown["kpis"]["replies"] == 1


async def test_reminders_are_editable_after_sending_and_checked(
    client: httpx.AsyncClient, services: Services, clock: Clock
) -> None:
    auth = seller_auth(services, "editing")
    sent = await compose(client, auth)
    later = (clock.now() + timedelta(days=2)).isoformat()
    put = await client.put(
        f"/api/messages/{sent['id']}/reminder",
        json={"title": "Call", "condition": "not_opened_by", "at": later},
        headers=auth,
    )
    assert put.status_code == 200 and put.json()["reminder"]["condition"] == "not_opened_by"
    moved = (clock.now() + timedelta(days=3)).isoformat()
    await client.put(
        f"/api/messages/{sent['id']}/reminder",
        json={"title": "Call", "condition": "at", "at": moved},
        headers=auth,
    )
    clock.advance(2.5 * 86400)
    await reminder_cycle(services)  # the old time no longer fires (other tests' reminders may)
    shown = (await client.get(f"/api/messages/{sent['id']}", headers=auth)).json()
    assert shown["reminder"]["state"] == "pending" and shown["reminder"]["at"][:16] == moved[:16]
    assert (await client.get("/api/alerts", headers=auth)).json()["alerts"] == []
    assert (
        await client.delete(f"/api/messages/{sent['id']}/reminder", headers=auth)
    ).status_code == 200
    assert (
        await client.delete(f"/api/messages/{sent['id']}/reminder", headers=auth)
    ).status_code == 409
    clock.advance(86400)
    await reminder_cycle(services)  # the deleted reminder does not fire
    assert (await client.get("/api/alerts", headers=auth)).json()["alerts"] == []
    later = (clock.now() + timedelta(days=1)).isoformat()
    unfollowed = await client.post(
        "/api/messages",
        json=compose_body(
            follow=False, reminder={"title": "x", "condition": "no_reply_by", "at": later}
        ),
        headers=auth,
    )
    assert (
        unfollowed.status_code == 422
        and unfollowed.json()["error"]["field"] == "reminder.condition"
    )
    past = await client.post(
        "/api/messages",
        json=compose_body(reminder={"title": "x", "condition": "at", "at": "2020-01-01T00:00:00Z"}),
        headers=auth,
    )
    assert past.status_code == 422 and past.json()["error"]["field"] == "reminder.at"
    anyway = await client.post(
        "/api/messages",
        json=compose_body(follow=False, reminder={"title": "x", "condition": "at", "at": later}),
        headers=auth,
    )
    assert anyway.status_code == 201
