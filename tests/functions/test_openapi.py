"""The OpenAPI document tells the truth: every API route documents its answer (and the
answers really have that shape, every key declared), the bearer scheme Swagger UI's
"Authorize" uses is declared and works, and every error is documented and answered in the
one error shape, routing's own 404 and 405 included."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

import httpx
from fastapi.routing import APIRoute
from pydantic import BaseModel

from functions.errors import ErrorPublic
from functions.http_app import create_app
from functions.routes import activities, admin, alerts, health, me, messages, records, templates
from shared.assistant.reminders import reminder_cycle
from shared.core.auth import ADMIN_ROLE, make_dev_token
from shared.core.services import Services
from shared.core.vocabulary import EVENT_CLASSES
from shared.engagement.fold import fold_cycle
from shared.messages.public import ClassTally
from shared.outlook.activities import ACTIVITY, activity_key, index
from shared.outlook.mailboxes import FAILURE_CLASSES
from shared.outlook.public import MailboxErrors, MailboxErrorsOnDay
from tests.conftest import Clock
from tests.functions import test_health
from tests.utils.factories import attachment, compose_body, template_body

down = test_health.down  # services whose storage is a port nothing listens on

ERROR_REF = "#/components/schemas/ErrorPublic"


async def openapi(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    spec: dict[str, Any] = response.json()
    return spec


def operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, op)
        for path, ops in spec["paths"].items()
        for method, op in ops.items()
        if path.startswith("/api/")
    ]


def resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def undeclared(value: Any, path: str = "") -> list[str]:
    """The keys of a validated answer that its models do not declare."""
    if isinstance(value, BaseModel):
        found = [f"{path}.{key}" for key in value.model_extra or {}]
        for name in type(value).model_fields:
            found += undeclared(getattr(value, name), f"{path}.{name}")
        return found
    if isinstance(value, list):
        return [key for i, item in enumerate(value) for key in undeclared(item, f"{path}[{i}]")]
    if isinstance(value, dict):
        return [key for k, item in value.items() for key in undeclared(item, f"{path}.{k}")]
    return []


def assert_error_shape(response: httpx.Response, status: int, field: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    error = ErrorPublic.model_validate(response.json())  # forbids keys it does not declare
    assert error.error.field == field
    body: dict[str, Any] = response.json()
    return body


async def test_every_api_route_documents_a_typed_answer(client: httpx.AsyncClient) -> None:
    spec = await openapi(client)
    ops = operations(spec)
    assert len(ops) >= 30  # the whole seller and admin API, not a stray subset
    for method, path, op in ops:
        ok = {code: r for code, r in op["responses"].items() if code.startswith("2")}
        assert ok, f"{method} {path} documents no success"
        for code, answer in ok.items():
            if code == "204":
                assert "content" not in answer  # no content, truly
                continue
            schema = resolve(spec, answer["content"]["application/json"]["schema"])
            assert schema.get("properties"), f"{method} {path} {code} answers an untyped object"
    # The tracking routes (tokens in their paths) stay out of the document.
    assert not [path for path in spec["paths"] if path.startswith("/t/")]


async def test_bearer_scheme_is_declared_and_guards_every_seller_route(
    client: httpx.AsyncClient,
) -> None:
    spec = await openapi(client)
    schemes = spec["components"]["securitySchemes"]
    ((name, scheme),) = schemes.items()
    assert scheme["type"] == "http" and scheme["scheme"] == "bearer"
    for method, path, op in operations(spec):
        assert op.get("security") == [{name: []}], f"{method} {path} is not behind the bearer"
        assert "401" in op["responses"], f"{method} {path} does not document 401"
        # The token is the scheme's, not a header field to fill in beside it.
        params = [p["name"].lower() for p in op.get("parameters", [])]
        assert "authorization" not in params, f"{method} {path}"
    assert "security" not in spec["paths"]["/health"]["get"]


async def test_every_error_answer_is_documented_in_the_error_shape(
    client: httpx.AsyncClient,
) -> None:
    spec = await openapi(client)
    for method, path, op in operations(spec):
        errors = {code: r for code, r in op["responses"].items() if code[0] in "45"}
        for code, answer in errors.items():
            ref = answer["content"]["application/json"]["schema"]["$ref"]
            if (path, code) == ("/api/admin/readiness", "503"):
                assert ref.endswith("/ReadinessPublic")  # the checks, naming the failing one
            else:
                assert ref == ERROR_REF, f"{method} {path} {code}"
        if path != "/api/admin/readiness":
            assert "Retry-After" in errors["503"]["headers"], f"{method} {path}"
    # FastAPI's own validation shape, which the app never answers, is documented nowhere.
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    error = resolve(spec, {"$ref": ERROR_REF})["properties"]["error"]
    body = resolve(spec, error)
    assert set(body["required"]) == {"field", "message"} and "details" in body["properties"]


async def test_real_errors_have_the_documented_shape_and_status(
    client: httpx.AsyncClient, auth: dict[str, str], down: Services
) -> None:
    spec = await openapi(client)

    def documented(method: str, path: str, status: int) -> bool:
        return str(status) in spec["paths"][path][method.lower()]["responses"]

    anonymous = await client.get("/api/alerts")
    assert_error_shape(anonymous, 401, "authorization")
    assert anonymous.headers["www-authenticate"] == "Bearer"
    assert documented("GET", "/api/alerts", 401)
    bad_json = await client.post(
        "/api/messages",
        content=b"{not json",
        headers={**auth, "Content-Type": "application/json"},
    )
    assert_error_shape(bad_json, 400, "body")
    assert documented("POST", "/api/messages", 400)
    invalid = await client.post("/api/messages", json=compose_body(to=["nope"]), headers=auth)
    body = assert_error_shape(invalid, 422, "to[0]")
    assert body["error"]["details"][0]["field"] == "to[0]"
    assert documented("POST", "/api/messages", 422)
    missing = await client.get("/api/messages/not-a-message", headers=auth)
    assert_error_shape(missing, 404, "id")
    assert documented("GET", "/api/messages/{message_id}", 404)
    transport = httpx.ASGITransport(app=create_app(lambda: down))
    async with httpx.AsyncClient(transport=transport, base_url=str(client.base_url)) as dead:
        unavailable = await dead.get("/api/alerts", headers=auth)
    assert_error_shape(unavailable, 503, "service")
    assert unavailable.headers["retry-after"].isdigit()
    assert documented("GET", "/api/alerts", 503)


async def test_unknown_paths_and_methods_answer_in_the_error_shape(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    unknown = await client.get("/api/no-such-thing", headers=auth)
    body = assert_error_shape(unknown, 404, "path")
    assert body == {"error": {"field": "path", "message": "no such route"}}
    not_allowed = await client.delete("/api/messages", headers=auth)
    assert_error_shape(not_allowed, 405, "method")
    assert not_allowed.headers["allow"]  # routing's own header survives


async def test_swagger_authorize_reaches_a_seller_route(
    client: httpx.AsyncClient, services: Services
) -> None:
    spec = await openapi(client)
    ((name, scheme),) = spec["components"]["securitySchemes"].items()
    assert spec["paths"]["/api/alerts"]["get"]["security"] == [{name: []}]
    token = make_dev_token(services.settings, "swagger.user@contoso.example")
    # What Swagger UI sends for an HTTP bearer scheme once "Authorize" holds the token.
    authorized = {"Authorization": f"{scheme['scheme'].capitalize()} {token}"}
    answer = await client.get("/api/alerts", headers=authorized)
    assert answer.status_code == 200 and answer.json() == {"alerts": []}
    lowercase = await client.get("/api/alerts", headers={"Authorization": f"bearer {token}"})
    assert lowercase.status_code == 200
    other_scheme = await client.get("/api/alerts", headers={"Authorization": f"Basic {token}"})
    assert_error_shape(other_scheme, 401, "authorization")
    forged = await client.get("/api/alerts", headers={"Authorization": f"Bearer {token}x"})
    assert_error_shape(forged, 401, "authorization")


async def test_the_pages_find_what_they_need_in_the_document(client: httpx.AsyncClient) -> None:
    spec = await openapi(client)

    def fields(path: str, method: str = "get", code: str = "200") -> set[str]:
        answer = spec["paths"][path][method]["responses"][code]
        return set(resolve(spec, answer["content"]["application/json"]["schema"])["properties"])

    # Assistant: a poll that changed nothing answers 304, without a body.
    not_modified = spec["paths"]["/api/alerts"]["get"]["responses"]["304"]
    assert "content" not in not_modified and "If-None-Match" in not_modified["description"]
    # Compose: the advice on both clocks. Records: a page of a search, and who may switch.
    assert {"local_time", "seller_time", "seller_time_zone"} <= fields("/api/advice")
    assert {"records", "continuation"} <= fields("/api/records")
    params = {p["name"] for p in spec["paths"]["/api/records"]["get"]["parameters"]}
    assert {"email", "q", "type", "limit", "continuation"} <= params
    record = fields("/api/records/{record_type}/{record_id}")
    assert {"can_change_follow_email", "follow_email_changed_by"} <= record
    # Templates: a preview. Admin: the dashboard's status and errors by day.
    preview = "/api/templates/{template_id}/preview"
    assert {"subject", "html", "record", "to"} <= fields(preview, "post")
    mailbox = spec["components"]["schemas"]["MailboxHealthPublic"]["properties"]
    assert {"status", "errors_by_day", "lag_seconds"} <= set(mailbox)


def test_models_follow_the_vocabularies() -> None:
    assert tuple(ClassTally.model_fields) == EVENT_CLASSES
    assert tuple(MailboxErrors.model_fields) == FAILURE_CLASSES
    assert tuple(MailboxErrorsOnDay.model_fields) == (*FAILURE_CLASSES, "date")


async def tracked_item(services: Services, mailbox: str, contact: str, followed: str) -> str:
    """An activity as the sync stores it (shared.outlook.activities), with its index rows."""
    key = activity_key(f"<{uuid.uuid4().hex}@fabrikam.example>")
    now = services.clock().isoformat()
    row = {
        "PartitionKey": ACTIVITY, "RowKey": key, "kind": "email",
        "internet_message_id": f"<{key}@fabrikam.example>", "subject": "Re: Your quote",
        "sender": "bob.openapi@fabrikam.example",
        "addresses": json.dumps(["bob.openapi@fabrikam.example", mailbox]), "at": now,
        "conversation_id": "c", "method": "token", "status": "tracked",
        "mailboxes": json.dumps({mailbox: "graph-id"}), "followed_message_id": followed,
        "regarding": json.dumps([{"type": "contact", "id": contact}]), "tracked_at": now,
        "untracked_at": "",
    }  # fmt: skip
    await services.store.activity_blobs.upload_blob(f"{key}.html", b"<p>Yes</p>", overwrite=True)
    await index(services, row, key)
    await services.store.activities.create_entity(row)
    return key


class Answers:
    """Calls the API and checks each answer against its route's response model, remembering
    which routes it saw."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.routes = {
            (method, route.path): route
            for module in (activities, admin, alerts, health, me, messages, records, templates)
            for route in module.router.routes
            if isinstance(route, APIRoute) and route.response_model is not None
            for method in route.methods
        }
        self.seen: set[tuple[str, str]] = set()

    async def __call__(
        self,
        method: str,
        template: str,
        headers: dict[str, str],
        *,
        status: int = 200,
        **kwargs: Any,
    ) -> dict[str, Any]:
        path_values = {k: kwargs.pop(k) for k in list(kwargs) if "{" + k + "}" in template}
        response = await self.client.request(
            method, template.format(**path_values), headers=headers, **kwargs
        )
        assert response.status_code == status, response.text
        body: dict[str, Any] = response.json()
        model = self.routes[(method, template)].response_model
        assert undeclared(model.model_validate(body)) == [], f"{method} {template}"
        self.seen.add((method, template))
        return body


async def test_every_answer_declares_every_key_it_carries(
    client: httpx.AsyncClient, services: Services, clock: Clock
) -> None:
    call = Answers(client)
    typed = {
        (m, p)
        for m, p, op in operations(await openapi(client))
        if "200" in op["responses"] or "201" in op["responses"]
    }
    assert typed | {("GET", "/health")} == set(call.routes)  # no router left out here
    seller = {
        "Authorization": f"Bearer {make_dev_token(services.settings, 'openapi@contoso.example')}"
    }
    admin_token = make_dev_token(services.settings, "it@contoso.example", roles=(ADMIN_ROLE,))
    admin = {"Authorization": f"Bearer {admin_token}"}
    bob = "bob.openapi@fabrikam.example"

    # Records: an address with some parts only keeps the others out, not null.
    record = await call(
        "POST",
        "/api/records/{record_type}",
        seller,
        status=201,
        record_type="contact",
        json={"name": "Bob Openapi", "emails": [bob], "address": {"city": "Seattle", "state": "WA", "country": "US"}},
    )  # fmt: skip
    assert record["address"] == {"city": "Seattle", "state": "WA", "country": "US"}
    ids = {"record_type": "contact", "record_id": record["id"]}
    await call("GET", "/api/records/{record_type}/{record_id}", seller, **ids)
    await call("PATCH", "/api/records/{record_type}/{record_id}", seller, json={"name": "Bob O"}, **ids)  # fmt: skip
    await call("GET", "/api/records", seller, params={"email": bob})
    found = await call("GET", "/api/records", seller, params={"q": "Bob O", "type": "contact"})
    assert record["id"] in [r["id"] for r in found["records"]]
    stranger = "stranger.openapi@fabrikam.example"
    preferences = await call("GET", "/api/preferences", seller, params={"to": bob, "cc": stranger})
    assert preferences["follow_state"] == "blocked"
    await call("GET", "/api/advice", seller, params={"to": bob})

    # Webhook, before any alert exists to be pushed to it.
    await call(
        "PUT", "/api/alerts/webhook", seller, json={"url": "https://hooks.contoso.example/x"}
    )
    await call("GET", "/api/alerts/webhook", seller)
    assert (await client.delete("/api/alerts/webhook", headers=seller)).status_code == 204

    template = await call("POST", "/api/templates", seller, status=201, json=template_body())
    await call("GET", "/api/templates", seller)
    await call("GET", "/api/templates/{template_id}", seller, template_id=template["id"])
    await call("PATCH", "/api/templates/{template_id}", seller, template_id=template["id"], json={"name": "Renamed"})  # fmt: skip
    target = {"record_type": "contact", "record_id": record["id"]}
    await call("POST", "/api/templates/{template_id}/preview", seller, template_id=template["id"], json=target)  # fmt: skip
    await call("POST", "/api/templates/preview", seller, json={**target, "html": "<p>Hi</p>"})

    # Messages: followed (advice, a followed attachment, a reminder), blocked, draft, scheduled.
    remind_at = (clock.now() + timedelta(hours=1)).isoformat()
    followed = await call(
        "POST",
        "/api/messages",
        seller,
        status=201,
        json=compose_body(
            to=[bob],
            attachments=[attachment()],
            regarding={"type": "contact", "id": record["id"]},
            reminder={"title": "Chase Bob", "condition": "at", "at": remind_at},
        ),
    )
    assert followed["advice"] and followed["html"] and followed["attachments"][0]["views"] == 0
    assert "history" not in followed and "blocked_recipients" not in followed
    blocked = await call("POST", "/api/messages", seller, status=201, json=compose_body(to=[stranger]))  # fmt: skip
    assert blocked["blocked_recipients"] and blocked["follow_reason"]
    draft = await call("POST", "/api/messages", seller, status=201, json=compose_body(to=[bob], send=False))  # fmt: skip
    await call("POST", "/api/messages/{message_id}/send", seller, message_id=draft["id"])
    later = (clock.now() + timedelta(days=1)).isoformat()
    scheduled = await call("POST", "/api/messages", seller, status=201, json=compose_body(to=[bob], send_at=later))  # fmt: skip
    one = {"message_id": scheduled["id"]}
    even_later = (clock.now() + timedelta(days=2)).isoformat()
    await call("PATCH", "/api/messages/{message_id}/schedule", seller, json={"send_at": even_later}, **one)  # fmt: skip
    await call("POST", "/api/messages/{message_id}/cancel", seller, **one)
    reminder = {"title": "Call", "condition": "at", "at": later}
    await call("PUT", "/api/messages/{message_id}/reminder", seller, json=reminder, message_id=draft["id"])  # fmt: skip
    await call("DELETE", "/api/messages/{message_id}/reminder", seller, message_id=draft["id"])

    # Engagement: an open, folded; the message read with and without its history.
    pixel = followed["html"].split('src="http://track.test', 1)[1].split('"', 1)[0]
    assert (await client.get(pixel)).status_code == 200
    await fold_cycle(services, now=clock.advance(60), grace=services.grace)
    message = {"message_id": followed["id"]}
    read = await call("GET", "/api/messages/{message_id}", seller, **message)
    assert "history" not in read and "html" not in read and "advice" not in read
    full = await call("GET", "/api/messages/{message_id}", seller, params={"history": "full"}, **message)  # fmt: skip
    assert full["history"][0]["class"] and full["kpis"]["by_class"]["opens"]
    await call("GET", "/api/messages", seller, params={"follow_state": "any"})
    await call("GET", "/api/messages/{message_id}/preferences", seller, **message)

    # Drafts: changed, Retry Follow, deleted.
    edited = await call("POST", "/api/messages", seller, status=201, json=compose_body(to=[stranger], send=False))  # fmt: skip
    await call("PATCH", "/api/messages/{message_id}", seller, message_id=edited["id"], json={"subject": "New"})  # fmt: skip
    retried = await call("POST", "/api/messages/{message_id}/retry-follow", seller, message_id=edited["id"])  # fmt: skip
    listed = await call("GET", "/api/messages/drafts", seller, params={"limit": 200})
    assert edited["id"] in [d["id"] for d in listed["items"]]
    await call("GET", "/api/messages/{message_id}/body", seller, message_id=edited["id"])
    assert retried["follow_state"] == "blocked" and retried["blocked_recipients"]
    gone = await client.delete(f"/api/messages/{edited['id']}", headers=seller)
    assert gone.status_code == 204

    # Activities: an Outlook item tracked to Bob's record, answering the followed message.
    activity = await tracked_item(services, "openapi@contoso.example", record["id"], followed["id"])  # fmt: skip
    await call("GET", "/api/activities", seller)
    await call("GET", "/api/activities/{activity_id}", seller, activity_id=activity)
    await call("GET", "/api/messages/{message_id}/activities", seller, **message)
    await call("GET", "/api/records/{record_type}/{record_id}/activities", seller, **ids)
    timeline = await call("GET", "/api/records/{record_type}/{record_id}/timeline", seller, **ids)
    assert {i["type"] for i in timeline["items"]} == {"message", "activity"}

    # Me.
    await call("GET", "/api/me", seller)
    await call("PUT", "/api/me", seller, json={"time_zone": "America/Los_Angeles"})

    # Alerts: the first open, and the reminder once it fired (its message says when).
    clock.advance(2 * 3600)
    await reminder_cycle(services)
    fired = await call("GET", "/api/messages/{message_id}", seller, **message)
    assert fired["reminder"]["state"] == "fired" and fired["reminder"]["closed_at"]
    alerts = (await call("GET", "/api/alerts", seller))["alerts"]
    assert {a["kind"] for a in alerts} == {"first_open", "reminder"}
    until = (clock.now() + timedelta(hours=1)).isoformat()
    await call("POST", "/api/alerts/{alert_id}/snooze", seller, alert_id=alerts[0]["id"], json={"until": until})  # fmt: skip
    await call("POST", "/api/alerts/{alert_id}/dismiss", seller, alert_id=alerts[1]["id"])

    # Admin.
    enrolled = await call("POST", "/api/admin/mailboxes", admin, status=201, json={"email": "mailbox.openapi@contoso.example"})  # fmt: skip
    assert enrolled["category"] == {"id": None, "name": None}
    await call("GET", "/api/admin/mailboxes", admin)
    await call("GET", "/api/admin/engagement", admin)
    await call("PUT", "/api/admin/engagement", admin, json={"enabled": True})
    await call("POST", "/api/admin/erasure", admin, json={"email": "nobody.openapi@fabrikam.example"})  # fmt: skip
    await call("GET", "/api/admin/readiness", admin)
    await call("GET", "/health", {})

    assert call.seen == set(call.routes), "routes this test does not check"
