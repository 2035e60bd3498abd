# ---
# jupyter:
#   jupytext:
#     cell_metadata_filter: tags,-all
#     notebook_metadata_filter: -jupytext.text_representation.jupytext_version
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 02 · Restricted Boltzmann machines in Keras: one model on TensorFlow, PyTorch and JAX
#
# The lecture promises Boltzmann machines "using TensorFlow and PyTorch" and links to a TensorFlow RBM (Babcock &
# Bali, *Hands-On Generative AI with Python and TensorFlow 2*, ch. 4, `Chapter_4/models/rbm.py`). Here is the RBM of
# the PyTorch notebook (01) in Keras 3, written once with `keras.ops` and `keras.random`, so that it trains unchanged
# on the TensorFlow backend (the default here), on PyTorch (`KERAS_BACKEND=torch`) and on JAX (`KERAS_BACKEND=jax`).
# It has the same names, in the same order, as `genmodels.rbm`, and we check that it computes the same numbers.
#
# You will learn
# - how contrastive divergence becomes a plain Keras `fit`: the negative samples come from `call`, and a loss whose
#   gradient is the CD estimate from `compute_loss`, with no framework-specific training step;
# - that the Keras and PyTorch RBMs agree to float32 precision, free energies, conditionals and update alike;
# - two bugs of the reference code, measured: samples that share their random thresholds, and a free energy averaged
#   where it should be summed;
# - how the Keras RBM's test log-likelihood compares with the PyTorch RBM's, trained the same way and scored by the
#   same AIS.

# %% tags=["parameters"]
profile = None  # "quick" (seconds, CPU) or "full" (real results); None: GENMODELS_PROFILE, else "full"
device = None  # the PyTorch comparison model: None picks CUDA, then Apple MPS, then the CPU
seed = 0
n_hidden = None  # None: the run's (genmodels.runs.RUNS["rbm_keras"], printed below)
epochs = None  # None: the run's, for the profile; for both the Keras and the PyTorch RBM

# %%
import os

import genmodels  # first: silences TensorFlow's C++ logging before Keras loads it

os.environ.setdefault("KERAS_BACKEND", "tensorflow")  # or "torch", "jax"; fixed when keras is first imported
import keras
import matplotlib.pyplot as plt
import numpy as np
import torch

from genmodels import data, plotting, rbm, rbm_keras, runs

profile, device = genmodels.setup(profile, device, seed)
settings = runs.settings("rbm_keras", profile, n_hidden=n_hidden, epochs=epochs)
twin_settings = runs.settings("rbm_keras_twin", profile, n_hidden=n_hidden, epochs=epochs)  # PyTorch, trained alike
n_hidden = settings.n_hidden
print(f"Keras {keras.__version__} on the {keras.backend.backend()} backend")
print(settings)
print(twin_settings)

# %% [markdown]
# ## The data: binary images, the same as in the PyTorch notebooks
#
# An RBM with binary visible units models binary images. We binarise the grey levels once, stochastically (each
# pixel is on with probability its grey level), with the course's one seed, and flatten them to vectors
# (`data.binary_vectors`, as in notebook 01), so that both frameworks see the same binary images.

# %% tags=["nbval-check-output"]
dataset = data.load_data(profile)
x_train, x_test = data.binary_vectors(dataset)
print(dataset)
print(f"binary training set {x_train.shape}, test set {x_test.shape}, "
      f"fraction of pixels on {x_train.mean():.3f}")

# %% [markdown]
# ## The model, in `keras.ops`: the same numbers as PyTorch
#
# $$E(v,h)=-b^\top v-c^\top h-v^\top Wh,\qquad
#   F(v)=-b^\top v-\sum_j\operatorname{softplus}\big(c_j+v^\top W_{:j}\big),$$
# $$p(h_j=1\mid v)=\sigma\big(c_j+v^\top W_{:j}\big),\qquad p(v_i=1\mid h)=\sigma\big(b_i+W_{i:}h\big).$$
#
# `rbm_keras.RBM` is a `keras.Model` whose weights $W$, $b$, $c$ are Keras variables, beside two non-trainable ones
# (the persistent chains and the base-rate biases) and a `SeedGenerator` that draws every random number. Weights
# copy both ways (`to_pytorch`, `from_pytorch`); on the same weights, both frameworks compute the same free energies
# and conditionals:

# %% tags=["nbval-check-output"]
twin = rbm.RBM(784, n_hidden, generator=torch.Generator().manual_seed(seed), init_std=0.1)
model = rbm_keras.from_pytorch(twin, seed=seed)
v, tv = x_test[:100], torch.from_numpy(x_test[:100])
with torch.no_grad():
    pairs = {"F(v)": (model.free_energy(v), twin.free_energy(tv)),
             "p(h|v)": (model.p_h_given_v(v), twin.p_h_given_v(tv)),
             "p(v|h)": (model.p_v_given_h(twin.p_h_given_v(tv).numpy()), twin.p_v_given_h(twin.p_h_given_v(tv)))}
for name, (k, t) in pairs.items():
    gap = np.abs(keras.ops.convert_to_numpy(k) - t.numpy()).max()
    print(f"{name:>7}: largest difference Keras vs PyTorch below 1e-4: {bool(gap < 1e-4)}")

# %% [markdown]
# ## Contrastive divergence as a Keras `fit`
#
# CD-k estimates the gradient of the log-likelihood as a difference of two averages, over the data and over negative
# samples $v^-$ (k Gibbs sweeps from the data, or persistent chains for PCD):
# $\Delta W \propto \langle v\,p(h|v)^\top\rangle_{\text{data}}-\langle v^-p(h|v^-)^\top\rangle_{v^-}$.
# Notebook 01 showed that this is minus the gradient of $\overline{F(v)}-\overline{F(v^-)}$ with $v^-$ held fixed.
# So the Keras model needs no training step of its own: `call` returns $v^-$ (with `keras.random`, and for PCD
# moving the chains on), `compute_loss` returns $\overline{F(v)}-\overline{F(\text{stop\_gradient}(v^-))}$, and each
# backend's `fit` differentiates it. The optimizer, `MomentumSGD`, applies the update of PyTorch's `sgd_step`:
# $\Delta\theta\leftarrow\mu\,\Delta\theta+\text{lr}\cdot g$, $\theta\leftarrow\theta+\Delta\theta$, with
# $\mu=0.5$ for the first five epochs, then $0.9$, and a decoupled weight decay on $W$ only. One step from the same
# state with the same negatives lands on the same parameters:

# %% tags=["nbval-check-output"]
v_neg = twin.p_v_given_h(rbm.bernoulli(twin.p_h_given_v(tv), torch.Generator().manual_seed(seed))).detach()
gradient = model.cd_gradient(v, v_neg.numpy())  # (dW, db, dc), written out in keras.ops
optimizer = rbm_keras.MomentumSGD(learning_rate=0.1, momentum=(0.5, 0.9), momentum_switch=1, weight_decay=0.01)
model.compile(optimizer=optimizer)
model.optimizer.apply([-g for g in gradient], model.trainable_variables)  # descends minus the CD estimate
twin.sgd_step(twin.cd_gradient(tv, v_neg), lr=0.1, momentum=0.5, weight_decay=0.01)
for name in ("W", "b", "c"):
    gap = np.abs(getattr(model, name).numpy() - getattr(twin, name).detach().numpy()).max()
    print(f"{name}: Keras and PyTorch agree after one CD step (to 1e-6): {bool(gap < 1e-6)}")

# %% [markdown]
# The tests (`tests/test_rbm_keras.py`) check the same through Keras' own training step on each backend.
#
# ## Two bugs of the reference code, measured
#
# **Shared thresholds.** The reference code feeds batches shaped (B, 1, 784) and draws its uniform thresholds with
# `Uniform().sample((x.shape[1], units))`, that is, one row of thresholds shared by every example of the batch. Two
# examples then get *correlated* samples; two identical examples get identical ones. We binarise 100 test images
# both ways (the grey levels as probabilities) and correlate the sampling noise $x-p$ between examples:

# %% tags=["nbval-check-output"]
p = dataset.x_test[:100].reshape(100, -1)
u = keras.ops.convert_to_numpy(keras.random.uniform((1, 784), seed=seed))  # one row for the whole batch
noise = {"shared thresholds": (u < p) - p,
         "one per entry": keras.ops.convert_to_numpy(rbm_keras.bernoulli(p, seed=seed)) - p}
for name, r in noise.items():
    r = r[:, p.std(0) > 0]  # pixels that vary
    corr = np.corrcoef(r)[np.triu_indices(100, 1)]
    print(f"{name:>17}: mean correlation between two examples' noise {round(corr.mean(), 2) + 0.0:.2f}")
same = keras.ops.convert_to_numpy(rbm_keras.bernoulli(np.full((2, 784), 0.5, "float32"), seed=seed))
print(f"two identical rows, p = 0.5: our samples differ in {(same[0] != same[1]).mean():.0%} of the pixels")

# %% [markdown]
# With shared thresholds, the sampling noise of two different images is correlated (the coefficient printed above,
# against none with one threshold per entry), and identical images would get identical samples: a batch of B
# examples gives fewer than B independent samples. `rbm_keras.bernoulli` draws
# one uniform number per entry.
#
# **An averaged free energy.** The reference free energy sums the softplus terms over the singleton axis of those
# (B, 1, 784) batches, so the final `reduce_mean` averages them over the hidden units instead of summing. The
# gradients of $W$ and $c$ then shrink by $1/n_{\text{hidden}}$ relative to the visible biases. Autodiff (PyTorch
# here) on the two free energies of the same data:

# %% tags=["nbval-check-output"]
W, b, c = (t.detach().clone().requires_grad_() for t in (twin.W, twin.b, twin.c))
norms = {}
for name in ("correct", "reference"):
    hidden = torch.nn.functional.softplus(tv @ W + c)  # (B, n_hidden)
    if name == "reference":  # as on (B, 1, 784) batches: reduce_mean over (B, n_hidden)
        free_energy = -(tv @ b)[:, None] - hidden
    else:  # the sum over hidden units
        free_energy = -(tv @ b) - hidden.sum(1)
    norms[name] = [g.norm().item() for g in torch.autograd.grad(free_energy.mean(), (W, b, c))]
ratios = [ref / right for ref, right in zip(norms["reference"], norms["correct"], strict=True)]
print("gradient of the reference free energy / the correct one: "
      + ", ".join(f"{name} {r:.4f}" for name, r in zip("Wbc", ratios, strict=True)))
print(f"1 / n_hidden = {1 / n_hidden:.4f}")

# %% [markdown]
# The ratios of the reference version are those of the correct one divided by $n_{\text{hidden}}$: its visible biases
# learn at the intended rate, its weights n_hidden times too slowly (the printed 1/n_hidden). The reference also
# computes softplus as
# `log(1 + exp(x))`, which overflows (notebook 01), and trains on grey levels divided by 256, never binarised. Our
# model refuses those with the same error as the PyTorch RBM:

# %% tags=["nbval-check-output"]
try:
    rbm_keras.fit(rbm_keras.RBM(784, 10), dataset.x_test[:10].reshape(10, -1) * 255 / 256, epochs=1)
except ValueError as error:
    print("ValueError:", error)

# %% [markdown]
# ## Training with `fit`: persistent CD, as in notebook 01
#
# `rbm_keras.fit` is `model.fit(x, epochs=..., batch_size=...)` with the settings of `rbm.fit`: visible biases from
# the pixels' log-odds, SGD with momentum, PCD with persistent chains; the run `rbm_keras` (printed at the top) gives
# the number of chains, the learning rate and the epochs. Keras' `History` records the loss (the free-energy gap, not
# a likelihood) and, through `evaluate`, the test pseudo-likelihood and reconstruction error after each epoch; the
# quick profile prints one plain line per epoch. Pass `backup_dir=...` to resume an interrupted fit (Keras'
# `BackupAndRestore`).

# %%
model = runs.build(settings, device, seed=seed)  # rbm_keras.RBM(784, n_hidden, seed=seed)
history = runs.train(model, dataset, settings, seed=seed, teaching=True)  # rbm_keras.fit with the run's settings

# %%
fig, axes = plt.subplots(1, 2, figsize=(9, 3))
plotting.plot_history(history.history, ["test_pseudo_ll"], ax=axes[0])
plotting.plot_history(history.history, ["test_recon_error"], ax=axes[1])
plt.show()

# %% [markdown]
# Both monitors improve; as in notebook 01, they are cheap proxies, not the likelihood.
#
# ## Filters and samples
#
# The weights of 64 hidden units as images, and the persistent chains after 100 more Gibbs sweeps:

# %%
plotting.show_images(model.W.numpy().T[:64].reshape(-1, 28, 28), ncols=16, title="filters W[:, j] (Keras RBM)",
                     normalize=True)
samples = model.sample(v0=model.chains.numpy()[:32], steps=100)
plotting.show_images(samples.reshape(-1, 28, 28), ncols=16, title="persistent chains (Keras RBM)")

# %% [markdown]
# ## The test log-likelihood, beside a PyTorch RBM trained the same way
#
# `genmodels.rbm` trains a PyTorch RBM of the same size with the same settings. Both are scored by the *same* AIS
# code: `rbm_keras.log_partition_ais` copies the Keras weights into a PyTorch RBM and runs `rbm.log_partition_ais`,
# so the comparison measures the models, not two estimators. The runs differ in their random draws (and PyTorch's
# `fit`
# takes a fast path, its kernels measured on the machine), so expect close, not equal, numbers.

# %%
torch_rbm = runs.build(twin_settings, device, seed=seed)
runs.train(torch_rbm, dataset, twin_settings, seed=seed, teaching=True)
n_betas, n_runs = profile.pick(quick=2000, full=14500), profile.pick(quick=50, full=100)
for name, module, trained in (("Keras", rbm_keras, model), ("PyTorch", rbm, torch_rbm)):
    ais = module.log_partition_ais(trained, n_betas=n_betas, n_runs=n_runs,
                                   generator=torch.Generator().manual_seed(seed))
    test_ll = module.log_likelihood(trained, x_test, log_z=ais.log_z)
    print(f"{name:>7}: log Z = {ais.log_z:.2f} (range {ais.log_z_low:.2f} to {ais.log_z_high:.2f}), "
          f"test log-likelihood {test_ll:.2f} nats ({dataset.name})")
profile.note(f"{n_hidden} hidden units, {settings.epochs} epochs on {len(x_train):,} images",
             "the two frameworks' RBMs at the size and length of the parameters cell, on the whole training split")

# %% [markdown]
# Read the ranges as in notebook 01: each is AIS's own Monte-Carlo error (three standard errors of $\log Z$), not a
# bracket of the log-likelihood; AIS tends to underestimate $\log Z$, so both log-likelihoods lean high
# (`rbm_keras.log_likelihood_bracket` gives the pessimistic end too, as notebook 01 shows). Trained for the same epochs
# with the same rule, the two frameworks reach the log-likelihoods printed above; their difference comes from the
# random draws.
#
# ## The same model on another backend
#
# Keras fixes its backend when it is first imported, so the same code runs on another backend in a fresh process:
# `keras_backends.run_on_backend` sends it the trained weights and brings back the mean test free energy and the
# reconstruction error, computed by the same `keras.ops` code on that backend's kernels.

# %%
from genmodels import keras_backends

other = keras_backends.other_backend()  # JAX, else PyTorch, else TensorFlow: one that is not this one
trained = rbm_keras.to_pytorch(model)  # the trained weights, in a form that travels to the other process
there = keras_backends.run_on_backend(other, rbm_keras.scores_from_weights, trained, x_test)
here = rbm_keras.scores_from_weights(trained, x_test)
for name, (minus_f, recon) in {keras.backend.backend(): here, there.backend: there.value}.items():
    print(f"{name:>10}: mean -F(v) over the test set {minus_f:.2f}, reconstruction error {recon:.3f}")

# %% [markdown]
# Compare the two lines: the same weights give the same numbers on both backends, to float32 rounding; the model is
# backend-independent code.
#
# ## What to take away
# - A Keras 3 model with a `compute_loss` whose gradient is the CD estimate trains by plain `fit` on TensorFlow,
#   PyTorch and JAX; its `History`, callbacks and `BackupAndRestore` work as for any Keras model.
# - Framework-independent mathematics gives framework-independent numbers: the Keras and PyTorch RBMs agree to
#   float32 precision, and one AIS scores both.
# - Sampling needs one random number per unit *and per example*; a free energy needs the sum over hidden units.
#   Code that gets these wrong still trains, silently worse.
#
# ## Exercises
# The exercises for this notebook are in `exercises/01_rbm.ipynb` (open it in `make lab`): write the free energy in
# `keras.ops` (and the rest of the RBM in PyTorch), checked as you go; and answer this notebook's questions (another
# backend, the reference code's averaged free energy, shared thresholds, CD-1 against PCD) by running code. Worked
# answers: `exercises/solutions/01_rbm.ipynb`.
#
# ## Further
# Keras 3's guide *Customizing what happens in fit()*; Hinton, *A practical guide to training restricted Boltzmann
# machines* (2010); Tieleman, *Training restricted Boltzmann machines using approximations to the likelihood
# gradient* (2008). Next: Langevin sampling (03), where the sampler follows the gradient of the energy.
