"""First-open alerts within seconds (the alert cycle, not the fold), and alerts pushed to a
seller's webhook: signed, retried with backoff, never twice."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import socket
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult

from shared.assistant import webhooks
from shared.assistant.first_open_alerts import first_open_cycle
from shared.classification.classifier import DELIVERY_WINDOW_SECONDS
from shared.core.auth import dev_seller, make_dev_token
from shared.core.errors import InvalidInput
from shared.core.services import Services
from shared.engagement.fold import fold_cycle
from shared.tracking.events import BUCKET_SECONDS, bucket_of, bucket_start
from tests.conftest import Clock
from tests.utils.factories import compose


def seller_auth(services: Services, email: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {make_dev_token(services.settings, email)}"}


# A person's mail client (Outlook on Windows), reading after the delivery window: the kind of
# open the alert cycle alerts on within seconds.
OUTLOOK = {
    "User-Agent": "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17328; Pro)"
}


def after_delivery(clock: Clock) -> None:
    clock.advance(DELIVERY_WINDOW_SECONDS + 60)


def pixel_of(message: dict[str, Any]) -> str:
    return str(message["html"].split('src="http://track.test', 1)[1].split('"', 1)[0])


async def alerts_of(client: httpx.AsyncClient, auth: dict[str, str]) -> list[dict[str, Any]]:
    listed: list[dict[str, Any]] = (await client.get("/api/alerts", headers=auth)).json()["alerts"]
    return listed


def late_in_a_bucket(clock: Clock) -> None:
    """Move the clock to 9 s into a bucket, so that 5 s later is the next bucket."""
    start = bucket_start(bucket_of(clock.now()))
    clock.advance((start + timedelta(seconds=BUCKET_SECONDS + 9) - clock.now()).total_seconds())


async def test_first_open_is_alerted_by_the_next_alert_cycle_without_the_fold(
    client: httpx.AsyncClient, services: Services, clock: Clock
) -> None:
    seller = seller_auth(services, "fast.alert@contoso.example")
    sent = await compose(client, seller, to=["fast.reader@fabrikam.example"])
    after_delivery(clock)
    late_in_a_bucket(clock)
    opened_at = clock.now()
    await client.get(pixel_of(sent), headers=OUTLOOK)
    now = clock.advance(5)  # the open is in the previous bucket now, still listed
    reports = await asyncio.gather(first_open_cycle(services, now), first_open_cycle(services, now))
    assert sum(r.created for r in reports) == 1
    listed = await alerts_of(client, seller)
    assert [(a["id"], a["kind"]) for a in listed] == [(f"open-{sent['id']}", "first_open")]
    created_at = datetime.fromisoformat(listed[0]["created_at"])
    assert abs(created_at - opened_at) < timedelta(seconds=1)  # the open's time, not the cycle's
    assert datetime.fromisoformat(listed[0]["raised_at"]) == now
    assert listed[0]["how"] == "opened in Outlook on Windows"
    assert listed[0]["withdrawn"] is None
    assert (await first_open_cycle(services, clock.advance(1))).checked == 0  # remembered
    # the fold later counts the open and makes no second alert
    await fold_cycle(services, now=clock.advance(60), grace=services.grace)
    assert len(await alerts_of(client, seller)) == 1
    view = (await client.get(f"/api/messages/{sent['id']}", headers=seller)).json()
    assert view["kpis"]["opens"] == 1


async def test_a_preview_before_sending_makes_no_alert_but_the_first_real_open_does(
    client: httpx.AsyncClient, services: Services, clock: Clock
) -> None:
    seller = seller_auth(services, "preview.alert@contoso.example")
    draft = await compose(client, seller, to=["preview.reader@fabrikam.example"], send=False)
    await client.get(pixel_of(draft))
    report = await first_open_cycle(services, clock.advance(1))
    assert report.opens >= 1 and report.created == 0
    assert await alerts_of(client, seller) == []
    await client.post(f"/api/messages/{draft['id']}/send", headers=seller)
    after_delivery(clock)
    await client.get(pixel_of(draft), headers=OUTLOOK)
    assert (await first_open_cycle(services, clock.advance(1))).created == 1
    assert [a["id"] for a in await alerts_of(client, seller)] == [f"open-{draft['id']}"]


async def test_an_open_the_cycle_missed_is_still_alerted_by_the_fold(
    client: httpx.AsyncClient, services: Services, clock: Clock
) -> None:
    seller = seller_auth(services, "missed.alert@contoso.example")
    sent = await compose(client, seller, to=["missed.reader@fabrikam.example"])
    after_delivery(clock)
    await client.get(pixel_of(sent), headers=OUTLOOK)
    report = await first_open_cycle(services, clock.advance(40))  # two buckets on
    assert report.created == 0
    await fold_cycle(services, now=clock.advance(60), grace=services.grace)
    assert [a["id"] for a in await alerts_of(client, seller)] == [f"open-{sent['id']}"]


class Receiver:
    """A seller's webhook endpoint: answers with the queued statuses, records each call."""

    def __init__(self) -> None:
        self.statuses: list[int] = []
        self.calls: list[tuple[dict[str, str], bytes]] = []
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.calls.append((dict(request.headers), await request.read()))
        return web.Response(status=self.statuses.pop(0) if self.statuses else 204)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    found = Receiver()
    app = web.Application()
    app.router.add_post("/hook", found.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    found.url = f"http://127.0.0.1:{port}/hook"
    yield found
    await runner.cleanup()


async def opened(
    client: httpx.AsyncClient, services: Services, clock: Clock, seller: dict[str, str], to: str
) -> str:
    sent = await compose(client, seller, to=[to])
    after_delivery(clock)
    await client.get(pixel_of(sent), headers=OUTLOOK)
    assert (await first_open_cycle(services, clock.advance(1))).created == 1
    return f"open-{sent['id']}"


async def test_alerts_are_pushed_to_the_webhook_signed_and_once(
    client: httpx.AsyncClient, services: Services, clock: Clock, receiver: Receiver
) -> None:
    seller = seller_auth(services, "hooked@contoso.example")
    configured = await client.put("/api/alerts/webhook", json={"url": receiver.url}, headers=seller)
    assert configured.status_code == 200, configured.text
    secret = configured.json()["secret"]
    read = (await client.get("/api/alerts/webhook", headers=seller)).json()
    assert read == {"url": receiver.url, "signature_header": webhooks.SIGNATURE_HEADER}
    alert_id = await opened(client, services, clock, seller, "hooked.reader@fabrikam.example")

    reports = await asyncio.gather(
        webhooks.delivery_cycle(services.store, clock.now(), local=True),
        webhooks.delivery_cycle(services.store, clock.now(), local=True),
    )
    assert sum(r.delivered for r in reports) == 1 and len(receiver.calls) == 1
    headers, body = receiver.calls[0]
    timestamp, mac = (
        part.split("=", 1)[1] for part in headers[webhooks.SIGNATURE_HEADER].split(",")
    )
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    assert hmac.compare_digest(mac, expected.hexdigest())
    sent = json.loads(body)
    assert (sent["id"], sent["kind"], sent["priority"]) == (alert_id, "first_open", "normal")
    await webhooks.delivery_cycle(services.store, clock.advance(3600), local=True)
    assert len(receiver.calls) == 1


async def test_a_failing_webhook_is_retried_with_backoff_then_given_up(
    client: httpx.AsyncClient, services: Services, clock: Clock, receiver: Receiver
) -> None:
    seller = seller_auth(services, "flaky.hook@contoso.example")
    await client.put("/api/alerts/webhook", json={"url": receiver.url}, headers=seller)
    receiver.statuses = [500, 302]
    await opened(client, services, clock, seller, "flaky.reader@fabrikam.example")
    first = await webhooks.delivery_cycle(services.store, clock.now(), local=True)
    assert (first.delivered, first.retrying) == (0, 1)
    assert (
        await webhooks.delivery_cycle(services.store, clock.advance(5), local=True)
    ).retrying == 0  # waits
    assert (
        await webhooks.delivery_cycle(services.store, clock.advance(30), local=True)
    ).retrying == 1  # 302
    done = await webhooks.delivery_cycle(services.store, clock.advance(121), local=True)
    assert done.delivered == 1 and len(receiver.calls) == 3

    receiver.statuses = [503] * webhooks.MAX_ATTEMPTS
    await opened(client, services, clock, seller, "flaky.reader2@fabrikam.example")
    outcomes = []
    for wait in (0, *(b.total_seconds() + 1 for b in webhooks.BACKOFF)):
        outcomes.append(
            await webhooks.delivery_cycle(services.store, clock.advance(wait), local=True)
        )
    assert [o.failed for o in outcomes] == [0] * (webhooks.MAX_ATTEMPTS - 1) + [1]
    assert len(receiver.calls) == 3 + webhooks.MAX_ATTEMPTS


async def test_without_a_webhook_nothing_is_queued_and_removal_drops_pending(
    client: httpx.AsyncClient, services: Services, clock: Clock, receiver: Receiver
) -> None:
    seller = seller_auth(services, "unhooked@contoso.example")
    assert (await client.get("/api/alerts/webhook", headers=seller)).status_code == 404
    await opened(client, services, clock, seller, "unhooked.reader@fabrikam.example")
    assert (await webhooks.delivery_cycle(services.store, clock.now(), local=True)).delivered == 0
    await client.put("/api/alerts/webhook", json={"url": receiver.url}, headers=seller)
    await opened(client, services, clock, seller, "unhooked.reader2@fabrikam.example")
    assert (await client.delete("/api/alerts/webhook", headers=seller)).status_code == 204
    assert (await webhooks.delivery_cycle(services.store, clock.now(), local=True)).delivered == 0
    assert receiver.calls == []


@pytest.mark.parametrize(
    "url",
    [
        "ftp://hooks.example/x",
        "http://hooks.example/x",
        "https://user:pw@hooks.example/x",
        "https:///nohost",
    ],
)
async def test_bad_webhook_urls_are_refused_naming_the_field(
    client: httpx.AsyncClient, services: Services, url: str
) -> None:
    seller = seller_auth(services, "bad.hook@contoso.example")
    answer = await client.put("/api/alerts/webhook", json={"url": url}, headers=seller)
    assert answer.status_code == 422 and answer.json()["error"]["field"] == "url"


@pytest.mark.parametrize(
    "url",
    [
        "https://10.0.0.5/hook",
        "https://169.254.169.254/metadata",
        "https://[::1]/hook",
        "https://localhost/hook",
        "http://127.0.0.1:8080/hook",
        "https://printer.local/hook",
    ],
)
def test_in_azure_a_webhook_cannot_point_inside_the_network(url: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        webhooks.check_url(url, local=False)
    assert refused.value.field == "url"
    assert webhooks.check_url("https://hooks.contoso.example/a?b=1", local=False)


class StubDns(AbstractResolver):
    """A name server that answers one address for every name (a rebinding attacker's)."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.asked: list[str] = []

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.asked.append(host)
        return [
            {"hostname": host, "host": self.address, "port": port, "family": family,
             "proto": 0, "flags": 0}
        ]  # fmt: skip

    async def close(self) -> None:
        return None


async def test_in_azure_a_webhook_reaches_only_the_public_addresses_its_name_resolves_to(
    client: httpx.AsyncClient, services: Services, clock: Clock, receiver: Receiver
) -> None:
    """DNS rebinding: the name looked public when the webhook was set, and resolves to the
    receiver on 127.0.0.1 when the alert is delivered. Nothing reaches it."""
    seller = seller_auth(services, "rebound.hook@contoso.example")
    port = receiver.url.split(":")[2].split("/")[0]
    url = f"https://hooks.rebind.example:{port}/hook"
    key = dev_seller("rebound.hook@contoso.example").key
    await webhooks.configure(services.store, key, url, local=False)  # as Azure accepts it
    await opened(client, services, clock, seller, "rebound.reader@fabrikam.example")
    dns = StubDns("127.0.0.1")
    report = await webhooks.delivery_cycle(services.store, clock.now(), local=False, resolver=dns)
    assert (report.delivered, report.retrying) == (0, 1)
    assert dns.asked == ["hooks.rebind.example"] and receiver.calls == []
    pending = [
        row
        async for row in services.store.webhooks.query_entities("PartitionKey eq 'pending'")
        if row["RowKey"].startswith(key)
    ]
    assert [row["last_error"] for row in pending] == ["no public address"]
    public = await webhooks.PublicAddressesOnly(StubDns("20.70.246.20")).resolve("x.example", 443)
    assert [r["host"] for r in public] == ["20.70.246.20"]
    for private in ("10.1.2.3", "169.254.169.254", "::1", "fd00::1", "100.64.0.1"):
        with pytest.raises(webhooks.PrivateAddress):
            await webhooks.PublicAddressesOnly(StubDns(private)).resolve("x.example", 443)


async def test_a_withdrawn_alert_is_pushed_to_the_webhook_again_saying_why(
    client: httpx.AsyncClient, services: Services, clock: Clock, receiver: Receiver
) -> None:
    seller = seller_auth(services, "withdrawn.hook@contoso.example")
    await client.put("/api/alerts/webhook", json={"url": receiver.url}, headers=seller)
    sent = await compose(client, seller, to=["withdrawn.hook.reader@fabrikam.example"])
    renderer = {**OUTLOOK, "X-Forwarded-For": "198.51.100.41"}
    after_delivery(clock)
    start = bucket_start(bucket_of(clock.now())) + timedelta(seconds=BUCKET_SECONDS + 1)
    opened_at = clock.advance((start - clock.now()).total_seconds())  # early in a bucket
    await client.get(pixel_of(sent), headers=renderer)
    assert (await first_open_cycle(services, clock.advance(1))).created == 1
    await webhooks.delivery_cycle(services.store, clock.now(), local=True)
    assert [json.loads(body)["withdrawn"] for _, body in receiver.calls] == [None]
    # the fold counts the open (its bucket closed) before the sweep, in the next bucket
    closed = bucket_start(bucket_of(opened_at)) + timedelta(seconds=BUCKET_SECONDS)
    await fold_cycle(services, now=closed + services.grace, grace=services.grace)
    clock.advance(BUCKET_SECONDS)
    links = re.findall(r'href="http://track\.test(/t/c/[^"]+)"', sent["html"])
    for link in links:  # the same client checks every link with HEAD: a scanner after all
        await client.head(link, headers=renderer)
    await fold_cycle(services, now=clock.advance(60), grace=services.grace)
    await webhooks.delivery_cycle(services.store, clock.now(), local=True)
    assert len(receiver.calls) == 2
    again = json.loads(receiver.calls[1][1])
    assert again["id"] == f"open-{sent['id']}" and "timing:with_scanner" in again["withdrawn"]
    assert await alerts_of(client, seller) == []
