"""Langevin samplers: ULA samples p (the lecture's rule samples p²), MALA is exact, SGLD finds the mixture posterior.

Every tolerance is a number of Monte Carlo standard errors, sd / √ESS, with the effective sample size estimated from
the chains' autocorrelation (`mcmc.monte_carlo_error`). Four standard errors: a false alarm about once in 16,000.
"""

import math
import warnings

import pytest
import torch

from genmodels import langevin, mcmc, targets

Z = 4.0  # standard errors allowed


def unit_gaussian(x):
    return -0.5 * (x**2).sum(-1)


def covariance_errors(samples, mean, cov):
    """Per entry (i, j): the estimate E[(x_i - μ_i)(x_j - μ_j)] minus Σ_ij, and its Monte Carlo standard error."""
    d = samples.double() - mean
    errors = torch.zeros(2, 2, dtype=torch.float64)
    ses = torch.zeros(2, 2, dtype=torch.float64)
    for i in range(2):
        for j in range(2):
            z = d[..., i] * d[..., j]
            errors[i, j] = z.mean() - cov[i, j]
            ses[i, j] = mcmc.monte_carlo_error(z)[0]
    return errors, ses


def assert_mean_and_covariance_match(samples, target):
    """The chains' mean is target.mean and their covariance target.cov, each entry within Z Monte Carlo standard
    errors; returns the covariance entries' standard errors."""
    se_mean = mcmc.monte_carlo_error(samples)
    assert ((samples.double().mean((0, 1)) - target.mean).abs() < Z * se_mean).all()
    errors, ses = covariance_errors(samples, target.mean, target.cov)
    assert (errors.abs() < Z * ses).all(), (errors, ses)
    return ses


def test_ula_at_small_step_reproduces_gaussian_mean_and_covariance():
    target = targets.CorrelatedGaussian(rho=0.8)  # Σ has eigenvalues 1.8 and 0.2
    step = 0.01
    chains = langevin.ula(target.log_prob, torch.zeros(500, 2), step, 3000, burn_in=1000, seed=1)
    ses = assert_mean_and_covariance_match(chains.samples, target)
    # ULA's own bias at this step (exact for a Gaussian) is below one standard error: the test can see p, not ULA's
    # slightly wider stationary law.
    bias = langevin.ula_gaussian_stationary_covariance(target.cov, step) - target.cov
    assert (bias.abs() < ses).all()


def test_lecture_langevin_rule_samples_p_squared():
    """θ + η∇log p + √η w on N(0, 1) has variance 1/(2 - η) ≈ 0.5, the variance of p² ∝ N(0, 1/2); with √(2η) w
    it has 2/(2 - η) ≈ 1. Same seed, same code, only the noise scale differs."""
    step, x0 = 0.01, torch.zeros(1000, 1)
    variances = {}
    for name, scale in (("lecture", 1.0), ("ula", math.sqrt(2.0))):
        chains = langevin.ula(unit_gaussian, x0, step, 2500, burn_in=500, noise_scale=scale, seed=2)
        z = chains.samples.double() ** 2  # the mean is 0 by symmetry: E[θ²] is the variance
        variances[name] = (z.mean().item(), mcmc.monte_carlo_error(z)[0].item())
    (v_lecture, se_lecture), (v_ula, se_ula) = variances["lecture"], variances["ula"]
    assert abs(v_lecture - 0.5) < Z * se_lecture + step / (4 - 2 * step)  # p²; exact bias 1/(2-η) - 1/2 = η/(4-2η)
    assert abs(v_ula - 1.0) < Z * se_ula + step / (2 - step)  # p; ULA's own exact bias 2/(2-η) - 1 = η/(2-η)
    assert abs(v_lecture - 1.0) > 20 * se_lecture  # the lecture's chain is far from p
    exact = langevin.ula_gaussian_stationary_covariance([[1.0]], step, noise_scale=1.0).item()
    assert exact == pytest.approx(1 / (2 - step)) and abs(v_lecture - exact) < Z * se_lecture


def test_ula_bias_at_large_step_matches_its_closed_form():
    """At η = 0.3 ULA's stationary covariance is far from Σ (4 × too wide along the narrow direction), exactly as
    ula_gaussian_stationary_covariance says: this is the bias MALA removes."""
    target = targets.CorrelatedGaussian(rho=0.8)
    step = 0.3
    expected = langevin.ula_gaussian_stationary_covariance(target.cov, step)
    chains = langevin.ula(target.log_prob, torch.zeros(500, 2), step, 1200, burn_in=200, seed=3)
    errors, ses = covariance_errors(chains.samples, target.mean, expected)
    assert (errors.abs() < Z * ses).all(), (errors, ses)
    assert ((expected - target.cov).abs() > 10 * ses).any()


def test_mala_is_exact_at_large_steps():
    target = targets.CorrelatedGaussian(rho=0.8)
    chains = langevin.mala(target.log_prob, torch.zeros(500, 2), 0.3, 1500, burn_in=300, seed=4)
    assert 0.4 < chains.acceptance_rate < 0.9  # neither stuck nor so cautious that the step is wasted
    assert_mean_and_covariance_match(chains.samples, target)


def test_mixture_data_use_variance_two_not_standard_deviation():
    """x ~ ½N(θ1, 2) + ½N(θ1 + θ2, 2) with θ = (0, 1): mean 0.5, variance 2 + ¼ = 2.25 (it would be 4.25 had 2 been
    taken as a standard deviation). 200,000 draws: standard errors 0.0034 (mean) and at most 0.0087 (variance, from the
    fourth moment)."""
    x = targets.MixturePosterior(n=200_000, seed=5).x
    assert abs(x.mean().item() - 0.5) < Z * math.sqrt(2.25 / len(x))
    assert abs(x.var().item() - 2.25) < Z * math.sqrt((x - x.mean()).pow(4).mean().item() / len(x))


def test_mixture_posterior_matches_torch_distributions():
    posterior = targets.MixturePosterior()
    theta = torch.tensor([[0.2, 0.7], [1.1, -0.9]], dtype=torch.float64)
    normal = torch.distributions.Normal
    expected = []
    for t1, t2 in theta.tolist():
        prior = normal(0.0, math.sqrt(10.0)).log_prob(torch.tensor(t1)) + normal(0.0, 1.0).log_prob(torch.tensor(t2))
        parts = torch.stack([normal(t1, math.sqrt(2.0)).log_prob(posterior.x),
                             normal(t1 + t2, math.sqrt(2.0)).log_prob(posterior.x)])
        expected.append(prior + (torch.logsumexp(parts, 0) + math.log(0.5)).sum())
    normalising = 0.5 * math.log(2 * math.pi * 10.0) + 0.5 * math.log(2 * math.pi)  # the prior's, dropped
    assert torch.allclose(posterior.log_prob(theta) - normalising, torch.stack(expected).double(), atol=1e-9)


def test_sgld_on_mixture_posterior_approaches_the_grid_posterior():
    """The final states of 1000 SGLD chains (batch size 10 of N = 100, ε from 0.02 down to 0.001) against the exact
    posterior binned on a 20 × 20 grid. Threshold: 1.25 × the 99th percentile of the total-variation distance that
    1000 exact independent draws from the grid posterior reach (the noise floor, ≈ 0.11). Dropping the N/n factor
    (a posterior ten times too wide in the likelihood's weight) must fail the same threshold.

    Each mode holds its exact share: the fraction of chains at θ2 > 0 (the mode near (0, 1)) is the grid posterior's
    mass there, p = 0.515, within Z binomial standard errors √(p(1 - p)/n) of a proportion of n = 1000 independent
    draws (0.016), with no slack for SGLD's bias: over 30 seeds the z-scores stayed within ±2.6. The share is set by
    the prior on θ1, which favours the mode at θ1 = 0 by about e^(-1/20); it hardly moves when the temperature or the
    likelihood's weight is wrong (p² puts 0.526 there), so the TV distance is what catches those mistakes."""
    posterior = targets.MixturePosterior()
    n_chains, n_steps = 1000, 3000
    floor = posterior.noise_floor(n_chains, bins=20, seed=6)
    threshold = 1.25 * floor.quantile(0.99).item()
    a, b = langevin.schedule_from_range(0.02, 0.001, n_steps)
    x0 = torch.randn(n_chains, 2, generator=torch.Generator().manual_seed(7)) * torch.tensor([math.sqrt(10.0), 1.0])
    chains = langevin.sgld(posterior.log_prior, posterior.log_likelihood, posterior.x, x0, n_steps, batch_size=10,
                           a=a, b=b, burn_in=n_steps - 1, seed=8)
    distance = posterior.total_variation(chains.flat(), bins=20)
    assert distance < threshold, (distance, threshold)
    upper, _ = posterior.mode_masses(chains.flat())
    exact_upper, _ = posterior.mode_masses()
    se = math.sqrt(exact_upper * (1 - exact_upper) / n_chains)  # a binomial proportion's, at the exact mass
    assert abs(upper - exact_upper) < Z * se, (upper, exact_upper, se)

    def unscaled(theta, batch):  # the common mistake: the minibatch sum used as if it were the whole data set's
        return posterior.log_likelihood(theta, batch) * batch.shape[1] / len(posterior.x)

    wrong = langevin.sgld(posterior.log_prior, unscaled, posterior.x, x0, 1000, batch_size=10, a=a, b=b,
                          burn_in=999, seed=8)
    assert posterior.total_variation(wrong.flat(), bins=20) > 2 * threshold


def test_sgld_step_schedule_runs_from_first_to_last():
    a, b = langevin.schedule_from_range(0.01, 0.0001, 10_000, gamma=0.55)
    assert langevin.step_schedule(0, a, b) == pytest.approx(0.01)
    assert langevin.step_schedule(10_000, a, b) == pytest.approx(0.0001)


def test_effective_sample_size_of_ar1_matches_formula():
    """AR(1) x' = φx + √(1-φ²) w has ρ(k) = φ^k and τ = (1 + φ)/(1 - φ) = 19 for φ = 0.9."""
    phi, n_steps, n_chains = 0.9, 4000, 100
    g = torch.Generator().manual_seed(9)
    x = torch.empty(n_steps, n_chains, dtype=torch.float64)
    x[0] = torch.randn(n_chains, generator=g, dtype=torch.float64)
    noise = torch.randn(n_steps, n_chains, generator=g, dtype=torch.float64) * math.sqrt(1 - phi**2)
    for t in range(1, n_steps):
        x[t] = phi * x[t - 1] + noise[t]
    rho = mcmc.autocorrelation(x, max_lag=5)[:, 0]
    assert torch.allclose(rho, phi ** torch.arange(6.0, dtype=torch.float64), atol=0.01)
    tau = mcmc.integrated_autocorrelation_time(x).item()
    assert tau == pytest.approx((1 + phi) / (1 - phi), rel=0.1)
    ess = mcmc.effective_sample_size(x).item()
    assert ess == pytest.approx(n_steps * n_chains * (1 - phi) / (1 + phi), rel=0.1)  # N / τ with the exact τ


def test_samplers_say_what_is_wrong_with_their_input():
    with pytest.raises(ValueError, match="shape \\(n_chains, dim\\)"):
        langevin.ula(unit_gaussian, torch.zeros(10), 0.1, 10)
    with pytest.raises(ValueError, match="one value per chain"):
        langevin.mala(lambda x: -0.5 * (x**2), torch.zeros(10, 2), 0.1, 10)
    with pytest.raises(ValueError, match="generator lives on cpu"):
        langevin.ula(unit_gaussian, torch.zeros(4, 2, device="meta"), 0.1, 10, generator=torch.Generator())
    with pytest.raises(ValueError, match="step_size must be a positive"):
        langevin.ula(unit_gaussian, torch.zeros(4, 2), 0.0, 10)
    with pytest.raises(FloatingPointError, match="diverged"):
        langevin.ula(targets.CorrelatedGaussian(rho=0.8).log_prob, torch.ones(4, 2), 1.0, 500)


def test_samplers_keep_what_they_are_asked_to_keep():
    chains = langevin.ula(unit_gaussian, torch.zeros(3, 2), 0.1, 100, burn_in=40, thin=5)
    assert chains.samples.shape == (12, 3, 2) and chains.flat().shape == (36, 2)
    again = langevin.ula(unit_gaussian, torch.zeros(3, 2), 0.1, 100, burn_in=40, thin=5)
    assert torch.equal(chains.samples, again.samples)  # seeded: the same seed gives the same chains


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_samplers_run_on_the_gpu():
    posterior = targets.MixturePosterior()
    x0 = torch.zeros(64, 2, device="cuda")
    for chains in (langevin.ula(posterior.log_prob, x0, 1e-3, 20), langevin.mala(posterior.log_prob, x0, 1e-2, 20),
                   langevin.sgld(posterior.log_prior, posterior.log_likelihood, posterior.x, x0, 20, batch_size=10,
                                 a=1e-2, b=10.0)):
        assert chains.samples.device.type == "cuda" and torch.isfinite(chains.samples).all()


# --- mistakes end in clear errors -----------------------------------------------------------------------------------


def gamma_2_1(x):
    """Gamma(2, 1) up to a constant, log θ - θ: NaN for θ < 0, where the density is undefined. Its mean is 2."""
    return (torch.log(x) - x).sum(-1)


def test_ula_refuses_a_log_density_that_is_nan_outside_its_support_and_mala_rejects_such_moves():
    x0 = torch.full((200, 1), 2.0)
    with pytest.raises(FloatingPointError, match=r"ULA: the log-density became nan after \d+ of 2000 steps, while the "
                       r"steps before gave moderate values.*outside the target's support.*use langevin.mala"):
        langevin.ula(gamma_2_1, x0, 0.5, 2000, burn_in=200)
    chains = langevin.mala(gamma_2_1, x0, 0.5, 1000, burn_in=200, seed=1)
    assert (chains.samples > 0).all()
    assert abs(chains.samples.double().mean().item() - 2.0) < Z * mcmc.monte_carlo_error(chains.samples).item()


def test_a_nan_gradient_is_named_as_the_gradient_not_as_a_large_step():
    with pytest.raises(ValueError, match=r"ULA: the gradient of log_prob at x0 is \[nan, nan\] for 10 of 10 chains "
                       r"\(first: chain 0, x0\[0\] = \[0.0, 0.0\]\), while log_prob itself is finite there.*sqrt"):
        langevin.ula(lambda x: -torch.sqrt((x**2).sum(-1)), torch.zeros(10, 2), 0.1, 100)

    def branches(x):  # finite everywhere, but torch.where passes the NaN gradient of sqrt(θ) on for θ < 0
        return unit_gaussian(x) - torch.where(x > 0, torch.sqrt(x), 0.0).sum(-1)

    with pytest.raises(FloatingPointError, match=r"ULA: the gradient of log_prob became nan after \d+ of 100 steps, "
                       r"while log_prob itself stayed finite and moderate: autograd gives NaN.*torch.where"):
        langevin.ula(branches, torch.full((10, 1), 3.0), 0.1, 100)


def test_nan_data_are_named_where_they_are():
    posterior = targets.MixturePosterior()
    data = posterior.x.clone()
    data[17] = float("nan")
    with pytest.raises(ValueError, match=r"data contain 1 NaN and 0 infinite values, in 1 of 100 rows \(first: row "
                       r"17\).*Drop or repair those rows"):
        langevin.sgld(posterior.log_prior, posterior.log_likelihood, data, torch.zeros(10, 2), 100, batch_size=10,
                      a=0.01, b=10.0)
    with pytest.raises(ValueError, match=r"data contain 1 NaN or infinite values \(first: data\[17\] = nan\)"):
        targets.MixturePosterior(data=data)
    with pytest.raises(ValueError, match=r"MALA: log_prob\(x0\) is nan for 4 of 4 chains.*data that hold NaN"):
        langevin.mala(lambda theta: -((data[None, :] - theta) ** 2).sum(-1), torch.zeros(4, 1), 0.1, 10)


def test_divergence_blames_the_step_size_only_when_values_blew_up_from_finite_ones():
    target = targets.CorrelatedGaussian(rho=0.8)
    with pytest.raises(FloatingPointError, match=r"ULA diverged: the mean log-density per chain went from -?[\d.]+ at "
                       r"the start to -[\d.]+e\+\d+ after \d+ steps, then .* The step size 1.0 is too large"):
        langevin.ula(target.log_prob, torch.ones(4, 2), 1.0, 500)
    posterior = targets.MixturePosterior()
    with pytest.raises(FloatingPointError, match=r"SGLD diverged.*step size 50 \(first\) is too large.*reduce a"):
        langevin.sgld(posterior.log_prior, posterior.log_likelihood, posterior.x, torch.zeros(10, 2), 300,
                      batch_size=10, a=50.0, b=1.0)


@pytest.mark.parametrize("n_steps, burn_in, thin, message", [
    (10, 0, 20, r"thin=20 keeps no state: after burn_in=0, only 10 of n_steps=10 steps remain; need thin <= "
                r"n_steps - burn_in = 10"),
    (100, 90, 20, r"thin=20 keeps no state: after burn_in=90, only 10 of n_steps=100 steps remain"),
    (10, 10, 1, r"burn_in=10 discards all n_steps=10 steps.*need burn_in < n_steps \(for example burn_in=2\)"),
    (10, -1, 1, r"burn_in must be a whole number >= 0, got -1"),
    (10, 0, 0, r"thin must be a whole number >= 1, got 0"),
    (0, 0, 1, r"n_steps must be a whole number >= 1, got 0"),
    (1e3, 0, 1, r"n_steps must be a whole number, got the float 1000.0; write 1000"),
])
def test_what_to_keep_is_checked_before_the_run(n_steps, burn_in, thin, message):
    for sampler in (langevin.ula, langevin.mala):
        with pytest.raises(ValueError, match=message):
            sampler(unit_gaussian, torch.zeros(4, 2), 0.1, n_steps, burn_in=burn_in, thin=thin)


@pytest.mark.parametrize("step", [0.0, -0.1, float("nan"), float("inf")])
def test_step_sizes_must_be_positive_and_finite(step):
    with pytest.raises(ValueError, match=f"step_size must be a positive, finite number, got {step}"):
        langevin.ula(unit_gaussian, torch.zeros(4, 2), step, 10)
    with pytest.raises(ValueError, match=f"step_size must be a positive, finite number, got {step}"):
        langevin.mala(unit_gaussian, torch.zeros(4, 2), step, 10)
    with pytest.raises(ValueError, match=f"a must be a positive, finite number, got {step}"):
        langevin.sgld(unit_gaussian, lambda theta, batch: batch.sum(-1) * 0 - (theta**2).sum(-1), torch.zeros(10),
                      torch.zeros(4, 2), 10, batch_size=2, a=step, b=1.0)


def test_other_rates_and_counts_are_checked():
    posterior = targets.MixturePosterior()

    def run_sgld(**kwargs):
        settings = dict(batch_size=10, a=0.01, b=10.0) | kwargs
        return langevin.sgld(posterior.log_prior, posterior.log_likelihood, posterior.x, torch.zeros(4, 2), 10,
                             **settings)

    with pytest.raises(ValueError, match=r"batch_size must be a whole number >= 1, got 0"):
        run_sgld(batch_size=0)
    with pytest.raises(ValueError, match=r"batch_size must be a whole number, got 2.5 \(float\)"):
        run_sgld(batch_size=2.5)
    with pytest.raises(ValueError, match=r"batch_size must lie between 1 and the number of data \(100\); got 1000"):
        run_sgld(batch_size=1000)
    with pytest.raises(ValueError, match=r"b must be a positive, finite number, got nan"):
        run_sgld(b=float("nan"))
    with pytest.raises(ValueError, match=r"gamma must be a positive, finite number, got inf"):
        run_sgld(gamma=float("inf"))
    with pytest.raises(ValueError, match=r"data must hold at least one data point"):
        langevin.sgld(posterior.log_prior, posterior.log_likelihood, torch.zeros(0), torch.zeros(4, 2), 10,
                      batch_size=1, a=0.01, b=10.0)
    with pytest.raises(ValueError, match=r"noise_scale must be a positive, finite number, got 0"):
        langevin.ula(unit_gaussian, torch.zeros(4, 2), 0.1, 10, noise_scale=0)
    with pytest.raises(ValueError, match=r"last must be a positive, finite number, got 0.0"):
        langevin.schedule_from_range(0.01, 0.0, 100)
    with pytest.raises(ValueError, match=r"the schedule must decrease"):
        langevin.schedule_from_range(0.001, 0.01, 100)
    with pytest.raises(ValueError, match=r"std must be a positive, finite number, got -1.0"):
        targets.CorrelatedGaussian(std=(1.0, -1.0))


def test_the_start_must_be_finite_non_empty_and_inside_the_support():
    with pytest.raises(ValueError, match=r"x0 has shape \(0, 2\): need at least one chain"):
        langevin.ula(unit_gaussian, torch.zeros(0, 2), 0.1, 10)
    with pytest.raises(ValueError, match=r"x0 holds NaN or infinite values in 1 of 2 chains \(first: chain 1"):
        langevin.mala(unit_gaussian, torch.tensor([[0.0, 1.0], [float("nan"), 0.0]]), 0.1, 10)
    with pytest.raises(ValueError, match=r"ULA: log_prob\(x0\) is nan for 2 of 3 chains \(first: chain 1, "
                       r"x0\[1\] = \[-1.0\]\).*outside its support"):
        langevin.ula(gamma_2_1, torch.tensor([[1.0], [-1.0], [-2.0]]), 0.1, 10)


def test_log_prob_must_be_a_torch_function_of_x():
    with pytest.raises(ValueError, match=r"does not depend on x through torch operations.*no .item\(\), .numpy\(\)"):
        langevin.ula(lambda x: torch.tensor(-0.5 * (x.detach().numpy() ** 2).sum(-1)), torch.zeros(4, 2), 0.1, 10)
    with pytest.raises(ValueError, match=r"log_prob must return a torch tensor of shape \(4,\).*got float"):
        langevin.mala(lambda x: 1.0, torch.zeros(4, 2), 0.1, 10)


def test_mala_warns_when_no_proposal_is_ever_accepted():
    with pytest.warns(RuntimeWarning, match=r"MALA accepted none of the 200 proposals.*step size 100.0 is too large"):
        chains = langevin.mala(targets.DoubleWell().log_prob, torch.zeros(4, 2), 100.0, 50)
    assert chains.acceptance_rate == 0.0


def test_stationary_covariance_needs_a_positive_definite_covariance_and_a_stable_step():
    with pytest.raises(ValueError, match=r"cov must be positive definite.*eigenvalues are \[-1.0, 3.0\]"):
        langevin.ula_gaussian_stationary_covariance([[1.0, 2.0], [2.0, 1.0]], 0.1)
    with pytest.raises(ValueError, match=r"cov must be a finite symmetric matrix"):
        langevin.ula_gaussian_stationary_covariance([[1.0, 0.5], [0.0, 1.0]], 0.1)
    with pytest.raises(ValueError, match=r"cov must be a square \(dim, dim\) covariance matrix; got shape \(2,\)"):
        langevin.ula_gaussian_stationary_covariance([1.0, 2.0], 0.1)
    with pytest.raises(ValueError, match=r"unstable on this Gaussian for step sizes >= 2 σ²_min = 0.4.*got "
                       r"step_size=0.5"):
        langevin.ula_gaussian_stationary_covariance([[0.2]], 0.5)


def test_diagnostics_refuse_non_finite_chains():
    chains = torch.zeros(10, 2)
    chains[3, 1] = float("nan")
    with pytest.raises(ValueError, match=r"the chains hold 1 NaN or infinite values"):
        mcmc.effective_sample_size(chains)


def synchronisations(sampler, *args, **kwargs) -> int:
    """How many times sampler(*args, **kwargs) makes the GPU wait: torch's sync debug mode warns at each
    synchronisation."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            sampler(*args, **kwargs)
        finally:
            torch.cuda.set_sync_debug_mode("default")
    return sum("synchroniz" in str(w.message) for w in caught)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_non_finite_checks_add_no_synchronisation_per_step():
    """The checks synchronise a fixed number of times (the start, the end), never once a step: a run three times as
    long makes the GPU wait exactly as often."""
    target = targets.CorrelatedGaussian(rho=0.8)
    x0 = torch.zeros(64, 2, device="cuda")
    for sampler in (langevin.ula, langevin.mala):
        assert (synchronisations(sampler, target.log_prob, x0, 0.1, 20)
                == synchronisations(sampler, target.log_prob, x0, 0.1, 60)), sampler.__name__


# --- the seams an image sampler needs (04_energy_based_model) -------------------------------------------------------


def image_gaussian(x, s=0.2):
    """log N(0, s² I) of image chains (n, 1, 28, 28), up to a constant."""
    return -0.5 * (x**2).flatten(1).sum(-1) / s**2


def test_ula_runs_image_chains_and_keeps_only_the_last_state_when_asked():
    x0 = torch.zeros(5, 1, 28, 28)
    every = langevin.ula(image_gaussian, x0, 0.004, 30, seed=1)
    last = langevin.ula(image_gaussian, x0, 0.004, 30, seed=1, burn_in=29)  # the final state only
    assert every.samples.shape == (30, 5, 1, 28, 28) and last.samples.shape == (1, 5, 1, 28, 28)
    assert torch.equal(last.last, every.last)  # the same chains, only the stack of every step is dropped
    assert every.flat().shape == (150, 1, 28, 28)


def test_ula_on_image_chains_reproduces_the_gaussian_variance():
    """12,544 independent pixels of N(0, 0.04): their variance is ULA's exact stationary variance at η = 0.004
    (0.0421, 5 % above s² by ULA's own bias), within four standard errors var·√(2/N) (N pixels, all independent)."""
    chains = langevin.ula(image_gaussian, torch.rand(16, 1, 28, 28) * 2 - 1, 0.004, 200, seed=2, burn_in=199)
    expected = langevin.ula_gaussian_stationary_covariance([[0.04]], 0.004).item()
    x = chains.last.double().flatten()
    assert abs(x.var().item() - expected) < Z * expected * math.sqrt(2 / len(x))


def test_projection_keeps_chains_in_range_and_gradient_clamp_bounds_each_move():
    def uphill(x):  # log p = Σx: the chains drift to +∞ unless projected
        return x.flatten(1).sum(-1)

    free = langevin.ula(uphill, torch.zeros(4, 1, 8, 8), 0.5, 20, noise_scale=0.01, burn_in=19)
    kept = langevin.ula(uphill, torch.zeros(4, 1, 8, 8), 0.5, 20, noise_scale=0.01, burn_in=19,
                        project=lambda x: x.clamp(-1, 1))
    assert free.last.min() > 5 and kept.last.max() <= 1 and kept.last.min() >= -1
    clamped = langevin.ula(uphill, torch.zeros(4, 1, 8, 8), 0.5, 1, noise_scale=1e-6, grad_clamp=0.03)
    assert clamped.last.max().item() == pytest.approx(0.5 * 0.03, abs=1e-5)  # η·clamp, not η·1


def test_ula_takes_gradients_in_float32_under_autocast():
    """The training loop runs the loss under bfloat16 autocast on GPUs; the sampler inside it must not: the chains
    are the same as without autocast (checked on the CPU, where autocast also casts Linear to bfloat16)."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 16), torch.nn.SiLU(), torch.nn.Linear(16, 1))

    def log_prob(x):
        return -net(x).squeeze(-1)

    x0 = torch.rand(8, 1, 8, 8)
    plain = langevin.ula(log_prob, x0, 0.1, 5, seed=3, burn_in=4).last
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert net(x0).dtype == torch.bfloat16  # autocast is active here...
        inside = langevin.ula(log_prob, x0, 0.1, 5, seed=3, burn_in=4).last
    assert inside.dtype == torch.float32 and torch.equal(inside, plain)  # ...but not inside the sampler


def test_non_finite_checks_name_the_problem_for_image_chains():
    x0 = torch.zeros(3, 1, 28, 28)
    x0[1, 0, 5, 5] = float("nan")
    with pytest.raises(ValueError, match=r"x0 holds NaN or infinite values in 1 of 3 chains \(first: chain 1, "
                       r"x0\[1\] = a \(1, 28, 28\) state with 1 non-finite values"):
        langevin.ula(image_gaussian, x0, 0.004, 10)

    def log_of_x(x):  # NaN once a pixel goes below 0
        return torch.log(x).flatten(1).sum(-1)

    with pytest.raises(FloatingPointError, match=r"ULA: the log-density became nan after \d+ of 100 steps"):
        langevin.ula(log_of_x, torch.full((3, 1, 28, 28), 0.5), 0.01, 100, burn_in=99)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_image_chains_add_no_synchronisation_per_step():
    x0 = torch.rand(32, 1, 28, 28, device="cuda")

    def image_chains(n_steps):
        langevin.ula(image_gaussian, x0, 0.004, n_steps, project=lambda x: x.clamp(-1, 1), grad_clamp=0.03,
                     burn_in=n_steps - 1)

    assert synchronisations(image_chains, 20) == synchronisations(image_chains, 60)


def test_ula_chains_are_ula_step_iterated_to_the_bit():
    """ula runs its update in place, into buffers, for speed; ula_step is the formula, the exercise's reference."""
    target, x0, step_size = targets.CorrelatedGaussian(rho=0.8), torch.randn(6, 2), 0.05
    chains = langevin.ula(target.log_prob, x0, step_size, 20, generator=torch.Generator().manual_seed(3))
    noise, x, steps = torch.Generator().manual_seed(3), x0.clone(), []
    for _ in range(20):
        _, grad = langevin.log_prob_and_grad(target.log_prob, x)
        x = langevin.ula_step(x, grad, step_size, torch.randn(x.shape, generator=noise))
        steps.append(x)
    assert torch.equal(chains.samples, torch.stack(steps))
