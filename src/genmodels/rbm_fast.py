"""The RBM's training step made fast on the CPU: the same CD-k/PCD-k update as `genmodels.rbm`, which is the reference.

What it speeds up, measured by benchmarks/rbm.py (figures in benchmarks/README.md):
- samples from 16 random bits instead of 24: four uniforms from each 64-bit random word (`bernoulli16`);
- the conditionals by oneDNN's product with the sigmoid fused in (`linear_sigmoid`, a private torch op);
- SGD with momentum in place: the statistics go straight into the increments by addmm/addmv (`sgd_step`).

Which of these `rbm.fit` uses (float32 on the CPU; elsewhere the reference) is measured, not assumed from the CPU's
type (`choice`). The first time a machine trains an RBM of a workload (visible × hidden units, CD-k or PCD-k, batch,
threads), fit times whole steps of it on a scratch RBM (about 0.3 s on a quiet machine): the fast step (a) with the
fused product against addmm then sigmoid, (b) with 16-bit samples against the reference's, (c) so assembled against
the reference step. Each time the incumbent (fused, 16 bits, the fast step) stays unless the other is MARGIN (1.3)
times faster, and timings that spread (neighbours on the cores) leave all the incumbents: the choice changes the
random numbers, and so every printed result, and timing noise must not flip it. The choice is kept for this machine
and torch version in _build/cache/rbm_kernels.json (delete it to measure again); a damaged file, or one written on
another machine or torch, is measured again. GENMODELS_RBM_KERNELS pins it: `fast` (the incumbents), `reference`,
or `measure`. Unpinned, the quick profile takes `fast` (genmodels.setup sets `unpinned`) and the full profile
measures; the tests, `make test` and `make baseline` pin `fast` too, so the notebooks' committed quick outputs never
depend on a measurement, on the machine that made them or on a student's. The private op is tried once and left out
if it is missing, fails or disagrees with the plain form. tests/test_rbm.py checks this module against the reference.
"""

from __future__ import annotations

import functools
import json
import os
import platform
import re
import statistics
import time
from pathlib import Path
from typing import NamedTuple

import torch

from . import paths
from . import rbm as reference

__all__ = ["bernoulli16", "linear_sigmoid", "negative_phase", "sgd_step", "cd_step", "fused_available", "Kernels",
           "choice", "fast_kernels", "preferred", "cache_path", "machine", "ENV_VAR", "MARGIN", "unpinned"]

_MINUS_TWO_15_AND_A_HALF = torch.tensor(-(2.0**15 + 0.5))


def bernoulli16(p: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Binary samples (0./1.) with P(1) = p rounded to a multiple of 2⁻¹⁶: each 64-bit random integer gives four
    16-bit uniforms, about three times cheaper on the CPU than float32 uniforms. The rounding is far below the noise
    of a gradient estimated from one batch."""
    words = torch.empty((p.numel() + 3) // 4, dtype=torch.int64, device=p.device)
    words.random_(-(2**63), None, generator=generator)  # all 64 bits random (random_() leaves the sign bit at 0)
    u = words.view(torch.int16)[: p.numel()].view(p.shape)  # uniform on {-2¹⁵, ..., 2¹⁵ - 1}
    threshold = torch.add(_MINUS_TWO_15_AND_A_HALF, p, alpha=2.0**16)  # 2¹⁶ p - 2¹⁵ - ½, in one pass
    return torch.lt(u, threshold, out=threshold)  # u + 2¹⁵ + ½ < 2¹⁶ p


def linear_sigmoid(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, fused: bool = True) -> torch.Tensor:
    """σ(x·weightᵀ + bias), with weight (out, in) as in nn.Linear: one oneDNN call when `fused` and the op is
    available (no autograd through it), else addmm then sigmoid."""
    if fused and fused_available() and not (torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad)):
        return torch.ops.mkldnn._linear_pointwise(x, weight, bias, "sigmoid", [], "")
    return torch.addmm(bias, x, weight.t()).sigmoid_()


class Kernels(NamedTuple):
    """What rbm.fit computes a CD step with: `step` "fast" (cd_step here) or "reference" (rbm.contrastive_divergence
    and rbm.sgd_step); in the fast step, `product` "fused" or "plain" (linear_sigmoid) and `sampler` "16 bits"
    (bernoulli16) or "reference" (rbm.bernoulli). `how`: why these (pinned, measured, kept); `seconds`: the
    measurement's medians. Printed, one line."""

    step: str
    product: str
    sampler: str
    how: str = ""
    seconds: dict | None = None

    def __str__(self):
        if self.step == "reference":
            return f"RBM kernels: the reference step (rbm.contrastive_divergence, rbm.sgd_step); {self.how}"
        product = "oneDNN's fused product and sigmoid" if self.product == "fused" else "addmm then sigmoid"
        sampler = "16-bit samples" if self.sampler == "16 bits" else "the reference's samples"
        return f"RBM kernels: the fast step ({product}, {sampler}); {self.how}"


@torch.no_grad()
def negative_phase(rbm, ph: torch.Tensor, k: int = 1, persistent: bool = False,
                   generator: torch.Generator | None = None, kernels: Kernels | None = None) -> torch.Tensor:
    """rbm.negative_phase with the kernels' samples and conditionals (16 bits, fused: `fast_kernels()`, unless
    `kernels` says otherwise); `ph` is p(h|v) of the batch."""
    kernels = kernels or fast_kernels()
    sample, fused = bernoulli16 if kernels.sampler == "16 bits" else reference.bernoulli, kernels.product == "fused"
    if persistent:
        v_neg = rbm.chains
        for _ in range(k):
            h = sample(linear_sigmoid(v_neg, rbm.W.t(), rbm.c, fused), generator)
            v_neg = sample(linear_sigmoid(h, rbm.W, rbm.b, fused), generator)
        rbm.chains.copy_(v_neg)
        return v_neg
    h = sample(ph, generator)
    for step in range(k):
        v_neg = linear_sigmoid(h, rbm.W, rbm.b, fused)
        if step < k - 1:  # the last visible step keeps probabilities (mean field), as in the reference
            h = sample(linear_sigmoid(sample(v_neg, generator), rbm.W.t(), rbm.c, fused), generator)
    return v_neg


@torch.no_grad()
def sgd_step(rbm, v: torch.Tensor, v_neg: torch.Tensor, *, lr: float, momentum: float, weight_decay: float,
             ph: torch.Tensor | None = None, fused: bool = True) -> None:
    """rbm.sgd_step(rbm.cd_gradient(v, v_neg), ...) in place: ΔW ← μ ΔW + (lr/n) vᵀp(h|v) - (lr/m) v⁻ᵀp(h|v⁻) by two
    addmm into the increment, the biases' column means by addmv, W ← (1 - lr·decay) W + ΔW in one pass."""
    ph = linear_sigmoid(v, rbm.W.t(), rbm.c, fused) if ph is None else ph
    ph_neg = linear_sigmoid(v_neg, rbm.W.t(), rbm.c, fused)
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
            generator: torch.Generator | None = None, kernels: Kernels | None = None) -> torch.Tensor:
    """One CD-k (or PCD-k) update of `rbm` on the batch `v` with `kernels` (default `fast_kernels()`); returns the
    negative samples v⁻."""
    kernels = kernels or fast_kernels()
    fused = kernels.product == "fused"
    with torch.no_grad():
        ph = linear_sigmoid(v, rbm.W.t(), rbm.c, fused)
        v_neg = negative_phase(rbm, ph, k, persistent, generator, kernels)
        sgd_step(rbm, v, v_neg, lr=lr, momentum=momentum, weight_decay=weight_decay, ph=ph, fused=fused)
    return v_neg


@functools.cache
def _ones(n: int) -> torch.Tensor:  # column sums as matrix-vector products (CPU, float32: where this module applies)
    return torch.ones(n)


@functools.cache
def fused_available() -> bool:
    """Whether oneDNN's fused product and sigmoid exists in this build of torch and agrees with the plain form."""
    if not torch.backends.mkldnn.is_available():
        return False
    g = torch.Generator().manual_seed(0)
    x, weight, bias = torch.rand(3, 5, generator=g), torch.randn(4, 5, generator=g), torch.randn(4, generator=g)
    try:
        with torch.no_grad():
            fused = torch.ops.mkldnn._linear_pointwise(x, weight, bias, "sigmoid", [], "")
    except (AttributeError, RuntimeError, NotImplementedError, TypeError):
        return False
    return fused.shape == (3, 4) and torch.allclose(fused, torch.sigmoid(x @ weight.t() + bias), atol=1e-6)


# --- the choice: pinned, kept from an earlier measurement on this machine, or measured ------------------------------

ENV_VAR = "GENMODELS_RBM_KERNELS"  # fast, reference or measure
unpinned = "measure"  # the setting without ENV_VAR; genmodels.setup makes it "fast" in the quick profile
MARGIN = 1.3  # the other kernel replaces the incumbent only when this many times faster (benchmarks/README.md)
SETTLED = 1.25  # timings count when each contestant's median is within this factor of its fastest
BUDGET_S = 0.1  # about the seconds spent on each of the three comparisons
_chosen: dict[str, Kernels] = {}  # this process's choices, by workload


def fast_kernels() -> Kernels:
    """The incumbents: the fast step, fused where the private op works, 16-bit samples."""
    return Kernels("fast", "fused" if fused_available() else "plain", "16 bits")


def choice(rbm, batch_size: int = 100, k: int = 1, persistent: bool = False) -> Kernels:
    """The kernels rbm.fit trains `rbm` with by CD-k (PCD-k) in batches of `batch_size`; print it: one line that says
    which and why. The reference unless the parameters are float32 on the CPU; then as GENMODELS_RBM_KERNELS pins
    them, or as measured on this machine for this workload, once, and kept in _build/cache/rbm_kernels.json."""
    if rbm.W.device.type != "cpu" or rbm.W.dtype != torch.float32:
        return Kernels("reference", "plain", "reference",
                       f"the fast step is for float32 on the CPU, these parameters are {rbm.W.dtype} on {rbm.W.device}")
    setting = os.environ.get(ENV_VAR, "").strip() or unpinned
    if setting == "fast":
        pinned = (f"pinned by {ENV_VAR}=fast" if os.environ.get(ENV_VAR, "").strip()
                  else f"the quick profile's, so that its outputs are the committed ones ({ENV_VAR} unset)")
        return fast_kernels()._replace(how=pinned)
    if setting == "reference":
        return Kernels("reference", "plain", "reference", f"pinned by {ENV_VAR}=reference")
    if setting != "measure":
        raise ValueError(f"the environment variable {ENV_VAR} must be 'fast', 'reference' or 'measure' (unset: fast "
                         f"in the quick profile, measured once on this machine in the full), got {setting!r}")
    workload = (f"{rbm.n_visible}x{rbm.n_hidden}, " + (f"PCD-{k}, {len(rbm.chains)} chains" if persistent else
                f"CD-{k}") + f", batch {batch_size}, {torch.get_num_threads()} threads")
    if workload in _chosen:
        return _chosen[workload]
    kept = _read_cache()
    if workload in kept:
        chosen = kept[workload]._replace(how=f"as measured on this machine for {workload} (kept in {cache_path()})")
    else:
        chosen = _measure(rbm, batch_size, k, persistent)
        if chosen.how == "measured":  # timings that settled: kept for the next processes
            _write_cache({**kept, workload: chosen})
            chosen = chosen._replace(how=f"measured on this machine for {workload}, kept in {cache_path()}")
    _chosen[workload] = chosen
    return chosen


def _measure(model, batch_size: int, k: int, persistent: bool) -> Kernels:
    """Times whole steps on a scratch RBM of the model's shape, with their own random numbers (the caller's stream is
    left as it was): the fast step with the fused product against the plain one, then with 16-bit samples against
    the reference's, then the fast step so assembled against the reference step; each time the incumbent stays
    unless the other is MARGIN times faster. Timings that did not settle (neighbours on the cores) give the
    incumbents, with `how` saying so; else how="measured"."""
    g = torch.Generator().manual_seed(0)
    rbm = reference.RBM(model.n_visible, model.n_hidden, n_chains=len(model.chains) if persistent else 1, generator=g)
    v = reference.bernoulli(torch.full((batch_size, rbm.n_visible), 0.2), g)

    def fast_step(kernels):
        return lambda: cd_step(rbm, v, k=k, persistent=persistent, lr=1e-3, momentum=0.5, weight_decay=0.0,
                               generator=g, kernels=kernels)

    def reference_step():
        *gradient, _ = rbm.contrastive_divergence(v, k, persistent, generator=g)
        rbm.sgd_step(gradient, 1e-3, 0.5, 0.0)

    chosen, seconds = fast_kernels(), {}
    for part, other in (("product", "plain"), ("sampler", "reference"), ("step", "reference")):
        if getattr(chosen, part) == other:  # no fused op in this torch: nothing to compare
            continue
        other_fn = reference_step if part == "step" else fast_step(chosen._replace(**{part: other}))
        winner, settled, fastest = _faster(getattr(chosen, part), fast_step(chosen), other, other_fn, BUDGET_S)
        seconds.update({f"{part}: {name}": t for name, t in fastest.items()})
        if not settled:
            return fast_kernels()._replace(how=f"the incumbents: the machine was too busy to measure (timings of "
                                               f"the {part}s spread); measured again next time", seconds=seconds)
        chosen = chosen._replace(**{part: winner})
    if chosen.step == "reference":
        return Kernels("reference", "plain", "reference", "measured", seconds)
    return chosen._replace(how="measured", seconds=seconds)


def _faster(incumbent: str, incumbent_fn, other: str, other_fn, budget: float) -> tuple[str, bool, dict]:
    """The faster of two functions by their fastest time per call: the incumbent unless the other is MARGIN times
    faster (`preferred`); whether the timings settled: the warm-up calls within `budget` seconds, three rounds
    within 3 × `budget`, each one's median within SETTLED of its fastest (neighbours on the cores make them spread);
    and the fastest times, by name. After a warm-up call each, rounds alternate the order; a round times each in a
    loop of about a millisecond; 3 to 9 rounds, while `budget` seconds last."""
    warm_up = {}
    for name, fn in ((incumbent, incumbent_fn), (other, other_fn)):
        lap = time.perf_counter()
        fn()
        warm_up[name] = time.perf_counter() - lap
    if sum(warm_up.values()) > budget:  # too slow to time within the budget: a busy machine (or a huge RBM)
        return incumbent, False, warm_up
    calls = max(1, int(2e-3 / max(sum(warm_up.values()), 1e-7)))
    times = {incumbent: [], other: []}
    start = time.perf_counter()
    while len(times[other]) < 9 and (len(times[other]) < 3 or time.perf_counter() - start < budget):
        if time.perf_counter() - start > 3 * budget:  # steps this slow: a busy machine (or a huge RBM)
            break
        for name, fn in ((incumbent, incumbent_fn), (other, other_fn))[:: 1 if len(times[other]) % 2 else -1]:
            lap = time.perf_counter()
            for _ in range(calls):
                fn()
            times[name].append((time.perf_counter() - lap) / calls)
    fastest = {name: min(t) for name, t in times.items()}
    settled = len(times[other]) >= 3 and all(statistics.median(t) <= SETTLED * min(t) for t in times.values())
    return preferred(incumbent, other, fastest), settled, fastest


def preferred(incumbent: str, other: str, seconds: dict) -> str:
    """`other` when its time is below the incumbent's by the factor MARGIN, else the incumbent."""
    return other if seconds[incumbent] > MARGIN * seconds[other] else incumbent


# --- the cache file: one machine's choices by shape ---------------------------------------------------------------

def cache_path() -> Path:
    return paths.BUILD_DIR / "cache" / "rbm_kernels.json"


@functools.cache
def machine() -> str:
    """This machine and torch build, as the cache file names them: host, CPU, cores, torch, its vector ISA."""
    try:
        cpu = re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.M).group(1).strip()
    except (OSError, AttributeError):
        cpu = platform.processor() or platform.machine()
    return (f"{platform.node()}, {cpu}, {os.cpu_count()} cores, torch {torch.__version__}, "
            f"{torch.backends.cpu.get_cpu_capability()}")


def _read_cache() -> dict[str, Kernels]:
    """This machine's kept choices by shape; none when the file is absent, damaged, or another machine's."""
    try:
        content = json.loads(cache_path().read_text())
        if content["machine"] != machine():
            return {}
        kept = {shape: Kernels(entry["step"], entry["product"], entry["sampler"], seconds=entry.get("seconds"))
                for shape, entry in content["choices"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}
    return {shape: k for shape, k in kept.items() if _valid(k)}


def _valid(kernels: Kernels) -> bool:
    return (kernels.step in ("fast", "reference") and kernels.sampler in ("16 bits", "reference")
            and (kernels.product == "plain" or (kernels.product == "fused" and fused_available())))


def _write_cache(choices: dict[str, Kernels]) -> None:
    """Writes the file whole (another process may read it meanwhile); a folder that cannot be written is no error:
    the choice then lasts as long as the process."""
    path = cache_path()
    content = {"machine": machine(), "choices": {shape: {"step": k.step, "product": k.product, "sampler": k.sampler,
                                                         "seconds": k.seconds} for shape, k in choices.items()}}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f"{path.name}.{os.getpid()}")
        partial.write_text(json.dumps(content, indent=1) + "\n")
        os.replace(partial, path)
    except OSError:
        pass
