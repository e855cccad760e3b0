"""Which subjects each Taskloom NATS user may publish and subscribe to, derived from ``Subjects``.

Every service connects as its own user. An agent deployment group (one or more agent types hosted
by the same processes) gets a user whose rights name its agent ids, so it cannot publish another
agent's progress, take another agent's tasks or overwrite another agent's registry entry. No
service user may delete or purge streams; only the operator's ``admin`` user can.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from taskloom.bus.topology import StreamKind
from taskloom.contracts.enums import BUILTIN_AGENTS
from taskloom.contracts.subjects import Command, Subjects, inbox_prefix, registry_key

__all__ = [
    "ADMIN_USER",
    "DEFAULT_AGENT_GROUPS",
    "DENIED_JS_API",
    "SERVICES",
    "NatsUser",
    "Permissions",
    "admin_permissions",
    "agent_common_permissions",
    "agent_group_permissions",
    "agent_group_user",
    "agent_permissions",
    "password_env",
    "service_permissions",
    "users_for",
]

SERVICES: tuple[str, ...] = ("gateway", "constructor", "orchestrator", "context")
# one process group hosting the eight built-in specialists (docker-compose's ``agents`` service)
DEFAULT_AGENT_GROUPS: dict[str, tuple[str, ...]] = {"builtin": BUILTIN_AGENTS}
ADMIN_USER = "admin"

CONTEXT_OPS: tuple[str, ...] = ("get", "put", "contribute", "audit")
# the streams the bus declares: permissions cover exactly those
STREAM_KINDS: tuple[str, ...] = tuple(kind.value for kind in StreamKind)

# Destructive JetStream API calls no service ever makes: denied explicitly so that a wider
# allow rule added later cannot open them by accident (deny wins over allow in nats-server).
DENIED_JS_API: tuple[str, ...] = (
    "$JS.API.STREAM.DELETE.>",
    "$JS.API.STREAM.PURGE.>",
    "$JS.API.STREAM.MSG.DELETE.>",
    "$JS.API.STREAM.SNAPSHOT.>",
    "$JS.API.STREAM.RESTORE.>",
    "$JS.API.STREAM.PEER.>",
    "$JS.API.STREAM.LEADER.>",
    "$JS.API.CONSUMER.DELETE.>",
    "$JS.API.ACCOUNT.>",
    "$JS.API.SERVER.>",
    "$JS.API.META.>",
)


def _unique(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


@dataclass(frozen=True)
class Permissions:
    """One user's rights, in nats-server's ``permissions`` terms."""

    publish_allow: tuple[str, ...] = ()
    publish_deny: tuple[str, ...] = ()
    subscribe_allow: tuple[str, ...] = ()
    subscribe_deny: tuple[str, ...] = ()
    allow_responses: bool = False

    def merged(self, *others: Permissions) -> Permissions:
        """The union of this and ``others`` (order kept, duplicates dropped)."""
        every = (self, *others)
        return Permissions(
            publish_allow=_unique(s for p in every for s in p.publish_allow),
            publish_deny=_unique(s for p in every for s in p.publish_deny),
            subscribe_allow=_unique(s for p in every for s in p.subscribe_allow),
            subscribe_deny=_unique(s for p in every for s in p.subscribe_deny),
            allow_responses=any(p.allow_responses for p in every),
        )

    def as_config(self) -> dict[str, Any]:
        """The ``permissions`` object of nats-server's configuration."""
        out: dict[str, Any] = {}
        for key, allow, deny in (
            ("publish", self.publish_allow, self.publish_deny),
            ("subscribe", self.subscribe_allow, self.subscribe_deny),
        ):
            rule: dict[str, list[str]] = {}
            if allow:
                rule["allow"] = list(allow)
            if deny:
                rule["deny"] = list(deny)
            if rule:
                out[key] = rule
        if self.allow_responses:
            out["allow_responses"] = True
        return out

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Permissions:
        pub, sub = config.get("publish", {}), config.get("subscribe", {})
        return cls(
            publish_allow=tuple(pub.get("allow", ())),
            publish_deny=tuple(pub.get("deny", ())),
            subscribe_allow=tuple(sub.get("allow", ())),
            subscribe_deny=tuple(sub.get("deny", ())),
            allow_responses=bool(config.get("allow_responses", False)),
        )


@dataclass(frozen=True)
class NatsUser:
    """A NATS user: its name, the environment variable holding its password, its rights."""

    name: str
    permissions: Permissions = field(default_factory=Permissions)

    @property
    def password_env(self) -> str:
        return password_env(self.name)


def password_env(user: str) -> str:
    """``agents-builtin`` → ``TASKLOOM_NATS_PASSWORD_AGENTS_BUILTIN``."""
    return "TASKLOOM_NATS_PASSWORD_" + "".join(c if c.isalnum() else "_" for c in user.upper())


def agent_group_user(group: str) -> str:
    return f"agents-{group}"


# --- JetStream API building blocks ------------------------------------------------------------


def _any_last(subject: str) -> str:
    """``a.b.c`` → ``a.b.*``: a built subject with its last token made a wildcard."""
    return subject.rsplit(".", 1)[0] + ".*"


def _kv_stream(s: Subjects) -> str:
    return f"KV_{s.agents_bucket}"


def _all_streams(s: Subjects) -> list[str]:
    return [s.stream(kind) for kind in STREAM_KINDS] + [_kv_stream(s)]


def _consumer_api(stream: str, consumer: str) -> list[str]:
    """Create, look up, pull from and acknowledge one consumer (``*`` = any name) of a stream."""
    api = "$JS.API.CONSUMER"
    return [
        f"{api}.INFO.{stream}.{consumer}",
        f"{api}.CREATE.{stream}.{consumer}",
        f"{api}.CREATE.{stream}.{consumer}.>",
        f"{api}.DURABLE.CREATE.{stream}.{consumer}",
        f"{api}.MSG.NEXT.{stream}.{consumer}",
        f"$JS.ACK.{stream}.{consumer}.>",
    ]


def _watch_api(stream: str) -> list[str]:
    """Ephemeral ordered push consumers (history replay, KV watch) and their flow control."""
    return [f"$JS.API.CONSUMER.CREATE.{stream}", *_consumer_api(stream, "*"), f"$JS.FC.{stream}.>"]


def _common(s: Subjects, manage_streams: bool, user: str) -> Permissions:
    """What every service user needs: JetStream info, KV reads, its replies, dead-lettering."""
    kv = _kv_stream(s)
    pub = [
        "$JS.API.INFO",
        "$JS.API.STREAM.NAMES",
        *(f"$JS.API.STREAM.INFO.{name}" for name in _all_streams(s)),
        f"$JS.API.DIRECT.GET.{kv}",
        f"$JS.API.DIRECT.GET.{kv}.>",
        f"$JS.API.STREAM.MSG.GET.{kv}",
        s.dead_letters_all,
    ]
    if manage_streams:
        for name in _all_streams(s):
            pub += [f"$JS.API.STREAM.CREATE.{name}", f"$JS.API.STREAM.UPDATE.{name}"]
    return Permissions(
        publish_allow=tuple(pub),
        publish_deny=DENIED_JS_API,
        # replies to this user's own requests, JetStream publish acks and pull batches: under
        # its own inbox prefix (clients connect with it), never another user's
        subscribe_allow=(f"{inbox_prefix(user)}.>",),
    )


# --- per service -----------------------------------------------------------------------------


def service_permissions(s: Subjects, service: str) -> Permissions:
    """The rights of one platform service (``gateway``, ``constructor``, ``orchestrator``, ``context``)."""
    if service == "gateway":
        own = Permissions(
            publish_allow=(
                s.commands_all,
                s.context("get"),
                s.context("audit"),
                *_watch_api(s.stream("events")),
                *_watch_api(_kv_stream(s)),
            ),
            subscribe_allow=(s.events_all, s.heartbeats_all),
        )
    elif service == "constructor":
        own = Permissions(
            publish_allow=(
                s.graphs_all,
                *(s.context(op) for op in ("get", "put", "contribute")),
                *_consumer_api(s.stream("commands"), "*"),
                *_watch_api(_kv_stream(s)),
            ),
            subscribe_allow=(s.heartbeats_all,),
        )
    elif service == "orchestrator":
        own = Permissions(
            publish_allow=(
                s.commands_all,
                s.tasks_all,
                s.events_all,
                s.cancel_signals_all,
                *(s.context(op) for op in ("get", "put", "contribute", "audit")),
                *_consumer_api(s.stream("commands"), "*"),
                *_consumer_api(s.stream("graphs"), "*"),
                *_consumer_api(s.stream("progress"), "*"),
                *_watch_api(_kv_stream(s)),
                f"$JS.API.CONSUMER.INFO.{s.stream('tasks')}.*",
            ),
            subscribe_allow=(s.heartbeats_all,),
        )
    elif service == "context":
        own = Permissions(
            subscribe_allow=tuple(s.context(op) for op in CONTEXT_OPS),
            allow_responses=True,
        )
    else:
        raise ValueError(f"unknown service {service!r}; expected one of {', '.join(SERVICES)}")
    return _common(s, manage_streams=True, user=service).merged(own)


def agent_common_permissions(s: Subjects, user: str) -> Permissions:
    """What any agent group (NATS user ``user``) needs whatever agents it hosts."""
    common = _common(s, manage_streams=False, user=user)
    own = Permissions(
        publish_allow=(
            s.command(Command.COLLABORATE),
            _any_last(s.consult("agent")),
            *(s.context(op) for op in ("get", "put", "contribute")),
            *_watch_api(_kv_stream(s)),
        ),
        subscribe_allow=(s.cancel_signals_all,),
        # answers to consultations (and to anything else asked of it) go to the asker's inbox
        allow_responses=True,
    )
    return common.merged(own)


def agent_permissions(s: Subjects, agent_id: str) -> Permissions:
    """The rights tied to one agent id: its progress, heartbeats, registry keys, task queue."""
    tasks = s.stream("tasks")
    consumer = s.agent_consumer(agent_id)
    return Permissions(
        publish_allow=(
            s.progress_of_agent(agent_id),
            _any_last(s.heartbeat(agent_id, "instance")),
            _any_last(f"$KV.{s.agents_bucket}.{registry_key(agent_id, 'instance')}"),
            *_consumer_api(tasks, consumer),
        ),
        subscribe_allow=(s.consult(agent_id),),
    )


def agent_group_permissions(s: Subjects, group: str, agent_ids: Sequence[str]) -> Permissions:
    """The rights of the process group ``group`` hosting exactly ``agent_ids``."""
    if not agent_ids:
        raise ValueError("an agent group hosts at least one agent")
    common = agent_common_permissions(s, agent_group_user(group))
    return common.merged(*(agent_permissions(s, a) for a in agent_ids))


def admin_permissions() -> Permissions:
    """The operator's user (``nats`` CLI, migrations): every subject."""
    return Permissions(publish_allow=(">",), subscribe_allow=(">",))


def users_for(
    s: Subjects, agent_groups: Mapping[str, Sequence[str]], *, admin: bool = True
) -> list[NatsUser]:
    """Every user of one installation: the platform services, one per agent group, the admin."""
    users = [NatsUser(name, service_permissions(s, name)) for name in SERVICES]
    users += [
        NatsUser(agent_group_user(group), agent_group_permissions(s, group, ids))
        for group, ids in agent_groups.items()
    ]
    if admin:
        users.append(NatsUser(ADMIN_USER, admin_permissions()))
    return users
