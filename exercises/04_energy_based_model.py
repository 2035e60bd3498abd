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
# # Exercises 04 · The energy-based model
#
# Goes with `notebooks/04_energy_based_model`. Implementation exercises: write one piece of the model's
# training; the cell after it checks it with `genmodels.exercises`, which names the mistake when it is a known one.
# Experiment exercises: the questions at the end of notebook 04. Their real answers need a GPU and an hour of
# training each (the full profile's settings say so); here each computes the smallest version that shows the effect,
# a small network trained for a few batches. Run All works at any time: a function not written yet reports
# "not done yet". Images inside the model live in [-1, 1], with shape (N, 1, 28, 28).

# %% tags=["parameters"]
profile = None  # "quick" (seconds, CPU) or "full" (real results); None: GENMODELS_PROFILE, else "full"
seed = 0

# %%
from dataclasses import replace

import torch

import genmodels
from genmodels import data, ebm, exercises

profile, device = genmodels.setup(profile, "cpu", seed)

# %% [markdown]
# ## Implementation exercises
#
# ### Exercise 1: the contrastive loss
# $\mathcal L = \overline{E(\text{data})} - \overline{E(\text{samples})} + \alpha\, \overline{E(\text{data})^2 +
# E(\text{samples})^2}$ (bars are means over the batch), one number, differentiable in both energies.

# %%
def contrastive_loss(energy_data, energy_samples, alpha):
    raise NotImplementedError("exercise 1: the contrastive loss")


# %% tags=["nbval-check-output"]
exercises.check_contrastive_loss(contrastive_loss)

# %% [markdown]
# ### Exercise 2: a replay-buffer draw
# The chains of each batch start from the buffer's states at the indices `slots`, except the first
# `round(restart * n)` of them, which restart from the fresh noise `noise`. The buffer itself must not change.

# %%
def buffer_draw(buffer, slots, noise, restart):
    raise NotImplementedError("exercise 2: a replay-buffer draw")


# %% tags=["nbval-check-output"]
exercises.check_buffer_draw(buffer_draw)

# %% [markdown]
# ### Exercise 3: the temperature of a sampler
# The chain $x' = x - \eta \nabla E(x) + \sigma w$ samples $e^{-E/T}$ with $T = \sigma^2 / (2\eta)$.

# %%
def temperature(step_size, noise):
    raise NotImplementedError("exercise 3: the temperature of a sampler")


# %% tags=["nbval-check-output"]
exercises.check_temperature(temperature)

# %% [markdown]
# ### Exercise 4: a Langevin step on images
# $x' = \operatorname{clamp}\big(x - \eta\, \operatorname{clamp}(\nabla E(x), \pm c) + \sigma w,\ -1, 1\big)$, with
# $c$ = `grad_clamp` and $w$ = `noise`.

# %%
def image_langevin_step(x, grad_energy, step_size, noise_std, noise, grad_clamp):
    raise NotImplementedError("exercise 4: a Langevin step on images")


# %% tags=["nbval-check-output"]
exercises.check_image_langevin_step(image_langevin_step)

# %% [markdown]
# ## Experiment exercises
#
# A small energy network, trained briefly, stands in for notebook 04's in the quick profile.

# %%
dataset = data.load_data(profile, verbose=False)
n_images = profile.pick(quick=64, full=None)
x_train, x_test = dataset.x_train[:n_images], dataset.x_test[:profile.pick(quick=64, full=2000)]
small = profile.pick(quick=dict(channels=(4, 8, 8, 8), hidden=8, buffer_size=128), full={})
sampler = replace(ebm.TUTORIAL_SAMPLER, n_steps=profile.pick(quick=5, full=60))
epochs = profile.pick(quick=1, full=20)


def train_ebm(images=x_train, sampler=sampler, **model_settings):
    model = ebm.EnergyModel(**{**small, **model_settings}, generator=torch.Generator().manual_seed(seed))
    ebm.fit(model, images, epochs=epochs, batch_size=64, sampler=sampler, progress="none", seed=seed)
    return model

# %% [markdown]
# ### Exercise 5: the tutorial's settings (notebook 04, exercise 1)
# Train with `ebm.TUTORIAL_TRAINING` (60 epochs, 60 Langevin steps) on a GPU and compare the classifier's figures.

# %%
# exercise 5: your code here (the tutorial's settings (notebook 04, exercise 1))

# %% [markdown]
# ### Exercise 6: noise matched to the step (notebook 04, exercise 2)
# Train with $\sigma = \sqrt{2\eta}$ and a small $\eta$: what happens to the samples and to the energies?

# %%
# exercise 6: your code here (noise matched to the step (notebook 04, exercise 2))

# %% [markdown]
# ### Exercise 7: how often chains restart (notebook 04, exercise 3)
# Set `restart` to 0 and to 0.5 in `ebm.EnergyModel`: how do the buffer's images and the samples from noise change?

# %%
# exercise 7: your code here (how often chains restart (notebook 04, exercise 3))

# %% [markdown]
# ### Exercise 8: train on Fashion-MNIST, score MNIST (notebook 04, exercise 4)
# Swap the roles of the two data sets. Is the out-of-distribution AUC symmetric?

# %%
# exercise 8: your code here (train on Fashion-MNIST, score MNIST (notebook 04, exercise 4))
