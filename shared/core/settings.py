"""One typed settings object for the whole app, read once from the environment."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.core.vocabulary import COUNTED_BY_DEFAULT, LEGACY_PROXY, EventClass, counted_set

# Well-known development values. They are fine on a laptop and refused anywhere else.
DEV_TOKEN_KEY = "local-development-tracking-key-do-not-use-in-azure"  # noqa: S105
DEV_AUTH_KEY = "local-development-seller-auth-key-do-not-use-in-azure"
AZURITE_CONNECTION_STRING = (
    "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
    "AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;"
    "BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;"
    "TableEndpoint=http://127.0.0.1:10002/devstoreaccount1;"
    "QueueEndpoint=http://127.0.0.1:10001/devstoreaccount1;"
)
_PLACEHOLDERS = {DEV_TOKEN_KEY, DEV_AUTH_KEY, "changethis", "secret", ""}
# A pointer to a key rather than a key: azd's vault:// reference from .azure/<env>/config.json,
# any other URL-like reference, an unresolved App Service Key Vault reference, an unexpanded
# ${...}. Long enough to pass as a key, it would sign links nothing else can verify.
_KEY_REFERENCE = re.compile(r"([a-z][a-z0-9+.-]*://|@Microsoft\.KeyVault\(|\$\{)", re.IGNORECASE)


LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]


class Settings(BaseSettings):
    """Every setting the app reads; environment variables of the same name, upper-cased."""

    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore")

    environment: Literal["local", "azure"] = "local"

    # Storage: a connection string (Azurite) or account URLs reached with a managed identity.
    storage_connection_string: SecretStr | None = None
    storage_blob_url: str | None = None
    storage_table_url: str | None = None
    # The queue that hands fold shards to workers (shared.engagement.fold_queue); by default
    # the blob URL's account, at its queue endpoint.
    storage_queue_url: str | None = None
    azure_client_id: str | None = None  # user-assigned managed identity, read by azure-identity too

    # Public base URL of the tracking endpoints, as recipients' mail clients reach them.
    tracking_base_url: str = "http://127.0.0.1:7071"
    # Signing keys for tracking tokens by key id; the active one signs, all of them verify.
    token_keys: dict[str, SecretStr] = Field(
        default_factory=lambda: {"dev1": SecretStr(DEV_TOKEN_KEY)}
    )
    token_active_kid: str = "dev1"  # noqa: S105  (a key id, not a key)

    # Seller API authentication.
    auth_mode: Literal["dev", "entra"] = "dev"
    dev_auth_key: SecretStr = SecretStr(DEV_AUTH_KEY)
    entra_issuer: str | None = None
    entra_audience: str | None = None
    entra_jwks_url: str | None = None
    # The seller's web app signs in with MSAL in the browser (AUTH_MODE=entra): the app
    # registration it signs in as (the API's own, with a SPA redirect URI to /app), the
    # authority (sign-in host and tenant) and the scope of the seller API it asks a token for.
    entra_spa_client_id: str | None = None
    entra_spa_authority: str | None = None
    entra_spa_scope: str | None = None

    # "outbox" keeps delivered mail in blob storage; "graph" sends from the seller's mailbox.
    delivery_backend: Literal["outbox", "graph"] = "outbox"

    # Microsoft Graph: the endpoint (national clouds, or a local stand-in) and how we sign in.
    graph_base_url: str = "https://graph.microsoft.com/v1.0"
    graph_auth: Literal["client_secret", "certificate", "managed_identity", "static"] = (
        "managed_identity"
    )
    graph_tenant_id: str | None = None
    graph_client_id: str | None = None
    graph_client_secret: SecretStr | None = None
    graph_certificate_path: str | None = None
    graph_static_token: SecretStr | None = None  # the local stand-in's development token
    graph_max_concurrency: int = 4  # requests in flight per mailbox
    graph_page_size: int = 500
    tracking_category: str = "Tracked to Engagement"
    max_tracking_attempts: int = 5
    # Sending: transient failures (Graph 5xx or 429, timeouts, storage) are tried again after
    # send_retry_seconds, then 4x, 16x... (at most an hour), send_max_attempts times in all.
    send_max_attempts: int = 5
    send_retry_seconds: int = 60
    # How long a compose's Idempotency-Key is remembered (a client's retries fit well inside).
    idempotency_hours: int = 24
    sync_schedule: str = "0 */15 * * * *"
    retry_schedule: str = "0 7-59/15 * * * *"
    dispatch_schedule: str = "0 * * * * *"
    reminder_schedule: str = "0 */15 * * * *"
    retention_days: int = 90  # interaction blobs older than this are purged
    retention_schedule: str = "0 30 2 * * *"

    # What one Graph request carries: 4 MB of JSON, so about 3 MB of HTML (docs/admin.md).
    max_html_bytes: int = 3_000_000
    max_attachments: int = 10
    max_attachment_bytes: int = 10 * 1024 * 1024
    max_total_attachment_bytes: int = 25 * 1024 * 1024
    # Copies of one message sent individually (one per recipient). Exchange Online sends at
    # most 30 messages a minute from a mailbox: 25 leaves room for the seller's other mail,
    # and one send attempt (about three Graph requests a copy) stays well inside its lease.
    max_individual_copies: int = 25
    attachment_link_minutes: int = 10

    # How often recorded events are folded into KPIs, and how long a time bucket is left open
    # after it ends so that a slow tracking write is never missed.
    fold_schedule: str = "*/10 * * * * *"
    fold_grace_seconds: int = 30
    # The fold timer hands each shard with new events to the queue, for workers that scale
    # out; a shard the queue's workers leave this far behind, it folds itself (the backstop).
    fold_backstop_seconds: int = Field(default=60, ge=10, le=3600)
    # First-open alerts (without waiting for the fold) and webhook deliveries.
    alert_schedule: str = "*/5 * * * * *"
    # An open that is not clearly a person's waits this long for later evidence (a scanner's
    # link sweep) before its alert; a clear one alerts at once (docs/measurement.md).
    alert_wait_seconds: int = Field(default=60, ge=0, le=900)
    # For this long after an event, a later fold may re-label it as new evidence arrives
    # (KPIs, timeline and alerts follow); after it, labels are final.
    revision_seconds: int = Field(default=600, ge=0, le=3600)

    # Telemetry to Application Insights (shared/core/telemetry.py); none when unset.
    applicationinsights_connection_string: SecretStr | None = None
    # Log levels (shared/core/logs.py): the app's own loggers, and the libraries' (the storage
    # SDK logs every request at INFO).
    log_level: LogLevel = "INFO"
    azure_log_level: LogLevel = "WARNING"
    # Which classes of events the headline opens, clicks and attachment views count
    # (docs/measurement.md); every class is shown beside them either way.
    counted_classes: list[EventClass] = Field(default_factory=lambda: [*COUNTED_BY_DEFAULT])

    @field_validator("counted_classes", mode="before")
    @classmethod
    def _legacy_proxy_class(cls, value: object) -> object:
        """ "privacy_proxy" (before prefetches were told apart) still means both proxies."""
        if isinstance(value, list) and LEGACY_PROXY in value:
            rest = [v for v in value if v != LEGACY_PROXY]
            return [*rest, *(c for c in ("proxy_open", "prefetch") if c not in rest)]
        return value

    @field_validator("log_level", "azure_log_level", mode="before")
    @classmethod
    def _upper_case_level(cls, value: object) -> object:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("token_keys")
    @classmethod
    def _keys_are_well_formed(cls, keys: dict[str, SecretStr]) -> dict[str, SecretStr]:
        for kid in keys:
            if not (kid.isascii() and kid.isalnum() and 1 <= len(kid) <= 8):
                raise ValueError(f"token key id {kid!r} must be 1-8 ASCII letters or digits")
            if _KEY_REFERENCE.match(keys[kid].get_secret_value()):
                raise ValueError(f"token key {kid!r} is a reference to a key, not the key")
        return keys

    @model_validator(mode="after")
    def _check(self) -> Settings:
        if self.token_active_kid not in self.token_keys:
            raise ValueError("TOKEN_ACTIVE_KID must name one of TOKEN_KEYS")
        if not (self.storage_connection_string or self.storage_blob_url):
            if self.environment != "local":
                raise ValueError("set STORAGE_BLOB_URL and STORAGE_TABLE_URL")
            self.storage_connection_string = SecretStr(AZURITE_CONNECTION_STRING)
        if self.storage_blob_url and not self.storage_table_url:
            raise ValueError("STORAGE_TABLE_URL is required with STORAGE_BLOB_URL")
        if self.environment != "local":
            secrets = [k.get_secret_value() for k in self.token_keys.values()]
            if self.auth_mode == "dev":
                raise ValueError("AUTH_MODE=dev is only for local development")
            if any(s in _PLACEHOLDERS or len(s) < 32 for s in secrets):
                raise ValueError("TOKEN_KEYS holds a placeholder or a key under 32 characters")
        if self.graph_auth == "static" and self.environment != "local":
            raise ValueError("GRAPH_AUTH=static is only for a local Graph stand-in")
        if self.graph_auth == "static" and self.graph_static_token is None:
            raise ValueError("GRAPH_AUTH=static needs GRAPH_STATIC_TOKEN")
        if self.graph_auth in ("client_secret", "certificate") and not (
            self.graph_tenant_id and self.graph_client_id
        ):
            raise ValueError(
                f"GRAPH_AUTH={self.graph_auth} needs GRAPH_TENANT_ID and GRAPH_CLIENT_ID"
            )
        if self.auth_mode == "entra" and not (
            self.entra_issuer and self.entra_audience and self.entra_jwks_url
        ):
            raise ValueError("AUTH_MODE=entra needs ENTRA_ISSUER, ENTRA_AUDIENCE, ENTRA_JWKS_URL")
        return self

    @property
    def counted(self) -> frozenset[str]:
        """The counted classes, plus "" (events recorded before classification)."""
        return counted_set(self.counted_classes)

    @property
    def tracking_host(self) -> str:
        """Host of our tracking links, so that the rewriter never wraps them twice."""
        from urllib.parse import urlsplit

        return (urlsplit(self.tracking_base_url).hostname or "").lower()


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
