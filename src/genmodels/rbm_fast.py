"""The RBM's training step, fast on x86 CPUs: the same CD-k/PCD-k update as `genmodels.rbm`, which is the reference.

What it speeds up, measured by benchmarks/rbm.py (figures in benchmarks/README.md):
- samples from 16 random bits instead of 24: four uniforms from each 64-bit random word (`bernoulli16`);
- the conditionals by oneDNN's product with the sigmoid fused in (`linear_sigmoid`, a private torch op);
- SGD with momentum in place: the statistics go straight into the increments by addmm/addmv (`sgd_step`).
`rbm.fit` uses this module where it applies (`applies`: CPU, float32, x86 with oneDNN) and the reference elsewhere.
The private op is tried once and replaced by the plain product and sigmoid if it is missing, fails or disagrees.
tests/test_rbm.py checks this module against the reference.
"""

from __future__ import annotations

import functools

import torch

__all__ = ["applies", "bernoulli16", "linear_sigmoid", "negative_phase", "sgd_step", "cd_step", "fused_available"]

_MINUS_TWO_15_AND_A_HALF = torch.tensor(-(2.0**15 + 0.5))


def applies(rbm) -> bool:
    """Whether rbm.fit takes this path: parameters in float32 on an x86 CPU with oneDNN."""
    return rbm.W.device.type == "cpu" and rbm.W.dtype == torch.float32 and _x86_onednn()


def bernoulli16(p: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Binary samples (0./1.) with P(1) = p rounded to a multiple of 2⁻¹⁶: each 64-bit random integer gives four
    16-bit uniforms, about three times cheaper on the CPU than float32 uniforms. The rounding is far below the noise
    of a gradient estimated from one batch."""
    words = torch.empty((p.numel() + 3) // 4, dtype=torch.int64, device=p.device)
    words.random_(-(2**63), None, generator=generator)  # all 64 bits random (random_() leaves the sign bit at 0)
    u = words.view(torch.int16)[: p.numel()].view(p.shape)  # uniform on {-2¹⁵, ..., 2¹⁵ - 1}
    threshold = torch.add(_MINUS_TWO_15_AND_A_HALF, p, alpha=2.0**16)  # 2¹⁶ p - 2¹⁵ - ½, in one pass
    return torch.lt(u, threshold, out=threshold)  # u + 2¹⁵ + ½ < 2¹⁶ p


def linear_sigmoid(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """σ(x·weightᵀ + bias), with weight (out, in) as in nn.Linear: one oneDNN call when it is available (no
    autograd through it), else addmm then sigmoid."""
    if fused_available() and not (torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad)):
        return torch.ops.mkldnn._linear_pointwise(x, weight, bias, "sigmoid", [], "")
    return torch.addmm(bias, x, weight.t()).sigmoid_()


@torch.no_grad()
def negative_phase(rbm, ph: torch.Tensor, k: int = 1, persistent: bool = False,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """rbm.negative_phase with 16-bit samples and fused conditionals; `ph` is p(h|v) of the batch."""
    if persistent:
        v_neg = rbm.chains
        for _ in range(k):
            h = bernoulli16(linear_sigmoid(v_neg, rbm.W.t(), rbm.c), generator)
            v_neg = bernoulli16(linear_sigmoid(h, rbm.W, rbm.b), generator)
        rbm.chains.copy_(v_neg)
        return v_neg
    h = bernoulli16(ph, generator)
    for step in range(k):
        v_neg = linear_sigmoid(h, rbm.W, rbm.b)
        if step < k - 1:  # the last visible step keeps probabilities (mean field), as in the reference
            h = bernoulli16(linear_sigmoid(bernoulli16(v_neg, generator), rbm.W.t(), rbm.c), generator)
    return v_neg


@torch.no_grad()
def sgd_step(rbm, v: torch.Tensor, v_neg: torch.Tensor, *, lr: float, momentum: float, weight_decay: float,
             ph: torch.Tensor | None = None) -> None:
    """rbm.sgd_step(rbm.cd_gradient(v, v_neg), ...) in place: ΔW ← μ ΔW + (lr/n) vᵀp(h|v) - (lr/m) v⁻ᵀp(h|v⁻) by two
    addmm into the increment, the biases' column means by addmv, W ← (1 - lr·decay) W + ΔW in one pass."""
    ph = linear_sigmoid(v, rbm.W.t(), rbm.c) if ph is None else ph
    ph_neg = linear_sigmoid(v_neg, rbm.W.t(), rbm.c)
    n, m = len(v), len(v_neg)
    torch.addmm(rbm.dW, v.t(), ph, beta=momentum, alpha=lr / n, out=rbm.dW)
    torch.addmm(rbm.dW, v_neg.t(), ph_neg, alpha=-lr / m, out=rbm.dW)
    for d, pos, neg in ((rbm.db, v, v_neg), (rbm.dc, ph, ph_neg)):
        torch.addmv(d, pos.t(), _ones(n), beta=momentum, alpha=lr / n, out=d)
        torch.addmv(d, neg.t(), _ones(m), alpha=-lr / m, out=d)
    torch.add(rbm.dW, rbm.W, alpha=1 - lr * weight_decay, out=rbm.W)
    rbm.b.add_(rbm.db)
    rbm.c.add_(rbm.dc)
    rbm.n_updates += 1


def cd_step(rbm, v: torch.Tensor, *, k: int, persistent: bool, lr: float, momentum: float, weight_decay: float,
            generator: torch.Generator | None = None) -> torch.Tensor:
    """One CD-k (or PCD-k) update of `rbm` on the batch `v`; returns the negative samples v⁻."""
    with torch.no_grad():
        ph = linear_sigmoid(v, rbm.W.t(), rbm.c)
        v_neg = negative_phase(rbm, ph, k, persistent, generator)
        sgd_step(rbm, v, v_neg, lr=lr, momentum=momentum, weight_decay=weight_decay, ph=ph)
    return v_neg


@functools.cache
def _ones(n: int) -> torch.Tensor:  # column sums as matrix-vector products (CPU, float32: where this module applies)
    return torch.ones(n)


@functools.cache
def _x86_onednn() -> bool:
    return torch.backends.mkldnn.is_available() and torch.backends.cpu.get_cpu_capability() in ("AVX2", "AVX512")


@functools.cache
def fused_available() -> bool:
    """Whether oneDNN's fused product and sigmoid exists in this build of torch and agrees with the plain form."""
    if not _x86_onednn():
        return False
    g = torch.Generator().manual_seed(0)
    x, weight, bias = torch.rand(3, 5, generator=g), torch.randn(4, 5, generator=g), torch.randn(4, generator=g)
    try:
        with torch.no_grad():
            fused = torch.ops.mkldnn._linear_pointwise(x, weight, bias, "sigmoid", [], "")
    except (AttributeError, RuntimeError, NotImplementedError, TypeError):
        return False
    return fused.shape == (3, 4) and torch.allclose(fused, torch.sigmoid(x @ weight.t() + bias), atol=1e-6)
