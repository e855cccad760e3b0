"""The generated per-service NATS users, enforced by a real nats-server: each user can do its job
and nothing that belongs to another (an agent cannot forge another agent's progress or delete a
stream)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import nats
import pytest
from nats.js.api import ConsumerConfig, StreamConfig

from taskloom.contracts.subjects import Subjects, inbox_prefix, registry_key
from taskloom.infra import EmbeddedNats
from taskloom.natsauth import (
    ADMIN_USER,
    agent_group_user,
    authorization_block,
    generate_passwords,
    users_for,
)

NS = "taskloom"
S = Subjects(NS)
GROUPS = {"core": ("core-services",), "writer": ("technical-writer",)}
CORE = agent_group_user("core")
USERS = users_for(S, GROUPS)
PASSWORDS = generate_passwords(USERS)
WAIT = 5.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedNats]:
    data: Path = tmp_path_factory.mktemp("nats-auth")
    srv = EmbeddedNats(data, extra_config=authorization_block(USERS, PASSWORDS))
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


class Client:
    """A connection as one user that records the server's permission violations."""

    def __init__(self, user: str) -> None:
        self.user = user
        self.errors: list[str] = []
        self.nc: nats.NATS

    async def connect(self, url: str) -> Client:
        async def on_error(exc: Exception) -> None:
            self.errors.append(str(exc))

        self.nc = await nats.connect(
            url,
            user=self.user,
            password=PASSWORDS[self.user],
            inbox_prefix=inbox_prefix(self.user),  # as the bus connects
            error_cb=on_error,
            max_reconnect_attempts=0,
            connect_timeout=WAIT,
        )
        return self

    async def violation(self, fragment: str) -> str:
        """Wait for the server's permissions violation naming ``fragment`` (nats-py lower-cases
        the server's message)."""

        async def found() -> str:
            while True:
                for e in self.errors:
                    if "permissions violation" in e.lower() and fragment.lower() in e.lower():
                        return e
                await asyncio.sleep(0.02)

        return await asyncio.wait_for(found(), WAIT)


@pytest.fixture
async def connect(server: EmbeddedNats) -> AsyncIterator[object]:
    clients: list[Client] = []

    async def make(user: str) -> Client:
        client = await Client(user).connect(server.url)
        clients.append(client)
        return client

    yield make
    for c in clients:
        with contextlib.suppress(Exception):
            await c.nc.close()


@pytest.fixture(scope="module")
def streams(server: EmbeddedNats) -> None:
    """The installation's streams and KV bucket, created by the orchestrator's own user."""
    asyncio.run(_create_streams(server.url))


async def _create_streams(url: str) -> None:
    nc = await nats.connect(
        url,
        user="orchestrator",
        password=PASSWORDS["orchestrator"],
        inbox_prefix=inbox_prefix("orchestrator"),
    )
    try:
        js = nc.jetstream()
        for kind, subject in (
            ("commands", S.commands_all),
            ("graphs", S.graphs_all),
            ("tasks", S.tasks_all),
            ("progress", S.progress_all),
            ("events", S.events_all),
            ("dlq", S.dead_letters_all),
        ):
            await js.add_stream(StreamConfig(name=S.stream(kind), subjects=[subject]))
        await js.create_key_value(bucket=S.agents_bucket, ttl=60)
    finally:
        await nc.close()


async def _collect(admin: Client, subject: str) -> list[nats.aio.msg.Msg]:
    got: list[nats.aio.msg.Msg] = []

    async def cb(msg: nats.aio.msg.Msg) -> None:
        got.append(msg)

    await admin.nc.subscribe(subject, cb=cb)
    await admin.nc.flush()
    return got


async def test_agent_cannot_publish_another_agents_progress(connect, streams) -> None:  # type: ignore[no-untyped-def]
    admin, core = await connect(ADMIN_USER), await connect(CORE)
    seen = await _collect(admin, S.progress_all)
    forged = S.progress("technical-writer", "wf1", "t1")
    await core.nc.publish(forged, b"{}")
    await core.nc.flush()
    await core.violation(forged)
    own = S.progress("core-services", "wf1", "t1")
    ack = await core.nc.jetstream().publish(own, b"{}")  # JetStream: stored and acknowledged
    assert ack.stream == S.stream("progress")
    await admin.nc.flush()
    await asyncio.sleep(0.05)
    assert [m.subject for m in seen] == [own]


async def test_agent_cannot_delete_or_purge_streams(connect, streams) -> None:  # type: ignore[no-untyped-def]
    core, admin = await connect(CORE), await connect(ADMIN_USER)
    js = core.nc.jetstream(timeout=0.3)
    for name in (S.stream("tasks"), S.stream("events"), f"KV_{S.agents_bucket}"):
        with pytest.raises(nats.errors.TimeoutError):  # no reply ever comes: the call is refused
            await js.delete_stream(name)
        await core.violation(f"$JS.API.STREAM.DELETE.{name}")
        with pytest.raises(nats.errors.TimeoutError):
            await js.purge_stream(name)
        await core.violation(f"$JS.API.STREAM.PURGE.{name}")
        # the stream is still there
        info = await admin.nc.jetstream().stream_info(name)
        assert info.config.name == name


async def test_services_cannot_delete_streams_either(connect, streams) -> None:  # type: ignore[no-untyped-def]
    for user in ("gateway", "constructor", "orchestrator", "context"):
        client = await connect(user)
        with pytest.raises(nats.errors.TimeoutError):
            await client.nc.jetstream(timeout=0.3).delete_stream(S.stream("commands"))
        await client.violation(f"$JS.API.STREAM.DELETE.{S.stream('commands')}")


async def test_agent_works_its_own_queue_and_not_anothers(connect, streams) -> None:  # type: ignore[no-untyped-def]
    orch, core = await connect("orchestrator"), await connect(CORE)
    await orch.nc.jetstream().publish(S.tasks("core-services"), b'{"n": 1}')
    js = core.nc.jetstream(timeout=2.0)
    durable = S.agent_consumer("core-services")
    await js.add_consumer(
        S.stream("tasks"), ConsumerConfig(durable_name=durable, filter_subject=S.tasks("core-services"))
    )
    sub = await js.pull_subscribe(S.tasks("core-services"), durable=durable, stream=S.stream("tasks"))
    msgs = await sub.fetch(1, timeout=WAIT)
    assert json.loads(msgs[0].data) == {"n": 1}
    await msgs[0].in_progress()
    await msgs[0].ack_sync()
    # another agent's queue is closed to this user
    other = S.agent_consumer("technical-writer")
    with pytest.raises(Exception):  # noqa: B017
        await js.add_consumer(
            S.stream("tasks"), ConsumerConfig(durable_name=other, filter_subject=S.tasks("technical-writer"))
        )
    await core.violation(f"{S.stream('tasks')}.{other}")


async def test_agent_registry_entries_are_its_own(connect, streams) -> None:  # type: ignore[no-untyped-def]
    core, gateway = await connect(CORE), await connect("gateway")
    kv = await core.nc.jetstream(timeout=2.0).key_value(S.agents_bucket)
    mine = registry_key("core-services", "i1")
    await kv.put(mine, b'{"load": 0}')
    assert (await kv.get(mine)).value == b'{"load": 0}'
    with pytest.raises(Exception):  # noqa: B017
        await kv.put(registry_key("technical-writer", "i1"), b"{}")
    await core.violation(f"$KV.{S.agents_bucket}.technical-writer")
    # the gateway and constructor read the registry, and may watch it
    seen = await (await gateway.nc.jetstream(timeout=2.0).key_value(S.agents_bucket)).get(mine)
    assert seen.value == b'{"load": 0}'
    watcher = await (await gateway.nc.jetstream(timeout=2.0).key_value(S.agents_bucket)).watchall()
    try:
        # nats-py may hand out its "initial values delivered" marker (None) before the entry:
        # what proves the permission is that the entry itself reaches the watcher
        keys: list[str] = []
        deadline = asyncio.get_running_loop().time() + WAIT
        while mine not in keys and asyncio.get_running_loop().time() < deadline:
            with contextlib.suppress(asyncio.TimeoutError, nats.errors.TimeoutError):
                update = await watcher.updates(timeout=0.5)
                if update is not None:
                    keys.append(update.key)
        assert mine in keys
    finally:
        await watcher.stop()


async def test_consultation_and_context_request_reply(connect, streams) -> None:  # type: ignore[no-untyped-def]
    core, writer, context = (
        await connect(CORE),
        await connect(agent_group_user("writer")),
        await connect("context"),
    )

    async def answer(msg: nats.aio.msg.Msg) -> None:
        await msg.respond(b'{"ok": true}')

    await writer.nc.subscribe(S.consult("technical-writer"), cb=answer)
    await context.nc.subscribe(S.context("get"), queue="context", cb=answer)
    await writer.nc.flush()
    await context.nc.flush()
    assert (await core.nc.request(S.consult("technical-writer"), b"{}", timeout=WAIT)).data == b'{"ok": true}'
    assert (await core.nc.request(S.context("get"), b"{}", timeout=WAIT)).data == b'{"ok": true}'
    # an agent may not listen in on another agent's consultations or serve the context API
    await core.nc.subscribe(S.consult("technical-writer"))
    await core.violation(S.consult("technical-writer"))
    await core.nc.subscribe(S.context("get"))
    await core.violation(f'Subscription to "{S.context("get")}"')


async def test_replies_are_readable_only_by_the_user_who_asked(connect, streams) -> None:  # type: ignore[no-untyped-def]
    """A context answer meant for one agent group cannot be read by another listening on the
    shared ``_INBOX.>`` or on the other's prefix; each user reads its own replies."""
    core, writer, context = (
        await connect(CORE),
        await connect(agent_group_user("writer")),
        await connect("context"),
    )

    async def answer(msg: nats.aio.msg.Msg) -> None:
        await msg.respond(b'{"secret": "for the writer"}')

    await context.nc.subscribe(S.context("get"), queue="context", cb=answer)
    await context.nc.flush()
    for snooped in ("_INBOX.>", f"{inbox_prefix(agent_group_user('writer'))}.>"):
        await core.nc.subscribe(snooped)
        await core.violation(f'Subscription to "{snooped}"')
    reply = await writer.nc.request(S.context("get"), b"{}", timeout=WAIT)
    assert reply.data == b'{"secret": "for the writer"}'
    assert reply.subject.startswith(f"{inbox_prefix(agent_group_user('writer'))}.")
    assert not [e for e in writer.errors if "violation" in e.lower()], writer.errors


async def test_the_flow_end_to_end_with_each_services_own_user(connect, streams) -> None:  # type: ignore[no-untyped-def]
    """gateway → cmd.submit → constructor → graph → orchestrator → task → agent → progress →
    orchestrator → event → gateway, every hop over JetStream as that service's user."""
    gateway, constructor, orch, core = (
        await connect("gateway"),
        await connect("constructor"),
        await connect("orchestrator"),
        await connect(CORE),
    )
    events_seen = await _collect(gateway, S.events_of("wf9"))

    async def pull(client: Client, stream: str, subject: str, durable: str) -> nats.aio.msg.Msg:
        js = client.nc.jetstream(timeout=2.0)
        sub = await js.pull_subscribe(subject, durable=durable, stream=stream)
        msg = (await sub.fetch(1, timeout=WAIT))[0]
        await msg.ack_sync()
        return msg

    await gateway.nc.jetstream().publish(S.command("submit"), b'{"wf": "wf9"}')
    got = await pull(constructor, S.stream("commands"), S.command("submit"), "constructor_submit")
    assert json.loads(got.data) == {"wf": "wf9"}
    await constructor.nc.jetstream().publish(S.graph_constructed("wf9"), b'{"graph": 1}')
    await pull(orch, S.stream("graphs"), S.graphs_all, "orchestrator_graphs")
    await orch.nc.jetstream().publish(S.tasks("core-services"), b'{"task": "t1"}')
    durable = S.agent_consumer("core-services")
    task = await pull(core, S.stream("tasks"), S.tasks("core-services"), durable)
    assert json.loads(task.data) == {"task": "t1"}
    await core.nc.jetstream().publish(S.progress("core-services", "wf9", "t1"), b'{"status": "completed"}')
    progress = await pull(
        orch, S.stream("progress"), S.progress("core-services", "wf9", "t1"), "orchestrator_progress"
    )
    assert progress.subject == S.progress("core-services", "wf9", "t1")
    await orch.nc.jetstream().publish(S.event("wf9", "TaskCompleted"), b"{}")
    await orch.nc.publish(S.cancel_signal("wf9", "t2"), b"")
    await gateway.nc.flush()

    async def arrived() -> None:
        while not events_seen:
            await asyncio.sleep(0.02)

    await asyncio.wait_for(arrived(), WAIT)
    assert events_seen[0].subject == S.event("wf9", "TaskCompleted")
    for client in (gateway, constructor, orch, core):
        assert not [e for e in client.errors if "violation" in e.lower()], client.errors


async def test_wrong_password_is_refused(server: EmbeddedNats) -> None:
    with pytest.raises(Exception):  # noqa: B017 - authorization violation
        await nats.connect(
            server.url,
            user="orchestrator",
            password="not-it",
            max_reconnect_attempts=0,
            allow_reconnect=False,
            connect_timeout=2,
        )
