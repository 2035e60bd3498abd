"""Langevin sampling: ULA, MALA and SGLD for any differentiable log density.  Taught in 03_langevin_sampling.

The Langevin diffusion dθ = ∇log p(θ) dt + √2 dW has p as its stationary density (Fokker–Planck). Its Euler step
of size η is the unadjusted Langevin algorithm (ULA)

    θ' = θ + η ∇log p(θ) + √(2η) w,   w ~ N(0, I).

The lecture writes the noise as √η w: that chain samples p² instead of p (`noise_scale=1` reproduces it). MALA adds
a Metropolis–Hastings test to the ULA proposal, which removes the step-size bias. SGLD (Welling & Teh 2011) replaces
the gradient of the log posterior by a minibatch estimate, scaled by N/n, and lets the step size decrease.

Every sampler runs many chains at once: `x0` has shape (n_chains, dim), `log_prob` maps it to (n_chains,), and all
random numbers are drawn on the chains' device. The file reads: samplers, diagnostics, targets, the Bayesian example.

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
import torch.nn.functional as F

from .training import as_tensor, batches, check_count, check_rate

__all__ = ["Chains", "log_prob_and_grad", "ula", "mala", "step_schedule", "schedule_from_range", "sgld",
           "ula_gaussian_stationary_covariance", "autocorrelation", "integrated_autocorrelation_time",
           "effective_sample_size", "monte_carlo_error", "plot_traces", "Target", "CorrelatedGaussian", "DoubleWell",
           "GaussianMixture", "Banana", "MixturePosterior"]

LogProb = Callable[[torch.Tensor], torch.Tensor]


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


# --- samplers -----------------------------------------------------------------------------------------------------
# Inputs are checked once, where a notebook calls in; inside the loops nothing waits for the device. Non-finite values
# are caught without a per-step synchronisation: each step keeps Σ_chains log p (autograd computes that sum anyway)
# and Σ ∇log p, two numbers left on the device; a sum is finite exactly when all its terms are (or when they are so
# large that it overflows, i.e. the chains blew up). One look at them at the end of the run says whether, at which
# step and in which of the two the first non-finite value appeared. The start x0 is checked at once, chain by chain.


def _show_state(state: torch.Tensor) -> str:
    """One chain's state for an error message: its values for a few coordinates, else its shape and range."""
    if state.numel() <= 8:
        return str([round(v, 4) for v in state.flatten().tolist()])
    finite = state[torch.isfinite(state)]
    spread = f"finite values in [{finite.min().item():.3g}, {finite.max().item():.3g}]" if len(finite) else "no finite"
    return f"a {tuple(state.shape)} state with {int((~torch.isfinite(state)).sum())} non-finite values, {spread}"


def _check_start(x0, generator, seed, images: bool = False) -> tuple[torch.Tensor, torch.Generator]:
    if not torch.is_tensor(x0) or x0.ndim < 2 or (x0.ndim > 2 and not images) or not x0.is_floating_point():
        shape = tuple(x0.shape) if torch.is_tensor(x0) else type(x0).__name__
        also = " or (n_chains, *event_shape)" if images else ""
        raise ValueError(f"x0 must be a floating-point tensor of shape (n_chains, dim){also}; got {shape}. "
                         "For one chain of a 1-D density use x0 = torch.zeros(1, 1).")
    if x0.numel() == 0:
        raise ValueError(f"x0 has shape {tuple(x0.shape)}: need at least one chain and one coordinate, "
                         "shape (n_chains, dim) with both >= 1")
    if x0.device.type != "meta":
        bad = ~torch.isfinite(x0).flatten(1).all(-1)
        if bad.any():
            chain = int(bad.nonzero()[0])
            shown = x0[chain].tolist() if x0.ndim == 2 else _show_state(x0[chain])
            raise ValueError(f"x0 holds NaN or infinite values in {int(bad.sum())} of {len(x0)} chains (first: "
                             f"chain {chain}, x0[{chain}] = {shown}); start every chain at a finite "
                             "point where log_prob is defined")
    if generator is None:
        generator = torch.Generator(device=x0.device).manual_seed(seed)
    elif generator.device.type != x0.device.type:
        raise ValueError(f"the generator lives on {generator.device} but the chains on {x0.device}; create it with "
                         f"torch.Generator(device={str(x0.device)!r}) or pass seed= instead")
    return x0.detach().clone(), generator


def _check_run(step_size, n_steps, burn_in, thin, step_name: str = "step_size") -> tuple[float, int, int, int]:
    """The run's settings, checked: a positive finite step, n_steps >= 1, 0 <= burn_in < n_steps, and a `thin` that
    keeps at least one state ((n_steps - burn_in) // thin states are kept)."""
    step_size = check_rate(step_name, step_size)
    n_steps, burn_in = check_count("n_steps", n_steps), check_count("burn_in", burn_in, 0)
    thin = check_count("thin", thin)
    if burn_in >= n_steps:
        raise ValueError(f"burn_in={burn_in} discards all n_steps={n_steps} steps, so nothing would be kept; "
                         f"need burn_in < n_steps (for example burn_in={n_steps // 4})")
    if thin > n_steps - burn_in:
        raise ValueError(f"thin={thin} keeps no state: after burn_in={burn_in}, only {n_steps - burn_in} of "
                         f"n_steps={n_steps} steps remain; need thin <= n_steps - burn_in = {n_steps - burn_in} "
                         f"(every thin-th state after the burn-in is kept)")
    return step_size, n_steps, burn_in, thin


def _log_prob_grad_and_sum(log_prob: LogProb, x: torch.Tensor):
    """log p(x) (n_chains,), ∇_x log p(x) and Σ_chains log p (the sum autograd differentiates), all detached. Outside
    any autocast region: a network's log-density and its gradient are computed in float32 even when the caller (the
    training loop's loss) runs under bfloat16 autocast."""
    with torch.enable_grad(), torch.autocast(x.device.type, enabled=False):
        x = x.detach().requires_grad_(True)
        value = log_prob(x)
        if not torch.is_tensor(value):
            raise ValueError(f"log_prob must return a torch tensor of shape {tuple(x.shape[:1])}, one value per "
                             f"chain; got {type(value).__name__}. Write it with torch operations on x.")
        if value.shape != x.shape[:1]:
            raise ValueError(f"log_prob must return one value per chain, shape {tuple(x.shape[:1])}; got "
                             f"{tuple(value.shape)}. Sum over the coordinates (dim=-1), not over the chains.")
        value = value.float() if value.dtype in (torch.float16, torch.bfloat16) else value
        total = value.sum()
        if not total.requires_grad:
            raise ValueError("log_prob's result does not depend on x through torch operations, so autograd cannot "
                             "differentiate it: write it with torch functions of x (no .item(), .numpy(), "
                             ".detach() or math.* on x)")
        (grad,) = torch.autograd.grad(total, x)
    return value.detach(), grad, total.detach()


def log_prob_and_grad(log_prob: LogProb, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """log p(x) and ∇_x log p(x) by autograd, for a batch of chains x of shape (n_chains, dim)."""
    value, grad, _ = _log_prob_grad_and_sum(log_prob, x)
    return value, grad


_SUPPORT_ADVICE = ("use langevin.mala, whose accept/reject step refuses such moves, or sample a variable defined on "
                   "all of R^d (for θ > 0: θ = exp(u), with log p(exp(u)) + u as the log-density of u)")
_GRAD_ADVICE = ("autograd gives NaN or inf where the formula is not differentiable (torch.sqrt at 0, a power below "
                "1 at 0, the edge of a support, a torch.where whose unused branch is NaN there); write log_prob so "
                "that its gradient is defined everywhere (for example torch.sqrt(x**2 + 1e-12), or clamp the input "
                "of the unused branch)")


def _check_start_values(name: str, x: torch.Tensor, value: torch.Tensor, grad: torch.Tensor) -> None:
    """log p and ∇log p at the start, chain by chain (one synchronisation, before the run)."""
    bad_value = ~torch.isfinite(value)
    bad_grad = ~torch.isfinite(grad).flatten(1).all(-1)
    if not (bad_value.any() or bad_grad.any()):
        return
    bad, what = (bad_value, "log_prob(x0)") if bad_value.any() else (bad_grad, "the gradient of log_prob at x0")
    chain = int(bad.nonzero()[0])
    found = value[chain].item() if bad_value.any() else grad[chain].tolist()
    if not bad_value.any() and grad.ndim > 2:
        found = _show_state(grad[chain])
    where = (f"is {found} for {int(bad.sum())} of {len(x)} chains (first: chain {chain}, "
             f"x0[{chain}] = {_show_state(x[chain])})")
    if bad_value.any():
        raise ValueError(f"{name}: {what} {where}. The chains start where the log-density is undefined: outside its "
                         "support (a log of a negative number, a negative variance), or log_prob reads data that "
                         "hold NaN. Start every chain where log_prob is finite.")
    raise ValueError(f"{name}: {what} {where}, while log_prob itself is finite there: {_GRAD_ADVICE}; or start the "
                     "chains away from such points.")


class _Watch:
    """Σ_chains log p and Σ_chains ∇log p at every step, kept on the device; looked at once, by `check`."""

    def __init__(self):
        self.values, self.grads = [], []

    def add(self, total: torch.Tensor, grad: torch.Tensor) -> None:
        self.values.append(total)
        self.grads.append(grad.sum())

    def check(self, name: str, step_size, n_steps: int, n_chains: int) -> None:
        values, grads = torch.stack(self.values).double().cpu(), torch.stack(self.grads).double().cpu()
        finite_value, finite_grad = torch.isfinite(values), torch.isfinite(grads)
        bad = ~(finite_value & finite_grad)
        if not bad.any():
            return
        t = int(bad.nonzero()[0])
        what = "log-density" if not finite_value[t] else "gradient of log_prob"
        found = values[t].item() if not finite_value[t] else grads[t].item()
        per_chain = values[:t].abs() / n_chains  # mean |log p| per chain at each step before
        start = per_chain[0].item() if t > 0 else 0.0
        smaller = ("reduce a, the schedule's first step size" if name == "SGLD"
                   else "reduce it, or use langevin.mala, which rejects such moves")
        if t > 0 and per_chain.max().item() > 1e3 * max(start, 1.0):
            peak = int(per_chain.argmax())
            raise FloatingPointError(
                f"{name} diverged: the mean log-density per chain went from {values[0].item() / n_chains:.3g} at the "
                f"start to {values[peak].item() / n_chains:.3g} after {peak} steps, then the {what} became {found} "
                f"after {t} of {n_steps} steps. The step size {step_size} is too large for this target (a Langevin "
                f"chain on a Gaussian is unstable beyond twice its smallest variance): {smaller}.")
        jump = (f" (or, if the step size {step_size} is large for the scale of this target, the chains jumped in one "
                f"step to where log p overflows: {smaller})" if math.isinf(found) else "")
        if what == "log-density":
            advice = ("check log_prior and log_likelihood where θ leaves their support; SGLD has no accept/reject "
                      "step, so sample a variable defined on all of R^d (for θ > 0: θ = exp(u), adding u to the "
                      "log-density)" if name == "SGLD" else _SUPPORT_ADVICE)
            raise FloatingPointError(
                f"{name}: the log-density became {found} after {t} of {n_steps} steps, while the steps before gave "
                f"moderate values (mean log p {values[t - 1].item() / n_chains:.3g} per chain): the chains stepped "
                f"where log_prob is undefined, most likely outside the target's support{jump}. {name} has no "
                f"accept/reject step to keep them out: {advice}.")
        raise FloatingPointError(
            f"{name}: the gradient of log_prob became {found} after {t} of {n_steps} steps, while log_prob itself "
            f"stayed finite and moderate{jump}: {_GRAD_ADVICE}.")


def _diverged(samples: torch.Tensor, name: str, step_size) -> None:
    """The last safeguard, on the kept states: a state can blow up in the final step, after the last evaluation."""
    if not torch.isfinite(samples).all():
        raise FloatingPointError(f"{name} chains diverged (non-finite values) with step size {step_size}: the step is "
                                 "too large for this target; reduce it (or use mala, which rejects bad moves)")


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
    step_size, n_steps, burn_in, thin = _check_run(step_size, n_steps, burn_in, thin)
    noise_scale = check_rate("noise_scale", noise_scale)
    if grad_clamp is not None:
        grad_clamp = check_rate("grad_clamp", grad_clamp)
    x, generator = _check_start(x0, generator, seed, images=True)
    kept, watch = [], _Watch()
    noise_std = noise_scale * math.sqrt(step_size)
    for t in range(n_steps):
        value, grad, total = _log_prob_grad_and_sum(log_prob, x)
        if t == 0:
            _check_start_values("ULA", x, value, grad)
        watch.add(total, grad)  # before the clamp, which would turn an infinite gradient into a finite one
        if grad_clamp is not None:
            grad = grad.clamp(-grad_clamp, grad_clamp)
        noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        x = x + step_size * grad + noise_std * noise
        if project is not None:
            x = project(x)
        if t >= burn_in and (t - burn_in) % thin == thin - 1:
            kept.append(x)
    watch.check("ULA", step_size, n_steps, len(x))
    samples = torch.stack(kept)
    _diverged(samples, "ULA", step_size)
    return Chains(samples)


def mala(log_prob: LogProb, x0: torch.Tensor, step_size: float, n_steps: int, *, burn_in: int = 0, thin: int = 1,
         generator: torch.Generator | None = None, seed: int = 0) -> Chains:
    """Metropolis-adjusted Langevin: propose y = θ + η ∇log p(θ) + √(2η) w, accept with probability
    min(1, p(y) q(θ|y) / (p(θ) q(y|θ))), where q(y|θ) = N(y; θ + η ∇log p(θ), 2η I). Exact at any step size.

    The acceptance rate is averaged over the steps after burn-in and over the chains. A proposal whose log-density
    or gradient is NaN or infinite (outside the support) is rejected; the start x0 must have finite ones."""
    step_size, n_steps, burn_in, thin = _check_run(step_size, n_steps, burn_in, thin)
    x, generator = _check_start(x0, generator, seed)
    log_p, grad = log_prob_and_grad(log_prob, x)
    _check_start_values("MALA", x, log_p, grad)
    kept, accepted = [], torch.zeros((), device=x.device)

    def log_q(to, frm, grad_frm):  # log N(to; frm + η ∇log p(frm), 2η I), up to a constant
        return -((to - frm - step_size * grad_frm) ** 2).sum(-1) / (4 * step_size)

    for t in range(n_steps):
        noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        y = x + step_size * grad + math.sqrt(2 * step_size) * noise
        log_p_y, grad_y = log_prob_and_grad(log_prob, y)
        log_alpha = log_p_y + log_q(x, y, grad_y) - log_p - log_q(y, x, grad)
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
    _diverged(samples, "MALA", step_size)
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
    first, last, gamma = check_rate("first", first), check_rate("last", last), check_rate("gamma", gamma)
    n_steps = check_count("n_steps", n_steps)
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

    Minibatches are the slices of a fresh permutation of the N data each sweep (`genmodels.training.batches`, the
    last slice dropped if it is short); chain c takes slice (k + c) mod (N // n) at the k-th step of a sweep, so each
    chain sees every slice once per sweep and neighbouring chains see different data (shared minibatches would
    give all chains the same gradient noise and make them move together)."""
    a, b, gamma = check_rate("a", a), check_rate("b", b), check_rate("gamma", gamma)
    _, n_steps, burn_in, thin = _check_run(a, n_steps, burn_in, thin, step_name="a")
    x, generator = _check_start(x0, generator, seed)
    data = _check_data(data, x.device)
    n_data = len(data)
    batch_size = check_count("batch_size", batch_size)
    if batch_size > n_data:
        raise ValueError(f"batch_size must lie between 1 and the number of data ({n_data}); got {batch_size}")
    order_generator = torch.Generator().manual_seed(seed)  # batches() draws its permutation on the CPU
    n_batches = n_data // batch_size
    shift = torch.arange(len(x), device=x.device)

    def log_posterior_estimate(theta, batch):
        return log_prior(theta) + n_data / batch_size * log_likelihood(theta, batch)

    kept, watch = [], _Watch()
    eps = step_schedule(torch.arange(n_steps, dtype=torch.float64), a, b, gamma)
    for t in range(n_steps):
        k = t % n_batches
        if k == 0:  # a new sweep: the full-size slices of a new permutation, as rows of one (n_batches, n) tensor
            sweep = torch.stack(batches(n_data, batch_size, order_generator, x.device)[:n_batches])
        rows = sweep[(k + shift) % n_batches]  # (n_chains, n) indices; index_select is the cheap gather on a CPU
        batch = data.index_select(0, rows.flatten()).view(*rows.shape, *data.shape[1:])
        value, grad, total = _log_prob_grad_and_sum(lambda theta: log_posterior_estimate(theta, batch), x)  # noqa: B023
        if t == 0:
            _check_start_values("SGLD", x, value, grad)
        watch.add(total, grad)
        noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        x = x + eps[t].item() / 2 * grad + math.sqrt(eps[t].item()) * noise
        if t >= burn_in and (t - burn_in) % thin == thin - 1:
            kept.append(x)
    first = f"{eps[0].item():.3g} (first)"
    watch.check("SGLD", first, n_steps, len(x))
    samples = torch.stack(kept)
    _diverged(samples, "SGLD", first)
    return Chains(samples)


def _check_data(data, device) -> torch.Tensor:
    """SGLD's data as a tensor on the chains' device, checked once: non-empty, and finite (a NaN row would make the
    gradient of every minibatch holding it NaN)."""
    data = as_tensor(data, device)
    if data.ndim == 0 or len(data) == 0:
        raise ValueError(f"data must hold at least one data point along its first axis; got shape {tuple(data.shape)}")
    if data.is_floating_point():
        bad = ~torch.isfinite(data).reshape(len(data), -1).all(-1)
        if bad.any():
            n_nan, n_inf = int(torch.isnan(data).sum()), int(torch.isinf(data).sum())
            raise ValueError(f"data contain {n_nan} NaN and {n_inf} infinite values, in {int(bad.sum())} of "
                             f"{len(data)} rows (first: row {int(bad.nonzero()[0])}); every minibatch holding them "
                             "would give a NaN gradient. Drop or repair those rows first, e.g. "
                             "data[torch.isfinite(data).reshape(len(data), -1).all(-1)].")
    return data


def ula_gaussian_stationary_covariance(cov, step_size: float, noise_scale: float = math.sqrt(2.0)) -> torch.Tensor:
    """The exact stationary covariance of ULA on N(μ, Σ): along each eigenvector of Σ (eigenvalue σ²) the chain is
    AR(1) with coefficient 1 - η/σ², so its variance is c² η / (1 - (1 - η/σ²)²) = (c²/2) σ² / (1 - η / (2σ²)).
    c = √2: σ² plus a bias of order η; c = 1 (the lecture's rule): about σ²/2, the variance of p²."""
    step_size, noise_scale = check_rate("step_size", step_size), check_rate("noise_scale", noise_scale)
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


# --- diagnostics --------------------------------------------------------------------------------------------------


def _as_series(x) -> torch.Tensor:
    """(n_steps, n_chains, dim) float64 on the CPU; 1-D and 2-D inputs get the missing axes."""
    x = torch.as_tensor(x.samples if isinstance(x, Chains) else x).detach().cpu().double()
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim == 2:
        x = x[..., None]
    if x.ndim != 3 or len(x) < 4:
        raise ValueError(f"expected chains of shape (n_steps, n_chains[, dim]) with n_steps >= 4; got {tuple(x.shape)}")
    if not torch.isfinite(x).all():
        raise ValueError(f"the chains hold {int((~torch.isfinite(x)).sum())} NaN or infinite values: no "
                         "autocorrelation or effective sample size can be computed from them; rerun the sampler "
                         "with a smaller step size")
    return x


def autocorrelation(x, max_lag: int | None = None) -> torch.Tensor:
    """ρ(k) = C(k)/C(0), C(k) the autocovariance at lag k averaged over chains (about the mean of all chains, so that
    chains stuck in different places show up as slow decay). Input (n_steps, n_chains[, dim]); output
    (max_lag + 1, dim). Computed by FFT."""
    x = _as_series(x)
    n = len(x)
    y = x - x.mean(dim=(0, 1))
    f = torch.fft.rfft(y, n=2 * n, dim=0)
    acov = torch.fft.irfft(f * f.conj(), n=2 * n, dim=0)[:n].mean(dim=1) / n
    rho = acov / acov[:1]
    return rho[: (n if max_lag is None else max_lag + 1)]


def integrated_autocorrelation_time(x) -> torch.Tensor:
    """τ = 1 + 2 Σ_{k≥1} ρ(k), summed with Geyer's initial monotone sequence (pairs ρ(2m) + ρ(2m+1) while positive
    and decreasing). Clamped at 1, so that a standard error is never claimed smaller than for independent draws."""
    rho = autocorrelation(x)
    n_pairs = len(rho) // 2
    pairs = rho[: 2 * n_pairs].reshape(n_pairs, 2, -1).sum(1)  # Γ_m = ρ(2m) + ρ(2m+1)
    taus = []
    for gamma in pairs.T:
        negative = (gamma <= 0).nonzero()
        gamma = gamma[: int(negative[0]) if len(negative) else n_pairs]
        gamma = torch.cummin(gamma, dim=0).values
        taus.append(-1 + 2 * gamma.sum())
    return torch.stack(taus).clamp(min=1.0)


def effective_sample_size(x) -> torch.Tensor:
    """ESS = n_steps · n_chains / τ, per coordinate: how many independent draws the correlated chains are worth."""
    series = _as_series(x)
    return series.shape[0] * series.shape[1] / integrated_autocorrelation_time(series)


def monte_carlo_error(x) -> torch.Tensor:
    """Standard error of the mean of each coordinate over all steps and chains: sd / √ESS."""
    series = _as_series(x)
    return series.reshape(-1, series.shape[-1]).std(dim=0) / effective_sample_size(series).sqrt()


def plot_traces(chains, names=None, n_chains: int = 3, max_lag: int = 200, title: str | None = None) -> None:
    """Trace plots of a few chains, one row per coordinate, beside the autocorrelation ρ(k) with the ESS."""
    import matplotlib.pyplot as plt

    x = _as_series(chains)
    dim = x.shape[-1]
    names = names or [f"θ{i + 1}" for i in range(dim)]
    rho, ess = autocorrelation(x, max_lag=min(max_lag, len(x) - 1)), effective_sample_size(x)
    fig, axes = plt.subplots(dim, 2, figsize=(10, 2.2 * dim), squeeze=False, gridspec_kw={"width_ratios": [3, 1]})
    for i in range(dim):
        axes[i, 0].plot(x[:, :n_chains, i].numpy(), lw=0.6)
        axes[i, 0].set_ylabel(names[i])
        axes[i, 1].plot(rho[:, i].numpy())
        axes[i, 1].axhline(0, color="grey", lw=0.5)
        axes[i, 1].set_title(f"ρ(k), ESS {ess[i]:.0f}", fontsize=9)
    axes[-1, 0].set_xlabel("step")
    axes[-1, 1].set_xlabel("lag k")
    if title:
        fig.suptitle(title)
    plt.tight_layout()
    plt.show()


# --- targets with known densities -----------------------------------------------------------------------------------


class Target:
    """A 2-D density known up to a constant (`log_prob`), with a box that holds nearly all its mass (`extent`), so
    that it can be normalised, binned and sampled exactly on a grid."""

    name = "target"
    extent = (-4.0, 4.0, -4.0, 4.0)  # θ1 from, to, θ2 from, to

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def grid(self, n: int = 200):
        """Cell centres θ1 (n,), θ2 (n,) and the probability of each cell, (n, n) indexed [θ2, θ1], summing to 1.
        Computed once per n (in float64, on the CPU) and kept."""
        cache = self.__dict__.setdefault("_grids", {})
        if n not in cache:
            cache[n] = self._grid(n)
        return cache[n]

    def _grid(self, n: int):
        x0, x1, y0, y1 = self.extent
        t1 = torch.linspace(x0, x1, n + 1, dtype=torch.float64)
        t2 = torch.linspace(y0, y1, n + 1, dtype=torch.float64)
        c1, c2 = (t1[1:] + t1[:-1]) / 2, (t2[1:] + t2[:-1]) / 2
        points = torch.stack(torch.meshgrid(c2, c1, indexing="ij")[::-1], dim=-1).reshape(-1, 2)
        log_p = torch.cat([self.log_prob(chunk) for chunk in points.split(50_000)]).reshape(n, n)
        return c1, c2, torch.softmax(log_p.flatten(), 0).reshape(n, n)

    def cell_probabilities(self, bins: int = 20, refine: int = 10) -> torch.Tensor:
        """Exact probability of each cell of a coarse bins × bins grid over `extent` (float64, indexed [θ2, θ1]),
        by summing a grid refine times finer."""
        _, _, p = self.grid(bins * refine)
        return p.reshape(bins, refine, bins, refine).sum((1, 3))

    def histogram(self, samples, bins: int = 20) -> torch.Tensor:
        """Fraction of the samples (n, 2) in each coarse cell, indexed [θ2, θ1]; samples outside `extent` count in
        no cell (so the fractions sum to less than 1 and the distance below counts them as a mismatch)."""
        s = torch.as_tensor(samples).detach().cpu().double().reshape(-1, 2)
        x0, x1, y0, y1 = self.extent
        i = torch.floor((s[:, 0] - x0) / (x1 - x0) * bins).long()
        j = torch.floor((s[:, 1] - y0) / (y1 - y0) * bins).long()
        inside = (i >= 0) & (i < bins) & (j >= 0) & (j < bins)
        counts = torch.bincount(j[inside] * bins + i[inside], minlength=bins * bins).double()
        return counts.reshape(bins, bins) / len(s)

    def total_variation(self, samples, bins: int = 20) -> float:
        """½ Σ_cells |fraction of samples - exact probability| on the coarse grid (0: identical, 1: disjoint)."""
        p = self.cell_probabilities(bins)
        q = self.histogram(samples, bins)
        outside = 1 - q.sum()
        return float(0.5 * ((q - p).abs().sum() + outside))

    def noise_floor(self, n_samples: int, bins: int = 20, repeats: int = 200, seed: int = 0) -> torch.Tensor:
        """Total-variation distances reached by n_samples exact independent draws from the grid distribution,
        `repeats` times: what a perfect sampler with that many independent samples would score."""
        p = self.cell_probabilities(bins).flatten()
        g = torch.Generator().manual_seed(seed)
        counts = torch.stack([torch.bincount(torch.multinomial(p, n_samples, replacement=True, generator=g),
                                             minlength=len(p)) for _ in range(repeats)]).double()
        return 0.5 * (counts / n_samples - p).abs().sum(1)

    def plot(self, samples=None, ax=None, title: str | None = None, n_points: int = 2000) -> None:
        """Contours of the exact density, with up to n_points of `samples` on top."""
        import matplotlib.pyplot as plt

        own = ax is None
        if own:
            _, ax = plt.subplots(figsize=(4, 4))
        c1, c2, p = self.grid(150)
        ax.contour(c1.numpy(), c2.numpy(), p.numpy(), levels=8, cmap="viridis", linewidths=1)
        if samples is not None:
            s = torch.as_tensor(samples).detach().cpu().reshape(-1, 2)
            s = s[torch.linspace(0, len(s) - 1, min(n_points, len(s))).long()]
            ax.scatter(s[:, 0].numpy(), s[:, 1].numpy(), s=2, color="C3", alpha=0.4)
        ax.set_xlim(*self.extent[:2])
        ax.set_ylim(*self.extent[2:])
        ax.set_title(title or self.name, fontsize=10)
        if own:
            plt.show()


class CorrelatedGaussian(Target):
    """N(μ, Σ) with Σ = [[σ1², ρσ1σ2], [ρσ1σ2, σ2²]]: the target whose moments every sampler must reproduce."""

    def __init__(self, mean=(0.0, 0.0), std=(1.0, 1.0), rho: float = 0.8):
        if not -1 < rho < 1:
            raise ValueError(f"the correlation rho must lie in (-1, 1), got {rho}")
        self.mean = torch.tensor(mean, dtype=torch.float64)
        s1, s2 = (check_rate("std", s) for s in std)
        self.cov = torch.tensor([[s1 * s1, rho * s1 * s2], [rho * s1 * s2, s2 * s2]], dtype=torch.float64)
        self.precision = torch.linalg.inv(self.cov)
        self.log_norm = -0.5 * torch.logdet(2 * math.pi * self.cov).item()
        self.name = f"correlated Gaussian (ρ = {rho})"
        half = 4.5 * max(s1, s2)
        self.extent = (mean[0] - half, mean[0] + half, mean[1] - half, mean[1] + half)

    def log_prob(self, x):
        # written out elementwise: a matmul of (n, 2) by (2, 2) can cost more in thread start-up than in arithmetic
        (p11, p12), (_, p22) = self.precision.tolist()
        d1, d2 = x[:, 0] - self.mean[0].item(), x[:, 1] - self.mean[1].item()
        return -0.5 * (p11 * d1 * d1 + 2 * p12 * d1 * d2 + p22 * d2 * d2) + self.log_norm


class DoubleWell(Target):
    """p(x) ∝ exp(-E(x)), E = h (θ1² - 1)² + θ2²/2: two wells at θ1 = ±1 separated by a barrier of height h."""

    name = "double well"
    extent = (-2.5, 2.5, -4.0, 4.0)

    def __init__(self, barrier: float = 3.0):
        self.barrier = barrier

    def energy(self, x):
        return self.barrier * (x[..., 0] ** 2 - 1) ** 2 + 0.5 * x[..., 1] ** 2

    def log_prob(self, x):
        return -self.energy(x)


class GaussianMixture(Target):
    """Σ_k w_k N(μ_k, s_k² I): separated modes, the case where a local sampler must cross low-density regions."""

    name = "Gaussian mixture"

    def __init__(self, means=((-2.0, 0.0), (2.0, 1.0), (0.0, -2.5)), stds=(0.6, 0.8, 0.5), weights=(0.3, 0.4, 0.3)):
        self.means = torch.tensor(means, dtype=torch.float64)
        self.stds = torch.tensor(stds, dtype=torch.float64)
        self.weights = torch.tensor(weights, dtype=torch.float64) / sum(weights)
        self.extent = (-5.0, 5.0, -5.0, 5.0)

    def log_prob(self, x):
        means, stds, weights = self.means.to(x), self.stds.to(x), self.weights.to(x)
        d2 = ((x[:, None, :] - means) ** 2).sum(-1)  # (n, k)
        log_components = -0.5 * d2 / stds**2 - 2 * torch.log(stds) - math.log(2 * math.pi)
        return torch.logsumexp(torch.log(weights) + log_components, dim=-1)


class Banana(Target):
    """Haario's twisted Gaussian: θ1 ~ N(0, s²), θ2 | θ1 ~ N(b (θ1² - s²), 1). A curved ridge; E[θ] = 0."""

    name = "banana"

    def __init__(self, s: float = 1.5, b: float = 0.5):
        self.s, self.b = s, b
        self.extent = (-5.0, 5.0, -3.5, 8.0)

    def log_prob(self, x):
        t1, t2 = x[..., 0], x[..., 1] - self.b * (x[..., 0] ** 2 - self.s**2)
        return -0.5 * (t1 / self.s) ** 2 - 0.5 * t2**2 - math.log(2 * math.pi * self.s)


# --- the Bayesian example: Welling & Teh's mixture posterior ---------------------------------------------------------


class MixturePosterior(Target):
    """Welling & Teh (2011), section 5.1: θ1 ~ N(0, 10), θ2 ~ N(0, 1), x_i ~ ½ N(θ1, 2) + ½ N(θ1 + θ2, 2), where the
    second argument is the variance. N data drawn with θ = (0, 1) (the component first, then the point). The
    posterior has two modes, near (0, 1) and (1, -1): θ and (θ1 + θ2, -θ2) explain the data almost equally well."""

    name = "mixture posterior"
    extent = (-1.5, 2.5, -3.0, 3.0)
    var1, var2, var_x = 10.0, 1.0, 2.0

    def __init__(self, n: int = 100, theta=(0.0, 1.0), seed: int = 0, data=None):
        if data is None:
            n = check_count("n", n)
            g = torch.Generator().manual_seed(seed)
            component = torch.rand(n, generator=g) < 0.5  # True: the second component, mean θ1 + θ2
            means = theta[0] + theta[1] * component.double()
            data = means + math.sqrt(self.var_x) * torch.randn(n, generator=g, dtype=torch.float64)
        self.x = torch.as_tensor(data, dtype=torch.float64)
        if self.x.ndim != 1 or len(self.x) == 0:
            raise ValueError(f"data must be a non-empty 1-D sequence of numbers; got shape {tuple(self.x.shape)}")
        if not torch.isfinite(self.x).all():
            first = int((~torch.isfinite(self.x)).nonzero()[0])
            raise ValueError(f"data contain {int((~torch.isfinite(self.x)).sum())} NaN or infinite values (first: "
                             f"data[{first}] = {self.x[first].item()}); drop or repair them first")

    def log_prior(self, theta):
        return -0.5 * theta[:, 0] ** 2 / self.var1 - 0.5 * theta[:, 1] ** 2 / self.var2

    def log_likelihood(self, theta, x):
        """Σ_i log p(x_i | θ) for each chain: theta (n_chains, 2), x (n,) shared or (n_chains, n) -> (n_chains,)."""
        x = x.to(theta)
        x = x[None, :] if x.ndim == 1 else x
        a = -0.5 * (x - theta[:, :1]) ** 2 / self.var_x
        b = -0.5 * (x - theta[:, :1] - theta[:, 1:]) ** 2 / self.var_x
        log_norm = math.log(0.5) - 0.5 * math.log(2 * math.pi * self.var_x)
        return (a + F.softplus(b - a) + log_norm).sum(-1)  # a + softplus(b - a) = log(e^a + e^b)

    def log_prob(self, theta):
        """The unnormalised log posterior: log p(θ) + Σ_{all i} log p(x_i | θ)."""
        return self.log_prior(theta) + self.log_likelihood(theta, self.x)

    def modes(self, grid: int = 400) -> tuple[tuple[float, float], tuple[float, float]]:
        """The highest cell of the exact grid posterior in each half-plane, θ2 > 0 and θ2 < 0, as (θ1, θ2)."""
        c1, c2, p = self.grid(grid)
        found = []
        for half in (c2 > 0, c2 < 0):
            row, col = divmod(int((p * half[:, None]).argmax()), grid)
            found.append((float(c1[col]), float(c2[row])))
        return found[0], found[1]

    def mode_masses(self, samples=None) -> tuple[float, float]:
        """Mass of the half-planes θ2 > 0 (the mode near (0, 1)) and θ2 < 0 (near (1, -1)): of the exact grid
        posterior, or the fractions of `samples`."""
        if samples is None:
            _, c2, p = self.grid(400)
            upper = float(p[c2 > 0].sum())
        else:
            upper = float((torch.as_tensor(samples).detach().cpu().reshape(-1, 2)[:, 1] > 0).double().mean())
        return upper, 1 - upper
