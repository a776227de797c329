"""Copies of a newly tracked message in other enrolled mailboxes (a colleague on the thread):
linked to the one activity, and given the tracking category there."""

from __future__ import annotations

import json
import logging

from azure.data.tables import UpdateMode

from shared.core.errors import NotFound
from shared.core.ids import mailbox_key
from shared.core.services import Services
from shared.outlook.activities import ACTIVITY, Cycle, index
from shared.outlook.categories import CategoryChange
from shared.outlook.category_writes import write_categories
from shared.outlook.item_rules import classify
from shared.outlook.mail import find_by_internet_id
from shared.outlook.mailboxes import load

logger = logging.getLogger(__name__)


async def link_copies(cycle: Cycle) -> None:
    """A newly tracked message may sit in other enrolled mailboxes too (a colleague on the
    thread): link their copies to the one activity and give them the category there. Only
    the mailboxes whose address is on the message are asked."""

    services, graph = cycle.services, cycle.services.graph()
    for key, item in cycle.created:
        for other in sorted((item.addresses & cycle.enrolled) - {cycle.mailbox.email}):
            try:
                copy = await find_by_internet_id(graph, other, item.internet_message_id)
                if copy is None or copy.id is None:
                    continue
                row = await services.store.activities.get_entity(ACTIVITY, key)
                boxes = json.loads(row["mailboxes"])
                await index(services, dict(row), key, [other])
                boxes[other] = copy.id
                await services.store.activities.update_entity(
                    {"PartitionKey": ACTIVITY, "RowKey": key, "mailboxes": json.dumps(boxes)},
                    mode=UpdateMode.MERGE,
                )
                await services.store.mailboxes.upsert_entity(
                    {
                        "PartitionKey": mailbox_key(other),
                        "RowKey": f"trk-{key}",
                        "graph_id": copy.id,
                        "method": row["method"],
                    }
                )
                category = await _category_name(services, other)
                if category:
                    change = CategoryChange(copy.id, list(copy.categories or []), add=category)
                    outcome = await write_categories(graph, other, [change])
                    if outcome.failed:
                        logger.warning("a linked copy's category did not land in its mailbox")
            except Exception as error:
                logger.warning("could not link a copy in another mailbox: %s", classify(error))


async def _category_name(services: Services, email: str) -> str:
    try:
        return (await load(services, email)).category_name
    except NotFound:
        return ""
