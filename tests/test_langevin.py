"""Langevin samplers: ULA samples p (the lecture's rule samples p²), MALA is exact, SGLD finds the mixture posterior.

Every tolerance is a number of Monte Carlo standard errors, sd / √ESS, with the effective sample size estimated from
the chains' autocorrelation (`langevin.monte_carlo_error`). Four standard errors: a false alarm about once in 16,000.
"""

import math

import pytest
import torch

from genmodels import langevin

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
            ses[i, j] = langevin.monte_carlo_error(z)[0]
    return errors, ses


def test_ula_at_small_step_reproduces_gaussian_mean_and_covariance():
    target = langevin.CorrelatedGaussian(rho=0.8)  # Σ has eigenvalues 1.8 and 0.2
    step = 0.01
    chains = langevin.ula(target.log_prob, torch.zeros(500, 2), step, 3000, burn_in=1000, seed=1)
    se_mean = langevin.monte_carlo_error(chains.samples)
    assert (chains.samples.double().mean((0, 1)).abs() < Z * se_mean).all()
    errors, ses = covariance_errors(chains.samples, target.mean, target.cov)
    assert (errors.abs() < Z * ses).all(), (errors, ses)
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
        variances[name] = (z.mean().item(), langevin.monte_carlo_error(z)[0].item())
    (v_lecture, se_lecture), (v_ula, se_ula) = variances["lecture"], variances["ula"]
    assert abs(v_lecture - 0.5) < Z * se_lecture + step / 4  # p²; step/4 bounds 1/(2-η) - 1/2 for η ≤ 0.01
    assert abs(v_ula - 1.0) < Z * se_ula + step / 2  # p; η/2 bounds ULA's own bias 2/(2-η) - 1
    assert abs(v_lecture - 1.0) > 20 * se_lecture  # the lecture's chain is far from p
    exact = langevin.ula_gaussian_stationary_covariance([[1.0]], step, noise_scale=1.0).item()
    assert exact == pytest.approx(1 / (2 - step)) and abs(v_lecture - exact) < Z * se_lecture


def test_ula_bias_at_large_step_matches_its_closed_form():
    """At η = 0.3 ULA's stationary covariance is far from Σ (4 × too wide along the narrow direction), exactly as
    ula_gaussian_stationary_covariance says: this is the bias MALA removes."""
    target = langevin.CorrelatedGaussian(rho=0.8)
    step = 0.3
    expected = langevin.ula_gaussian_stationary_covariance(target.cov, step)
    chains = langevin.ula(target.log_prob, torch.zeros(500, 2), step, 1200, burn_in=200, seed=3)
    errors, ses = covariance_errors(chains.samples, target.mean, expected)
    assert (errors.abs() < Z * ses).all(), (errors, ses)
    assert ((expected - target.cov).abs() > 10 * ses).any()


def test_mala_is_exact_at_large_steps():
    target = langevin.CorrelatedGaussian(rho=0.8)
    chains = langevin.mala(target.log_prob, torch.zeros(500, 2), 0.3, 1500, burn_in=300, seed=4)
    assert 0.4 < chains.acceptance_rate < 0.9  # neither stuck nor so cautious that the step is wasted
    se_mean = langevin.monte_carlo_error(chains.samples)
    assert (chains.samples.double().mean((0, 1)).abs() < Z * se_mean).all()
    errors, ses = covariance_errors(chains.samples, target.mean, target.cov)
    assert (errors.abs() < Z * ses).all(), (errors, ses)


def test_mixture_data_use_variance_two_not_standard_deviation():
    """x ~ ½N(θ1, 2) + ½N(θ1 + θ2, 2) with θ = (0, 1): mean 0.5, variance 2 + ¼ = 2.25 (it would be 4.25 had 2 been
    taken as a standard deviation). 200,000 draws: standard errors 0.0034 (mean) and at most 0.0087 (variance, from the
    fourth moment)."""
    x = langevin.MixturePosterior(n=200_000, seed=5).x
    assert abs(x.mean().item() - 0.5) < Z * math.sqrt(2.25 / len(x))
    assert abs(x.var().item() - 2.25) < Z * math.sqrt((x - x.mean()).pow(4).mean().item() / len(x))


def test_mixture_posterior_matches_torch_distributions():
    posterior = langevin.MixturePosterior()
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
    (a posterior ten times too wide in the likelihood's weight) must fail the same threshold."""
    posterior = langevin.MixturePosterior()
    n_chains, n_steps = 1000, 3000
    floor = posterior.noise_floor(n_chains, bins=20, seed=6)
    threshold = 1.25 * floor.quantile(0.99).item()
    a, b = langevin.schedule_from_range(0.02, 0.001, n_steps)
    x0 = torch.randn(n_chains, 2, generator=torch.Generator().manual_seed(7)) * torch.tensor([math.sqrt(10.0), 1.0])
    chains = langevin.sgld(posterior.log_prior, posterior.log_likelihood, posterior.x, x0, n_steps, batch_size=10,
                           a=a, b=b, burn_in=n_steps - 1, seed=8)
    distance = posterior.total_variation(chains.flat(), bins=20)
    assert distance < threshold, (distance, threshold)
    upper, lower = posterior.mode_masses(chains.flat())
    exact_upper, _ = posterior.mode_masses()
    assert min(upper, lower) > 0.3 and abs(upper - exact_upper) < Z * math.sqrt(0.25 / n_chains) + 0.02

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
    rho = langevin.autocorrelation(x, max_lag=5)[:, 0]
    assert torch.allclose(rho, phi ** torch.arange(6.0, dtype=torch.float64), atol=0.01)
    tau = langevin.integrated_autocorrelation_time(x).item()
    assert tau == pytest.approx((1 + phi) / (1 - phi), rel=0.1)
    ess = langevin.effective_sample_size(x).item()
    assert ess == pytest.approx(n_steps * n_chains * (1 - phi) / (1 + phi), rel=0.1)  # N / τ with the exact τ


def test_samplers_say_what_is_wrong_with_their_input():
    with pytest.raises(ValueError, match="shape \\(n_chains, dim\\)"):
        langevin.ula(unit_gaussian, torch.zeros(10), 0.1, 10)
    with pytest.raises(ValueError, match="one value per chain"):
        langevin.mala(lambda x: -0.5 * (x**2), torch.zeros(10, 2), 0.1, 10)
    with pytest.raises(ValueError, match="generator lives on cpu"):
        langevin.ula(unit_gaussian, torch.zeros(4, 2, device="meta"), 0.1, 10, generator=torch.Generator())
    with pytest.raises(ValueError, match="step_size must be positive"):
        langevin.ula(unit_gaussian, torch.zeros(4, 2), 0.0, 10)
    with pytest.raises(FloatingPointError, match="diverged"):
        langevin.ula(langevin.CorrelatedGaussian(rho=0.8).log_prob, torch.ones(4, 2), 1.0, 500)


def test_samplers_keep_what_they_are_asked_to_keep():
    chains = langevin.ula(unit_gaussian, torch.zeros(3, 2), 0.1, 100, burn_in=40, thin=5)
    assert chains.samples.shape == (12, 3, 2) and chains.flat().shape == (36, 2)
    again = langevin.ula(unit_gaussian, torch.zeros(3, 2), 0.1, 100, burn_in=40, thin=5)
    assert torch.equal(chains.samples, again.samples)  # seeded: the same seed gives the same chains


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_samplers_run_on_the_gpu():
    posterior = langevin.MixturePosterior()
    x0 = torch.zeros(64, 2, device="cuda")
    for chains in (langevin.ula(posterior.log_prob, x0, 1e-3, 20), langevin.mala(posterior.log_prob, x0, 1e-2, 20),
                   langevin.sgld(posterior.log_prior, posterior.log_likelihood, posterior.x, x0, 20, batch_size=10,
                                 a=1e-2, b=10.0)):
        assert chains.samples.device.type == "cuda" and torch.isfinite(chains.samples).all()
