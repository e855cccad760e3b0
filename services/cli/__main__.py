"""``taskloom`` / ``python -m taskloom.cli``."""

from __future__ import annotations

from taskloom.cli.app import app


def main() -> None:
    app()


if __name__ == "__main__":
    main()
