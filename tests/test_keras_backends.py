"""genmodels.keras_backends: code runs under another Keras backend in a fresh process, and says so; a backend that
cannot run is a clear error before anything starts."""

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from genmodels import keras_backends, rbm, rbm_keras
from genmodels.keras_backends import run_on_backend


def test_a_function_runs_on_the_backend_asked_for_and_its_value_comes_back():
    twin = rbm.RBM(20, 7, generator=torch.Generator().manual_seed(0), init_std=1.0)
    v = (np.random.default_rng(1).random((50, 20)) < 0.4).astype("float32")
    other = keras_backends.other_backend("tensorflow")
    run = run_on_backend(other, rbm_keras.scores_from_weights, twin, v)
    assert run.backend == other and run.returncode == 0
    minus_free_energy = -twin.free_energy(torch.from_numpy(v)).mean().item()
    assert run.value[0] == pytest.approx(minus_free_energy, rel=1e-5)  # the same weights, another backend's kernels
    assert run.value == pytest.approx(rbm_keras.scores_from_weights(twin, v), rel=1e-5)


def test_code_and_scripts_run_with_their_arguments_and_the_environment_asked_for(tmp_path):
    code = "import os, sys, keras; print(keras.backend.backend(), os.environ.get('DROPPED'), *sys.argv[1:])"
    os.environ["DROPPED"] = "still here"
    try:
        run = run_on_backend("torch", code, 1, "two", env={"DROPPED": None})
    finally:
        del os.environ["DROPPED"]
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["torch", "None", "1", "two"]
    script = tmp_path / "script.py"
    script.write_text("import sys\nprint(*sys.argv[1:])\nsys.exit(3)\n")
    run = run_on_backend("torch", Path(script), "--worker")
    assert (run.returncode, run.stdout.strip()) == (3, "--worker")


def test_a_backend_that_is_not_installed_names_the_package_to_install(monkeypatch):
    monkeypatch.setitem(keras_backends.BACKENDS, "jax", "no_such_package_for_jax")
    with pytest.raises(ModuleNotFoundError, match=r"'jax' needs the package no_such_package_for_jax, which is not "
                                                  r"installed here: pip install no_such_package_for_jax"):
        run_on_backend("jax", "print(1)")
    assert "jax" not in keras_backends.installed_backends()


def test_an_unknown_backend_or_target_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown Keras backend 'numpy': use one of jax, torch, tensorflow"):
        run_on_backend("numpy", "print(1)")
    with pytest.raises(TypeError, match="a function, a string of Python code or a script's Path; got int"):
        run_on_backend("torch", 42)


def test_a_function_the_new_process_cannot_import_is_refused_before_it_starts():
    def local():
        return 1

    with pytest.raises(ValueError, match="cannot send .*local.* to a new process: it is defined in a notebook"):
        run_on_backend("torch", local)


def test_a_failing_function_raises_with_the_last_lines_of_its_error():
    with pytest.raises(RuntimeError, match=r"(?s)scores_from_weights failed on the torch backend.*Error"):
        run_on_backend("torch", rbm_keras.scores_from_weights, "not an RBM", None)


def test_a_process_past_its_timeout_is_stopped_with_advice():
    with pytest.raises(TimeoutError, match="did not finish within 0.5 s and was stopped: give run_on_backend a "
                                           "larger timeout"):
        run_on_backend("torch", "import time; time.sleep(30)", timeout=0.5)
