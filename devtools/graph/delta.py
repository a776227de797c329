"""Delta query state for the Graph stand-in: rounds, skip tokens and delta tokens.

A round is computed once, when its first page is asked for: every item of the scope on an
initial round; later, what changed since the baseline the previous round's delta token
recorded (new or changed items, and "@removed" for items gone from the scope). Pages of a
round are served through skip tokens; the last page carries a delta token whose baseline is the
scope as it was when the round was computed. Tokens live in a bounded cache, as Outlook's do
(docs: delta-query-overview, "Token duration"); an evicted, expired or unknown token answers
410 Gone with the documented syncStateNotFound code.
"""

from __future__ import annotations

import secrets
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from devtools.graph import events
from devtools.graph.mailbox import Mailbox
from devtools.graph.odata import GraphError
from devtools.graph.store import GraphStore

TOKEN_CACHE_SIZE = 10_000


@dataclass(frozen=True)
class DeltaQuery:
    """What a round tracks; encoded in its tokens as Graph encodes the initial query options."""

    kind: str  # "message" or "event"
    user: str  # the mailbox address
    folder_id: str | None  # messages: the folder tracked
    window: tuple[datetime, datetime] | None  # events: the calendar view's range
    select: tuple[str, ...] | None
    change_type: str | None  # created, updated or deleted (messages only)
    top: int | None
    path: str  # the delta function's path, relative to the version root


@dataclass(frozen=True)
class Baseline:
    """The scope as a previous round left it: its members and the mailbox sequence number."""

    members: frozenset[str]
    seq: int


@dataclass(frozen=True)
class DeltaRound:
    query: DeltaQuery
    entries: tuple[str, ...]
    removed: frozenset[str]
    next_baseline: Baseline


@dataclass(frozen=True)
class Token:
    serial: int
    query: DeltaQuery
    round: DeltaRound | None = None  # a skip token: the round being paged
    offset: int = 0
    baseline: Baseline | None = None  # a delta token: where the next round starts


@dataclass(frozen=True)
class DeltaPage:
    items: list[dict[str, Any]]
    skip_token: str | None
    delta_token: str | None


class DeltaTracker:
    """Issues and redeems delta state tokens over a GraphStore."""

    def __init__(self, store: GraphStore) -> None:
        self._store = store
        self._tokens: OrderedDict[str, Token] = OrderedDict()
        self._serial = 0
        self._expired_through: dict[str, int] = {}

    def expire(self, user: str) -> None:
        """Every token issued so far for this mailbox answers 410 from now on."""
        self._expired_through[self._store.mailbox(user).address] = self._serial

    def redeem(self, token: str, *, is_delta: bool, location: str) -> Token:
        """The state behind a token, or 410 syncStateNotFound (with a restart Location)."""
        found = self._tokens.get(token)
        if (
            found is None
            or (found.round is None) == (not is_delta)
            or found.serial <= self._expired_through.get(found.query.user, 0)
        ):
            raise GraphError(
                410,
                "syncStateNotFound",
                "The sync state generation is not found. The delta token is expired and data "
                "must be synchronized again.",
                {"Location": location},
            )
        return found

    def page(self, query: DeltaQuery, token: Token | None, size: int) -> DeltaPage:
        """One page of a round: the first page of a new round unless a skip token continues one."""
        box = self._store.mailbox(query.user)
        if token is not None and token.round is not None:
            round_, offset = token.round, token.offset
        else:
            round_, offset = self._new_round(box, query, token.baseline if token else None), 0
        chosen = round_.entries[offset : offset + size]
        items = [self._render(box, query, item_id, round_.removed) for item_id in chosen]
        if offset + size < len(round_.entries):
            return DeltaPage(items, self._issue(Token(0, query, round_, offset + size)), None)
        return DeltaPage(items, None, self._issue(Token(0, query, baseline=round_.next_baseline)))

    def _issue(self, token: Token) -> str:
        self._serial += 1
        value = secrets.token_urlsafe(24)
        self._tokens[value] = Token(
            self._serial, token.query, token.round, token.offset, token.baseline
        )
        while len(self._tokens) > TOKEN_CACHE_SIZE:
            self._tokens.popitem(last=False)
        return value

    def _members(self, box: Mailbox, query: DeltaQuery) -> dict[str, int]:
        if query.kind == "message":
            return {
                m.id: m.version for m in box.messages.values() if m.folder_id == query.folder_id
            }
        assert query.window is not None
        start, end = query.window
        return {
            e.data["id"]: e.version for e in box.events.values() if e.start < end and e.end > start
        }

    def _new_round(self, box: Mailbox, query: DeltaQuery, baseline: Baseline | None) -> DeltaRound:
        members = self._members(box, query)
        next_baseline = Baseline(frozenset(members), box.seq)
        if baseline is None:
            return DeltaRound(query, tuple(members), frozenset(), next_baseline)
        created = [i for i in members if i not in baseline.members]
        updated = [i for i in members if i in baseline.members and members[i] > baseline.seq]
        removed = [i for i in baseline.members if i not in members]
        wanted = {"created": created, "updated": updated, "deleted": removed}
        if query.change_type in wanted:
            entries = wanted[query.change_type]
        else:
            entries = removed + created + updated
        return DeltaRound(query, tuple(entries), frozenset(removed), next_baseline)

    def _render(
        self, box: Mailbox, query: DeltaQuery, item_id: str, removed: frozenset[str]
    ) -> dict[str, Any]:
        type_name = f"#microsoft.graph.{query.kind}"
        if item_id not in removed:
            if query.kind == "message":
                msg = box.messages.get(item_id)
                if msg is not None and msg.folder_id == query.folder_id:
                    return {"@odata.type": type_name, **self._store.message_json(msg, query.select)}
            elif item_id in box.events:
                return {"@odata.type": type_name, **events.to_json(box.events[item_id])}
        # Moved out of the folder or deleted: the message docs show reason "deleted" only.
        return {"@odata.type": type_name, "id": item_id, "@removed": {"reason": "deleted"}}
