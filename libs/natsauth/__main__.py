"""``python -m taskloom.natsauth``: write the NATS users and permissions of one installation.

server-config   a complete nats.conf (docker-compose's deploy/nats/nats.conf)
authorization   only the ``authorization {}`` block, for a NATS server you configure yourself
chart-file      the Helm chart's files/nats-permissions.json (placeholders, no agent list)
passwords       fresh ``TASKLOOM_NATS_PASSWORD_<USER>=...`` lines for an .env file or Secret
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from taskloom.natsauth.permissions import DEFAULT_AGENT_GROUPS
from taskloom.natsauth.render import (
    authorization_block,
    chart_permissions,
    default_users,
    generate_passwords,
    server_config,
)


def _groups(specs: Sequence[str] | None) -> dict[str, tuple[str, ...]]:
    if not specs:
        return dict(DEFAULT_AGENT_GROUPS)
    groups: dict[str, tuple[str, ...]] = {}
    for spec in specs:
        name, sep, agents = spec.partition("=")
        ids = tuple(a.strip() for a in agents.split(",") if a.strip())
        if not sep or not name or not ids:
            raise SystemExit(f"--group wants NAME=agent_id[,agent_id...], got {spec!r}")
        groups[name] = ids
    return groups


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m taskloom.natsauth",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("what", choices=["server-config", "authorization", "chart-file", "passwords"])
    parser.add_argument("--namespace", default="taskloom", help="bus namespace (default taskloom)")
    parser.add_argument(
        "--group",
        action="append",
        metavar="NAME=a,b",
        help="an agent group and the agent ids it hosts (repeatable; default: "
        "builtin = the eight built-in specialists)",
    )
    parser.add_argument("--store-dir", default="/data/jetstream", help="JetStream storage folder")
    args = parser.parse_args(argv)
    users = default_users(args.namespace, _groups(args.group))
    if args.what == "server-config":
        out = server_config(users, store_dir=args.store_dir)
    elif args.what == "authorization":
        out = authorization_block(users)
    elif args.what == "chart-file":
        out = json.dumps(chart_permissions(), indent=2) + "\n"
    else:
        out = "".join(
            f"{u.password_env}={pw}\n"
            for u, pw in zip(users, generate_passwords(users).values(), strict=True)
        )
    sys.stdout.write(out)


if __name__ == "__main__":
    main()
