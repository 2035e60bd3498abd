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
# # Exercises 07 · The Ising model
#
# Goes with `notebooks/07_ising_rbm`. Implementation exercises: write one piece of the model; the cell after
# it checks it with `genmodels.exercises`, which names the mistake when it is a known one. Experiment
# exercises: the questions at the end of notebook 07. Run All works at any time: a function not written yet reports
# "not done yet". Spins are int8 tensors of ±1 with shape (..., L, L), on a periodic lattice.

# %% tags=["parameters"]
profile = None  # "quick" (seconds, CPU) or "full" (real results); None: GENMODELS_PROFILE, else "full"
seed = 0

# %%
import math

import torch

import genmodels
from genmodels import exercises, ising, rbm

profile, device = genmodels.setup(profile, "cpu", seed)

# %% [markdown]
# ## Implementation exercises
#
# ### Exercise 1: the energy
# $H(\mathbf s) = -\sum_{\langle ij \rangle} s_i s_j$ over the nearest-neighbour bonds, each bond once (the right and
# the lower neighbour of every site, wrapping around the edges).

# %%
def energy(spins):
    raise NotImplementedError("exercise 1: the energy")


# %% tags=["nbval-check-output"]
exercises.check_ising_energy(energy)

# %% [markdown]
# ### Exercise 2: the magnetisation
# $m = \frac1N \sum_i s_i$ per lattice.

# %%
def magnetisation(spins):
    raise NotImplementedError("exercise 2: the magnetisation")


# %% tags=["nbval-check-output"]
exercises.check_magnetisation(magnetisation)

# %% [markdown]
# ### Exercise 3: the local field
# $h_i = \sum_{j \in \mathrm{nn}(i)} s_j$, the sum of the four neighbours of every site.

# %%
def local_field(spins):
    raise NotImplementedError("exercise 3: the local field")


# %% tags=["nbval-check-output"]
exercises.check_local_field(local_field)

# %% [markdown]
# ### Exercise 4: a checkerboard Metropolis half-sweep
# Flipping $s_i$ costs $\Delta E = 2 s_i h_i$; accept where $u_i < e^{-\Delta E/T}$. Sites of one colour,
# $(i + j) \bmod 2 =$ `colour`, have no neighbours of that colour, so they are all tried at once. Return new spins.

# %%
def metropolis_half_sweep(spins, temperature, u, colour):
    raise NotImplementedError("exercise 4: a checkerboard Metropolis half-sweep")


# %% tags=["nbval-check-output"]
exercises.check_metropolis_half_sweep(metropolis_half_sweep)

# %% [markdown]
# ### Exercise 5: the exact log Z of a small lattice
# $\log Z = \log \sum_{\mathbf s} e^{-H(\mathbf s)/T}$ over all $2^{L^2}$ states ($L = 3$: 512), stably.
# `ising.all_states(L)` lists the states.

# %%
def exact_log_z(L, temperature):
    raise NotImplementedError("exercise 5: the exact log Z of a small lattice")


# %% tags=["nbval-check-output"]
exercises.check_exact_log_z(exact_log_z)

# %% [markdown]
# ### Exercise 6: the Boltzmann distribution
# $\log p(\mathbf s) = -H(\mathbf s)/T - \log Z$ for every state, given the states' energies.

# %%
def boltzmann_log_probabilities(energies, temperature):
    raise NotImplementedError("exercise 6: the Boltzmann distribution")


# %% tags=["nbval-check-output"]
exercises.check_boltzmann_log_probabilities(boltzmann_log_probabilities)

# %% [markdown]
# ## Experiment exercises
#
# RBMs on the $L = 4$ lattice (16 spins) have an exact KL from the Boltzmann distribution; the quick profile trains
# them for a few epochs.

# %%
L, n_samples, epochs = 4, profile.pick(quick=1000, full=20000), profile.pick(quick=3, full=50)


def train_ising_rbm(temperature, n_hidden=16, **settings):
    spins = ising.exact_samples(L, temperature, n_samples, generator=torch.Generator().manual_seed(seed))
    model = rbm.RBM(L * L, n_hidden, generator=torch.Generator().manual_seed(seed))
    rbm.fit(model, ising.spins_to_visible(spins), epochs=epochs, batch_size=100, progress="none", seed=seed,
            **{"lr": 0.05, **settings})
    return model

# %% [markdown]
# ### Exercise 7: CD-1, CD-10 and PCD below $T_c$ (notebook 07, exercise 1)
# Which one lowers the exact KL fastest below $T_c$, and why do persistent chains struggle with a two-spike
# distribution?

# %%
# exercise 7: your code here (CD-1, CD-10 and PCD below $T_c$ (notebook 07, exercise 1))

# %% [markdown]
# ### Exercise 8: the number of hidden units at $T_c$ (notebook 07, exercise 2)
# How does the error in the specific heat $c(T_c)$ fall with $\alpha = n_h / n_v$? (Notebook 07 uses $L = 8$ and
# 128 or 256 hidden units, minutes each; here the exact $L = 4$ lattice.)

# %%
# exercise 8: your code here (the number of hidden units at $T_c$ (notebook 07, exercise 2))

# %% [markdown]
# ### Exercise 9: critical slowing down (notebook 07, exercise 3)
# Measure τ of Metropolis at $T_c$ for growing L and fit $\tau \propto L^z$. Do the same for Wolff.

# %%
# exercise 9: your code here (critical slowing down (notebook 07, exercise 3))

# %% [markdown]
# ### Exercise 10: the RBM as a Monte Carlo proposal (notebook 07, exercise 4)
# Propose independent samples from a trained RBM and accept them with the Metropolis–Hastings ratio (exact for
# $L = 4$, where $q$ is known). How often is a proposal accepted at $T = 3$, and at $T_c$?

# %%
# exercise 10: your code here (the RBM as a Monte Carlo proposal (notebook 07, exercise 4))
