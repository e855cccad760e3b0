"""Read the policy file named by the settings (or the packaged default) into a ``Policy``."""

from __future__ import annotations

from pathlib import Path

from taskloom.context.domain.errors import PolicyError
from taskloom.context.domain.policy import Policy
from taskloom.context.domain.policy_loader import parse_policy

__all__ = ["DEFAULT_POLICY_FILE", "load_policy_file"]

# deploy/policies/context-policies.yaml of the repository
DEFAULT_POLICY_FILE = Path(__file__).resolve().parents[3] / "deploy" / "policies" / "context-policies.yaml"


def load_policy_file(path: Path | None) -> Policy:
    source = Path(path) if path is not None else DEFAULT_POLICY_FILE
    try:
        text = source.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(f"policy file {source} cannot be read: {exc.strerror or exc}") from None
    return parse_policy(text, source=str(source))
