"""Packages: envs/, sandboxes/ and trainer/ are top-level folders installed as
agentgym.envs, agentgym.sandboxes and agentgym.trainer (nothing installs a bare
``envs`` or ``trainer`` package)."""

from pathlib import Path

from setuptools import find_packages, setup

ROOT = Path(__file__).parent
MAPPED = {
    name: folder
    for name, folder in {"agentgym": "agentgym", "agentgym.envs": "envs", "agentgym.sandboxes": "sandboxes", "agentgym.trainer": "trainer"}.items()
    if (ROOT / folder / "__init__.py").exists()
}

packages = []
for name, folder in MAPPED.items():
    packages.append(name)
    packages += [f"{name}.{sub}" for sub in find_packages(folder)]

setup(packages=packages, package_dir=MAPPED)
