"""The services of one worker, as every capability receives them: settings, storage clients,
token signer, authenticator, delivery backend, clock, the Graph client (built on first
use) and the milestones (side effects that go up the layers). Built by shared.bootstrap."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from shared.core.auth import Authenticator
from shared.core.settings import Settings
from shared.core.storage import Store

if TYPE_CHECKING:  # types of higher layers, which bootstrap puts in
    from shared.messages.delivery import DeliveryBackend
    from shared.outlook.graph_client import Graph
    from shared.tracking.links import LinkResolver
    from shared.tracking.org_switch import OrgSwitch
    from shared.tracking.tokens import TokenSigner

Message = Mapping[str, Any]  # a messages-table row


@dataclass(frozen=True, slots=True)
class OpenEvidence:
    """The first counted open of a message, as the fold judged it."""

    at: datetime
    how: str  # "opened in Outlook on Windows", "opened via Gmail — time approximate"
    clear: bool  # a person's open beyond doubt: alert at once
    copy: int = 0  # which recipient's copy, for a message sent individually


class Milestones(Protocol):
    """What happens when a message reaches a milestone, beyond its own row: template
    counters and first-open alerts (shared.milestones). Handed in, so the fold, the sync and
    sending never import the assistant or the templates."""

    async def sent(self, message: Message) -> None:
        """The message went out (called before its status is written: idempotent)."""
        ...

    async def opened(self, message: Message, first: OpenEvidence, now: datetime) -> None:
        """The message got its first counted open: count it for its template and raise the
        first-open alert (at once when the open is clearly a person's, else once the open
        has stood for ALERT_WAIT_SECONDS)."""
        ...

    async def opened_all(self, opened: list[tuple[Message, OpenEvidence]], now: datetime) -> None:
        """`opened` for many messages at once (a fold's partition), in few requests."""
        ...

    async def unopened(self, message: Message, reason: str, now: datetime) -> None:
        """A later fold took back every counted open of the message (they were a scanner's):
        uncount it for its template and withdraw its first-open alert."""
        ...

    async def replied(self, message: Message) -> None:
        """The message got its first reply."""
        ...


@dataclass
class Services:
    settings: Settings
    store: Store
    signer: TokenSigner
    auth: Authenticator
    delivery: DeliveryBackend
    clock: Callable[[], datetime]
    links: LinkResolver
    org: OrgSwitch
    milestones: Milestones
    graph_factory: Callable[[], Graph]
    _graph: Graph | None = field(default=None, init=False)

    def graph(self) -> Graph:
        """The Graph client, built on first use: the SDK is imported only then, so the HTTP
        tracking path never pays for it."""
        if self._graph is None:
            self._graph = self.graph_factory()
        return self._graph

    async def close(self) -> None:
        if self._graph is not None:
            await self._graph.close()  # first: it gives its permits back through the store
        await self.store.close()

    @property
    def grace(self) -> timedelta:
        return timedelta(seconds=self.settings.fold_grace_seconds)
