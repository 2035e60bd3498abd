"""`make slides` and `make html` render offline: nothing loaded from the network, and MathJax typesets the maths."""

import functools
import html.parser
import http.server
import os
import re
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DECK = REPO / "_build" / "slides" / "week13.slides.html"


@functools.cache
def make(target: str) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    subprocess.run(["make", "--no-print-directory", target], cwd=REPO, env=env, check=True, capture_output=True)


class Loads(html.parser.HTMLParser):
    """Every address the page fetches by itself: src of any tag, href of stylesheets, scripts and icons."""

    def __init__(self):
        super().__init__()
        self.addresses = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("src"):
            self.addresses.append(attrs["src"])
        if tag == "link" and attrs.get("href"):
            self.addresses.append(attrs["href"])


def network_loads(page: Path) -> list[str]:
    text = page.read_text()
    parser = Loads()
    parser.feed(text)
    remote = [a for a in parser.addresses if re.match(r"(https?:)?//", a)]
    remote += re.findall(r"@import\s+url\(['\"]?(?:https?:)?//[^)]*\)", text)
    remote += [host for host in ("unpkg.com", "cdnjs.cloudflare.com", "cdn.jsdelivr.net") if host in text]
    return remote


def test_slides_load_nothing_from_the_network():
    make("slides")
    assert DECK.exists()
    assert network_loads(DECK) == []
    parser = Loads()
    parser.feed(DECK.read_text())
    local = [a for a in parser.addresses if "node_modules" in a]
    assert any("mathjax/MathJax.js" in a for a in local) and any("reveal.css" in a for a in local)
    for address in local:  # each asset the deck names is where the deck says it is
        assert (DECK.parent / address.split("?")[0]).resolve().is_file(), address


def test_html_of_every_notebook_loads_nothing_from_the_network():
    make("html")
    pages = sorted((REPO / "_build" / "html").glob("*.html"))
    notebooks = sorted(REPO.glob("notebooks/*.ipynb")) + sorted(REPO.glob("week13/*.ipynb"))
    assert {p.stem for p in pages} >= {n.stem for n in notebooks}
    for page in pages:
        assert network_loads(page) == [], page.name


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    if os.environ.get("CI") == "true":
        pytest.fail("Chromium is needed under CI=true (.ci/run installs Debian's chromium)")
    pytest.skip("no Chromium here: install Debian's chromium to run this test")


def test_deck_typesets_its_equations_in_headless_chromium():
    browser = chromium()
    make("slides")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(REPO))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/_build/slides/{DECK.name}#/3"
    try:
        with tempfile.TemporaryDirectory() as profile_dir:
            dom = subprocess.run(
                [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={profile_dir}", "--virtual-time-budget=20000", "--dump-dom", url],
                capture_output=True, text=True, timeout=120, check=True).stdout
    finally:
        server.shutdown()
        server.server_close()
    assert 'class="reveal' in dom and 'class="slides"' in dom
    typeset = re.findall(r'class="mjx-chtml MathJax_CHTML"', dom)
    assert len(typeset) > 20, "MathJax did not typeset the equations"
    assert r"$$" not in re.sub(r"<script.*?</script>", "", dom, flags=re.S), "raw TeX left on a slide"
