"""The SQL of the event store, rendered once per schema (asyncpg ``$n`` parameters).

Appends are one statement each: the idempotency check, the optimistic version check, the
position counter, the event insert, the outbox insert and the NOTIFYs all happen in a single
round trip (see ``store`` for why positions come from a counter row).
"""

from __future__ import annotations

# ruff: noqa: S608 - the only interpolated name is the schema, validated by quote_ident
from dataclasses import dataclass

from taskloom.eventstore.migrator import quote_ident

__all__ = ["Statements"]

_EVENT_COLUMNS = "position, stream_id, version, event_id, type, data, metadata, recorded_at"


def _outboxed(s: str, first: int, where: str = "") -> str:
    """The CTE that stores outbox rows from four array parameters starting at ``$first``
    (ids, subjects, payloads, headers as JSON text); ids already stored are skipped."""
    ids, subjects, payloads, headers = (f"${first + i}" for i in range(4))
    condition = f"\n    {where}" if where else ""
    return f"""outboxed AS (
    INSERT INTO {s}.outbox (message_id, subject, payload, headers)
    SELECT o.message_id, o.subject, o.payload, o.headers::jsonb
    FROM unnest({ids}::text[], {subjects}::text[], {payloads}::bytea[], {headers}::text[])
         WITH ORDINALITY AS o(message_id, subject, payload, headers, n){condition}
    ORDER BY o.n
    ON CONFLICT (message_id) DO NOTHING
    RETURNING message_id
)"""


@dataclass(frozen=True, slots=True)
class Statements:
    schema: str
    append: str
    append_many: str
    add_outbox: str
    lock_counter: str
    read_stream: str
    read_streams: str
    load_snapshots: str
    read_all: str
    stream_version: str
    head_position: str
    save_snapshot: str
    load_snapshot: str
    load_checkpoint: str
    save_checkpoint: str
    outbox_claim: str
    outbox_claim_ids: str
    outbox_mark_published: str
    outbox_mark_failed: str
    outbox_purge: str
    outbox_requeue: str
    outbox_pending: str
    checkpoint_ensure: str
    checkpoint_lock_read: str
    outbox_channel: str
    events_channel: str

    @classmethod
    def for_schema(cls, schema: str) -> Statements:
        s = quote_ident(schema)
        return cls(
            schema=schema,
            # $1 stream_id, $2 expected version (NULL = ANY), $3..$6 the events' ids, types,
            # data and metadata (JSON text), $7..$10 the outbox rows, $11/$12 NOTIFY channels.
            # Result: the stream's version as this statement saw it, how many events went in,
            # the last position, the duplicates found, one event id stored in another stream (if
            # any), and the outbox message ids stored.
            append=f"""
WITH input AS (
    SELECT t.event_id, t.type, t.data, t.metadata, t.n
    FROM unnest($3::text[], $4::text[], $5::text[], $6::text[])
         WITH ORDINALITY AS t(event_id, type, data, metadata, n)
),
stored AS (
    SELECT e.event_id, e.stream_id FROM {s}.events e WHERE e.event_id = ANY($3::text[])
),
fresh AS (
    SELECT i.event_id, i.type, i.data, i.metadata, row_number() OVER (ORDER BY i.n) AS k
    FROM input i
    WHERE NOT EXISTS (SELECT 1 FROM stored d WHERE d.event_id = i.event_id)
),
head AS (
    SELECT coalesce(max(e.version), 0) AS version FROM {s}.events e WHERE e.stream_id = $1
),
accepted AS (
    SELECT h.version, (SELECT count(*) FROM fresh) AS n
    FROM head h
    WHERE ($2::integer IS NULL OR h.version = $2::integer)
      AND EXISTS (SELECT 1 FROM fresh)
      AND NOT EXISTS (SELECT 1 FROM stored d WHERE d.stream_id <> $1)
),
counter AS (
    UPDATE {s}.event_position p SET last = p.last + a.n
    FROM accepted a
    WHERE p.id = 1
    RETURNING p.last
),
inserted AS (
    INSERT INTO {s}.events (position, stream_id, version, event_id, type, data, metadata)
    SELECT c.last - a.n + f.k, $1, a.version + f.k, f.event_id, f.type, f.data::jsonb, f.metadata::jsonb
    FROM fresh f CROSS JOIN accepted a CROSS JOIN counter c
    ORDER BY f.k
    RETURNING position
),
{_outboxed(s, 7, "WHERE EXISTS (SELECT 1 FROM accepted)")}
SELECT
    (SELECT version FROM head) AS head_version,
    (SELECT count(*) FROM inserted) AS appended,
    (SELECT max(position) FROM inserted) AS last_position,
    (SELECT count(*) FROM stored) AS duplicates,
    (SELECT d.event_id || ' ' || d.stream_id FROM stored d WHERE d.stream_id <> $1 LIMIT 1) AS foreign_id,
    ARRAY(SELECT message_id FROM outboxed) AS message_ids,
    CASE WHEN EXISTS (SELECT 1 FROM outboxed) THEN pg_notify($11, '') END AS outbox_notified,
    CASE WHEN EXISTS (SELECT 1 FROM inserted) THEN pg_notify($12, '') END AS events_notified
""",
            # One statement, its own transaction: events of several streams at versions the
            # caller computed (expected + k), so a stale expectation collides with the unique
            # (stream_id, version) index and the whole statement — with every fused CTE — rolls
            # back. $1..$6 the events (stream ids, versions, ids, types, data, metadata), $7..$10
            # the outbox rows, $11 the number of events, $12/$13 NOTIFY channels ('' for none),
            # $14 outbox message ids to mark published (published by the caller after an earlier
            # commit); fused CTEs take their parameters from $15 on ({extra} is where they go).
            append_many=f"""
WITH input AS (
    SELECT t.stream_id, t.version, t.event_id, t.type, t.data, t.metadata, t.n
    FROM unnest($1::text[], $2::int[], $3::text[], $4::text[], $5::text[], $6::text[])
         WITH ORDINALITY AS t(stream_id, version, event_id, type, data, metadata, n)
),
counter AS (
    UPDATE {s}.event_position p SET last = p.last + $11::int
    WHERE p.id = 1 AND $11::int > 0
    RETURNING p.last
),
inserted AS (
    INSERT INTO {s}.events (position, stream_id, version, event_id, type, data, metadata)
    SELECT c.last - $11::int + i.n, i.stream_id, i.version, i.event_id, i.type, i.data::jsonb,
           i.metadata::jsonb
    FROM input i CROSS JOIN counter c
    ORDER BY i.n
    RETURNING position
),
{_outboxed(s, 7)},
marked AS (
    -- rows a relay holds right now are left to it rather than waited for
    UPDATE {s}.outbox o
    SET published_at = now(), attempts = o.attempts + 1, last_error = NULL, retry_at = NULL
    FROM (SELECT id FROM {s}.outbox WHERE message_id = ANY($14::text[]) AND published_at IS NULL
          FOR UPDATE SKIP LOCKED) AS m
    WHERE o.id = m.id
    RETURNING 1
){{extra}}
SELECT
    (SELECT max(position) FROM inserted) AS last_position,
    ARRAY(SELECT message_id FROM outboxed) AS message_ids,
    CASE WHEN $12::text <> '' AND EXISTS (SELECT 1 FROM outboxed) THEN pg_notify($12, '') END
        AS outbox_notified,
    CASE WHEN $13::text <> '' AND EXISTS (SELECT 1 FROM inserted) THEN pg_notify($13, '') END
        AS events_notified,
    (SELECT count(*) FROM marked) AS marked
""",
            add_outbox=f"""
WITH {_outboxed(s, 1)}
SELECT ARRAY(SELECT message_id FROM outboxed) AS message_ids,
       CASE WHEN EXISTS (SELECT 1 FROM outboxed) THEN pg_notify($5, '') END AS notified
""",
            lock_counter=f"SELECT last FROM {s}.event_position WHERE id = 1 FOR UPDATE",
            read_stream=f"""SELECT {_EVENT_COLUMNS} FROM {s}.events
WHERE stream_id = $1 AND version >= $2 AND version <= $3 ORDER BY version""",
            # $1 stream ids, $2 the version each is known up to: the events after it, by stream
            read_streams=f"""SELECT e.position, e.stream_id, e.version, e.event_id, e.type, e.data,
       e.metadata, e.recorded_at
FROM unnest($1::text[], $2::int[]) AS k(stream_id, after)
JOIN {s}.events e ON e.stream_id = k.stream_id AND e.version > k.after
ORDER BY e.stream_id, e.version""",
            load_snapshots=f"""SELECT stream_id, version, state, saved_at FROM {s}.snapshots
WHERE stream_id = ANY($1::text[])""",
            read_all=f"""SELECT {_EVENT_COLUMNS} FROM {s}.events
WHERE position > $1 ORDER BY position LIMIT $2""",
            stream_version=f"SELECT coalesce(max(version), 0) FROM {s}.events WHERE stream_id = $1",
            head_position=f"SELECT last FROM {s}.event_position WHERE id = 1",
            save_snapshot=f"""INSERT INTO {s}.snapshots AS t (stream_id, version, state)
VALUES ($1, $2, $3::text::jsonb)
ON CONFLICT (stream_id) DO UPDATE SET version = excluded.version, state = excluded.state, saved_at = now()
WHERE t.version <= excluded.version""",
            load_snapshot=f"""SELECT stream_id, version, state, saved_at FROM {s}.snapshots
WHERE stream_id = $1""",
            load_checkpoint=f"SELECT position FROM {s}.checkpoints WHERE name = $1",
            save_checkpoint=f"""INSERT INTO {s}.checkpoints (name, position) VALUES ($1, $2)
ON CONFLICT (name) DO UPDATE SET position = excluded.position, updated_at = now()""",
            # a claim is a row lock held until the claiming transaction ends; SKIP LOCKED lets
            # another relay take the next rows instead of waiting
            outbox_claim=f"""SELECT id, message_id, subject, payload, headers, attempts FROM {s}.outbox
WHERE published_at IS NULL AND (retry_at IS NULL OR retry_at <= now())
  AND created_at <= now() - make_interval(secs => $2)
ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED""",
            outbox_claim_ids=f"""SELECT id, message_id, subject, payload, headers, attempts FROM {s}.outbox
WHERE published_at IS NULL AND message_id = ANY($2::text[])
ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED""",
            outbox_mark_published=f"""UPDATE {s}.outbox
SET published_at = now(), attempts = attempts + 1, last_error = NULL, retry_at = NULL
WHERE id = ANY($1::bigint[])""",
            outbox_mark_failed=f"""UPDATE {s}.outbox AS o
SET attempts = o.attempts + 1, last_error = f.error, retry_at = now() + make_interval(secs => f.delay)
FROM unnest($1::bigint[], $2::text[], $3::float8[]) AS f(id, error, delay)
WHERE o.id = f.id""",
            outbox_purge=f"""DELETE FROM {s}.outbox
WHERE published_at IS NOT NULL AND published_at < now() - make_interval(secs => $1)""",
            outbox_requeue=f"""UPDATE {s}.outbox SET published_at = NULL, retry_at = NULL
WHERE published_at IS NOT NULL AND published_at >= $1""",
            outbox_pending=f"SELECT count(*) FROM {s}.outbox WHERE published_at IS NULL",
            checkpoint_ensure=f"INSERT INTO {s}.checkpoints (name) VALUES ($1) ON CONFLICT (name) DO NOTHING",
            # the checkpoint's row lock and the events after it in one round trip: no row when
            # another relay of this name holds the lock, one row of NULL events when none follow
            checkpoint_lock_read=f"""SELECT e.position, e.stream_id, e.version, e.event_id, e.type, e.data,
       e.metadata, e.recorded_at, c.position AS checkpoint
FROM (SELECT position FROM {s}.checkpoints WHERE name = $1 FOR UPDATE SKIP LOCKED) c
LEFT JOIN LATERAL (SELECT {_EVENT_COLUMNS} FROM {s}.events
                   WHERE position > c.position ORDER BY position LIMIT $2) e ON true
ORDER BY e.position""",
            outbox_channel=f"taskloom_outbox.{schema}",
            events_channel=f"taskloom_events.{schema}",
        )
