"""Local web apps for browser agents: a shop, an admin console and a clinic, and ``WebApp-v0`` on them.

* :mod:`~agentgym.envs.webapps.server`: one loopback HTTP server, a fresh SQLite database per episode.
* :mod:`~agentgym.envs.webapps.shop`, :mod:`~agentgym.envs.webapps.admin`,
  :mod:`~agentgym.envs.webapps.clinic`: the apps' routes; ``templates/``: their Jinja2 pages.
* :mod:`~agentgym.envs.webapps.fixtures`: the seeded starting state.
* :mod:`~agentgym.envs.webapps.tasks`: the task templates and their graders;
  :mod:`~agentgym.envs.webapps.oracles`: their reference solutions.
* :mod:`~agentgym.envs.webapps.env`: :class:`WebAppEnv` (``agentgym/WebApp-v0``).
"""

from agentgym.envs.webapps.env import WebAppEnv
from agentgym.envs.webapps.server import AppServer

__all__ = ["AppServer", "WebAppEnv"]
