"""Warm pools: started sandboxes kept ready so an episode never waits for a start."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from .base import Sandbox, SandboxConfig, SandboxError


class SandboxPool:
    """Keeps ``size`` started sandboxes from ``factory`` ready to hand out.

    :meth:`acquire` takes a ready one (a queue pop when the pool is warm) and a
    background worker starts its replacement. Sandboxes are never reused: the one you
    get is fresh, and closing it (``close()`` or :meth:`release`) destroys it.
    """

    def __init__(self, factory: Callable[[], Sandbox], size: int = 4, workers: int = 2) -> None:
        if size < 1:
            raise ValueError("size must be at least 1")
        self._factory = factory
        self.size = size
        self._ready: queue.Queue[Sandbox] = queue.Queue()
        self._errors: queue.Queue[BaseException] = queue.Queue()
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="agentgym-pool")
        self._closed = False
        self._lock = threading.Lock()
        for _ in range(size):
            self._executor.submit(self._fill)

    def _fill(self) -> None:
        if self._closed:
            return
        try:
            sandbox = self._factory()
        except BaseException as e:  # surfaced by acquire()
            self._errors.put(e)
            return
        with self._lock:
            if self._closed:  # closed by another thread while the sandbox started
                sandbox.close()  # type: ignore[unreachable]  # (mypy keeps self._closed narrowed from above)
                return
            self._ready.put(sandbox)

    def acquire(self, files: str | Path | None = None, timeout: float = 120.0) -> Sandbox:
        """A started sandbox (with ``files`` uploaded and snapshotted, if given)."""
        if self._closed:
            raise SandboxError("the pool is closed")
        try:
            sandbox = self._ready.get_nowait()
        except queue.Empty:
            try:
                error = self._errors.get_nowait()
                self._executor.submit(self._fill)
                raise SandboxError(f"the pool could not start a sandbox: {error}") from error
            except queue.Empty:
                pass
            try:
                sandbox = self._ready.get(timeout=timeout)
            except queue.Empty:
                raise SandboxError(f"no sandbox became ready within {timeout} s; raise the pool size") from None
        self._executor.submit(self._fill)
        if files is not None:
            try:
                sandbox.upload(files)
                sandbox.snapshot()
            except BaseException:
                self.release(sandbox)
                raise
        return sandbox

    def release(self, sandbox: Sandbox) -> None:
        """Destroy ``sandbox`` in the background (its replacement is already coming)."""
        if self._closed:
            sandbox.close()
        else:
            self._executor.submit(sandbox.close)

    @property
    def ready(self) -> int:
        """How many started sandboxes are waiting."""
        return self._ready.qsize()

    def wait_ready(self, timeout: float = 120.0) -> None:
        """Block until the pool is full (e.g. before timing an episode)."""
        deadline = time.monotonic() + timeout
        while self._ready.qsize() < self.size:
            if not self._errors.empty():
                raise SandboxError(f"the pool could not start a sandbox: {self._errors.get()}")
            if time.monotonic() > deadline:
                raise SandboxError(f"the pool did not fill within {timeout} s")
            time.sleep(0.01)

    def close(self) -> None:
        """Destroy the waiting sandboxes and stop refilling; idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._executor.shutdown(wait=True)
        while True:
            try:
                self._ready.get_nowait().close()
            except queue.Empty:
                break

    def __enter__(self) -> SandboxPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class DockerPool(SandboxPool):
    """A warm pool of :class:`~agentgym.sandboxes.DockerSandbox` (acquire in ~1 ms).

    ``kwargs`` go to every :class:`~agentgym.sandboxes.DockerSandbox` it starts, e.g.
    ``DockerPool(size=2, workdir="/app", extra_dirs=("/tests", "/logs"))``.
    """

    def __init__(
        self,
        size: int = 4,
        image: str | None = None,
        config: SandboxConfig | None = None,
        workers: int = 2,
        **kwargs: Any,
    ) -> None:
        from .docker import DockerSandbox
        from .image import DEFAULT_IMAGE

        image = image or DEFAULT_IMAGE
        super().__init__(lambda: DockerSandbox(image, config=config, **kwargs), size=size, workers=workers)
