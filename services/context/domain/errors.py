"""Typed errors of the context service; each maps to one error code of the wire reply."""

from __future__ import annotations

from taskloom.contracts.context import ContextErrorCode

__all__ = [
    "ContextServiceError",
    "ContextTooLarge",
    "MalformedRequest",
    "PolicyError",
    "VersionConflict",
    "WriteDenied",
]


class ContextServiceError(Exception):
    code: ContextErrorCode = ContextErrorCode.INTERNAL

    def __init__(self, message: str, **details: object) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class MalformedRequest(ContextServiceError):
    code = ContextErrorCode.MALFORMED


class WriteDenied(ContextServiceError):
    code = ContextErrorCode.DENIED


class ContextTooLarge(ContextServiceError):
    code = ContextErrorCode.TOO_LARGE


class VersionConflict(ContextServiceError):
    code = ContextErrorCode.CONFLICT


class PolicyError(ContextServiceError):
    """A policy file that cannot be used: the message names the file and the problem."""

    code = ContextErrorCode.BAD_POLICY
