"""Policy evaluation: default deny, agent/role/glob matching, key patterns, ceilings, deny rules,
ownership of task and agent scopes, and the property that no view holds a denied entry."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from taskloom.context.adapters.policy_file import DEFAULT_POLICY_FILE
from taskloom.context.domain import Entry, Operation, Policy, Rule, build_view, parse_policy
from taskloom.context.domain.policy import Effect
from taskloom.contracts.context import Classification as C
from taskloom.contracts.context import ContextScope as S
from taskloom.contracts.enums import BUILTIN_AGENTS

R, W = Operation.READ, Operation.WRITE
ALL_SCOPES = frozenset(S)

POLICY = Policy(
    rules=(
        Rule("team-read", frozenset({R}), ALL_SCOPES, roles=frozenset({"team"})),
        Rule(
            "ops-secrets",
            frozenset({R}),
            frozenset({S.PROJECT}),
            agents=("ops-*",),
            keys=("deploy.*",),
            max_classification=C.CONFIDENTIAL,
        ),
        Rule("no-salary", frozenset({R, W}), ALL_SCOPES, agents=("*",), keys=("hr.*",), effect=Effect.DENY),
        Rule("writer", frozenset({W}), frozenset({S.TASK, S.AGENT}), roles=frozenset({"team"})),
        Rule(
            "admin",
            frozenset({R, W}),
            ALL_SCOPES,
            agents=("admin",),
            max_classification=C.RESTRICTED,
            owned_only=False,
        ),
    ),
    role_members={"team": ("core-services", "ops-*")},
)

TABLE = [
    # agent, op, scope, key, classification, owned, allowed
    ("core-services", R, S.GLOBAL, "anything", C.PUBLIC, True, True),
    ("core-services", R, S.GLOBAL, "anything", C.INTERNAL, True, True),
    ("core-services", R, S.GLOBAL, "anything", C.CONFIDENTIAL, True, False),  # ceiling
    ("stranger", R, S.GLOBAL, "anything", C.PUBLIC, True, False),  # default deny
    ("ops-east", R, S.PROJECT, "deploy.db_url", C.CONFIDENTIAL, True, True),  # glob agent + key
    ("ops-east", R, S.PROJECT, "build.flags", C.CONFIDENTIAL, True, False),  # key pattern miss
    ("ops-east", R, S.WORKFLOW, "deploy.db_url", C.CONFIDENTIAL, True, False),  # scope miss
    ("ops-east", R, S.PROJECT, "deploy.db_url", C.RESTRICTED, True, False),  # ceiling
    ("core-services", R, S.GLOBAL, "hr.salary", C.PUBLIC, True, False),  # deny rule
    ("admin", R, S.GLOBAL, "hr.salary", C.PUBLIC, True, False),  # deny beats allow
    ("core-services", W, S.TASK, "notes", C.INTERNAL, True, True),
    ("core-services", W, S.AGENT, "notes", C.INTERNAL, False, False),  # another agent's scope
    ("core-services", W, S.WORKFLOW, "notes", C.INTERNAL, True, False),  # no write rule
    ("admin", W, S.AGENT, "notes", C.RESTRICTED, False, True),  # owned_only false
    ("core-services", R, S.GLOBAL, "x", C.PUBLIC, True, True),
]


@pytest.mark.parametrize(("agent", "op", "scope", "key", "cls", "owned", "allowed"), TABLE)
def test_decision_table(
    agent: str, op: Operation, scope: S, key: str, cls: C, owned: bool, allowed: bool
) -> None:
    decision = POLICY.decide(agent, op, scope, key, cls, owned)
    assert decision.allowed is allowed, decision.reason
    assert POLICY.allows(agent, op, scope, key, cls, owned) is allowed


def test_reasons_say_why() -> None:
    assert "default deny" in POLICY.decide("stranger", R, S.GLOBAL, "k", C.PUBLIC).reason
    assert "ceiling internal" in POLICY.decide("core-services", R, S.GLOBAL, "k", C.CONFIDENTIAL).reason
    assert "no-salary" in POLICY.decide("core-services", R, S.GLOBAL, "hr.x", C.PUBLIC).reason


def test_empty_policy_denies_everything() -> None:
    for scope in S:
        for op in Operation:
            assert not Policy().decide("admin", op, scope, "k", C.PUBLIC).allowed


def test_role_membership_uses_globs() -> None:
    assert POLICY.principal("ops-west").roles == frozenset({"team"})
    assert POLICY.principal("opsy").roles == frozenset()


def test_default_policy_file_gives_builtin_agents_what_the_design_says() -> None:
    policy = parse_policy(DEFAULT_POLICY_FILE.read_text(), str(DEFAULT_POLICY_FILE))
    for agent in BUILTIN_AGENTS:
        for scope in S:
            assert policy.decide(agent, R, scope, "k", C.INTERNAL).allowed
            assert not policy.decide(agent, R, scope, "k", C.RESTRICTED).allowed
        assert policy.decide(agent, W, S.TASK, "k", C.INTERNAL).allowed
        assert policy.decide(agent, W, S.AGENT, "k", C.INTERNAL).allowed
        assert not policy.decide(agent, W, S.AGENT, "k", C.INTERNAL, owned=False).allowed
        assert policy.decide(agent, W, S.WORKFLOW, "outputs.t1", C.INTERNAL).allowed
        assert not policy.decide(agent, W, S.WORKFLOW, "task_graph", C.INTERNAL).allowed
        assert not policy.decide(agent, W, S.GLOBAL, "k", C.PUBLIC).allowed
    confidential = {a for a in BUILTIN_AGENTS if policy.decide(a, R, S.PROJECT, "k", C.CONFIDENTIAL).allowed}
    assert confidential == {"production-ops", "core-services"}
    assert not policy.decide("third-party", R, S.GLOBAL, "k", C.PUBLIC).allowed
    assert policy.decide("orchestrator", W, S.WORKFLOW, "task_graph", C.RESTRICTED).allowed


# --- property: no view ever contains an entry the policy denies ------------------------------

AGENTS = ["a1", "a2", "ops-1", "x"]
KEYS = ["k1", "k2", "deploy.url", "secret_token", "outputs.t1"]
globs = st.sampled_from(["*", "k*", "deploy.*", "*token*", "outputs.*", "k1", "zzz"])
rules = st.builds(
    Rule,
    name=st.uuids().map(str),
    operations=st.frozensets(st.sampled_from(list(Operation)), min_size=1),
    scopes=st.frozensets(st.sampled_from(list(S)), min_size=1),
    agents=st.lists(st.sampled_from(["a1", "a*", "ops-*", "*", "nobody"]), max_size=2).map(tuple),
    roles=st.frozensets(st.sampled_from(["r1", "r2"]), max_size=1),
    keys=st.lists(globs, min_size=1, max_size=2).map(tuple),
    max_classification=st.sampled_from(list(C)),
    effect=st.sampled_from(list(Effect)),
    owned_only=st.booleans(),
)
policies = st.builds(
    Policy,
    rules=st.lists(rules, max_size=6).map(tuple),
    role_members=st.just({"r1": ("a2",), "r2": ("ops-*", "x")}),
)
entries = st.lists(
    st.builds(
        Entry,
        scope=st.sampled_from(list(S)),
        scope_id=st.just("id"),
        key=st.sampled_from(KEYS),
        value=st.uuids().map(str),
        classification=st.sampled_from(list(C)),
    ),
    max_size=25,
    unique_by=lambda x: (x.scope, x.key),
)


@settings(max_examples=300, deadline=None)
@given(
    policy=policies,
    context=entries,
    agent=st.sampled_from(AGENTS),
    reqs=st.lists(st.sampled_from(["k1", "deploy", "*token*"]), max_size=2),
)
def test_no_view_contains_a_denied_entry(
    policy: Policy, context: list[Entry], agent: str, reqs: list[str]
) -> None:
    view = build_view(context, lambda x: policy.allows(agent, R, x.scope, x.key, x.classification), reqs)
    by_ref = {(x.scope, x.key): x for x in context}
    denied_values = {
        x.value for x in context if not policy.decide(agent, R, x.scope, x.key, x.classification).allowed
    }
    for key, value in view.context.items():
        source = by_ref[(view.sources[key].scope, key)]
        assert source.value == value
        assert policy.decide(agent, R, source.scope, key, source.classification).allowed
        assert value not in denied_values
    assert len(view.denied) == len(denied_values)
