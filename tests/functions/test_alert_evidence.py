"""Alerts on evidence of a read, and labels revised as evidence arrives: an open that is
clearly a person's alerts within seconds and says how we know; one that needs later evidence
waits for it (ALERT_WAIT_SECONDS); a scanner's pixel fetch followed seconds later by its
sweep is re-labelled by the next fold, its count taken back and any alert withdrawn."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

import httpx

from shared.assistant.first_open_alerts import AlertReport, first_open_cycle
from shared.classification.classifier import DELIVERY_WINDOW_SECONDS
from shared.core.auth import make_dev_token
from shared.core.services import Services
from shared.engagement import history
from shared.engagement.fold import fold_cycle, read_cursor
from shared.tracking.events import BUCKET_SECONDS, bucket_of, bucket_start
from tests.conftest import Clock
from tests.functions.test_honest_numbers import APPLE_MPP, CHROME, OUTLOOK, tracked, view
from tests.utils.factories import compose
from tests.utils.faulty_storage import Cut, cuttable_services

GMAIL_PROXY = (
    "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
)


def seller(services: Services, name: str) -> dict[str, str]:
    token = make_dev_token(services.settings, f"{name}@contoso.example")
    return {"Authorization": f"Bearer {token}"}


async def alerts_of(client: httpx.AsyncClient, auth: dict[str, str]) -> list[dict[str, Any]]:
    listed: list[dict[str, Any]] = (await client.get("/api/alerts", headers=auth)).json()["alerts"]
    return listed


def early_in_a_bucket(clock: Clock) -> datetime:
    """Move the clock to 1 s into the next bucket."""
    start = bucket_start(bucket_of(clock.now())) + timedelta(seconds=BUCKET_SECONDS + 1)
    return clock.advance((start - clock.now()).total_seconds())


def closed(at: datetime, services: Services) -> datetime:
    """A moment at which the fold has closed the bucket of `at` (and not the next one)."""
    return bucket_start(bucket_of(at)) + timedelta(seconds=BUCKET_SECONDS) + services.grace


async def test_a_clear_open_alerts_within_seconds_and_an_open_through_a_proxy_says_approximate(
    client: httpx.AsyncClient, services: Services, clock: Clock
) -> None:
    auth = seller(services, "evidence.clear")
    sent = await compose(client, auth, to=["clear.reader@fabrikam.example"])
    proxied = await compose(client, auth, to=["gmail.reader@fabrikam.example"])
    clock.advance(DELIVERY_WINDOW_SECONDS + 600)
    await client.get(tracked(sent)[0], headers={"User-Agent": OUTLOOK})
    await client.get(tracked(proxied)[0], headers={"User-Agent": GMAIL_PROXY})
    assert (await first_open_cycle(services, clock.advance(2))).created == 2
    how = {a["message_id"]: a["how"] for a in await alerts_of(client, auth)}
    assert how == {
        sent["id"]: "opened in Outlook on Windows",
        proxied["id"]: "opened via Gmail — time approximate",
    }


async def test_an_open_that_needs_later_evidence_waits_for_it_then_alerts(
    client: httpx.AsyncClient, services: Services, clock: Clock
) -> None:
    auth = seller(services, "evidence.wait")
    sent = await compose(client, auth, to=["browser.reader@fabrikam.example"])
    clock.advance(DELIVERY_WINDOW_SECONDS + 600)
    opened_at = early_in_a_bucket(clock)
    await client.get(tracked(sent)[0], headers={"User-Agent": CHROME})  # webmail in a browser
    assert (await first_open_cycle(services, clock.advance(2))).created == 0  # not clear
    await fold_cycle(services, now=clock.advance(45), grace=services.grace)
    assert (await view(client, auth, sent["id"]))["kpis"]["opens"] == 1  # counted at once
    assert (await first_open_cycle(services, clock.now())).created == 0  # still waiting
    assert await alerts_of(client, auth) == []
    wait = timedelta(seconds=services.settings.alert_wait_seconds)
    due = opened_at + wait
    clock.advance((due - clock.now()).total_seconds() + 1)
    if await read_cursor(services.store, sent["id"]) < bucket_of(due):
        # the fold has not absorbed the evidence up to the due time: the alert keeps waiting
        assert (await first_open_cycle(services, clock.now())).waiting >= 1
        await fold_cycle(services, now=clock.advance(45), grace=services.grace)
    reports = await asyncio.gather(
        first_open_cycle(services, clock.now()), first_open_cycle(services, clock.now())
    )
    assert sum(r.due for r in reports) >= 1  # (other tests' queued opens may be due too)
    (alert,) = await alerts_of(client, auth)  # one alert, though two cycles raced
    assert alert["how"] == "opened in a browser on Windows"
    assert abs(datetime.fromisoformat(alert["created_at"]) - opened_at) < timedelta(seconds=1)
    delay = datetime.fromisoformat(alert["raised_at"]) - opened_at
    assert wait <= delay <= 2 * wait + 2 * timedelta(seconds=BUCKET_SECONDS) + services.grace


async def pixel_alone(
    client: httpx.AsyncClient, services: Services, clock: Clock, pixel: str, headers: dict[str, str]
) -> AlertReport:
    """An hour after delivery, the pixel fetched; one alert cycle; then a fold that counts the
    pixel's bucket alone, before whatever the same client sends a bucket later."""
    clock.advance(DELIVERY_WINDOW_SECONDS + 3600)
    fetched_at = early_in_a_bucket(clock)
    await client.get(pixel, headers=headers)
    report = await first_open_cycle(services, clock.advance(2))
    await fold_cycle(services, now=closed(fetched_at, services), grace=services.grace)
    clock.advance(BUCKET_SECONDS)
    return report


async def sweep(client: httpx.AsyncClient, links: list[str], headers: dict[str, str]) -> None:
    for link in links:
        assert (await client.get(link, headers=headers)).status_code == 302


async def test_a_scanners_pixel_fetch_before_its_sweep_is_revised_and_never_alerted(
    client: httpx.AsyncClient, services: Services, clock: Clock
) -> None:
    auth = seller(services, "evidence.sweep")
    sent = await compose(client, auth, to=["scanned.later@fabrikam.example"])
    pixel, links = tracked(sent)
    assert len(links) >= 2
    gateway = {"User-Agent": CHROME, "X-Forwarded-For": "203.0.113.77"}  # unlisted, current UA
    # a scan at click time, long after delivery: no alert at once
    assert (await pixel_alone(client, services, clock, pixel, gateway)).created == 0
    # the fold counted the lone pixel fetch before the sweep arrives: no evidence against it
    assert (await view(client, auth, sent["id"]))["kpis"]["opens"] == 1
    await sweep(client, links, gateway)  # seconds later, in the next bucket
    for _ in range(2 * services.settings.alert_wait_seconds // 5):  # alert ticks meanwhile
        await first_open_cycle(services, clock.advance(5))
        if _ % 2:
            await asyncio.gather(  # doubled fold cycles: still exact
                fold_cycle(services, now=clock.now(), grace=services.grace),
                fold_cycle(services, now=clock.now(), grace=services.grace),
            )
    shown = await view(client, auth, sent["id"])
    assert shown["kpis"]["opens"] == 0 and shown["kpis"]["link_clicks"] == 0
    assert shown["kpis"]["by_class"]["opens"]["scanner"] == 1
    assert shown["kpis"]["by_class"]["link_clicks"]["scanner"] == len(links)
    assert sum(shown["kpis"]["by_class"]["opens"].values()) == 1  # not counted twice
    rows = await history.read(services.store, sent["id"])
    (opened,) = [r for r in rows if r["kind"] == "open"]
    assert opened["label"] == "scanner" and "timing:with_scanner" in opened["reasons"]
    assert await alerts_of(client, auth) == []


async def test_an_alert_raised_on_an_open_later_judged_a_scanners_is_withdrawn_with_the_reason(
    client: httpx.AsyncClient, services: Services, clock: Clock
) -> None:
    auth = seller(services, "evidence.withdraw")
    sent = await compose(client, auth, to=["withdrawn.reader@fabrikam.example"])
    pixel, links = tracked(sent)
    renderer = {"User-Agent": OUTLOOK, "X-Forwarded-For": "198.51.100.23"}
    # looks like a person's Outlook: alerted at once...
    assert (await pixel_alone(client, services, clock, pixel, renderer)).created == 1
    for link in links:  # ...then the same client checks every link with HEAD: a scanner
        await client.head(link, headers=renderer)
    await fold_cycle(services, now=clock.advance(60), grace=services.grace)
    assert await alerts_of(client, auth) == []
    (row,) = [r async for r in services.store.alerts.query_entities(
        "message_id eq @m", parameters={"m": sent["id"]})]  # fmt: skip
    assert row["withdrawn"].startswith("judged unknown on later evidence")
    assert "timing:with_scanner" in row["withdrawn"]
    assert (await view(client, auth, sent["id"]))["kpis"]["opens"] == 0
    # the customer really opens it in the afternoon: the alert stands again, on that open
    clock.advance(3 * 3600)
    await client.get(pixel, headers={"User-Agent": OUTLOOK})
    assert (await first_open_cycle(services, clock.advance(2))).created == 1
    await fold_cycle(services, now=clock.advance(60), grace=services.grace)
    (alert,) = await alerts_of(client, auth)  # one alert: the fold raised nothing more
    assert alert["withdrawn"] is None and alert["how"] == "opened in Outlook on Windows"


async def test_a_revising_fold_cut_at_each_write_then_retried_counts_exactly_once(
    client: httpx.AsyncClient, services: Services, clock: Clock, connection_string: str
) -> None:
    auth = seller(services, "evidence.cut")
    gateway = {"User-Agent": CHROME, "X-Forwarded-For": "203.0.113.78"}
    at = 0
    while True:
        sent = await compose(client, auth, to=[f"cut.{at}@fabrikam.example"])
        pixel, links = tracked(sent)
        await pixel_alone(client, services, clock, pixel, gateway)
        await sweep(client, links, gateway)
        cut = Cut(at)
        cuttable = cuttable_services(services, connection_string, cut)
        try:
            await fold_cycle(cuttable, now=clock.advance(60), grace=services.grace)
        except Exception:  # storage went away mid-fold: any error will do
            assert cut.down
        finally:
            await cuttable.close()
        await fold_cycle(services, now=clock.advance(10), grace=services.grace)  # the next cycle
        await fold_cycle(services, now=clock.advance(10), grace=services.grace)
        shown = await view(client, auth, sent["id"])
        assert shown["kpis"]["opens"] == 0, at
        assert shown["kpis"]["by_class"]["opens"] == {
            "human": 0, "proxy_open": 0, "prefetch": 0, "unknown": 0, "scanner": 1
        }, at  # fmt: skip
        assert shown["kpis"]["by_class"]["link_clicks"]["scanner"] == len(links), at
        rows = await history.read(services.store, sent["id"])
        assert len(rows) == 1 + len(links), at
        if not cut.down:
            break  # the cut came after the fold's last write: every write has been cut
        at += 1
    assert at >= 3  # new rows, the KPIs, the revised rows (and the cursor)


async def test_a_prefetch_and_an_unknown_open_raise_no_alert_and_no_open(
    client: httpx.AsyncClient, services: Services, clock: Clock
) -> None:
    auth = seller(services, "evidence.none")
    prefetched = await compose(client, auth, to=["mpp.reader@fabrikam.example"])
    unknown = await compose(client, auth, to=["bare.agent@fabrikam.example"])
    clock.advance(20)  # Apple's proxy fetches at delivery, read or not
    await client.get(tracked(prefetched)[0], headers={"User-Agent": APPLE_MPP})
    clock.advance(DELIVERY_WINDOW_SECONDS + 600)
    await client.get(tracked(unknown)[0], headers={"User-Agent": "Mozilla/5.0"})
    for tick in range(2 * services.settings.alert_wait_seconds // 5):  # past any wait
        await first_open_cycle(services, clock.advance(5))
        if tick % 2:
            await fold_cycle(services, now=clock.now(), grace=services.grace)
    assert await alerts_of(client, auth) == []
    for sent, label in ((prefetched, "prefetch"), (unknown, "unknown")):
        kpis = (await view(client, auth, sent["id"]))["kpis"]
        assert kpis["opens"] == 0 and kpis["by_class"]["opens"][label] == 1
