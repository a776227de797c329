"""Reading what changed in a mailbox: delta queries of a mail folder or of the calendar
view, followed page by page to the next delta link, as raw JSON parsed by
shared.outlook.items. An expired delta token is DeltaExpired: the caller reads afresh."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.users.item.calendar_view.delta.delta_request_builder import (
    DeltaRequestBuilder as EventDeltaRequestBuilder,
)
from msgraph.generated.users.item.mail_folders.item.messages.delta.delta_request_builder import (
    DeltaRequestBuilder,
)

from shared.outlook.graph_client import Graph
from shared.outlook.items import parse_event, parse_message, removed
from shared.outlook.mail import MESSAGE_FIELDS, request_config, send_raw, status_of


class DeltaExpired(Exception):
    """Graph no longer knows the delta token (410 Gone / syncStateNotFound): resync."""


@dataclass
class DeltaPage:
    """Everything a delta read returned, to its final delta link."""

    items: list[Any] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    delta_link: str | None = None
    requests: int = 0


async def _delta(
    graph: Graph, mailbox: str, builder: Any, first: Any, link: str | None
) -> DeltaPage:
    """Follow a delta query's pages to its delta link; items as raw JSON objects."""
    page = DeltaPage()
    config = request_config(None if link else first, page_size=graph.page_size)
    while True:
        info = (builder.with_url(link) if link else builder).to_get_request_information(config)
        try:
            response = await send_raw(graph, mailbox, info)
        except ODataError as error:
            code = error.error.code if error.error else ""
            if status_of(error) == 410 or code == "syncStateNotFound":
                raise DeltaExpired(mailbox) from error
            raise
        page.requests += 1
        for item in response.get("value") or []:
            if not isinstance(item, dict) or not item.get("id"):
                continue
            if removed(item):
                page.removed.append(str(item["id"]))
            else:
                page.items.append(item)
        next_link = response.get("@odata.nextLink")
        if not next_link:
            page.delta_link = response.get("@odata.deltaLink")
            break
        link = next_link
        config = request_config(page_size=graph.page_size)
    return page


async def delta_messages(
    graph: Graph, mailbox: str, folder: str, delta_link: str | None
) -> DeltaPage:
    """All message changes in a folder since `delta_link` (everything if None)."""
    folder_builder = graph.client.users.by_user_id(mailbox).mail_folders.by_mail_folder_id(folder)
    query = DeltaRequestBuilder.DeltaRequestBuilderGetQueryParameters(select=MESSAGE_FIELDS)
    page = await _delta(graph, mailbox, folder_builder.messages.delta, query, delta_link)
    page.items = [parse_message(item) for item in page.items]
    return page


async def delta_events(
    graph: Graph, mailbox: str, delta_link: str | None, start: datetime, end: datetime
) -> DeltaPage:
    """All calendar changes between start and end since `delta_link` (everything if None).
    Calendar delta takes no $select: Graph returns whole events."""
    builder = graph.client.users.by_user_id(mailbox).calendar_view.delta
    query = EventDeltaRequestBuilder.DeltaRequestBuilderGetQueryParameters(
        start_date_time=start.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        end_date_time=end.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    page = await _delta(graph, mailbox, builder, query, delta_link)
    page.items = [parse_event(item) for item in page.items]
    return page
