"""Pure rules of the gateway: who may do what, rate limits, cursors, webhook signing and the
mapping of stored workflow events to WebSocket status frames. No I/O here."""
