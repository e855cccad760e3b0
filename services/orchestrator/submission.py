"""Recording a submitted workflow: the ``WorkflowSubmitted`` event, the read-model row and the
outbox message to the constructor, committed together in one statement (the gateway calls
this)."""

from __future__ import annotations

from taskloom.contracts.events import WorkflowSubmitted
from taskloom.contracts.messages import SubmitWorkflow
from taskloom.contracts.subjects import Command, Subjects
from taskloom.eventstore import ConcurrencyConflict, DuplicateEventId, EventStore, OutboxMessage, StreamAppend
from taskloom.orchestrator.adapters.postgres import Tables, Write, new_event
from taskloom.orchestrator.domain import empty, evolve

__all__ = ["record_submission"]


async def record_submission(
    store: EventStore, cmd: SubmitWorkflow, namespace: str = "taskloom", *, tables: Tables | None = None
) -> bool:
    """Store the submission; True when it is new, False when ``cmd`` (or another submission of
    the same workflow id) was recorded before. The outbox publishes ``cmd`` on
    ``Subjects(namespace).command("submit")``. One statement: the store's ``append_many`` with
    the read-model writes fused in."""
    event = WorkflowSubmitted(
        event_id=cmd.message_id,
        workflow_id=cmd.workflow_id,
        occurred_at=cmd.timestamp,
        owner=cmd.owner,
        request=cmd.request,
        callback_url=cmd.callback_url,
        webhook_events=cmd.webhook_events,
    )
    tables = tables or Tables(store)
    state = evolve(empty(cmd.workflow_id), event)
    outbox = OutboxMessage(
        cmd.message_id, Subjects(namespace).command(Command.SUBMIT), cmd.model_dump_json().encode()
    )
    try:
        await store.append_many(
            [StreamAppend(cmd.workflow_id, [new_event(event)], 0)],
            [outbox],
            also=tables.fragment([Write(state, [event])]),
        )
    except (ConcurrencyConflict, DuplicateEventId):
        # the stream exists: this command (or another with its workflow id) was stored before
        return False
    return True
