-- The event store: events with a gap-free global position, the transactional outbox,
-- snapshots and the checkpoints of relays/projectors. Applied with search_path set to the
-- store's schema, so names are unqualified.

-- The single row that hands out global positions. An appending transaction increments it as its
-- last statement before COMMIT; the row lock it takes is held until commit, so positions are
-- handed out in commit order and a rolled-back transaction gives its numbers back.
CREATE TABLE event_position (
    id smallint PRIMARY KEY CHECK (id = 1),
    last bigint NOT NULL CHECK (last >= 0)
);
INSERT INTO event_position (id, last) VALUES (1, 0);

CREATE TABLE events (
    position bigint PRIMARY KEY,
    stream_id text NOT NULL,
    version integer NOT NULL CHECK (version > 0),
    event_id text NOT NULL,
    type text NOT NULL,
    data jsonb NOT NULL,
    metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT events_stream_version_key UNIQUE (stream_id, version),
    CONSTRAINT events_event_id_key UNIQUE (event_id)
);

CREATE TABLE outbox (
    id bigserial PRIMARY KEY,
    message_id text NOT NULL,
    subject text NOT NULL,
    payload bytea NOT NULL,
    headers jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz,
    attempts integer NOT NULL DEFAULT 0,
    last_error text,
    retry_at timestamptz,  -- a failed publish is not retried before this
    CONSTRAINT outbox_message_id_key UNIQUE (message_id)
);
-- the relay's work list stays small however long published rows are kept
CREATE INDEX outbox_unpublished_idx ON outbox (id) WHERE published_at IS NULL;
CREATE INDEX outbox_published_at_idx ON outbox (published_at) WHERE published_at IS NOT NULL;

CREATE TABLE snapshots (
    stream_id text PRIMARY KEY,
    version integer NOT NULL CHECK (version > 0),
    state jsonb NOT NULL,
    saved_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE checkpoints (
    name text PRIMARY KEY,
    position bigint NOT NULL DEFAULT 0 CHECK (position >= 0),
    updated_at timestamptz NOT NULL DEFAULT now()
);
