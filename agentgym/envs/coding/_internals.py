"""Interpreter internals that the code under test may not reach, named once for two layers.

The diff scan (:mod:`agentgym.envs.coding.integrity`) flags these names in the agent's
source; the test harness (``_runner.py``) flags reads of them while the tests run, through
the interpreter's ``object.__getattr__`` audit events. The harness gets this file's source in
front of its own (see :data:`agentgym.envs.coding.harness.RUNNER_SOURCE`), so it stays free
of imports and holds constants only.
"""

FRAME_ATTRS = frozenset({"f_code", "f_back", "f_locals", "f_globals", "tb_frame", "gi_frame", "cr_frame", "ag_frame"})
"""Attributes that lead from a frame, traceback, generator or coroutine to the stack and its variables."""
