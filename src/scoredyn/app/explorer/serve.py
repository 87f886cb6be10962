"""``serve``: show a page over HTTP on 127.0.0.1 only, serving files of its own folder and nothing else.

Requests are mapped below the folder and refused (403) when the resolved path leaves it (``..``, encoded
``%2e%2e``, symbolic links pointing out); directories are not listed (``/`` is the page itself).
The server is quiet: no request log, and a client that goes away mid-response (a closed tab, a
reload) prints nothing. Ctrl-C (SIGINT) stops the server and returns normally.
"""

from __future__ import annotations

import os
import posixpath
import signal
import socket
import sys
import threading
import urllib.parse
import webbrowser
from functools import partial
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

__all__ = ["check_port", "make_server", "serve"]

HOST = "127.0.0.1"
#: What a client that disconnects mid-response raises in the server: normal for a browser, not an error.
DISCONNECTS = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError)


class _PageHandler(SimpleHTTPRequestHandler):
    """Static files of one folder; ``/`` is the page."""

    def __init__(self, *args, page: str, **kwargs) -> None:
        self.page = page
        super().__init__(*args, **kwargs)

    def send_head(self):
        target = self._resolve(self.path)
        if target is None:
            self.send_error(HTTPStatus.FORBIDDEN, "outside the served folder")
            return None
        if not target.is_file():
            self.send_error(HTTPStatus.NOT_FOUND, "no such file")
            return None
        self.path = "/" + urllib.parse.quote(target.relative_to(self.directory).as_posix())
        return super().send_head()

    def _resolve(self, raw: str) -> Path | None:
        """The file a request names, or ``None`` when it would lie outside the folder."""
        try:
            path = urllib.parse.unquote(raw.split("?", 1)[0].split("#", 1)[0], errors="strict")
        except UnicodeDecodeError:
            return None
        if "\x00" in path or "\\" in path:
            return None
        if path in ("", "/"):
            path = "/" + self.page
        parts = path.split("/")
        if any(part == ".." for part in parts):
            return None
        root = Path(self.directory).resolve()
        target = (root / posixpath.normpath(path).lstrip("/")).resolve()
        return target if target == root or root in target.parents else None

    def list_directory(self, path):  # never list folders
        self.send_error(HTTPStatus.NOT_FOUND, "no such file")
        return None

    def do_POST(self):
        self.send_error(HTTPStatus.METHOD_NOT_ALLOWED)

    def log_message(self, format, *args):  # keep the terminal to the one URL line
        pass


class _QuietServer(ThreadingHTTPServer):
    """Drops the traceback of a client that disconnected; every other error is reported as usual."""

    def handle_error(self, request, client_address) -> None:
        if isinstance(sys.exc_info()[1], DISCONNECTS):
            return
        super().handle_error(request, client_address)


def check_port(port: int) -> int:
    """``port`` if the server can listen there: an integer in 0..65535 (0: a free one) that is free on
    127.0.0.1 now; else ``ValueError`` naming it."""
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ValueError(f"port must be an integer in 0..65535, got {port!r}")
    if port:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server binds
            try:
                probe.bind((HOST, port))
            except OSError as e:
                raise ValueError(f"cannot serve on {HOST}:{port}: {e.strerror or e}") from None
    return port


def make_server(path: str | os.PathLike, *, port: int = 0) -> tuple[ThreadingHTTPServer, str]:
    """A server for the page ``path`` bound to ``127.0.0.1:port`` (``0``: a free port), and its URL."""
    page = Path(path)
    if not page.is_file():
        raise ValueError(f"no such page: {page}")
    check_port(port)
    folder = page.resolve().parent
    handler = partial(_PageHandler, page=page.name, directory=str(folder))
    try:
        server = _QuietServer((HOST, port), handler)
    except OSError as e:  # taken between the check and now
        raise ValueError(f"cannot serve on {HOST}:{port}: {e.strerror or e}") from None
    url = f"http://{HOST}:{server.server_address[1]}/{urllib.parse.quote(page.name)}"
    return server, url


def serve(path: str | os.PathLike, *, port: int = 0, open_browser: bool = False) -> None:
    """Serve the page ``path`` (and only files of its folder) on ``127.0.0.1`` until Ctrl-C.

    Prints ``serving <path> at <url> (Ctrl-C to stop)`` to stdout, then blocks; on Ctrl-C (SIGINT)
    it closes the socket, prints ``stopped`` and returns.

    Args:
        path: the HTML file.
        port: the port; 0 picks a free one.
        open_browser: also open the URL in the default browser.
    """
    server, url = make_server(path, port=port)
    if threading.current_thread() is threading.main_thread():
        # a process started in the background by a shell inherits SIGINT ignored: Ctrl-C must still stop us
        signal.signal(signal.SIGINT, signal.default_int_handler)
    print(f"serving {path} at {url} (Ctrl-C to stop)", flush=True)
    if open_browser:
        webbrowser.open(url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr, flush=True)
    finally:
        server.server_close()
