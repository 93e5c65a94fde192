"""A read-only static file server for one directory, on 127.0.0.1 and a free port.

It gives the task's pages a real origin, so relative URLs, MIME types, cookies and
``localStorage`` behave as on the web (fulfilling requests from a route would fake an
origin and need its own MIME and 404 handling).
"""

from __future__ import annotations

import functools
import http.server
import threading
from pathlib import Path
from typing import Any


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Serves files with ``no-store`` caching, no directory listings and no log lines."""

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def list_directory(self, path: str | Path) -> None:  # type: ignore[override]  # 404 instead of a listing
        self.send_error(404, "No directory listings")

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-store")
        super().end_headers()


class FileServer:
    """Serves ``root`` at :attr:`origin` on a daemon thread until :meth:`close`."""

    def __init__(self, root: Path):
        handler = functools.partial(_QuietHandler, directory=str(root))
        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self.port: int = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name=f"agentgym-browser-http-{self.port}", daemon=True
        )
        self._thread.start()

    @property
    def origin(self) -> str:
        """``http://127.0.0.1:<port>``, without a trailing slash."""
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        """Stop serving and release the port."""
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)
