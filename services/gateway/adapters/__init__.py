"""Thin I/O adapters of the gateway: PostgreSQL (audit, idempotency, webhook deliveries, read
models), NATS (commands, event subscriptions, the agent registry, the context service) and
outbound HTTP (webhooks)."""
