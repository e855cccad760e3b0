"""Recording a submitted workflow: the ``WorkflowSubmitted`` event, the read-model row and the
outbox message to the constructor, committed together (the gateway calls this)."""

from __future__ import annotations

from taskloom.contracts.events import WorkflowSubmitted
from taskloom.contracts.messages import SubmitWorkflow
from taskloom.contracts.subjects import Command, Subjects
from taskloom.eventstore import ConcurrencyConflict, EventStore, NewEvent, OutboxMessage
from taskloom.orchestrator.adapters.postgres import Tables
from taskloom.orchestrator.domain import empty, evolve

__all__ = ["record_submission"]


async def record_submission(store: EventStore, cmd: SubmitWorkflow, namespace: str = "taskloom") -> bool:
    """Store the submission; True when it is new, False when ``cmd`` (or another submission of
    the same workflow id) was recorded before. The outbox publishes ``cmd`` on
    ``Subjects(namespace).command("submit")``."""
    event = WorkflowSubmitted(
        event_id=cmd.message_id,
        workflow_id=cmd.workflow_id,
        occurred_at=cmd.timestamp,
        owner=cmd.owner,
        request=cmd.request,
        callback_url=cmd.callback_url,
        webhook_events=cmd.webhook_events,
    )
    tables = Tables(store)
    state = evolve(empty(cmd.workflow_id), event)
    outbox = OutboxMessage(
        cmd.message_id, Subjects(namespace).command(Command.SUBMIT), cmd.model_dump_json().encode()
    )
    try:
        async with store.transaction() as tx:
            tx.append(
                cmd.workflow_id,
                [NewEvent(event.event_id, event.type, event.model_dump(mode="json"))],
                0,
                outbox=[outbox],
            )
            await tables.write(tx.connection, state, [event], [])
    except ConcurrencyConflict:
        return False
    return bool(tx.results and tx.results[0].appended)
