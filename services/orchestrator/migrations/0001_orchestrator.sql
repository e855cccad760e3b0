-- The orchestrator's read models and durable timers. Applied with search_path set to the
-- store's schema, so names are unqualified.

CREATE TABLE workflow_read_model (
    workflow_id text PRIMARY KEY,
    owner text,
    request_type text,
    current_state text NOT NULL,
    priority text,
    submitted_at timestamptz,
    updated_at timestamptz NOT NULL DEFAULT now(),
    version integer NOT NULL DEFAULT 0,
    document jsonb NOT NULL
);
CREATE INDEX workflow_read_model_owner_idx ON workflow_read_model (owner, submitted_at DESC);
CREATE INDEX workflow_read_model_active_idx ON workflow_read_model (current_state)
    WHERE current_state IN ('pending', 'running', 'paused');

CREATE TABLE workflow_result (
    workflow_id text PRIMARY KEY,
    document jsonb NOT NULL
);

CREATE TABLE agent_performance (
    agent_id text NOT NULL,
    task_type text NOT NULL,
    completed integer NOT NULL DEFAULT 0,
    failed integer NOT NULL DEFAULT 0,
    total_seconds double precision NOT NULL DEFAULT 0,
    PRIMARY KEY (agent_id, task_type)
);

-- Task deadlines, heartbeats, retry backoff and workflow timeouts: rows, not sleeps, so they
-- survive restarts. A workflow's rows are replaced with every decision that changes it.
CREATE TABLE timers (
    workflow_id text NOT NULL,
    timer_id text NOT NULL,
    due_at timestamptz NOT NULL,
    kind text NOT NULL,
    payload jsonb NOT NULL DEFAULT '{}'::jsonb,
    PRIMARY KEY (workflow_id, timer_id)
);
CREATE INDEX timers_due_idx ON timers (due_at);
