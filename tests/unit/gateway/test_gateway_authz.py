"""The role → operation table and the ownership rule."""

from __future__ import annotations

import pytest

from taskloom.contracts.enums import Role
from taskloom.gateway.domain.authz import Operation, Principal, can_access, has_operation, visible_owner


def who(name: str, *roles: Role) -> Principal:
    return Principal(name, frozenset(roles))


@pytest.mark.parametrize(
    ("role", "allowed"),
    [
        (Role.VIEWER, {Operation.VIEW_WORKFLOW}),
        (Role.USER, {Operation.VIEW_WORKFLOW, Operation.SUBMIT_WORKFLOW}),
        (Role.DEVELOPER, {Operation.VIEW_WORKFLOW, Operation.SUBMIT_WORKFLOW, Operation.CANCEL_WORKFLOW}),
        (Role.PRIVILEGED_USER, {Operation.ACCESS_SENSITIVE_DATA}),
        (Role.ADMIN, set(Operation)),
    ],
)
def test_each_role_holds_exactly_its_operations(role, allowed):
    principal = who("x", role)
    assert {op for op in Operation if has_operation(principal, op)} == allowed


def test_no_roles_hold_nothing():
    assert not any(has_operation(who("x"), op) for op in Operation)


def test_owner_only_unless_admin():
    alice, bob, root = who("alice", Role.DEVELOPER), who("bob", Role.DEVELOPER), who("root", Role.ADMIN)
    assert can_access(alice, Operation.CANCEL_WORKFLOW, "alice")
    assert not can_access(bob, Operation.CANCEL_WORKFLOW, "alice")
    assert not can_access(bob, Operation.VIEW_WORKFLOW, "alice")
    assert can_access(root, Operation.CANCEL_WORKFLOW, "alice")
    assert not can_access(alice, Operation.VIEW_WORKFLOW, None)


def test_a_user_owns_but_may_not_cancel():
    assert not can_access(who("u", Role.USER), Operation.CANCEL_WORKFLOW, "u")


def test_listing_filter_is_forced_to_self_for_non_admins():
    assert visible_owner(who("alice", Role.USER), "bob") == "alice"
    assert visible_owner(who("alice", Role.USER), None) == "alice"
    assert visible_owner(who("root", Role.ADMIN), "bob") == "bob"
    assert visible_owner(who("root", Role.ADMIN), None) is None
