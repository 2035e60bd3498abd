"""Restricted Boltzmann machines with binary units.  Taught in 01_rbm_pytorch.

The model, in the lecture's order:
    energy      E(v, h) = -b·v - c·h - vᵀ W h
    conditionals p(h_j = 1 | v) = σ(c_j + v·W_:j),   p(v_i = 1 | h) = σ(b_i + W_i:·h)
    free energy  F(v) = -b·v - Σ_j softplus(c_j + v·W_:j),  p(v) = exp(-F(v)) / Z
    training     contrastive divergence (CD-k) and persistent CD (PCD), SGD with momentum and weight decay
    evaluation   log Z exactly (enumerating the smaller layer) or by annealed importance sampling (AIS),
                 average log-likelihood, pseudo-likelihood, reconstruction error.

Data are (N, n_visible) binary tensors; images (N, 28, 28) are flattened.
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

from . import training

MAX_EXACT_UNITS = 25  # 2**25 states: a few minutes; beyond, use AIS


def bernoulli(p: torch.Tensor, generator: torch.Generator | None = None, bits: int = 24) -> torch.Tensor:
    """Binary samples with P(1) = p, as 0./1. floats: uniform numbers compared with p.

    bits=24: float32 uniforms (24 random bits each), compared in place (several times faster than torch.bernoulli
    on the CPU). bits=16: each 64-bit random integer gives four 16-bit uniforms, so P(1) is p rounded to the nearest
    multiple of 2⁻¹⁶; about three times cheaper on the CPU, and what training uses (the rounding is far below the
    noise of a gradient estimate from a batch)."""
    if generator is not None and generator.device.type != p.device.type:
        raise ValueError(f"the generator is on {generator.device} but the probabilities are on {p.device}: draw "
                         f"with torch.Generator(device={p.device.type!r}) (or no generator)")
    if bits == 24:
        u = torch.rand(p.shape, generator=generator, device=p.device, dtype=p.dtype)
        return torch.lt(u, p, out=u)
    if bits != 16:
        raise ValueError(f"bits must be 24 (float32 uniforms) or 16, got {bits}")
    words = torch.empty((p.numel() + 3) // 4, dtype=torch.int64, device=p.device)
    words.random_(-(2**63), None, generator=generator)  # all 64 bits random (random_() leaves the sign bit at 0)
    u = words.view(torch.int16)[: p.numel()].view(p.shape)  # uniform on {-2¹⁵, ..., 2¹⁵ - 1}
    threshold = torch.add(_MINUS_TWO_15_AND_A_HALF, p, alpha=2.0**16)  # 2¹⁶ p - 2¹⁵ - ½, in one pass
    return torch.lt(u, threshold, out=threshold)  # u + 2¹⁵ + ½ < 2¹⁶ p: P(1) = p rounded to a multiple of 2⁻¹⁶


_MINUS_TWO_15_AND_A_HALF = torch.tensor(-(2.0**15 + 0.5))  # a 0-dim tensor: usable with p on any device


def linear_sigmoid(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """σ(x·weightᵀ + bias), with weight (out, in) as in nn.Linear: the conditionals of the RBM.

    On an x86 CPU, in float32 and outside autograd, this is one oneDNN call with the sigmoid fused into the product
    (an op torch.compile's CPU backend uses too); benchmarks/rbm.py measures it against addmm then sigmoid (a
    CD-1 epoch's products take about 6 % less time on a 2-core CPU). Elsewhere (CUDA, ARM, float64, with gradients)
    it is addmm then sigmoid."""
    if _fused_on(x, weight):
        return torch.ops.mkldnn._linear_pointwise(x, weight, bias, "sigmoid", [], "")
    return torch.addmm(bias, x, weight.t()).sigmoid_()


def _fused_on(x: torch.Tensor, weight: torch.Tensor) -> bool:
    return (x.device.type == "cpu" and x.dtype == weight.dtype == torch.float32 and _X86_ONEDNN
            and not (torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad)))


_X86_ONEDNN = torch.backends.mkldnn.is_available() and torch.backends.cpu.get_cpu_capability() in ("AVX2", "AVX512")


class AISEstimate(NamedTuple):
    """log Z from AIS and its spread: log(mean(w) ± 3 standard errors), as Salakhutdinov & Murray (2008) report."""

    log_z: float
    log_z_low: float
    log_z_high: float
    log_weights: torch.Tensor


class RBM(nn.Module):
    """A binary-binary RBM with weights W (n_visible × n_hidden), visible biases b and hidden biases c.

    Buffers travel with the state_dict (so checkpoints and resume keep them): `chains`, the persistent Gibbs chains
    of PCD; `base_bias`, the visible log-odds of the data (the base-rate model of AIS); `dW`, `db`, `dc`, the last
    increments of W, b and c (the momentum of SGD). So does `n_updates`, the parameter updates made so far (the
    momentum schedule reads it): a Python int, stored as the module's extra state.
    """

    def __init__(self, n_visible: int, n_hidden: int, n_chains: int = 100, init_std: float = 0.01,
                 generator: torch.Generator | None = None, device=None):
        super().__init__()
        if n_visible < 1 or n_hidden < 1:
            raise ValueError(f"an RBM needs at least one visible and one hidden unit, got {n_visible}×{n_hidden}")
        self.n_visible, self.n_hidden = n_visible, n_hidden
        on = generator.device if generator is not None else None  # draw where the generator lives, then move
        w = torch.randn(n_visible, n_hidden, generator=generator, device=on) * init_std
        self.W = nn.Parameter(w.to(device))
        self.b = nn.Parameter(torch.zeros(n_visible, device=device))
        self.c = nn.Parameter(torch.zeros(n_hidden, device=device))
        self.register_buffer("base_bias", torch.zeros(n_visible, device=device))
        chains = bernoulli(torch.full((n_chains, n_visible), 0.5, device=on), generator)
        self.register_buffer("chains", chains.to(device))
        self.n_updates = 0
        for name, param in (("dW", self.W), ("db", self.b), ("dc", self.c)):
            self.register_buffer(name, torch.zeros_like(param))

    def get_extra_state(self):
        return {"n_updates": self.n_updates}

    def set_extra_state(self, state):
        self.n_updates = int(state["n_updates"])

    def extra_repr(self):
        return f"n_visible={self.n_visible}, n_hidden={self.n_hidden}, n_chains={len(self.chains)}"

    # --- input checks -------------------------------------------------------------------------------------------

    def check(self, v, binary: bool = True) -> torch.Tensor:
        """`v` as a float tensor (N, n_visible) on the model's device; a clear error for the wrong width, NaN, or
        (with `binary`) values other than 0 and 1."""
        return self._check(v, binary)[0]

    def _check(self, v, binary: bool = True):
        """check(v), and for binary data the fraction of examples with each pixel on, from the same pass."""
        v = training.as_tensor(v, self.W.device)
        if v.ndim >= 2 and math.prod(v.shape[1:]) == self.n_visible:
            v = v.reshape(len(v), self.n_visible)
        if v.ndim == 1 and v.shape[0] == self.n_visible:
            v = v[None]
        if v.ndim != 2 or v.shape[1] != self.n_visible:
            raise ValueError(f"RBM expects data of shape (N, {self.n_visible}) (or images with {self.n_visible} "
                             f"pixels); got shape {tuple(v.shape)}")
        if binary:  # x·x == x holds for 0 and 1 only (NaN ≠ NaN); in chunks that stay in the cache
            pixel_sums, bad = torch.zeros_like(v[0]), False
            for chunk in v.split(1024):
                if not torch.equal(chunk * chunk, chunk):
                    bad = True
                    break
                pixel_sums += chunk.sum(0)
        else:
            bad = torch.isnan(v).any()
        if bad and torch.isnan(v).any():
            raise ValueError("RBM input contains NaN; clean or drop those examples first")
        if bad:
            raise ValueError(f"RBM expects binary visible units (0/1); got values in [{v.min().item():.3g}, "
                             f"{v.max().item():.3g}]. Binarise with genmodels.data.binarize(x) or "
                             "genmodels.data.binarize_stochastic(x, seed=0).")
        return v, pixel_sums / max(len(v), 1) if binary else None

    # --- the model ----------------------------------------------------------------------------------------------

    def energy(self, v, h) -> torch.Tensor:
        """E(v, h) = -b·v - c·h - vᵀ W h, one value per example.  Taught in 01_rbm_pytorch."""
        v = self.check(v)
        h = training.as_tensor(h, self.W.device).reshape(len(v), self.n_hidden)
        return -(v @ self.b) - (h @ self.c) - ((v @ self.W) * h).sum(1)

    def _free_energy(self, v: torch.Tensor) -> torch.Tensor:
        return -(v @ self.b) - F.softplus(v @ self.W + self.c).sum(1)

    def free_energy(self, v) -> torch.Tensor:
        """F(v) = -b·v - Σ_j softplus(c_j + v·W_:j) = -log Σ_h exp(-E(v, h)), stable for any input size (softplus,
        never exp-then-log).  Taught in 01_rbm_pytorch."""
        return self._free_energy(self.check(v))

    # --- conditionals and Gibbs sampling --------------------------------------------------------------------------

    def p_h_given_v(self, v: torch.Tensor) -> torch.Tensor:
        """p(h_j = 1 | v) = σ(c_j + v·W_:j) for each hidden unit (v may be probabilities: mean field)."""
        return linear_sigmoid(v, self.W.t(), self.c)

    def p_v_given_h(self, h: torch.Tensor) -> torch.Tensor:
        """p(v_i = 1 | h) = σ(b_i + W_i:·h) for each visible unit."""
        return linear_sigmoid(h, self.W, self.b)

    def gibbs_step(self, v: torch.Tensor, generator: torch.Generator | None = None, bits: int = 24):
        """One block-Gibbs sweep v → h ~ p(h|v) → v' ~ p(v|h); returns (v', p(v'=1|h)). `bits`: see bernoulli."""
        h = bernoulli(self.p_h_given_v(v), generator, bits)
        pv = self.p_v_given_h(h)
        return bernoulli(pv, generator, bits), pv

    @torch.no_grad()
    def sample(self, n: int | None = None, steps: int = 1000, v0=None, generator: torch.Generator | None = None,
               probabilities: bool = True) -> torch.Tensor:
        """Run `steps` Gibbs sweeps from `v0` (given starts), else from n random binary images drawn from the
        base rate. Returns the last p(v=1|h) (smoother to look at) or, with probabilities=False, the binary v."""
        if v0 is None:
            if n is None:
                raise ValueError("give the number of samples n, or starting images v0")
            p0 = torch.sigmoid(self.base_bias).expand(n, self.n_visible)
            v = bernoulli(p0, generator=generator)
        else:
            v = self.check(v0)
        pv = v
        for _ in range(steps):
            v, pv = self.gibbs_step(v, generator)
        return pv if probabilities else v

    # --- training -----------------------------------------------------------------------------------------------

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

    @torch.no_grad()
    def contrastive_divergence(self, v: torch.Tensor, k: int = 1, persistent: bool = False,
                               sample_visible: bool = False, generator: torch.Generator | None = None):
        """The CD-k (or PCD-k) estimate of ∂ log p(v)/∂θ averaged over the batch: ⟨v hᵀ⟩_data - ⟨v hᵀ⟩_negative,
        with h replaced by p(h|v) in both terms. Returns (dW, db, dc, v_negative).

        CD-k starts the negative chain at the data; PCD continues the persistent `chains` (updated in place).
        As in Hinton's guide, the hidden states that drive the chain are sampled, while the last visible step uses
        probabilities (mean field); `sample_visible=True` samples it too, which makes the estimate exact in the
        limit of large k (as the tests check).
        """
        ph, v_neg, ph_neg = self.phases(v, k, persistent, sample_visible, generator)
        dW = v.t() @ ph / len(v) - v_neg.t() @ ph_neg / len(v_neg)
        return dW, v.mean(0) - v_neg.mean(0), ph.mean(0) - ph_neg.mean(0), v_neg

    def phases(self, v, k=1, persistent=False, sample_visible=False, generator=None):
        """The positive phase p(h|v), and the negative phase: the visible states v⁻ after k Gibbs steps (from the data
        for CD, from the persistent chains for PCD) and p(h|v⁻). Returns (p(h|v), v⁻, p(h|v⁻)). Samples are drawn
        with 16 random bits (see bernoulli): the estimate is a noisy one anyway."""
        ph = self.p_h_given_v(v)
        if persistent:
            v_neg = self.chains
            for _ in range(k):
                v_neg, _ = self.gibbs_step(v_neg, generator, bits=16)
            self.chains.copy_(v_neg)
        else:
            h = bernoulli(ph, generator, bits=16)
            for step in range(k):
                v_neg = self.p_v_given_h(h)
                last = step == k - 1
                if not last or sample_visible:  # the last visible step keeps probabilities unless asked
                    v_neg = bernoulli(v_neg, generator, bits=16)
                if not last:
                    h = bernoulli(self.p_h_given_v(v_neg), generator, bits=16)
        return ph, v_neg, self.p_h_given_v(v_neg)


def cd_step_fn(rbm: RBM, *, lr: float = 0.1, k: int = 1, persistent: bool = False, weight_decay: float = 2e-4,
               momentum=(0.5, 0.9), momentum_switch: int = 0, monitor_every: int = 10):
    """A `step_fn` for genmodels.training.train: one CD-k/PCD-k update of `rbm` per batch by SGD with momentum,
    as in Hinton's guide (§9-10), and weight decay: for each parameter θ

        Δθ ← μ Δθ + lr·(∂ log p/∂θ, the CD estimate),   θ ← θ + Δθ,   and W also shrinks by a factor 1 - lr·weight_decay

    with μ = momentum[0] for the first `momentum_switch` updates, then momentum[1]. The decay acts on W directly,
    outside the momentum ("decoupled", as in AdamW): one pass over W fewer than the guide's form, which puts it
    inside Δθ, where momentum μ makes it 1/(1-μ) times stronger. The increments are the buffers rbm.dW, rbm.db and
    rbm.dc, so checkpoints keep them. Reports the reconstruction error Σ_i (v_i - v⁻_i)² of one batch in
    `monitor_every` (CD only; PCD's negatives are not reconstructions): batches are random, so its epoch mean
    estimates the mean over all examples without bias, at a fraction of the cost."""
    if not all(0 <= mu < 1 for mu in momentum):
        raise ValueError(f"momentum must lie in [0, 1), got {momentum}")
    if monitor_every < 1:
        raise ValueError(f"monitor_every must be a positive number of batches, got {monitor_every}")
    ones = {}  # vectors of ones by length: column sums as matrix-vector products

    def step(v):
        mu = momentum[0] if rbm.n_updates < momentum_switch else momentum[1]
        with torch.no_grad():
            ph, v_neg, ph_neg = rbm.phases(v, k, persistent)
            n, m = len(v), len(v_neg)
            for size in (n, m):
                if size not in ones:
                    ones[size] = v.new_ones(size)
            # ΔW ← μ ΔW + (lr/n) vᵀp(h|v) - (lr/m) v⁻ᵀp(h|v⁻), in place, by two matrix products
            torch.addmm(rbm.dW, v.t(), ph, beta=mu, alpha=lr / n, out=rbm.dW)
            torch.addmm(rbm.dW, v_neg.t(), ph_neg, alpha=-lr / m, out=rbm.dW)
            # the biases' statistics are column means: mean(v) - mean(v⁻) for b, mean p(h|v) - mean p(h|v⁻) for c
            for d, pos, neg in ((rbm.db, v, v_neg), (rbm.dc, ph, ph_neg)):
                torch.addmv(d, pos.t(), ones[n], beta=mu, alpha=lr / n, out=d)
                torch.addmv(d, neg.t(), ones[m], alpha=-lr / m, out=d)
            torch.add(rbm.dW, rbm.W, alpha=1 - lr * weight_decay, out=rbm.W)  # W ← (1 - lr·decay) W + ΔW, one pass
            torch._foreach_add_([rbm.b, rbm.c], [rbm.db, rbm.dc])  # b += Δb, c += Δc in one call
        rbm.n_updates += 1
        if persistent or (rbm.n_updates - 1) % monitor_every:  # the 1st, (1 + monitor_every)th, ... update
            return {}
        return {"recon_error": F.mse_loss(v_neg, v, reduction="sum") / n}

    return step


def fit(rbm: RBM, x, *, epochs: int, batch_size: int = 100, lr: float = 0.1, k: int = 1, persistent: bool = False,
        weight_decay: float = 2e-4, momentum=(0.5, 0.9), momentum_epochs: int = 5, init_bias: bool = True,
        evaluate=None, checkpoint=None, resume: bool = True, progress: str = "bar", seed: int = 0):
    """Train `rbm` on binary data `x` by CD-k (or PCD-k with persistent=True) through genmodels.training.train.
    Visible biases start from the data's pixel log-odds; momentum rises from momentum[0] to momentum[1] after
    `momentum_epochs` epochs. Returns the training History.  Taught in 01_rbm_pytorch."""
    if k < 1:
        raise ValueError(f"k (Gibbs steps per update) must be at least 1, got {k}")
    x, pixel_means = rbm._check(x)  # one pass over the data
    if init_bias and not (checkpoint is not None and resume and Path(checkpoint).exists()):
        rbm._set_base_rates(pixel_means)  # as init_visible_bias(x) would
    updates_per_epoch = math.ceil(len(x) / batch_size)
    step = cd_step_fn(rbm, lr=lr, k=k, persistent=persistent, weight_decay=weight_decay, momentum=momentum,
                      momentum_switch=momentum_epochs * updates_per_epoch, monitor_every=min(10, updates_per_epoch))
    return training.train(rbm, x, epochs=epochs, batch_size=batch_size, step_fn=step,
                          evaluate=evaluate, checkpoint=checkpoint, resume=resume, progress=progress, seed=seed)


# --- evaluation ---------------------------------------------------------------------------------------------------


def _all_states(n: int, start: int, stop: int, device, dtype) -> torch.Tensor:
    """Rows start..stop-1 of the 2**n binary states, as a (stop - start, n) tensor."""
    idx = torch.arange(start, stop, device=device)
    return ((idx[:, None] >> torch.arange(n, device=device)) & 1).to(dtype)


@torch.no_grad()
def log_partition_exact(rbm: RBM, over: str = "smaller", max_units: int = MAX_EXACT_UNITS,
                        chunk: int = 1 << 16) -> float:
    """log Z by summing over every state of one layer, in float64:
    over hidden: log Z = log Σ_h exp(c·h + Σ_i softplus(b_i + W_i:·h)); over visible: log Σ_v exp(-F(v)).
    `over="smaller"` picks the cheaper layer. Taught in 01_rbm_pytorch."""
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
        s = _all_states(n, start, min(start + chunk, 2**n), W.device, torch.float64)
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
    Taught in 01_rbm_pytorch."""
    betas = torch.tensor(ais_betas(n_betas), dtype=torch.float64)
    rbm = _with_float64(rbm)
    W, b, c, bA = rbm.W, rbm.b, rbm.c, rbm.base_bias
    v = bernoulli(torch.sigmoid(bA).expand(n_runs, rbm.n_visible).contiguous(), generator=generator)
    log_w = torch.zeros(n_runs, dtype=torch.float64, device=W.device)
    db = (b - bA).double()
    for beta_prev, beta in zip(betas[:-1].tolist(), betas[1:].tolist(), strict=True):
        x = torch.addmm(c, v, W)
        x64 = x.double()
        log_w += (beta - beta_prev) * (v.double() @ db) + (F.softplus(beta * x64) - F.softplus(beta_prev * x64)).sum(1)
        # one Gibbs sweep that leaves p*_beta invariant
        h = bernoulli(torch.sigmoid(beta * x), generator=generator)
        v = bernoulli(torch.sigmoid((1 - beta) * bA + beta * torch.addmm(b, h, W.t())), generator=generator)
    log_z0 = F.softplus(bA.double()).sum().item() + rbm.n_hidden * math.log(2)
    top = log_w.max()
    r = torch.exp(log_w - top)
    mean, se = r.mean().item(), r.std().item() / math.sqrt(n_runs)
    shift = log_z0 + top.item()
    low = math.log(mean - 3 * se) + shift if mean > 3 * se else -math.inf
    return AISEstimate(math.log(mean) + shift, low, math.log(mean + 3 * se) + shift, log_w.cpu())


@torch.no_grad()
def log_likelihood(rbm: RBM, v, log_z: float | None = None) -> float:
    """Average log p(v) = -F(v) - log Z over a data set, in nats; log_z from log_partition_ais, or exact if None."""
    v = rbm.check(v)
    if log_z is None:
        log_z = log_partition_exact(rbm)
    return -rbm._free_energy(v).cpu().double().mean().item() - log_z


def _with_float64(rbm: RBM) -> RBM:
    """The RBM itself, or a copy on the CPU where its device has no float64 (Apple's MPS): the sums over states and
    the AIS weights need float64."""
    return copy.deepcopy(rbm).cpu() if rbm.W.device.type == "mps" else rbm


@torch.no_grad()
def pseudo_log_likelihood(rbm: RBM, v, generator: torch.Generator | None = None) -> float:
    """Average pseudo-log-likelihood Σ_i log p(v_i | v_-i), estimated as n_visible · log σ(F(ṽ) - F(v)) with ṽ
    the example with one random pixel flipped (unbiased for the sum; Besag 1975; as scikit-learn does)."""
    v = rbm.check(v)
    on = generator.device if generator is not None else v.device
    i = torch.randint(rbm.n_visible, (len(v),), generator=generator, device=on).to(v.device)
    flipped = v.clone()
    rows = torch.arange(len(v), device=v.device)
    flipped[rows, i] = 1 - flipped[rows, i]
    return (rbm.n_visible * F.logsigmoid(rbm._free_energy(flipped) - rbm._free_energy(v))).mean().item()


@torch.no_grad()
def reconstruction_error(rbm: RBM, v) -> float:
    """Mean over examples of Σ_i (v_i - p(v_i=1 | p(h|v)))²: a mean-field up-down pass. A training monitor only: it
    is not the quantity CD optimises (Hinton's guide, §5)."""
    v = rbm.check(v)
    return (v - rbm.p_v_given_h(rbm.p_h_given_v(v))).pow(2).sum(1).mean().item()
