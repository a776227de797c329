"""The HTTP routes, one module per resource. Their routers share `ExactAnswers`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.routing import APIRoute


class ExactAnswers(APIRoute):
    """A route whose answer is the service's dict, checked against its response model: a key
    the dict leaves out stays out (the model declares it optional) instead of going out as
    null, so typing the answers changes nothing on the wire."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, endpoint, **{**kwargs, "response_model_exclude_unset": True})
