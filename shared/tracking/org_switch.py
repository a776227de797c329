"""The organisation's switch for email engagement. Off: nothing new is recorded and compose
cannot follow, but links already sent still redirect and followed attachments still
download; data already collected stays, and shows again when the switch is back on."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import UpdateMode

if TYPE_CHECKING:
    from shared.core.storage import Store

logger = logging.getLogger(__name__)
_KEYS = ("org", "engagement")
CACHE_SECONDS = 30.0  # how long another worker may keep recording after the switch is turned off


class OrgSwitch:
    """The switch, read at most once per CACHE_SECONDS per worker: the pixel asks on every
    hit, and must not pay a storage read each time."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._value: bool | None = None
        self._read_at = 0.0

    async def enabled(self) -> bool:
        """Whether engagement is on (on when never set, or when storage cannot say)."""
        if self._value is not None and time.monotonic() - self._read_at < CACHE_SECONDS:
            return self._value
        try:
            row = await self._store.state.get_entity(*_KEYS)
            value = bool(row.get("enabled", True))
        except ResourceNotFoundError:
            value = True
        except Exception:
            logger.warning("could not read the engagement switch; assuming on")
            return True if self._value is None else self._value
        self._value, self._read_at = value, time.monotonic()
        return value

    async def set(self, enabled: bool) -> None:
        """Turn engagement on or off for the whole organisation."""
        await self._store.state.upsert_entity(
            {"PartitionKey": _KEYS[0], "RowKey": _KEYS[1], "enabled": enabled},
            mode=UpdateMode.REPLACE,
        )
        self._value, self._read_at = enabled, time.monotonic()
