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
# ### Exercise: the energy
# $E(\mathbf v, \mathbf h) = -\mathbf b^\top \mathbf v - \mathbf c^\top \mathbf h - \mathbf v^\top W \mathbf h$,
# one value per example.

# %%
def energy(v, h, W, b, c):
    ### BEGIN SOLUTION
    return -(v @ b) - (h @ c) - ((v @ W) * h).sum(1)
    ### END SOLUTION


# %% tags=["nbval-check-output"]
exercises.check_energy(energy)

# %% [markdown]
# ### Exercise: the hidden conditional
# $p(h_j = 1 \mid \mathbf v) = \sigma(c_j + \mathbf v^\top W_{:j})$, for every example and hidden unit at once.

# %%
def p_h_given_v(v, W, c):
    ### BEGIN SOLUTION
    return torch.sigmoid(c + v @ W)
    ### END SOLUTION


# %% tags=["nbval-check-output"]
exercises.check_p_h_given_v(p_h_given_v)

# %% [markdown]
# ### Exercise: the visible conditional
# $p(v_i = 1 \mid \mathbf h) = \sigma(b_i + W_{i:} \mathbf h)$.

# %%
def p_v_given_h(h, W, b):
    ### BEGIN SOLUTION
    return torch.sigmoid(b + h @ W.T)
    ### END SOLUTION


# %% tags=["nbval-check-output"]
exercises.check_p_v_given_h(p_v_given_h)

# %% [markdown]
# ### Exercise: the free energy, stably
# $F(\mathbf v) = -\mathbf b^\top \mathbf v - \sum_j \log\left(1 + e^{c_j + \mathbf v^\top W_{:j}}\right)$, so that
# $p(\mathbf v) = e^{-F(\mathbf v)}/Z$. The check feeds hidden inputs above 88, where `exp` overflows in float32.

# %%
def free_energy(v, W, b, c):
    ### BEGIN SOLUTION
    return -(v @ b) - F.softplus(c + v @ W).sum(1)
    ### END SOLUTION


# %% tags=["nbval-check-output"]
exercises.check_free_energy(free_energy)

# %% [markdown]
# ### Exercise: a block-Gibbs step
# Sample $\mathbf h$ from $p(\mathbf h \mid \mathbf v)$, then $\mathbf v'$ from $p(\mathbf v \mid \mathbf h)$. The
# uniform numbers are given, so that the result is reproducible: a unit is on when its uniform number is below its
# probability. Return `(v_new, p_v)`, the binary sample and the probabilities it was drawn from.

# %%
def gibbs_step(v, W, b, c, u_h, u_v):
    ### BEGIN SOLUTION
    h = (u_h < p_h_given_v(v, W, c)).float()
    p_v = p_v_given_h(h, W, b)
    return (u_v < p_v).float(), p_v
    ### END SOLUTION


# %% tags=["nbval-check-output"]
exercises.check_gibbs_step(gibbs_step)

# %% [markdown]
# ### Exercise: the CD statistics
# The CD estimate of the gradient of the mean log-likelihood, with hidden *probabilities* (mean field) on both
# sides: $\Delta W = \langle \mathbf v\, p(\mathbf h \mid \mathbf v)^\top \rangle_{\text{data}} - \langle \mathbf v^-
# p(\mathbf h \mid \mathbf v^-)^\top \rangle_{\text{negatives}}$, and likewise $\Delta\mathbf b$, $\Delta\mathbf c$.
# Return `(dW, db, dc)`.

# %%
def cd_statistics(v, v_neg, W, c):
    ### BEGIN SOLUTION
    ph, ph_neg = p_h_given_v(v, W, c), p_h_given_v(v_neg, W, c)
    dW = v.T @ ph / len(v) - v_neg.T @ ph_neg / len(v_neg)
    return dW, v.mean(0) - v_neg.mean(0), ph.mean(0) - ph_neg.mean(0)
    ### END SOLUTION


# %% tags=["nbval-check-output"]
exercises.check_cd_statistics(cd_statistics)

# %% [markdown]
# ### Exercise: the PCD chain update
# Persistent CD keeps its negative chains from one update to the next: each update runs $k$ Gibbs sweeps from where
# the chains stopped. `uniforms` is a list of $k$ pairs `(u_h, u_v)`, one per sweep.

# %%
def pcd_chains(chains, W, b, c, uniforms):
    ### BEGIN SOLUTION
    for u_h, u_v in uniforms:
        chains, _ = gibbs_step(chains, W, b, c, u_h, u_v)
    return chains
    ### END SOLUTION


# %% tags=["nbval-check-output"]
exercises.check_pcd_chains(pcd_chains)

# %% [markdown]
# ### Exercise: the AIS weight update
# AIS anneals from the base-rate model ($\mathbf b_A$, independent pixels) to the RBM through
# $\log p^*_\beta(\mathbf v) = (1-\beta)\,\mathbf b_A^\top\mathbf v + \beta\,\mathbf b^\top\mathbf v + \sum_j
# \operatorname{softplus}(\beta\,(c_j + \mathbf v^\top W_{:j}))$. At each new temperature every run's log-weight grows
# by $\log p^*_{\beta}(\mathbf v) - \log p^*_{\beta'}(\mathbf v)$, $\beta'$ the previous one.

# %%
def ais_log_weight_increment(v, W, b, c, base_bias, beta_prev, beta):
    ### BEGIN SOLUTION
    x = c + v @ W
    return (beta - beta_prev) * (v @ (b - base_bias)) + (F.softplus(beta * x) - F.softplus(beta_prev * x)).sum(1)
    ### END SOLUTION


# %% tags=["nbval-check-output"]
exercises.check_ais_log_weight_increment(ais_log_weight_increment)

# %% [markdown]
# ### Exercise: log Z from the weights
# $\log Z = \log Z_0 + \log \frac1n \sum_r w_r$, from the log-weights $\log w_r$ of the $n$ runs, which reach
# hundreds of nats.

# %%
def log_z_from_log_weights(log_w, log_z0):
    ### BEGIN SOLUTION
    return log_z0 + torch.logsumexp(log_w, 0) - math.log(len(log_w))
    ### END SOLUTION


# %% tags=["nbval-check-output"]
exercises.check_log_z_from_log_weights(log_z_from_log_weights)

# %% [markdown]
# ### Exercise: the pseudo-likelihood
# $\sum_i \log p(v_i \mid \mathbf v_{-i})$ estimated from one flipped pixel per example:
# $n_{\text{visible}} \log \sigma\big(F(\tilde{\mathbf v}) - F(\mathbf v)\big)$, with $\tilde{\mathbf v}$ the example
# with pixel `i[n]` flipped. One value per example; leave `v` as it is.

# %%
def pseudo_log_likelihood(v, W, b, c, i):
    ### BEGIN SOLUTION
    flipped = v.clone()
    rows = torch.arange(len(v))
    flipped[rows, i] = 1 - flipped[rows, i]
    return len(W) * F.logsigmoid(free_energy(flipped, W, b, c) - free_energy(v, W, b, c))
    ### END SOLUTION


# %% tags=["nbval-check-output"]
exercises.check_pseudo_log_likelihood(pseudo_log_likelihood)

# %% [markdown]
# ### Exercise: the free energy in `keras.ops`
# The same $F(\mathbf v)$ as the free-energy exercise above, written with `keras.ops` so that it runs on TensorFlow,
# PyTorch or JAX (notebook 02). The inputs are NumPy arrays.

# %%
def free_energy_keras(v, W, b, c):
    ### BEGIN SOLUTION
    return -ops.matmul(v, b) - ops.sum(ops.softplus(ops.matmul(v, W) + c), axis=1)
    ### END SOLUTION


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
# ### Exercise: CD-1 against PCD (notebook 01, exercise 1)
# Train with CD-1 (`persistent=False`, `lr=0.05`) and with PCD; compare their test log-likelihoods.

# %%
### BEGIN SOLUTION
cd_model = train_rbm(lr=0.05, persistent=False)
pcd_model = train_rbm(lr=runs.settings("rbm", profile).lr, persistent=True)  # notebook 01's learning rate
print(f"test log-likelihood, {n_hidden} hidden units, epochs={epochs}: CD-1 {test_log_likelihood(cd_model):.1f}, "
      f"PCD-1 {test_log_likelihood(pcd_model):.1f} nats")
### END SOLUTION

# %% [markdown] tags=["solution"]
# **What to look for.** Both figures come from the exact $\log Z$. CD-1 starts its chains at the data and learns
# quickly at first; PCD's chains explore the model's own distribution and, trained long enough (full profile), reach
# the higher likelihood, as Tieleman (2008) reported. In a short run CD-1 can be ahead: PCD's lower learning rate is
# what lets its persistent chains keep up.

# %% [markdown]
# ### Exercise: how many temperatures AIS needs (notebook 01, exercise 2)
# Vary `n_betas` in AIS (1,000; 5,000; 14,500): how do the estimate and its spread change?

# %%
### BEGIN SOLUTION
exact = rbm.log_partition_exact(pcd_model)
for n_betas in profile.pick(quick=(100, 500, 1450), full=(1000, 5000, 14500)):
    ais = rbm.log_partition_ais(pcd_model, n_betas=n_betas, n_runs=profile.pick(quick=20, full=100),
                                generator=torch.Generator().manual_seed(seed))
    print(f"n_betas = {n_betas:5d}: log Z = {ais.log_z:.2f} (range {ais.log_z_low:.2f} to {ais.log_z_high:.2f}); "
          f"exact {exact:.2f}")
### END SOLUTION

# %% [markdown] tags=["solution"]
# **What to look for.** With few temperatures the runs' weights spread over many nats, a few runs carry the mean,
# and the range is wide (its lower end may be `-inf`); the estimate tends to fall below the exact value, since the
# logarithm of an unbiased mean is biased low. More temperatures shrink the spread and close the gap.

# %% [markdown]
# ### Exercise: `log(1 + exp(x))` in the free energy (notebook 01, exercise 3)
# When do the first NaNs appear if the free energy uses `log(1 + exp(x))`?

# %%
### BEGIN SOLUTION
x = torch.tensor([80.0, 88.0, 88.8, 89.0, 100.0])
print("log(1 + exp(x)):", torch.log(1 + torch.exp(x)).tolist(), " softplus:", F.softplus(x).tolist())
hidden_inputs = pcd_model.c + x_test @ pcd_model.W
print(f"largest hidden input of the trained model on the test set: {hidden_inputs.max():.1f}")
### END SOLUTION

# %% [markdown] tags=["solution"]
# **What to look for.** In float32 `exp(x)` overflows to `inf` just above 88.7, so $F$ becomes $-\infty$ and the
# differences of free energies (pseudo-likelihood, AIS) become NaN. Training fails only once some hidden input
# $c_j + \mathbf v^\top W_{:j}$ passes 88: the printed maximum of a trained model shows how far away that is; weights
# grow with training (and with a large learning rate), so the crash comes late and without warning.

# %% [markdown]
# ### Exercise: the momentum jump (notebook 01, exercise 4)
# Keep the momentum at 0.5 (`momentum=(0.5, 0.5)`) or halve `lr`: does the jump when the momentum rises go away?

# %%
### BEGIN SOLUTION
switch_epochs = profile.pick(quick=1, full=5)
notebook_lr = runs.settings("rbm", profile).lr  # notebook 01's learning rate
for label, settings in [("momentum 0.5 then 0.9", {}), ("momentum 0.5 throughout", {"momentum": (0.5, 0.5)}),
                        ("half the learning rate", {"lr": notebook_lr / 2})]:
    model = rbm.RBM(784, n_hidden, generator=torch.Generator().manual_seed(seed))
    history = rbm.fit(model, x_train, epochs=switch_epochs + 1, batch_size=100, persistent=True,
                      lr=settings.get("lr", notebook_lr), momentum=settings.get("momentum", (0.5, 0.9)),
                      momentum_epochs=switch_epochs, progress="none", seed=seed,
                      evaluate=lambda m=model: {"pseudo_ll": rbm.pseudo_log_likelihood(m, x_test)})
    print(f"{label:25s} pseudo-likelihood per epoch: {[round(p, 1) for p in history['pseudo_ll']]}, "
          f"test log-likelihood {test_log_likelihood(model):.1f}")
### END SOLUTION

# %% [markdown] tags=["solution"]
# **What to look for.** The epoch after the switch to 0.9: with constant momentum (or a smaller step) the monitors
# do not jump back, because the parameters never move faster than the persistent chains can follow; the price is a
# slower rise of the log-likelihood over the same epochs.

# %% [markdown]
# ### Exercise: another Keras backend (notebook 02, exercise 1)
# What changes besides the speed when notebook 02 runs with `KERAS_BACKEND=torch` or `jax`?

# %%
### BEGIN SOLUTION
keras_model = rbm_keras.from_pytorch(pcd_model)
difference = (torch.as_tensor(ops.convert_to_numpy(keras_model.free_energy(x_test[:100].numpy())))
              - pcd_model.free_energy(x_test[:100])).abs().max()
print(f"backend {keras.backend.backend()}: largest difference of F(v) from PyTorch's on 100 test images: "
      f"{difference:.1e}")
### END SOLUTION

# %% [markdown] tags=["solution"]
# **What to look for.** Only float32 rounding (a difference of order 1e-5 on free energies of hundreds): the model,
# its training step and its random numbers are written in `keras.ops` and `keras.random`, which every backend
# implements. Restart Jupyter with another `KERAS_BACKEND` to print the same line on that backend; the random
# streams differ between backends, so trained models agree in their figures, not digit by digit.

# %% [markdown]
# ### Exercise: the reference code's averaged free energy (notebook 02, exercise 2)
# Multiply the learning rate of $W$ and $\mathbf c$ by $1/n_{\text{hidden}}$: how far does the test log-likelihood
# fall? (Here with PyTorch's RBM, whose update is one line to change.)

# %%
### BEGIN SOLUTION
def train_scaled(scale_w_c):
    model = rbm.RBM(784, n_hidden, generator=torch.Generator().manual_seed(seed))
    model.init_visible_bias(x_train)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        for batch in x_train[torch.randperm(len(x_train), generator=generator)].split(100):
            dW, db, dc, _ = model.contrastive_divergence(batch, persistent=True)
            model.sgd_step((dW * scale_w_c, db, dc * scale_w_c), lr=0.005, momentum=0.5, weight_decay=2e-4)
    return model


print(f"test log-likelihood: the plain free energy {test_log_likelihood(train_scaled(1.0)):.1f}, averaged over "
      f"hidden units {test_log_likelihood(train_scaled(1 / n_hidden)):.1f} nats")
### END SOLUTION

# %% [markdown] tags=["solution"]
# **What to look for.** Averaging the free energy over hidden units divides the gradient of $W$ and $\mathbf c$ by
# $n_{\text{hidden}}$ (500 in the reference code): the weights barely move, and the model stays close to the
# base-rate model its visible biases start from. The gap grows with $n_{\text{hidden}}$ and with training time.

# %% [markdown]
# ### Exercise: shared thresholds (notebook 02, exercise 3)
# Draw the negative samples with one row of uniform numbers shared by the whole batch, and train: what happens to the
# pseudo-likelihood and to the samples?

# %%
### BEGIN SOLUTION
def train_thresholds(shared):
    W, b, c = torch.zeros(784, n_hidden), torch.zeros(784), torch.zeros(n_hidden)
    W.normal_(0, 0.01, generator=torch.Generator().manual_seed(seed))
    generator = torch.Generator().manual_seed(seed)
    chains = (torch.rand(100, 784, generator=generator) < 0.5).float()
    for _ in range(epochs):
        for batch in x_train.split(100):
            rows = 1 if shared else len(chains)
            u_h, u_v = torch.rand(rows, n_hidden, generator=generator), torch.rand(rows, 784, generator=generator)
            chains = pcd_chains(chains, W, b, c, [(u_h.expand(len(chains), -1), u_v.expand(len(chains), -1))])
            dW, db, dc = cd_statistics(batch, chains, W, c)
            W, b, c = W + 0.05 * dW, b + 0.05 * db, c + 0.05 * dc
    model = rbm.RBM(784, n_hidden)
    with torch.no_grad():
        model.W.copy_(W), model.b.copy_(b), model.c.copy_(c)
    return model, chains


for shared in (False, True):
    model, chains = train_thresholds(shared)
    distinct = len(torch.unique(chains, dim=0))
    print(f"{'shared' if shared else 'independent'} thresholds: pseudo-likelihood "
          f"{rbm.pseudo_log_likelihood(model, x_test, generator=torch.Generator().manual_seed(seed)):.1f}, "
          f"{distinct} distinct states among the 100 chains")
### END SOLUTION

# %% [markdown] tags=["solution"]
# **What to look for.** With shared thresholds the chains are driven by the same random numbers, so they fall into
# the same states (few distinct chains): the negative phase sees one or a few samples instead of 100, the gradient
# estimate is poor, the pseudo-likelihood lower, and the samples all look alike.

# %% [markdown]
# ### Exercise: CD-1 against PCD in Keras (notebook 02, exercise 4)
# Train the Keras RBM with CD-1 (`persistent=False`, `lr=0.05`) and compare with PCD.

# %%
### BEGIN SOLUTION
for persistent, lr in ((False, 0.05), (True, 0.005)):
    keras_model = rbm_keras.RBM(784, n_hidden, seed=seed)
    rbm_keras.fit(keras_model, x_train.numpy(), epochs=epochs, batch_size=100, lr=lr, persistent=persistent,
                  progress="none")
    print(f"Keras RBM, {'PCD-1' if persistent else 'CD-1'}: test log-likelihood "
          f"{rbm_keras.log_likelihood(keras_model, x_test.numpy()):.1f} nats")
### END SOLUTION

# %% [markdown] tags=["solution"]
# **What to look for.** The same ordering as in CD-1 against PCD above, within the run-to-run spread: the Keras RBM
# is the same model with the same update, so CD and PCD compare the same way on every backend.
