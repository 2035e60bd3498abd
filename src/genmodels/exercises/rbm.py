"""The checks of exercises/01_rbm: the restricted Boltzmann machine (PyTorch, then notebook 02's Keras free energy).
Each spec compares with genmodels.rbm (or genmodels.rbm_keras); its mistakes are the wrong versions it names."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from .. import rbm
from .grading import Case, Exercise, Mistake, binary, generator, normal, uniform


def _rbm(W, b, c) -> rbm.RBM:
    """The package's RBM holding these parameters (the reference every RBM check compares with)."""
    model = rbm.RBM(W.shape[0], W.shape[1], n_chains=1)
    del model.W, model.b, model.c  # the given tensors themselves, so that the reference has their gradients
    model.W, model.b, model.c = W, b, c
    return model


def _params(n_visible, n_hidden, seed, scale=1.0):
    return (normal((n_visible, n_hidden), seed, scale), normal(n_visible, seed + 1, 0.5),
            normal(n_hidden, seed + 2, 0.5))


def _v_cases():
    """(v, W, b, c) inputs: small, a batch of MNIST's size, and one whose hidden inputs exceed 88."""
    def small():  # biases of a few units, so that a missing term shows
        W, b, c = _params(6, 4, 1)
        return binary((1, 6), 0), W, 4 * b, c

    def mnist_sized():
        return (binary((5, 784), 2, 0.2), *_params(784, 20, 3, scale=0.05))

    def large_inputs():
        W, b, c = _params(8, 3, 4)
        return (binary((4, 8), 5), W * 30, b, c + 60)  # c + v·W up to ~200: exp overflows in float32

    return [Case("", small), Case("784 visible units", mnist_sized),
            Case("hidden inputs above 88, where exp overflows in float32", large_inputs)]


def _without_b(make):
    def without_b():
        v, W, _, c = make()
        return v, W, c
    return without_b


def _energy(v, h, W, b, c):
    return _rbm(W, b, c).energy(v, h)


def _energy_case(n, n_v, n_h, seed):
    return lambda: (binary((n, n_v), seed), binary((n, n_h), seed + 1), *_params(n_v, n_h, seed + 2))


ENERGY = Exercise(
    "the energy E(v, h)", "energy(v, h, W, b, c)", _energy,
    [Case("", _energy_case(1, 6, 4, 0)), Case("", _energy_case(5, 784, 20, 10)), Case("", _energy_case(3, 2, 7, 20))],
    mistakes=[
        Mistake(lambda v, h, W, b, c: -_energy(v, h, W, b, c),
                "the sign is flipped: E(v, h) = -b·v - c·h - vᵀWh, so that p ∝ exp(-E) favours states that "
                "match the biases and weights"),
        Mistake(lambda v, h, W, b, c: -(v @ b) - (h @ c) - (v @ W @ h.T).sum(1),
                "vᵀWh must pair each example's v with its own h: ((v @ W) * h).sum(1), not (v @ W @ h.T), "
                "which mixes examples"),
        Mistake(lambda v, h, W, b, c: -(v @ b).sum() - (h @ c).sum() - ((v @ W) * h).sum(),
                "you summed over the examples too: return one energy per example, shape (N,)"),
        Mistake(lambda v, h, W, b, c: -(h @ c) - ((v @ W) * h).sum(1),
                "the visible-bias term -b·v is missing: E(v, h) = -b·v - c·h - vᵀWh"),
        Mistake(lambda v, h, W, b, c: -(v @ b) - ((v @ W) * h).sum(1),
                "the hidden-bias term -c·h is missing: E(v, h) = -b·v - c·h - vᵀWh"),
        Mistake(lambda v, h, W, b, c: -(v @ b) - (h @ c) + ((v @ W) * h).sum(1),
                "the interaction enters with a minus: E(v, h) = -b·v - c·h - vᵀWh"),
    ], grad=(2,), shape_hint="one value per example, shape (N,): sum over the units (dim=1), not over the examples",
    doc="""The RBM's energy.  energy(v, h, W, b, c) -> E(v, h) = -b·v - c·h - vᵀ W h, one value per example;
    v (N, n_visible), h (N, n_hidden), W (n_visible, n_hidden), b (n_visible,), c (n_hidden,).""")

P_H_GIVEN_V = Exercise(
    "p(h = 1 | v)", "p_h_given_v(v, W, c)", lambda v, W, c: _rbm(W, torch.zeros(len(W)), c).p_h_given_v(v),
    [Case(c.note, _without_b(c.make)) for c in _v_cases()],
    mistakes=[
        Mistake(lambda v, W, c: torch.sigmoid(-(c + v @ W)),
                "σ(-x) is the probability of h_j = 0: p(h_j = 1 | v) = σ(c_j + v·W_:j)"),
        Mistake(lambda v, W, c: c + v @ W, "that is the hidden input c + v·W; its sigmoid is the probability"),
        Mistake(lambda v, W, c: (torch.sigmoid(c + v @ W) > 0.5).float(),
                "you thresholded (or sampled) the units: return the probabilities σ(c + v·W)"),
        Mistake(lambda v, W, c: torch.sigmoid(v @ W), "the hidden bias c is missing: σ(c_j + v·W_:j)"),
    ], grad=(1,), dtype="exact", shape_hint="one probability per example and hidden unit, (N, n_hidden)",
    doc="The hidden conditional.  p_h_given_v(v, W, c) -> p(h_j = 1 | v) = σ(c_j + v·W_:j), (N, n_hidden).")


def _p_v_case(n, n_v, n_h, seed):
    return lambda: (binary((n, n_h), seed), *_params(n_v, n_h, seed + 1)[:2])


P_V_GIVEN_H = Exercise(
    "p(v = 1 | h)", "p_v_given_h(h, W, b)", lambda h, W, b: _rbm(W, b, torch.zeros(W.shape[1])).p_v_given_h(h),
    [Case("", _p_v_case(1, 6, 4, 0)), Case("784 visible units", _p_v_case(5, 784, 20, 3)),
     Case("", _p_v_case(2, 3, 9, 6))],
    mistakes=[
        Mistake(lambda h, W, b: torch.sigmoid(-(b + h @ W.T)),
                "σ(-x) is the probability of v_i = 0: p(v_i = 1 | h) = σ(b_i + W_i:·h)"),
        Mistake(lambda h, W, b: b + h @ W.T, "that is the visible input b + h·Wᵀ; its sigmoid is the probability"),
        Mistake(lambda h, W, b: torch.sigmoid(h @ W.T), "the visible bias b is missing: σ(b_i + W_i:·h)"),
    ], grad=(1,), dtype="exact", shape_hint="one probability per example and visible unit, (N, n_visible): "
                                               "h @ W.T",
    doc="The visible conditional.  p_v_given_h(h, W, b) -> p(v_i = 1 | h) = σ(b_i + W_i:·h), (N, "
        "n_visible).")


def _free_energy(v, W, b, c):
    return _rbm(W, b, c).free_energy(v)


def _mean_energy(v, W, b, c):
    """⟨E(v, h)⟩ under p(h|v): -b·v - Σ_j p_j (c_j + v·W_:j), the known confusion with F."""
    x = c + v @ W
    return -(v @ b) - (torch.sigmoid(x) * x).sum(1)


FREE_ENERGY = Exercise(
    "the free energy F(v)", "free_energy(v, W, b, c)", _free_energy, _v_cases(),
    mistakes=[
        Mistake(lambda v, W, b, c: -(v @ b) - torch.log(1 + torch.exp(c + v @ W)).sum(1),
                "log(1 + exp(x)) overflows to inf once x > 88 in float32 (exp(89) is too large): use F.softplus(x), "
                "which computes the same value stably"),
        Mistake(_mean_energy,
                "that is ⟨E(v, h)⟩ under p(h|v), the mean energy, not the free energy: F(v) = -log Σ_h exp(-E(v, h)) "
                "= -b·v - Σ_j softplus(c_j + v·W_:j); the two differ by the hidden units' entropy"),
        Mistake(lambda v, W, b, c: (v @ b) + F.softplus(c + v @ W).sum(1),
                "the sign is flipped: F(v) = -b·v - Σ_j softplus(c_j + v·W_:j), so that p(v) = exp(-F(v)) / Z"),
        Mistake(lambda v, W, b, c: -(v @ b) - F.softplus(c + v @ W).sum(0).sum() + 0 * v[:, 0],
                "you summed over the examples instead of the hidden units: sum over dim=1 (one F per example)"),
        Mistake(lambda v, W, b, c: -F.softplus(c + v @ W).sum(1),
                "the visible-bias term -b·v is missing: F(v) = -b·v - Σ_j softplus(c_j + v·W_:j)"),
        Mistake(lambda v, W, b, c: -(v @ b) - F.softplus(v @ W).sum(1),
                "the hidden bias is missing inside the softplus: softplus(c_j + v·W_:j)"),
        Mistake(lambda v, W, b, c: -(v @ b) - torch.log(torch.exp(c + v @ W)).sum(1),
                "log(exp(x)) is x: the free energy needs log(1 + exp(x)) = softplus(x), from summing h_j over 0 "
                "and 1"),
    ], grad=(1,), shape_hint="one value per example, shape (N,): sum over the units (dim=1), not over the examples",
    doc="""The free energy, stably.  free_energy(v, W, b, c) -> F(v) = -b·v - Σ_j softplus(c_j + v·W_:j), one
    value per example (N,), differentiable in W.""")


def _gibbs_step(v, W, b, c, u_h, u_v):
    return _rbm(W, b, c).gibbs_sweep(v, u_h, u_v)


def _gibbs_case(n, n_v, n_h, seed):
    return lambda: (binary((n, n_v), seed), *_params(n_v, n_h, seed + 1), uniform((n, n_h), seed + 4),
                    uniform((n, n_v), seed + 5))


def _mean_field_h(v, W, b, c, u_h, u_v):
    model = _rbm(W, b, c)
    pv = model.p_v_given_h(model.p_h_given_v(v))
    return (u_v < pv).float(), pv


def _both_from_v(v, W, b, c, u_h, u_v):
    model = _rbm(W, b, c)
    pv = model.p_v_given_h(model.p_h_given_v(v))
    return pv, pv


GIBBS_STEP = Exercise(
    "the block-Gibbs step", "gibbs_step(v, W, b, c, u_h, u_v)", _gibbs_step,
    [Case("", _gibbs_case(1, 6, 4, 0)), Case("784 visible units", _gibbs_case(5, 784, 20, 10)),
     Case("", _gibbs_case(8, 5, 3, 20))],
    returns="tensors", outputs=("v_new", "p_v"), dtype="exact",
    mistakes=[
        Mistake(_mean_field_h, "you passed p(h|v) (mean field) to p(v|h): a Gibbs sweep samples the hidden units, "
                               "h = (u_h < p(h=1|v)).float(), then computes p(v|h) from those binary h"),
        Mistake(lambda v, W, b, c, u_h, u_v: _gibbs_step(v, W, b, c, u_h, u_v)[::-1],
                "the order of the outputs: return (v_new, p_v), the binary sample first"),
        Mistake(lambda v, W, b, c, u_h, u_v: _gibbs_step(v, W, b, c, 1 - u_h, 1 - u_v),
                "a unit is on when the uniform number is below its probability: (u < p).float(), not (u > p)"),
        Mistake(_both_from_v, "return binary states v_new (0./1.) and the probabilities p_v"),
    ],
    doc="""One block-Gibbs sweep.  gibbs_step(v, W, b, c, u_h, u_v) -> (v_new, p_v): h = (u_h < p(h=1|v)),
    p_v = p(v=1|h), v_new = (u_v < p_v), as floats 0./1.; u_h (N, n_hidden) and u_v (N, n_visible) are the uniform
    numbers the sweep uses (so that the result is reproducible).""")


def _cd_statistics(v, v_neg, W, c):
    return _rbm(W, torch.zeros(len(W)), c).cd_gradient(v, v_neg)


def _cd_case(n, n_neg, n_v, n_h, seed):
    def make():
        W, _, c = _params(n_v, n_h, seed)
        return binary((n, n_v), seed + 3), uniform((n_neg, n_v), seed + 4), W, c
    return make


def _cd_sums(v, v_neg, W, c):
    dW, db, dc = _cd_statistics(v, v_neg, W, c)
    return dW * len(v), db * len(v), dc * len(v)


CD_STATISTICS = Exercise(
    "the CD statistics", "cd_statistics(v, v_neg, W, c)", _cd_statistics,
    [Case("", _cd_case(1, 1, 6, 4, 0)), Case("784 visible units", _cd_case(10, 10, 784, 20, 10)),
     Case("more negatives than data", _cd_case(4, 7, 5, 3, 20))], returns="tensors", outputs=("dW", "db", "dc"),
    mistakes=[
        Mistake(lambda v, v_neg, W, c: tuple(-g for g in _cd_statistics(v, v_neg, W, c)),
                "a sign error: the gradient of log p is the positive phase (data) minus the negative "
                "phase (model samples), ⟨v hᵀ⟩_data - ⟨v hᵀ⟩_model; yours is the other way round"),
        Mistake(_cd_sums, "divide each phase by its own number of examples (a mean, not a sum), so that the step "
                          "does not grow with the batch size"),
        Mistake(lambda v, v_neg, W, c: tuple(g * len(v) / len(v_neg) if i == 0 else g
                                             for i, g in enumerate(_cd_statistics(v, v_neg, W, c))),
                "each phase is divided by its own number of examples: the negative phase by len(v_neg)"),
    ],
    deterministic="two calls on the same input gave different statistics: you sampled the hidden units. The "
                  "lecture's statistics use the probabilities p(h=1|v) (mean field), which have the same "
                  "expectation and less noise",
    doc="""The CD statistics.  cd_statistics(v, v_neg, W, c) -> (dW, db, dc), positive minus negative phase with
    hidden probabilities (mean field): dW = vᵀ p(h|v)/N - v⁻ᵀ p(h|v⁻)/N⁻, db = mean(v) - mean(v⁻),
    dc = mean p(h|v) - mean p(h|v⁻).""")


def _pcd_chains(chains, W, b, c, uniforms):
    model, v = _rbm(W, b, c), chains
    for u_h, u_v in uniforms:
        v, _ = model.gibbs_sweep(v, u_h, u_v)
    return v


def _pcd_case(n, n_v, n_h, k, seed):
    return lambda: (binary((n, n_v), seed), *_params(n_v, n_h, seed + 1),
                    [(uniform((n, n_h), seed + 10 + i), uniform((n, n_v), seed + 20 + i)) for i in range(k)])


def _pcd_probabilities(chains, W, b, c, uniforms):
    v = _pcd_chains(chains, W, b, c, uniforms[:-1])
    return _gibbs_step(v, W, b, c, *uniforms[-1])[1]


PCD_CHAINS = Exercise(
    "the PCD chain update", "pcd_chains(chains, W, b, c, uniforms)", _pcd_chains,
    [Case("k = 1", _pcd_case(3, 6, 4, 1, 0)), Case("k = 5", _pcd_case(10, 784, 20, 5, 30)),
     Case("k = 3", _pcd_case(4, 5, 3, 3, 60))],
    mistakes=[
        Mistake(lambda chains, W, b, c, uniforms: _pcd_chains(chains, W, b, c, uniforms[:1]),
                "you ran one sweep only: run one Gibbs sweep per pair of uniforms (PCD-k runs k)"),
        Mistake(_pcd_probabilities, "the persistent chains must stay binary states: you returned p(v=1|h) from the "
                                    "last sweep; keep the sample v_new"),
        Mistake(lambda chains, W, b, c, uniforms: chains,
                "the chains did not move: each sweep's output is the next sweep's input"),
        Mistake(lambda chains, W, b, c, uniforms: _pcd_chains(chains, W, b, c, uniforms[:-1]),
                "you ran one sweep fewer than the pairs of uniforms: one sweep per pair (u_h, u_v)"),
    ], dtype="exact",
    doc="""The PCD chain update.  pcd_chains(chains, W, b, c, uniforms) -> the persistent chains after one
    Gibbs sweep per pair (u_h, u_v) in `uniforms` (k pairs: PCD-k), as binary states; use your gibbs_step.""")


def _ais_increment(v, W, b, c, base_bias, beta_prev, beta):
    return rbm.ais_log_weight_increment(v, torch.addmm(c, v, W), (b - base_bias).double(), beta_prev, beta)


def _ais_case(n, n_v, n_h, beta_prev, beta, seed, scale=1.0, shift=0.0):
    def make():
        W, b, c = _params(n_v, n_h, seed, scale)
        return binary((n, n_v), seed + 3), W, b, c + shift, normal(n_v, seed + 4), beta_prev, beta
    return make


AIS_LOG_WEIGHT_INCREMENT = Exercise(
    "the AIS log-weight increment", "ais_log_weight_increment(v, W, b, c, base_bias, beta_prev, beta)",
    _ais_increment,
    [Case("", _ais_case(4, 6, 4, 0.0, 0.1, 0)), Case("784 visible units", _ais_case(5, 784, 20, 0.5, 0.55, 10, 0.05)),
     Case("hidden inputs above 88", _ais_case(3, 8, 3, 0.9, 1.0, 20, 30, 60))],
    mistakes=[
        Mistake(lambda v, W, b, c, bA, bp, be: -_ais_increment(v, W, b, c, bA, bp, be),
                "reversed: the weight grows by log p*_β(v) - log p*_β_prev(v), the new temperature minus the old"),
        Mistake(lambda v, W, b, c, bA, bp, be: (be - bp) * (v.double() @ b.double()) + (
            F.softplus(be * (c + v @ W).double()) - F.softplus(bp * (c + v @ W).double())).sum(1),
                "the base-rate model is missing: the path is (1-β) b_A·v + β b·v, so the visible term is "
                "(β - β') (b - b_A)·v"),
        Mistake(lambda v, W, b, c, bA, bp, be: (be - bp) * (v.double() @ (b - bA).double()) + (
            torch.log(1 + torch.exp(be * (c + v @ W))) - torch.log(1 + torch.exp(bp * (c + v @ W)))).sum(1),
                "log(1 + exp(x)) overflows to inf once x > 88 in float32: use F.softplus"),
        Mistake(lambda v, W, b, c, bA, bp, be: (be - bp) * (v.double() @ (b - bA).double()) + (
            (be - bp) * F.softplus((c + v @ W).double())).sum(1),
                "β multiplies the hidden input inside the softplus: softplus(β x) - softplus(β' x), not "
                "(β - β') softplus(x)"),
        Mistake(lambda v, W, b, c, bA, bp, be: _ais_increment(v, W, b, c, bA, bp, be)
                - (be - bp) * (v.double() @ (b - bA).double()),
                "the visible term (β - β') (b - b_A)·v is missing"),
    ], rtol=1e-4, atol=1e-4, shape_hint="one increment per run (n_runs,): sum over the hidden units (dim=1)",
    doc="""The AIS weight update.  ais_log_weight_increment(v, W, b, c, base_bias, beta_prev, beta) ->
    log p*_β(v) - log p*_β'(v) per run (n_runs,), with log p*_β(v) = (1-β) b_A·v + β b·v + Σ_j softplus(β (c_j +
    v·W_:j)) and b_A = base_bias, as genmodels.rbm.log_partition_ais accumulates it.""")


def _log_z_case(n, shift, spread, seed):
    return lambda: (normal(n, seed, spread, shift).double(), 12.5)


LOG_Z_FROM_LOG_WEIGHTS = Exercise(
    "log Z from the AIS weights", "log_z_from_log_weights(log_w, log_z0)", rbm.log_z_from_log_weights,
    [Case("", _log_z_case(10, 0.0, 1.0, 0)), Case("", _log_z_case(100, -3.0, 2.0, 1)),
     Case("log-weights near 800, where exp overflows in float64", _log_z_case(50, 800.0, 3.0, 2))],
    returns="number",
    mistakes=[
        Mistake(lambda log_w, log_z0: log_z0 + torch.log(torch.exp(log_w).mean()),
                "exp(log w) overflows for large log-weights: log mean(w) = logsumexp(log w) - log n_runs "
                "(torch.logsumexp)"),
        Mistake(lambda log_w, log_z0: log_z0 + torch.logsumexp(log_w, 0),
                "log Σ w is not log mean w: subtract log n_runs"),
        Mistake(lambda log_w, log_z0: log_z0 + log_w.mean(),
                "you averaged the log-weights: mean(log w) ≤ log mean(w) (Jensen), an underestimate of log Z; "
                "average the weights, by logsumexp"),
        Mistake(lambda log_w, log_z0: torch.logsumexp(log_w, 0) - math.log(len(log_w)),
                "log Z_0 is missing: log Z = log Z_0 + log mean(w)"),
    ],
    doc="""Log Z from the AIS weights.  log_z_from_log_weights(log_w, log_z0) -> log Z = log Z_0 + log mean(w),
    computed stably from the log-weights (n_runs,) (they reach several hundred: exp overflows).""")


def _pseudo_log_likelihood(v, W, b, c, i):
    return rbm.pseudo_log_likelihood_at(_rbm(W, b, c), v, i)


def _pseudo_case(n, n_v, n_h, seed, scale=1.0):
    return lambda: (binary((n, n_v), seed), *_params(n_v, n_h, seed + 1, scale),
                    torch.randint(n_v, (n,), generator=generator(seed + 5)))


def _flip(v, i):
    flipped = v.clone()
    flipped[torch.arange(len(v)), i] = 1 - flipped[torch.arange(len(v)), i]
    return flipped


def _log_of_sigmoid(v, W, b, c, i):
    model = _rbm(W, b, c)
    return len(W) * torch.log(torch.sigmoid(model.free_energy(_flip(v, i)) - model.free_energy(v)))


PSEUDO_LOG_LIKELIHOOD = Exercise(
    "the pseudo-log-likelihood", "pseudo_log_likelihood(v, W, b, c, i)", _pseudo_log_likelihood,
    [Case("", _pseudo_case(4, 6, 4, 0)), Case("784 visible units", _pseudo_case(5, 784, 20, 10, 0.05)),
     Case("free-energy gaps of hundreds", _pseudo_case(6, 10, 5, 20, 100.0))],
    mistakes=[
        Mistake(lambda v, W, b, c, i: _pseudo_log_likelihood(v, W, b, c, i) / len(W),
                "the factor n_visible is missing: one flipped pixel estimates the sum over all n_visible pixels"),
        Mistake(lambda v, W, b, c, i: len(W) * F.logsigmoid(
            _free_energy(v, W, b, c) - _free_energy(_flip(v, i), W, b, c)),
                "the sign inside σ: p(v_i | v_-i) = σ(F(ṽ) - F(v)), the flipped example's free energy first"),
        Mistake(_log_of_sigmoid, "log(σ(x)) underflows to -inf for very negative x: use F.logsigmoid(x)"),
        Mistake(lambda v, W, b, c, i: len(W) * torch.sigmoid(_free_energy(_flip(v, i), W, b, c)
                                                              - _free_energy(v, W, b, c)),
                "the log is missing: n_visible · log σ(F(ṽ) - F(v)), F.logsigmoid"),
    ], shape_hint="one value per example, shape (N,): pixel i[n] of example n, one term each",
    doc="""The pseudo-likelihood.  pseudo_log_likelihood(v, W, b, c, i) -> n_visible · log σ(F(ṽ) - F(v)) per
    example (N,), where ṽ is v with pixel i[n] of example n flipped (genmodels.rbm.pseudo_log_likelihood averages it
    over examples, with random i).""")


def _free_energy_keras(v, W, b, c):
    from .. import rbm_keras

    model = rbm_keras.RBM(W.shape[0], W.shape[1], n_chains=1)
    model.W.assign(W), model.b.assign(b), model.c.assign(c)
    return model.free_energy(v)


def _numpy_case(make):
    return lambda: tuple(np.asarray(a, dtype=np.float32) for a in make())


def _keras_softplus_overflow(v, W, b, c):
    from keras import ops

    return -ops.matmul(v, b) - ops.sum(ops.log(1 + ops.exp(ops.matmul(v, W) + c)), 1)


def _keras_mean_energy(v, W, b, c):
    from keras import ops

    return -ops.matmul(v, b) - ops.sum(ops.sigmoid(ops.matmul(v, W) + c) * (ops.matmul(v, W) + c), 1)


def _keras_flipped(v, W, b, c):
    from keras import ops

    return ops.matmul(v, b) + ops.sum(ops.softplus(ops.matmul(v, W) + c), 1)


def _keras_without_b(v, W, b, c):
    from keras import ops

    return -ops.sum(ops.softplus(ops.matmul(v, W) + c), 1)


FREE_ENERGY_KERAS = Exercise(
    "the free energy F(v) in keras.ops", "free_energy(v, W, b, c)", _free_energy_keras,
    [Case(c.note, _numpy_case(c.make)) for c in _v_cases()], returns="keras", name="free_energy_keras",
    mistakes=[
        Mistake(_keras_softplus_overflow,
                "log(1 + exp(x)) overflows to inf once x > 88 in float32: use keras.ops.softplus(x)"),
        Mistake(_keras_mean_energy,
                "that is ⟨E(v, h)⟩ under p(h|v), not the free energy: F(v) = -b·v - Σ_j softplus(c_j + v·W_:j)"),
        Mistake(_keras_flipped, "the sign is flipped: F(v) = -b·v - Σ_j softplus(c_j + v·W_:j)"),
        Mistake(_keras_without_b, "the visible-bias term -b·v is missing: F(v) = -b·v - Σ_j softplus(c_j + v·W_:j)"),
    ], shape_hint="one value per example, shape (N,): sum over the units (dim=1), not over the examples",
    doc="""The free energy in keras.ops.  free_energy(v, W, b, c) -> F(v) = -b·v - Σ_j softplus(c_j + v·W_:j)
    with keras.ops (any backend), one value per example; v, W, b, c are float32 NumPy arrays.""")

SPECS = [ENERGY, P_H_GIVEN_V, P_V_GIVEN_H, FREE_ENERGY, GIBBS_STEP, CD_STATISTICS, PCD_CHAINS, AIS_LOG_WEIGHT_INCREMENT,
         LOG_Z_FROM_LOG_WEIGHTS, PSEUDO_LOG_LIKELIHOOD, FREE_ENERGY_KERAS]
