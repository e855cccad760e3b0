"""Stored events → WebSocket frames: one frame per event, positions kept, summary folded."""

from __future__ import annotations

import pytest

from taskloom.contracts.enums import WebSocketEventType as T
from taskloom.gateway.domain.cursor import InvalidCursor, decode_cursor, encode_cursor
from taskloom.gateway.domain.frames import FrameProjector

GRAPH = {
    "tasks": [
        {"task_id": "t1", "task_type": "code_analysis", "assigned_agent": "core-services"},
        {"task_id": "t2", "task_type": "test_run", "assigned_agent": "testing-specialist"},
    ]
}
EVENTS = [
    ("WorkflowSubmitted", {"owner": "a"}),
    ("WorkflowStarted", {"graph": GRAPH}),
    ("TaskAssigned", {"task_id": "t1", "agent": "core-services", "attempt": 1}),
    (
        "TaskProgressed",
        {"task_id": "t1", "attempt": 1, "completion_percentage": 40.0, "current_phase": "scan"},
    ),
    ("TaskFailed", {"task_id": "t2", "agent": "testing-specialist", "attempt": 1, "error": {"m": "x"}}),
    ("CollaborationRequested", {"request": {"requesting_agent": "core-services"}}),
    ("TaskCompleted", {"task_id": "t1", "agent": "core-services", "attempt": 1}),
    ("WorkflowCompleted", {"result": {}}),
]


def test_every_event_is_one_frame_with_its_position():
    projector = FrameProjector("wf")
    frames = [projector.apply(i, t, d) for i, (t, d) in enumerate(EVENTS, start=1)]
    assert [f.position for f in frames] == list(range(1, len(EVENTS) + 1))
    assert [f.event_type for f in frames] == [
        T.STATUS_CHANGE,
        T.STATUS_CHANGE,
        T.STATUS_CHANGE,
        T.STATUS_CHANGE,
        T.ERROR,
        T.AGENT_COMMUNICATION,
        T.TASK_COMPLETED,
        T.COMPLETION,
    ]
    assert all(f.workflow_id == "wf" for f in frames)


def test_summary_follows_the_events():
    projector = FrameProjector("wf")
    frames = [projector.apply(i, t, d) for i, (t, d) in enumerate(EVENTS, start=1)]
    started = frames[1]
    assert started.data.current_status == "running"
    assert [t["task_id"] for t in started.data.recent_updates[0]["tasks"]] == ["t1", "t2"]
    progressed = frames[3]
    assert progressed.data.progress["task"]["completion_percentage"] == 40.0
    assert progressed.data.active_agents == ["core-services"]
    done = frames[6]
    assert done.data.progress["completed_tasks"] == 1 and done.data.progress["total_tasks"] == 2
    assert frames[-1].data.current_status == "completed" and projector.finished


def test_cursor_round_trip_and_garbage():
    assert decode_cursor(encode_cursor({"t": "x", "id": "y"})) == {"t": "x", "id": "y"}
    for bad in ("!!!", "bm90IGpzb24", "WzFd"):  # not base64, not JSON, a JSON list
        with pytest.raises(InvalidCursor):
            decode_cursor(bad)
