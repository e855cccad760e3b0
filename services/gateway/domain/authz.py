"""Role-based authorization: the seed's operations, the roles that hold them, and ownership.

A principal holds one or more roles. ``view_workflow`` includes ``viewer``: a viewer is a
read-only user (status, events, results, the agent list) and, like every non-admin, sees only
the workflows it owns. Only ``admin`` crosses owners.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from taskloom.contracts.enums import Role

__all__ = [
    "OPERATION_ROLES",
    "Operation",
    "Principal",
    "can_access",
    "has_operation",
    "visible_owner",
]


class Operation(StrEnum):
    SUBMIT_WORKFLOW = "submit_workflow"
    CANCEL_WORKFLOW = "cancel_workflow"
    VIEW_WORKFLOW = "view_workflow"
    MODIFY_SYSTEM = "modify_system"
    ACCESS_SENSITIVE_DATA = "access_sensitive_data"


OPERATION_ROLES: dict[Operation, frozenset[Role]] = {
    Operation.SUBMIT_WORKFLOW: frozenset({Role.USER, Role.DEVELOPER, Role.ADMIN}),
    Operation.CANCEL_WORKFLOW: frozenset({Role.DEVELOPER, Role.ADMIN}),
    Operation.VIEW_WORKFLOW: frozenset({Role.VIEWER, Role.USER, Role.DEVELOPER, Role.ADMIN}),
    Operation.MODIFY_SYSTEM: frozenset({Role.ADMIN}),
    Operation.ACCESS_SENSITIVE_DATA: frozenset({Role.PRIVILEGED_USER, Role.ADMIN}),
}


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller, from a verified token."""

    subject: str
    roles: frozenset[Role]
    expires_at: float = 0.0
    token_id: str | None = None
    claims: dict[str, object] = field(default_factory=dict, compare=False, hash=False)

    @property
    def is_admin(self) -> bool:
        return Role.ADMIN in self.roles

    @property
    def role_names(self) -> list[str]:
        return sorted(r.value for r in self.roles)


def has_operation(principal: Principal, operation: Operation) -> bool:
    return bool(OPERATION_ROLES[operation] & principal.roles)


def can_access(principal: Principal, operation: Operation, owner: str | None) -> bool:
    """Whether ``principal`` may perform ``operation`` on a resource owned by ``owner``."""
    if not has_operation(principal, operation):
        return False
    return principal.is_admin or (owner is not None and owner == principal.subject)


def visible_owner(principal: Principal, requested: str | None) -> str | None:
    """The owner filter a listing must apply: admins choose (``None`` = everyone); anyone else
    always sees their own workflows, whatever they asked for."""
    if principal.is_admin:
        return requested
    return principal.subject
