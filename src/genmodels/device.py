"""Device choice, seeding and mixed precision.  Taught in 00_data_and_setup."""

from __future__ import annotations

import os
import random

import numpy as np
import torch

from .profiles import Profile, get_profile


def _available(kind: str) -> bool:
    if kind == "cuda":
        return torch.cuda.is_available()
    if kind == "mps":
        return getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    return kind == "cpu"


def get_device(preferred: str | None = None, profile: Profile | str | None = None) -> torch.device:
    """The device to compute on: `preferred` (or GENMODELS_DEVICE) if given, else the profile's (quick forces the
    CPU), else the fastest present: CUDA, then Apple MPS, then the CPU."""
    preferred = preferred or os.environ.get("GENMODELS_DEVICE") or get_profile(profile).device
    if preferred in (None, "", "auto"):
        return torch.device(next(kind for kind in ("cuda", "mps", "cpu") if _available(kind)))
    device = torch.device(preferred)
    if not _available(device.type):
        raise ValueError(f"device {preferred!r} was asked for but is not available here; "
                         "use device=None (or 'auto') to pick the fastest device present, or 'cpu'")
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
        return f"cpu ({torch.get_num_threads()} threads)"
    return device.type
