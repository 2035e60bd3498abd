"""Langevin sampling: ULA, MALA and SGLD for any differentiable log density.  Taught in 03_langevin_sampling.

The Langevin diffusion dθ = ∇log p(θ) dt + √2 dW has p as its stationary density (Fokker–Planck). Its Euler step
of size η is the unadjusted Langevin algorithm (ULA)

    θ' = θ + η ∇log p(θ) + √(2η) w,   w ~ N(0, I).

The lecture writes the noise as √η w: that chain samples p² instead of p (`noise_scale=1` reproduces it). MALA adds
a Metropolis–Hastings test to the ULA proposal, which removes the step-size bias. SGLD (Welling & Teh 2011) replaces
the gradient of the log posterior by a minibatch estimate, scaled by N/n, and lets the step size decrease.

Every sampler runs many chains at once: `x0` has shape (n_chains, dim), `log_prob` maps it to (n_chains,), and all
random numbers are drawn on the chains' device. The file reads in the lecture's order: ULA, MALA, the step
schedule, SGLD, and ULA's exact stationary covariance on a Gaussian. Their input checks live in genmodels.checks, what
they say when values turn NaN or infinite in genmodels._langevin_guard (one `Guard` per run: `record` each step,
`check` once), the MCMC diagnostics (τ, ESS, Monte Carlo error) in genmodels.mcmc and the test targets in
genmodels.targets.

ULA also runs chains of images, x0 of shape (n_chains, *event_shape) such as (128, 1, 28, 28), with what an image
sampler needs (taught in 04_energy_based_model): a projection after each step (`project`, e.g. clamping to the data
range) and a clamp on the gradient (`grad_clamp`); burn_in=n_steps - 1 keeps the final state instead of a stack of
every step. Gradients are always taken in float32, outside any autocast region the caller runs in.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch

from . import checks
from ._langevin_guard import Guard
from .basics import as_tensor, batches

__all__ = ["Chains", "log_prob_and_grad", "ula", "ula_step", "mala", "mala_log_acceptance", "step_schedule",
           "schedule_from_range", "sgld", "minibatch_log_posterior", "sgld_step", "ula_gaussian_stationary_covariance"]

LogProb = Callable[[torch.Tensor], torch.Tensor]


def ula(log_prob: LogProb, x0: torch.Tensor, step_size: float, n_steps: int, *, burn_in: int = 0, thin: int = 1,
        noise_scale: float = math.sqrt(2.0), generator: torch.Generator | None = None, seed: int = 0,
        project: Callable[[torch.Tensor], torch.Tensor] | None = None, grad_clamp: float | None = None) -> Chains:
    """Unadjusted Langevin algorithm: θ' = θ + η ∇log p(θ) + c √η w, with c = noise_scale = √2 (the Euler step of
    the Langevin diffusion, which samples p). The lecture's rule is c = 1: it samples p² instead. In general the
    chain samples p^(1/T) at the temperature T = c²/2 (noise of standard deviation σ = c√η: T = σ²/(2η)).

    Runs n_steps steps of all chains in x0 (n_chains, dim), keeps every `thin`-th state after `burn_in` steps.
    A log-density or gradient that turns NaN or infinite is an error that says when and why.

    For image chains (taught in 04_energy_based_model) x0 may have shape (n_chains, *event_shape); `grad_clamp`
    clamps each coordinate of ∇log p to [-grad_clamp, grad_clamp]; `project(θ')` maps each new state back into the
    data's range (e.g. lambda x: x.clamp(-1, 1)). burn_in=n_steps - 1 keeps only the final state (samples of shape
    (1, n_chains, ...)), not a stack of every step."""
    step_size, n_steps, burn_in, thin = checks.check_chain_run(step_size, n_steps, burn_in, thin)
    noise_scale = checks.check_rate("noise_scale", noise_scale)
    if grad_clamp is not None:
        grad_clamp = checks.check_rate("grad_clamp", grad_clamp)
    x, generator = checks.check_chain_start(x0, generator, seed, images=True)
    kept, guard = [], Guard("ULA", step_size, n_steps)
    noise_std = noise_scale * math.sqrt(step_size)
    drift, w = torch.empty_like(x), torch.empty_like(x)  # speed: buffers for every step's η∇log p and noise
    for t in range(n_steps):
        value, grad = log_prob_and_grad(log_prob, x)
        guard.record(x, value, grad)  # before the clamp, which would turn an infinite gradient into a finite one
        if grad_clamp is not None:
            torch.clamp(grad, -grad_clamp, grad_clamp, out=drift)
        else:
            drift.copy_(grad)
        w.normal_(generator=generator)
        # θ' = θ + η ∇log p(θ) + c√η w, in place: x is this run's own copy of x0, and the products η·∇log p and
        # c√η·w are formed in their buffers first, so the result is the formula's to the bit
        x.add_(drift.mul_(step_size)).add_(w.mul_(noise_std))
        if project is not None:
            x = project(x)
        if t >= burn_in and (t - burn_in) % thin == thin - 1:
            kept.append(x.clone())
    samples = torch.stack(kept)
    guard.check(samples)
    return Chains(samples)


def ula_step(x: torch.Tensor, grad_log_p: torch.Tensor, step_size: float, noise: torch.Tensor,
             noise_scale: float = math.sqrt(2.0)) -> torch.Tensor:
    """One ULA step from given noise w: θ' = θ + η ∇log p(θ) + c √η w, c = noise_scale. `ula` runs the same
    update in place, into buffers (the tests check that its chains are these steps', to the bit);
    exercises/03_langevin writes it."""
    return x + step_size * grad_log_p + noise_scale * math.sqrt(step_size) * noise


def mala_log_acceptance(x: torch.Tensor, y: torch.Tensor, log_p_x: torch.Tensor, log_p_y: torch.Tensor,
                        grad_x: torch.Tensor, grad_y: torch.Tensor, step_size: float) -> torch.Tensor:
    """log α = min(0, log p(y) + log q(x|y) - log p(x) - log q(y|x)) per chain, the log of MALA's acceptance
    probability for the move x → y, with q(y|x) = N(y; x + η ∇log p(x), 2η I); exercises/03_langevin writes it."""

    def log_q(to, frm, grad_frm):  # log N(to; frm + η ∇log p(frm), 2η I), up to a constant
        return -((to - frm - step_size * grad_frm) ** 2).sum(-1) / (4 * step_size)

    return (log_p_y + log_q(x, y, grad_y) - log_p_x - log_q(y, x, grad_x)).clamp(max=0)


def mala(log_prob: LogProb, x0: torch.Tensor, step_size: float, n_steps: int, *, burn_in: int = 0, thin: int = 1,
         generator: torch.Generator | None = None, seed: int = 0) -> Chains:
    """Metropolis-adjusted Langevin: propose y = θ + η ∇log p(θ) + √(2η) w, accept with probability
    min(1, p(y) q(θ|y) / (p(θ) q(y|θ))), where q(y|θ) = N(y; θ + η ∇log p(θ), 2η I). Exact at any step size.

    The acceptance rate is averaged over the steps after burn-in and over the chains. A proposal whose log-density
    or gradient is NaN or infinite (outside the support) is rejected; the start x0 must have finite ones."""
    step_size, n_steps, burn_in, thin = checks.check_chain_run(step_size, n_steps, burn_in, thin)
    x, generator = checks.check_chain_start(x0, generator, seed)
    log_p, grad = log_prob_and_grad(log_prob, x)
    guard = Guard("MALA", step_size, n_steps)
    guard.record(x, log_p, grad)  # the start only: a non-finite proposal is rejected, never kept
    kept, accepted = [], torch.zeros((), device=x.device)
    for t in range(n_steps):
        noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        y = x + step_size * grad + math.sqrt(2 * step_size) * noise
        log_p_y, grad_y = log_prob_and_grad(log_prob, y)
        log_alpha = mala_log_acceptance(x, y, log_p, log_p_y, grad, grad_y, step_size)
        u = torch.rand(x.shape[:1], generator=generator, device=x.device, dtype=x.dtype)
        accept = torch.log(u) < log_alpha  # a NaN proposal (log_alpha NaN) is rejected
        x = torch.where(accept[:, None], y, x)
        log_p = torch.where(accept, log_p_y, log_p)
        grad = torch.where(accept[:, None], grad_y, grad)
        if t >= burn_in:
            accepted = accepted + accept.float().mean()
            if (t - burn_in) % thin == thin - 1:
                kept.append(x)
    samples = torch.stack(kept)
    guard.check(samples)
    rate = float(accepted) / (n_steps - burn_in)
    if rate == 0:
        warnings.warn(f"MALA accepted none of the {len(x) * (n_steps - burn_in)} proposals after the burn-in: the "
                      f"chains never moved. The step size {step_size} is too large for this target (or every "
                      "proposal fell where log_prob is undefined); reduce it until the acceptance rate is about "
                      "0.5-0.8", RuntimeWarning, stacklevel=2)
    return Chains(samples, acceptance_rate=rate)


def step_schedule(t, a: float, b: float, gamma: float = 0.55):
    """Welling & Teh's decreasing step size ε_t = a (b + t)^(-γ); Σε_t = ∞ and Σε_t² < ∞ for 0.5 < γ ≤ 1."""
    return a * (b + t) ** (-gamma)


def schedule_from_range(first: float, last: float, n_steps: int, gamma: float = 0.55) -> tuple[float, float]:
    """(a, b) such that ε_0 = first and ε_{n_steps} = last, as Welling & Teh choose them (0.01 down to 0.0001)."""
    first, last = checks.check_rate("first", first), checks.check_rate("last", last)
    gamma = checks.check_rate("gamma", gamma)
    n_steps = checks.check_count("n_steps", n_steps)
    if not last < first:
        raise ValueError(f"the schedule must decrease: need 0 < last < first, got first={first}, last={last}")
    b = n_steps / ((first / last) ** (1 / gamma) - 1)
    return first * b**gamma, b


def sgld(log_prior: LogProb, log_likelihood: Callable, data, x0: torch.Tensor, n_steps: int, *, batch_size: int,
         a: float, b: float, gamma: float = 0.55, burn_in: int = 0, thin: int = 1,
         generator: torch.Generator | None = None, seed: int = 0) -> Chains:
    """Stochastic gradient Langevin dynamics (Welling & Teh 2011):

        Δθ_t = (ε_t / 2) [∇log p(θ_t) + (N/n) Σ_{i in batch} ∇log p(x_i | θ_t)] + η_t,   η_t ~ N(0, ε_t I),

    with ε_t = a (b + t)^(-γ). In ULA's notation this is a step η = ε/2 with a minibatch gradient.
    `log_likelihood(theta, batch)` returns Σ_{i in batch} log p(x_i | θ) for each chain, shape (n_chains,), where
    batch[c] (shape (n, ...)) is chain c's minibatch.

    Minibatches are the slices of a fresh permutation of the N data each sweep (`genmodels.basics.batches`, the
    last slice dropped if it is short); chain c takes slice (k + c) mod (N // n) at the k-th step of a sweep, so each
    chain sees every slice once per sweep and neighbouring chains see different data (shared minibatches would
    give all chains the same gradient noise and make them move together)."""
    a, b, gamma = checks.check_rate("a", a), checks.check_rate("b", b), checks.check_rate("gamma", gamma)
    _, n_steps, burn_in, thin = checks.check_chain_run(a, n_steps, burn_in, thin, step_name="a")
    x, generator = checks.check_chain_start(x0, generator, seed)
    data = checks.check_finite_rows(as_tensor(data, x.device))
    n_data = len(data)
    batch_size = checks.check_count("batch_size", batch_size)
    if batch_size > n_data:
        raise ValueError(f"batch_size must lie between 1 and the number of data ({n_data}); got {batch_size}")
    order_generator = torch.Generator().manual_seed(seed)  # batches() draws its permutation on the CPU
    n_batches = n_data // batch_size
    shift = torch.arange(len(x), device=x.device)

    def log_posterior_estimate(theta, batch):
        return minibatch_log_posterior(log_prior(theta), log_likelihood(theta, batch), n_data, batch_size)

    eps = step_schedule(torch.arange(n_steps, dtype=torch.float64), a, b, gamma)
    kept, guard = [], Guard("SGLD", f"{eps[0].item():.3g} (first)", n_steps)
    for t in range(n_steps):
        k = t % n_batches
        if k == 0:  # a new sweep: the full-size slices of a new permutation, as rows of one (n_batches, n) tensor
            sweep = torch.stack(batches(n_data, batch_size, order_generator, x.device)[:n_batches])
        rows = sweep[(k + shift) % n_batches]  # (n_chains, n) indices; index_select is the cheap gather on a CPU
        batch = data.index_select(0, rows.flatten()).view(*rows.shape, *data.shape[1:])
        value, grad = log_prob_and_grad(lambda theta: log_posterior_estimate(theta, batch), x)  # noqa: B023
        guard.record(x, value, grad)
        noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        x = sgld_step(x, grad, eps[t].item(), noise)
        if t >= burn_in and (t - burn_in) % thin == thin - 1:
            kept.append(x)
    samples = torch.stack(kept)
    guard.check(samples)
    return Chains(samples)


def minibatch_log_posterior(log_prior, log_likelihood_sum, n_data: int, batch_size: int):
    """log p(θ) + (N/n) Σ_batch log p(x_i|θ): the minibatch's estimate of the log posterior, unbiased for it; being
    linear, the same formula turns the gradients of the two terms into the estimate of its gradient."""
    return log_prior + n_data / batch_size * log_likelihood_sum


def sgld_step(theta: torch.Tensor, grad_log_posterior: torch.Tensor, eps: float, noise: torch.Tensor) -> torch.Tensor:
    """One SGLD step from given noise w: θ' = θ + (ε/2) ∇log p̂(θ|data) + √ε w, with the minibatch estimate of the
    gradient (minibatch_log_posterior); exercises/03_langevin writes it."""
    return theta + eps / 2 * grad_log_posterior + math.sqrt(eps) * noise


def ula_gaussian_stationary_covariance(cov, step_size: float, noise_scale: float = math.sqrt(2.0)) -> torch.Tensor:
    """The exact stationary covariance of ULA on N(μ, Σ): along each eigenvector of Σ (eigenvalue σ²) the chain is
    AR(1) with coefficient 1 - η/σ², so its variance is c² η / (1 - (1 - η/σ²)²) = (c²/2) σ² / (1 - η / (2σ²)).
    c = √2: σ² plus a bias of order η; c = 1 (the lecture's rule): about σ²/2, the variance of p²."""
    step_size, noise_scale = checks.check_rate("step_size", step_size), checks.check_rate("noise_scale", noise_scale)
    cov = torch.as_tensor(cov, dtype=torch.float64)
    if cov.ndim != 2 or cov.shape[0] != cov.shape[1] or cov.shape[0] == 0:
        raise ValueError(f"cov must be a square (dim, dim) covariance matrix; got shape {tuple(cov.shape)} "
                         "(for one variance v write [[v]])")
    if not torch.isfinite(cov).all() or not torch.allclose(cov, cov.T):
        raise ValueError(f"cov must be a finite symmetric matrix; got {cov.tolist()}")
    variances, vectors = torch.linalg.eigh(cov)
    if variances.min() <= 0:
        raise ValueError(f"cov must be positive definite (all eigenvalues > 0, as a covariance of a density); its "
                         f"eigenvalues are {[round(v, 6) for v in variances.tolist()]}. Check the variances on the "
                         "diagonal and that each correlation lies in (-1, 1).")
    if (step_size >= 2 * variances).any():
        raise ValueError(f"ULA is unstable on this Gaussian for step sizes >= 2 σ²_min = "
                         f"{2 * variances.min().item():.3g} (twice its smallest variance); got step_size={step_size}: "
                         "its chains diverge and have no stationary covariance. Take a smaller step.")
    stationary = noise_scale**2 / 2 * variances / (1 - step_size / (2 * variances))
    return vectors @ torch.diag(stationary) @ vectors.T


# --- what the samplers share: their result, and the log-density with its gradient ------------------------------


@dataclass
class Chains:
    """What a sampler returns: `samples` of shape (n_kept, n_chains, dim) (or (n_kept, n_chains, *event_shape)) and
    the MALA acceptance rate (None for ULA and SGLD)."""

    samples: torch.Tensor
    acceptance_rate: float | None = None

    def flat(self) -> torch.Tensor:
        """All kept states of all chains as one (n_kept * n_chains, dim) (or (..., *event_shape)) tensor."""
        return self.samples.reshape(-1, *self.samples.shape[2:])

    @property
    def last(self) -> torch.Tensor:
        """The final kept state of every chain, (n_chains, dim) (or (n_chains, *event_shape))."""
        return self.samples[-1]


def log_prob_and_grad(log_prob: LogProb, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """log p(x) (n_chains,) and ∇_x log p(x) by autograd, both detached, for a batch of chains x (n_chains, ...).
    Outside any autocast region: a network's log-density and its gradient are computed in float32 even when the
    caller (the training loop's loss) runs under bfloat16 autocast."""
    with torch.enable_grad(), torch.autocast(x.device.type, enabled=False):
        x = x.detach().requires_grad_(True)
        value = checks.check_log_prob_value(log_prob(x), x)
        (grad,) = torch.autograd.grad(value.sum(), x)
    return value.detach(), grad
