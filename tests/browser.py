"""The browser tests' one setup (test_slides, test_lab): Debian's Chromium driven by Playwright, on loopback only.

- `chromium()`: the browser's path (a failure under CI, which installs it; a skip elsewhere);
- `launch()`: one headless Chromium with CHROMIUM_FLAGS (no GPU, no QUIC, no background traffic, and no host name
  but loopback resolves), for a module: Playwright's sync API allows one browser at a time in a thread;
  the `chromium_browser` fixture (conftest.py) is that browser, one per test module;
- `refuse_outside_loopback(context)`: every request and web socket that leaves loopback is refused and recorded;
- `serve(directory)`: a quiet HTTP server on 127.0.0.1 for a folder; `free_port()`: a loopback port nothing uses.
"""

import contextlib
import functools
import http.server
import shutil
import socket
import threading
from urllib.parse import urlsplit

import pytest

LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}  # urlsplit gives "::1"; some browsers report "[::1]"
CHROMIUM_FLAGS = ["--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync",
                  "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"]  # no name but loopback resolves


def chromium() -> str:
    """Debian's Chromium for the browser tests (a failure under CI, which installs it; a skip elsewhere)."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    from conftest import needed  # here, not at the top: conftest imports this module

    needed("no Chromium here: install Debian's chromium")


@contextlib.contextmanager
def launch():
    """A headless Chromium (Playwright's Browser) with CHROMIUM_FLAGS, closed on exit."""
    executable = chromium()
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install the dev extra (playwright)")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        try:
            yield browser
        finally:
            browser.close()


def is_loopback(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("data", "blob", "about") or parts.hostname in LOOPBACK


def refuse_outside_loopback(context) -> list[str]:
    """Refuse every request of a Playwright BrowserContext that leaves loopback, and every such web socket of its
    pages; returns the list the refused addresses are appended to (assert it is empty at the end)."""
    refused = []

    def guard(route):
        if is_loopback(route.request.url):
            route.continue_()
        else:
            refused.append(route.request.url)
            route.abort()

    context.route("**/*", guard)
    context.on("page", lambda page: page.on(
        "websocket", lambda ws: None if is_loopback(ws.url) else refused.append(ws.url)))
    return refused


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Serves files without logging each request to stderr."""

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def serve(directory, handler=QuietHandler):
    """An HTTP server for `directory` on a free loopback port, in a thread; yields its base URL (ending in /)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(directory)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def free_port() -> int:
    """A loopback port that nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
