"""Storage clients, built once per worker and handed to the services.

The same code reaches Azurite (a connection string) or Azure (account URLs and a managed
identity) by settings alone.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError
from azure.data.tables import UpdateMode
from azure.data.tables.aio import TableClient, TableServiceClient
from azure.storage.blob import BlobSasPermissions, UserDelegationKey, generate_blob_sas
from azure.storage.blob.aio import BlobServiceClient, ContainerClient, LinearRetry
from azure.storage.queue import TextBase64DecodePolicy, TextBase64EncodePolicy
from azure.storage.queue.aio import QueueClient, QueueServiceClient

from shared.core.settings import Settings

INTERACTIONS = "interactions"
MESSAGE_BLOBS = "messages"
ATTACHMENTS = "attachments"
OUTBOX = "outbox"
ACTIVITY_BLOBS = "activities"
GRAPH_PERMITS = "graphpermits"  # leases that count Graph requests per mailbox (outlook.permits)
FOLD_QUEUE = "fold-shards"  # shards with new events, for the fold's workers
QUEUES = (FOLD_QUEUE,)
CONTAINERS = (INTERACTIONS, MESSAGE_BLOBS, ATTACHMENTS, OUTBOX, ACTIVITY_BLOBS, GRAPH_PERMITS)
MESSAGES_TABLE = "messages"
EVENTS_TABLE = "events"
STATE_TABLE = "state"
SCHEDULE_TABLE = "schedule"
MESSAGE_INDEX_TABLE = "messageindex"
MAILBOXES_TABLE = "mailboxes"
ACTIVITIES_TABLE = "activities"
RECORDS_TABLE = "records"
ALERTS_TABLE = "alerts"
REMINDERS_TABLE = "reminders"
RECORDS_INDEX_TABLE = "recordindex"
TEMPLATES_TABLE = "templates"
TEMPLATE_STATS_TABLE = "templatestats"
WEBHOOKS_TABLE = "webhooks"
IDEMPOTENCY_TABLE = "idempotency"
SELLERS_TABLE = "sellers"  # where older messages of a seller live (shared.core.sellers)
TIMELINE_INDEX_TABLE = "timelineindex"  # sent mail and activities by record (crm.timeline_index)
TABLES = (
    TIMELINE_INDEX_TABLE,
    SELLERS_TABLE,
    IDEMPOTENCY_TABLE,
    WEBHOOKS_TABLE,
    ALERTS_TABLE,
    REMINDERS_TABLE,
    RECORDS_TABLE,
    RECORDS_INDEX_TABLE,
    MESSAGES_TABLE,
    EVENTS_TABLE,
    STATE_TABLE,
    SCHEDULE_TABLE,
    MESSAGE_INDEX_TABLE,
    MAILBOXES_TABLE,
    ACTIVITIES_TABLE,
    TEMPLATES_TABLE,
    TEMPLATE_STATS_TABLE,
)

# The tracking write must finish well inside the folding grace period, and a recipient's
# mail client must not wait on a sick storage account: short timeouts, one retry.
_TRACKING_CLIENT_OPTIONS: dict[str, Any] = {
    "connection_timeout": 2,
    "read_timeout": 3,
    "retry_policy": LinearRetry(backoff=0, random_jitter_range=0, retry_total=1),
}


# Everything else: an unreachable account must fail a seller's request in seconds (then it
# answers 503 with Retry-After), not after the SDK's default of ten retries (83 s was seen).
# Uploads of large attachments are what read_timeout must allow.
_BLOB_CLIENT_OPTIONS: dict[str, Any] = {
    "connection_timeout": 3,
    "read_timeout": 30,
    "retry_policy": LinearRetry(backoff=1, random_jitter_range=1, retry_total=2),
}
_QUEUE_CLIENT_OPTIONS: dict[str, Any] = {
    "connection_timeout": 3,
    "read_timeout": 10,
    "retry_total": 2,
}
_TABLE_CLIENT_OPTIONS: dict[str, Any] = {
    "connection_timeout": 3,
    "read_timeout": 10,
    "retry_total": 2,
    "retry_backoff_factor": 0.5,
    "retry_backoff_max": 2,
}


@dataclass
class Store:
    """Every storage client the services use; each container and table client is made once
    and shared (they reuse the service client's connection pool)."""

    blob_service: BlobServiceClient
    tracking_blob_service: BlobServiceClient
    table_service: TableServiceClient
    queue_service: QueueServiceClient
    credential: Any = None
    _delegation_key: UserDelegationKey | None = None
    _delegation_expiry: datetime | None = None

    @cached_property
    def fold_queue(self) -> QueueClient:
        # base64 text, what a Functions queue trigger reads by default (host.json)
        return self.queue_service.get_queue_client(
            FOLD_QUEUE,
            message_encode_policy=TextBase64EncodePolicy(),
            message_decode_policy=TextBase64DecodePolicy(),
        )

    @cached_property
    def interactions(self) -> ContainerClient:
        return self.blob_service.get_container_client(INTERACTIONS)

    @cached_property
    def tracking_interactions(self) -> ContainerClient:
        return self.tracking_blob_service.get_container_client(INTERACTIONS)

    @cached_property
    def tracking_message_blobs(self) -> ContainerClient:
        return self.tracking_blob_service.get_container_client(MESSAGE_BLOBS)

    @cached_property
    def message_blobs(self) -> ContainerClient:
        return self.blob_service.get_container_client(MESSAGE_BLOBS)

    @cached_property
    def attachments(self) -> ContainerClient:
        return self.blob_service.get_container_client(ATTACHMENTS)

    @cached_property
    def outbox(self) -> ContainerClient:
        return self.blob_service.get_container_client(OUTBOX)

    @cached_property
    def activity_blobs(self) -> ContainerClient:
        return self.blob_service.get_container_client(ACTIVITY_BLOBS)

    @cached_property
    def messages(self) -> TableClient:
        return self.table_service.get_table_client(MESSAGES_TABLE)

    @cached_property
    def events(self) -> TableClient:
        return self.table_service.get_table_client(EVENTS_TABLE)

    @cached_property
    def state(self) -> TableClient:
        return self.table_service.get_table_client(STATE_TABLE)

    @cached_property
    def schedule(self) -> TableClient:
        return self.table_service.get_table_client(SCHEDULE_TABLE)

    @cached_property
    def message_index(self) -> TableClient:
        return self.table_service.get_table_client(MESSAGE_INDEX_TABLE)

    @cached_property
    def mailboxes(self) -> TableClient:
        return self.table_service.get_table_client(MAILBOXES_TABLE)

    @cached_property
    def activities(self) -> TableClient:
        return self.table_service.get_table_client(ACTIVITIES_TABLE)

    @cached_property
    def reminders(self) -> TableClient:
        return self.table_service.get_table_client(REMINDERS_TABLE)

    @cached_property
    def alerts(self) -> TableClient:
        return self.table_service.get_table_client(ALERTS_TABLE)

    @cached_property
    def records(self) -> TableClient:
        return self.table_service.get_table_client(RECORDS_TABLE)

    @cached_property
    def records_index(self) -> TableClient:
        return self.table_service.get_table_client(RECORDS_INDEX_TABLE)

    @cached_property
    def templates(self) -> TableClient:
        return self.table_service.get_table_client(TEMPLATES_TABLE)

    @cached_property
    def webhooks(self) -> TableClient:
        return self.table_service.get_table_client(WEBHOOKS_TABLE)

    @cached_property
    def idempotency(self) -> TableClient:
        return self.table_service.get_table_client(IDEMPOTENCY_TABLE)

    @cached_property
    def template_stats(self) -> TableClient:
        return self.table_service.get_table_client(TEMPLATE_STATS_TABLE)

    @cached_property
    def sellers(self) -> TableClient:
        return self.table_service.get_table_client(SELLERS_TABLE)

    @cached_property
    def timeline_index(self) -> TableClient:
        return self.table_service.get_table_client(TIMELINE_INDEX_TABLE)

    async def read_sas_url(
        self, container: str, blob: str, *, minutes: int, now: datetime | None = None
    ) -> str:
        """A read-only link to one blob that expires after `minutes`: with the account key
        locally, with a cached user-delegation key under a managed identity."""
        start = (now or datetime.now(UTC)) - timedelta(minutes=1)
        expiry = start + timedelta(minutes=minutes + 1)
        account = self.blob_service.account_name or ""
        key = getattr(self.blob_service.credential, "account_key", None)
        common: dict[str, Any] = {
            "account_name": account,
            "container_name": container,
            "blob_name": blob,
            "permission": BlobSasPermissions(read=True),
            "start": start,
            "expiry": expiry,
        }
        if key:
            sas = generate_blob_sas(account_key=key, **common)
        else:
            sas = generate_blob_sas(user_delegation_key=await self._user_delegation_key(), **common)
        return f"{self.blob_service.url.rstrip('/')}/{container}/{blob}?{sas}"

    async def _user_delegation_key(self) -> UserDelegationKey:
        # One key serves every link for hours; asking for a new key per download is slow and
        # throttled (an anti-pattern seen in other tracking apps).
        now = datetime.now(UTC)
        if (
            self._delegation_key is None
            or self._delegation_expiry is None
            or (self._delegation_expiry - now < timedelta(hours=1))
        ):
            expiry = now + timedelta(hours=6)
            self._delegation_key = await self.blob_service.get_user_delegation_key(
                now - timedelta(minutes=5), expiry
            )
            self._delegation_expiry = expiry
        return self._delegation_key

    async def close(self) -> None:
        await self.queue_service.close()
        await self.blob_service.close()
        await self.tracking_blob_service.close()
        await self.table_service.close()
        if self.credential is not None:
            await self.credential.close()


def build_store(settings: Settings) -> Store:
    """Clients for the configured account; no network traffic until first use."""
    if settings.storage_connection_string is not None:
        conn = settings.storage_connection_string.get_secret_value()
        return Store(
            blob_service=BlobServiceClient.from_connection_string(conn, **_BLOB_CLIENT_OPTIONS),
            tracking_blob_service=BlobServiceClient.from_connection_string(
                conn, **_TRACKING_CLIENT_OPTIONS
            ),
            table_service=TableServiceClient.from_connection_string(conn, **_TABLE_CLIENT_OPTIONS),
            queue_service=QueueServiceClient.from_connection_string(conn, **_QUEUE_CLIENT_OPTIONS),
        )
    from azure.identity.aio import DefaultAzureCredential, ManagedIdentityCredential

    credential: Any = (
        ManagedIdentityCredential(client_id=settings.azure_client_id)
        if settings.azure_client_id
        else DefaultAzureCredential()
    )
    assert settings.storage_blob_url and settings.storage_table_url  # checked by Settings
    return Store(
        blob_service=BlobServiceClient(
            settings.storage_blob_url, credential=credential, **_BLOB_CLIENT_OPTIONS
        ),
        tracking_blob_service=BlobServiceClient(
            settings.storage_blob_url, credential=credential, **_TRACKING_CLIENT_OPTIONS
        ),
        table_service=TableServiceClient(
            settings.storage_table_url, credential=credential, **_TABLE_CLIENT_OPTIONS
        ),
        queue_service=QueueServiceClient(
            settings.storage_queue_url or settings.storage_blob_url.replace(".blob.", ".queue.", 1),
            credential=credential,
            **_QUEUE_CLIENT_OPTIONS,
        ),
        credential=credential,
    )


async def ensure_storage(store: Store) -> None:
    """Create the containers and tables if they are missing (idempotent; in Azure the infra
    templates create them first and this only confirms)."""

    async def container(name: str) -> None:
        with contextlib.suppress(ResourceExistsError):
            await store.blob_service.create_container(name)

    async def table(name: str) -> None:
        with contextlib.suppress(ResourceExistsError):
            await store.table_service.create_table(name)

    async def queue(name: str) -> None:
        with contextlib.suppress(ResourceExistsError):
            await store.queue_service.create_queue(name)

    await asyncio.gather(
        *(container(c) for c in CONTAINERS),
        *(table(t) for t in TABLES),
        *(queue(q) for q in QUEUES),
    )


async def update_if_unchanged(
    table: TableClient, entity: Mapping[str, Any], etag: str | None, *, replace: bool = False
) -> None:
    """Write `entity` (its columns merged into the row, or the whole row with `replace`)
    only if nobody changed the row since it was read with `etag`: the optimistic
    concurrency every read-modify-write here relies on. ResourceModifiedError otherwise."""
    await table.update_entity(
        dict(entity),
        mode=UpdateMode.REPLACE if replace else UpdateMode.MERGE,
        etag=etag,
        match_condition=MatchConditions.IfNotModified,
    )
