"""The explorers (genmodels.explorers): what a slider's position computes, checked against closed forms and independent
computations; the widget driven as a student's hand would, by setting a control's value or clicking a preset."""

import math

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

from genmodels import ebm, explorers, profiles  # noqa: E402


@pytest.fixture(scope="module")
def langevin_explorer():
    return explorers.LangevinExplorer(n_chains=1000, seed=0)


def test_temperature_is_sigma_squared_over_two_eta_at_every_marked_noise(langevin_explorer):
    expected = {"√(2η): ULA, T = 1": 1.0, "√η: the lecture's, T = ½": 0.5,
                "tutorials' σ = 0.005 at η = 10": ebm.TUTORIAL_SAMPLER.temperature}
    assert ebm.TUTORIAL_SAMPLER.temperature == pytest.approx(1.25e-6)
    for label, multiple in explorers.NOISE_PRESETS:
        r = langevin_explorer.update(step_size=0.1, noise=multiple, n_steps=5)
        assert r["sigma"] == pytest.approx(multiple * math.sqrt(2 * 0.1))
        assert r["temperature"] == pytest.approx(r["sigma"] ** 2 / (2 * 0.1))
        assert r["temperature"] == pytest.approx(expected[label])


@pytest.mark.parametrize("multiple", [1.0, 1 / math.sqrt(2)])
def test_ula_variance_is_the_closed_form_stationary_one(langevin_explorer, multiple):
    """Along an axis of variance v, ULA with noise k√(2η) is AR(1) with coefficient 1 - η/v: its stationary variance
    is 2k²η / (1 - (1 - η/v)²) = k² v / (1 - η/(2v)). After 1,000 steps of 1,000 chains (τ ≈ v/η ≤ 18 steps) the
    chains' variance estimates it to a relative standard error √(2/1000) ≈ 4.5 %: 15 % is over 3 of them."""
    step = 0.1
    r = langevin_explorer.update(step_size=step, noise=multiple, n_steps=1000)
    v = r["target_variances"].numpy()
    assert v == pytest.approx([0.2, 1.8])
    closed_form = multiple**2 * v / (1 - step / (2 * v))
    assert r["stationary_variances"].numpy() == pytest.approx(closed_form, rel=1e-9)
    assert r["ula_variances"].numpy() == pytest.approx(closed_form, rel=0.15)
    assert r["mala_variances"].numpy() == pytest.approx(v, rel=0.15)  # MALA: the target's, whatever the step


def independent_mala_acceptance(cov, step, n=400_000, seed=1):
    """E[min(1, p(y) q(x|y) / (p(x) q(y|x)))] for x ~ N(0, Σ) exact and y its MALA proposal, in NumPy (float64)."""
    rng = np.random.default_rng(seed)
    precision = np.linalg.inv(cov)
    x = rng.multivariate_normal(np.zeros(2), cov, size=n)

    def log_p(z):
        return -0.5 * np.einsum("ni,ij,nj->n", z, precision, z)

    def log_q(to, frm):
        return -((to - frm - step * (-frm @ precision)) ** 2).sum(1) / (4 * step)

    y = x + step * (-x @ precision) + math.sqrt(2 * step) * rng.standard_normal((n, 2))
    return np.minimum(1.0, np.exp(log_p(y) + log_q(x, y) - log_p(x) - log_q(y, x))).mean()


@pytest.mark.parametrize("step", [0.1, 0.3])
def test_mala_acceptance_matches_an_independent_computation(langevin_explorer, step):
    """The explorer's rate averages all 1,000 steps, the first few (≈ v/η ≤ 18) still away from the target:
    0.02 allows for them and for the Monte Carlo error of both (about 0.003)."""
    r = langevin_explorer.update(step_size=step, noise=1.0, n_steps=1000)
    cov = langevin_explorer.targets["correlated Gaussian"].cov.numpy()
    assert r["acceptance"] == pytest.approx(independent_mala_acceptance(cov, step), abs=0.02)


def test_mala_accepts_nearly_every_move_as_the_step_vanishes(langevin_explorer):
    """The proposal's error in the log acceptance is O(η^(3/2)): at η = 0.001, below 1 % of moves are rejected."""
    r = langevin_explorer.update(step_size=1e-3, n_steps=200)
    assert r["acceptance"] > 0.99
    assert independent_mala_acceptance(langevin_explorer.targets["correlated Gaussian"].cov.numpy(), 1e-3) > 0.99


def test_ula_beyond_twice_the_smallest_variance_diverges_and_says_so(langevin_explorer):
    r = langevin_explorer.update(step_size=0.45, n_steps=300)
    assert r["ula"] is None and r["stationary_variances"] is None
    assert "ULA diverged" in langevin_explorer.readout(r)
    assert 0 < r["acceptance"] < 0.6  # MALA still runs, rejecting more


def test_a_short_chain_shows_its_start_not_the_target(langevin_explorer):
    """The chains start from N(0, 2² I): after 10 steps of η = 0.05 the wide axis (variance 1.8, τ ≈ 36 steps) still
    holds most of the start's variance 4; after 1,000 it is the target's."""
    short, long = (langevin_explorer.update(n_steps=n)["ula_variances"][1].item() for n in (10, 1000))
    assert short > 3.0
    assert long == pytest.approx(1.83, rel=0.15)


def test_mixture_target_reports_total_variation_beside_exact_draws(langevin_explorer):
    r = langevin_explorer.update(target="Gaussian mixture", n_steps=300)
    assert 0 < r["tv_floor"] < 0.25
    assert r["mala_tv"] < r["tv_floor"] + 0.1 and "TV" in langevin_explorer.readout(r)
    assert r["temperature"] == pytest.approx(1.0)


def test_moving_a_slider_or_clicking_a_preset_recomputes_the_readout():
    explorer = explorers.LangevinExplorer(n_chains=200)
    box = explorer.widget()
    assert box.result["temperature"] == pytest.approx(1.0) and "T = σ²/(2η) = 1\n" in box.readout.value
    box.controls["noise"].value = 1 / math.sqrt(2)
    assert box.result["temperature"] == pytest.approx(0.5) and "T = σ²/(2η) = 0.5\n" in box.readout.value
    assert "redraw" in box.readout.value
    tutorials = next(b for row in box.children[:len(explorer.knobs)] for b in row.children[1:]
                     if b.description.startswith("tutorials"))
    tutorials.click()
    assert box.result["temperature"] == pytest.approx(1.25e-6, rel=0.01)  # the slider rounds to its 0.01 decades
    box.controls["target"].value = "Gaussian mixture"
    assert "Gaussian mixture" in box.readout.value and "TV" in box.readout.value


def test_show_prints_one_line_where_no_front_end_shows_widgets(capsys):
    quick = profiles.get_profile("quick")
    assert explorers.widgets_shown(quick) == "no notebook kernel"
    explorers.show(explorers.LangevinExplorer(n_chains=10), quick)
    assert capsys.readouterr().out.count("\n") == 1


def test_unknown_knob_names_the_knobs(langevin_explorer):
    with pytest.raises(ValueError, match="no knob 'eta'.*step_size"):
        langevin_explorer.update(eta=0.1)


def test_static_prints_one_line_per_setting_and_draws_a_row_each(capsys, langevin_explorer):
    import matplotlib.pyplot as plt

    assert langevin_explorer.static([{"n_steps": 5}, {"n_steps": 5, "noise": 0.5}]) is None
    assert len(langevin_explorer.shown) == 2 and capsys.readouterr().out.count("η = 0.05") == 2
    assert len(plt.gcf().axes) == 6
    plt.close("all")


@pytest.fixture(scope="module")
def ising_explorer():
    """Two RBMs that know nothing (W = 0, b = 0: every spin ±1 with probability ½), "trained" at T = 1.8 and 3."""
    from genmodels import rbm

    return explorers.IsingExplorer({1.8: rbm.RBM(64, 4, init_std=0.0), 3.0: rbm.RBM(64, 4, init_std=0.0)},
                                   n_lattices=20, n_samples=10)


def test_ising_rbm_panel_snaps_to_the_nearest_trained_temperature(ising_explorer):
    for T, snapped in ((1.2, 1.8), (2.39, 1.8), (2.41, 3.0), (3.6, 3.0)):
        assert ising_explorer.nearest_trained(T) == snapped
    r = ising_explorer.update(temperature=2.0)
    assert r["rbm_temperature"] == 1.8 and "RBM trained at T = 1.800" in ising_explorer.readout(r)


def test_ising_metropolis_at_low_temperature_matches_onsager(ising_explorer):
    """Below T_c the 8×8 lattice's finite-size correction is exponentially small: at T = 1.5 its energy per site is
    Onsager's to within its Monte Carlo error (about 0.004 with 20 lattices × 10 samples; 0.02 is 5 of them)."""
    r = ising_explorer.update(temperature=1.5)
    assert r["onsager_energy"] == pytest.approx(-1.951, abs=1e-3)
    assert r["monte_carlo"]["energy"][0] == pytest.approx(r["onsager_energy"], abs=0.02)
    assert r["onsager_magnetisation"] == pytest.approx(0.986, abs=1e-3)


def test_ising_rbm_of_independent_spins_has_zero_energy(ising_explorer):
    """W = 0, b = 0: neighbouring spins are independent, so ⟨s_i s_j⟩ = 0 and u = 0 within 5 standard errors."""
    fit = ising_explorer.update(temperature=3.3)["rbm"]
    value, error = fit["energy"]
    assert abs(value) < 5 * error + 1e-3


def test_ising_slider_recomputes_and_keeps_the_points_it_visited(ising_explorer):
    box = ising_explorer.widget()
    box.controls["temperature"].value = 3.5
    assert box.result["temperature"] == pytest.approx(3.5) and "T = 3.500" in box.readout.value
    assert 3.5 in ising_explorer.visited and box.result["rbm_temperature"] == 3.0


@pytest.fixture(scope="module")
def energy_explorer():
    """An untrained energy model with a small buffer, judged by an untrained judge: what the explorer computes, not
    what a trained model generates."""
    import torch

    from genmodels import judge

    model = ebm.EnergyModel(buffer_size=64, generator=torch.Generator().manual_seed(0))
    return explorers.EnergyModelExplorer(model, judge.Judge(dataset="MNIST").eval(), n=16, seed=3)


def test_energy_explorer_at_its_defaults_is_the_generation_sampler(energy_explorer):
    assert energy_explorer.settings() == {"n_steps": ebm.GENERATE.n_steps, "step_size": ebm.GENERATE.step_size,
                                          "noise": ebm.GENERATE.noise, "start": "noise"}
    r = energy_explorer.update(n_steps=5)
    sampler = ebm.Sampler(n_steps=5, step_size=ebm.GENERATE.step_size, noise=ebm.GENERATE.noise,
                          grad_clamp=ebm.GENERATE.grad_clamp)
    expected = ebm.generate(energy_explorer.model, 16, sampler, seed=3)
    assert r["images"].shape == (16, 1, 28, 28)
    assert (r["images"] - expected).abs().max() < 1e-4  # the same chains (one thread here: float rounding only)
    assert r["temperature"] == pytest.approx(ebm.GENERATE.temperature) == pytest.approx(1.25e-6)


def test_energy_explorer_starts_from_the_buffer_when_asked(energy_explorer):
    r = energy_explorer.update(n_steps=5, start="buffer")
    sampler = ebm.Sampler(n_steps=5, grad_clamp=ebm.GENERATE.grad_clamp)
    expected = ebm.generate(energy_explorer.model, 16, sampler, from_buffer=True, seed=3)
    assert (r["images"] - expected).abs().max() < 1e-4
    assert (r["images"] - energy_explorer.update(n_steps=5)["images"]).abs().max() > 0.1


def test_energy_explorer_reports_the_judges_classes_and_the_temperature(energy_explorer):
    from genmodels import judge, measures

    r = energy_explorer.update(n_steps=3, step_size=0.5, noise=0.1)
    assert r["temperature"] == pytest.approx(0.1**2 / (2 * 0.5))
    p = judge.probabilities(energy_explorer.referee, r["images"])
    assert r["classes"] == measures.classes_covered(p) and sum(r["counts"]) == 16
    assert r["counts"] == p.argmax(1).bincount(minlength=10).tolist()
    assert f"{r['classes']} classes covered" in energy_explorer.readout(r)


def test_energy_slider_and_preset_recompute(energy_explorer):
    box = energy_explorer.widget()
    box.controls["n_steps"].value = 2
    box.controls["noise"].value = 0.2
    assert box.result["settings"]["n_steps"] == 2 and box.result["temperature"] == pytest.approx(0.2**2 / 20, rel=0.03)
    preset = box.children[2].children[1]
    preset.click()
    assert box.controls["noise"].value == pytest.approx(0.005, rel=0.03)
    assert "T = σ²/(2η) = 1.2" in box.readout.value


def test_widgets_show_in_a_kernel_only_where_the_profile_reports_by_bar(monkeypatch):
    """Inside a kernel: the full profile (progress "bar", a student's JupyterLab) shows the sliders; the quick profile
    and `make run` (GENMODELS_PROGRESS=plain) store their outputs, which must hold no widget state."""
    import IPython

    class Shell:
        kernel = object()

    monkeypatch.setattr(IPython, "get_ipython", lambda: Shell())
    assert explorers.widgets_shown(profiles.get_profile("full")) is None
    assert "quick profile" in explorers.widgets_shown(profiles.get_profile("quick"))
    monkeypatch.setenv("GENMODELS_PROGRESS", "plain")
    assert "full profile" in explorers.widgets_shown(profiles.get_profile("full"))
