"""Errors of the domain; one place in the web layer maps them to HTTP answers."""

from __future__ import annotations


class DomainError(Exception):
    """Base of every error the services raise on purpose."""


class InvalidInput(DomainError):
    """The caller sent something we will not store; `field` names what was wrong."""

    def __init__(self, field: str, message: str, *, too_large: bool = False) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
        self.too_large = too_large


class NotFound(DomainError):
    """The thing does not exist, or belongs to someone else (the caller cannot tell which)."""


class Conflict(DomainError):
    """The request is valid but the thing is not in a state that allows it."""


class Unauthorized(DomainError):
    """No valid credentials."""


class Forbidden(DomainError):
    """Authenticated, but not allowed to do this; the message names the rule, `field` what
    it is about (the caller's authorization unless a field of the request is)."""

    def __init__(self, message: str, *, field: str = "authorization") -> None:
        super().__init__(message)
        self.field = field
