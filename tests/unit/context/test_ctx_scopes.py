"""Merge order, scope chains and pruning of context views, on hand-built hierarchies."""

from __future__ import annotations

from taskloom.context.domain import (
    ALWAYS_INCLUDED,
    Entry,
    ScopeKey,
    build_view,
    merge,
    prune,
    redact_sensitive,
    scope_chain,
    task_scope_id,
)
from taskloom.contracts.context import ContextScope as S

G, P, W, T, A = S.GLOBAL, S.PROJECT, S.WORKFLOW, S.TASK, S.AGENT


def e(scope: S, key: str, value: object, scope_id: str = "x") -> Entry:
    return Entry(scope, scope_id, key, value, size_bytes=len(repr(value)))


def test_more_specific_scope_wins_whatever_the_input_order() -> None:
    entries = [
        e(A, "style", "agent"),
        e(G, "style", "global"),
        e(T, "style", "task"),
        e(W, "style", "workflow"),
        e(P, "style", "project"),
        e(G, "only_global", 1),
        e(W, "only_workflow", 2),
    ]
    merged, winners = merge(entries)
    assert merged == {"style": "agent", "only_global": 1, "only_workflow": 2}
    assert winners["style"].scope is A
    merged_without_agent, _ = merge([x for x in entries if x.scope is not A])
    assert merged_without_agent["style"] == "task"


def test_specific_value_replaces_a_general_dict_wholesale() -> None:
    merged, _ = merge([e(G, "limits", {"cpu": 1, "mem": 2}), e(T, "limits", {"cpu": 4})])
    assert merged["limits"] == {"cpu": 4}


def test_scope_chain_is_most_general_first_and_skips_unknown_ids() -> None:
    chain = scope_chain("core-services", "wf1", "t1", "proj")
    assert [c.scope for c in chain] == [G, P, W, T, A]
    assert chain[3] == ScopeKey(T, task_scope_id("wf1", "t1"))
    assert chain[4] == ScopeKey(A, "core-services")
    assert [c.scope for c in scope_chain("a")] == [G, A]
    assert task_scope_id("wf1", "t1") != task_scope_id("wf2", "t1")


def test_prune_keeps_required_keys_globs_prefixes_and_always_included() -> None:
    context = {
        "system_state": {},
        "user_preferences": {},
        "project_metadata": {},
        "dependencies": [1],
        "test_results": 3,
        "test_coverage": 4,
        "api.endpoints": 5,
        "api.schemas": 6,
        "unrelated": 7,
        "outputs.t1": {"summary": "x"},
    }
    kept, pruned = prune(context, ["dependencies", "test_*", "api"])
    assert set(kept) == ALWAYS_INCLUDED | {
        "dependencies",
        "test_results",
        "test_coverage",
        "api.endpoints",
        "api.schemas",
        "outputs.t1",
    }
    assert pruned == 1


def test_prune_without_requirements_keeps_everything() -> None:
    context = {"a": 1, "b": 2}
    assert prune(context, []) == (context, 0)


def test_requirement_is_not_a_substring_match() -> None:
    kept, _ = prune({"depends": 1, "dependencies": 2, "api_keys_doc": 3}, ["depend", "api"])
    assert kept == {}


def test_denied_specific_value_falls_back_to_the_permitted_general_one() -> None:
    entries = [e(G, "plan", "public plan"), e(A, "plan", "secret plan"), e(A, "notes", "n")]
    view = build_view(entries, lambda x: x.scope is not A or x.key != "plan")
    assert view.context == {"plan": "public plan", "notes": "n"}
    assert view.sources["plan"].scope is G
    assert [d.value for d in view.denied] == ["secret plan"]


def test_view_size_counts_only_what_is_served() -> None:
    entries = [e(G, "a", "1234"), e(T, "a", "12"), e(G, "b", "123456")]
    view = build_view(entries, lambda x: True, ["a"])
    assert view.context == {"a": "12"}
    assert view.size_bytes == len(repr("12"))
    assert view.pruned_count == 1


def test_redaction_takes_out_sensitive_values_whole_and_names_their_keys() -> None:
    def s(scope: S, key: str, value: object, sensitive: bool) -> Entry:
        return Entry(scope, "x", key, value, sensitive=sensitive, size_bytes=10)

    view = build_view(
        [
            s(G, "api_token", "global-default", False),
            s(W, "api_token", "workflow-secret", True),  # the winner is sensitive
            s(W, "db_password", "pw", True),
            s(W, "plan", "draft", False),
        ],
        lambda _: True,
    )
    assert view.size_bytes == 30
    assert redact_sensitive(view) == ["api_token", "db_password"]
    # the global api_token does not stand in for the workflow's: the key is gone whole
    assert view.context == {"plan": "draft"}
    assert set(view.sources) == {"plan"}
    assert view.size_bytes == 10
    assert redact_sensitive(view) == []  # nothing sensitive is left
