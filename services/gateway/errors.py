"""The gateway's typed errors; each becomes an HTTP answer with a message saying what was wrong."""

from __future__ import annotations

__all__ = [
    "Forbidden",
    "GatewayError",
    "InvalidInput",
    "NotFound",
    "Conflict",
    "ServiceUnavailable",
    "Unauthorized",
]


class GatewayError(Exception):
    status_code = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Unauthorized(GatewayError):
    status_code = 401


class Forbidden(GatewayError):
    status_code = 403


class NotFound(GatewayError):
    status_code = 404


class Conflict(GatewayError):
    status_code = 409


class InvalidInput(GatewayError):
    status_code = 422


class ServiceUnavailable(GatewayError):
    status_code = 503
