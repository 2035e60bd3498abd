"""What the Langevin samplers say when their values turn NaN or infinite: record each step cheaply, check once.

A sampler makes one `Guard` per run and calls it twice: `record(x, log_p, grad)` after each evaluation of the
log-density, and `check(samples)` at the end. Nothing waits for the device inside the loop: each step keeps
Σ_chains log p and Σ ∇log p, two numbers left on the device; a sum is finite exactly when all its terms are (or when
they are so large that it overflows, i.e. the chains blew up). One look at them at the end of the run says whether,
at which step and in which of the two the first non-finite value appeared, and why it most likely did. The start is
checked at once, chain by chain (one synchronisation, before the run).
"""

from __future__ import annotations

import math

import torch

from .checks import describe_state

__all__ = ["Guard", "SUPPORT_ADVICE", "GRADIENT_ADVICE"]

SUPPORT_ADVICE = ("use langevin.mala, whose accept/reject step refuses such moves, or sample a variable defined on "
                  "all of R^d (for θ > 0: θ = exp(u), with log p(exp(u)) + u as the log-density of u)")
GRADIENT_ADVICE = ("autograd gives NaN or inf where the formula is not differentiable (torch.sqrt at 0, a power "
                   "below 1 at 0, the edge of a support, a torch.where whose unused branch is NaN there); write "
                   "log_prob so that its gradient is defined everywhere (for example torch.sqrt(x**2 + 1e-12), or "
                   "clamp the input of the unused branch)")


class Guard:
    """One sampler run's watch over its log-density and gradient. `name` is "ULA", "MALA" or "SGLD"; `step_size`
    is what the messages quote (SGLD's first step of the schedule)."""

    def __init__(self, name: str, step_size, n_steps: int):
        self.name, self.step_size, self.n_steps = name, step_size, n_steps
        self.values, self.grads = [], []

    def record(self, x: torch.Tensor, log_p: torch.Tensor, grad: torch.Tensor) -> None:
        """One evaluation: the first is checked chain by chain at once, the others only summed (on the device)."""
        if not self.values:
            _check_start_values(self.name, x, log_p, grad)
            self.n_chains = len(x)
        self.values.append(log_p.sum())
        self.grads.append(grad.sum())

    def check(self, samples: torch.Tensor) -> None:
        """After the run: the first non-finite value recorded, explained; then the kept states themselves (a state
        can blow up in the final step, after the last evaluation)."""
        values, grads = torch.stack(self.values).double().cpu(), torch.stack(self.grads).double().cpu()
        bad = ~(torch.isfinite(values) & torch.isfinite(grads))
        if bad.any():
            raise FloatingPointError(self._explain(values, grads, int(bad.nonzero()[0])))
        if not torch.isfinite(samples).all():
            raise FloatingPointError(f"{self.name} chains diverged (non-finite values) with step size "
                                     f"{self.step_size}: the step is too large for this target; reduce it (or use "
                                     "mala, which rejects bad moves)")

    def _explain(self, values: torch.Tensor, grads: torch.Tensor, t: int) -> str:
        name, step_size, n_steps, n_chains = self.name, self.step_size, self.n_steps, self.n_chains
        what = "log-density" if not math.isfinite(values[t]) else "gradient of log_prob"
        found = values[t].item() if what == "log-density" else grads[t].item()
        per_chain = values[:t].abs() / n_chains  # mean |log p| per chain at each step before
        start = per_chain[0].item() if t > 0 else 0.0
        smaller = ("reduce a, the schedule's first step size" if name == "SGLD"
                   else "reduce it, or use langevin.mala, which rejects such moves")
        if t > 0 and per_chain.max().item() > 1e3 * max(start, 1.0):
            peak = int(per_chain.argmax())
            return (f"{name} diverged: the mean log-density per chain went from {values[0].item() / n_chains:.3g} at "
                    f"the start to {values[peak].item() / n_chains:.3g} after {peak} steps, then the {what} became "
                    f"{found} after {t} of {n_steps} steps. The step size {step_size} is too large for this target "
                    f"(a Langevin chain on a Gaussian is unstable beyond twice its smallest variance): {smaller}.")
        jump = (f" (or, if the step size {step_size} is large for the scale of this target, the chains jumped in one "
                f"step to where log p overflows: {smaller})" if math.isinf(found) else "")
        if what == "log-density":
            advice = ("check log_prior and log_likelihood where θ leaves their support; SGLD has no accept/reject "
                      "step, so sample a variable defined on all of R^d (for θ > 0: θ = exp(u), adding u to the "
                      "log-density)" if name == "SGLD" else SUPPORT_ADVICE)
            return (f"{name}: the log-density became {found} after {t} of {n_steps} steps, while the steps before "
                    f"gave moderate values (mean log p {values[t - 1].item() / n_chains:.3g} per chain): the chains "
                    f"stepped where log_prob is undefined, most likely outside the target's support{jump}. {name} "
                    f"has no accept/reject step to keep them out: {advice}.")
        return (f"{name}: the gradient of log_prob became {found} after {t} of {n_steps} steps, while log_prob itself "
                f"stayed finite and moderate{jump}: {GRADIENT_ADVICE}.")


def _check_start_values(name: str, x: torch.Tensor, value: torch.Tensor, grad: torch.Tensor) -> None:
    """log p and ∇log p at the start, chain by chain."""
    bad_value = ~torch.isfinite(value)
    bad_grad = ~torch.isfinite(grad).flatten(1).all(-1)
    if not (bad_value.any() or bad_grad.any()):
        return
    bad, what = (bad_value, "log_prob(x0)") if bad_value.any() else (bad_grad, "the gradient of log_prob at x0")
    chain = int(bad.nonzero()[0])
    found = value[chain].item() if bad_value.any() else grad[chain].tolist()
    if not bad_value.any() and grad.ndim > 2:
        found = describe_state(grad[chain])
    where = (f"is {found} for {int(bad.sum())} of {len(x)} chains (first: chain {chain}, "
             f"x0[{chain}] = {describe_state(x[chain])})")
    if bad_value.any():
        raise ValueError(f"{name}: {what} {where}. The chains start where the log-density is undefined: outside its "
                         "support (a log of a negative number, a negative variance), or log_prob reads data that "
                         "hold NaN. Start every chain where log_prob is finite.")
    raise ValueError(f"{name}: {what} {where}, while log_prob itself is finite there: {GRADIENT_ADVICE}; or start "
                     "the chains away from such points.")
