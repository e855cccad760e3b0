"""The bus's pure parts: topology as data, drift detection, wire encoding, dead-letter headers,
backoff and the error types. No server needed."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from nats.js.api import ConsumerConfig, DeliverPolicy, RetentionPolicy, StorageType
from pydantic import BaseModel

from taskloom.bus import (
    DLQ_ORIGINAL_HEADERS,
    MAX_DELIVER_METADATA,
    MSG_ID_HEADER,
    Backoff,
    BusError,
    BusUnavailable,
    HandlerError,
    PermanentError,
    RequestTimeout,
    RetryableError,
    StreamKind,
    Topology,
    encode,
    original_headers,
)
from taskloom.bus.admin import consumer_config, consumer_drift, stream_drift
from taskloom.bus.client import _declared_attempts, _redact
from taskloom.bus.codec import default_msg_id, header_value, publish_headers
from taskloom.bus.deadletter import dead_letter_headers
from taskloom.contracts.subjects import Subjects
from taskloom.settings import Settings

S = Subjects("tl")


class Model(BaseModel):
    message_id: str
    text: str = "héllo"


class NoId(BaseModel):
    value: int = 1


# --- topology ---------------------------------------------------------------------------------
def test_every_stream_kind_has_its_subjects_and_retention() -> None:
    configs = {c.name: c for c in Topology().stream_configs(S)}
    assert set(configs) == {f"TL_{k.value.upper()}" for k in StreamKind}
    assert configs["TL_TASKS"].retention == RetentionPolicy.WORK_QUEUE
    assert configs["TL_TASKS"].subjects == ["tl.tasks.>"]
    assert configs["TL_TASKS"].max_age is None
    assert configs["TL_COMMANDS"].subjects == ["tl.cmd.>"]
    assert configs["TL_DLQ"].subjects == ["tl.dlq.>"]
    for config in configs.values():
        assert config.storage == StorageType.FILE
        if config.name != "TL_TASKS":
            assert config.retention == RetentionPolicy.LIMITS and config.max_age


def test_topology_from_settings() -> None:
    settings = Settings(
        dedup_window_seconds=60, dead_letter_max_age_seconds=3600, heartbeat_timeout_seconds=12
    )
    topology = Topology.from_settings(settings, events_max_age=100.0)
    assert topology.dedup_window == 60
    assert topology.dead_letter_max_age == 3600
    assert topology.agent_registry_ttl == 12
    assert topology.events_max_age == 100
    assert topology.stream_config(S, "dlq").max_age == 3600


def test_duplicate_window_never_exceeds_max_age() -> None:
    config = Topology(dedup_window=600, events_max_age=60).stream_config(S, StreamKind.EVENTS)
    assert config.duplicate_window == 60


@pytest.mark.parametrize("field", ["dedup_window", "events_max_age", "agent_registry_ttl"])
def test_topology_rejects_non_positive_durations(field: str) -> None:
    with pytest.raises(ValueError, match=field):
        Topology(**{field: 0})


def test_unknown_stream_kind_is_rejected() -> None:
    with pytest.raises(ValueError):
        Topology().stream_config(S, "nope")


# --- drift ------------------------------------------------------------------------------------
def test_stream_drift_only_looks_at_declared_fields() -> None:
    desired = Topology().stream_config(S, StreamKind.EVENTS)
    same = Topology().stream_config(S, StreamKind.EVENTS)
    same.max_msgs = 10  # not a field Taskloom declares
    same.metadata = {"_nats.ver": "2.11"}
    assert stream_drift(desired, same) == {}
    other = Topology(events_max_age=3600).stream_config(S, StreamKind.EVENTS)
    assert set(stream_drift(desired, other)) == {"max_age"}


def _consumer(**overrides: object) -> ConsumerConfig:
    args: dict[str, object] = {
        "filter_subjects": ["tl.progress.>"],
        "ack_wait": 30.0,
        "max_deliver": 5,
        "max_ack_pending": 100,
        "deliver_policy": DeliverPolicy.ALL,
    }
    args.update(overrides)
    return consumer_config("orchestrator", **args)  # type: ignore[arg-type]


def test_consumer_config_reserves_one_delivery_for_dead_lettering() -> None:
    config = _consumer()
    assert config.max_deliver == 6
    assert config.metadata == {MAX_DELIVER_METADATA: "5"}
    assert config.filter_subject == "tl.progress.>" and config.filter_subjects is None
    unlimited = _consumer(max_deliver=None, filter_subjects=["a.>", "b.>"])
    assert unlimited.max_deliver == -1 and unlimited.metadata == {MAX_DELIVER_METADATA: "unlimited"}
    assert unlimited.filter_subjects == ["a.>", "b.>"] and unlimited.filter_subject is None
    with pytest.raises(ValueError):
        _consumer(max_deliver=0)
    with pytest.raises(ValueError):
        _consumer(filter_subjects=[])


def test_consumer_drift_ignores_metadata_the_server_adds() -> None:
    desired = _consumer()
    current = _consumer()
    current.metadata = {**(current.metadata or {}), "_nats.req.level": "0"}
    assert consumer_drift(desired, current) == {}
    assert set(consumer_drift(desired, _consumer(ack_wait=10.0))) == {"ack_wait"}
    assert set(consumer_drift(desired, _consumer(max_deliver=2))) == {
        "max_deliver",
        f"metadata.{MAX_DELIVER_METADATA}",
    }


def test_declared_attempts() -> None:
    assert _declared_attempts({MAX_DELIVER_METADATA: "3"}, 4) == 3
    assert _declared_attempts({MAX_DELIVER_METADATA: "unlimited"}, -1) is None
    assert _declared_attempts(None, 7) == 7  # a consumer declared elsewhere
    assert _declared_attempts({}, -1) is None


# --- codec ------------------------------------------------------------------------------------
def test_models_encode_as_utf8_json_and_bytes_pass_through() -> None:
    assert json.loads(encode(Model(message_id="m1")).decode("utf-8")) == {"message_id": "m1", "text": "héllo"}
    assert encode(b"raw") == b"raw"
    assert encode(bytearray(b"x")) == b"x"
    with pytest.raises(TypeError):
        encode("a str")  # type: ignore[arg-type]


def test_msg_id_precedence() -> None:
    model = Model(message_id="from-model")
    assert default_msg_id(model) == "from-model"
    assert default_msg_id(NoId()) is None
    assert publish_headers(model, None, None) == {MSG_ID_HEADER: "from-model"}
    assert publish_headers(model, "explicit", {MSG_ID_HEADER: "hdr"}) == {MSG_ID_HEADER: "explicit"}
    assert publish_headers(model, None, {MSG_ID_HEADER: "hdr", "X": "1"}) == {MSG_ID_HEADER: "hdr", "X": "1"}
    assert publish_headers(b"raw", None, None) is None


def test_header_values_are_one_printable_line() -> None:
    assert header_value("a\r\nb\tc") == "a  b c"
    long = header_value("x" * 5000)
    assert len(long) == 1024 and long.endswith("...")


def test_dead_letter_headers() -> None:
    headers = dead_letter_headers(
        reason="parse_error",
        error=ValueError("bad\njson"),
        subject="tl.progress.a.wf.t",
        stream="TL_PROGRESS",
        consumer="orchestrator",
        stream_seq=42,
        num_delivered=3,
        headers={"Nats-Msg-Id": "m1", "X-Note": "line1\nline2"},
        now=datetime(2026, 1, 1, tzinfo=UTC),
    )
    assert headers == {
        MSG_ID_HEADER: "dlq.TL_PROGRESS.orchestrator.42",
        "Taskloom-Dlq-Reason": "parse_error",
        "Taskloom-Dlq-Error": "ValueError: bad json",
        "Taskloom-Dlq-Subject": "tl.progress.a.wf.t",
        "Taskloom-Dlq-Stream": "TL_PROGRESS",
        "Taskloom-Dlq-Consumer": "orchestrator",
        "Taskloom-Dlq-Stream-Seq": "42",
        "Taskloom-Dlq-Deliveries": "3",
        "Taskloom-Dlq-Timestamp": "2026-01-01T00:00:00+00:00",
        DLQ_ORIGINAL_HEADERS: '{"Nats-Msg-Id": "m1", "X-Note": "line1\\nline2"}',
    }
    assert "\n" not in "".join(headers.values())
    assert original_headers(headers) == {"Nats-Msg-Id": "m1", "X-Note": "line1\nline2"}


def test_redacts_passwords_in_urls() -> None:
    assert _redact("nats://user:pw@host:4222") == "nats://user:***@host:4222"
    assert _redact("nats://host:4222") == "nats://host:4222"


# --- backoff and errors -----------------------------------------------------------------------
def test_backoff_doubles_up_to_the_cap() -> None:
    backoff = Backoff(base=1, cap=10, jitter=0)
    assert [backoff.delay(n) for n in (1, 2, 3, 4, 5, 6)] == [1, 2, 4, 8, 10, 10]
    jittered = Backoff(base=4, cap=60, jitter=0.25)
    assert all(3 <= jittered.delay(1) <= 5 for _ in range(100))


def test_error_hierarchy() -> None:
    assert issubclass(RequestTimeout, BusUnavailable) and issubclass(BusUnavailable, BusError)
    assert issubclass(RetryableError, HandlerError) and issubclass(PermanentError, HandlerError)
    assert not issubclass(RetryableError, BusError)
    assert RetryableError("x", delay=2.5).delay == 2.5
    assert RetryableError().delay is None
    with pytest.raises(ValueError):
        RetryableError("x", delay=-1)
