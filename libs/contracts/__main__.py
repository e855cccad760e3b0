"""``python -m taskloom.contracts [DIR]``: write the JSON Schemas of every contract."""

from __future__ import annotations

import sys
from pathlib import Path

from taskloom.contracts.schema import SCHEMA_DIR, write_schemas


def main() -> None:
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else SCHEMA_DIR
    for path in write_schemas(target):
        print(path)


if __name__ == "__main__":
    main()
