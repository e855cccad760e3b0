"""Maps every folder of libs/ and services/ into the one ``taskloom.*`` import namespace.

``libs/contracts`` becomes ``taskloom.contracts``, ``services/orchestrator`` becomes
``taskloom.orchestrator`` and so on; sub-packages are found automatically, so a new
module or folder needs no change here.
"""

from pathlib import Path

from setuptools import find_packages, setup

ROOT = Path(__file__).parent
package_dir: dict[str, str] = {}
packages: list[str] = []
for group in ("libs", "services"):
    for folder in sorted((ROOT / group).iterdir()):
        if not (folder / "__init__.py").is_file():
            continue
        name = f"taskloom.{folder.name}"
        package_dir[name] = f"{group}/{folder.name}"
        packages.append(name)
        packages.extend(f"{name}.{sub}" for sub in find_packages(str(folder)))

setup(package_dir=package_dir, packages=packages)
