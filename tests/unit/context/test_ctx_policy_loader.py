"""The YAML policy loader accepts the documented format and rejects anything it does not know
with a message naming the file and the problem."""

from __future__ import annotations

import pytest

from taskloom.context.adapters.policy_file import load_policy_file
from taskloom.context.domain import PolicyError, parse_policy
from taskloom.contracts.context import Classification, ContextScope

GOOD = """
version: 1
roles: {team: ["core-*"]}
sensitive: {key_patterns: ["*pin*"], encrypt_from: restricted}
rules:
  - name: r
    roles: [team]
    scopes: [global, task]
    keys: ["a.*"]
    operations: [read, write]
    max_classification: confidential
  - name: d
    agents: ["*"]
    effect: deny
    scopes: [agent]
    operations: [read]
"""


def test_good_policy_parses() -> None:
    policy = parse_policy(GOOD, "good.yaml")
    assert [r.name for r in policy.rules] == ["r", "d"]
    assert policy.rules[0].scopes == frozenset({ContextScope.GLOBAL, ContextScope.TASK})
    assert policy.rules[0].max_classification is Classification.CONFIDENTIAL
    assert policy.sensitivity.key_is_sensitive("card_PIN")
    assert not policy.sensitivity.key_is_sensitive("api_key")  # the file replaced the defaults
    assert policy.source == "good.yaml"


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("rules: [unclosed", "not valid YAML"),
        ("- just\n- a list\n", "must be a mapping"),
        ("rules:\n  - {name: r, agents: [a], scopes: [galaxy], operations: [read]}", "rules.0.scopes.0"),
        (
            "rules:\n  - {name: r, agents: [a], scopes: [global], operations: [delete]}",
            "rules.0.operations.0",
        ),
        (
            "rules:\n  - {name: r, agents: [a], scopes: [global], operations: [read],"
            " max_classification: top}",
            "max_classification",
        ),
        (
            "rules:\n  - {name: r, roles: [ghost], scopes: [global], operations: [read]}",
            "undefined role(s) ghost",
        ),
        ("rules:\n  - {name: r, scopes: [global], operations: [read]}", "must name agents or roles"),
        (
            "rules:\n  - {name: r, agents: [a], scopes: [global], operations: [read], effect: deny,"
            " max_classification: public}",
            "deny rule takes no max_classification",
        ),
        ("rules:\n  - {name: r, agents: [a], scopes: [global], operations: [read], colour: red}", "colour"),
        ("version: 2\nrules: []", "version"),
        (
            "rules:\n  - {name: r, agents: [a], scopes: [global], operations: [read]}\n"
            "  - {name: r, agents: [b], scopes: [global], operations: [read]}",
            "repeated: r",
        ),
    ],
)
def test_bad_policies_are_rejected_with_a_clear_message(text: str, needle: str) -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy(text, "bad.yaml")
    assert "bad.yaml" in caught.value.message
    assert needle in caught.value.message


def test_unknown_scope_message_names_the_value() -> None:
    with pytest.raises(PolicyError, match="galaxy"):
        parse_policy("rules:\n  - {name: r, agents: [a], scopes: [galaxy], operations: [read]}", "p")


def test_empty_document_is_an_empty_deny_all_policy() -> None:
    assert parse_policy("", "empty.yaml").rules == ()


def test_missing_policy_file_is_a_policy_error(tmp_path: object) -> None:
    from pathlib import Path

    missing = Path(str(tmp_path)) / "nope.yaml"
    with pytest.raises(PolicyError, match="cannot be read"):
        load_policy_file(missing)
