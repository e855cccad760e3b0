"""Per-service NATS users and permissions, generated from ``taskloom.contracts.subjects`` so the
docker-compose file, the Helm chart and the embedded stack all enforce the same rights."""

from taskloom.natsauth.permissions import (
    ADMIN_USER,
    DEFAULT_AGENT_GROUPS,
    DENIED_JS_API,
    SERVICES,
    NatsUser,
    Permissions,
    admin_permissions,
    agent_common_permissions,
    agent_group_permissions,
    agent_group_user,
    agent_permissions,
    password_env,
    service_permissions,
    users_for,
)
from taskloom.natsauth.render import (
    CHART_PLACEHOLDERS,
    authorization_block,
    chart_permissions,
    default_users,
    expand_placeholders,
    generate_passwords,
    permissions_text,
    server_config,
)

__all__ = [
    "ADMIN_USER",
    "CHART_PLACEHOLDERS",
    "DEFAULT_AGENT_GROUPS",
    "DENIED_JS_API",
    "SERVICES",
    "NatsUser",
    "Permissions",
    "admin_permissions",
    "agent_common_permissions",
    "agent_group_permissions",
    "agent_group_user",
    "agent_permissions",
    "authorization_block",
    "chart_permissions",
    "default_users",
    "expand_placeholders",
    "generate_passwords",
    "password_env",
    "permissions_text",
    "server_config",
    "service_permissions",
    "users_for",
]
