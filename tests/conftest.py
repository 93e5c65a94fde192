"""Shared test configuration.

In CI (CI=true) nothing the project needs may be skipped: see ``agentgym.testing.require``.
"""
