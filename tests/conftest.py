import functools
import gzip
import importlib.util
import json
import os
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from browser import QuietHandler, free_port, launch, serve

from genmodels import data, rbm
from genmodels.keras_backends import BACKENDS, run_on_backend

REPO = Path(__file__).resolve().parents[1]


# The RBM's kernels are pinned to the fast path's incumbents (genmodels.rbm_fast), as `make test` and `make baseline`
# pin them: the notebooks' committed outputs, which nbval compares, must not depend on a measurement of the machine.
# Tests of the measurement set GENMODELS_RBM_KERNELS themselves; notebook kernels and subprocesses inherit the pin.
os.environ.setdefault("GENMODELS_RBM_KERNELS", "fast")

# `make test` runs the test files on pytest-xdist workers (TEST_WORKERS, 3 by default). The cores are shared out among
# them: a worker, and every notebook kernel or process it starts, runs cores // workers threads (one at the least), so
# that the workers do not fight over the cores with torch's and TensorFlow's thread pools.
WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if WORKERS > 1:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    threads_per_worker = max(1, cores // WORKERS)
    os.environ["OMP_NUM_THREADS"] = os.environ["TF_NUM_INTRAOP_THREADS"] = str(threads_per_worker)
    torch.set_num_threads(threads_per_worker)


def needed(what: str) -> None:
    """Something a test needs is missing: a failure under CI (.ci/run installs everything), a skip elsewhere."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} (CI=true: .ci/run must install it)")
    pytest.skip(what)


def write_idx(path: Path, array: np.ndarray, gz: bool = True) -> Path:
    """Write a uint8 array as an IDX file (the format data.read_idx reads)."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    raw = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(raw) if gz else raw)
    return path


def fake_split(directory: Path, split="train", n=None, seed=0, gz=True):
    """A synthetic split of the right IDX shape (so its header checks out) with random content."""
    n = n or (60000 if split == "train" else 10000)
    prefix = "train" if split == "train" else "t10k"
    rng = np.random.default_rng(seed)
    suffix = ".gz" if gz else ""
    write_idx(directory / f"{prefix}-images-idx3-ubyte{suffix}", rng.integers(0, 256, (n, 28, 28)), gz)
    write_idx(directory / f"{prefix}-labels-idx1-ubyte{suffix}", rng.integers(0, 10, n), gz)
    return directory


@functools.cache
def backend_results(script: str, backend: str, timeout: float = 300, **env) -> dict:
    """A test script run once on one Keras backend, in a fresh process (genmodels.keras_backends.run_on_backend),
    and cached: the JSON its last line prints, with `lines` (the lines before it) and `stderr`. `env` sets variables
    for that process (None removes one). A backend that is not installed fails under CI and is skipped elsewhere."""
    if importlib.util.find_spec(BACKENDS[backend]) is None:
        needed(f"the {backend} backend needs {BACKENDS[backend]}: pip install -e '.[keras]'")
    run = run_on_backend(backend, script, timeout=timeout, env=env)
    assert run.returncode == 0, f"{backend}:\n{run.stderr[-3000:]}"
    *lines, result = run.stdout.strip().splitlines()
    return {**json.loads(result), "lines": lines, "stderr": run.stderr}


def mnist_test_dir() -> Path:
    """The real MNIST test files (../shared/data/mnist, or a GENMODELS_DATA entry). CI must have them."""
    candidates = [Path(p) / "mnist" for p in os.environ.get("GENMODELS_DATA", "").split(os.pathsep) if p]
    candidates += [REPO.parent / "shared" / "data" / "mnist", REPO / "data" / "mnist"]
    for directory in candidates:
        if (directory / "t10k-images-idx3-ubyte.gz").exists():
            return directory
    needed("MNIST test files not found: set GENMODELS_DATA to ../shared/data")


@pytest.fixture
def isolated_data(tmp_path, monkeypatch):
    """genmodels.data with an empty cache, no Debian copy, no GENMODELS_DATA and mirrors at a closed loopback port."""
    cache = tmp_path / "cache"
    monkeypatch.setattr(data, "CACHE_DIR", cache)
    monkeypatch.setattr(data, "DEBIAN_DIRS", {})
    monkeypatch.setattr(data, "MIRRORS", {"mnist": [closed_port_url()], "fashion-mnist": [closed_port_url()]})
    monkeypatch.setattr(data, "_unreachable", set())
    monkeypatch.delenv("GENMODELS_DATA", raising=False)
    monkeypatch.delenv("GENMODELS_PROFILE", raising=False)
    return cache


def closed_port_url() -> str:
    """A loopback URL nothing listens on."""
    return f"http://127.0.0.1:{free_port()}/"


@pytest.fixture
def file_server(tmp_path):
    """A loopback HTTP server serving a directory; yields (root directory, base URL, list of requested paths)."""
    root = tmp_path / "served"
    root.mkdir()
    requests = []

    class Recording(QuietHandler):
        def do_GET(self):
            requests.append(self.path)
            super().do_GET()

    with serve(root, Recording) as url:
        yield root, url, requests


@pytest.fixture(scope="module")
def chromium_browser():
    """One headless Chromium (browser.launch) for a browser test module: Playwright's sync API allows one browser at
    a time in a thread."""
    with launch() as browser:
        yield browser


@pytest.fixture(autouse=True)
def no_profile_or_device_from_the_environment(monkeypatch):
    """`make test` exports GENMODELS_PROFILE=quick for the notebooks; each package test sets what it needs."""
    monkeypatch.delenv("GENMODELS_PROFILE", raising=False)
    monkeypatch.delenv("GENMODELS_DEVICE", raising=False)
    monkeypatch.delenv("GENMODELS_PROGRESS", raising=False)


@pytest.fixture
def one_thread():
    """One torch thread for a test of tiny models, where thread start-up would dominate on a shared machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def random_rbm(n_visible, n_hidden, scale=1.0, seed=0):
    """An RBM whose weights and biases are drawn from N(0, scale²): far from the base rate, for checking formulas."""
    g = torch.Generator().manual_seed(seed)
    model = rbm.RBM(n_visible, n_hidden, generator=g)
    with torch.no_grad():
        model.W.copy_(scale * torch.randn(n_visible, n_hidden, generator=g))
        model.b.copy_(scale * torch.randn(n_visible, generator=g))
        model.c.copy_(scale * torch.randn(n_hidden, generator=g))
    return model
