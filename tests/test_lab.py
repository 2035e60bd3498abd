"""A student's first hour in `make lab`: JupyterLab lists each notebook without its .py twin, and notebook 01 runs
top to bottom in it (quick profile) with no error, no stderr and a training cell of few outputs.

JupyterLab runs on a free loopback port with a token, on a temporary copy of the notebook, with temporary Jupyter
config, data, runtime and settings folders: nothing in the repository changes. Chromium (Debian's) is driven by
Playwright; any request that leaves loopback fails the test. Screenshots land in _build/test_lab/.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from conftest import chromium

REPO = Path(__file__).resolve().parents[1]
LAB_CONFIG = REPO / ".jupyter"  # what `make lab` adds to JUPYTER_CONFIG_PATH
NOTEBOOK = "notebooks/01_rbm_pytorch.ipynb"  # the notebook the test runs
FIRST = "notebooks/00_data_and_setup.ipynb"  # the one `make lab` opens
SCREENSHOTS = REPO / "_build" / "test_lab"
TRAINING_CELL = "rbm.fit("  # the source of the cell that trains
MAX_TRAINING_OUTPUTS = 2  # one bar and one block of epoch lines (consecutive prints merge), not outputs per epoch
LOOPBACK = {"127.0.0.1", "localhost", "[::1]", "::1"}
CHROMIUM_FLAGS = ["--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync",
                  "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"]  # no name but loopback resolves
SETTINGS = {  # the student's defaults, except: no autosave (nothing is written), every cell in the page (to be read)
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},  # and no news or updates
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false",
                                                                        "checkForUpdates": False},
}


def test_make_lab_opens_notebook_00_with_the_project_settings():
    command = subprocess.run(["make", "--no-print-directory", "-n", "lab"], cwd=REPO, capture_output=True, text=True,
                             check=True, env={k: v for k, v in os.environ.items() if not k.startswith("MAKE")}).stdout
    assert f'JUPYTER_CONFIG_PATH="{LAB_CONFIG}' in command and "jupyter lab" in command, command
    assert command.rstrip().endswith(f" {FIRST}") and (REPO / FIRST).exists(), command
    assert (LAB_CONFIG / "jupyter_server_config.py").exists()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def is_loopback(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("data", "blob", "about") or parts.hostname in LOOPBACK


@pytest.fixture(scope="module")
def lab():
    """JupyterLab with the project's configuration on a temporary copy of notebook 01; yields (base URL, token)."""
    with tempfile.TemporaryDirectory(prefix="genmodels-lab-") as tmp:
        tmp = Path(tmp)
        root = tmp / "course"
        (root / "notebooks").mkdir(parents=True)
        shutil.copy(REPO / "jupytext.toml", root)
        for twin in (NOTEBOOK, NOTEBOOK.replace(".ipynb", ".py")):
            shutil.copy(REPO / twin, root / twin)
        for name, value in SETTINGS.items():
            (tmp / "settings" / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp / "settings" / name).write_text(json.dumps(value))
        env = {**os.environ, "JUPYTER_CONFIG_PATH": str(LAB_CONFIG), "JUPYTER_CONFIG_DIR": str(tmp / "config"),
               "JUPYTER_DATA_DIR": str(tmp / "data"), "JUPYTER_RUNTIME_DIR": str(tmp / "runtime"),
               "JUPYTERLAB_SETTINGS_DIR": str(tmp / "settings"), "JUPYTERLAB_WORKSPACES_DIR": str(tmp / "workspaces"),
               "IPYTHONDIR": str(tmp / "ipython"), "MPLCONFIGDIR": str(tmp / "matplotlib"),
               "GENMODELS_PROFILE": "quick", "GENMODELS_BUILD": str(tmp / "build"), "PYTHONUNBUFFERED": "1"}
        env.pop("GENMODELS_PROGRESS", None)
        env.pop("GENMODELS_DEVICE", None)
        port, token = free_port(), os.urandom(16).hex()
        log = (tmp / "lab.log").open("w")
        server = subprocess.Popen(
            [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ServerApp.ip=127.0.0.1",
             f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
             f"--ServerApp.root_dir={root}", "--ServerApp.allow_root=True", "--LabApp.news_url=",
             "--LabApp.extension_manager=readonly",
             # if pytest itself is killed, the orphaned server (its own session) stops once idle
             "--MappingKernelManager.cull_idle_timeout=600", "--ServerApp.shutdown_no_activity_timeout=900"],
            cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 120
            while True:
                try:
                    urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=5).read()
                    break
                except OSError:
                    if server.poll() is not None or time.monotonic() > deadline:
                        pytest.fail(f"JupyterLab did not start:\n{(tmp / 'lab.log').read_text()[-3000:]}")
                    time.sleep(0.5)
            yield base, token
        finally:
            os.killpg(server.pid, signal.SIGTERM)  # the server shuts its kernels down on SIGTERM
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()
            log.close()
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            shutil.copy(tmp / "lab.log", SCREENSHOTS / "lab.log")  # the server's side, for when something failed


@pytest.fixture(scope="module")
def page(lab):
    """Chromium on notebook 01 in JupyterLab, with every request that leaves loopback refused and recorded."""
    browser_path = chromium()
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install the dev extra (playwright)")
    base, token = lab
    left_loopback = []

    def guard(route):
        if is_loopback(route.request.url):
            route.continue_()
        else:
            left_loopback.append(route.request.url)
            route.abort()

    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=browser_path, args=CHROMIUM_FLAGS)
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        context.route("**/*", guard)
        page = context.new_page()
        page.on("websocket", lambda ws: None if is_loopback(ws.url) else left_loopback.append(ws.url))
        page.set_default_timeout(120_000)
        page.goto(f"{base}/lab/tree/{NOTEBOOK}?token={token}")
        page.wait_for_selector(".jp-Notebook .jp-Cell")
        yield page
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=SCREENSHOTS / "end.png")
        context.close()
        browser.close()
    assert not left_loopback, f"the page asked for addresses outside loopback: {left_loopback[:5]}"


def test_file_browser_lists_the_notebook_and_hides_its_py_twin(page):
    """Opening notebooks/NAME.ipynb takes the file browser to notebooks/, where NAME.py must not be listed."""
    page.wait_for_function("""() => [...document.querySelectorAll('.jp-DirListing-content .jp-DirListing-itemText')]
                                      .some(e => e.textContent.trim() === '01_rbm_pytorch.ipynb')""")
    names = page.locator(".jp-DirListing-content .jp-DirListing-itemText").all_inner_texts()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / "file_browser.png")
    assert "01_rbm_pytorch.ipynb" in names and "01_rbm_pytorch.py" not in names, names


CELLS = """() => [...document.querySelectorAll('.jp-Notebook .jp-CodeCell')].map(cell => ({
    prompt: cell.querySelector('.jp-InputPrompt')?.textContent.trim() ?? '',
    source: cell.querySelector('.jp-InputArea-editor')?.textContent ?? '',
    outputs: cell.querySelectorAll('.jp-OutputArea-child').length,
    stderr: [...cell.querySelectorAll('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')]
            .map(o => o.textContent.slice(0, 300)),
    text: cell.querySelector('.jp-OutputArea')?.textContent.slice(0, 2000) ?? '',
}))"""


IDLE = """() => /\\|\\s*Idle\\b/.test(document.querySelector('#jp-main-statusbar')?.innerText ?? '')"""
# the status bar's "Python 3 (ipykernel) | Idle": the kernel is connected and not busy


def accept_the_kernel_dialog(page) -> None:
    """On a slow machine JupyterLab sometimes asks which kernel to use although the notebook names one; a student
    clicks Select (Python 3, preselected), and so does the test."""
    dialog = page.locator(".jp-Dialog", has_text="Select Kernel")
    if dialog.count():
        print("JupyterLab asked for a kernel: Select")
        dialog.locator(".jp-mod-accept").click()


def wait_for_the_kernel(page) -> None:
    deadline = time.monotonic() + 120
    while not page.evaluate(IDLE):
        accept_the_kernel_dialog(page)
        assert time.monotonic() < deadline, "the kernel did not start within two minutes"
        time.sleep(0.5)
    accept_the_kernel_dialog(page)


def menu(page, title: str, item: str) -> None:
    page.locator(".lm-MenuBar-itemLabel", has_text=title).first.click()
    page.locator(".lm-Menu-itemLabel", has_text=item).first.click()


def test_notebook_01_runs_clean_in_the_quick_profile(page):
    wait_for_the_kernel(page)
    menu(page, "Edit", "Clear Outputs of All Cells")  # the committed outputs and counts go: what follows is this run's
    page.wait_for_function(f"() => ({CELLS})().every(c => !/\\d/.test(c.prompt) && c.outputs === 0)")
    menu(page, "Run", "Run All Cells")
    start = time.monotonic()
    while True:  # the run has started, no cell waits or runs ([*]) and the kernel is idle: done, or stopped at an error
        accept_the_kernel_dialog(page)
        cells = page.evaluate(CELLS)
        prompts = [c["prompt"] for c in cells]
        idle = page.evaluate(IDLE)
        if idle and any(p.strip("[]:").isdigit() for p in prompts) and not any("*" in p for p in prompts):
            break
        if time.monotonic() - start > 600:
            page.screenshot(path=SCREENSHOTS / "timeout.png")
            pytest.fail(f"notebook 01 did not finish within 10 minutes: prompts {prompts}")
        time.sleep(1)
    print(f"notebook 01: {len(cells)} code cells ran in {time.monotonic() - start:.0f} s")
    training = [c for c in cells if TRAINING_CELL in c["source"]]
    training_cell = page.locator(".jp-Notebook .jp-CodeCell", has_text=TRAINING_CELL).first
    training_cell.scroll_into_view_if_needed()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    training_cell.screenshot(path=SCREENSHOTS / "training_cell.png")
    page.screenshot(path=SCREENSHOTS / "after_run_all.png")
    page.locator(".jp-Notebook .jp-Cell").last.scroll_into_view_if_needed()
    page.screenshot(path=SCREENSHOTS / "last_cells.png")
    dialogs = page.locator(".jp-Dialog").all_inner_texts()

    assert not dialogs, f"a dialog is open: {dialogs}"
    noisy = [(i, c["stderr"]) for i, c in enumerate(cells) if c["stderr"]]
    assert not noisy, f"cells with an error or stderr output: {noisy}"
    assert any("quick profile" in c["text"] for c in cells[:3]), "genmodels.setup did not print the quick profile"
    assert [p.strip("[]:") for p in prompts] == [str(n) for n in range(1, len(cells) + 1)], prompts
    assert len(training) == 1 and training[0]["text"].count("epoch ") >= 1, [c["source"][:80] for c in cells]
    assert 1 <= training[0]["outputs"] <= MAX_TRAINING_OUTPUTS, (
        f"the training cell shows {training[0]['outputs']} outputs: {training[0]['text'][:500]!r}")


def test_the_root_listing_leaves_out_the_build_tools_files_and_keeps_build(tmp_path):
    """`make lab`'s contents manager, on a folder laid out like the repository's root: node_modules, templates and
    the npm and jupytext settings are left out at the root only; _build/, README.md and the notebooks stay."""
    import asyncio
    import runpy

    config = runpy.run_path(str(LAB_CONFIG / "jupyter_server_config.py"),
                            init_globals={"c": type("Config", (), {"ServerApp": type("ServerApp", (), {})()})()})
    for folder in ("node_modules", "templates", "_build", "notebooks", "notebooks/templates"):
        (tmp_path / folder).mkdir()
    for name in ("package.json", "package-lock.json", "jupytext.toml", "README.md", "notebooks/jupytext.toml"):
        (tmp_path / name).write_text("{}")
    manager = config["NotebookTwinsHidden"](root_dir=str(tmp_path))
    listed = {path: {e["name"] for e in asyncio.run(manager.get(path))["content"]} for path in ("", "notebooks")}
    assert listed[""] == {"_build", "notebooks", "README.md"}, listed
    assert listed["notebooks"] == {"templates", "jupytext.toml"}, listed  # only the root is tidied
    assert config["ROOT_HIDDEN"] == {"node_modules", "templates", "package.json", "package-lock.json",
                                     "jupytext.toml"}
