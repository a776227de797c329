"""What the erasure route answers: the report of `retention.erase`, typed."""

from __future__ import annotations

from shared.core.public import Public


class ErasurePublic(Public):
    """What was removed about one address."""

    email: str
    messages: int
    interaction_blobs_deleted: int
    event_rows_deleted: int
    activities_deleted: int
