"""Device choice, seeding, mixed precision, and the CPU thread count by op size.  Taught in 00_data_and_setup.

Threads: torch splits an op across the CPU's cores, which pays when the op is large; for a small op (a 64-unit RBM,
a hundred 8×8 lattices) starting and joining the second thread costs more than the arithmetic it takes over, and on a
shared machine whose other core is busy it costs far more. `threads_for(work, device)` runs a block with one thread
when its ops are below SMALL_WORK multiply-adds or site updates, with torch's count otherwise; the samplers and
training loops of the small models call it, so a notebook never sets the thread count itself. The thread count also
changes results: torch cuts a sum (a convolution's weight gradient, say) into one piece per thread, and each cut
rounds differently, so a network trained for thousands of steps at 1 and at 2 threads ends with different weights.
What must be the same on every machine and test worker (the judge) trains inside `one_thread`.
"""

from __future__ import annotations

import contextlib
import os
import random

import numpy as np
import torch

from .profiles import Profile, get_profile

__all__ = ["get_device", "seed_everything", "amp_dtype", "describe", "threads_for", "one_thread", "SMALL_WORK",
           "ENV_VAR"]


def _available(kind: str) -> bool:
    if kind == "cuda":
        return torch.cuda.is_available()
    if kind == "mps":
        return getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    return kind == "cpu"


ENV_VAR = "GENMODELS_DEVICE"
KINDS = ("cuda", "mps", "cpu")


def get_device(preferred: str | torch.device | None = None, profile: Profile | str | None = None) -> torch.device:
    """The device to compute on: `preferred` (or GENMODELS_DEVICE) if given, else the profile's (quick forces the
    CPU), else the fastest present: CUDA, then Apple MPS, then the CPU. A device that is unknown or not present here
    is an error that names where the request came from (the argument or GENMODELS_DEVICE) and what to change."""
    if preferred is not None and not isinstance(preferred, (str, torch.device)):
        raise ValueError(f"device must be a string such as 'cuda', 'mps', 'cpu' or 'auto', a torch.device, or None; "
                         f"got {preferred!r} ({type(preferred).__name__})")
    from_env = os.environ.get(ENV_VAR, "").strip()
    if preferred not in (None, ""):
        request, source = preferred, "the device argument"
    elif from_env:
        request, source = from_env, f"the environment variable {ENV_VAR}={from_env!r}"
    else:
        request, source = get_profile(profile).device, "the profile"
    if isinstance(request, str):
        request = request.strip().lower()
    if request in (None, "", "auto"):
        return _this_ranks_gpu(torch.device(next(kind for kind in KINDS if _available(kind))))
    try:
        device = torch.device(request)
    except (RuntimeError, ValueError):
        raise ValueError(f"unknown device {request!r} (from {source}); choose 'cuda' (an NVIDIA GPU, also 'cuda:1' "
                         f"for the second), 'mps' (Apple silicon), 'cpu', or 'auto' for the fastest present"
                         ) from None
    if device.type not in KINDS:
        raise ValueError(f"device {request!r} (from {source}) is not one the course supports; choose 'cuda', 'mps', "
                         "'cpu' or 'auto'")
    if not _available(device.type):
        present = next(kind for kind in KINDS if _available(kind))
        why = {"cuda": "torch.cuda.is_available() is False: no NVIDIA GPU, or a CPU-only build of torch",
               "mps": "torch.backends.mps.is_available() is False: not Apple silicon, or macOS older than 12.3"}
        if source.startswith("the environment"):
            fix = f"unset {ENV_VAR} (in a notebook: os.environ.pop({ENV_VAR!r})) or set it to 'auto' or 'cpu'"
        elif from_env:
            fix = (f"pass device='auto' or device='cpu' (device=None would read {ENV_VAR}={from_env!r} instead, "
                   "so check that too)")
        else:
            fix = "pass device=None or 'auto' (the fastest device present), or 'cpu'"
        raise ValueError(f"device {request!r} was asked for but is not available here: {why[device.type]}. The "
                         f"request came from {source}; the fastest device present is {present!r}. To run here, "
                         f"{fix}.")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ValueError(f"device {request!r} (from {source}) does not exist: this machine has "
                         f"{torch.cuda.device_count()} CUDA device(s), numbered from 0; use 'cuda' or 'cuda:0'")
    return _this_ranks_gpu(device)


def _this_ranks_gpu(device: torch.device) -> torch.device:
    """Under torchrun, 'cuda' means this process's own GPU, cuda:LOCAL_RANK (one GPU per process)."""
    local_rank = os.environ.get("LOCAL_RANK", "")
    if device.type == "cuda" and device.index is None and int(os.environ.get("WORLD_SIZE", "1") or 1) > 1 \
            and local_rank.isdigit():
        if int(local_rank) >= torch.cuda.device_count():  # NCCL refuses two ranks on one GPU
            raise ValueError(f"this process is LOCAL_RANK={local_rank} but this machine has "
                             f"{torch.cuda.device_count()} CUDA device(s): start one process per GPU "
                             f"(torchrun --nproc-per-node {torch.cuda.device_count()}), or train on the CPU "
                             "with --device cpu")
        return torch.device("cuda", int(local_rank))
    return device


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's generators (all devices), so a run can be repeated."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def amp_dtype(device: torch.device) -> torch.dtype | None:
    """bfloat16 autocast where it pays (a CUDA GPU that supports it); None, i.e. full float32, elsewhere."""
    device = torch.device(device)
    if device.type == "cuda" and torch.cuda.get_device_capability(device) >= (8, 0):  # Ampere on: bf16 in hardware
        return torch.bfloat16
    return None


def describe(device: torch.device) -> str:
    """One line naming the device, for a notebook's first cells."""
    device = torch.device(device)
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    if device.type == "cpu":
        threads = torch.get_num_threads()
        return f"cpu ({threads} thread{'s' if threads != 1 else ''})"
    return device.type


# Below this many multiply-adds or site updates per op, one CPU thread is faster than two: measured side by side by
# benchmarks/ising.py (its table "threads by op size", figures in benchmarks/README.md).
SMALL_WORK = 2**17


def threads_for(work: int, device=None):
    """Run the block with one CPU thread if its ops do fewer than SMALL_WORK multiply-adds or site updates each,
    with torch's thread count otherwise; the count is restored on exit. Off the CPU it changes nothing."""
    return one_thread(device) if work < SMALL_WORK else contextlib.nullcontext()


@contextlib.contextmanager
def one_thread(device=None):
    """Run the block with one CPU thread, the count restored on exit: its results are then the same whatever the
    thread count of the process (see above). Off the CPU it changes nothing."""
    threads = torch.get_num_threads()
    one = (device is None or torch.device(device).type == "cpu") and threads > 1
    if one:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if one:
            torch.set_num_threads(threads)
