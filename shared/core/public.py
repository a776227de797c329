"""The base of the API's answer models (each capability's `public.py`) and the types they
share. The services build plain dicts; these classes say what those dicts hold, so `/docs`
documents every answer and FastAPI checks each one on its way out."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema


class Public(BaseModel):
    """An answer of the seller API. A key the services add before a model declares it still
    goes out (extra="allow") rather than vanishing; tests/functions/test_openapi.py checks
    that every key the routes really answer is declared."""

    model_config = ConfigDict(extra="allow")


# A time as the services wrote it (ISO 8601 with its offset), kept as text: the answer
# carries the very string stored, not pydantic's rendering of a datetime ("Z" for "+00:00").
IsoTime = Annotated[str, WithJsonSchema({"type": "string", "format": "date-time"})]


class MePublic(Public):
    """The calling seller: who Entra ID says they are, their roles, their settings."""

    email: str = Field(description="the seller's address: their mailbox, and what to show")
    tenant_id: str
    object_id: str
    roles: list[str] = Field(description="app roles of the token (`Engagement.Admin`)")
    is_admin: bool
    time_zone: str | None = Field(
        description="the IANA time zone to show times in (PUT /api/me); null until set"
    )
