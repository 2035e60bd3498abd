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
# # 04 · A deep energy-based model of images, trained with Langevin samples
#
# The lecture defines energy-based models and Langevin sampling and sends you to Foster (*Generative Deep Learning*,
# 2nd ed., ch. 7, a Keras port of the UvA deep-learning tutorial 8) and to Du & Mordatch (2019) for code. This
# notebook builds that model in PyTorch with `genmodels.ebm`, trains it on digits, and looks hard at what it learned,
# including where the tutorials' recipe is not what it seems.
#
# You will learn
# - why the partition function $Z$ drops out of the gradient, leaving a positive and a negative phase;
# - Langevin sampling of images with a replay buffer, and the temperature the usual settings really imply;
# - how to judge samples by numbers (a classifier's confidence) rather than by eye;
# - the energy as an out-of-distribution score, and what long-run chains reveal about the learned density;
# - why training diverges, and what the course's loop does about it.

# %% tags=["parameters"]
profile = None  # "quick" (seconds, CPU) or "full" (real results); None: GENMODELS_PROFILE, else "full"
device = None  # None picks CUDA, then Apple MPS, then the CPU
seed = 0
epochs = None  # None: the run's (genmodels.runs.RUNS["ebm"], printed below), for the profile and device
n_steps = None  # Langevin steps per update while training; None: the run's
n_train = None  # training images; None: the run's (None there: the whole training split)
lr = None  # Adam's learning rate (β1 = 0); None: the run's

# %%
import math

import matplotlib.pyplot as plt
import torch

import genmodels
from genmodels import data, ebm, explorers, judge, plotting, runs, training

profile, device = genmodels.setup(profile, device, seed)
settings = runs.settings("ebm", profile, epochs=epochs, n_steps=n_steps, n_train=n_train, lr=lr)
print(settings)  # the run notebook 08 and the command line train too
n_samples = profile.pick(quick=200, full=1000)  # generated images judged by the classifier

# %% [markdown]
# ## An energy, a density, and why $Z$ drops out of the gradient
#
# An energy-based model assigns every image $x$ a number $E_\theta(x)$, here computed by a small convolutional
# network, and defines
# $$p_\theta(x) = \frac{e^{-E_\theta(x)}}{Z_\theta}, \qquad Z_\theta = \int e^{-E_\theta(x)}\,dx .$$
# Low energy means high probability. $Z_\theta$ is an integral over all $784$-pixel images: we cannot compute it. We
# do not need to. The gradient of the log-likelihood of one image is
# $$\nabla_\theta \log p_\theta(x) = -\nabla_\theta E_\theta(x) - \nabla_\theta \log Z_\theta, \qquad
#   \nabla_\theta \log Z_\theta = \frac{1}{Z_\theta}\int -\nabla_\theta E_\theta(x')\, e^{-E_\theta(x')}\,dx'
#   = -\,\mathbb{E}_{x' \sim p_\theta}\big[\nabla_\theta E_\theta(x')\big],$$
# so that, averaged over the data,
# $$-\nabla_\theta\, \mathbb{E}_{\text{data}}[\log p_\theta(x)]
#   = \underbrace{\mathbb{E}_{\text{data}}[\nabla_\theta E_\theta(x)]}_{\text{positive phase}}
#   - \underbrace{\mathbb{E}_{p_\theta}[\nabla_\theta E_\theta(x')]}_{\text{negative phase}} .$$
# In the lecture's words: the **positive phase** lowers the energy of the data, the **negative phase** raises the
# energy of the model's own samples. $Z$ has become an expectation over the model, which samples estimate. It is
# the same gradient as the RBM's (notebook 01), with Langevin chains in place of Gibbs chains. As a loss to minimise:
# $$\mathcal{L} = \overline{E_\theta(x_{\text{data}})} - \overline{E_\theta(x_{\text{samples}})}
#   + \alpha\,\overline{E_\theta(x_{\text{data}})^2 + E_\theta(x_{\text{samples}})^2},$$
# the samples held fixed; the last term ($\alpha = 0.1$) keeps the energies near zero, because the first two fix
# only their differences (`ebm.contrastive_loss`; the tests check its gradient against the formula).
#
# ## The data

# %% tags=["nbval-check-output"]
dataset = data.load_data(profile)
x_train, x_test = dataset.x_train[:settings.n_train], dataset.x_test
print(dataset)
x = ebm.to_model_range(x_train[:1000])
print(f"training on {len(x_train):,} images; the network sees x = 2·image - 1, shape {tuple(x.shape[1:])}, "
      f"in [{x.min().item():.0f}, {x.max().item():.0f}], mean {x.mean().item():.2f}")

# %% [markdown]
# The network works on $[-1, 1]$, the tutorial's range, so that its step sizes carry over; everything we pass in or
# get out is grey levels in $[0, 1]$. Most pixels are background, so the mean sits near $-1$.
#
# For the out-of-distribution test at the end we also need images of another kind: Fashion-MNIST when we train on
# MNIST, MNIST when the full profile had to fall back to Fashion-MNIST.

# %% tags=["nbval-check-output"]
other_name = "fashion-mnist" if dataset.name == "MNIST" else "mnist"
try:
    x_other, _ = data.load_split(other_name, "test", progress=False)
except data.DataNotFoundError:
    other_name, x_other = "inverted test images", 1 - x_test  # a last resort that needs no download
print(f"other data set: {other_name}, {len(x_other):,} images")

# %% [markdown]
# ## The energy network and its replay buffer
#
# The tutorial's network: four strided convolutions (1 → 16 → 32 → 64 → 64 channels) with the smooth SiLU (Swish)
# activation, then two linear layers to one number. Smoothness matters: Langevin sampling follows $\nabla_x E$, and
# a ReLU network's input gradient is piecewise constant. Our network returns $E(x)$; the tutorial's returns $-E(x)$.
# The **replay buffer** holds the last states of earlier chains, as many as the run's `buffer_size` (printed below
# with the model; the UvA tutorial (Lippe 2022) keeps 8,192). It is a module buffer, so it is saved in every
# checkpoint and a resumed run continues its chains.

# %% tags=["nbval-check-output"]
model = runs.build(settings, device, seed=seed)  # ebm.EnergyModel(...), the tutorial's network and buffer
print(model)
print(f"{sum(p.numel() for p in model.parameters()):,} parameters; replay buffer {tuple(model.buffer.shape)}")

# %% [markdown]
# ## Langevin on images, and the temperature it really runs at
#
# Each training step takes as many chains as the batch has images, a fraction `restart` of them restarted from
# uniform noise (the tutorial's 5 %, the run's printed above) and the rest continuing states of the buffer, and moves
# them by Langevin steps on $E$,
# $$x \leftarrow \operatorname{clamp}\big(x - \eta\, \operatorname{clamp}(\nabla_x E(x), \pm 0.03) + \sigma w,\
#   -1,\ 1\big), \qquad w \sim N(0, I),$$
# with the tutorial's $\eta = 10$ and $\sigma = 0.005$ (`ebm.TUTORIAL_SAMPLER`; `langevin.ula` runs it, with a
# projection and a gradient clamp). Generalising notebook 03's result (its exercise on the noise scale): for small steps
# $x' = x - \eta\nabla E + \sigma w$ samples $e^{-E/T}$ with the temperature $T = \sigma^2 / (2\eta)$; ULA proper
# has $\sigma = \sqrt{2\eta}$, i.e. $T = 1$.

# %% tags=["nbval-check-output"]
tutorial = ebm.TUTORIAL_SAMPLER
print(f"tutorial: eta = {tutorial.step_size:g}, sigma = {tutorial.noise:g} -> T = sigma^2/(2 eta) = "
      f"{tutorial.temperature:.3g}")
print(f"sampling e^(-E) (T = 1) with eta = {tutorial.step_size:g} needs sigma = sqrt(2 eta) = "
      f"{math.sqrt(2 * tutorial.step_size):.2f}: "
      f"{math.sqrt(2 * tutorial.step_size) / tutorial.noise:.0f} times more noise")
print(f"at T = {tutorial.temperature:.3g}, an energy difference of 0.001 is a probability ratio of "
      f"e^({0.001 / tutorial.temperature:.0f})")
sampler = ebm.Sampler(n_steps=settings.n_steps)  # the tutorial's settings, with the run's steps per update
print(f"training sampler: {sampler}")

# %% [markdown]
# So the tutorial's "Langevin" chains are noisy gradient descent on $E$: at $T \approx 10^{-6}$ they slide to the
# nearest low-energy image and stay. A noise of $\sigma = 4.47$ per step on pixels in $[-1, 1]$ would be pure noise.
# This is not a bug to fix in passing: Nijkamp et al. (2019, 2020) showed that such short-run chains from noise
# make a good *generator* while $e^{-E}$ itself is not a valid model of the data. We come back to this below.
#
# ## Training
#
# Adam with $\beta_1 = 0$ (momentum would chase a moving negative phase), gradient norm clipped to 0.1, the
# learning rate multiplied by 0.97 after each epoch; all through the course's one training loop, which checks after
# every epoch that the loss and the parameters are finite.
#
# **What we chose** (the run `ebm`, whose settings the second line of this notebook prints). The tutorial trains 60
# epochs with 60 Langevin steps per update and a learning rate of $10^{-4}$, hours on a CPU. On a 2-core CPU the full
# profile takes a few epochs of the training split with fewer steps per update and a larger learning rate (still
# stable with the clipping and the $\alpha E^2$ term), sized so that the whole notebook fits the README's ten minutes
# per notebook. On a GPU the full profile trains as the tutorial does; the notebook's first line says which lengths
# apply. The quick profile trains a couple of epochs on a few thousand images: seconds, enough to tell digits from
# noise, not to draw them.

# %%
history = runs.train(model, dataset, settings, seed=seed, teaching=True)  # ebm.fit with the run's settings
plotting.plot_history(history, ["energy_data", "energy_samples", "contrastive"])

# %% [markdown]
# Both mean energies sit near zero (the $\alpha E^2$ term), the data's below the samples'. The contrastive term
# $\overline{E(\text{data})} - \overline{E(\text{samples})}$ is not a likelihood: it stays negative and noisy while
# the model improves, because the samples improve with it.
#
# ## Samples: from the buffer and from fresh noise
#
# A model that generates must do it from noise: the replay buffer is training's memory, not a sampler a user can call.
# `ebm.GENERATE` is the course's one generation sampler (notebook 08 measures the same): the tutorial's Langevin step
# from uniform noise, for the number of steps it prints. The same sampler also continues states of the buffer.

# %%
print(f"generation sampler: {ebm.GENERATE}")
steps = ebm.GENERATE.n_steps
from_buffer = ebm.generate(model, 32, from_buffer=True, seed=seed)
samples = ebm.generate(model, n_samples, seed=seed)  # from uniform noise
plotting.show_images(from_buffer, ncols=16, title=f"{steps} steps from the replay buffer")
plotting.show_images(samples[:32], ncols=16, title=f"{steps} steps from uniform noise")

# %% [markdown]
# Why the two grids can differ. The energy is shaped only where training's negative samples lie, and a negative is
# a chain that has run `n_steps` per update since it last restarted from noise, which happens to a fraction `restart`
# of the chains at each draw: on average `n_steps / restart` steps (`ebm.mean_steps_from_noise`). The tutorial's
# negatives are old chains; the buffer then holds good images, but a short chain from noise meets energy that training
# never shaped. The CPU runs of this notebook restart more chains, so their negatives are about as old as the
# generation sampler's chains: generating from noise is what training practised (the idea of Nijkamp et al. 2019's
# short-run chains). The price is a buffer of younger, rougher states. A buffer state must also be drawn many times
# to become a sample at all:

# %%
updates = settings.epochs * math.ceil(len(x_train) / settings.batch_size)
for name, n_steps, restart in (("the tutorial", ebm.TUTORIAL_SAMPLER.n_steps, ebm.EnergyModel().restart),
                               ("this run", settings.n_steps, settings.restart)):
    print(f"{name:12s}: negatives about {ebm.mean_steps_from_noise(n_steps, restart):5,.0f} Langevin steps from noise "
          f"({n_steps} per update, restart {restart:g}); generation runs {steps}")
print(f"this run drew each of its {settings.buffer_size:,} buffer states about "
      f"{updates * settings.batch_size / settings.buffer_size:.1f} times in {updates} updates")

# ### How good are they? A classifier's opinion, in numbers
#
# The course's judge (`genmodels.judge`: a small convolutional classifier, trained once on the training images and
# kept as a checkpoint; notebook 08 measures every model of the week with it) labels the samples. We print the
# fraction it labels with confidence above 0.9, and how many it puts in each class, beside the same figures for
# test images and for uniform noise.

# %%
referee = judge.train_judge(dataset, seed=seed, device=device)
noise = torch.rand(n_samples, 784, generator=torch.Generator().manual_seed(seed))
for name, images in {"test images": x_test[:n_samples], f"samples (noise + {steps} steps)": samples,
                     "uniform noise": noise}.items():
    p = judge.probabilities(referee, images)  # p(y|x), one row per image
    confident, counts = float((p.max(1).values > 0.9).double().mean()), p.argmax(1).bincount(minlength=10).tolist()
    print(f"{name:28s} confident > 0.9: {confident:6.1%}   per class: {counts}")
profile.note(f"{settings.epochs} epochs on {len(x_train):,} images, {settings.n_steps} Langevin steps per update",
             "training on the whole training split, long enough for its samples to be worth judging")

# %% [markdown]
# A good generator scores near the test images on both counts: most samples labelled confidently, and the classes
# about equally often. A generator that draws a few easy shapes shows up as a lopsided histogram (mode collapse),
# one that draws smudges as low confidence. Read the noise row first: a plain classifier is overconfident on images
# unlike any it was trained on, so a confidence figure means something only beside it, and samples that score below
# noise (as after the quick profile's seconds of training) are far from the data.
#
# ## The generation sampler under your hand
#
# The sampler has four knobs: the number of Langevin steps, the step $\eta$, the noise $\sigma$ (together the
# temperature $\sigma^2/(2\eta)$) and where the chains start. `explorers.EnergyModelExplorer` runs this model's chains
# at any setting and asks the judge what it sees, as above. Four settings, one row each: the generation sampler
# stopped early, as it is, run five times longer, and started from the replay buffer.

# %%
explorer = explorers.EnergyModelExplorer(model, referee, n=48, seed=seed)
explorer.static([{"n_steps": 10}, {}, {"n_steps": 200}, {"start": "buffer"}])

# %% [markdown]
# Compare each row's classes and confidence with the test images' and the noise's above, and read the printed mean
# energies. After a few steps the chains still carry their start's speckle; run longer, they descend to lower energy
# and cleaner strokes, and the judge is more often confident, while the number of classes it sees need not grow
# (lower energy is not the same as more digits, as the long-run chains below show); the buffer's chains start where
# training left them. In JupyterLab (`make lab`, the full profile) the cell below shows the sliders, and each redraw
# prints the setting's temperature, the judge's counts and the time it took.

# %%
explorers.show(explorer, profile)

# %% [markdown]
# ## Energies as a score: test data, noise, samples, another data set

# %%
energies = {"test images": ebm.energy(model, x_test), "uniform noise": ebm.energy(model, noise),
            "samples": ebm.energy(model, samples), other_name: ebm.energy(model, x_other)}
everything = torch.cat(list(energies.values()))
edges = torch.linspace(everything.min(), everything.max(), 61).numpy()  # one set of 60 bins for all four sets
for name, e in energies.items():
    plt.hist(e.numpy(), bins=edges, histtype="step", lw=1.5, label=f"{name} (mean {e.mean():.2f})")
plt.yscale("log")  # counts: a set whose energies barely spread fills one tall bin, and the others stay visible
plt.xlabel("E(x)")
plt.ylabel("images per bin")
plt.legend(fontsize=8)
plt.show()
auc = ebm.ood_auc(energies["test images"], energies[other_name])
print(f"ROC AUC of the energy as an out-of-distribution score, {dataset.name} test against {other_name}: {auc:.3f}")

# %% [markdown]
# An energy is an unnormalised log-density, so it can rank images: the AUC is the probability that an image of the
# other data set gets a higher energy than a test image of ours (0.5: chance, 1: perfect). Noise sits far up; the
# samples sit low, often lower than the data, since the chains were descending $E$. An AUC can also fall below 0.5:
# likelihood-based models are known to give simpler images from another data set *higher* density than their own
# test images (Nalisnick et al. 2019, "Do deep generative models know what they don't know?"); an exercise
# in `exercises/04_energy_based_model` asks whether this model, trained on Fashion-MNIST and scored on MNIST, does so.
#
# ## What long-run chains do
#
# Training only ever ran chains for tens of steps at a time. Run some for much longer, first with the usual settings
# (T ≈ 1.25·10⁻⁶), then with the noise matched to the step (T = 1: Langevin sampling of $e^{-E}$ restricted to the
# box $[-1, 1]^{784}$ by the clamp, with ULA's bias from its finite step), and watch both the images and their
# energies.

# %%
n_long = profile.pick(quick=400, full=2000)
matched = ebm.Sampler(n_steps=n_long, step_size=0.01, noise=math.sqrt(2 * 0.01), grad_clamp=None)  # T = 1
for name, setting in {"usual (T = 1.25e-6)": ebm.Sampler(n_steps=n_long), "matched (T = 1)": matched}.items():
    chains = ebm.generate(model, 8, setting, seed=seed, thin=n_long // 4)  # (4 snapshots, 8 chains, 1, 28, 28)
    plotting.show_images(chains.reshape(-1, 28, 28), ncols=8, title=f"{name}: each column one "
                         f"chain, after {n_long // 4}, {n_long // 2}, {3 * n_long // 4}, {n_long} steps")
    print(f"{name}: mean energy of the snapshots", [round(ebm.energy(model, c).mean().item(), 2) for c in chains],
          f"(test images {energies['test images'].mean():.2f})")

# %% [markdown]
# Two things to read here. With the usual settings, long chains settle below the energy of real test images (compare
# the printed snapshots with the test images' mean), and the images drift away from the digits the short chains
# showed (thicker, saturated, or
# blank; Nijkamp et al. call this oversaturation). The low-energy regions of $E$ are not where the data are. With the
# noise matched to the step, the chains sample $e^{-E}$ itself, and they look like noise: the learned energy varies
# by a few units over the whole image space, far too little to concentrate $e^{-E}$ on 784-pixel digits. Both say the
# same thing: the model is a good short-run generator and a useful score, but not a valid density of the data.
#
# ## Instability, honestly
#
# The most common complaint about these models: training diverges, energies blow up or turn NaN. The causes are
# built in. The loss is a difference of two energies with no floor: if the network can push the samples' energy up
# faster than the sampler finds new low-energy images, both energies run off. Below we train a copy without the
# $\alpha E^2$ term, without gradient clipping and with ten times the learning rate, and compare.

# %%
trial_lr = 5e-4  # this demonstration's own rate, five times the tutorial's (not a run of the course)
trials = {"tutorial's safeguards": dict(lr=trial_lr, alpha=0.1, grad_clip=0.1),
          "no regulariser, no clipping, 10x lr": dict(lr=10 * trial_lr, alpha=0.0, grad_clip=None)}
for name, trial_settings in trials.items():
    copy = ebm.EnergyModel(buffer_size=1024, generator=torch.Generator().manual_seed(seed)).to(device)
    try:
        trial = ebm.fit(copy, x_train[:1024], epochs=2, sampler=ebm.Sampler(n_steps=10), progress="none",
                        seed=seed, **trial_settings)
        print(f"{name:38s} E(data) {trial['energy_data'][-1]:9.2f}   E(samples) {trial['energy_samples'][-1]:9.2f}")
    except training.TrainingDiverged as err:
        print(f"{name:38s} {str(err)[:100]}...")

# %% [markdown]
# Without the safeguards the energies drift several times further from zero within the same two epochs (compare the
# two printed lines); trained for longer, they keep drifting until the loss is no longer finite. What the course
# does about it:
# - the $\alpha E^2$ term and gradient clipping (0.1) as in the tutorial, and Adam with $\beta_1 = 0$;
# - gradients for the sampler always in float32, even when training runs under bfloat16 autocast on a GPU;
# - the training loop checks the loss and the parameters after every epoch, stops with `TrainingDiverged` naming
#   the epoch, and keeps the checkpoint of the last good epoch (with its replay buffer), so you can lower the
#   learning rate and resume from there; a sampler that meets NaN energies mid-epoch stops the same way.
#
# Two bugs in Foster's Keras port are worth knowing. It keeps the buffer in a Python list, which forces eager
# execution, and, when the last batch is short (96 images against 128 samples), splits the batch in halves
# that mix data and samples, so the "positive" phase contains samples. `ebm.loss_fn` draws exactly as many chains
# as the batch has images.
#
# ## What to take away
# - $Z$ drops out of the likelihood gradient: lower the energy of data (positive phase), raise it on the model's
#   samples (negative phase), as for the RBM.
# - The tutorial's step 10 with noise 0.005 is a temperature of $1.25\cdot10^{-6}$: the chains are noisy gradient
#   descent. They make good short-run samples; the density $e^{-E}$ is not a model of the data (long chains show it).
# - A replay buffer can hold good images while chains from noise stay poor: the energy is shaped where training's
#   negatives were. To generate from noise, train against negatives about as young as the chains you will run.
# - Judge samples by numbers: a classifier's confidence and class histogram, beside test images and noise.
# - The energy ranks images: an out-of-distribution score, to be checked against the other data set it is meant to
#   separate (its AUC can fall below 0.5).
#
# ## Exercises
# The exercises for this notebook are in `exercises/04_energy_based_model.ipynb` (open it in `make lab`): write the
# contrastive loss, a replay-buffer draw, the sampler's temperature and a Langevin step on images yourself, each
# checked as you go; and answer this notebook's questions (the tutorial's settings, noise matched to the step, the
# restart fraction, the swapped data sets) with small runs that show the effect. Worked answers:
# `exercises/solutions/04_energy_based_model.ipynb`.
#
# Next: variational autoencoders (05), which have a likelihood bound we can compute, and samples in one pass.
