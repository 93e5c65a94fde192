"""Packages: envs/, sandboxes/ and trainer/ are top-level folders installed as
agentgym.envs, agentgym.sandboxes and agentgym.trainer (nothing installs a bare
``envs`` or ``trainer`` package)."""

from setuptools import find_packages, setup

MAPPED = {"agentgym": "agentgym", "agentgym.envs": "envs", "agentgym.sandboxes": "sandboxes", "agentgym.trainer": "trainer"}

packages = []
for name, folder in MAPPED.items():
    packages.append(name)
    packages += [f"{name}.{sub}" for sub in find_packages(folder)]

setup(packages=packages, package_dir=MAPPED)
