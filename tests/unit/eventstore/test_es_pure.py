"""The event store's pure helpers: no servers, no fakes, just values in and values out."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from taskloom.eventstore import (
    ANY,
    ConcurrencyConflict,
    DuplicateEventId,
    MigrationError,
    NewEvent,
    OutboxMessage,
    RecordedEvent,
    load_migrations,
)
from taskloom.eventstore.migrator import quote_ident
from taskloom.eventstore.models import AppendResult, check_batch, expected_as_int
from taskloom.eventstore.outbox import _count, retry_delay
from taskloom.eventstore.relay import event_headers
from taskloom.eventstore.sql import Statements
from taskloom.eventstore.store import decode_event, interpret_append


def test_any_is_sent_as_null_and_versions_as_themselves() -> None:
    assert expected_as_int(ANY) is None
    assert expected_as_int(0) == 0
    assert expected_as_int(12) == 12
    assert repr(ANY) == "ANY"


@pytest.mark.parametrize("bad", [-1, True, 1.5, "3", None])
def test_an_expected_version_must_be_any_or_a_natural_number(bad: object) -> None:
    with pytest.raises(ValueError):
        expected_as_int(bad)  # type: ignore[arg-type]


def test_a_batch_may_not_repeat_an_event_id() -> None:
    a, b = NewEvent.create("A", {}), NewEvent.create("B", {})
    check_batch([a, b])
    with pytest.raises(ValueError, match="twice"):
        check_batch([a, b, a])


def test_new_events_and_messages_need_ids_and_names() -> None:
    with pytest.raises(ValueError):
        NewEvent("", "A", {})
    with pytest.raises(ValueError):
        NewEvent("id", "", {})
    with pytest.raises(ValueError):
        OutboxMessage("", "x.y", b"")
    with pytest.raises(ValueError):
        OutboxMessage("id", "", b"")
    assert NewEvent.create("A", {"k": 1}).event_id != NewEvent.create("A", {"k": 1}).event_id


@given(head=st.integers(0, 10_000), appended=st.integers(1, 500), last=st.integers(1, 10**9))
def test_a_successful_append_reports_the_new_version_and_positions(
    head: int, appended: int, last: int
) -> None:
    last = max(last, appended)
    result = interpret_append("s", head, appended, (head, appended, last, 0, None, ["m"]))
    assert result == AppendResult("s", head + appended, appended, last, ("m",))
    assert result.first_position == last - appended + 1


def test_an_all_duplicate_append_is_a_no_op() -> None:
    result = interpret_append("s", 0, 2, (5, 0, None, 2, None, []))
    assert (result.version, result.appended, result.last_position, result.first_position) == (
        5,
        0,
        None,
        None,
    )


def test_nothing_appended_without_duplicates_is_a_conflict() -> None:
    with pytest.raises(ConcurrencyConflict) as err:
        interpret_append("s", 3, 1, (4, 0, None, 0, None, []))
    assert (err.value.stream_id, err.value.expected, err.value.actual) == ("s", 3, 4)
    assert "expected version 3, actual 4" in str(err.value)
    assert "ANY" in str(ConcurrencyConflict("s", None, 4))


def test_an_id_stored_in_another_stream_is_a_duplicate_error() -> None:
    with pytest.raises(DuplicateEventId) as err:
        interpret_append("mine", 0, 1, (0, 0, None, 1, "ev-1 theirs", []))
    assert (err.value.event_id, err.value.stored_in, err.value.appended_to) == ("ev-1", "theirs", "mine")


def _recorded() -> RecordedEvent:
    at = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    return RecordedEvent(7, "wf-1", 3, "ev-7", "TaskAssigned", {"task": "t1"}, {"cause": "m1"}, at)


def test_a_recorded_event_encodes_to_json_for_the_bus() -> None:
    doc = json.loads(_recorded().to_json())
    assert doc == {
        "position": 7,
        "stream_id": "wf-1",
        "version": 3,
        "event_id": "ev-7",
        "type": "TaskAssigned",
        "data": {"task": "t1"},
        "metadata": {"cause": "m1"},
        "recorded_at": "2030-01-02T03:04:05+00:00",
    }


def test_relayed_events_carry_their_dedup_id_and_place() -> None:
    assert event_headers(_recorded()) == {
        "Nats-Msg-Id": "ev-7",
        "Taskloom-Stream-Id": "wf-1",
        "Taskloom-Event-Type": "TaskAssigned",
        "Taskloom-Version": "3",
        "Taskloom-Position": "7",
    }


def test_rows_decode_whether_or_not_json_was_parsed_by_the_driver() -> None:
    at = datetime(2030, 1, 1, tzinfo=UTC)
    parsed = decode_event((1, "s", 1, "e", "T", {"a": 1}, {}, at))
    raw = decode_event((1, "s", 1, "e", "T", '{"a": 1}', "{}", at))
    assert parsed == raw


@given(st.integers(0, 100), st.integers(0, 100))
def test_retry_delays_grow_and_are_capped(a: int, b: int) -> None:
    lo, hi = sorted((a, b))
    assert 0 < retry_delay(lo) <= retry_delay(hi) <= 60.0


def test_command_tags_give_their_row_count() -> None:
    assert _count("DELETE 12") == 12
    assert _count("UPDATE 0") == 0


@given(st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,62}", fullmatch=True))
def test_plain_identifiers_are_quoted(name: str) -> None:
    assert quote_ident(name) == f'"{name}"'


@pytest.mark.parametrize("bad", ["", "1abc", 'a"b', "a b", "x;drop", "a" * 64, "schéma"])
def test_anything_else_is_refused_as_an_identifier(bad: str) -> None:
    with pytest.raises(ValueError):
        quote_ident(bad)
    with pytest.raises(ValueError):
        Statements.for_schema(bad)


def test_statements_are_rendered_for_their_schema() -> None:
    sql = Statements.for_schema("tenant_a")
    assert '"tenant_a".events' in sql.append and '"tenant_a".outbox' in sql.append
    assert sql.outbox_channel != Statements.for_schema("tenant_b").outbox_channel


def test_migrations_load_in_version_order(tmp_path: Path) -> None:
    (tmp_path / "0010_late.sql").write_text("SELECT 10;")
    (tmp_path / "0002_early.sql").write_text("SELECT 2;")
    (tmp_path / "README.md").write_text("not a migration")
    loaded = load_migrations(tmp_path)
    assert [(m.version, m.name) for m in loaded] == [(2, "0002_early.sql"), (10, "0010_late.sql")]
    assert loaded[0].checksum != loaded[1].checksum


@pytest.mark.parametrize(
    ("names", "message"),
    [
        (["create.sql"], "NNNN_description"),
        (["0000_zero.sql"], "start at 1"),
        (["0001_a.sql", "001_b.sql"], "two migrations with version 1"),
    ],
)
def test_malformed_migration_sets_are_refused(tmp_path: Path, names: list[str], message: str) -> None:
    for name in names:
        (tmp_path / name).write_text("SELECT 1;")
    with pytest.raises(MigrationError, match=message):
        load_migrations(tmp_path)


def test_the_shipped_migrations_load() -> None:
    from taskloom.eventstore.store import MIGRATIONS_DIR

    assert [m.version for m in load_migrations(MIGRATIONS_DIR)] == [1]
