-- Context service: an append-only log of context writes (the source of truth, replayable),
-- the current version of every key (a projection of that log, written in the same
-- transaction), and the access audit. Sensitive values live only as Fernet ciphertext.

CREATE TABLE IF NOT EXISTS context_events (
    event_id        bigserial PRIMARY KEY,
    scope           text        NOT NULL,
    scope_id        text        NOT NULL,
    key             text        NOT NULL,
    version         integer     NOT NULL CHECK (version >= 1),
    value           jsonb,
    ciphertext      bytea,
    classification  text        NOT NULL,
    sensitive       boolean     NOT NULL,
    size_bytes      integer     NOT NULL,
    written_by      text        NOT NULL,
    workflow_id     text,
    task_id         text,
    written_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (scope, scope_id, key, version),
    CHECK ((value IS NULL) <> (ciphertext IS NULL)),
    CHECK (NOT sensitive OR value IS NULL)
);

CREATE TABLE IF NOT EXISTS context_current (
    scope           text        NOT NULL,
    scope_id        text        NOT NULL,
    key             text        NOT NULL,
    version         integer     NOT NULL,
    event_id        bigint      NOT NULL REFERENCES context_events (event_id),
    value           jsonb,
    ciphertext      bytea,
    classification  text        NOT NULL,
    sensitive       boolean     NOT NULL,
    size_bytes      integer     NOT NULL,
    written_by      text        NOT NULL,
    written_at      timestamptz NOT NULL,
    PRIMARY KEY (scope, scope_id, key),
    CHECK ((value IS NULL) <> (ciphertext IS NULL)),
    CHECK (NOT sensitive OR value IS NULL)
);

-- The key lists of read views, stored once and referenced by digest: an agent re-reading the
-- same view costs one small audit row, not another copy of a thousand key names.
CREATE TABLE IF NOT EXISTS context_keysets (
    digest          bytea PRIMARY KEY,
    keys            text[]      NOT NULL
);

CREATE TABLE IF NOT EXISTS context_audit (
    id              bigserial PRIMARY KEY,
    agent_id        text        NOT NULL,
    workflow_id     text,
    task_id         text,
    operation       text        NOT NULL,
    scope           text,
    scope_id        text,
    keys            text[]      NOT NULL DEFAULT '{}',
    keyset          bytea REFERENCES context_keysets (digest),
    denied_count    integer     NOT NULL DEFAULT 0,
    decision        text        NOT NULL CHECK (decision IN ('allow', 'deny')),
    reason          text,
    at              timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX IF NOT EXISTS context_audit_workflow ON context_audit (workflow_id, id);
CREATE INDEX IF NOT EXISTS context_audit_agent ON context_audit (agent_id, id);
