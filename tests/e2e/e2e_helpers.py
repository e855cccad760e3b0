"""What the end-to-end tests need installed, and the skip that says so."""

from __future__ import annotations

import pytest

from taskloom.cli.devstack import SERVICES, service_available

MISSING = [name for name in SERVICES if not service_available(name)]
needs_full_stack = pytest.mark.skipif(
    bool(MISSING), reason=f"the end-to-end flow needs every service; not installed yet: {', '.join(MISSING)}"
)
