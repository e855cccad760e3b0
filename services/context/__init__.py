"""The context service: hierarchical context (global → project → workflow → task → agent) filtered
per agent by access policies, sensitive values encrypted at rest, every access audited."""

from taskloom.context.client import ContextClient, ContextRequestError, ContextUnavailable

__all__ = ["ContextClient", "ContextRequestError", "ContextUnavailable"]
