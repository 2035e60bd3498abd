"""Profiles (quick/full) and how they resolve; device choice; seeding."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from genmodels import device, get_profile
from genmodels.profiles import PROFILES


def test_a_value_set_in_the_notebook_wins_over_the_environment_variable_and_says_so(monkeypatch, capsys):
    monkeypatch.setenv("GENMODELS_PROFILE", "quick")
    assert get_profile("full").name == "full"
    assert capsys.readouterr().out == "profile 'full' (set in the notebook) wins over GENMODELS_PROFILE='quick'\n"
    assert get_profile(" Quick ").name == "quick"  # both set and the same: nothing to say
    assert capsys.readouterr().out == ""


def test_the_environment_variable_fills_in_when_the_notebook_says_none(monkeypatch, capsys):
    monkeypatch.setenv("GENMODELS_PROFILE", "quick")  # `make test`, with every committed notebook's profile = None
    assert get_profile(None).name == "quick" and get_profile("").name == "quick"
    assert capsys.readouterr().out == ""


def test_make_run_passes_the_same_profile_both_ways_and_prints_nothing(monkeypatch, capsys):
    monkeypatch.setenv("GENMODELS_PROFILE", "full")  # `make run`: papermill -p profile full and GENMODELS_PROFILE=full
    assert get_profile("full").name == "full"
    assert capsys.readouterr().out == ""


def test_a_resolved_profile_passed_on_is_used_as_it_is(monkeypatch, capsys):
    """setup() resolves once and passes the Profile to load_data and get_device: they neither re-resolve nor print."""
    monkeypatch.setenv("GENMODELS_PROFILE", "quick")
    assert get_profile(PROFILES["full"]) == PROFILES["full"]
    best = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    assert device.get_device(profile=PROFILES["full"]).type == best  # the full profile's rule, not the quick one's
    assert capsys.readouterr().out == ""


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


@pytest.mark.parametrize("wrong", [1, 0.5, True, ["quick"]])
def test_a_profile_that_is_not_a_name_is_a_clear_error(monkeypatch, wrong):
    monkeypatch.delenv("GENMODELS_PROFILE", raising=False)
    with pytest.raises(ValueError, match=rf"profile must be 'quick', 'full', None or a genmodels.profiles.Profile; "
                       rf"got {wrong!r}".replace("[", r"\[").replace("]", r"\]")):
        get_profile(wrong)


def test_an_unknown_profile_in_the_environment_says_to_change_the_variable(monkeypatch):
    """Even when the notebook's value wins: a typo in the variable would otherwise go unnoticed until it is needed."""
    monkeypatch.setenv("GENMODELS_PROFILE", "fast")
    with pytest.raises(ValueError, match="set GENMODELS_PROFILE to one of them, or unset it"):
        get_profile("quick")


def test_an_unknown_device_names_where_it_came_from(monkeypatch):
    monkeypatch.setenv("GENMODELS_DEVICE", "gpu")
    with pytest.raises(ValueError, match=r"unknown device 'gpu' \(from the environment variable "
                       r"GENMODELS_DEVICE='gpu'\); choose 'cuda'.*'mps'.*'cpu', or 'auto'"):
        device.get_device(profile="full")
    monkeypatch.delenv("GENMODELS_DEVICE")
    with pytest.raises(ValueError, match=r"unknown device 'gpu' \(from the device argument\)"):
        device.get_device("gpu")
    with pytest.raises(ValueError, match=r"device must be a string such as 'cuda'.*got 0 \(int\)"):
        device.get_device(0)
    with pytest.raises(ValueError, match=r"device 'meta' \(from the device argument\) is not one the course supports"):
        device.get_device("meta")
    assert device.get_device(" CPU ") == torch.device("cpu")  # case and spaces do not matter


def test_a_missing_cuda_requested_by_the_environment_says_to_change_the_variable(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv("GENMODELS_DEVICE", "cuda")
    with pytest.raises(ValueError, match=r"'cuda' was asked for but is not available here: torch.cuda.is_available\(\) "
                       r"is False.*came from the environment variable GENMODELS_DEVICE='cuda'.*unset GENMODELS_DEVICE"
                       ) as info:
        device.get_device(None, profile="full")
    assert "device=None" not in str(info.value)  # None would read the same variable again
    with pytest.raises(ValueError, match=r"came from the device argument.*device=None would read "
                       r"GENMODELS_DEVICE='cuda' instead"):
        device.get_device("cuda", profile="full")
    monkeypatch.setenv("GENMODELS_DEVICE", "auto")
    assert device.get_device(None, profile="full") == torch.device("cpu") or torch.backends.mps.is_available()


def test_a_cuda_index_beyond_the_gpus_present_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(ValueError, match=r"device 'cuda:3' \(from the device argument\) does not exist: this machine "
                       r"has 1 CUDA device\(s\)"):
        device.get_device("cuda:3")


def test_a_quick_profile_result_says_so_in_one_line_and_a_full_one_says_nothing(capsys):
    from genmodels.profiles import PROFILES

    PROFILES["quick"].note("3 epochs on 8,000 images", "the real thing")
    PROFILES["full"].note("20 epochs on 60,000 images", "the real thing")
    assert capsys.readouterr().out == "(quick profile: 3 epochs on 8,000 images, a run of seconds; the full profile " \
                                      "shows the real thing)\n"


def test_a_long_note_wraps_at_spaces_never_inside_a_word(capsys):
    from genmodels.profiles import PROFILES

    words = [f"word{i}" for i in range(60)]
    PROFILES["quick"].note(" ".join(words[:30]), " ".join(words[30:]))
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) > 1 and all(len(line) <= 100 for line in lines)
    assert " ".join(lines).split() == f"(quick profile: {' '.join(words[:30])}, a run of seconds; the full profile " \
                                      f"shows {' '.join(words[30:])})".split()  # every word whole, in order


def test_small_ops_run_on_one_cpu_thread_and_the_count_comes_back(monkeypatch):
    """threads_for: one thread below SMALL_WORK on the CPU, torch's count at or above it and off the CPU; restored on
    exit, an exception included (the samplers of the small models run inside it)."""
    monkeypatch.setattr(torch, "get_num_threads", lambda: calls[-1] if calls else 2)
    calls = []
    monkeypatch.setattr(torch, "set_num_threads", calls.append)
    with device.threads_for(device.SMALL_WORK - 1, "cpu"):
        assert calls == [1]
    assert calls == [1, 2]
    calls.clear()
    for work, where in ((device.SMALL_WORK, "cpu"), (10, "cuda"), (10, "mps")):
        with device.threads_for(work, where):
            pass
    assert calls == []  # large ops, and other devices, keep torch's count
    with pytest.raises(RuntimeError), device.threads_for(10, "cpu"):
        raise RuntimeError("a failing block")
    assert calls == [1, 2]


@pytest.mark.parametrize("threads, line", [(1, "cpu (1 thread)"), (2, "cpu (2 threads)")])
def test_the_device_line_counts_the_cpu_threads_in_words(monkeypatch, threads, line):
    """What a notebook's first line says of the CPU (one thread under torchrun's processes)."""
    monkeypatch.setattr(torch, "get_num_threads", lambda: threads)
    assert device.describe("cpu") == line


def test_the_full_profile_takes_the_gpu_lengths_on_a_gpu_and_says_which_in_setup_line(monkeypatch, capsys):
    """pick(quick, full, gpu): the quick value in the quick profile on any device; in the full profile the gpu value on
    CUDA and MPS, the full (CPU) value on the CPU or when no gpu value is given. setup records the device's type and
    its one line names the column of the table."""
    full = get_profile("full")
    for kind, expected in (("cpu", 4), ("cuda", 30), ("mps", 30)):
        assert replace(full, device_type=kind).pick(quick=1, full=4, gpu=30) == expected
        assert replace(full, device_type=kind).pick(quick=1, full=4) == 4
        assert replace(get_profile("quick"), device_type=kind).pick(quick=1, full=4, gpu=30) == 1
    import genmodels

    monkeypatch.delenv("GENMODELS_PROFILE", raising=False)
    monkeypatch.delenv("GENMODELS_DEVICE", raising=False)
    profile, chosen = genmodels.setup("full", "cpu", 0)
    assert profile.device_type == "cpu" and profile.pick(quick=1, full=4, gpu=30) == 4
    assert capsys.readouterr().out.startswith("full profile, CPU lengths (ten minutes a notebook), cpu (")
    genmodels.setup("quick", None, 0)
    assert capsys.readouterr().out.startswith("quick profile, cpu (")
