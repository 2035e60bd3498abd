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
# # 01 · Restricted Boltzmann machines in PyTorch
#
# A restricted Boltzmann machine (RBM) is an energy-based model with a layer of visible units $v$ (the pixels) and
# a layer of hidden units $h$, connected only across layers. This notebook states each piece of the theory, computes
# it with `genmodels.rbm`, checks it against brute force where the model is small enough, and then trains an RBM of
# 784 visible units on binarised images (the run `rbm`: its size and length are printed below, smaller and briefer in
# the quick profile).
#
# You will learn
# - the energy, the two conditionals and the free energy of a binary RBM, and why the free energy must be computed
#   with `softplus`;
# - contrastive divergence (CD-k) and persistent CD (PCD), and what the "loss" of the lecture's PyTorch code is;
# - how to monitor training (pseudo-likelihood, reconstruction error) and how to measure what matters, the test
#   log-likelihood, with annealed importance sampling (AIS).

# %% tags=["parameters"]
profile = None  # "quick" (seconds, CPU) or "full" (real results); None: GENMODELS_PROFILE, else "full"
device = None  # None picks CUDA, then Apple MPS, then the CPU
seed = 0
n_hidden = None  # None: the run's (genmodels.runs.RUNS["rbm"], printed below)
epochs = None  # None: the run's, for the profile

# %%
import torch

import genmodels
from genmodels import data, judge, measures, paths, plotting, rbm, rbm_fast, runs

profile, device = genmodels.setup(profile, device, seed)
settings = runs.settings("rbm", profile, n_hidden=n_hidden, epochs=epochs)  # the run notebook 08 and the CLI train
print(settings)

# %% [markdown]
# ## The energy and the two conditionals
#
# $$E(v, h) = -b^\top v - c^\top h - v^\top W h, \qquad p(v, h) = \frac{e^{-E(v, h)}}{Z}.$$
#
# With no connections inside a layer, the units of one layer are independent given the other:
#
# $$p(h_j = 1 \mid v) = \sigma\big(c_j + v^\top W_{:j}\big), \qquad
#   p(v_i = 1 \mid h) = \sigma\big(b_i + W_{i:} h\big).$$
#
# On a tiny RBM (4 visible, 3 hidden) we can write out all $2^7$ joint probabilities and check the first formula.

# %% tags=["nbval-check-output"]
tiny = rbm.RBM(4, 3, generator=torch.Generator().manual_seed(0), init_std=1.0)
v_all, h_all = rbm.binary_states(4), rbm.binary_states(3)  # all 16 visible and 8 hidden states
with torch.no_grad():
    joint = torch.stack([torch.exp(-tiny.energy(v_all, h.expand(16, 3))) for h in h_all], 1)  # (16 v, 8 h)
    brute = (joint[:, h_all[:, 0] == 1].sum(1) / joint.sum(1))[:4]
    print("p(h_0=1|v) by enumeration:", brute.numpy().round(4))
    print("sigma(c_0 + v.W_:0)      :", tiny.p_h_given_v(v_all)[:4, 0].numpy().round(4))

# %% [markdown]
# The sigmoid formula agrees with the brute-force ratio of sums: the conditionals factorise.
#
# ## The free energy, and why it needs `softplus`
#
# Summing the hidden units out gives the free energy, $p(v) = e^{-F(v)}/Z$:
#
# $$F(v) = -\log \sum_h e^{-E(v,h)} = -b^\top v - \sum_j \log\big(1 + e^{c_j + v^\top W_{:j}}\big)
#        = -b^\top v - \sum_j \operatorname{softplus}\big(c_j + v^\top W_{:j}\big).$$

# %% tags=["nbval-check-output"]
with torch.no_grad():
    brute = -torch.log(joint.sum(1))
    print("F(v) by enumeration:", brute[:4].numpy().round(4))
    print("F(v) with softplus :", tiny.free_energy(v_all[:4]).numpy().round(4))

# %% [markdown]
# The lecture's PyTorch code computes the softplus term as `log(1 + exp(x))`, exponentiating first. In float32,
# `exp` overflows above $x \approx 88.7$, and a trained MNIST RBM easily has hidden inputs that large. Here is a
# 784-pixel image whose hidden inputs are $0.2 \times 784 = 156.8$:

# %% tags=["nbval-check-output"]
big = rbm.RBM(784, 10)
with torch.no_grad():
    big.W.fill_(0.2)
    v = torch.ones(1, 784)
    x = v @ big.W + big.c
    print("exp-then-log:", (-(v @ big.b) - torch.log(1 + torch.exp(x)).sum(1)).item())
    print("softplus    :", round(big.free_energy(v).item(), 1))

# %% [markdown]
# The exp-then-log version returns `-inf` (and its gradient is NaN), while `softplus` (which computes
# $x + \log(1 + e^{-x})$ for large $x$) gives the right value, $-1568$.
#
# ## Contrastive divergence
#
# The gradient of the log-likelihood is a difference of two expectations, one over the data and one over the model:
#
# $$\frac{\partial \log p(v)}{\partial W_{ij}}
#   = \langle v_i h_j \rangle_{\text{data}} - \langle v_i h_j \rangle_{\text{model}}.$$
#
# The model term needs samples from $p(v)$. **CD-k** starts a Gibbs chain at each data vector and stops after $k$
# steps; **PCD** keeps a set of persistent chains running across parameter updates (Tieleman 2008). Following
# Hinton's practical guide, the hidden states that drive the chain are sampled, and the final visible step and both
# hidden terms use probabilities, which lowers the noise at no cost.
#
# The lecture's code trains with the "loss" $\overline{F(v)} - \overline{F(v^-)}$ (the negative samples $v^-$
# held fixed). Its gradient is exactly minus the CD statistics, but its *value* is not a log-likelihood: it says
# nothing about how good the model is, as we see on a tiny RBM whose likelihood we can compute.

# %% tags=["nbval-check-output"]
small = rbm.RBM(6, 4, generator=torch.Generator().manual_seed(1), init_std=1.0)
v6 = rbm.bernoulli(torch.full((500, 6), 0.3), torch.Generator().manual_seed(2))
g = torch.Generator().manual_seed(3)
dW, db, dc, v_neg = small.contrastive_divergence(v6, k=1, sample_visible=True, generator=g)
surrogate = small.free_energy(v6).mean() - small.free_energy(v_neg).mean()
surrogate.backward()
print("surrogate gradient = -CD statistics:", torch.allclose(-small.W.grad, dW, atol=1e-6))
print(f"surrogate 'loss' {surrogate.item():.2f}   exact mean log p(v) {rbm.log_likelihood(small, v6):.2f} nats")

# %% [markdown]
# Same gradient, but a number unrelated to the likelihood: to compare models we need $\log Z$ (below).
#
# ## Data
#
# We binarise the grey levels once, stochastically (each pixel is on with probability equal to its intensity), as
# Salakhutdinov & Murray (2008) did, and flatten each image to a vector of 784 pixels: `data.binary_vectors`, which
# binarises with `data.binarize_once` and the seed every notebook uses.

# %% tags=["nbval-check-output"]
dataset = data.load_data(profile)
x_train, x_test = data.binary_vectors(dataset)
print(dataset)
print(f"binary training set {x_train.shape}, fraction of pixels on {x_train.mean():.2f}")

# %% [markdown]
# ## Training with persistent contrastive divergence
#
# The run `rbm` (its settings printed at the top; `genmodels.runs` holds them, and notebook 08 and `python -m
# genmodels train rbm` train the same run) calls `rbm.fit`, the course's training loop with a CD step: SGD with
# momentum, a learning rate that falls linearly to zero over the run, a small weight decay on $W$, and visible biases
# started at the pixels' log-odds $\log\frac{p_i}{1-p_i}$. After each epoch we monitor the pseudo-likelihood and the
# reconstruction error on the test images. In the quick profile the cell trains afresh each time; in the full profile
# it resumes from the run's checkpoint (the README's checkpoint rule), so running it again, or after `python -m
# genmodels train rbm`, continues the run instead of repeating it. On a CPU the step runs through `rbm_fast`, the same
# update with faster kernels: the full profile times the candidates once on your machine and keeps its choice in
# `_build/cache/`, the quick profile takes the usual ones (so that its outputs are the committed ones); the first line
# says which.

# %%
model = runs.build(settings, device, seed=seed)  # rbm.RBM(784, n_hidden, n_chains=...)
print(rbm_fast.choice(model, settings.batch_size, settings.k, settings.persistent))
history = runs.train(model, dataset, settings, seed=seed, teaching=True)  # rbm.fit with the run's settings

# %%
plotting.plot_history(history, ["test_pseudo_ll", "test_recon_error"])

# %% [markdown]
# Both monitors are cheap proxies: the pseudo-likelihood conditions on all other pixels, and the reconstruction
# error measures one up-down pass, not the model's distribution.
#
# Why momentum 0.5 and a falling rate rather than `rbm.fit`'s defaults is measured further down, once the judge is
# there to tell what the chains hold.
#
# ## What the hidden units learned, and what the model generates
#
# Each hidden unit's weights $W_{:j}$, drawn as an image, is a filter (rescaled to [0, 1]); the persistent chains
# are what PCD trained against (we show $p(v \mid h)$ after 100 more Gibbs steps).

# %%
plotting.show_images(model.W.t()[:64].reshape(-1, 28, 28), ncols=16, title="filters W[:, j]", normalize=True)
samples = model.sample(v0=model.chains[:32], steps=100)
plotting.show_images(samples.reshape(-1, 28, 28), ncols=16, title="persistent chains")

# %% [markdown]
# A model generates when *new* chains get there too. Fresh chains start from the base rate (independent pixels)
# and run block Gibbs sampling for the run's `sample_sweeps`: the sampler notebook 08 measures. Whether they mixed
# shows along the way: `model.sample_along_chains` keeps their $p(v \mid h)$ after several numbers of sweeps, and
# the judge of notebook 08 (`genmodels.judge`) says which classes it sees there. Chains that keep finding new classes
# have not mixed; chains that all end in one class have fallen into one mode.

# %%
referee = judge.train_judge(dataset, seed=seed, device=device)
sweeps = sorted({1, 10, 100, settings.sample_sweeps})
along = model.sample_along_chains(500, at=sweeps, generator=torch.Generator(device).manual_seed(seed))
for n_sweeps, images in along.items():
    print(f"{n_sweeps:5d} sweeps: {measures.classes_seen(referee, images)}")
plotting.show_images(along[settings.sample_sweeps][:32].reshape(-1, 28, 28), ncols=16,
                     title=f"fresh chains from the base rate, {settings.sample_sweeps} Gibbs sweeps")

# %% [markdown]
# ### Why these settings: the chains must keep up
#
# PCD's persistent chains are its negative samples: they must keep up with a model that changes under them. If the
# parameters move faster than the chains mix, the chains trail together in one region, the model learns its energy
# landscape from negatives that do not cover the data, and new chains fall where the trailing ones are. `rbm.fit`'s
# defaults, momentum rising from 0.5 to 0.9 after five epochs and a constant rate, move the
# parameters faster than the run's momentum 0.5 throughout and a rate falling linearly to zero (Tieleman 2008). The
# cell trains the same run once more with the defaults and asks the judge about both models' chains, the persistent
# ones (what PCD trained against) and fresh ones from the base rate (the momentum-jump exercise in `exercises/01_rbm`
# shows the jump in the training curves).

# %%
fast_settings = runs.settings("rbm", profile, momentum=(0.5, 0.9), lr_schedule="constant", evaluate=False,
                              checkpoint=paths.checkpoint_path(f"01_rbm_fit_defaults_{profile.name}.pt"))
print(fast_settings)
fast_model = runs.build(fast_settings, device, seed=seed)
runs.train(fast_model, dataset, fast_settings, seed=seed, teaching=True)
for name, m in (("the run's settings", model), ("rbm.fit's defaults", fast_model)):
    fresh = m.sample(500, steps=settings.sample_sweeps, generator=torch.Generator(device).manual_seed(seed))
    persistent = m.sample(v0=m.chains, steps=1)  # p(v|h) of the chains' states, as the fresh chains show it
    print(f"{name}:\n  persistent chains: {measures.classes_seen(referee, persistent)}\n"
          f"  fresh chains:      {measures.classes_seen(referee, fresh)}")

# %% [markdown]
# ## The test log-likelihood with annealed importance sampling
#
# $\log p(v) = -F(v) - \log Z$ needs $\log Z$, a sum over $2^{n_h}$ hidden (or $2^{784}$ visible) states. AIS
# anneals from a base-rate model (independent pixels, $\log Z_0$ known) to the RBM through intermediate models
# $p^*_\beta(v) \propto e^{(1-\beta)\, b_A^\top v}\; e^{\beta b^\top v} \prod_j (1 + e^{\beta (c_j + v^\top W_{:j})})$
# and averages the importance weights of many runs. On a small RBM it matches the exact value (the tests check this).
#
# One estimate is not enough: AIS's $\log Z$ is too low on average (Jensen's inequality), so the log-likelihood it
# gives leans high, *optimistic*. Run the annealing backwards from each test image to the base rate (reverse
# annealing, RAISE: Burda, Grosse & Salakhutdinov 2015) and the estimate leans the other way, *pessimistic*. The two
# ends bracket $\log p(x)$; each comes with its effective sample size (ESS) of importance weights, and AIS's $\log Z$
# with its own Monte-Carlo spread, three standard errors, which is not the bracket. `rbm.log_likelihood_bracket` runs
# both: `rbm.log_partition_ais` forward, and the same annealing backwards from each image.

# %%
n_betas, n_runs = profile.pick(quick=2000, full=14500), profile.pick(quick=50, full=100)
n_bracket = profile.pick(quick=100, full=100)  # test images, one reverse run each
bracket = rbm.log_likelihood_bracket(model, x_test[:n_bracket], n_betas=n_betas, n_runs=n_runs)
ais = bracket.forward
test_ll = rbm.log_likelihood(model, x_test, log_z=ais.log_z)
print(f"log Z = {ais.log_z:.2f} ± {3 * ais.std_error:.2f} (AIS, 3 standard errors; ESS {ais.ess:.0f} of {n_runs})")
print(f"log p(x), first {n_bracket} test images: between {bracket.pessimistic:.2f} (RAISE; ESS "
      f"{bracket.reverse.ess:.0f} of {n_bracket}) and {bracket.optimistic:.2f} nats (AIS)"
      + ("; the ends cross: the annealing fits these images better than the RBM does" if bracket.crossed else ""))
print(f"average test log-likelihood by AIS, all {len(x_test):,} test images: {test_ll:.2f} nats  ({dataset.name}, "
      f"{settings.n_hidden} hidden, PCD-{settings.k}, {settings.epochs} epochs)")
profile.note(f"{settings.n_hidden} hidden units, {settings.epochs} epochs on {len(x_train):,} images",
             "the larger RBM of the parameters cell trained longer on the whole training split, whose chains "
             "and log-likelihood are worth comparing with the published ones")

# %% [markdown]
# Read the bracket with care. Each end is a bound only on average, and RAISE's is a bound on the log-likelihood of
# the annealing's own sampler: when that sampler fits the test images better than the RBM does (its chains have not
# mixed), the pessimistic end can land above the optimistic one, and the cell says so. A small ESS means that a few
# runs carry most of the weight: more temperatures or runs are needed (the exercise on how many temperatures AIS
# needs, in `exercises/01_rbm`).
#
# For reference, Salakhutdinov & Murray (2008, "On the quantitative analysis of deep belief networks", ICML) report
# for binarised **MNIST** with 500 hidden units CD-1 ≈ −125.5 nats and CD-25 ≈ −86.3 nats per test image (these
# two numbers are quoted from the paper, not computed here). They are comparable with ours only when
# the data set printed above is MNIST and the model is trained as long; in the full profile without MNIST's training
# images the course falls back to Fashion-MNIST, whose log-likelihoods are on a different scale.
#
# ## What to take away
# - The RBM's free energy is a sum of softplus terms; computing it as `log(1 + exp(x))` overflows to `-inf`.
# - CD and PCD estimate the likelihood gradient from short Gibbs chains; the "loss" whose gradient they equal is
#   not a likelihood, so never report it as one.
# - The log-likelihood needs $\log Z$: exactly by enumerating the smaller layer when it is small
#   (`rbm.MAX_EXACT_UNITS`), otherwise as a bracket: AIS (optimistic) and reverse annealing (pessimistic), each with
#   its effective sample size.
# - PCD generates only if its chains keep up with the parameters; judge a model by fresh chains from the base rate,
#   and watch whether they mix.
#
# ## Exercises
# The exercises for this notebook are in `exercises/01_rbm.ipynb` (open it in `make lab`): write the energy, the two
# conditionals, the free energy (stably), a Gibbs step, the CD statistics, the PCD chain update, the AIS weights and
# log Z, and the pseudo-likelihood yourself, each checked as you go; and answer this notebook's questions (CD-1
# against PCD, the number of AIS temperatures, `log(1 + exp(x))` in the free energy, the momentum jump) by running
# code. Worked answers: `exercises/solutions/01_rbm.ipynb`.
#
# Next: Langevin sampling of energy-based models, where the sampler follows the gradient of the energy instead of
# taking Gibbs steps.
