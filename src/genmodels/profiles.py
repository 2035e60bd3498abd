"""The two profiles every notebook runs in.  Taught in 00_data_and_setup.

quick: tests, CI and the committed notebook outputs: MNIST's test split only, CPU, seconds per notebook, deterministic.
full:  what a student runs for real results: the full training split, real training, the fastest device. Where the
       arithmetic cannot shrink, its lengths follow a fixed table per device type: on a CPU what fits ten minutes per
       notebook on a 2-core machine, on a GPU (CUDA, Apple MPS) as long as the tutorials train, `pick(..., gpu=...)`.

Which one runs, in one rule: the notebook's own value (`profile = "full"` in its parameters cell) if it sets one, else
the environment variable GENMODELS_PROFILE, else "full".
"""

from __future__ import annotations

import os
import textwrap
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
    device_type: str | None = None  # the chosen device's type, set by genmodels.setup: "cpu", "cuda" or "mps"

    @property
    def quick(self) -> bool:
        return self.name == "quick"

    @property
    def on_gpu(self) -> bool:
        """Whether the full profile's GPU lengths apply: the full profile on a CUDA or Apple MPS device."""
        return not self.quick and self.device_type in ("cuda", "mps")

    def pick(self, quick, full, gpu=None):
        """The value for this profile: `epochs = profile.pick(quick=1, full=20)`; with `gpu`, the full profile's value
        on a CUDA or MPS device (`full` is then the CPU's): `profile.pick(quick=1, full=4, gpu=30)`."""
        if self.quick:
            return quick
        return gpu if gpu is not None and self.on_gpu else full

    @property
    def lengths(self) -> str:
        """Which column of the lengths table applies, for setup's one line ("" in the quick profile)."""
        if self.quick:
            return ""
        return ", GPU lengths (the tutorials')" if self.on_gpu else ", CPU lengths (ten minutes a notebook)"

    def note(self, run: str, full: str) -> None:
        """In the quick profile only, one line saying that the results just shown come from a short run, and what
        the full profile shows instead: `profile.note(f"{epochs} epochs on {n:,} images", "digits you can read")`."""
        if self.quick:  # wrapped at spaces: a notebook's output area would break one long line mid-word
            print(textwrap.fill(f"(quick profile: {run}, a run of seconds; the full profile shows {full})", width=100))


PROFILES = {
    "quick": Profile("quick", n_train=8000, n_test=2000, device="cpu", progress="plain"),
    "full": Profile("full", n_train=None, n_test=None, device=None, progress="bar"),
}


def get_profile(requested: Profile | str | None = None) -> Profile:
    """Resolve the profile. One rule: a value set in the notebook wins (`profile = "full"` in its `parameters` cell,
    i.e. get_profile("full")); when the notebook says None, GENMODELS_PROFILE fills in; with neither, "full". When
    both are set and differ, one printed line says which won. A Profile object is used as it is (it was resolved
    already, as setup() passes it on to load_data and get_device). GENMODELS_PROGRESS, if set, overrides how training
    reports."""
    if requested is not None and not isinstance(requested, (str, Profile)):
        raise ValueError(f"profile must be 'quick', 'full', None or a genmodels.profiles.Profile; got {requested!r} "
                         f"({type(requested).__name__}). In a notebook's parameters cell write profile = \"quick\".")
    from_env = _profile_from_environment()  # checked even when the notebook's value wins: a typo there is an error
    if isinstance(requested, Profile):
        profile = requested
    elif isinstance(requested, str) and requested.strip():
        profile = _named(requested, "the profile argument", "pass one of them")
        if from_env is not None and from_env.name != profile.name:
            print(f"profile {profile.name!r} (set in the notebook) wins over {ENV_VAR}={os.environ[ENV_VAR]!r}")
    else:
        profile = from_env or PROFILES["full"]
    progress = os.environ.get("GENMODELS_PROGRESS")  # batch runs (`make run`) want plain lines, not widgets
    if progress:
        if progress not in ("bar", "plain", "none"):
            raise ValueError(f"the environment variable GENMODELS_PROGRESS must be 'bar', 'plain' or 'none', got "
                             f"{progress!r}; set it to one of them, or unset it")
        profile = replace(profile, progress=progress)
    return profile


def _profile_from_environment() -> Profile | None:
    """The profile GENMODELS_PROFILE names, or None when it is unset or empty."""
    name = os.environ.get(ENV_VAR, "")
    if not name.strip():
        return None
    return _named(name, f"the environment variable {ENV_VAR}", f"set {ENV_VAR} to one of them, or unset it")


def _named(name: str, source: str, fix: str) -> Profile:
    """The profile `name` names (case and surrounding spaces ignored); for any other name, a ValueError that says
    where the name came from (`source`) and how to fix it (`fix`)."""
    key = name.strip().lower()
    if key not in PROFILES:
        raise ValueError(f"unknown profile {name!r} (from {source}); choose 'quick' or 'full': {fix}")
    return PROFILES[key]
