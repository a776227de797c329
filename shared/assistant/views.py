"""An alert as the seller sees it: in the API's list and in a webhook's body alike."""

from __future__ import annotations

import json
from typing import Any


def alert_view(row: Any) -> dict[str, Any]:
    """The alert row as the API lists it (shared.assistant.public.AlertPublic)."""
    return {
        "id": row["RowKey"],
        "kind": row["kind"],
        "priority": row["priority"],
        "message_id": row["message_id"],
        "subject": row["subject"],
        "regarding": json.loads(row["regarding"]) if row.get("regarding") else None,
        "created_at": row["created_at"],
        "raised_at": row.get("raised_at") or row["created_at"],
        "how": row.get("how") or None,
        "recipient": row.get("recipient") or None,
        "snoozed_until": row.get("snoozed_until") or None,
        "withdrawn": row.get("withdrawn") or None,
    }
