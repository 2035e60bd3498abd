"""The two profiles every notebook runs in.  Taught in 00_data_and_setup.

quick: tests, CI and the committed notebook outputs: MNIST's test split only, CPU, seconds per notebook, deterministic.
full:  what a student runs for real results: the full training split, real training, the fastest device.

Which one runs, in one rule: the notebook's own value (`profile = "full"` in its parameters cell) if it sets one, else
the environment variable GENMODELS_PROFILE, else "full".
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

    def note(self, run: str, full: str) -> None:
        """In the quick profile only, one line saying that the results just shown come from a short run, and what
        the full profile shows instead: `profile.note(f"{epochs} epochs on {n:,} images", "digits you can read")`."""
        if self.quick:
            print(f"(quick profile: {run}, a run of seconds; the full profile shows {full})")


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
        key = requested.strip().lower()
        if key not in PROFILES:
            raise ValueError(f"unknown profile {requested!r} (from the profile argument); choose 'quick' or 'full': "
                             f"pass one of them")
        profile = PROFILES[key]
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
    key = name.strip().lower()
    if key not in PROFILES:
        raise ValueError(f"unknown profile {name!r} (from the environment variable {ENV_VAR}); choose 'quick' or "
                         f"'full': set {ENV_VAR} to one of them, or unset it")
    return PROFILES[key]
