"""genmodels.ising: exact enumeration, Onsager's formulas, the Monte Carlo samplers, and the exact KL of an RBM."""

import math

import numpy as np
import pytest
import torch

from genmodels import ising
from genmodels.rbm import RBM, binary_states

T_C = ising.CRITICAL_TEMPERATURE

# L = 4, periodic, per site (log Z for the whole lattice), from the brief of notebook 07.
PUBLISHED_4X4 = {2.0: dict(log_z=17.105367, energy=-1.755380, specific_heat=0.605533, abs_magnetisation=0.918943),
                 3.0: dict(log_z=13.281033, energy=-1.017070, specific_heat=0.603135, abs_magnetisation=0.601291)}


@pytest.mark.parametrize("T", sorted(PUBLISHED_4X4))
def test_enumeration_reproduces_published_4x4_values(T):
    result = ising.exact(4, T)
    for name, value in PUBLISHED_4X4[T].items():
        assert getattr(result, name) == pytest.approx(value, abs=2e-6), name  # the values are quoted to 6 decimals


def test_boltzmann_probabilities_follow_the_energy_and_the_exact_log_z():
    """log p(s) = -H(s)/T - log Z, with log Z from ising.exact (its own test checks it against published values)."""
    T = 2.0
    log_p = ising.boltzmann_log_probabilities(4, T)
    states = ising.all_states(4)
    expected = -ising.energy(states).double() / T - ising.exact(4, T).log_z
    torch.testing.assert_close(log_p.double(), expected, rtol=0, atol=1e-9)
    assert log_p.argmax().item() in (0, len(states) - 1)  # the two ground states, all down and all up
    assert ising.energy(states[[0, -1]]).tolist() == [-32.0, -32.0]


def test_spins_and_visible_units_map_one_to_one_in_binary_states_order():
    states = ising.all_states(2)
    assert torch.equal(ising.spins_to_visible(states), binary_states(4))
    assert torch.equal(ising.visible_to_spins(ising.spins_to_visible(states)), states)


@pytest.mark.parametrize("method", ["metropolis", "wolff"])
@pytest.mark.parametrize("T", [2.0, T_C, 3.0], ids=["T=2", "T=Tc", "T=3"])
def test_sampler_reproduces_exact_4x4_energy_and_abs_magnetisation(method, T):
    """Within 4 standard errors, the errors from the measured autocorrelation time (fixed seeds: not flaky)."""
    run = ising.sample(4, T, n_lattices=100, n_samples=100, method=method, pilot=100, seed=1)
    assert run.method == method and run.spins.shape == (100, 100, 4, 4)
    assert run.burn_in >= 20 * run.tau and run.thin == math.ceil(run.tau)
    measured, exact = ising.thermodynamics(run.spins, T), ising.exact(4, T)
    for name in ("energy", "abs_magnetisation"):
        value, error = measured[name]
        assert abs(value - getattr(exact, name)) < 4 * error, (name, value, error, getattr(exact, name))


def test_onsager_formulas_give_the_published_values():
    assert T_C == pytest.approx(2.269185, abs=1e-6)  # Onsager 1944: 2/ln(1 + √2)
    assert ising.onsager_energy(T_C) == pytest.approx(-math.sqrt(2), abs=1e-12)  # u(T_c) = -√2
    assert ising.onsager_magnetisation(2.0) == pytest.approx(0.911319, abs=1e-6)  # (1 - sinh⁻⁴ 1)^(1/8)
    assert ising.onsager_magnetisation(T_C + 1e-9) == 0 and ising.onsager_magnetisation(3.0) == 0
    assert ising.onsager_energy(0.5) == pytest.approx(-2.0, abs=1e-6)  # the ground state
    assert ising.onsager_energy(T_C * (1 + 1e-9)) == pytest.approx(-math.sqrt(2), abs=1e-6)  # continuous at T_c


@pytest.mark.parametrize("T", [1.5, 2.0, 3.0])
def test_onsager_energy_is_the_derivative_of_onsager_free_energy(T):
    """u = -d(log Z/N)/dβ, with log Z/N = ln 2 + (1/8π²)∬ ln[cosh²2β - sinh 2β (cos θ + cos φ)] dθ dφ over [0, 2π]²
    (a periodic integrand: the midpoint rule converges fast away from T_c); a central difference in β."""
    theta = (np.arange(400) + 0.5) * 2 * np.pi / 400
    cos_sum = np.cos(theta)[:, None] + np.cos(theta)[None, :]

    def log_z_per_site(beta):
        return np.log(2) + 0.5 * np.log(np.cosh(2 * beta) ** 2 - np.sinh(2 * beta) * cos_sum).mean()

    beta, d = 1 / T, 1e-5
    u = -(log_z_per_site(beta + d) - log_z_per_site(beta - d)) / (2 * d)
    assert ising.onsager_energy(T) == pytest.approx(u, abs=1e-6)


@pytest.mark.parametrize("n_hidden", [8, 20], ids=["sum over hidden", "sum over visible"])
def test_zero_weight_rbm_is_independent_spins_with_closed_form_kl(n_hidden):
    """With W = 0 the RBM is p(v) = Π_i σ(b_i)^v_i (1 - σ(b_i))^(1 - v_i); every spin is up half the time under
    Boltzmann (the s → -s symmetry), so KL = -H - Σ_i ½ [log σ(b_i) + log(1 - σ(b_i))], = N ln 2 - H for b = 0."""
    T = 2.0
    rbm = RBM(16, n_hidden, init_std=0.0)
    with torch.no_grad():
        rbm.b.copy_(torch.linspace(-1, 1, 16))
        rbm.c.copy_(torch.linspace(-2, 2, n_hidden))  # the hidden biases cancel between F(v) and log Z
    b = rbm.b.double()
    closed_form = -ising.exact(4, T).entropy - 0.5 * (torch.nn.functional.logsigmoid(b)
                                                      + torch.nn.functional.logsigmoid(-b)).sum().item()
    assert ising.exact_kl_divergence(rbm, T) == pytest.approx(closed_form, abs=1e-9)
    with torch.no_grad():
        rbm.b.zero_()
    assert ising.exact_kl_divergence(rbm, T) == pytest.approx(16 * math.log(2) - ising.exact(4, T).entropy, abs=1e-9)


def test_exact_samples_have_the_exact_energy():
    samples = ising.exact_samples(4, 2.0, 20_000, generator=torch.Generator().manual_seed(0))
    e = (ising.energy(samples) / 16).double()
    assert abs(e.mean().item() - ising.exact(4, 2.0).energy) < 4 * e.std().item() / math.sqrt(len(e))


def test_rbm_samples_are_spins_drawn_from_the_rbm():
    """An RBM with W = 0 has independent visible units with p(v_i = 1) = σ(b_i): its spin samples, mapped back to
    visible units, must have those means (within 5 standard errors of 4,000 independent draws per site)."""
    rbm = RBM(16, 4, init_std=0.0)
    with torch.no_grad():
        rbm.b.copy_(torch.linspace(-2, 2, 16))
    spins = ising.rbm_samples(rbm, n_chains=400, n_records=10, burn_in=2, thin=1,
                              generator=torch.Generator().manual_seed(0))
    assert spins.shape == (10, 400, 4, 4) and spins.dtype == torch.int8
    means = ising.spins_to_visible(spins).reshape(-1, 16).double().mean(0)
    p = torch.sigmoid(rbm.b.detach().double())
    assert ((means - p).abs() <= 5 * (p * (1 - p) / 4000).sqrt()).all()
    assert set(ising.thermodynamics(spins, 2.0)) == {"energy", "abs_magnetisation", "specific_heat"}


def test_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match=r"L must be an integer of at least 2, got L=1"):
        ising.sample(1, 2.0)
    with pytest.raises(ValueError, match=r"temperature must be positive and finite, got T=0"):
        ising.exact(4, 0)
    with pytest.raises(ValueError, match=r"temperature must be positive and finite, got T=-1"):
        ising.metropolis(torch.ones(2, 2), -1.0)
    with pytest.raises(ValueError, match=r"spins must be \+1 or -1, got values such as \[0\.0\].*visible_to_spins"):
        ising.energy(torch.zeros(4, 4))
    with pytest.raises(ValueError, match=r"needs an even L.*L=3"):
        ising.metropolis(torch.ones(3, 3), 2.0)
    with pytest.raises(ValueError, match=r"2\^25 states; use L ≤ 4"):
        ising.exact(5, 2.0)
    with pytest.raises(ValueError, match=r"method must be 'metropolis', 'wolff' or 'auto'"):
        ising.sample(4, 2.0, method="heatbath")
    with pytest.raises(ValueError, match=r"temperatures must be positive"):
        ising.onsager_energy(0.0)


def test_fast_and_reference_metropolis_make_the_same_flips_from_the_same_uniforms():
    """ising_fast's integer thresholds against the textbook u < e^{-ΔE/T}: given u_int, the reference gets
    u = (u_int + 2³¹)/2³², and every site of every lattice must end the same, sweep after sweep, at three T."""
    from genmodels import ising_fast

    g = torch.Generator().manual_seed(3)
    for T in (1.5, ising.CRITICAL_TEMPERATURE, 3.5):
        s_fast = 2 * torch.randint(2, (20, 8, 8), generator=g, dtype=torch.int8) - 1
        s_ref = s_fast.clone()
        colours = ising.checkerboard(8)
        flips = 0
        for _ in range(30):
            u = ising_fast.uniform_int32(s_fast.shape, g, "cpu")
            before = s_fast
            s_fast = ising_fast.half_sweeps(s_fast, T, u, colours)
            for colour in colours:
                s_ref = ising.metropolis_half_sweep(s_ref, T, ising_fast.as_unit_uniforms(u), colour)
            assert torch.equal(s_fast, s_ref)
            flips += int((s_fast != before).sum())
        assert flips > 1000  # the comparison saw many accepted and rejected moves


@pytest.mark.parametrize("T", [2.0, 3.0])
def test_reference_metropolis_reproduces_exact_4x4_energy_and_abs_magnetisation(T, monkeypatch):
    """The textbook sweep alone (the fast path switched off), within 4 standard errors of the exact values."""
    from genmodels import ising_fast

    monkeypatch.setattr(ising_fast, "applies", lambda spins: False)
    run = ising.sample(4, T, n_lattices=100, n_samples=100, method="metropolis", pilot=100, seed=1)
    exact = ising.exact(4, T)
    result = ising.thermodynamics(run.spins, T)
    for name, value in (("energy", exact.energy), ("abs_magnetisation", exact.abs_magnetisation)):
        estimate, error = result[name]
        assert abs(estimate - value) < 4 * error, (name, estimate, value, error)


def test_auto_follows_the_stated_rule_per_device_type():
    cpu = ising.sample(4, ising.CRITICAL_TEMPERATURE, n_lattices=4, n_samples=4, pilot=8)
    assert cpu.method == "metropolis" and cpu.why == f"auto on cpu: {ising.AUTO_RULES['cpu']}"
    assert ising.auto_method(5, 3.0, "cpu")[0] == "wolff"  # checkerboard Metropolis needs an even L
    assert ising.auto_method(8, ising.CRITICAL_TEMPERATURE, "cuda")[0] == "wolff"
    assert ising.auto_method(8, 4.0, "cuda")[0] == "metropolis"
    assert ising.sample(4, 2.0, n_lattices=4, n_samples=4, pilot=8, method="wolff").why == "asked for"


@pytest.mark.parametrize("T", [2.0, T_C, 3.0], ids=["T=2", "T=Tc", "T=3"])
def test_wolff_flips_clusters_of_mean_size_n_times_mean_m_squared(T):
    """The work of a Wolff step, `site_updates_per_step`, is its mean cluster size, and in equilibrium
    ⟨|C|⟩ = N⟨m²⟩ (Wolff 1989's improved estimator of the susceptibility); ⟨m²⟩ exact by enumeration for L = 4.
    Within 4 standard errors: the per-lattice mean cluster size lies in [1, 16], so its variance is at most 7.5².
    The passes per step are the rounds of growth of the slowest of the lattices; a Metropolis sweep updates all N
    sites in one pass."""
    n_lattices = 4000
    run = ising.sample(4, T, n_lattices=n_lattices, n_samples=4, method="wolff", pilot=40, seed=2)
    states = ising.all_states(4)
    exact = 16 * (ising.boltzmann_log_probabilities(4, T).double().exp() * ising.magnetisation(states).double() ** 2
                  ).sum().item()
    assert abs(run.site_updates_per_step - exact) < 4 * 7.5 / math.sqrt(n_lattices), (run.site_updates_per_step, exact)
    # a round adds at least one site to the cluster until the last, empty one: between 2 and N + 1 passes a step
    assert 2 <= run.passes_per_step <= 16 + 1, run.passes_per_step
    metropolis = ising.sample(4, T, n_lattices=10, n_samples=4, method="metropolis", pilot=20)
    assert (metropolis.site_updates_per_step, metropolis.passes_per_step) == (16, 1)
