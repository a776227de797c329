"""Seller API: the organisation's email templates and how each performs."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from functions.deps import SellerDep, ServicesDep
from functions.errors import BODY_ERRORS, error_responses
from functions.routes import ExactAnswers
from shared.templates import library as template_library
from shared.templates.library import NewPreviewIn, PreviewIn, TemplateIn, TemplatePatch
from shared.templates.public import TemplateListPublic, TemplatePreviewPublic, TemplatePublic

router = APIRouter(
    prefix="/api/templates",
    tags=["templates"],
    route_class=ExactAnswers,
    responses=error_responses(401, 422, 503),
)


@router.post(
    "", status_code=201, response_model=TemplatePublic, responses=error_responses(*BODY_ERRORS)
)
async def create(body: TemplateIn, seller: SellerDep, services: ServicesDep) -> dict[str, Any]:
    """Create a template (422 naming `subject` or `html` if it would not render)."""
    return await template_library.create(services, seller, body)


@router.get("", response_model=TemplateListPublic)
async def list_templates(
    _: SellerDep, services: ServicesDep, sort: str = "name", order: str = "asc"
) -> dict[str, Any]:
    """Every template with its sent count, open and reply rates and `recommended`."""
    return {"items": await template_library.list_templates(services, sort=sort, order=order)}


@router.post(
    "/preview", response_model=TemplatePreviewPublic, responses=error_responses(*BODY_ERRORS)
)
async def preview_new(
    body: NewPreviewIn, seller: SellerDep, services: ServicesDep
) -> dict[str, Any]:
    """A template not saved yet rendered for a record (422 naming `record_id`, `subject` or
    `html`)."""
    return await template_library.preview(services, seller, None, body)


@router.post(
    "/{template_id}/preview",
    response_model=TemplatePreviewPublic,
    responses=error_responses(*BODY_ERRORS, 404),
)
async def preview(
    template_id: str, body: PreviewIn, seller: SellerDep, services: ServicesDep
) -> dict[str, Any]:
    """The template rendered for a record, with the `subject` or `html` being edited if
    given (422 naming `record_id`, `subject` or `html`)."""
    return await template_library.preview(services, seller, template_id, body)


@router.get("/{template_id}", response_model=TemplatePublic, responses=error_responses(404))
async def read(template_id: str, _: SellerDep, services: ServicesDep) -> dict[str, Any]:
    return await template_library.get(services, template_id)


@router.patch(
    "/{template_id}",
    response_model=TemplatePublic,
    responses=error_responses(*BODY_ERRORS, 403, 404, 409),
)
async def update(
    template_id: str, body: TemplatePatch, seller: SellerDep, services: ServicesDep
) -> dict[str, Any]:
    """Change a template's name, subject or HTML (its creator or an admin)."""
    return await template_library.update(services, seller, template_id, body)


@router.delete("/{template_id}", status_code=204, responses=error_responses(403, 404, 409))
async def delete(template_id: str, seller: SellerDep, services: ServicesDep) -> Response:
    """Archive a template: gone from the list and compose, kept for the mail sent with it."""
    await template_library.delete(services, seller, template_id)
    return Response(status_code=204)
