"""Each NATS user's reply prefix: the one subject space its rights let it read replies from."""

from __future__ import annotations

from taskloom.contracts.subjects import DEFAULT_INBOX_PREFIX, Subjects, inbox_prefix
from taskloom.natsauth import agent_group_user, service_permissions, users_for
from taskloom.natsauth.permissions import DEFAULT_AGENT_GROUPS


def test_a_user_gets_a_prefix_of_its_own() -> None:
    assert inbox_prefix("orchestrator") == "_INBOX_orchestrator"
    assert inbox_prefix("agents-builtin") == "_INBOX_agents-builtin"
    assert inbox_prefix(None) == inbox_prefix("") == DEFAULT_INBOX_PREFIX == "_INBOX"
    # credentials in the server URL name the user as well; an explicit user wins
    assert inbox_prefix(None, "nats://gateway:pw@nats:4222") == "_INBOX_gateway"
    assert inbox_prefix("context", "nats://gateway:pw@nats:4222") == "_INBOX_context"
    assert inbox_prefix(None, "nats://nats:4222") == "_INBOX"


def test_a_user_name_cannot_widen_its_prefix() -> None:
    # dots and wildcards would make the prefix several tokens or a pattern matching others'
    assert inbox_prefix("a.b") == "_INBOX_a_b"
    assert inbox_prefix("x.>") == "_INBOX_x__"
    assert "." not in inbox_prefix("*.*")


def test_every_user_reads_its_own_replies_and_no_one_elses() -> None:
    users = users_for(Subjects("ns"), DEFAULT_AGENT_GROUPS, admin=False)
    for user in users:
        inboxes = [s for s in user.permissions.subscribe_allow if s.startswith("_INBOX")]
        assert inboxes == [f"{inbox_prefix(user.name)}.>"], user.name
    assert f"{inbox_prefix('context')}.>" in service_permissions(Subjects("ns"), "context").subscribe_allow
    assert agent_group_user("builtin") in {u.name for u in users}
