"""The gateway's own Prometheus metrics (the process-wide registry serves them on /metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

__all__ = ["HTTP_LATENCY", "HTTP_REQUESTS", "WS_CLIENTS", "WS_DROPPED", "WS_FRAMES"]

HTTP_REQUESTS = Counter(
    "taskloom_gateway_http_requests_total", "HTTP requests answered", ["method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "taskloom_gateway_http_request_seconds",
    "HTTP request latency",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
WS_CLIENTS = Gauge("taskloom_gateway_websocket_clients", "Open WebSocket status streams")
WS_FRAMES = Counter("taskloom_gateway_websocket_frames_total", "Status frames sent")
WS_DROPPED = Counter("taskloom_gateway_websocket_dropped_total", "Clients dropped", ["reason"])
