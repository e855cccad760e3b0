"""The HTTP and WebSocket surface of the gateway (FastAPI)."""
