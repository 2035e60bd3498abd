"""Restricted Boltzmann machines with binary units.  Taught in 01_rbm_pytorch.

In the lecture's order: the model (energy, conditionals, free energy), Gibbs sampling, training by contrastive
divergence (CD-k, persistent CD) with SGD and momentum, then evaluation (log Z exactly or by annealed importance
sampling, log-likelihood, pseudo-likelihood, reconstruction error). Data are (N, n_visible) binary tensors; images
(N, 28, 28) are flattened. This file is the reference; `fit` takes the same steps faster through
`genmodels.rbm_fast` where a measurement on the machine finds that faster (rbm_fast.choice).
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import basics, checks, distributed, rbm_fast, training
from .device import threads_for

__all__ = ["RBM", "fit", "cd_step_fn", "check_cd_settings", "log_partition_exact", "log_partition_ais", "AISEstimate",
           "ais_betas", "ais_log_weight_increment", "log_z_from_log_weights", "log_partition_reverse_ais",
           "log_likelihood", "log_likelihood_bracket", "LikelihoodBracket", "log_probabilities",
           "pseudo_log_likelihood", "pseudo_log_likelihood_at", "reconstruction_error", "bernoulli", "binary_states",
           "MAX_EXACT_UNITS"]

MAX_EXACT_UNITS = 25  # 2**25 states: a few minutes; beyond, use AIS


class RBM(nn.Module):
    """A binary-binary RBM with weights W (n_visible × n_hidden), visible biases b and hidden biases c.

    Buffers travel with the state_dict, so checkpoints keep them: `chains`, the persistent Gibbs chains of PCD;
    `base_bias`, the visible log-odds of the data (the base-rate model of AIS); `dW`, `db`, `dc`, the last
    increments of W, b and c (the momentum of SGD). So does `n_updates`, the updates made so far.
    """

    def __init__(self, n_visible: int, n_hidden: int, n_chains: int = 100, init_std: float = 0.01,
                 generator: torch.Generator | None = None, device=None):
        super().__init__()
        if n_visible < 1 or n_hidden < 1:
            raise ValueError(f"an RBM needs at least one visible and one hidden unit, got {n_visible}×{n_hidden}")
        self.n_visible, self.n_hidden = n_visible, n_hidden
        on = generator.device if generator is not None else None  # draw where the generator lives, then move
        self.W = nn.Parameter((torch.randn(n_visible, n_hidden, generator=generator, device=on) * init_std).to(device))
        self.b = nn.Parameter(torch.zeros(n_visible, device=device))
        self.c = nn.Parameter(torch.zeros(n_hidden, device=device))
        self.register_buffer("base_bias", torch.zeros(n_visible, device=device))
        chains = bernoulli(torch.full((n_chains, n_visible), 0.5, device=on), generator)
        self.register_buffer("chains", chains.to(device))
        for name, param in (("dW", self.W), ("db", self.b), ("dc", self.c)):
            self.register_buffer(name, torch.zeros_like(param))
        self.n_updates = 0

    # --- the model ----------------------------------------------------------------------------------------------

    def energy(self, v, h) -> torch.Tensor:
        """E(v, h) = -b·v - c·h - vᵀ W h, one value per example.  Taught in 01_rbm_pytorch."""
        v = self.check(v)
        h = basics.as_tensor(h, self.W.device).reshape(len(v), self.n_hidden)
        return -(v @ self.b) - (h @ self.c) - ((v @ self.W) * h).sum(1)

    def p_h_given_v(self, v: torch.Tensor) -> torch.Tensor:
        """p(h_j = 1 | v) = σ(c_j + v·W_:j) for each hidden unit (v may be probabilities: mean field)."""
        return torch.sigmoid(self.c + v @ self.W)

    def p_v_given_h(self, h: torch.Tensor) -> torch.Tensor:
        """p(v_i = 1 | h) = σ(b_i + W_i:·h) for each visible unit."""
        return torch.sigmoid(self.b + h @ self.W.t())

    def free_energy(self, v) -> torch.Tensor:
        """F(v) = -b·v - Σ_j softplus(c_j + v·W_:j) = -log Σ_h exp(-E(v, h)), so that p(v) = exp(-F(v)) / Z;
        softplus, never exp-then-log, which overflows.  Taught in 01_rbm_pytorch."""
        return self._free_energy(self.check(v))

    def _free_energy(self, v: torch.Tensor) -> torch.Tensor:
        return -(v @ self.b) - F.softplus(v @ self.W + self.c).sum(1)

    # --- Gibbs sampling -----------------------------------------------------------------------------------------

    def gibbs_step(self, v: torch.Tensor, generator: torch.Generator | None = None):
        """One block-Gibbs sweep v → h ~ p(h|v) → v' ~ p(v|h); returns (v', p(v'=1|h))."""
        h = bernoulli(self.p_h_given_v(v), generator)
        pv = self.p_v_given_h(h)
        return bernoulli(pv, generator), pv

    def gibbs_sweep(self, v: torch.Tensor, u_h: torch.Tensor, u_v: torch.Tensor):
        """gibbs_step driven by given uniform numbers: h = (u_h < p(h=1|v)), v' = (u_v < p(v=1|h)); returns
        (v', p(v'=1|h)). gibbs_step draws u_h, then u_v, and makes the same sweep (the tests check it)."""
        h = torch.lt(u_h, self.p_h_given_v(v)).to(u_h.dtype)
        pv = self.p_v_given_h(h)
        return torch.lt(u_v, pv).to(u_v.dtype), pv

    @torch.no_grad()
    def sample(self, n: int | None = None, steps: int = 1000, v0=None, generator: torch.Generator | None = None,
               probabilities: bool = True) -> torch.Tensor:
        """`steps` Gibbs sweeps from `v0`, else from n images drawn from the base rate. Returns the last p(v=1|h)
        (smoother to look at) or, with probabilities=False, the binary v.  Taught in 01_rbm_pytorch."""
        if v0 is None:
            if n is None:
                raise ValueError("give the number of samples n, or starting images v0")
            v = bernoulli(torch.sigmoid(self.base_bias).expand(n, self.n_visible), generator)
        else:
            v = self.check(v0)
        pv = v
        with threads_for(len(v) * self.n_visible * self.n_hidden, v.device):  # one CPU thread for small models
            for _ in range(steps):
                v, pv = self.gibbs_step(v, generator)
        return pv if probabilities else v

    @torch.no_grad()
    def sample_along_chains(self, n: int, at=(1, 10, 100, 1000), generator: torch.Generator | None = None) -> dict:
        """The mixing diagnostic of `sample`: the same n fresh chains from the base rate, with their p(v=1|h) kept
        after each number of sweeps in `at`, as {sweeps: (n, n_visible) tensor}; the last equals
        sample(n, steps=max(at)) with the same generator. Judge each (classes seen, Fréchet distance): chains that
        have mixed stop changing.  Taught in 01_rbm_pytorch."""
        at = sorted({checks.check_count("a number of sweeps in `at`", s) for s in at})
        v = bernoulli(torch.sigmoid(self.base_bias).expand(n, self.n_visible), generator)
        kept = {}
        with threads_for(n * self.n_visible * self.n_hidden, v.device):
            for step in range(1, at[-1] + 1):
                v, pv = self.gibbs_step(v, generator)
                if step in at:
                    kept[step] = pv.clone()
        return kept

    def tempered_gibbs_step(self, v: torch.Tensor, beta: float, generator: torch.Generator | None = None):
        """One block-Gibbs sweep that leaves the tempered model p*_β invariant, the path of AIS from the base rate
        (β = 0: independent pixels with log-odds b_A = base_bias) to the RBM (β = 1):
            log p*_β(v) = (1-β) b_A·v + β b·v + Σ_j softplus(β (c_j + v·W_:j)),
            h ~ σ(β (c + v W)),   v' ~ σ((1-β) b_A + β (b + W h)).
        Returns (v', p(v'=1|h))."""
        h = bernoulli(torch.sigmoid(beta * (self.c + v @ self.W)), generator)
        pv = torch.sigmoid((1 - beta) * self.base_bias + beta * (self.b + h @ self.W.t()))
        return bernoulli(pv, generator), pv

    def tempered_log_p(self, v: torch.Tensor, x: torch.Tensor, beta: float) -> torch.Tensor:
        """log p*_β(v) up to its constant, given x = c + v W: (1-β) b_A·v + β b·v + Σ_j softplus(β x_j)."""
        return (1 - beta) * (v @ self.base_bias) + beta * (v @ self.b) + F.softplus(beta * x).sum(-1)

    @torch.no_grad()
    def sample_tempered(self, n: int, n_betas: int = 20, steps: int = 50, generator: torch.Generator | None = None,
                        probabilities: bool = True) -> torch.Tensor:
        """n independent runs of parallel tempering (Swendsen & Wang 1986; Desjardins et al. 2010 for RBMs), each
        with one replica v_k at every β_k = (k / (n_betas - 1))² of AIS's path (denser near the base rate, β_0 = 0,
        where neighbours differ most), the last the RBM. A step: neighbours k, k+1 (even k on even steps, odd k on
        odd) exchange their images with probability
            min(1, p*_βk(v_k+1) p*_βk+1(v_k) / (p*_βk(v_k) p*_βk+1(v_k+1))),   (tempered_log_p)
        then one tempered_gibbs_step per replica. The β = 0 replica draws a fresh independent image every step;
        exchanges carry such images up to β = 1. Costs n_betas sweeps per step. Returns the β = 1 replicas' last
        p(v=1|h), or with probabilities=False their binary v."""
        checks.check_count("n_betas (the number of temperatures, 2 at least)", n_betas, minimum=2)
        betas = torch.linspace(0, 1, n_betas).pow(2).tolist()
        beta = torch.tensor(betas, device=self.W.device, dtype=self.W.dtype)[:, None, None]
        v = bernoulli(torch.sigmoid(self.base_bias).expand(n_betas, n, self.n_visible), generator)
        pv = v
        on = generator.device if generator is not None else v.device
        with threads_for(n_betas * n * self.n_visible * self.n_hidden, v.device):
            for step in range(steps):
                x = self.c + v @ self.W  # (n_betas, n, n_hidden): the hidden units' input, for the swaps and the sweep
                for k in range(step % 2, n_betas - 1, 2):
                    log_ratio = (self.tempered_log_p(v[k + 1], x[k + 1], betas[k])
                                 + self.tempered_log_p(v[k], x[k], betas[k + 1])
                                 - self.tempered_log_p(v[k], x[k], betas[k])
                                 - self.tempered_log_p(v[k + 1], x[k + 1], betas[k + 1]))
                    u = torch.rand(n, generator=generator, device=on, dtype=v.dtype).to(v.device)
                    swap = (u.log() < log_ratio)[:, None]
                    for state in (v, x):
                        state[k], state[k + 1] = (torch.where(swap, state[k + 1], state[k]),
                                                  torch.where(swap, state[k], state[k + 1]))
                h = bernoulli(torch.sigmoid(beta * x), generator)  # tempered_gibbs_step, reusing x
                pv = torch.sigmoid((1 - beta) * self.base_bias + beta * (self.b + h @ self.W.t()))
                v = bernoulli(pv, generator)
        return pv[-1] if probabilities else v[-1]

    # --- contrastive divergence ---------------------------------------------------------------------------------

    @torch.no_grad()
    def negative_phase(self, v: torch.Tensor, k: int = 1, persistent: bool = False, sample_visible: bool = False,
                       generator: torch.Generator | None = None) -> torch.Tensor:
        """v⁻, the model's samples for the negative phase: k Gibbs sweeps from the data (CD-k) or from the persistent
        `chains`, which move on (PCD-k). As in Hinton's guide, CD's last visible step keeps the probabilities p(v|h)
        (mean field) unless `sample_visible`."""
        if persistent:
            v_neg = self.chains
            for _ in range(k):
                v_neg, _ = self.gibbs_step(v_neg, generator)
            self.chains.copy_(v_neg)
            return v_neg
        h = bernoulli(self.p_h_given_v(v), generator)
        for step in range(k):
            v_neg = self.p_v_given_h(h)
            if step < k - 1 or sample_visible:
                v_neg = bernoulli(v_neg, generator)
            if step < k - 1:
                h = bernoulli(self.p_h_given_v(v_neg), generator)
        return v_neg

    @torch.no_grad()
    def cd_gradient(self, v: torch.Tensor, v_neg: torch.Tensor):
        """The CD estimate of ∂ mean log p(v)/∂(W, b, c): positive phase minus negative phase,
        ⟨v p(h|v)ᵀ⟩_data - ⟨v⁻ p(h|v⁻)ᵀ⟩_negative, and the same for the biases. Returns (dW, db, dc)."""
        positive, negative = self.phase_statistics(v), self.phase_statistics(v_neg)
        return tuple(p - q for p, q in zip(positive, negative, strict=True))

    @torch.no_grad()
    def phase_statistics(self, v: torch.Tensor):
        """One phase's averages over the rows of v: (⟨v p(h|v)ᵀ⟩, ⟨v⟩, ⟨p(h|v)⟩). cd_gradient is the data's minus
        the negatives'; under torchrun, the CD step averages each over the ranks first."""
        ph = self.p_h_given_v(v)
        return v.t() @ ph / len(v), v.mean(0), ph.mean(0)

    def contrastive_divergence(self, v: torch.Tensor, k: int = 1, persistent: bool = False,
                               sample_visible: bool = False, generator: torch.Generator | None = None):
        """negative_phase, then cd_gradient: returns (dW, db, dc, v⁻). With `sample_visible` and large k the estimate
        becomes the exact gradient (the tests check this).  Taught in 01_rbm_pytorch."""
        v_neg = self.negative_phase(v, k, persistent, sample_visible, generator)
        return (*self.cd_gradient(v, v_neg), v_neg)

    @torch.no_grad()
    def sgd_step(self, gradient, lr: float, momentum: float, weight_decay: float) -> None:
        """Gradient ascent with momentum (Hinton's guide, §9-10): for θ in (W, b, c) and its gradient g,
            Δθ ← μ Δθ + lr·g,   θ ← θ + Δθ,
        and W also shrinks by the factor 1 - lr·weight_decay (decay decoupled from the momentum, as in AdamW)."""
        for increment, g in zip((self.dW, self.db, self.dc), gradient, strict=True):
            increment.mul_(momentum).add_(g, alpha=lr)
        self.W.mul_(1 - lr * weight_decay)
        for theta, increment in ((self.W, self.dW), (self.b, self.db), (self.c, self.dc)):
            theta.add_(increment)
        self.n_updates += 1

    def init_visible_bias(self, x, eps: float = 1e-3) -> None:
        """b_i = log(p_i / (1 - p_i)) with p_i the fraction of the data with pixel i on (Hinton's guide, §8); the
        same log-odds define the base-rate model of AIS, and the persistent chains start from it."""
        self._set_base_rates(self._check(x)[1], eps)

    @torch.no_grad()
    def _set_base_rates(self, p: torch.Tensor, eps: float = 1e-3) -> None:
        p = p.clamp(eps, 1 - eps)
        self.b.copy_(torch.log(p) - torch.log1p(-p))
        self.base_bias.copy_(self.b)
        self.chains.copy_(bernoulli(p.expand_as(self.chains)))

    # --- input checks and bookkeeping ---------------------------------------------------------------------------

    def check(self, v) -> torch.Tensor:
        """`v` as a float tensor (N, n_visible) on the model's device; a clear error for the wrong shape or for values
        other than 0 and 1 (genmodels.checks.check_binary)."""
        return self._check(v)[0]

    def _check(self, v):
        """check(v), and the fraction of examples with each pixel on, from the same pass."""
        v = checks.flatten_examples(basics.as_tensor(v, self.W.device), self.n_visible, "RBM input")
        return v, checks.check_binary(v, "RBM input", pixel_means=True)

    def get_extra_state(self):
        return {"n_updates": self.n_updates}

    def set_extra_state(self, state):
        self.n_updates = int(state["n_updates"])

    def extra_repr(self):
        return f"n_visible={self.n_visible}, n_hidden={self.n_hidden}, n_chains={len(self.chains)}"


# --- training -----------------------------------------------------------------------------------------------------


def cd_step_fn(rbm: RBM, *, lr: float = 0.1, k: int = 1, persistent: bool = False, weight_decay: float = 2e-4,
               momentum=(0.5, 0.9), momentum_switch: int = 0, monitor_every: int = 10,
               decay_updates: int | None = None):
    """A `step_fn` for genmodels.training.train: one CD-k (or PCD-k) update of `rbm` per batch, `rbm.sgd_step` with
    μ = momentum[0] for the first `momentum_switch` updates, then momentum[1]; with `decay_updates` = T, the learning
    rate falls linearly to 0 over T updates, lr_t = lr·(1 - t/T) (Tieleman 2008: PCD's chains keep up with
    parameters that move ever more slowly). Reports the reconstruction error
    Σ_i (v_i - v⁻_i)² of one batch in `monitor_every` (CD only: PCD's negatives are not reconstructions); batches are
    random, so its epoch mean estimates the mean over all examples. rbm.fit trains with it. Under torchrun each rank
    holds a shard of the batch (and, for PCD, its own chains): the step averages both phases' statistics over the
    ranks, weighted by their rows, so that every rank makes the update of the whole batch (genmodels.distributed)."""
    momentum = checks.check_momentum(momentum)
    if monitor_every < 1:
        raise ValueError(f"monitor_every must be a positive number of batches, got {monitor_every}")
    kernels = None  # rbm_fast.choice for the first batch's shape: pinned, kept from a measurement, or measured

    def step(v):
        nonlocal kernels
        mu = momentum[0] if rbm.n_updates < momentum_switch else momentum[1]
        rate = lr if decay_updates is None else lr * max(0.0, 1.0 - float(rbm.n_updates) / decay_updates)
        if distributed.from_environment().active:
            v_neg = rbm.negative_phase(v, k, persistent)
            positive = distributed.average(rbm.phase_statistics(v), weight=len(v))
            negative = distributed.average(rbm.phase_statistics(v_neg), weight=len(v_neg))
            rbm.sgd_step([p - q for p, q in zip(positive, negative, strict=True)], rate, mu, weight_decay)
        elif (kernels := kernels or rbm_fast.choice(rbm, len(v), k, persistent)).step == "fast":
            v_neg = rbm_fast.cd_step(rbm, v, k=k, persistent=persistent, lr=rate, momentum=mu,
                                     weight_decay=weight_decay, kernels=kernels)
        else:
            *gradient, v_neg = rbm.contrastive_divergence(v, k, persistent)
            rbm.sgd_step(gradient, rate, mu, weight_decay)
        if persistent or (rbm.n_updates - 1) % monitor_every:  # the 1st, (1 + monitor_every)th, ... update
            return {}
        return {"recon_error": F.mse_loss(v_neg, v, reduction="sum") / len(v)}

    return step


def check_cd_settings(*, k: int, batch_size: int, lr: float, momentum) -> None:
    """The settings of CD training that must make sense before it starts (rbm.fit and rbm_keras.fit): a clear
    ValueError for a count below 1, a learning rate that is not positive or far too large, a momentum outside [0, 1)."""
    checks.check_count("k (Gibbs steps per update)", k)
    checks.check_count("batch_size", batch_size)
    if checks.check_rate("lr", lr) > 1:
        raise ValueError(f"lr={lr} is far above what CD training tolerates (about 0.001 to 0.1, Hinton's guide §4): "
                         "the weights blow up or the hidden units saturate; pass a smaller lr")
    checks.check_momentum(momentum)


def fit(rbm: RBM, x, *, epochs: int, batch_size: int = 100, lr: float = 0.1, k: int = 1, persistent: bool = False,
        weight_decay: float = 2e-4, momentum=(0.5, 0.9), momentum_epochs: int = 5, lr_schedule: str = "constant",
        init_bias: bool = True, evaluate=None, checkpoint=None, resume: bool = True, progress: str = "bar",
        seed: int = 0):
    """Train `rbm` on binary data `x` by CD-k (or PCD-k with persistent=True) through genmodels.training.train.
    Visible biases start from the data's pixel log-odds; momentum rises from momentum[0] to momentum[1] after
    `momentum_epochs` epochs; lr_schedule "linear" lowers the learning rate linearly to 0 at the end of `epochs`
    (cd_step_fn's decay_updates). Returns the training History.  Taught in 01_rbm_pytorch."""
    __tracebackhide__ = True  # a mistake in the call shows the student's line and the message (IPython, pytest)
    check_cd_settings(k=k, batch_size=batch_size, lr=lr, momentum=momentum)
    if persistent:
        checks.check_count("the number of persistent chains (n_chains)", len(rbm.chains))
    x, pixel_means = rbm._check(x)  # one pass over the data
    if init_bias and not (checkpoint is not None and resume and Path(checkpoint).exists()):
        rbm._set_base_rates(pixel_means)  # as init_visible_bias(x) would
    if lr_schedule not in ("constant", "linear"):
        raise ValueError(f"lr_schedule must be 'constant' or 'linear' (to 0 at the last epoch), got {lr_schedule!r}")
    updates_per_epoch = math.ceil(len(x) / batch_size)
    decay_updates = epochs * updates_per_epoch if lr_schedule == "linear" else None
    step = cd_step_fn(rbm, lr=lr, k=k, persistent=persistent, weight_decay=weight_decay, momentum=momentum,
                      momentum_switch=momentum_epochs * updates_per_epoch, monitor_every=min(10, updates_per_epoch),
                      decay_updates=decay_updates)
    config = dict(lr=lr, k=k, persistent=persistent, weight_decay=weight_decay, momentum=momentum,
                  momentum_epochs=momentum_epochs)
    if decay_updates is not None:  # a linear schedule ends at `epochs`: resuming with another length is another run
        config.update(lr_schedule=lr_schedule, decay_updates=decay_updates)
    with threads_for(batch_size * rbm.n_visible * rbm.n_hidden, rbm.W.device):  # one CPU thread for small models
        return training.train(rbm, x, epochs=epochs, batch_size=batch_size, step_fn=step, evaluate=evaluate,
                              checkpoint=checkpoint, resume=resume, progress=progress, seed=seed, config=config)


# --- evaluation ---------------------------------------------------------------------------------------------------


class AISEstimate(NamedTuple):
    """log Z from forward or reverse AIS, with the Monte-Carlo error of that one estimator.

    `std_error` is the delta method's standard error of log mean(w), SE² = (n/ESS - 1) / (n - 1), always finite;
    `log_z_low`, `log_z_high` = log_z ∓ 3 SE. `ess` = (Σ w)² / Σ w², the effective sample size of the n weights: n
    when all runs weigh the same, 1 when one run carries all the weight (then the SE, estimated from those same
    weights, is not to be trusted either). This spread is not the likelihood's bracket: see log_likelihood_bracket."""

    log_z: float
    log_z_low: float
    log_z_high: float
    log_weights: torch.Tensor
    std_error: float
    ess: float


@torch.no_grad()
def log_partition_exact(rbm: RBM, over: str = "smaller", max_units: int = MAX_EXACT_UNITS,
                        chunk: int = 1 << 16) -> float:
    """log Z by summing over every state of one layer, in float64:
    over hidden: log Z = log Σ_h exp(c·h + Σ_i softplus(b_i + W_i:·h)); over visible: log Σ_v exp(-F(v)).
    `over="smaller"` picks the cheaper layer.  Taught in week13 (and used in 07_ising_rbm)."""
    if over == "smaller":
        over = "hidden" if rbm.n_hidden <= rbm.n_visible else "visible"
    if over not in ("hidden", "visible"):
        raise ValueError(f"over must be 'smaller', 'hidden' or 'visible', got {over!r}")
    rbm = _with_float64(rbm)
    n = rbm.n_hidden if over == "hidden" else rbm.n_visible
    if n > max_units:
        raise ValueError(f"exact log Z enumerates 2**{n} states of the {over} layer, too many (limit: 2**{max_units})"
                         f"; estimate it with log_partition_ais(rbm) instead")
    W, b, c = (t.double() for t in (rbm.W, rbm.b, rbm.c))
    parts = []
    for start in range(0, 2**n, chunk):
        s = binary_states(n, start, min(start + chunk, 2**n), device=W.device, dtype=torch.float64)
        if over == "hidden":
            parts.append(s @ c + F.softplus(s @ W.t() + b).sum(1))
        else:
            parts.append(s @ b + F.softplus(s @ W + c).sum(1))
    return torch.logsumexp(torch.cat(parts), 0).item()


def ais_betas(n_betas: int) -> np.ndarray:
    """Inverse temperatures 0 = β_0 < ... < β_K = 1, spaced as Salakhutdinov & Murray (2008) did: 500 steps up to
    0.5, 4,000 up to 0.9, 10,000 up to 1 (in those proportions for other n_betas)."""
    a, b = max(1, round(n_betas * 500 / 14500)), max(1, round(n_betas * 4000 / 14500))
    c = max(1, n_betas - a - b)
    return np.concatenate([np.linspace(0, 0.5, a, endpoint=False), np.linspace(0.5, 0.9, b, endpoint=False),
                           np.linspace(0.9, 1.0, c + 1)])


@torch.no_grad()
def log_partition_ais(rbm: RBM, n_betas: int = 14500, n_runs: int = 100,
                      generator: torch.Generator | None = None) -> AISEstimate:
    """Annealed importance sampling estimate of log Z (Neal 2001; Salakhutdinov & Murray 2008).

    Starts from the base-rate model p_0(v) ∝ exp(b_A·v) (independent pixels, b_A = rbm.base_bias), whose log Z_0 =
    Σ_i softplus(b_A,i) + n_hidden·log 2 is known, and anneals through
        log p*_β(v) = (1-β) b_A·v + β b·v + Σ_j softplus(β (c_j + v·W_:j))
    with one Gibbs sweep at each β. log Z = log Z_0 + log mean(w), with log w = Σ_k [log p*_βk - log p*_βk-1](v_k).
    E[w] = Z/Z_0, so by Jensen E[log Z_AIS] <= log Z: the log-likelihood it gives leans high (optimistic).
    Taught in 01_rbm_pytorch."""
    checks.check_count("n_betas (the number of temperatures)", n_betas, minimum=3)
    checks.check_count("n_runs (a standard error needs two runs at least)", n_runs, minimum=2)
    rbm = _with_float64(rbm)
    v = bernoulli(torch.sigmoid(rbm.base_bias).expand(n_runs, rbm.n_visible).contiguous(), generator=generator)
    log_w = _anneal(rbm, v, ais_betas(n_betas), generator)
    return _estimate(log_z_from_log_weights(log_w, _base_log_partition(rbm)), log_w)


@torch.no_grad()
def log_partition_reverse_ais(rbm: RBM, v_start, n_betas: int = 14500,
                              generator: torch.Generator | None = None) -> AISEstimate:
    """Reverse AIS (Burda, Grosse & Salakhutdinov 2015): the same annealing run backwards, from the model to the
    base rate, one run from each row of `v_start`.

    log w = Σ_k [log p*_βk-1 - log p*_βk](v_k) over β_K = 1 > ... > β_0 = 0, and log Z = log Z_0 - log mean(w).
    Started from exact samples of the model, E[w] = Z_0/Z, so E[log Z_rev] >= log Z: a pessimistic log-likelihood.
    From other states (the test images, PCD's chains) that guarantee is gone; log_likelihood_bracket reads the same
    weights one image at a time (RAISE), which bounds the likelihood of AIS's sampler instead."""
    v = rbm.check(v_start)
    checks.check_count("len(v_start) (a standard error needs two runs at least)", len(v), minimum=2)
    checks.check_count("n_betas (the number of temperatures)", n_betas, minimum=3)
    rbm = _with_float64(rbm)
    log_w = _anneal(rbm, v.to(rbm.W.device), ais_betas(n_betas)[::-1], generator)
    return _estimate(_base_log_partition(rbm) - _log_mean_exp(log_w), log_w)


def _anneal(rbm: RBM, v: torch.Tensor, betas, generator: torch.Generator | None) -> torch.Tensor:
    """AIS's loop, in either direction: log w += log p*_β(v) - log p*_β_prev(v), then a Gibbs sweep that leaves
    p*_β invariant, for each consecutive (β_prev, β) of `betas`. Returns log w (float64), one per row of v."""
    W, b, c, bA = rbm.W, rbm.b, rbm.c, rbm.base_bias
    betas = [float(beta) for beta in betas]
    log_w = torch.zeros(len(v), dtype=torch.float64, device=W.device)
    db = (b - bA).double()
    for beta_prev, beta in zip(betas[:-1], betas[1:], strict=True):
        x = torch.addmm(c, v, W)
        log_w += ais_log_weight_increment(v, x, db, beta_prev, beta)
        # one Gibbs sweep that leaves p*_beta invariant
        h = bernoulli(torch.sigmoid(beta * x), generator=generator)
        v = bernoulli(torch.sigmoid((1 - beta) * bA + beta * torch.addmm(b, h, W.t())), generator=generator)
    return log_w


def ais_log_weight_increment(v: torch.Tensor, x: torch.Tensor, db: torch.Tensor, beta_prev: float,
                             beta: float) -> torch.Tensor:
    """AIS's weight update at one temperature, log p*_β(v) - log p*_β_prev(v) per row of v (float64):
    (β - β_prev) (b - b_A)·v + Σ_j [softplus(β x_j) - softplus(β_prev x_j)], with x = c + v·W the hidden inputs and
    db = b - b_A in float64; exercises/01_rbm writes it."""
    x64 = x.double()
    return (beta - beta_prev) * (v.double() @ db) + (F.softplus(beta * x64) - F.softplus(beta_prev * x64)).sum(1)


def log_z_from_log_weights(log_w: torch.Tensor, log_z0: float) -> float:
    """log Z = log Z_0 + log mean(w), from AIS's log-weights, by logsumexp (they reach hundreds: exp overflows)."""
    return log_z0 + _log_mean_exp(log_w)


def _base_log_partition(rbm: RBM) -> float:
    """log Z_0 = Σ_i softplus(b_A,i) + n_hidden·log 2 of the base-rate model, where AIS starts (β = 0)."""
    return F.softplus(rbm.base_bias.double()).sum().item() + rbm.n_hidden * math.log(2)


def _log_mean_exp(log_w: torch.Tensor) -> float:
    return torch.logsumexp(log_w, 0).item() - math.log(len(log_w))


def _estimate(log_z: float, log_w: torch.Tensor) -> AISEstimate:
    """log_z with its spread: the delta method's SE of log mean(w) and the weights' ESS (see AISEstimate)."""
    n = len(log_w)
    ess = math.exp(2 * torch.logsumexp(log_w, 0).item() - torch.logsumexp(2 * log_w, 0).item())
    se = math.sqrt(max(n / ess - 1, 0.0) / (n - 1))
    return AISEstimate(log_z, log_z - 3 * se, log_z + 3 * se, log_w.cpu(), se, ess)


@torch.no_grad()
def log_likelihood(rbm: RBM, v, log_z: float | None = None) -> float:
    """Average log p(v) = -F(v) - log Z over a data set, in nats; log_z from log_partition_ais, or exact if None."""
    v = rbm.check(v)
    if log_z is None:
        log_z = log_partition_exact(rbm)
    return -rbm._free_energy(v).cpu().double().mean().item() - log_z


class LikelihoodBracket(NamedTuple):
    """The average log p(v) of a data set, in nats, between two estimates biased in opposite directions.

    `pessimistic` (RAISE) and `optimistic` (AIS), each with the standard error of its own Monte-Carlo noise;
    `forward` and `reverse` are the two annealing runs, with their log Z, spread and ESS. The errors are each
    estimator's noise; the gap between the ends is the bias that neither can rule out."""

    pessimistic: float
    optimistic: float
    pessimistic_std_error: float
    optimistic_std_error: float
    forward: AISEstimate
    reverse: AISEstimate

    @property
    def crossed(self) -> bool:
        """The pessimistic end above the optimistic one by more than 3 standard errors of their difference: AIS's
        sampler p_ann fits these images better than the RBM does, so the annealing has not reached the RBM, and
        neither end bounds its log-likelihood (see log_likelihood_bracket)."""
        return self.pessimistic - self.optimistic > 3 * math.hypot(self.pessimistic_std_error,
                                                                   self.optimistic_std_error)


@torch.no_grad()
def log_likelihood_bracket(rbm: RBM, v, n_betas: int = 14500, n_runs: int = 100,
                           generator: torch.Generator | None = None) -> LikelihoodBracket:
    """The average log p(v) = -F(v) - log Z of the images v as a bracket (pessimistic, optimistic).

    optimistic = mean -F(v) - log Z_AIS, with log_partition_ais (n_runs from the base rate): E[log Z_AIS] <= log Z,
    so this end is too high in expectation, always.
    pessimistic = mean over v of [-F(v) - log Z_0 + log w_rev(v)], with one reverse-AIS run from each image
    (log_partition_reverse_ais's weights): RAISE (Burda, Grosse & Salakhutdinov 2015). exp of each term is an
    unbiased estimate of p_ann(v), the probability of v under AIS's own sampler (the base rate, then one Gibbs sweep
    per temperature), so each term is below log p_ann(v) in expectation. p_ann tends to p as the annealing mixes.
    On images drawn from the RBM, E log p_ann(v) <= E log p(v) (Gibbs' inequality), a true pessimistic end; on
    real images it is pessimistic as long as p_ann fits them no better than the RBM, as Burda et al. found. When it
    does fit them better, the ends cross (bracket.crossed), and the RBM's likelihood is known only to lie below the
    optimistic end.
    pessimistic_std_error = std(log w_rev) / sqrt(N) bounds its Monte-Carlo error from above (the spread of the
    log-weights includes the images' own variety); optimistic_std_error = forward.std_error.
    Taught in 01_rbm_pytorch."""
    v = rbm.check(v)
    forward = log_partition_ais(rbm, n_betas=n_betas, n_runs=n_runs, generator=generator)
    reverse = log_partition_reverse_ais(rbm, v, n_betas=n_betas, generator=generator)
    minus_f = -rbm._free_energy(v).cpu().double().mean().item()
    log_w = reverse.log_weights
    pessimistic = minus_f - _base_log_partition(rbm) + log_w.mean().item()
    return LikelihoodBracket(pessimistic, minus_f - forward.log_z, log_w.std().item() / math.sqrt(len(log_w)),
                             forward.std_error, forward, reverse)


@torch.no_grad()
def log_probabilities(rbm: RBM, chunk: int = 1 << 16) -> torch.Tensor:
    """log p(v) = -F(v) - log Z for every visible state, in the order of binary_states: the model's whole
    distribution, exactly, in float64 on the CPU (at most 2**MAX_EXACT_UNITS states).
    ising.exact_kl_divergence uses it (07_ising_rbm)."""
    if rbm.n_visible > MAX_EXACT_UNITS:
        raise ValueError(f"the exact distribution lists 2**{rbm.n_visible} visible states, too many (limit: "
                         f"2**{MAX_EXACT_UNITS}); use log_likelihood on data instead")
    model = copy.deepcopy(rbm).cpu().double()
    log_z = log_partition_exact(model)
    n = 2**rbm.n_visible
    return torch.cat([-model._free_energy(binary_states(rbm.n_visible, start, min(start + chunk, n),
                                                        dtype=torch.float64)) - log_z
                      for start in range(0, n, chunk)])


@torch.no_grad()
def pseudo_log_likelihood(rbm: RBM, v, generator: torch.Generator | None = None) -> float:
    """Average pseudo-log-likelihood Σ_i log p(v_i | v_-i), estimated as n_visible · log σ(F(ṽ) - F(v)) with ṽ
    the example with one random pixel flipped (unbiased for the sum; Besag 1975; as scikit-learn does)."""
    v = rbm.check(v)
    on = generator.device if generator is not None else v.device
    i = torch.randint(rbm.n_visible, (len(v),), generator=generator, device=on).to(v.device)
    return pseudo_log_likelihood_at(rbm, v, i).mean().item()


def pseudo_log_likelihood_at(rbm: RBM, v: torch.Tensor, i: torch.Tensor) -> torch.Tensor:
    """n_visible · log σ(F(ṽ) - F(v)) per example, ṽ the example v[n] with its pixel i[n] flipped: one term of
    pseudo_log_likelihood, which draws i at random and averages."""
    flipped = v.clone()
    rows = torch.arange(len(v), device=v.device)
    flipped[rows, i] = 1 - flipped[rows, i]
    return rbm.n_visible * F.logsigmoid(rbm._free_energy(flipped) - rbm._free_energy(v))


@torch.no_grad()
def reconstruction_error(rbm: RBM, v) -> float:
    """Mean over examples of Σ_i (v_i - p(v_i=1 | p(h|v)))²: a mean-field up-down pass. A training monitor only: it
    is not the quantity CD optimises (Hinton's guide, §5)."""
    v = rbm.check(v)
    return (v - rbm.p_v_given_h(rbm.p_h_given_v(v))).pow(2).sum(1).mean().item()


# --- helpers ------------------------------------------------------------------------------------------------------


def bernoulli(p: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Binary samples (0./1. floats) with P(1) = p: uniform numbers compared with p."""
    if generator is not None and generator.device.type != p.device.type:
        raise ValueError(f"the generator is on {generator.device} but the probabilities are on {p.device}: draw "
                         f"with torch.Generator(device={p.device.type!r}) (or no generator)")
    u = torch.rand(p.shape, generator=generator, device=p.device, dtype=p.dtype)
    return torch.lt(u, p, out=u)


def binary_states(n: int, start: int = 0, stop: int | None = None, *, device=None,
                  dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The 2ⁿ binary vectors of length n in counting order, first unit most significant (the order of
    itertools.product([0, 1], repeat=n)); rows start to stop - 1 of that list, as a (stop - start, n) tensor."""
    stop = 2**n if stop is None else stop
    index = torch.arange(start, stop, device=device)
    return ((index[:, None] >> torch.arange(n - 1, -1, -1, device=device)) & 1).to(dtype)


def _with_float64(rbm: RBM) -> RBM:
    """The RBM itself, or a copy on the CPU where its device has no float64 (Apple's MPS): the sums over states and
    the AIS weights need float64."""
    return copy.deepcopy(rbm).cpu() if rbm.W.device.type == "mps" else rbm
