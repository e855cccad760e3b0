-- Webhook targets are recorded by the gateway at submission (after the SSRF check), per bus
-- namespace, so that installations sharing one database never deliver each other's webhooks.
CREATE TABLE IF NOT EXISTS webhook_subscriptions (
    workflow_id text PRIMARY KEY,
    namespace text NOT NULL,
    url text NOT NULL,
    events text[] NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE webhook_deliveries ADD COLUMN IF NOT EXISTS namespace text NOT NULL DEFAULT '';
CREATE INDEX IF NOT EXISTS webhook_deliveries_ns_due_idx ON webhook_deliveries (namespace, next_attempt_at)
    WHERE status = 'pending';
