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
# # 00 · Data and set-up: the pipeline every notebook of week 13 uses
#
# Every hands-on notebook this week starts the same way: choose a **profile**, choose a **device**, load **MNIST**,
# and train with **one small training loop**. This notebook walks through that pipeline once, so that the model
# notebooks (restricted Boltzmann machines, Langevin sampling, variational autoencoders) can get straight to the
# point.
#
# You will learn
# - what the `quick` and `full` profiles are and how to switch between them;
# - how the data are found (or downloaded, checked and cached) and what they look like: a grid of digits, the class
#   balance, the pixel statistics, and the two ways of binarising grey levels;
# - how `genmodels.training.train` trains a model, keeps a history, writes checkpoints, resumes, and survives Ctrl-C.

# %% tags=["parameters"]
profile = None  # "quick" (seconds, CPU) or "full" (real results); None: GENMODELS_PROFILE, else "full"
device = None  # None picks CUDA, then Apple MPS, then the CPU; or "cpu", "cuda", ...
seed = 0

# %%
import numpy as np
import torch
import torch.nn.functional as F

from genmodels import data, get_profile, plotting, training
from genmodels.device import describe, get_device, seed_everything
from genmodels.paths import checkpoint_path

profile = get_profile(profile)  # 1. the profile: the notebook's value, or GENMODELS_PROFILE, or "full"
device = get_device(device, profile)  # 2. the device: the quick profile's CPU, else CUDA, Apple MPS or the CPU
seed_everything(seed)  # 3. every random generator (Python, NumPy, torch) seeded
print(f"{profile.name} profile, {describe(device)}, seed {seed}")

# %% [markdown]
# Every other notebook does these three steps in one call, which prints the same line:
# `profile, device = genmodels.setup(profile, device, seed)`.

# %% [markdown]
# ## Profiles
#
# The **quick** profile is what the tests and the committed notebook outputs use: MNIST's 10,000-image test split
# alone (the first 8,000 images to train, the last 2,000 to evaluate), the CPU, and a few seconds per notebook. The
# **full** profile trains on the 60,000-image training split, on the fastest device present, for real results.
#
# Which profile runs follows one rule: a value you set in the `parameters` cell above (`profile = "full"`) wins; when
# it says `None`, as every committed notebook does, the environment variable `GENMODELS_PROFILE` fills in (`make test`
# sets it to `quick`, `make run` to `full`); with neither, it is `full`. If you set one and the variable says
# another, `get_profile` prints one line saying which won.

# %% tags=["nbval-check-output"]
print(f"profile: {profile.name}, device type: {device.type}")
print(f"train images: {profile.n_train or 'all'}, test images: {profile.n_test or 'all'}")

# %% [markdown]
# ## The data
#
# `data.load_data` looks for the IDX files in a directory you pass, in the directories named by `GENMODELS_DATA`,
# in the repository's `data/` cache and in Debian's Fashion-MNIST package, and downloads what is missing from the
# official mirrors. Every file is checked (a checksum where one is known, else its header) and downloads are written
# atomically. In the full profile, if MNIST's training split cannot be had, it says so and uses Fashion-MNIST, or
# as a last resort scikit-learn's small 8×8 digits.

# %% tags=["nbval-check-output"]
dataset = data.load_data(profile)
print(dataset)
print(f"pixels: {dataset.x_train.dtype}, range [{dataset.x_train.min():.1f}, {dataset.x_train.max():.1f}]")

# %%
plotting.show_images(dataset.x_train[:30], labels=[dataset.classes[y] for y in dataset.y_train[:30]])

# %% [markdown]
# ## Class balance
#
# The ten classes are close to, but not exactly, equally frequent. A model of $p(x)$ that ignores the labels still
# inherits this balance: samples from a good generative model should show the digits in about these proportions.

# %% tags=["nbval-check-output"]
counts = np.bincount(dataset.y_train, minlength=10)
for name, count in zip(dataset.classes, counts, strict=True):
    print(f"{name:>8}: {count:5d}  ({count / counts.sum():.1%})")

# %% [markdown]
# ## Pixel statistics
#
# Most pixels are background. The mean image shows where the ink is; the histogram shows that grey levels pile up
# at 0 and near 1, which is why binary models (the RBM, the Bernoulli decoder of a VAE) describe MNIST well.

# %% tags=["nbval-check-output"]
x = dataset.x_train
print(f"mean pixel value: {x.mean():.3f}, standard deviation: {x.std():.3f}")
print(f"pixels exactly 0: {(x == 0).mean():.1%}, above 0.5: {(x > 0.5).mean():.1%}")

# %%
import matplotlib.pyplot as plt

fig, (left, right) = plt.subplots(1, 2, figsize=(8, 3))
left.imshow(x.mean(axis=0), cmap="gray_r")
left.set_title("mean image")
left.axis("off")
right.hist(x[x > 0].ravel(), bins=50)
right.set_title("grey levels of the non-zero pixels")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## Binarising
#
# Binary models need binary pixels. **Fixed** binarisation thresholds at 0.5. **Stochastic** binarisation draws each
# pixel as 1 with probability equal to its grey level: its average is the grey image. The likelihood literature on
# MNIST binarises the test set once, with a fixed seed, and re-draws the training images every epoch (dynamic
# binarisation). `data.binarize_once` is the first, with the one seed every notebook uses, so all of them see the
# same binary test images; `binarize_stochastic` with a generator is the second.

# %% tags=["nbval-check-output"]
fixed = data.binarize(x[:8])
stochastic = data.binarize_once(x[:8])
print(f"fraction of ones: grey mean {x[:8].mean():.3f}, fixed {fixed.mean():.3f}, stochastic {stochastic.mean():.3f}")

# %%
plotting.show_images(np.concatenate([x[:8], fixed, stochastic]), ncols=8, title="grey · fixed · stochastic")

# %% [markdown]
# ## The training loop
#
# All models this week train through `training.train`. The data sit on the device as one tensor (or a tuple, such
# as images and labels) and each batch is a slice of a random permutation. Give it a `loss_fn` (it does the backward
# pass and the optimiser step) or a `step_fn` that updates the model itself (contrastive divergence does). It
# returns a `History` of per-epoch means, writes a checkpoint after each epoch (atomically: a crash never leaves
# half a file), resumes from it, and if you press Ctrl-C (interrupt the kernel) it stops, keeps what has been learnt,
# says how to resume, and stops the cell. A loss or weights that turn NaN or infinite stop training at the end of the
# epoch with an error that names the likely cause, keeping the last good checkpoint. A checkpoint remembers the
# settings it was trained with: resuming with others is refused (pass `resume=False` to start afresh).
#
# A classifier is not a generative model, but it is the smallest honest test of the loop: softmax regression on the
# pixels.

# %%
x_train = dataset.x_train.reshape(len(dataset.x_train), -1)  # the loop copies arrays to the device once
x_test = torch.as_tensor(dataset.x_test.reshape(len(dataset.x_test), -1), device=device)
y_test = torch.as_tensor(dataset.y_test, device=device)

model = torch.nn.Linear(784, 10).to(device)
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)


def loss_fn(batch):
    images, labels = batch
    return F.cross_entropy(model(images), labels), {}


def evaluate():
    return {"test_accuracy": (model(x_test).argmax(1) == y_test).float().mean()}


epochs = profile.pick(quick=3, full=5)
checkpoint = checkpoint_path(f"00_softmax_{profile.name}.pt")
settings = dict(batch_size=128, loss_fn=loss_fn, optimizer=optimizer, evaluate=evaluate, checkpoint=checkpoint,
                progress=profile.progress)
history = training.train(model, (x_train, dataset.y_train), epochs=epochs, resume=False, **settings)

# %%
plotting.plot_history(history)

# %% [markdown]
# Asking for one more epoch with the same checkpoint resumes after the last completed one instead of starting
# again (`resume=True` is the default): this is what happens when a long run in the full profile is interrupted and
# you run the cell again.

# %%
history = training.train(model, (x_train, dataset.y_train), epochs=epochs + 1, **settings)
print(f"epochs in the history: {history.epochs}; test accuracy {history['test_accuracy'][-1]:.1%}")

# %% [markdown]
# ## What to take away
# - One switch, `profile`, decides the data size, the device and how training reports; the notebooks read the same
#   top to bottom in both profiles.
# - The data are verified and cached once; in the full profile a missing MNIST is said out loud, never hidden.
# - Binarised pixels are what the binary models of this week see; the test set is binarised once, with a seed.
#
# ## Exercises
# 1. Run this notebook with `GENMODELS_PROFILE=full`. Which dataset did it use, and how long did the loop take per
#    epoch on your machine?
# 2. Interrupt the kernel during the first training cell of the full profile, then run the next cell. Where does
#    training resume, and what does the history hold?
# 3. Compare the mean of `binarize_stochastic(x)` over many seeds with `x`. How many seeds until the difference is
#    below 0.01 in every pixel?
#
# Next: the restricted Boltzmann machine (`01_rbm_pytorch`).
