"""The two profiles every notebook runs in.  Taught in 00_data_and_setup.

quick: tests, CI and the committed notebook outputs: MNIST's test split only, CPU, seconds per notebook, deterministic.
full:  what a student runs for real results: the full training split, real training, the fastest device.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

__all__ = ["Profile", "get_profile", "PROFILES", "ENV_VAR"]

ENV_VAR = "GENMODELS_PROFILE"


@dataclass(frozen=True)
class Profile:
    name: str
    n_train: int | None  # images to train on (None: the whole training split)
    n_test: int | None
    device: str | None  # "cpu" forces the CPU; None picks the fastest device
    progress: str  # how the training loop reports: "bar" (tqdm) or "plain" (one line per epoch)

    @property
    def quick(self) -> bool:
        return self.name == "quick"

    def pick(self, quick, full):
        """The value for this profile: `epochs = profile.pick(quick=1, full=20)`."""
        return quick if self.quick else full


PROFILES = {
    "quick": Profile("quick", n_train=8000, n_test=2000, device="cpu", progress="plain"),
    "full": Profile("full", n_train=None, n_test=None, device=None, progress="bar"),
}


def get_profile(requested: Profile | str | None = None) -> Profile:
    """Resolve the profile: the GENMODELS_PROFILE environment variable wins, else `requested` (a notebook's
    `parameters` cell), else "full". GENMODELS_PROGRESS, if set, overrides how training reports."""
    if requested is not None and not isinstance(requested, (str, Profile)):
        raise ValueError(f"profile must be 'quick', 'full', None or a genmodels.profiles.Profile; got {requested!r} "
                         f"({type(requested).__name__}). In a notebook's parameters cell write profile = \"quick\".")
    if isinstance(requested, Profile) and not os.environ.get(ENV_VAR):
        profile = requested
    else:
        name = os.environ.get(ENV_VAR) or (requested.name if isinstance(requested, Profile) else requested) or "full"
        key = name.strip().lower()
        if key not in PROFILES:
            source = f"the environment variable {ENV_VAR}" if os.environ.get(ENV_VAR) else "the profile argument"
            fix = f"set {ENV_VAR} to one of them, or unset it" if os.environ.get(ENV_VAR) else "pass one of them"
            raise ValueError(f"unknown profile {name!r} (from {source}); choose 'quick' or 'full': {fix}")
        profile = PROFILES[key]
    progress = os.environ.get("GENMODELS_PROGRESS")  # batch runs (`make run`) want plain lines, not widgets
    if progress:
        if progress not in ("bar", "plain", "none"):
            raise ValueError(f"the environment variable GENMODELS_PROGRESS must be 'bar', 'plain' or 'none', got "
                             f"{progress!r}; set it to one of them, or unset it")
        profile = replace(profile, progress=progress)
    return profile
