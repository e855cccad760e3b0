"""Runs one long-lived Taskloom service: logging, signals, and ``/health``, ``/ready``,
``/metrics`` over HTTP. Every service's ``__main__`` hands its service object to ``run_service``."""

from taskloom.runtime.service import ProbeResult, Service, probe_dependencies, run_loop, run_service, serve

__all__ = ["ProbeResult", "Service", "probe_dependencies", "run_loop", "run_service", "serve"]
