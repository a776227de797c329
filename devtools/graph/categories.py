"""A mailbox's master list of Outlook categories (outlookCategory resource).

displayName is unique in the list and, once created, can't be changed through Graph; only color
is writable (outlookCategory update docs). Colors are None or preset0..preset24.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from devtools.graph.mailbox import Mailbox, not_found, unknown_property
from devtools.graph.odata import GraphError, new_guid

# The six colour categories a new Outlook mailbox starts with.
DEFAULTS = (
    ("Red category", "preset0"),
    ("Orange category", "preset1"),
    ("Yellow category", "preset3"),
    ("Green category", "preset4"),
    ("Blue category", "preset7"),
    ("Purple category", "preset8"),
)
COLORS = frozenset({"none", *(f"preset{n}" for n in range(25))})
# Graph documents no code for a duplicate name; this is its documented generic one, with 409.
DUPLICATE_NAME_CODE = "nameAlreadyExists"


def create(box: Mailbox, body: Mapping[str, Any]) -> dict[str, str]:
    for name in body:
        if not name.startswith("@") and name not in {"displayName", "color"}:
            raise unknown_property(name, "outlookCategory")
    display_name = str(body.get("displayName") or "").strip()
    if not display_name:
        raise GraphError(400, "ErrorInvalidParameter", "displayName is required.")
    _check_unique(box, display_name)
    category = {"id": new_guid(), "displayName": display_name, "color": _color(body.get("color"))}
    box.categories[category["id"]] = category
    return dict(category)


def get(box: Mailbox, category_id: str) -> dict[str, str]:
    found = box.categories.get(category_id)
    if found is None:
        raise not_found()
    return found


def update(box: Mailbox, category_id: str, patch: Mapping[str, Any]) -> dict[str, str]:
    category = get(box, category_id)
    for name, value in patch.items():
        if name.startswith("@"):
            continue
        if name not in {"displayName", "color"}:
            raise unknown_property(name, "outlookCategory")
        if name == "displayName" and value != category["displayName"]:
            raise GraphError(
                400, "ErrorInvalidPropertySet", "displayName can't be changed once created."
            )
    if "color" in patch:
        category["color"] = _color(patch["color"])
    return dict(category)


def delete(box: Mailbox, category_id: str) -> None:
    get(box, category_id)
    del box.categories[category_id]


def rename(box: Mailbox, category_id: str, new_name: str) -> None:
    """What a user can do in Outlook: items keep the old name in their categories."""
    category = get(box, category_id)
    _check_unique(box, new_name)
    category["displayName"] = new_name


def _check_unique(box: Mailbox, display_name: str) -> None:
    if any(c["displayName"].lower() == display_name.lower() for c in box.categories.values()):
        raise GraphError(
            409, DUPLICATE_NAME_CODE, f"A category named '{display_name}' already exists."
        )


def _color(value: Any) -> str:
    color = "none" if value is None else str(value).strip().lower()
    if color not in COLORS:
        raise GraphError(400, "ErrorInvalidParameter", f"'{value}' is not a valid category color.")
    return color
