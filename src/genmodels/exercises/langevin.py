"""The checks of exercises/03_langevin: ULA, MALA, SGLD and the MCMC diagnostics. Each spec compares with
genmodels.langevin or genmodels.mcmc; its mistakes are the wrong versions it names."""

from __future__ import annotations

import math

import torch

from .. import langevin, mcmc
from .grading import Case, Exercise, Mistake, normal

ULA_STEP = Exercise(
    "the ULA step", "ula_step(x, grad_log_p, step_size, noise)", langevin.ula_step,
    [Case("", lambda: (normal((4, 2), 0), normal((4, 2), 1), 0.1, normal((4, 2), 2))),
     Case("one chain in 10 dimensions", lambda: (normal((1, 10), 3), normal((1, 10), 4), 0.01, normal((1, 10), 5))),
     Case("1,000 chains", lambda: (normal((1000, 2), 6), normal((1000, 2), 7), 0.5, normal((1000, 2), 8)))],
    mistakes=[
        Mistake(lambda x, g, eta, w: x + eta * g + math.sqrt(eta) * w,
                "your noise is √η: the chain samples p² (the temperature σ²/(2η) is 1/2), not p; the Euler step "
                "of the Langevin diffusion has noise √(2η) w"),
        Mistake(lambda x, g, eta, w: x + eta * g + 2 * eta * w,
                "the noise's standard deviation is √(2η), not 2η: variance 2η per step"),
        Mistake(lambda x, g, eta, w: x + eta * g + eta * w,
                "the noise's standard deviation is √(2η), not η: noise η w vanishes faster than the drift as "
                "η → 0 and the chain collapses onto the mode"),
        Mistake(lambda x, g, eta, w: x - eta * g + math.sqrt(2 * eta) * w,
                "the drift goes up the gradient of log p: x + η ∇log p(x) (down the energy, -η ∇E)"),
        Mistake(lambda x, g, eta, w: x + eta * g,
                "the noise is missing: without √(2η) w the chain is gradient ascent and stops at a mode"),
        Mistake(lambda x, g, eta, w: g + eta * x + math.sqrt(2 * eta) * w,
                "x and ∇log p(x) are swapped: x + η ∇log p(x) + √(2η) w"),
        Mistake(lambda x, g, eta, w: x + eta / 2 * g + math.sqrt(eta) * w,
                "that is SGLD's form with ε = η (drift ε/2, noise √ε): it samples p, but with step ε = 2η; "
                "this exercise writes ULA as x + η ∇log p + √(2η) w"),
    ], verified="noise √(2η), so the chain samples p",
    doc="""The ULA step.  ula_step(x, grad_log_p, step_size, noise) -> x + η ∇log p(x) + √(2η) w for the chains
    x (n_chains, dim), their gradient ∇log p(x) and standard normal noise w of the same shape.""")


def _mala_acceptance(x, y, log_p_x, log_p_y, grad_x, grad_y, step_size):
    return langevin.mala_log_acceptance(x, y, log_p_x, log_p_y, grad_x, grad_y, step_size).exp()


def _mala_case(n, dim, step_size, seed):
    def make():
        mu = normal(dim, seed)
        x = normal((n, dim), seed + 1)
        y = x + step_size * (mu - x) + math.sqrt(2 * step_size) * normal((n, dim), seed + 2)
        return x, y, -0.5 * ((x - mu) ** 2).sum(-1), -0.5 * ((y - mu) ** 2).sum(-1), mu - x, mu - y, step_size
    return make


def _log_q(to, frm, g, eta, variance):  # log N(to; frm + η g, variance · I), up to a constant
    return -((to - frm - eta * g) ** 2).sum(-1) / (2 * variance)


MALA_ACCEPTANCE = Exercise(
    "MALA's acceptance probability", "mala_acceptance(x, y, log_p_x, log_p_y, grad_x, grad_y, step_size)",
    _mala_acceptance,
    [Case("", _mala_case(5, 2, 0.3, 0)), Case("large steps, many rejections", _mala_case(100, 2, 1.5, 1)),
     Case("in 10 dimensions", _mala_case(8, 10, 0.05, 2))],
    mistakes=[
        Mistake(lambda x, y, lpx, lpy, gx, gy, eta: torch.exp(lpy - lpx).clamp(max=1),
                "that is the random-walk Metropolis ratio p(y)/p(x): the Langevin proposal is not "
                "symmetric, so the ratio needs q(x|y)/q(y|x)"),
        Mistake(lambda x, y, lpx, lpy, gx, gy, eta: torch.exp(
            lpy + _log_q(x, y, gy, eta, eta) - lpx - _log_q(y, x, gx, eta, eta)).clamp(max=1),
                "the proposal's variance is 2η (noise √(2η) w): log q(y|x) = -|y - x - η∇log p(x)|²/(4η)"),
        Mistake(lambda x, y, lpx, lpy, gx, gy, eta: torch.exp(
            lpy + _log_q(y, x, gx, eta, 2 * eta) - lpx - _log_q(x, y, gy, eta, 2 * eta)).clamp(max=1),
                "the proposal densities are swapped: the ratio is q(x|y)/q(y|x), the reverse move "
                "over the forward one"),
        Mistake(lambda x, y, lpx, lpy, gx, gy, eta: torch.exp(
            lpy - lpx + _log_q(x, y, gy, eta, 2 * eta) - _log_q(y, x, gx, eta, 2 * eta)),
                "cap the probability at 1: α = min(1, ratio)"),
        Mistake(lambda x, y, lpx, lpy, gx, gy, eta: torch.exp(
            lpy - lpx + _log_q(x, y, gx, eta, 2 * eta) - _log_q(y, x, gy, eta, 2 * eta)).clamp(max=1),
                "the gradients are swapped: q(x|y) drifts from y with ∇log p(y), q(y|x) from x with ∇log p(x)"),
        Mistake(lambda x, y, lpx, lpy, gx, gy, eta: (
            lpy - lpx + _log_q(x, y, gy, eta, 2 * eta) - _log_q(y, x, gx, eta, 2 * eta)).clamp(max=0),
                "that is log α: return the probability α = min(1, exp(log ratio))"),
    ], shape_hint="one probability per chain, (n_chains,): sum over the dimensions (dim=-1)",
    doc="""MALA's acceptance probability.  mala_acceptance(x, y, log_p_x, log_p_y, grad_x, grad_y, step_size)
    -> α = min(1, p(y) q(x|y) / (p(x) q(y|x))) per chain, q(y|x) = N(y; x + η ∇log p(x), 2η I).""")


def _sgld_step(theta, grad_log_prior, grad_log_likelihood, n_data, batch_size, eps, noise):
    gradient = langevin.minibatch_log_posterior(grad_log_prior, grad_log_likelihood, n_data, batch_size)
    return langevin.sgld_step(theta, gradient, eps, noise)


def _sgld_case(n, dim, n_data, batch, eps, seed):
    return lambda: (normal((n, dim), seed), normal((n, dim), seed + 1), normal((n, dim), seed + 2, 5.0),
                    n_data, batch, eps, normal((n, dim), seed + 3))


SGLD_STEP = Exercise(
    "the SGLD step", "sgld_step(theta, grad_log_prior, grad_log_likelihood, n_data, batch_size, eps, noise)",
    _sgld_step,
    [Case("N/n = 10", _sgld_case(4, 2, 100, 10, 0.01, 0)), Case("N/n = 1000", _sgld_case(3, 2, 1000, 1, 1e-4, 1)),
     Case("the full batch, N/n = 1", _sgld_case(2, 5, 50, 50, 0.1, 2)),
     Case("N/n = 100/7, not a whole number", _sgld_case(3, 2, 100, 7, 0.01, 3))],
    mistakes=[
        Mistake(lambda th, gp, gl, N, n, e, w: th + e / 2 * (gp + gl) + math.sqrt(e) * w,
                "the N/n factor is missing: the minibatch sum estimates the full data set's gradient only once "
                "scaled by N/n; without it the prior outweighs the data and the posterior is far too wide"),
        Mistake(lambda th, gp, gl, N, n, e, w: th + e / 2 * (gp + gl / n) + math.sqrt(e) * w,
                "you averaged the minibatch (1/n) but did not scale it to the data set: the factor is N/n"),
        Mistake(lambda th, gp, gl, N, n, e, w: th + e / 2 * (gp + N / n * gl) + math.sqrt(2 * e) * w,
                "SGLD's noise is √ε w with drift ε/2 (ULA with η = ε/2); √(2ε) doubles the temperature"),
        Mistake(lambda th, gp, gl, N, n, e, w: th + e * (gp + N / n * gl) + math.sqrt(e) * w,
                "the drift is (ε/2) times the gradient, not ε: with noise √ε that is the Langevin step at T = 1"),
        Mistake(lambda th, gp, gl, N, n, e, w: th + e / 2 * (gp + N / n * gl),
                "the injected noise √ε w is missing: without it SGLD is stochastic gradient ascent"),
        Mistake(lambda th, gp, gl, N, n, e, w: th + e / 2 * (gp + N // n * gl) + math.sqrt(e) * w,
                "N // n rounds the ratio down to a whole number: the factor is N / n"),
        Mistake(lambda th, gp, gl, N, n, e, w: th + e / 2 * (gp + n / N * gl) + math.sqrt(e) * w,
                "the factor is upside down: the minibatch sum is scaled up to the data set, by N/n"),
        Mistake(lambda th, gp, gl, N, n, e, w: th + e * (gp + N / n * gl) + math.sqrt(2 * e) * w,
                "that is ULA's form with η = ε (drift ε, noise √(2ε)): SGLD's step is (ε/2) ∇log p + √ε w"),
    ], verified="N/n scaling and noise √ε",
    doc="""The SGLD step.  sgld_step(theta, grad_log_prior, grad_log_likelihood, n_data, batch_size, eps, noise)
    -> θ + (ε/2) [∇log p(θ) + (N/n) Σ_batch ∇log p(x_i|θ)] + √ε w, where grad_log_likelihood is the minibatch sum.""")


def _schedule_case(n, a, b, gamma):
    return lambda: (torch.arange(n, dtype=torch.float64), a, b, gamma)


STEP_SCHEDULE = Exercise(
    "the step schedule", "step_schedule(t, a, b, gamma)", langevin.step_schedule,
    [Case("", _schedule_case(10, 0.01, 1.0, 0.55)), Case("", _schedule_case(1000, 0.5, 30.0, 1.0)),
     Case("", _schedule_case(5, 1e-3, 2.0, 0.7))],
    mistakes=[
        Mistake(lambda t, a, b, g: a * (b + t) ** g, "the exponent is -γ: the step must decrease with t"),
        Mistake(lambda t, a, b, g: (a * (b + t)) ** (-g), "a multiplies the power: ε_t = a (b + t)^(-γ)"),
        Mistake(lambda t, a, b, g: a * (b * t) ** (-g),
                "b is added to t (it sets how long the step stays near its start): (b + t)^(-γ)"),
        Mistake(lambda t, a, b, g: a * (b + t) ** (-1 / g), "the exponent is -γ, not -1/γ"),
    ],
    doc="""SGLD's step schedule.  step_schedule(t, a, b, gamma) -> ε_t = a (b + t)^(-γ), for t a tensor of
    steps (float64).""")


def _chains_case(n_steps, n_chains, dim, rho, seed, offset=0.0):
    """AR(1) chains with coefficient rho; `offset` shifts each chain by its index (chains stuck apart)."""
    def make():
        noise = normal((n_steps, n_chains, dim), seed).double()
        x = torch.zeros_like(noise)
        for t in range(1, n_steps):
            x[t] = rho * x[t - 1] + noise[t]
        return x + offset * torch.arange(n_chains, dtype=torch.float64)[:, None]
    return make


def _with_lag(make, max_lag):
    return lambda: (make(), max_lag)


def _autocovariance(y, max_lag, divisor):  # Σ_t y_t y_t+k / divisor(n, k), averaged over chains, k = 0..max_lag
    n = len(y)
    return torch.stack([(y[: n - k] * y[k:]).sum(0).mean(0) / divisor(n, k) for k in range(max_lag + 1)])


def _own_means(x, max_lag):
    acov = _autocovariance(x - x.mean(0), max_lag, lambda n, k: n)
    return acov / acov[:1]


def _unbiased(x, max_lag):
    acov = _autocovariance(x - x.mean((0, 1)), max_lag, lambda n, k: n - k)
    return acov / acov[:1]


AUTOCORRELATION = Exercise(
    "the autocorrelation", "autocorrelation(x, max_lag)", lambda x, max_lag: mcmc.autocorrelation(x, max_lag).double(),
    [Case("", _with_lag(_chains_case(200, 4, 2, 0.5, 0), 10)),
     Case("chains stuck apart", _with_lag(_chains_case(300, 3, 1, 0.9, 1, offset=3.0), 30)),
     Case("one chain", _with_lag(_chains_case(100, 1, 3, 0.0, 2), 5))],
    mistakes=[
        Mistake(_own_means, "you centred each chain at its own mean: centre at the mean of all steps and chains, "
                            "so that chains stuck in different places show up as slow decay"),
        Mistake(_unbiased, "divide C(k) by n_steps, not n_steps - k (the standard estimator, which stays "
                           "positive definite; n - k blows up the noisy tail)"),
        Mistake(lambda x, max_lag: _autocovariance(x - x.mean((0, 1)), max_lag, lambda n, k: n),
                "that is the autocovariance C(k): divide by C(0), so that ρ(0) = 1"),
        Mistake(lambda x, max_lag: mcmc.autocorrelation(x, max_lag - 1).double(),
                "lags run from 0 to max_lag included: max_lag + 1 values"),
    ], shape_hint="(max_lag + 1, dim): one row per lag 0..max_lag, averaged over the chains",
    doc="""The autocorrelation of chains.  autocorrelation(x, max_lag) -> ρ(k) = C(k)/C(0), k = 0..max_lag, for
    x (n_steps, n_chains, dim), C(k) = (1/n_steps) Σ_t (x_t - x̄)(x_t+k - x̄) averaged over chains, x̄ the mean over
    all steps and chains; shape (max_lag + 1, dim).""")


def _alone(make):
    return lambda: (make(),)


def _tau_all_lags(x):
    rho = mcmc.autocorrelation(x)
    return x.shape[0] * x.shape[1] / (1 + 2 * rho[1:].sum(0)).clamp(min=1)


EFFECTIVE_SAMPLE_SIZE = Exercise(
    "the effective sample size", "effective_sample_size(x)", mcmc.effective_sample_size,
    [Case("", _alone(_chains_case(400, 4, 2, 0.5, 10))),
     Case("strongly correlated", _alone(_chains_case(500, 3, 1, 0.95, 11))),
     Case("independent draws", _alone(_chains_case(200, 2, 3, 0.0, 12)))],
    mistakes=[
        Mistake(lambda x: mcmc.effective_sample_size(x) / x.shape[1],
                "count every chain: ESS = n_steps · n_chains / τ"),
        Mistake(lambda x: x.shape[0] * x.shape[1] / (mcmc.integrated_autocorrelation_time(x) / 2).clamp(min=1),
                "τ = 1 + 2 Σ_k≥1 ρ(k): the factor 2 counts the lags on both sides"),  # half the right τ, then clamped
        Mistake(_tau_all_lags, "summing ρ(k) over every lag adds the noisy tail (and its negative values): stop "
                               "where the pair sums Γ_m first turn negative, and keep them non-increasing"),
    ], rtol=1e-4, atol=1e-4,
    doc="""The effective sample size.  effective_sample_size(x) -> ESS = n_steps · n_chains / τ per coordinate
    (dim,), for x (n_steps, n_chains, dim), with τ = -1 + 2 Σ_m Γ_m, Γ_m = ρ(2m) + ρ(2m+1) summed while positive and
    made non-increasing (Geyer's initial monotone sequence), clamped at τ ≥ 1 (you may use genmodels'
    autocorrelation, or your own).""")

SPECS = [ULA_STEP, MALA_ACCEPTANCE, SGLD_STEP, STEP_SCHEDULE, AUTOCORRELATION, EFFECTIVE_SAMPLE_SIZE]
