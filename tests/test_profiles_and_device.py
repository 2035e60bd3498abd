"""Profiles (quick/full) and how they resolve; device choice; seeding."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from genmodels import device, get_profile
from genmodels.profiles import PROFILES


def test_environment_variable_wins_over_the_notebook_parameter(monkeypatch):
    monkeypatch.setenv("GENMODELS_PROFILE", "quick")
    assert get_profile("full").name == "quick"
    assert get_profile(PROFILES["full"]).name == "quick"


def test_notebook_parameter_is_used_when_the_variable_is_unset(monkeypatch):
    monkeypatch.delenv("GENMODELS_PROFILE", raising=False)
    assert get_profile("quick").name == "quick"
    assert get_profile(" Full ").name == "full"


def test_default_profile_is_full(monkeypatch):
    monkeypatch.delenv("GENMODELS_PROFILE", raising=False)
    assert get_profile(None).name == "full"
    monkeypatch.setenv("GENMODELS_PROFILE", "")
    assert get_profile(None).name == "full"


@pytest.mark.parametrize("env, arg, source", [("fast", None, "environment variable"), (None, "ful", "argument")])
def test_unknown_profile_is_a_clear_error(monkeypatch, env, arg, source):
    monkeypatch.delenv("GENMODELS_PROFILE", raising=False)
    if env:
        monkeypatch.setenv("GENMODELS_PROFILE", env)
    with pytest.raises(ValueError, match=f"unknown profile '{env or arg}'.*{source}.*'quick' or 'full'"):
        get_profile(arg)


def test_quick_profile_forces_the_cpu_and_plain_progress(monkeypatch):
    monkeypatch.delenv("GENMODELS_PROFILE", raising=False)
    monkeypatch.delenv("GENMODELS_DEVICE", raising=False)
    quick = get_profile("quick")
    assert quick.quick and quick.progress == "plain" and (quick.n_train, quick.n_test) == (8000, 2000)
    assert device.get_device(profile=quick) == torch.device("cpu")
    assert quick.pick(quick=1, full=20) == 1 and get_profile("full").pick(quick=1, full=20) == 20


def test_full_profile_picks_the_fastest_device_present(monkeypatch):
    monkeypatch.delenv("GENMODELS_PROFILE", raising=False)
    monkeypatch.delenv("GENMODELS_DEVICE", raising=False)
    expected = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    assert device.get_device(profile="full").type == expected


def test_device_can_be_overridden_and_a_missing_one_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert device.get_device("cpu", profile="full") == torch.device("cpu")
    monkeypatch.setenv("GENMODELS_DEVICE", "cpu")
    assert device.get_device(profile="full") == torch.device("cpu")
    with pytest.raises(ValueError, match="'cuda' was asked for but is not available"):
        device.get_device("cuda")


def test_cuda_is_chosen_first_when_present(monkeypatch):
    monkeypatch.delenv("GENMODELS_DEVICE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert device.get_device(profile="full") == torch.device("cuda")


def test_mixed_precision_only_on_cuda_gpus_with_bfloat16_in_hardware(monkeypatch):
    assert device.amp_dtype(torch.device("cpu")) is None
    for capability, expected in (((7, 5), None), ((8, 0), torch.bfloat16), ((9, 0), torch.bfloat16)):
        monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None, c=capability: c)
        assert device.amp_dtype(torch.device("cuda")) == expected  # a T4 (7.5) emulates bfloat16: slower, not faster


def test_seed_everything_repeats_torch_numpy_and_python_draws():
    import random

    def draw():
        return torch.rand(3).tolist(), np.random.rand(3).tolist(), random.random()

    device.seed_everything(7)
    first = draw()
    device.seed_everything(7)
    assert draw() == first


def test_progress_can_be_set_for_batch_runs(monkeypatch):
    monkeypatch.setenv("GENMODELS_PROGRESS", "plain")
    assert get_profile("full").progress == "plain" and get_profile(PROFILES["full"]).progress == "plain"
    custom = replace(PROFILES["quick"], n_train=7)  # a profile of one's own keeps its settings
    assert get_profile(custom) == replace(custom, progress="plain")
    monkeypatch.setenv("GENMODELS_PROGRESS", "widgets")
    with pytest.raises(ValueError, match="GENMODELS_PROGRESS must be"):
        get_profile("full")
