"""Opens and clicks told apart: people, scanners, privacy proxies. Every event is kept with
its class and reasons; the headline KPIs count people (and proxies) only; scanners still get
the redirect; the first-open alert waits for an open that is not a scanner's."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import httpx

from shared.assistant.first_open_alerts import first_open_cycle
from shared.classification.message_rules import FLOOD_LIMIT
from shared.core.services import Services
from shared.engagement.fold import fold_cycle
from shared.tracking.events import event_from_blob
from tests.conftest import Clock
from tests.utils.factories import attachment, compose

SCANNER = "python-requests/2.31.0"
# What Apple's Mail Privacy Protection proxy sends (the same string as Mail on a Mac).
APPLE_MPP = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)"
)
OUTLOOK = "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17328; Pro)"
CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/142.0.0.0 Safari/537.36"
)
TRACKED = re.compile(r'(?:src|href)="http://track\.test(/t/[oc]/[^"]+)"')


def tracked(message: dict[str, Any]) -> tuple[str, list[str]]:
    paths = TRACKED.findall(message["html"])
    pixel = next(p for p in paths if p.startswith("/t/o/"))
    return pixel, [p for p in paths if p.startswith("/t/c/")]


async def view(client: httpx.AsyncClient, auth: dict[str, str], message_id: str) -> Any:
    return (await client.get(f"/api/messages/{message_id}?history=full", headers=auth)).json()


async def test_a_scanner_sweep_is_kept_apart_and_still_redirected(
    client: httpx.AsyncClient, auth: dict[str, str], services: Services, clock: Clock
) -> None:
    sent = await compose(client, auth, to=["scanned@fabrikam.example"])
    pixel, links = tracked(sent)
    clock.advance(20)  # a gateway checks the message as it is delivered
    assert (await client.get(pixel, headers={"User-Agent": SCANNER})).status_code == 200
    for link in links:
        answer = await client.get(link, headers={"User-Agent": SCANNER})
        assert answer.status_code == 302 and answer.headers["location"].startswith("https://")
    head = await client.head(pixel, headers={"User-Agent": CHROME})
    assert head.status_code == 200
    clock.advance(3 * 3600)  # the customer reads it in the afternoon, then clicks
    await client.get(pixel, headers={"User-Agent": OUTLOOK})
    clock.advance(40)
    await client.get(links[0], headers={"User-Agent": CHROME})
    await fold_cycle(services, now=clock.advance(60), grace=services.grace)

    shown = await view(client, auth, sent["id"])
    kpis = shown["kpis"]
    assert (kpis["opens"], kpis["link_clicks"]) == (1, 1)
    assert kpis["by_class"]["opens"]["scanner"] == 2 and kpis["by_class"]["opens"]["human"] == 1
    assert kpis["by_class"]["link_clicks"]["scanner"] == len(links)
    assert kpis["mail_clients"] == {"outlook": 1}
    assert [link["clicks"] for link in shown["links"]] == [1] + [0] * (len(links) - 1)
    scanners = [h for h in shown["history"] if h["class"] == "scanner"]
    assert len(scanners) == 2 + len(links) and not any(h["counted"] for h in scanners)
    assert all(h["reasons"] for h in scanners)
    assert any("shape:head" in h["reasons"] for h in scanners)
    listed = (await client.get("/api/messages?limit=200", headers=auth)).json()["items"]
    row = next(item for item in listed if item["id"] == sent["id"])
    assert row["opens"] == 1 and row["by_class"]["opens"]["scanner"] == 2


async def test_each_stored_event_carries_its_class_and_reasons(
    client: httpx.AsyncClient, auth: dict[str, str], services: Services
) -> None:
    sent = await compose(client, auth, to=["stored.class@fabrikam.example"])
    pixel, _ = tracked(sent)
    await client.get(pixel, headers={"User-Agent": SCANNER})
    blobs = [
        blob
        async for blob in services.store.interactions.list_blobs(include=["metadata"])
        if f"/{sent['id']}/" in blob.name
    ]
    (event,) = [event_from_blob(b.name, b.metadata) for b in blobs]
    assert event is not None and event.label == "scanner"
    assert any(reason.startswith("ua:") for reason in event.reasons)


async def test_apple_privacy_protection_is_a_prefetch_shown_apart_and_never_an_open(
    client: httpx.AsyncClient, auth: dict[str, str], services: Services, clock: Clock
) -> None:
    sent = await compose(client, auth, to=["apple.reader@fabrikam.example"])
    pixel, _ = tracked(sent)
    clock.advance(30)
    await client.get(pixel, headers={"User-Agent": APPLE_MPP})
    await fold_cycle(services, now=clock.advance(60), grace=services.grace)
    kpis = (await view(client, auth, sent["id"]))["kpis"]
    assert kpis["opens"] == 0 and kpis["by_class"]["opens"]["prefetch"] == 1
    assert kpis["mail_clients"] == {}
    counting_prefetches = await compose(client, auth, to=["apple.reader@fabrikam.example"])
    pixel, _ = tracked(counting_prefetches)
    clock.advance(30)
    await client.get(pixel, headers={"User-Agent": APPLE_MPP})
    counted = services.settings.model_copy(update={"counted_classes": ["human", "prefetch"]})
    await fold_cycle(dataclasses.replace(services, settings=counted), now=clock.advance(60))
    kpis = (await view(client, auth, counting_prefetches["id"]))["kpis"]
    assert kpis["by_class"]["opens"]["prefetch"] == 1
    assert kpis["opens"] == 1  # this organisation chose to count prefetches


async def test_the_first_open_alert_waits_for_an_open_no_scanner_made(
    client: httpx.AsyncClient, services: Services, clock: Clock
) -> None:
    from shared.core.auth import make_dev_token

    seller = {
        "Authorization": f"Bearer {make_dev_token(services.settings, 'honest@contoso.example')}"
    }
    sent = await compose(client, seller, to=["honest.reader@fabrikam.example"])
    pixel, _ = tracked(sent)
    clock.advance(5)
    await client.get(pixel, headers={"User-Agent": SCANNER})
    assert (await first_open_cycle(services, clock.advance(1))).created == 0
    await fold_cycle(services, now=clock.advance(60), grace=services.grace)
    alerts = (await client.get("/api/alerts", headers=seller)).json()["alerts"]
    assert alerts == []
    clock.advance(600)
    await client.get(pixel, headers={"User-Agent": OUTLOOK})
    assert (await first_open_cycle(services, clock.advance(1))).created == 1
    await fold_cycle(services, now=clock.advance(60), grace=services.grace)
    alerts = (await client.get("/api/alerts", headers=seller)).json()["alerts"]
    assert [a["id"] for a in alerts] == [f"open-{sent['id']}"]


async def test_one_client_flooding_the_pixel_is_recorded_but_counted_a_plausible_few(
    client: httpx.AsyncClient, auth: dict[str, str], services: Services, clock: Clock
) -> None:
    sent = await compose(client, auth, to=["flooded@fabrikam.example"])
    pixel, _ = tracked(sent)
    await fold_cycle(services, now=clock.advance(3 * 3600), grace=services.grace)  # caught up
    for _ in range(150):  # a loop in one client: the same office network and user agent
        assert (await client.get(pixel, headers={"User-Agent": OUTLOOK})).status_code == 200
    live = await view(client, auth, sent["id"])  # before any fold: the flood is judged already
    assert live["kpis"]["opens"] == FLOOD_LIMIT and live["kpis_complete"]
    await fold_cycle(services, now=clock.advance(60), grace=services.grace)
    clock.advance(5)
    for _ in range(50):  # the loop goes on into the next fold cycle
        await client.get(pixel, headers={"User-Agent": OUTLOOK})
    await fold_cycle(services, now=clock.advance(60), grace=services.grace)
    await fold_cycle(services, now=clock.advance(60), grace=services.grace)  # a doubled cycle

    shown = await view(client, auth, sent["id"])
    assert shown["kpis"]["opens"] == FLOOD_LIMIT
    assert shown["kpis"]["by_class"]["opens"]["human"] == FLOOD_LIMIT
    assert shown["kpis"]["by_class"]["opens"]["unknown"] == 200 - FLOOD_LIMIT
    opens = [h for h in shown["history"] if h["event"] == "open"]
    floods = [h for h in opens if "flood:pixel" in h["reasons"]]
    assert len(opens) == 200 and len(floods) == 200 - FLOOD_LIMIT
    assert not any(h["counted"] for h in floods) and all(h["class"] == "unknown" for h in floods)


def walk_through_step_3(readme: str = "") -> tuple[float, dict[str, str]]:
    """The README walk-through's customer step: how long it waits after sending, and the user
    agent of its request for the pixel, the link and the attachment (curl's own without -A)."""
    readme = readme or (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    step = readme.split("# 3. be the customer", 1)[1].split("# 4.", 1)[0]
    variables = dict(re.findall(r"^(\w+)='([^']*)'$", step, re.MULTILINE))
    wait = sum(float(s) for s in re.findall(r"^sleep (\d+)$", step, re.MULTILINE))
    agents = {}
    for line in step.splitlines():
        target = re.search(r'"\$(PIXEL|LINK|FILE)"', line)
        if line.startswith("curl") and target:
            given = re.search(r"-A (?:\"\$(\w+)\"|'([^']*)')", line)
            agent = "curl/8.5.0" if given is None else variables.get(given[1], given[2])
            agents[target[1]] = agent
    return wait, agents


async def test_the_readme_walk_through_counts_its_customer_as_a_person(
    client: httpx.AsyncClient, auth: dict[str, str], services: Services, clock: Clock
) -> None:
    """A newcomer following the README must see the open, the click and the attachment view
    counted, each as a person's."""
    wait, agents = walk_through_step_3()
    assert set(agents) == {"PIXEL", "LINK", "FILE"}
    sent = await compose(client, auth, to=["walker@fabrikam.example"], attachments=[attachment()])
    pixel, links = tracked(sent)
    (file,) = re.findall(r'href="http://track\.test(/t/a/[^"]+)"', sent["html"])
    clock.advance(wait + 1)
    await client.get(pixel, headers={"User-Agent": agents["PIXEL"]})
    await client.get(links[0], headers={"User-Agent": agents["LINK"]})
    await client.get(file, headers={"User-Agent": agents["FILE"]})
    await fold_cycle(services, now=clock.advance(60), grace=services.grace)
    kpis = (await view(client, auth, sent["id"]))["kpis"]
    assert (kpis["opens"], kpis["link_clicks"], kpis["attachment_views"]) == (1, 1, 1)
    assert {kind: tally["human"] for kind, tally in kpis["by_class"].items()} == {
        "opens": 1,
        "link_clicks": 1,
        "attachment_views": 1,
    }
