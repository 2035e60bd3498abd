"""How rbm.fit chooses its kernels (genmodels.rbm_fast.choice): pinned by GENMODELS_RBM_KERNELS, else measured once
per machine and kept in a cache file. No test here times anything: comparisons run on a fake clock or give fixed
verdicts, except where a real measurement is checked for what it must leave untouched. The kernels themselves are
checked against the reference in test_rbm.py."""

import json

import pytest
import torch
from conftest import random_rbm

from genmodels import paths, rbm_fast
from genmodels import rbm as R

pytestmark = pytest.mark.usefixtures("one_thread")

WORKLOAD = "20x7, CD-1, batch 13, 1 threads"


@pytest.fixture
def measuring(tmp_path, monkeypatch):
    """GENMODELS_RBM_KERNELS=measure with an empty build folder and no choice made yet in this process; returns the
    list of comparisons made, which a fake _faster records (the incumbent always wins, its timings settled)."""
    monkeypatch.setenv(rbm_fast.ENV_VAR, "measure")
    monkeypatch.setattr(paths, "BUILD_DIR", tmp_path)
    monkeypatch.setattr(rbm_fast, "_chosen", {})
    compared = []

    def incumbent_wins(incumbent, incumbent_fn, other, other_fn, budget):
        compared.append((incumbent, other))
        return incumbent, True, {incumbent: 1.0, other: 1.1}

    monkeypatch.setattr(rbm_fast, "_faster", incumbent_wins)
    return compared


def choose(n_visible=20, n_hidden=7, dtype=torch.float32):
    return rbm_fast.choice(R.RBM(n_visible, n_hidden).to(dtype), batch_size=13)


def test_the_kernels_are_measured_once_per_machine_and_kept(measuring, monkeypatch):
    kernels = choose()
    assert kernels[:3] == rbm_fast.fast_kernels()[:3] and kernels.how.startswith("measured on this machine")
    assert measuring == ([("fused", "plain")] if rbm_fast.fused_available() else []) + [
        ("16 bits", "reference"), ("fast", "reference")]  # the product, the sampler, then the whole step
    kept = json.loads(rbm_fast.cache_path().read_text())
    assert kept["machine"] == rbm_fast.machine() and list(kept["choices"]) == [WORKLOAD]

    fake = rbm_fast._faster
    monkeypatch.setattr(rbm_fast, "_chosen", {})  # a new process on the same machine reads the file
    monkeypatch.setattr(rbm_fast, "_faster", None)  # and measures nothing
    again = choose()
    assert again[:3] == kernels[:3] and again.how.startswith("as measured on this machine")
    monkeypatch.setattr(rbm_fast, "_faster", fake)
    assert choose(20, 8).how.startswith("measured")  # another shape is another workload, kept beside the first
    kept = json.loads(rbm_fast.cache_path().read_text())["choices"]
    assert list(kept) == [WORKLOAD, "20x8, CD-1, batch 13, 1 threads"]


def test_the_other_kernel_replaces_the_incumbent_only_when_clearly_faster():
    margin = rbm_fast.MARGIN
    assert margin >= 1.2  # "clearly": by a fifth at least
    assert rbm_fast.preferred("fused", "plain", {"fused": 0.99 * margin, "plain": 1.0}) == "fused"
    assert rbm_fast.preferred("fused", "plain", {"fused": 1.01 * margin, "plain": 1.0}) == "plain"
    assert rbm_fast.preferred("fused", "plain", {"fused": 1.0, "plain": 2.0}) == "fused"


@pytest.mark.parametrize(("costs", "winner", "settled"), [
    ({"fused": [1.0], "plain": [0.5]}, "plain", True),
    ({"fused": [1.0], "plain": [0.9]}, "fused", True),
    ({"fused": [1.0], "plain": [0.5, 0.5, 0.5, 2.0]}, "plain", True),  # every third call slowed: the median holds
    ({"fused": [1.0], "plain": [0.5, 2.0, 2.0, 0.5]}, "plain", False),  # two calls in three slowed by a neighbour
    ({"fused": [1.0], "plain": [50.0, 150.0]}, "fused", False),  # three rounds would take over three budgets
    ({"fused": [1.0], "plain": [200.0]}, "fused", False)],  # the warm-up alone takes more than the budget
    ids=["clearly faster", "within the margin", "an outlier", "spread", "slowed", "too slow to start"])
def test_a_comparison_takes_the_fastest_times_and_says_whether_they_settled(costs, winner, settled, monkeypatch):
    """_faster on a fake clock, in milliseconds, with a budget of 100: a contestant's first call (the warm-up) costs
    its first cost, the next calls its other costs in turn (or the first again)."""
    clock, calls = [0.0], {name: 0 for name in costs}

    def contestant(name):
        def call():
            first, *then = costs[name]
            clock[0] += (then[(calls[name] - 1) % len(then)] if then and calls[name] else first) * 1e-3
            calls[name] += 1
        return call

    monkeypatch.setattr(rbm_fast, "time", type("FakeTime", (), {"perf_counter": staticmethod(lambda: clock[0])}))
    chosen, is_settled, fastest = rbm_fast._faster("fused", contestant("fused"), "plain", contestant("plain"), 0.1)
    assert (chosen, is_settled) == (winner, settled)
    if settled:
        assert fastest == pytest.approx({"fused": 1e-3, "plain": min(costs["plain"]) * 1e-3})


def other_twice_as_fast(record: list, settled: bool):
    """A fake _faster in which the other kernel is twice as fast; it records each incumbent it was asked about."""
    def faster(incumbent, incumbent_fn, other, other_fn, budget):
        record.append(incumbent)
        return other, settled, {incumbent: 2.0, other: 1.0}
    return faster


def test_a_measured_winner_is_used_for_the_next_parts_and_kept(measuring, monkeypatch):
    """The plain product and the reference's samples win: the sampler is compared within the plain step, and the
    whole step with both; a reference step that wins makes the choice the reference."""
    steps = []
    monkeypatch.setattr(rbm_fast, "_faster", other_twice_as_fast(steps, settled=True))
    kernels = choose()
    assert kernels[:3] == ("reference", "plain", "reference")
    assert json.loads(rbm_fast.cache_path().read_text())["choices"][WORKLOAD]["step"] == "reference"
    assert steps[-1] == "fast"


def test_timings_that_spread_leave_the_incumbents_for_this_process_and_are_not_kept(measuring, monkeypatch):
    calls = []
    monkeypatch.setattr(rbm_fast, "_faster", other_twice_as_fast(calls, settled=False))
    kernels = choose()
    assert kernels[:3] == rbm_fast.fast_kernels()[:3] and "too busy to measure" in kernels.how
    assert not rbm_fast.cache_path().exists() and len(calls) == 1
    assert choose() == kernels and len(calls) == 1  # the same choice for the rest of the process
    monkeypatch.setattr(rbm_fast, "_chosen", {})
    choose()
    assert len(calls) == 2  # the next process measures again


def foreign_files():
    entry = {"step": "reference", "product": "plain", "sampler": "reference"}
    files = {"not a dict": [],
             "another machine": {"machine": "another machine, torch 0.1", "choices": {WORKLOAD: entry}},
             "an unknown kernel": {"machine": rbm_fast.machine(), "choices": {WORKLOAD: {**entry, "step": "warp"}}},
             "an entry cut short": {"machine": rbm_fast.machine(), "choices": {WORKLOAD: {"step": "reference"}}}}
    return {"damaged": b"\xff\x00{ not json"} | {kind: json.dumps(content).encode() for kind, content in files.items()}


@pytest.mark.parametrize("kind", ["damaged", "not a dict", "another machine", "an unknown kernel",
                                  "an entry cut short"])
def test_a_damaged_or_foreign_cache_file_is_measured_again(measuring, kind):
    content = foreign_files()[kind]
    rbm_fast.cache_path().parent.mkdir(parents=True)
    rbm_fast.cache_path().write_bytes(content)
    kernels = choose()
    assert kernels.how.startswith("measured on this machine") and measuring
    kept = json.loads(rbm_fast.cache_path().read_text())
    assert kept["machine"] == rbm_fast.machine() and kept["choices"][WORKLOAD]["step"] == "fast"


def test_the_environment_variable_pins_the_kernels_without_measuring(measuring, monkeypatch):
    monkeypatch.setattr(rbm_fast, "_faster", None)
    monkeypatch.setenv(rbm_fast.ENV_VAR, "fast")
    assert choose()[:3] == rbm_fast.fast_kernels()[:3] == ("fast", "fused" if rbm_fast.fused_available() else "plain",
                                                          "16 bits")
    assert str(choose()) == ("RBM kernels: the fast step (" + ("oneDNN's fused product and sigmoid" if
                             rbm_fast.fused_available() else "addmm then sigmoid") + ", 16-bit samples); pinned by "
                             "GENMODELS_RBM_KERNELS=fast")
    monkeypatch.setenv(rbm_fast.ENV_VAR, "reference")
    assert choose().step == "reference" and str(choose()).endswith("pinned by GENMODELS_RBM_KERNELS=reference")
    assert not rbm_fast.cache_path().exists()
    monkeypatch.setenv(rbm_fast.ENV_VAR, "fastest")
    with pytest.raises(ValueError, match="GENMODELS_RBM_KERNELS must be 'fast', 'reference' or 'measure'"):
        choose()


def test_unpinned_the_quick_profile_takes_the_fast_kernels_and_the_full_profile_measures(measuring, monkeypatch):
    """A student's quick-profile run reproduces the committed outputs on any machine; the full profile measures."""
    import genmodels

    monkeypatch.delenv(rbm_fast.ENV_VAR)
    monkeypatch.setattr(rbm_fast, "unpinned", rbm_fast.unpinned)  # restored after the test
    genmodels.setup("quick", "cpu")
    assert choose()[:3] == rbm_fast.fast_kernels()[:3] and "the quick profile's" in str(choose()) and not measuring
    genmodels.setup("full", "cpu")
    assert choose()[:3] == rbm_fast.fast_kernels()[:3] and measuring  # measured: the fake _faster keeps incumbents


def test_parameters_other_than_float32_on_the_cpu_take_the_reference(measuring, monkeypatch):
    monkeypatch.setenv(rbm_fast.ENV_VAR, "fast")
    assert choose(dtype=torch.float64).step == "reference"
    assert "float64 on cpu" in choose(dtype=torch.float64).how


@pytest.mark.parametrize("pinned", ["fast", "reference"])
def test_fit_trains_with_the_chosen_step(pinned, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the step that was not chosen")

    monkeypatch.setenv(rbm_fast.ENV_VAR, pinned)
    if pinned == "fast":
        monkeypatch.setattr(R.RBM, "contrastive_divergence", refuse)
    else:
        monkeypatch.setattr(rbm_fast, "cd_step", refuse)
    x = torch.bernoulli(torch.full((40, 6), 0.5), generator=torch.Generator().manual_seed(0))
    model = random_rbm(6, 3)
    R.fit(model, x, epochs=1, batch_size=10, progress="none")
    assert model.n_updates == 4


def test_a_measurement_leaves_the_random_stream_and_the_model_as_they_were(tmp_path, monkeypatch):
    """A real measurement (its timings are not checked): torch's global random state and the model are untouched,
    and the choice is one of the kernels, measured or (on a busy machine) the incumbents."""
    monkeypatch.setenv(rbm_fast.ENV_VAR, "measure")
    monkeypatch.setattr(paths, "BUILD_DIR", tmp_path)
    monkeypatch.setattr(rbm_fast, "_chosen", {})
    model = random_rbm(30, 10)
    names = ("W", "b", "c", "dW", "db", "dc", "chains")
    before, state = {name: getattr(model, name).clone() for name in names}, torch.get_rng_state()
    kernels = rbm_fast.choice(model, batch_size=20, k=2, persistent=True)
    assert torch.equal(torch.get_rng_state(), state)
    assert all(torch.equal(before[name], getattr(model, name)) for name in names) and model.n_updates == 0
    assert kernels.step in ("fast", "reference") and kernels.how.startswith(("measured", "the incumbents"))
    assert set(kernels.seconds) >= {"sampler: 16 bits", "sampler: reference"} or "too busy" in kernels.how
