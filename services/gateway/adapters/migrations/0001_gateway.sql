-- The gateway's own tables: the security audit trail, idempotent submissions and webhook
-- deliveries. Read models belong to the orchestrator; the gateway only reads them.

CREATE TABLE IF NOT EXISTS audit_log (
    id bigserial PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT now(),
    actor text NOT NULL,
    roles text[] NOT NULL DEFAULT '{}',
    action text NOT NULL,
    resource text NOT NULL DEFAULT '',
    outcome text NOT NULL CHECK (outcome IN ('allowed', 'denied', 'failed')),
    reason text,
    ip text,
    user_agent text,
    details jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX IF NOT EXISTS audit_log_actor_at_idx ON audit_log (actor, at);
CREATE INDEX IF NOT EXISTS audit_log_resource_idx ON audit_log (resource);

CREATE TABLE IF NOT EXISTS gateway_idempotency (
    owner text NOT NULL,
    key text NOT NULL,
    request_hash text NOT NULL,
    workflow_id text NOT NULL,
    command jsonb NOT NULL,
    response jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (owner, key)
);

CREATE TABLE IF NOT EXISTS webhook_deliveries (
    id bigserial PRIMARY KEY,
    workflow_id text NOT NULL,
    position integer NOT NULL,
    event_type text NOT NULL,
    url text NOT NULL,
    payload bytea NOT NULL,
    attempts integer NOT NULL DEFAULT 0,
    status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed', 'refused')),
    last_status_code integer,
    last_error text,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    created_at timestamptz NOT NULL DEFAULT now(),
    delivered_at timestamptz,
    CONSTRAINT webhook_deliveries_once UNIQUE (workflow_id, position, url)
);
CREATE INDEX IF NOT EXISTS webhook_deliveries_due_idx ON webhook_deliveries (next_attempt_at)
    WHERE status = 'pending';

-- how far the webhook dispatcher has read the global event log
CREATE TABLE IF NOT EXISTS gateway_cursor (
    name text PRIMARY KEY,
    position bigint NOT NULL DEFAULT 0
);
