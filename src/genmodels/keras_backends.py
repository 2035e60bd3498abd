"""Running code under another Keras backend.  Used in 02_rbm_keras, the Keras tests and benchmarks/rbm_keras.py.

Keras fixes its backend (TensorFlow, PyTorch or JAX) when it is first imported, from the environment variable
KERAS_BACKEND, so code on another backend runs in a fresh Python process:

    run_on_backend("jax", rbm_keras.scores_from_weights, twin, x_test)   # a function: its return value comes back
    run_on_backend("torch", "import keras; print(keras.backend.backend())")   # Python code, as python -c
    run_on_backend("tensorflow", Path("benchmarks/rbm_keras.py"), "--worker")  # a script with its arguments

A function must live in an importable module (the package, say): it and its arguments travel by pickle, and its
return value comes back the same way. The process imports this package from the same place as this one, gets
KERAS_BACKEND and the caller's environment (with `env` changing or, for None, removing a variable), and is stopped
after `timeout` seconds. The result names the backend that ran it; a backend whose package is not installed is a
clear error before anything starts.
"""

from __future__ import annotations

import importlib.util
import os
import pickle
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

__all__ = ["BACKENDS", "BackendRun", "installed_backends", "other_backend", "run_on_backend"]

BACKENDS = {"jax": "jax", "torch": "torch", "tensorflow": "tensorflow"}  # Keras' name -> its package; JAX first
_SOURCE_ROOT = Path(__file__).resolve().parents[1]  # the folder that holds this package
_CALL = ("import pickle, sys\n"
         "with open(sys.argv[1], 'rb') as file:\n"
         "    function, args = pickle.load(file)\n"
         "value = function(*args)\n"
         "with open(sys.argv[2], 'wb') as file:\n"
         "    pickle.dump(value, file)\n")


@dataclass
class BackendRun:
    """What a process on `backend` did: its exit status, its output, and (for a function) the value it returned."""

    backend: str
    returncode: int
    stdout: str
    stderr: str
    value: object = None


def installed_backends() -> list[str]:
    """The Keras backends whose package is installed here, in BACKENDS' order."""
    return [name for name, package in BACKENDS.items() if importlib.util.find_spec(package) is not None]


def other_backend(current: str | None = None) -> str:
    """The first installed backend in BACKENDS' order (JAX, the furthest from TensorFlow, first) that is not
    `current` (default: the one Keras runs on here, or KERAS_BACKEND)."""
    if current is None:
        keras = sys.modules.get("keras")
        current = keras.backend.backend() if keras is not None else os.environ.get("KERAS_BACKEND", "tensorflow")
    others = [name for name in installed_backends() if name != current]
    if not others:
        raise ModuleNotFoundError(f"no Keras backend other than {current} is installed here: install one of "
                                  f"{', '.join(p for n, p in BACKENDS.items() if n != current)} (pip install jax)")
    return others[0]


def _check_backend(backend: str) -> None:
    if backend not in BACKENDS:
        raise ValueError(f"unknown Keras backend {backend!r}: use one of {', '.join(BACKENDS)}")
    if importlib.util.find_spec(BACKENDS[backend]) is None:
        installed = ", ".join(installed_backends()) or "none"
        raise ModuleNotFoundError(f"the Keras backend {backend!r} needs the package {BACKENDS[backend]}, which is not "
                                  f"installed here: pip install {BACKENDS[backend]}, or use an installed backend "
                                  f"({installed})")


def run_on_backend(backend: str, target, *args, timeout: float | None = 300, env: dict | None = None) -> BackendRun:
    """Run `target` (a function, a string of Python code, or a script's Path) with `args` in a fresh process whose
    Keras runs on `backend`. A function's failure raises RuntimeError with the last lines of its error; for code and
    scripts the caller reads returncode and stderr."""
    _check_backend(backend)
    environment = {**os.environ, "KERAS_BACKEND": backend}
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_SOURCE_ROOT), os.environ.get("PYTHONPATH")]))
    for name, value in (env or {}).items():
        if value is None:
            environment.pop(name, None)
        else:
            environment[name] = str(value)
    with tempfile.TemporaryDirectory() as folder:
        if callable(target):
            call, result = Path(folder, "call.pickle"), Path(folder, "result.pickle")
            call.write_bytes(_pickled_call(target, args))
            command = ["-c", _CALL, str(call), str(result)]
        elif isinstance(target, Path):
            command = [str(target), *map(str, args)]
        elif isinstance(target, str):
            command = ["-c", target, *map(str, args)]
        else:
            raise TypeError(f"run_on_backend runs a function, a string of Python code or a script's Path; got "
                            f"{type(target).__name__}")
        try:
            run = subprocess.run([sys.executable, *command], capture_output=True, text=True, env=environment,
                                 timeout=timeout)
        except subprocess.TimeoutExpired:
            raise TimeoutError(f"the {backend} process did not finish within {timeout:g} s and was stopped: give "
                               "run_on_backend a larger timeout=...") from None
        done = BackendRun(backend, run.returncode, run.stdout, run.stderr)
        if callable(target):
            if run.returncode != 0:
                last = "\n".join(run.stderr.strip().splitlines()[-5:])
                name = getattr(target, "__qualname__", repr(target))
                raise RuntimeError(f"{name} failed on the {backend} backend (exit status {run.returncode}):\n{last}")
            done.value = pickle.loads(result.read_bytes())
    return done


def _pickled_call(function, args) -> bytes:
    """(function, args) pickled, or a clear error when the new process could not find the function."""
    name = getattr(function, "__qualname__", repr(function))
    if getattr(function, "__module__", None) == "__main__" or "<" in name:
        raise ValueError(f"run_on_backend cannot send {name} to a new process: it is defined in a notebook, a script "
                         "or another function, which that process cannot import. Define it at the top level of a "
                         "module (a .py file on the path), or pass Python code as a string")
    return pickle.dumps((function, args))
