"""The Graph stand-in, driven by the real msgraph-sdk the way the app will drive Graph."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_http.middleware.options import HeadersInspectionHandlerOption
from msgraph import GraphServiceClient
from msgraph.generated.models.body_type import BodyType
from msgraph.generated.models.category_color import CategoryColor
from msgraph.generated.models.email_address import EmailAddress
from msgraph.generated.models.file_attachment import FileAttachment
from msgraph.generated.models.internet_message_header import InternetMessageHeader
from msgraph.generated.models.item_body import ItemBody
from msgraph.generated.models.message import Message
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.outlook_category import OutlookCategory
from msgraph.generated.models.recipient import Recipient
from msgraph.generated.models.single_value_legacy_extended_property import (
    SingleValueLegacyExtendedProperty,
)
from msgraph.generated.users.item.calendar_view.delta.delta_request_builder import (
    DeltaRequestBuilder as EventDeltaRequestBuilder,
)
from msgraph.generated.users.item.mail_folders.item.messages.delta.delta_request_builder import (
    DeltaRequestBuilder,
)
from msgraph.generated.users.item.mail_folders.mail_folders_request_builder import (
    MailFoldersRequestBuilder,
)
from msgraph.generated.users.item.messages.item.message_item_request_builder import (
    MessageItemRequestBuilder,
)
from msgraph.generated.users.item.messages.messages_request_builder import MessagesRequestBuilder
from msgraph_core.requests.batch_request_content import BatchRequestContent
from msgraph_core.requests.batch_request_item import BatchRequestItem

from devtools.graph_standin import DEFAULT_TOKEN, GraphStandIn
from tests.conftest import Clock
from tests.devtools.conftest import ANA

BOB = "Bob Buyer <bob@fabrikam.example>"
TRACKING_ID = "String {66f5a359-4659-4830-9070-00047ec6ac6e} Name TrackingId"
DEFERRED_SEND = "SystemTime 0x3FEF"


def deliver(
    graph: GraphStandIn,
    subject: str,
    *,
    in_reply_to: str | None = None,
    headers: dict[str, str] | None = None,
) -> str:
    message = graph.deliver(
        ANA,
        subject=subject,
        body_html=f"<p>{subject}</p>",
        sender=BOB,
        to=[ANA],
        in_reply_to=in_reply_to,
        headers=headers,
    )
    return str(message["id"])


def prefer(
    page_size: int,
) -> RequestConfiguration[DeltaRequestBuilder.DeltaRequestBuilderGetQueryParameters]:
    config: RequestConfiguration[DeltaRequestBuilder.DeltaRequestBuilderGetQueryParameters] = (
        RequestConfiguration()
    )
    config.headers.add("Prefer", f"odata.maxpagesize={page_size}")
    return config


async def sync_inbox(
    sdk: GraphServiceClient, link: str | None, page_size: int = 10
) -> tuple[list[Message], str]:
    """One delta round over the inbox (initial, or from a delta link): its items and deltaLink."""
    inbox = sdk.users.by_user_id(ANA).mail_folders.by_mail_folder_id("inbox").messages.delta
    page = await (inbox.with_url(link) if link else inbox).get(prefer(page_size))
    assert page is not None
    items = list(page.value or [])
    while page.odata_next_link:
        page = await inbox.with_url(page.odata_next_link).get(prefer(page_size))
        assert page is not None
        items += page.value or []
    assert page.odata_delta_link
    return items, page.odata_delta_link


def draft(subject: str, **extended: str) -> Message:
    return Message(
        subject=subject,
        body=ItemBody(content="<p>Hello</p>", content_type=BodyType.Html),
        to_recipients=[Recipient(email_address=EmailAddress(address="bob@fabrikam.example"))],
        single_value_extended_properties=[
            SingleValueLegacyExtendedProperty(id=key, value=value)
            for key, value in extended.items()
        ],
    )


async def test_delta_pages_to_delta_link_with_preferred_page_size(
    graph: GraphStandIn, sdk: GraphServiceClient
) -> None:
    for n in range(5):
        deliver(graph, f"offer {n}")
    config = prefer(2)
    config.query_parameters = DeltaRequestBuilder.DeltaRequestBuilderGetQueryParameters(
        select=["subject", "categories"]
    )
    inspect = HeadersInspectionHandlerOption(inspect_response_headers=True)
    config.options = [inspect]
    delta = sdk.users.by_user_id(ANA).mail_folders.by_mail_folder_id("inbox").messages.delta

    page = await delta.get(config)
    assert page is not None
    subjects = [m.subject or "" for m in page.value or []]
    assert inspect.response_headers.get("preference-applied") == {"odata.maxpagesize=2"}
    assert all(m.body is None and m.id for m in page.value or [])  # only $select plus id
    while page.odata_next_link:
        assert "$skiptoken=" in page.odata_next_link
        page = await delta.with_url(page.odata_next_link).get(prefer(2))
        assert page is not None
        subjects += [m.subject or "" for m in page.value or []]

    assert sorted(subjects) == [f"offer {n}" for n in range(5)]
    assert page.odata_delta_link is not None and "$deltatoken=" in page.odata_delta_link
    assert len(graph.requests) == 3


async def test_next_round_reports_category_change_new_mail_and_removals(
    graph: GraphStandIn, sdk: GraphServiceClient
) -> None:
    tagged, moved, deleted, _ = (deliver(graph, f"m{n}") for n in range(4))
    _, link = await sync_inbox(sdk, None)
    graph.set_categories(ANA, tagged, ["Followed"])
    graph.move(ANA, moved, "archive")
    graph.delete(ANA, deleted)
    fresh = deliver(graph, "new")

    items, next_link = await sync_inbox(sdk, link, page_size=2)

    by_id = {m.id: m for m in items}
    assert set(by_id) == {tagged, moved, deleted, fresh}
    assert by_id[tagged].categories == ["Followed"]
    assert by_id[fresh].subject == "new"
    for gone in (moved, deleted):
        assert by_id[gone].additional_data["@removed"] == {"reason": "deleted"}
    assert (await sync_inbox(sdk, next_link))[0] == []


async def test_expired_delta_token_surfaces_as_odata_error_410(
    graph: GraphStandIn, sdk: GraphServiceClient
) -> None:
    deliver(graph, "one")
    _, link = await sync_inbox(sdk, None)
    graph.expire_delta_tokens(ANA)

    with pytest.raises(ODataError) as caught:
        await sync_inbox(sdk, link)

    assert caught.value.response_status_code == 410
    assert caught.value.error is not None and caught.value.error.code == "syncStateNotFound"
    items, _ = await sync_inbox(sdk, None)  # a full resync works again
    assert [m.subject for m in items] == ["one"]


async def test_draft_found_by_extended_property_then_sent_keeps_its_id(
    graph: GraphStandIn, sdk: GraphServiceClient
) -> None:
    body = draft("Quote", **{TRACKING_ID: "trk-42"})
    body.attachments = [
        FileAttachment(name="quote.pdf", content_type="application/pdf", content_bytes=b"%PDF-1.7")
    ]
    body.internet_message_headers = [InternetMessageHeader(name="x-campaign", value="spring")]
    messages = sdk.users.by_user_id(ANA).messages

    created = await messages.post(body)
    assert created is not None and created.id and created.is_draft
    assert created.internet_message_id and created.conversation_id

    query = MessagesRequestBuilder.MessagesRequestBuilderGetQueryParameters(
        filter=f"singleValueExtendedProperties/Any(ep: ep/id eq '{TRACKING_ID}' and ep/value eq 'TRK-42')",
        top=1,
    )
    found = await messages.get(RequestConfiguration(query_parameters=query))
    assert found is not None and [m.id for m in found.value or []] == [created.id]

    expand = MessageItemRequestBuilder.MessageItemRequestBuilderGetQueryParameters(
        expand=[f"singleValueExtendedProperties($filter=id eq '{TRACKING_ID}')"]
    )
    fetched = await messages.by_message_id(created.id).get(
        RequestConfiguration(query_parameters=expand)
    )
    assert fetched is not None and fetched.single_value_extended_properties is not None
    assert fetched.single_value_extended_properties[0].value == "trk-42"

    await messages.by_message_id(created.id).send.post()

    [sent] = graph.sent(ANA)
    assert sent["id"] == created.id and sent["isDraft"] is False
    assert sent["from"]["emailAddress"]["address"] == ANA
    assert {"id": TRACKING_ID, "value": "trk-42"} in sent["singleValueExtendedProperties"]
    assert base64.b64decode(sent["attachments"][0]["contentBytes"]) == b"%PDF-1.7"
    assert {"name": "x-campaign", "value": "spring"} in sent["internetMessageHeaders"]
    with pytest.raises(ODataError) as again:
        await messages.by_message_id(created.id).send.post()
    assert again.value.response_status_code == 400


async def test_only_custom_x_headers_may_be_set(sdk: GraphServiceClient) -> None:
    body = draft("Re: quote")
    body.internet_message_headers = [InternetMessageHeader(name="In-Reply-To", value="<a@b>")]

    with pytest.raises(ODataError) as caught:
        await sdk.users.by_user_id(ANA).messages.post(body)

    assert caught.value.response_status_code == 400
    assert caught.value.error is not None
    assert caught.value.error.code == "InvalidInternetMessageHeader"


async def test_deferred_send_waits_in_outbox_until_its_time(
    graph: GraphStandIn, sdk: GraphServiceClient, manual_clock: Clock
) -> None:
    at = (manual_clock.now() + timedelta(hours=1)).replace(microsecond=0)
    messages = sdk.users.by_user_id(ANA).messages
    created = await messages.post(draft("Later", **{DEFERRED_SEND: at.isoformat()}))
    assert created is not None and created.id

    await messages.by_message_id(created.id).send.post()
    graph.tick()
    assert [m["id"] for m in graph.messages(ANA, "outbox")] == [created.id]
    assert graph.sent(ANA) == []

    manual_clock.advance(3601)
    await sdk.users.by_user_id(ANA).mail_folders.by_mail_folder_id("inbox").get()

    [sent] = graph.sent(ANA)
    assert sent["id"] == created.id and sent["isDraft"] is False
    assert datetime.fromisoformat(sent["sentDateTime"]) == at
    assert graph.messages(ANA, "outbox") == []


async def test_master_categories_create_list_update_delete_and_refuse_duplicates(
    graph: GraphStandIn, sdk: GraphServiceClient
) -> None:
    categories = sdk.users.by_user_id(ANA).outlook.master_categories

    created = await categories.post(
        OutlookCategory(display_name="Followed", color=CategoryColor.Preset7)
    )
    assert created is not None and created.id
    with pytest.raises(ODataError) as duplicate:
        await categories.post(OutlookCategory(display_name="followed"))
    assert duplicate.value.response_status_code == 409
    recolored = await categories.by_outlook_category_id(created.id).patch(
        OutlookCategory(color=CategoryColor.Preset4)
    )
    assert recolored is not None and recolored.color == CategoryColor.Preset4
    listed = await categories.get()
    assert listed is not None and "Followed" in [c.display_name for c in listed.value or []]

    await categories.by_outlook_category_id(created.id).delete()

    assert "Followed" not in [c["displayName"] for c in graph.master_categories(ANA)]
    with pytest.raises(ODataError) as missing:
        await categories.by_outlook_category_id(created.id).get()
    assert missing.value.response_status_code == 404


async def test_category_renamed_or_deleted_in_outlook_leaves_items_tagged_with_the_old_name(
    graph: GraphStandIn, sdk: GraphServiceClient
) -> None:
    kept = graph.add_master_category(ANA, "Followed", "preset7")
    gone = graph.add_master_category(ANA, "Hot lead")
    message_id = deliver(graph, "tagged")
    graph.set_categories(ANA, message_id, ["Followed", "Hot lead"])

    graph.rename_master_category(ANA, kept["id"], "Tracked")
    graph.delete_master_category(ANA, gone["id"])

    listed = await sdk.users.by_user_id(ANA).outlook.master_categories.get()
    assert listed is not None
    names = {c.display_name for c in listed.value or []}
    assert "Tracked" in names and not names & {"Followed", "Hot lead"}
    [message] = graph.messages(ANA, "inbox")
    assert message["categories"] == ["Followed", "Hot lead"]


async def test_batch_of_twenty_patches_and_a_throttled_one_inside(
    graph: GraphStandIn, sdk: GraphServiceClient
) -> None:
    ids = [deliver(graph, f"b{n}") for n in range(20)]
    graph.fail_next(1, path_contains=ids[7])
    batch = BatchRequestContent()
    for n, message_id in enumerate(ids):
        info = (
            sdk.users.by_user_id(ANA)
            .messages.by_message_id(message_id)
            .to_patch_request_information(Message(categories=["Followed"]))
        )
        # add_request_information(info, id) ignores the id; an item built with one keeps it.
        batch.add_request(None, BatchRequestItem(info, id=str(n)))

    response = await sdk.batch.post(batch)

    statuses = response.get_response_status_codes()
    assert statuses["7"] == 429 and response.get_response_by_id("7").headers["Retry-After"] == "1"
    assert {s for k, s in statuses.items() if k != "7"} == {200}
    tagged = {m["id"] for m in graph.messages(ANA) if m["categories"] == ["Followed"]}
    assert tagged == set(ids) - {ids[7]}
    assert [r[1] for r in graph.requests] == ["/v1.0/$batch"]
    assert len(graph.batch_requests) == 20
    assert graph.max_concurrency(ANA) == 20  # every request inside the batch counts


async def test_batch_request_after_a_failed_dependency_answers_424(graph: GraphStandIn) -> None:
    requests = [
        {"id": "1", "method": "GET", "url": f"/users/{ANA}/messages/AAMkmissing0000000000000="},
        {"id": "2", "method": "GET", "url": f"users/{ANA}/mailFolders/inbox", "dependsOn": ["1"]},
        {"id": "3", "method": "GET", "url": f"/users/{ANA}/mailFolders?$top=1"},
    ]
    async with httpx.AsyncClient() as http:
        reply = await http.post(
            f"{graph.base_url}/$batch",
            json={"requests": requests},
            headers={"Authorization": f"Bearer {DEFAULT_TOKEN}"},
        )
    assert reply.status_code == 200
    statuses = {r["id"]: r["status"] for r in reply.json()["responses"]}
    assert statuses == {"1": 404, "2": 424, "3": 200}


async def test_batch_over_twenty_requests_is_refused(graph: GraphStandIn) -> None:
    requests = [
        {"id": str(n), "method": "GET", "url": f"/users/{ANA}/mailFolders"} for n in range(21)
    ]
    async with httpx.AsyncClient() as http:
        reply = await http.post(
            f"{graph.base_url}/$batch",
            json={"requests": requests},
            headers={"Authorization": f"Bearer {DEFAULT_TOKEN}"},
        )
    assert reply.status_code == 400
    assert reply.json()["error"]["code"] == "BadRequest"


async def test_throttled_request_is_retried_by_the_sdk_after_retry_after(
    graph: GraphStandIn, sdk: GraphServiceClient
) -> None:
    graph.fail_next(1, status=429, retry_after=1, path_contains="mailFolders")

    folder = await sdk.users.by_user_id(ANA).mail_folders.by_mail_folder_id("inbox").get()

    assert folder is not None and folder.display_name == "Inbox"
    first, second = graph.requests
    assert second[2] - first[2] >= 1.0


async def test_throttling_and_unavailable_use_graph_error_shapes(graph: GraphStandIn) -> None:
    graph.fail_next(1, status=503, retry_after=2, method="GET")
    graph.fail_next(1, status=429, retry_after=1, method="GET")
    url = f"{graph.base_url}/users/{ANA}/mailFolders"
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {DEFAULT_TOKEN}"}) as http:
        unavailable, throttled, fine = [await http.get(url) for _ in range(3)]

    assert unavailable.status_code == 503 and unavailable.headers["Retry-After"] == "2"
    assert unavailable.json()["error"]["code"] == "serviceNotAvailable"
    assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "1"
    assert throttled.json()["error"]["code"] == "TooManyRequests"
    assert fine.status_code == 200


async def test_a_mailbox_the_app_may_not_read_answers_access_denied(graph: GraphStandIn) -> None:
    graph.fail_always(status=403, path_contains=f"{ANA}/")
    url = f"{graph.base_url}/users/{ANA}/mailFolders"
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {DEFAULT_TOKEN}"}) as http:
        denied = [await http.get(url) for _ in range(2)]
        graph.clear_faults()
        fine = await http.get(url)

    assert [r.status_code for r in denied] == [403, 403]
    assert denied[0].json()["error"]["code"] == "ErrorAccessDenied"
    assert "Retry-After" not in denied[0].headers
    assert fine.status_code == 200


async def test_requests_without_the_token_get_401(
    graph: GraphStandIn, make_client: Callable[..., GraphServiceClient]
) -> None:
    async with httpx.AsyncClient() as http:
        reply = await http.get(f"{graph.base_url}/users/{ANA}/mailFolders")
    assert reply.status_code == 401
    assert reply.json()["error"]["code"] == "InvalidAuthenticationToken"

    with pytest.raises(ODataError) as caught:
        await (
            make_client(graph.base_url, token="someone-else")
            .users.by_user_id(ANA)
            .mail_folders.get()
        )
    assert caught.value.response_status_code == 401


async def test_unknown_mailbox_is_404(sdk: GraphServiceClient) -> None:
    with pytest.raises(ODataError) as caught:
        await sdk.users.by_user_id("nobody@contoso.example").mail_folders.get()
    assert caught.value.response_status_code == 404


async def test_concurrency_per_mailbox_is_recorded_and_can_be_limited(
    make_client: Callable[..., GraphServiceClient],
) -> None:
    with GraphStandIn(latency=0.2) as graph:
        graph.add_mailbox(ANA)
        folders = make_client(graph.base_url).users.by_user_id(ANA.upper()).mail_folders
        await asyncio.gather(*(folders.get() for _ in range(5)))
        assert graph.max_concurrency(ANA) == 5

    with GraphStandIn(latency=0.2, mailbox_concurrency_limit=2) as graph:
        graph.add_mailbox(ANA)
        headers = {"Authorization": f"Bearer {DEFAULT_TOKEN}"}
        async with httpx.AsyncClient(headers=headers) as http:
            replies = await asyncio.gather(
                *(http.get(f"{graph.base_url}/users/{ANA}/mailFolders") for _ in range(3))
            )
        assert sorted(r.status_code for r in replies) == [200, 200, 429]
        assert [r.json()["error"]["code"] for r in replies if r.status_code == 429] == [
            "ApplicationThrottled"
        ]


async def test_batch_items_past_the_mailbox_limit_answer_429_one_by_one() -> None:
    # Every request is held 0.3 s, so the single request below is surely still in flight
    # when the batch after it arrives, even on a busy machine.
    with GraphStandIn(latency=0.3, mailbox_concurrency_limit=4) as graph:
        graph.add_mailbox(ANA)
        url = f"/users/{ANA}/mailFolders/inbox"
        parallel = [{"id": str(n), "method": "GET", "url": url} for n in range(6)]
        chained = [
            {"id": str(n), "method": "GET", "url": url, "dependsOn": [str(n - 1)]}
            if n
            else {"id": "0", "method": "GET", "url": url}
            for n in range(6)
        ]
        headers = {"Authorization": f"Bearer {DEFAULT_TOKEN}"}
        async with httpx.AsyncClient(headers=headers) as http:
            wide = (await http.post(f"{graph.base_url}/$batch", json={"requests": parallel})).json()
            assert graph.max_concurrency(ANA) == 6 and graph.refused(ANA) == 2
            # one request in flight already: a batch of four finds room for three
            in_flight = asyncio.create_task(http.get(f"{graph.base_url}{url}"))
            await asyncio.sleep(0.05)
            narrow = await http.post(f"{graph.base_url}/$batch", json={"requests": parallel[:4]})
            single = await in_flight
            serial = (
                await http.post(f"{graph.base_url}/$batch", json={"requests": chained})
            ).json()

    statuses = sorted(r["status"] for r in wide["responses"])
    assert statuses == [200, 200, 200, 200, 429, 429]
    refused = [r for r in wide["responses"] if r["status"] == 429]
    assert {r["body"]["error"]["code"] for r in refused} == {"ApplicationThrottled"}
    assert all(r["headers"]["Retry-After"] == "1" for r in refused)
    assert single.status_code == 200
    assert sorted(r["status"] for r in narrow.json()["responses"]) == [200, 200, 200, 429]
    assert {r["status"] for r in serial["responses"]} == {200}  # dependsOn: one at a time


async def test_persistent_fault_on_one_body_and_if_match_conflicts(graph: GraphStandIn) -> None:
    message_id = deliver(graph, "Categorised")
    graph.fail_always(status=500, path_contains=message_id, body_contains='"Hot lead"')
    url = f"{graph.base_url}/users/{ANA}/messages/{message_id}"
    headers = {"Authorization": f"Bearer {DEFAULT_TOKEN}"}
    async with httpx.AsyncClient(headers=headers) as http:
        failed = [await http.patch(url, json={"categories": ["Hot lead"]}) for _ in range(3)]
        fine = await http.patch(url, json={"categories": ["Cold lead"]})
        etag = fine.json()["@odata.etag"]
        graph.clear_faults()
        stale = await http.patch(
            url, json={"categories": ["Hot lead"]}, headers={"If-Match": 'W/"CQAAAA=="'}
        )
        current = await http.patch(
            url, json={"categories": ["Hot lead"]}, headers={"If-Match": etag}
        )
    assert [r.status_code for r in failed] == [500, 500, 500]
    assert failed[0].json()["error"]["code"] == "generalException"
    assert fine.status_code == 200
    assert stale.status_code == 412
    assert stale.json()["error"]["code"] == "ErrorIrresolvableConflict"
    assert current.status_code == 200
    assert graph.messages(ANA)[0]["categories"] == ["Hot lead"]


async def test_random_throttling_hits_the_chosen_share(graph: GraphStandIn) -> None:
    graph.throttle_randomly(0.25, retry_after=2, seed=7)
    url = f"{graph.base_url}/users/{ANA}/mailFolders/inbox"
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {DEFAULT_TOKEN}"}) as http:
        replies = [await http.get(url) for _ in range(200)]
    throttled = [r for r in replies if r.status_code == 429]
    assert 30 <= len(throttled) <= 70 and graph.faults_served == len(throttled)
    assert {r.headers["Retry-After"] for r in throttled} == {"2"}
    assert {r.status_code for r in replies} == {200, 429}


async def test_calendar_view_delta_tracks_changes_in_the_window(
    graph: GraphStandIn, sdk: GraphServiceClient
) -> None:
    day = datetime(2030, 5, 6, 9, tzinfo=UTC)
    kept = graph.add_event(ANA, "Demo", day, day + timedelta(hours=1), [BOB])["id"]
    dropped = graph.add_event(ANA, "Call", day + timedelta(hours=2), day + timedelta(hours=3), [])[
        "id"
    ]
    graph.add_event(ANA, "Next week", day + timedelta(days=7), day + timedelta(days=7, hours=1), [])
    query = EventDeltaRequestBuilder.DeltaRequestBuilderGetQueryParameters(
        start_date_time=day.replace(hour=0).isoformat(),
        end_date_time=(day + timedelta(days=1)).isoformat(),
    )
    delta = sdk.users.by_user_id(ANA).calendar_view.delta

    first = await delta.get(RequestConfiguration(query_parameters=query))
    assert first is not None and first.odata_delta_link
    assert {e.subject for e in first.value or []} == {"Demo", "Call"}
    demo = next(e for e in first.value or [] if e.id == kept)
    assert [a.email_address.address for a in demo.attendees or [] if a.email_address] == [
        "bob@fabrikam.example"
    ]
    assert demo.organizer and demo.organizer.email_address
    assert demo.organizer.email_address.address == ANA and demo.i_cal_u_id

    graph.set_event_categories(ANA, kept, ["Followed"])
    graph.delete_event(ANA, dropped)
    second = await delta.with_url(first.odata_delta_link).get()

    assert second is not None
    changes = {e.id: e for e in second.value or []}
    assert changes[kept].categories == ["Followed"]
    assert changes[dropped].additional_data["@removed"] == {"reason": "deleted"}


async def test_mail_folders_and_message_headers_only_on_select(
    graph: GraphStandIn, sdk: GraphServiceClient
) -> None:
    top_two = MailFoldersRequestBuilder.MailFoldersRequestBuilderGetQueryParameters(top=2)
    mail_folders = sdk.users.by_user_id(ANA).mail_folders
    page = await mail_folders.get(RequestConfiguration(query_parameters=top_two))
    names: list[str] = []
    while page is not None:
        names += [f.display_name or "" for f in page.value or []]
        link = page.odata_next_link
        page = await mail_folders.with_url(link).get() if link else None
    assert sorted(names) == ["Archive", "Deleted Items", "Drafts", "Inbox", "Outbox", "Sent Items"]
    message_id = deliver(
        graph,
        "Re: quote",
        in_reply_to="<q1@contoso.example>",
        headers={"Auto-Submitted": "auto-replied"},
    )
    item = sdk.users.by_user_id(ANA).messages.by_message_id(message_id)

    plain = await item.get()
    selected = await item.get(
        RequestConfiguration(
            query_parameters=MessageItemRequestBuilder.MessageItemRequestBuilderGetQueryParameters(
                select=["subject", "internetMessageHeaders"]
            )
        )
    )

    assert plain is not None and plain.internet_message_headers is None
    assert plain.from_ is not None and plain.from_.email_address is not None
    assert plain.from_.email_address.address == "bob@fabrikam.example"
    assert selected is not None and selected.internet_message_headers is not None
    headers = {h.name: h.value for h in selected.internet_message_headers}
    assert headers["In-Reply-To"] == "<q1@contoso.example>"
    assert headers["Auto-Submitted"] == "auto-replied"


async def test_sent_mail_to_another_standin_mailbox_arrives_in_its_inbox(
    graph: GraphStandIn, sdk: GraphServiceClient
) -> None:
    graph.add_mailbox("bob@fabrikam.example")
    created = await sdk.users.by_user_id(ANA).messages.post(draft("Hello Bob"))
    assert created is not None and created.id

    await sdk.users.by_user_id(ANA).messages.by_message_id(created.id).send.post()

    [arrived] = graph.messages("bob@fabrikam.example", "inbox")
    assert arrived["internetMessageId"] == created.internet_message_id
    assert arrived["from"]["emailAddress"]["address"] == ANA
