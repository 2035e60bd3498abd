"""Restricted Boltzmann machines in Keras 3, on any backend (TensorFlow, PyTorch, JAX).  Taught in 02_rbm_keras.

The binary-binary RBM of `genmodels.rbm` (01_rbm_pytorch), with the same names in the same order, written with
`keras.ops` and `keras.random` only: the model (energy, conditionals, free energy with softplus), Gibbs sampling,
contrastive divergence (CD-k, persistent CD), then evaluation. Training is Keras' own `fit`: `call` returns the
negative samples v⁻ and `compute_loss` returns

    mean F(v) - mean F(stop_gradient(v⁻)),

whose gradient is minus the CD estimate (its value is no likelihood: see 01_rbm_pytorch), so no backend needs its
own `train_step`. `MomentumSGD` applies the update of rbm.RBM.sgd_step (momentum 0.5, then 0.9; decoupled weight
decay on W only). log Z and the test log-likelihood come from the PyTorch code on copied weights (`to_pytorch`):
one AIS for both frameworks.

Import it explicitly (`from genmodels import rbm_keras`): `import genmodels` never loads Keras or TensorFlow. The
backend is fixed when Keras is first imported; choose it with KERAS_BACKEND=torch (or tensorflow, jax) before that.
"""

from __future__ import annotations

import math

import keras
import numpy as np
from keras import ops

from . import checks, keras_training
from . import rbm as torch_rbm

__all__ = ["RBM", "MomentumSGD", "fit", "to_pytorch", "from_pytorch", "log_partition_exact", "log_partition_ais",
           "log_likelihood", "log_likelihood_bracket", "pseudo_log_likelihood", "reconstruction_error",
           "scores_from_weights", "bernoulli"]


class RBM(keras.Model):
    """A binary-binary RBM with weights W (n_visible × n_hidden), visible biases b and hidden biases c.

    Non-trainable weights travel with the model's weights (and with BackupAndRestore): `chains`, the persistent Gibbs
    chains of PCD; `base_bias`, the visible log-odds of the data (the base-rate model of AIS); the state of
    `seed_generator`, which draws every random number. The increments of SGD with momentum live in the optimizer.
    `k`, `persistent` and `sample_visible` choose the negative phase that `fit` uses.
    """

    def __init__(self, n_visible: int, n_hidden: int, n_chains: int = 100, init_std: float = 0.01, seed=None,
                 **kwargs):
        super().__init__(**kwargs)
        if n_visible < 1 or n_hidden < 1:
            raise ValueError(f"an RBM needs at least one visible and one hidden unit, got {n_visible}×{n_hidden}")
        self.n_visible, self.n_hidden, self.n_chains, self.init_std, self.seed = (n_visible, n_hidden, n_chains,
                                                                                  init_std, seed)
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.W = self.add_weight(shape=(n_visible, n_hidden), name="W",
                                 initializer=keras.initializers.RandomNormal(stddev=init_std, seed=seed))
        self.b = self.add_weight(shape=(n_visible,), initializer="zeros", name="b")
        self.c = self.add_weight(shape=(n_hidden,), initializer="zeros", name="c")
        self.base_bias = self.add_weight(shape=(n_visible,), initializer="zeros", trainable=False, name="base_bias")
        self.chains = self.add_weight(shape=(n_chains, n_visible), initializer="zeros", trainable=False, name="chains")
        self.chains.assign(bernoulli(ops.full((n_chains, n_visible), 0.5), self.seed_generator))
        self.k, self.persistent, self.sample_visible = 1, False, False
        self.recon_tracker = keras.metrics.Mean(name="recon_error")
        self.built = True

    # --- the model ----------------------------------------------------------------------------------------------

    def energy(self, v, h):
        """E(v, h) = -b·v - c·h - vᵀ W h, one value per example.  Taught in 02_rbm_keras (and 01_rbm_pytorch)."""
        v = self.check(v)
        h = ops.reshape(ops.convert_to_tensor(np.asarray(h, dtype="float32")), (len(v), self.n_hidden))
        return -ops.matmul(v, self.b) - ops.matmul(h, self.c) - ops.sum(ops.matmul(v, self.W) * h, axis=1)

    def p_h_given_v(self, v):
        """p(h_j = 1 | v) = σ(c_j + v·W_:j) for each hidden unit (v may be probabilities: mean field)."""
        return ops.sigmoid(self.c + ops.matmul(v, self.W))

    def p_v_given_h(self, h):
        """p(v_i = 1 | h) = σ(b_i + W_i:·h) for each visible unit."""
        return ops.sigmoid(self.b + ops.matmul(h, ops.transpose(self.W)))

    def free_energy(self, v):
        """F(v) = -b·v - Σ_j softplus(c_j + v·W_:j) = -log Σ_h exp(-E(v, h)), so that p(v) = exp(-F(v)) / Z;
        softplus, never exp-then-log, which overflows.  Taught in 02_rbm_keras (and 01_rbm_pytorch)."""
        return self._free_energy(self.check(v))

    def _free_energy(self, v):
        return -ops.matmul(v, self.b) - ops.sum(ops.softplus(ops.matmul(v, self.W) + self.c), axis=1)

    # --- Gibbs sampling -----------------------------------------------------------------------------------------

    def gibbs_step(self, v):
        """One block-Gibbs sweep v → h ~ p(h|v) → v' ~ p(v|h); returns (v', p(v'=1|h))."""
        h = bernoulli(self.p_h_given_v(v), self.seed_generator)
        pv = self.p_v_given_h(h)
        return bernoulli(pv, self.seed_generator), pv

    def sample(self, n: int | None = None, steps: int = 1000, v0=None, probabilities: bool = True) -> np.ndarray:
        """`steps` Gibbs sweeps from `v0`, else from n images drawn from the base rate. Returns the last p(v=1|h)
        (smoother to look at) or, with probabilities=False, the binary v, as NumPy.  Taught in 02_rbm_keras."""
        if v0 is None:
            if n is None:
                raise ValueError("give the number of samples n, or starting images v0")
            p = ops.broadcast_to(ops.sigmoid(self.base_bias), (n, self.n_visible))
            v = bernoulli(p, self.seed_generator)
        else:
            v = self.check(v0)
        pv = v
        for _ in range(steps):
            v, pv = self.gibbs_step(v)
        return ops.convert_to_numpy(pv if probabilities else v)

    # --- contrastive divergence ---------------------------------------------------------------------------------

    def negative_phase(self, v, k: int = 1, persistent: bool = False, sample_visible: bool = False):
        """v⁻, the model's samples for the negative phase: k Gibbs sweeps from the data (CD-k) or from the persistent
        `chains`, which move on (PCD-k). As in Hinton's guide, CD's last visible step keeps the probabilities p(v|h)
        (mean field) unless `sample_visible`."""
        if persistent:
            v_neg = self.chains
            for _ in range(k):
                v_neg, _ = self.gibbs_step(v_neg)
            self.chains.assign(v_neg)
            return v_neg
        h = bernoulli(self.p_h_given_v(v), self.seed_generator)
        for step in range(k):
            v_neg = self.p_v_given_h(h)
            if step < k - 1 or sample_visible:
                v_neg = bernoulli(v_neg, self.seed_generator)
            if step < k - 1:
                h = bernoulli(self.p_h_given_v(v_neg), self.seed_generator)
        return v_neg

    def cd_gradient(self, v, v_neg):
        """The CD estimate of ∂ mean log p(v)/∂(W, b, c), written out: ⟨v p(h|v)ᵀ⟩_data - ⟨v⁻ p(h|v⁻)ᵀ⟩_negative, and
        the same for the biases. Returns (dW, db, dc). `fit` gets the same numbers as minus the gradient of
        `compute_loss` (the tests check this)."""
        ph, ph_neg = self.p_h_given_v(v), self.p_h_given_v(v_neg)
        n, n_neg = ops.shape(v)[0], ops.shape(v_neg)[0]
        dW = ops.matmul(ops.transpose(v), ph) / n - ops.matmul(ops.transpose(v_neg), ph_neg) / n_neg
        return dW, ops.mean(v, axis=0) - ops.mean(v_neg, axis=0), ops.mean(ph, axis=0) - ops.mean(ph_neg, axis=0)

    def contrastive_divergence(self, v, k: int = 1, persistent: bool = False, sample_visible: bool = False):
        """negative_phase, then cd_gradient: returns (dW, db, dc, v⁻)."""
        v_neg = self.negative_phase(v, k, persistent, sample_visible)
        return (*self.cd_gradient(v, v_neg), v_neg)

    def call(self, v, training=False):
        """v⁻ for `compute_loss`: while training, the negative phase that `fit` chose (CD-k from the batch, or the
        persistent chains, which move on); at inference, CD-k reconstructions of v (the chains stay put)."""
        return self.negative_phase(v, self.k, self.persistent and training, self.sample_visible)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """mean F(v) - mean F(stop_gradient(v⁻)): minus its gradient is the CD estimate, so Keras' optimizer, which
        descends it, takes rbm.RBM's CD step. Also tracks `recon_error`, Σ_i (v_i - v⁻_i)² (CD only: PCD's negatives
        are not reconstructions).  Taught in 02_rbm_keras."""
        x, v_neg = ops.convert_to_tensor(x), ops.stop_gradient(y_pred)
        if not (training and self.persistent):
            self.recon_tracker.update_state(ops.sum(ops.square(x - v_neg), axis=1))
        return ops.mean(self._free_energy(x)) - ops.mean(self._free_energy(v_neg))

    @property
    def metrics(self):
        """Keras' `loss` (the free-energy gap above) and, for CD, `recon_error`."""
        return [m for m in super().metrics if not (self.persistent and m is self.recon_tracker)]

    def compile(self, optimizer=None, **kwargs):
        """Keras' compile, with `MomentumSGD()` by default; weight decay, if any, acts on W only (as in rbm.py)."""
        optimizer = MomentumSGD() if optimizer is None else keras.optimizers.get(optimizer)
        if optimizer.weight_decay:
            optimizer.exclude_from_weight_decay(var_list=[self.b, self.c])
        super().compile(optimizer=optimizer, **kwargs)

    def init_visible_bias(self, x, eps: float = 1e-3) -> None:
        """b_i = log(p_i / (1 - p_i)) with p_i the fraction of the data with pixel i on (Hinton's guide, §8); the
        same log-odds define the base-rate model of AIS, and the persistent chains start from it."""
        self._set_base_rates(self._check(x)[1], eps)

    def _set_base_rates(self, p, eps: float = 1e-3) -> None:
        p = np.clip(np.asarray(p, dtype="float32"), eps, 1 - eps)
        log_odds = np.log(p) - np.log1p(-p)
        self.b.assign(log_odds)
        self.base_bias.assign(log_odds)
        self.chains.assign(bernoulli(ops.broadcast_to(p, (self.n_chains, self.n_visible)), self.seed_generator))

    # --- input checks and bookkeeping ---------------------------------------------------------------------------

    def check(self, v):
        """`v` as a float32 array (N, n_visible); a clear error for the wrong shape or for values other than 0 and 1
        (genmodels.checks.check_binary, as on the PyTorch side)."""
        return self._check(v)[0]

    def _check(self, v):
        """check(v), and the fraction of examples with each pixel on, from the same pass."""
        v = np.asarray(v if isinstance(v, np.ndarray) else ops.convert_to_numpy(v), dtype="float32")
        v = checks.flatten_examples(v, self.n_visible, "RBM input")
        return v, checks.check_binary(v, "RBM input", pixel_means=True)

    def get_config(self):
        return {**super().get_config(), "n_visible": self.n_visible, "n_hidden": self.n_hidden,
                "n_chains": self.n_chains, "init_std": self.init_std, "seed": self.seed}


# --- training -----------------------------------------------------------------------------------------------------


class MomentumSGD(keras.optimizers.Optimizer):
    """rbm.RBM.sgd_step as a Keras optimizer. For θ in (W, b, c), with g the CD estimate (minus the gradient of
    compute_loss):  Δθ ← μ Δθ + lr·g,  θ ← θ + Δθ,  with μ = momentum[0] for the first `momentum_switch` updates,
    then momentum[1]. Keras' decoupled weight decay shrinks W by 1 - lr·weight_decay first (RBM.compile keeps it
    off the biases), as sgd_step does."""

    def __init__(self, learning_rate=0.1, momentum=(0.5, 0.9), momentum_switch=0, weight_decay=2e-4,
                 name="momentum_sgd", **kwargs):
        super().__init__(learning_rate=learning_rate, weight_decay=weight_decay or None, name=name, **kwargs)
        self.momentum, self.momentum_switch = checks.check_momentum(momentum), int(momentum_switch)

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self.increments = self.add_optimizer_variables(variables, "increment")

    def update_step(self, gradient, variable, learning_rate):
        increment = self.increments[self._get_variable_index(variable)]
        mu = ops.where(self.iterations < self.momentum_switch, *self.momentum)  # iterations: updates made so far
        lr = ops.cast(learning_rate, variable.dtype)
        self.assign(increment, ops.cast(mu, variable.dtype) * increment - lr * ops.cast(gradient, variable.dtype))
        self.assign_add(variable, increment)

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "momentum_switch": self.momentum_switch}


def fit(model: RBM, x, *, epochs: int, batch_size: int = 100, lr: float = 0.1, k: int = 1, persistent: bool = False,
        weight_decay: float = 2e-4, momentum=(0.5, 0.9), momentum_epochs: int = 5, lr_schedule: str = "constant",
        init_bias: bool = True, x_test=None, evaluate=None, backup_dir=None, progress: str = "bar", callbacks=(),
        seed: int = 0):
    """Train `model` on binary data `x` by CD-k (or PCD-k with persistent=True) with `model.fit`, as rbm.fit does:
    visible biases from the data's pixel log-odds, momentum from momentum[0] to momentum[1] after `momentum_epochs`
    epochs, lr_schedule "linear" lowering the learning rate linearly to 0 at the end of `epochs` (Keras'
    PolynomialDecay with power 1). `x_test` adds Keras' validation metrics (val_recon_error); `evaluate()` adds its
    numbers to each epoch's logs; `backup_dir` lets a stopped or diverged fit resume (Keras' BackupAndRestore, through
    keras_training.fit).
    Returns Keras' History.  Taught in 02_rbm_keras."""
    __tracebackhide__ = True  # a mistake in the call shows the student's line and the message (IPython, pytest)
    torch_rbm.check_cd_settings(k=k, batch_size=batch_size, lr=lr, momentum=momentum)
    checks.check_progress(progress)
    x, pixel_means = model._check(x)  # one pass over the data
    if init_bias:
        model._set_base_rates(pixel_means)  # as init_visible_bias(x) would; a backup, if any, overwrites it
    model.k, model.persistent = k, persistent
    if lr_schedule not in ("constant", "linear"):
        raise ValueError(f"lr_schedule must be 'constant' or 'linear' (to 0 at the last epoch), got {lr_schedule!r}")
    updates_per_epoch = math.ceil(len(x) / batch_size)
    rate = lr if lr_schedule == "constant" else keras.optimizers.schedules.PolynomialDecay(
        lr, decay_steps=epochs * updates_per_epoch, end_learning_rate=0.0, power=1.0)  # lr·(1 - t/T), as rbm.fit
    model.compile(optimizer=MomentumSGD(rate, momentum, momentum_epochs * updates_per_epoch, weight_decay))
    return keras_training.fit(model, x, epochs=epochs, batch_size=batch_size, evaluate=evaluate, progress=progress,
                              validation_data=None if x_test is None else (model.check(x_test),),
                              callbacks=callbacks, seed=seed, backup_dir=backup_dir)


# --- weights both ways -------------------------------------------------------------------------------------------


def to_pytorch(model: RBM, device=None) -> torch_rbm.RBM:
    """A genmodels.rbm.RBM with this model's W, b, c, base_bias and chains (for AIS, or to train on)."""
    import torch

    twin = torch_rbm.RBM(model.n_visible, model.n_hidden, n_chains=model.n_chains)
    with torch.no_grad():
        for name in ("W", "b", "c", "base_bias", "chains"):
            getattr(twin, name).copy_(torch.from_numpy(np.asarray(getattr(model, name).numpy())))
    return twin.to(device)


def from_pytorch(rbm, seed=None) -> RBM:
    """A Keras RBM with the W, b, c, base_bias and chains of a genmodels.rbm.RBM."""
    model = RBM(rbm.n_visible, rbm.n_hidden, n_chains=len(rbm.chains), seed=seed)
    for name in ("W", "b", "c", "base_bias", "chains"):
        getattr(model, name).assign(getattr(rbm, name).detach().cpu().numpy())
    return model


# --- evaluation ---------------------------------------------------------------------------------------------------


def log_partition_exact(model: RBM, **kwargs) -> float:
    """log Z by summing over every state of the smaller layer: rbm.log_partition_exact on the copied weights."""
    return torch_rbm.log_partition_exact(to_pytorch(model), **kwargs)


def log_partition_ais(model: RBM, n_betas: int = 14500, n_runs: int = 100, generator=None) -> torch_rbm.AISEstimate:
    """log Z by annealed importance sampling: rbm.log_partition_ais on the copied weights (one AIS for both
    frameworks).  Taught in 02_rbm_keras."""
    return torch_rbm.log_partition_ais(to_pytorch(model), n_betas=n_betas, n_runs=n_runs, generator=generator)


def log_likelihood(model: RBM, v, log_z: float | None = None) -> float:
    """Average log p(v) = -F(v) - log Z over a data set, in nats; log_z from log_partition_ais, or exact if None."""
    v = model.check(v)
    if log_z is None:
        log_z = log_partition_exact(model)
    free_energy = keras_training.batched(model._free_energy, v)
    return -float(free_energy.astype(np.float64).mean()) - log_z


def log_likelihood_bracket(model: RBM, v, n_betas: int = 14500, n_runs: int = 100,
                           generator=None) -> torch_rbm.LikelihoodBracket:
    """Average log p(v) between RAISE's pessimistic end and AIS's optimistic one: rbm.log_likelihood_bracket on the
    copied weights (one bracket for both frameworks).  Taught in 02_rbm_keras."""
    return torch_rbm.log_likelihood_bracket(to_pytorch(model), model.check(v), n_betas=n_betas, n_runs=n_runs,
                                            generator=generator)


def pseudo_log_likelihood(model: RBM, v, seed=None) -> float:
    """Average pseudo-log-likelihood Σ_i log p(v_i | v_-i), estimated as n_visible · log σ(F(ṽ) - F(v)) with ṽ
    the example with one random pixel flipped (unbiased for the sum; Besag 1975; as scikit-learn does)."""
    v = model.check(v)
    i = ops.convert_to_numpy(keras.random.randint((len(v),), 0, model.n_visible, seed=seed))
    flipped = v.copy()
    rows = np.arange(len(v))
    flipped[rows, i] = 1 - flipped[rows, i]
    gap = keras_training.batched(model._free_energy, flipped) - keras_training.batched(model._free_energy, v)
    return float(np.mean(model.n_visible * ops.convert_to_numpy(ops.log_sigmoid(gap))))


def reconstruction_error(model: RBM, v) -> float:
    """Mean over examples of Σ_i (v_i - p(v_i=1 | p(h|v)))²: a mean-field up-down pass. A training monitor only: it
    is not the quantity CD optimises (Hinton's guide, §5)."""
    v = model.check(v)
    error = keras_training.batched(lambda b: ops.sum(ops.square(b - model.p_v_given_h(model.p_h_given_v(b))), 1), v)
    return float(error.mean())


def scores_from_weights(rbm, v) -> tuple[float, float]:
    """(mean -F(v), reconstruction error) of data `v` under a Keras RBM holding a genmodels.rbm.RBM's weights, on
    the backend this Keras runs on: what 02_rbm_keras compares across backends (keras_backends.run_on_backend)."""
    model = from_pytorch(rbm)
    return log_likelihood(model, v, log_z=0.0), reconstruction_error(model, v)


# --- helpers ------------------------------------------------------------------------------------------------------


def bernoulli(p, seed=None):
    """Binary samples (0./1. floats) with P(1) = p: one uniform number per entry of p, compared with it (never one
    row of thresholds shared by a batch)."""
    p = ops.convert_to_tensor(p)
    dtype = keras.backend.standardize_dtype(p.dtype)
    return ops.cast(keras.random.uniform(ops.shape(p), seed=seed, dtype=dtype) < p, dtype)
