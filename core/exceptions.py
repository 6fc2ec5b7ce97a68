"""Domain failures: each has a stable machine `code` the API layer can map."""

from __future__ import annotations

from typing import Any


class ApplicationError(Exception):
    code = "application_error"

    def __init__(self, message: str, *, code: str | None = None, extra: dict | None = None):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.extra = extra or {}


def error_body(*, code: str, message: str, details: dict | None = None) -> dict[str, Any]:
    """The signed API's one error shape (README "Bank and wallet API"), for the API's
    views and for the middleware that refuses a request before any view runs."""
    return {"error": {"code": code, "message": message, "details": details or {}}}
