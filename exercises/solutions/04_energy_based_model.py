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
# ### Exercise: the contrastive loss
# $\mathcal L = \overline{E(\text{data})} - \overline{E(\text{samples})} + \alpha\, \overline{E(\text{data})^2 +
# E(\text{samples})^2}$ (bars are means over the batch), one number, differentiable in both energies.

# %%
def contrastive_loss(energy_data, energy_samples, alpha):
    ### BEGIN SOLUTION
    regulariser = alpha * (energy_data**2 + energy_samples**2).mean()
    return energy_data.mean() - energy_samples.mean() + regulariser
    ### END SOLUTION


# %% tags=["nbval-check-output"]
exercises.check_contrastive_loss(contrastive_loss)

# %% [markdown]
# ### Exercise: a replay-buffer draw
# The chains of each batch start from the buffer's states at the indices `slots`, except the first
# `round(restart * n)` of them, which restart from the fresh noise `noise`. The buffer itself must not change.

# %%
def buffer_draw(buffer, slots, noise, restart):
    ### BEGIN SOLUTION
    x0 = buffer[slots]  # indexing with a tensor copies
    n_new = round(restart * len(slots))
    x0[:n_new] = noise[:n_new]
    return x0
    ### END SOLUTION


# %% tags=["nbval-check-output"]
exercises.check_buffer_draw(buffer_draw)

# %% [markdown]
# ### Exercise: the temperature of a sampler
# The chain $x' = x - \eta \nabla E(x) + \sigma w$ samples $e^{-E/T}$ with $T = \sigma^2 / (2\eta)$.

# %%
def temperature(step_size, noise):
    ### BEGIN SOLUTION
    return noise**2 / (2 * step_size)
    ### END SOLUTION


# %% tags=["nbval-check-output"]
exercises.check_temperature(temperature)

# %% [markdown]
# ### Exercise: a Langevin step on images
# $x' = \operatorname{clamp}\big(x - \eta\, \operatorname{clamp}(\nabla E(x), \pm c) + \sigma w,\ -1, 1\big)$, with
# $c$ = `grad_clamp` and $w$ = `noise`.

# %%
def image_langevin_step(x, grad_energy, step_size, noise_std, noise, grad_clamp):
    ### BEGIN SOLUTION
    x = x - step_size * grad_energy.clamp(-grad_clamp, grad_clamp) + noise_std * noise
    return x.clamp(-1, 1)
    ### END SOLUTION


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
# ### Exercise: the tutorial's settings (notebook 04, exercise 1)
# Train with `ebm.TUTORIAL_TRAINING` (60 epochs, 60 Langevin steps) on a GPU and compare the classifier's figures.

# %%
### BEGIN SOLUTION
print("the tutorial's settings:", {k: v for k, v in ebm.TUTORIAL_TRAINING.items() if k != "sampler"},
      f"with {ebm.TUTORIAL_SAMPLER.n_steps} Langevin steps per batch")
model = train_ebm()
e_data, e_noise = ebm.energy(model, x_test).mean(), ebm.energy(model, torch.rand(len(x_test), 28, 28)).mean()
print(f"after {epochs} epoch(s) of {len(x_train)} images with {sampler.n_steps} steps: mean energy of test images "
      f"{e_data:.3f}, of uniform noise {e_noise:.3f}")
### END SOLUTION

# %% [markdown] tags=["solution"]
# **What to look for.** The real answer needs a GPU: 60 epochs of 60 Langevin steps on 60,000 images is about an
# hour there and a day on this CPU. Even the short run already gives test images a lower energy than noise; with the
# tutorial's settings the samples from noise become digits a classifier recognises, so the classifier's figures of
# notebook 04 (confident labels, a spread over the ten digits) rise.

# %% [markdown]
# ### Exercise: noise matched to the step (notebook 04, exercise 2)
# Train with $\sigma = \sqrt{2\eta}$ and a small $\eta$: what happens to the samples and to the energies?

# %%
### BEGIN SOLUTION
matched = replace(sampler, step_size=1e-3, noise=(2 * 1e-3) ** 0.5)
print(f"temperatures: the tutorial's {ebm.TUTORIAL_SAMPLER.temperature:.2g}, matched {matched.temperature:.2g}")
for name, chosen in (("tutorial", sampler), ("matched", matched)):
    model = train_ebm(sampler=chosen)
    samples = ebm.generate(model, 32, chosen)
    print(f"{name:8s}: energy of test images {ebm.energy(model, x_test).mean():.3f}, of its samples "
          f"{ebm.energy(model, samples).mean():.3f}; pixel spread of the samples {samples.std():.3f}")
### END SOLUTION

# %% [markdown] tags=["solution"]
# **What to look for.** With $\sigma = \sqrt{2\eta}$ the chain is a true sampler at $T = 1$, but with a small $\eta$
# it moves by $\sqrt{2\eta}$ per step, far too little in 60 steps: the samples stay close to their noisy starts, and
# the model learns to raise the energy of noise rather than of digit-like samples. The tutorial's $T \approx 10^{-6}$
# is noisy gradient descent, which reaches low-energy images quickly.

# %% [markdown]
# ### Exercise: how often chains restart (notebook 04, exercise 3)
# Set `restart` to 0 and to 0.5 in `ebm.EnergyModel`: how do the buffer's images and the samples from noise change?

# %%
### BEGIN SOLUTION
for restart in (0.0, 0.5):
    model = train_ebm(restart=restart)
    buffer = ebm.to_images(model.buffer)
    print(f"restart {restart:4}: buffer's mean pixel spread across states {buffer.std(0).mean():.3f}, "
          f"energy of the buffer {ebm.energy(model, buffer).mean():.3f}")
### END SOLUTION

# %% [markdown] tags=["solution"]
# **What to look for.** With no restarts the buffer keeps improving the same chains: its states become alike and
# generation from fresh noise, which training never practised, is poor. With half the chains restarted the model
# trains mostly on short chains from noise: the buffer stays noisy, but generation from noise works better. The
# tutorial's 5 % is a compromise.

# %% [markdown]
# ### Exercise: train on Fashion-MNIST, score MNIST (notebook 04, exercise 4)
# Swap the roles of the two data sets. Is the out-of-distribution AUC symmetric?

# %%
### BEGIN SOLUTION
try:
    x_fashion, _ = data.load_split("fashion-mnist", "test", progress=False)
except data.DataNotFoundError:
    x_fashion = None
    print("Fashion-MNIST not found: install Debian's fashion-mnist package (see the README)")
if x_fashion is not None:
    x_fashion = x_fashion[:len(x_train)]
    on_mnist, on_fashion = train_ebm(x_train), train_ebm(x_fashion)
    for name, model, own, other in (("MNIST", on_mnist, x_test, x_fashion), ("Fashion-MNIST", on_fashion, x_fashion,
                                                                              x_test)):
        auc = ebm.ood_auc(ebm.energy(model, own), ebm.energy(model, other))
        print(f"trained on {name}, scoring the other data set: AUC {auc:.2f}")
### END SOLUTION

# %% [markdown] tags=["solution"]
# **What to look for.** It is not symmetric: an energy (like a likelihood) rewards simple images, and MNIST's
# digits, mostly black background, are simpler than clothes, so a model trained on Fashion-MNIST can give MNIST a
# *lower* energy than its own data (an AUC below 0.5), as notebook 04 discusses.
