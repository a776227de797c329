"""A Microsoft Graph v1.0 stand-in: an HTTP server on loopback that the real msgraph-sdk can
talk to, with in-memory mailboxes that tests fill and inspect.

    with GraphStandIn() as graph:
        graph.add_mailbox("ana@contoso.example")
        adapter.base_url = graph.base_url      # http://127.0.0.1:{port}/v1.0

Or alone, for the demo: python -m devtools.graph_standin --port 8765 --mailbox ana@contoso.example
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

from devtools.graph import categories, events
from devtools.graph.delta import DeltaTracker
from devtools.graph.odata import Address
from devtools.graph.routes import GraphApi
from devtools.graph.server import Fault, GraphServer, RequestRecord
from devtools.graph.store import GraphStore

logger = logging.getLogger(__name__)

# Not a secret: the stand-in only listens on loopback and holds made-up mail.
DEFAULT_TOKEN = "standin-dev-token"  # noqa: S105


class GraphStandIn:
    """The stand-in server and the Python API tests use to arrange and inspect its mailboxes."""

    def __init__(
        self,
        *,
        token: str = DEFAULT_TOKEN,
        port: int = 0,
        latency: float = 0.0,
        mailbox_concurrency_limit: int | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        """latency holds every request that long so concurrency shows; a concurrency limit
        answers 429 past that many requests in flight per mailbox, each request inside a
        $batch counted (Outlook allows four); clock lets a test move time (deferred sends)."""
        self._port = port
        self._clock = clock or (lambda: datetime.now(UTC))
        self._lock = threading.RLock()
        self._store = GraphStore(self._clock)
        self._tracker = DeltaTracker(self._store)
        self._server = GraphServer(
            GraphApi(self._store, self._tracker),
            self._lock,
            token=token,
            latency=latency,
            mailbox_concurrency_limit=mailbox_concurrency_limit,
            clock=self._clock,
        )
        self._base_url: str | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> str:
        """Serves on 127.0.0.1 (a free port unless one was given); returns the /v1.0 base URL."""
        if self._base_url is None:
            port = self._server.start(self._port)
            self._base_url = f"http://127.0.0.1:{port}/v1.0"
        return self._base_url

    def stop(self) -> None:
        """Stops the server and waits for its thread."""
        self._server.stop()
        self._base_url = None

    def __enter__(self) -> GraphStandIn:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """The /v1.0 root to give GraphRequestAdapter.base_url."""
        if self._base_url is None:
            raise RuntimeError("the Graph stand-in is not started")
        return self._base_url

    # -- arranging mailboxes ---------------------------------------------------------------

    def add_mailbox(
        self, user: str, display_name: str | None = None, *, default_categories: bool = True
    ) -> str:
        """A mailbox with the well-known folders and, like a new Outlook mailbox, the six
        colour categories (unless default_categories is False); returns the user's id, which
        /users/{id} accepts as well as the address."""
        with self._lock:
            box = self._store.add_mailbox(user, display_name, default_categories=default_categories)
            return box.object_id

    def add_folder(self, user: str, display_name: str) -> str:
        """A custom top-level mail folder; returns its id."""
        with self._lock:
            return self._store.add_folder(user, display_name)

    def deliver(
        self,
        user: str,
        *,
        folder: str = "inbox",
        subject: str,
        body_html: str,
        sender: Address,
        to: Sequence[Address],
        cc: Sequence[Address] = (),
        internet_message_id: str | None = None,
        conversation_id: str | None = None,
        in_reply_to: str | None = None,
        references: str | None = None,
        headers: Mapping[str, str] | None = None,
        categories: Iterable[str] = (),
        received: datetime | None = None,
    ) -> dict[str, Any]:
        """An incoming message in a folder; returns it as Graph would (plus its headers)."""
        extra = [("In-Reply-To", in_reply_to), ("References", references)]
        all_headers = [(n, v) for n, v in extra if v] + list((headers or {}).items())
        with self._lock:
            msg = self._store.deliver(
                user,
                folder=folder,
                subject=subject,
                body_html=body_html,
                sender=sender,
                to=to,
                cc=cc,
                internet_message_id=internet_message_id,
                conversation_id=conversation_id,
                headers=all_headers,
                categories=categories,
                received=received,
            )
            return self._store.full_view(msg)

    def set_categories(self, user: str, message_id: str, names: Iterable[str]) -> None:
        """What a user does when categorising a message in Outlook."""
        with self._lock:
            self._store.set_categories(user, message_id, names)

    def drop_property(self, user: str, message_id: str, name: str) -> None:
        """Removes a property from a stored message, as some journal or imported items lack
        one (an Internet message id, say); it counts as a change for delta."""
        with self._lock:
            self._store.drop_property(user, message_id, name)

    def move(self, user: str, message_id: str, folder: str) -> None:
        """Moves a message to a folder (id or well-known name); its id stays."""
        with self._lock:
            self._store.move(user, message_id, folder)

    def delete(self, user: str, message_id: str) -> None:
        """Deletes a message for good."""
        with self._lock:
            self._store.delete(user, message_id)

    def add_event(
        self,
        user: str,
        subject: str,
        start: datetime,
        end: datetime,
        attendees: Sequence[Address],
        categories: Iterable[str] = (),
    ) -> dict[str, Any]:
        """A single-instance event in the primary calendar, organised by the mailbox owner."""
        with self._lock:
            box = self._store.mailbox(user)
            event = events.add(box, self._clock(), subject, start, end, attendees, categories)
            return events.to_json(event)

    def set_event_categories(self, user: str, event_id: str, names: Iterable[str]) -> None:
        with self._lock:
            events.set_categories(self._store.mailbox(user), event_id, names, self._clock())

    def delete_event(self, user: str, event_id: str) -> None:
        with self._lock:
            events.delete(self._store.mailbox(user), event_id)

    def add_master_category(
        self, user: str, display_name: str, color: str = "none"
    ) -> dict[str, str]:
        with self._lock:
            box = self._store.mailbox(user)
            return categories.create(box, {"displayName": display_name, "color": color})

    def delete_master_category(self, user: str, category_id: str) -> None:
        with self._lock:
            categories.delete(self._store.mailbox(user), category_id)

    def rename_master_category(self, user: str, category_id: str, new_name: str) -> None:
        """A rename done in Outlook; Graph itself cannot rename a category."""
        with self._lock:
            categories.rename(self._store.mailbox(user), category_id, new_name)

    # -- faults and time -------------------------------------------------------------------

    def fail_next(
        self,
        count: int,
        *,
        status: int = 429,
        retry_after: int | None = 1,
        path_contains: str | None = None,
        method: str | None = None,
        body_contains: str | None = None,
        after: int = 0,
    ) -> None:
        """The next `count` matching requests fail with Graph's throttling shape (429, or
        serviceNotAvailable for 503, ErrorAccessDenied for 403: a mailbox the app may not
        read, generalException otherwise) and a Retry-After header
        unless retry_after is None. A request inside a $batch gets its own answer there.
        `after` lets that many matching requests through first (the second send, say)."""
        with self._lock:
            self._server.faults.append(
                Fault(count, status, retry_after, path_contains, method, body_contains, after=after)
            )

    def fail_always(
        self,
        *,
        status: int = 500,
        retry_after: int | None = None,
        path_contains: str | None = None,
        method: str | None = None,
        body_contains: str | None = None,
    ) -> None:
        """Every matching request fails as fail_next describes, until clear_faults."""
        with self._lock:
            self._server.faults.append(
                Fault(1, status, retry_after, path_contains, method, body_contains, True)
            )

    def clear_faults(self) -> None:
        """Drops every injected fault and random throttling."""
        with self._lock:
            self._server.faults = []
            self._server.throttle_fraction = 0.0

    def throttle_randomly(self, fraction: float, *, retry_after: int = 1, seed: int = 0) -> None:
        """That share of requests (single or inside a $batch), picked at random with a fixed
        seed, answers 429 with Retry-After."""
        with self._lock:
            self._server.throttle_fraction = fraction
            self._server.throttle_retry_after = retry_after
            self._server.reseed(seed)

    @property
    def mailbox_concurrency_limit(self) -> int | None:
        """Requests in flight per mailbox past which Graph answers 429 (None: no limit)."""
        return self._server.limit

    @mailbox_concurrency_limit.setter
    def mailbox_concurrency_limit(self, limit: int | None) -> None:
        with self._lock:
            self._server.limit = limit

    @property
    def faults_served(self) -> int:
        """Injected faults answered so far (random throttling included)."""
        with self._lock:
            return self._server.faults_served

    def refused(self, user: str) -> int:
        """Requests to this mailbox answered 429 for the concurrency limit so far."""
        with self._lock:
            return self._server.refused.get(self._server.user_key(user), 0)

    def expire_delta_tokens(self, user: str) -> None:
        """Every delta and skip token issued so far for the mailbox now answers 410."""
        with self._lock:
            self._tracker.expire(user)

    def tick(self) -> None:
        """Lets deferred sends whose time has come leave the Outbox (any request does too)."""
        with self._lock:
            self._store.release_due()

    # -- inspecting ------------------------------------------------------------------------

    @property
    def requests(self) -> list[RequestRecord]:
        """(method, path with query, monotonic time) of each HTTP request, $batch once."""
        with self._lock:
            return list(self._server.requests)

    @property
    def batch_requests(self) -> list[RequestRecord]:
        """(method, path with query, monotonic time) of each request inside a $batch."""
        with self._lock:
            return list(self._server.batch_requests)

    def max_concurrency(self, user: str) -> int:
        """The most requests for this mailbox in flight at once so far, each request inside a
        $batch counted, refused ones included."""
        with self._lock:
            return self._server.max_in_flight.get(self._server.user_key(user), 0)

    def messages(self, user: str, folder: str | None = None) -> list[dict[str, Any]]:
        """Every message of a folder (id or well-known name) or of the mailbox, newest first."""
        with self._lock:
            box = self._store.mailbox(user)
            folder_id = box.folder(folder).id if folder else None
            return [
                self._store.full_view(m) for m in self._store.find_messages(box, folder_id, None)
            ]

    def sent(self, user: str) -> list[dict[str, Any]]:
        """Messages in Sent Items, oldest first, with extended properties and attachments."""
        return sorted(self.messages(user, "sentitems"), key=lambda m: str(m["sentDateTime"]))

    def master_categories(self, user: str) -> list[dict[str, str]]:
        with self._lock:
            return [dict(c) for c in self._store.mailbox(user).categories.values()]

    def events(self, user: str) -> list[dict[str, Any]]:
        with self._lock:
            box = self._store.mailbox(user)
            return [events.to_json(e) for e in box.events.values()]


def main(argv: Sequence[str] | None = None) -> None:
    """Runs the stand-in alone on loopback until interrupted."""
    parser = argparse.ArgumentParser(description="Microsoft Graph stand-in on 127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--mailbox", action="append", default=[], help="repeat for more")
    parser.add_argument("--token", default=DEFAULT_TOKEN)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    standin = GraphStandIn(token=args.token, port=args.port)
    for mailbox in args.mailbox:
        standin.add_mailbox(mailbox)
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    with standin:
        logger.info("Graph stand-in at %s for %d mailbox(es)", standin.base_url, len(args.mailbox))
        stopping.wait()
        logger.info("stopping")


if __name__ == "__main__":
    main()
