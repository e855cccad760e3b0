"""Every subject, stream, consumer and bucket name on the bus, built in one place.

All names hang off a namespace (``taskloom`` by default, ``TASKLOOM_NAMESPACE``) so that
several installations or test runs can share one NATS server without seeing each other.

Subjects (``ns`` = namespace)::

    ns.cmd.submit | cancel | pause | resume | collaborate   commands           stream NS_COMMANDS
    ns.graphs.constructed.<wf> | ns.graphs.rejected.<wf>    constructor output stream NS_GRAPHS
    ns.tasks.<agent_id>                                      task_assignment    stream NS_TASKS (work queue)
    ns.progress.<agent_id>.<wf>.<task_id>                    progress_update    stream NS_PROGRESS
    ns.events.<wf>.<event_type>                              every stored event stream NS_EVENTS
    ns.dlq.<source>                                          dead letters       stream NS_DLQ
    ns.context.get | put | contribute | audit                context request/reply (core NATS)
    ns.agents.heartbeat.<agent_id>.<instance>                agent heartbeats   (core NATS)
    ns.agents.consult.<agent_id>                             consultation request/reply (core NATS)
    ns.signals.cancel.<wf>.<task_id>                         cancel a running task (core NATS)
    KV bucket ns_agents                                      live agent registry
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import urlsplit

__all__ = ["DEFAULT_INBOX_PREFIX", "Command", "Subjects", "inbox_prefix", "registry_key", "token"]

_TOKEN_BAD = re.compile(r"[^A-Za-z0-9_\-]")


class Command(StrEnum):
    SUBMIT = "submit"
    CANCEL = "cancel"
    PAUSE = "pause"
    RESUME = "resume"
    COLLABORATE = "collaborate"


def token(value: str) -> str:
    """A value made safe as one subject token (no dots, spaces or wildcards)."""
    if not value:
        raise ValueError("empty subject token")
    return _TOKEN_BAD.sub("_", value)


def _name(value: str) -> str:
    """Stream / consumer / bucket names: alphanumerics and ``_`` only."""
    return re.sub(r"[^A-Za-z0-9_]", "_", value)


@dataclass(frozen=True)
class Subjects:
    namespace: str = "taskloom"

    # --- subjects -------------------------------------------------------------------------
    def command(self, command: Command | str) -> str:
        return f"{self.namespace}.cmd.{Command(command).value}"

    @property
    def commands_all(self) -> str:
        return f"{self.namespace}.cmd.>"

    def graph_constructed(self, workflow_id: str) -> str:
        return f"{self.namespace}.graphs.constructed.{token(workflow_id)}"

    def graph_rejected(self, workflow_id: str) -> str:
        return f"{self.namespace}.graphs.rejected.{token(workflow_id)}"

    @property
    def graphs_all(self) -> str:
        return f"{self.namespace}.graphs.>"

    def tasks(self, agent_id: str) -> str:
        return f"{self.namespace}.tasks.{token(agent_id)}"

    @property
    def tasks_all(self) -> str:
        return f"{self.namespace}.tasks.>"

    def progress(self, agent_id: str, workflow_id: str, task_id: str) -> str:
        return f"{self.namespace}.progress.{token(agent_id)}.{token(workflow_id)}.{token(task_id)}"

    def progress_of_agent(self, agent_id: str) -> str:
        return f"{self.namespace}.progress.{token(agent_id)}.>"

    @property
    def progress_all(self) -> str:
        return f"{self.namespace}.progress.>"

    def event(self, workflow_id: str, event_type: str) -> str:
        return f"{self.namespace}.events.{token(workflow_id)}.{token(event_type)}"

    def events_of(self, workflow_id: str) -> str:
        return f"{self.namespace}.events.{token(workflow_id)}.>"

    @property
    def events_all(self) -> str:
        return f"{self.namespace}.events.>"

    def dead_letter(self, source: str) -> str:
        return f"{self.namespace}.dlq.{token(source)}"

    @property
    def dead_letters_all(self) -> str:
        return f"{self.namespace}.dlq.>"

    def context(self, op: str) -> str:
        return f"{self.namespace}.context.{token(op)}"

    def heartbeat(self, agent_id: str, instance: str) -> str:
        return f"{self.namespace}.agents.heartbeat.{token(agent_id)}.{token(instance)}"

    @property
    def heartbeats_all(self) -> str:
        return f"{self.namespace}.agents.heartbeat.>"

    def consult(self, agent_id: str) -> str:
        return f"{self.namespace}.agents.consult.{token(agent_id)}"

    def cancel_signal(self, workflow_id: str, task_id: str) -> str:
        return f"{self.namespace}.signals.cancel.{token(workflow_id)}.{token(task_id)}"

    @property
    def cancel_signals_all(self) -> str:
        return f"{self.namespace}.signals.cancel.>"

    # --- streams, consumers, buckets ------------------------------------------------------
    def stream(self, kind: str) -> str:
        """``commands`` → ``TASKLOOM_COMMANDS`` (kinds: commands, graphs, tasks, progress, events, dlq)."""
        return _name(f"{self.namespace}_{kind}".upper())

    def consumer(self, name: str) -> str:
        return _name(name)

    def agent_consumer(self, agent_id: str) -> str:
        """The one durable work-queue consumer shared by every replica of an agent type."""
        return _name(f"agent_{agent_id}")

    @property
    def agents_bucket(self) -> str:
        return _name(f"{self.namespace}_agents")


DEFAULT_INBOX_PREFIX = "_INBOX"


def inbox_prefix(user: str | None, url: str | None = None) -> str:
    """Where a client of NATS user ``user`` (else the user named in the server ``url``) receives
    replies: ``_INBOX_<user>``, so that the server can let each user subscribe to its own replies
    only (``_INBOX_<user>.>``) and nobody reads another's (a context answer meant for one agent,
    say). Without a user: ``_INBOX``."""
    user = user or (urlsplit(url).username if url else None)
    return f"{DEFAULT_INBOX_PREFIX}_{token(user)}" if user else DEFAULT_INBOX_PREFIX


def registry_key(agent_id: str, instance_id: str) -> str:
    """Key of one agent instance in the registry bucket: ``<agent_id>.<instance_id>``."""
    return f"{token(agent_id)}.{token(instance_id)}"
