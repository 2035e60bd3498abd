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
# # Exercises 01 · The restricted Boltzmann machine
#
# Goes with `notebooks/01_rbm_pytorch` and `notebooks/02_rbm_keras`. Two kinds of exercise:
# - **implementation exercises**: write one function of the lecture; the cell after it runs a check from
#   `genmodels.exercises`, which prints one line when your function is right and, when it is not, says which
#   mistake it is before it shows numbers. A function you have not written yet reports "not done yet";
# - **experiment exercises**: the questions at the end of notebooks 01 and 02, to answer by running code.
#
# Work top to bottom: Run All works at any time. The functions take tensors, not a model: `v` (N, n_visible),
# `h` (N, n_hidden), `W` (n_visible, n_hidden), `b` (n_visible,), `c` (n_hidden,), all float32.

# %% tags=["parameters"]
profile = None  # "quick" (seconds, CPU) or "full" (real results); None: GENMODELS_PROFILE, else "full"
seed = 0

# %%
import genmodels  # noqa: I001 (first: it loads what must come before TensorFlow; see genmodels/__init__.py)

import math

import keras
import torch
import torch.nn.functional as F
from keras import ops

from genmodels import data, exercises, rbm, rbm_keras, runs

profile, device = genmodels.setup(profile, "cpu", seed)

# %% [markdown]
# ## Implementation exercises
#
# ### Exercise 1: the energy
# $E(\mathbf v, \mathbf h) = -\mathbf b^\top \mathbf v - \mathbf c^\top \mathbf h - \mathbf v^\top W \mathbf h$,
# one value per example.

# %%
def energy(v, h, W, b, c):
    raise NotImplementedError("exercise 1: the energy")


# %% tags=["nbval-check-output"]
exercises.check_energy(energy)

# %% [markdown]
# ### Exercise 2: the hidden conditional
# $p(h_j = 1 \mid \mathbf v) = \sigma(c_j + \mathbf v^\top W_{:j})$, for every example and hidden unit at once.

# %%
def p_h_given_v(v, W, c):
    raise NotImplementedError("exercise 2: the hidden conditional")


# %% tags=["nbval-check-output"]
exercises.check_p_h_given_v(p_h_given_v)

# %% [markdown]
# ### Exercise 3: the visible conditional
# $p(v_i = 1 \mid \mathbf h) = \sigma(b_i + W_{i:} \mathbf h)$.

# %%
def p_v_given_h(h, W, b):
    raise NotImplementedError("exercise 3: the visible conditional")


# %% tags=["nbval-check-output"]
exercises.check_p_v_given_h(p_v_given_h)

# %% [markdown]
# ### Exercise 4: the free energy, stably
# $F(\mathbf v) = -\mathbf b^\top \mathbf v - \sum_j \log\left(1 + e^{c_j + \mathbf v^\top W_{:j}}\right)$, so that
# $p(\mathbf v) = e^{-F(\mathbf v)}/Z$. The check feeds hidden inputs above 88, where `exp` overflows in float32.

# %%
def free_energy(v, W, b, c):
    raise NotImplementedError("exercise 4: the free energy, stably")


# %% tags=["nbval-check-output"]
exercises.check_free_energy(free_energy)

# %% [markdown]
# ### Exercise 5: a block-Gibbs step
# Sample $\mathbf h$ from $p(\mathbf h \mid \mathbf v)$, then $\mathbf v'$ from $p(\mathbf v \mid \mathbf h)$. The
# uniform numbers are given, so that the result is reproducible: a unit is on when its uniform number is below its
# probability. Return `(v_new, p_v)`, the binary sample and the probabilities it was drawn from.

# %%
def gibbs_step(v, W, b, c, u_h, u_v):
    raise NotImplementedError("exercise 5: a block-Gibbs step")


# %% tags=["nbval-check-output"]
exercises.check_gibbs_step(gibbs_step)

# %% [markdown]
# ### Exercise 6: the CD statistics
# The CD estimate of the gradient of the mean log-likelihood, with hidden *probabilities* (mean field) on both
# sides: $\Delta W = \langle \mathbf v\, p(\mathbf h \mid \mathbf v)^\top \rangle_{\text{data}} - \langle \mathbf v^-
# p(\mathbf h \mid \mathbf v^-)^\top \rangle_{\text{negatives}}$, and likewise $\Delta\mathbf b$, $\Delta\mathbf c$.
# Return `(dW, db, dc)`.

# %%
def cd_statistics(v, v_neg, W, c):
    raise NotImplementedError("exercise 6: the CD statistics")


# %% tags=["nbval-check-output"]
exercises.check_cd_statistics(cd_statistics)

# %% [markdown]
# ### Exercise 7: the PCD chain update
# Persistent CD keeps its negative chains from one update to the next: each update runs $k$ Gibbs sweeps from where
# the chains stopped. `uniforms` is a list of $k$ pairs `(u_h, u_v)`, one per sweep.

# %%
def pcd_chains(chains, W, b, c, uniforms):
    raise NotImplementedError("exercise 7: the PCD chain update")


# %% tags=["nbval-check-output"]
exercises.check_pcd_chains(pcd_chains)

# %% [markdown]
# ### Exercise 8: the AIS weight update
# AIS anneals from the base-rate model ($\mathbf b_A$, independent pixels) to the RBM through
# $\log p^*_\beta(\mathbf v) = (1-\beta)\,\mathbf b_A^\top\mathbf v + \beta\,\mathbf b^\top\mathbf v + \sum_j
# \operatorname{softplus}(\beta\,(c_j + \mathbf v^\top W_{:j}))$. At each new temperature every run's log-weight grows
# by $\log p^*_{\beta}(\mathbf v) - \log p^*_{\beta'}(\mathbf v)$, $\beta'$ the previous one.

# %%
def ais_log_weight_increment(v, W, b, c, base_bias, beta_prev, beta):
    raise NotImplementedError("exercise 8: the AIS weight update")


# %% tags=["nbval-check-output"]
exercises.check_ais_log_weight_increment(ais_log_weight_increment)

# %% [markdown]
# ### Exercise 9: log Z from the weights
# $\log Z = \log Z_0 + \log \frac1n \sum_r w_r$, from the log-weights $\log w_r$ of the $n$ runs, which reach
# hundreds of nats.

# %%
def log_z_from_log_weights(log_w, log_z0):
    raise NotImplementedError("exercise 9: log Z from the weights")


# %% tags=["nbval-check-output"]
exercises.check_log_z_from_log_weights(log_z_from_log_weights)

# %% [markdown]
# ### Exercise 10: the pseudo-likelihood
# $\sum_i \log p(v_i \mid \mathbf v_{-i})$ estimated from one flipped pixel per example:
# $n_{\text{visible}} \log \sigma\big(F(\tilde{\mathbf v}) - F(\mathbf v)\big)$, with $\tilde{\mathbf v}$ the example
# with pixel `i[n]` flipped. One value per example; leave `v` as it is.

# %%
def pseudo_log_likelihood(v, W, b, c, i):
    raise NotImplementedError("exercise 10: the pseudo-likelihood")


# %% tags=["nbval-check-output"]
exercises.check_pseudo_log_likelihood(pseudo_log_likelihood)

# %% [markdown]
# ### Exercise 11: the free energy in `keras.ops`
# The same $F(\mathbf v)$ as the free-energy exercise above, written with `keras.ops` so that it runs on TensorFlow,
# PyTorch or JAX (notebook 02). The inputs are NumPy arrays.

# %%
def free_energy_keras(v, W, b, c):
    raise NotImplementedError("exercise 11: the free energy in `keras.ops`")


# %% tags=["nbval-check-output"]
exercises.check_free_energy_keras(free_energy_keras)

# %% [markdown]
# ## Experiment exercises
#
# Each answer trains small models in the quick profile (seconds) and the notebooks' models in the full profile. With
# at most 20 hidden units $\log Z$ is exact (a sum over $2^{20}$ hidden states), so the comparisons need no AIS.

# %%
dataset = data.load_data(profile, verbose=False)
n_train, n_test = profile.pick(quick=500, full=None), profile.pick(quick=500, full=None)
x_train = torch.as_tensor(data.binarize_once(dataset.x_train[:n_train].reshape(-1, 784)))
x_test = torch.as_tensor(data.binarize_once(dataset.x_test[:n_test].reshape(-1, 784)))
n_hidden, epochs = profile.pick(quick=12, full=20), profile.pick(quick=1, full=10)


def train_rbm(**settings):
    model = rbm.RBM(784, n_hidden, generator=torch.Generator().manual_seed(seed))
    rbm.fit(model, x_train, epochs=epochs, batch_size=100, progress="none", seed=seed, **settings)
    return model


def test_log_likelihood(model):
    return rbm.log_likelihood(model, x_test)  # exact log Z over the hidden states

# %% [markdown]
# ### Exercise 12: CD-1 against PCD (notebook 01, exercise 1)
# Train with CD-1 (`persistent=False`, `lr=0.05`) and with PCD; compare their test log-likelihoods.

# %%
# exercise 12: your code here (CD-1 against PCD (notebook 01, exercise 1))

# %% [markdown]
# ### Exercise 13: how many temperatures AIS needs (notebook 01, exercise 2)
# Vary `n_betas` in AIS (1,000; 5,000; 14,500): how do the estimate and its spread change?

# %%
# exercise 13: your code here (how many temperatures AIS needs (notebook 01, exercise 2))

# %% [markdown]
# ### Exercise 14: `log(1 + exp(x))` in the free energy (notebook 01, exercise 3)
# When do the first NaNs appear if the free energy uses `log(1 + exp(x))`?

# %%
# exercise 14: your code here (`log(1 + exp(x))` in the free energy (notebook 01, exercise 3))

# %% [markdown]
# ### Exercise 15: the momentum jump (notebook 01, exercise 4)
# Keep the momentum at 0.5 (`momentum=(0.5, 0.5)`) or halve `lr`: does the jump when the momentum rises go away?

# %%
# exercise 15: your code here (the momentum jump (notebook 01, exercise 4))

# %% [markdown]
# ### Exercise 16: another Keras backend (notebook 02, exercise 1)
# What changes besides the speed when notebook 02 runs with `KERAS_BACKEND=torch` or `jax`?

# %%
# exercise 16: your code here (another Keras backend (notebook 02, exercise 1))

# %% [markdown]
# ### Exercise 17: the reference code's averaged free energy (notebook 02, exercise 2)
# Multiply the learning rate of $W$ and $\mathbf c$ by $1/n_{\text{hidden}}$: how far does the test log-likelihood
# fall? (Here with PyTorch's RBM, whose update is one line to change.)

# %%
# exercise 17: your code here (the reference code's averaged free energy (notebook 02, exercise 2))

# %% [markdown]
# ### Exercise 18: shared thresholds (notebook 02, exercise 3)
# Draw the negative samples with one row of uniform numbers shared by the whole batch, and train: what happens to the
# pseudo-likelihood and to the samples?

# %%
# exercise 18: your code here (shared thresholds (notebook 02, exercise 3))

# %% [markdown]
# ### Exercise 19: CD-1 against PCD in Keras (notebook 02, exercise 4)
# Train the Keras RBM with CD-1 (`persistent=False`, `lr=0.05`) and compare with PCD.

# %%
# exercise 19: your code here (CD-1 against PCD in Keras (notebook 02, exercise 4))
