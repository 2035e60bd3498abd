# ---
# jupyter:
#   jupytext:
#     cell_metadata_filter: slideshow,tags,-all
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown] slideshow={"slide_type": "slide"}
# # Week 13: Deep generative models
# ## Boltzmann machines in code, energy-based models and Langevin sampling, variational autoencoders
#
# *Advanced machine learning and data analysis for the physical sciences*
#
# Following the lecture notes of Morten Hjorth-Jensen (University of Oslo and Michigan State University),
# week of April 15–19, 2024 (CC BY-NC 4.0). Every number on these slides is computed by the cells that show it.

# %% [markdown] slideshow={"slide_type": "notes"}
# Run `make slides` to render this deck offline; `make run` executes it in the full profile first.

# %% slideshow={"slide_type": "skip"} tags=["parameters"]
profile = None  # "quick" or "full"; GENMODELS_PROFILE overrides this
device = None
seed = 0

# %% slideshow={"slide_type": "skip"}
import torch

from genmodels import get_profile
from genmodels.device import get_device, seed_everything

profile = get_profile(profile)
device = get_device(device, profile)
seed_everything(seed)

# %% [markdown] slideshow={"slide_type": "slide"}
# ## Plans for the week
#
# - Finish the Boltzmann machines: implementations in PyTorch and in TensorFlow/Keras
# - Other energy-based models, and **Langevin sampling** in place of Gibbs or Metropolis sampling
# - **Variational autoencoders** (VAEs): the mathematics and the code
#
# ### Readings
# - Goodfellow, Bengio and Courville, *Deep Learning*, sections 20.10–20.11 (VAEs)
# - Babcock and Bali, *Generative AI with Python and TensorFlow 2*, chapter 4 (an RBM in Keras)
# - Foster, *Generative Deep Learning* (2nd ed.), chapter 7 (energy-based models), built on
#   Du and Mordatch, [*Implicit generation and modeling with energy-based models*](https://arxiv.org/abs/1903.08689) (2019)
# - Welling and Teh, *Bayesian learning via stochastic gradient Langevin dynamics* (ICML 2011)
# - Kingma and Welling, [*Auto-encoding variational Bayes*](https://arxiv.org/abs/1312.6114) (2014)

# %% [markdown] slideshow={"slide_type": "subslide"}
# ## Reminder from last week, and the plan of this lecture
#
# Last week (week 12): Boltzmann machines, their energy, the positive and negative phases of the log-likelihood
# gradient, and Gibbs sampling. This week:
#
# 1. the restricted Boltzmann machine **in code**: PyTorch, then TensorFlow/Keras;
# 2. other **energy-based models**, sampled with **Langevin dynamics** instead of Gibbs or Metropolis steps;
# 3. **variational autoencoders**, and next **generative adversarial networks**.
#
# *Correction:* the source calls the last ones "generalized adversarial networks"; they are *generative*
# adversarial networks (Goodfellow et al. 2014).
#
# Hands-on notebooks: `notebooks/00_data_and_setup` (data, profiles, the training loop) and one notebook per model.

# %% [markdown] slideshow={"slide_type": "slide"}
# # Part 1 · Restricted Boltzmann machines in code
#
# A binary–binary RBM with visible units $\boldsymbol{v}\in\{0,1\}^{D}$ and hidden units $\boldsymbol{h}\in\{0,1\}^{H}$:
#
# $$
# E(\boldsymbol{v},\boldsymbol{h}) = -\boldsymbol{b}^\top\boldsymbol{v} - \boldsymbol{c}^\top\boldsymbol{h}
#   - \boldsymbol{v}^\top\boldsymbol{W}\boldsymbol{h},
# \qquad
# p(\boldsymbol{v},\boldsymbol{h}) = \frac{e^{-E(\boldsymbol{v},\boldsymbol{h})}}{Z}.
# $$
#
# Summing out the hidden units gives the **free energy**, $p(\boldsymbol{v}) = e^{-F(\boldsymbol{v})}/Z$ with
#
# $$
# F(\boldsymbol{v}) = -\boldsymbol{b}^\top\boldsymbol{v} - \sum_{j=1}^{H}\log\left(1 + e^{c_j + \boldsymbol{v}^\top\boldsymbol{W}_{:j}}\right)
#   = -\boldsymbol{b}^\top\boldsymbol{v} - \sum_j \operatorname{softplus}\left(c_j + \boldsymbol{v}^\top\boldsymbol{W}_{:j}\right),
# $$
#
# and the conditionals factorise: $p(h_j=1\mid\boldsymbol{v}) = \sigma(c_j + \boldsymbol{v}^\top\boldsymbol{W}_{:j})$,
# $p(v_i=1\mid\boldsymbol{h}) = \sigma(b_i + \boldsymbol{W}_{i:}\boldsymbol{h})$.

# %% [markdown] slideshow={"slide_type": "subslide"}
# On a small RBM (6 visible, 4 hidden units, random weights) every sum can be done by brute force:
# $F(\boldsymbol{v}) = -\log\sum_{\boldsymbol{h}} e^{-E(\boldsymbol{v},\boldsymbol{h})}$, and $\log Z$ by enumerating
# either layer.

# %% slideshow={"slide_type": "fragment"}
# NBVAL_CHECK_OUTPUT
import itertools

from genmodels import rbm as rbms

small = rbms.RBM(6, 4, init_std=1.0, generator=torch.Generator().manual_seed(seed))
v = torch.tensor([[1.0, 0, 1, 1, 0, 0]])
all_h = torch.tensor(list(itertools.product([0.0, 1.0], repeat=4)))
brute_force = -torch.logsumexp(-small.energy(v.expand(16, 6), all_h), dim=0)
print(f"F(v): softplus formula {small.free_energy(v).item():.4f}, brute force over 16 h {brute_force.item():.4f}")
print(f"log Z: over the 64 visible states {rbms.log_partition_exact(small, over='visible'):.4f}, "
      f"over the 16 hidden states {rbms.log_partition_exact(small, over='hidden'):.4f}")

# %% [markdown] slideshow={"slide_type": "subslide"}
# ## Training: contrastive divergence
#
# The log-likelihood gradient is a positive phase (the data) minus a negative phase (the model):
#
# $$
# \frac{\partial \log p(\boldsymbol{v})}{\partial W_{ij}}
#   = \langle v_i h_j\rangle_{\text{data}} - \langle v_i h_j\rangle_{\text{model}}.
# $$
#
# The model average needs samples from $p(\boldsymbol{v},\boldsymbol{h})$. **CD-$k$** starts a Gibbs chain at the
# data and stops after $k$ steps; **persistent CD** keeps the chains running from one update to the next.
# Neither follows the exact gradient, but with large $k$ CD-$k$ approaches it: the tests check this against the
# gradient computed by enumeration on a small RBM.

# %% [markdown] slideshow={"slide_type": "subslide"}
# ## What changed from the lecture's original PyTorch code
#
# The source's RBM code was written for PyTorch before version 0.4:
#
# - `torch.autograd.Variable` is gone since 2018: tensors carry gradients themselves.
# - It loads MNIST with `torchvision`; we read the IDX files ourselves (`genmodels.data`) and keep the whole
#   training set on the device as one tensor.
# - Its free energy computed $\log(1 + e^{x})$ as `log(exp(x) + 1)`, which overflows to `inf` once
#   $x \gtrsim 89$ in float32; `softplus` is exact there.
# - Its "loss" (the difference of free energies) has the right gradient but is not a likelihood; we report
#   the average log-likelihood in nats, with $\log Z$ exact (small models) or from annealed importance sampling.

# %% slideshow={"slide_type": "fragment"}
# NBVAL_CHECK_OUTPUT
x = torch.tensor([10.0, 88.0, 89.0, 100.0])  # float32, as on a GPU
print("log(exp(x) + 1):", torch.log(torch.exp(x) + 1).tolist())
print("softplus(x):    ", torch.nn.functional.softplus(x).tolist())

# %% [markdown] slideshow={"slide_type": "subslide"}
# ## The modernised code, run
#
# `genmodels.rbm.fit` trains with CD-$k$ or PCD through the course's training loop (data resident on the device,
# checkpoints, Ctrl-C safe); `01_rbm_pytorch` trains a 784×500 RBM and evaluates it with AIS.

# %% slideshow={"slide_type": "fragment"}
from genmodels import data, plotting

images = data.load_data(profile)
x_binary = data.binarize_stochastic(images.x_train.reshape(len(images.x_train), -1), seed=seed)
machine = rbms.RBM(784, profile.pick(quick=100, full=500), device=device)
history = rbms.fit(machine, x_binary, epochs=profile.pick(quick=2, full=10), k=1,
                   progress=profile.progress, seed=seed)
plotting.show_images(machine.W.T[:32].reshape(-1, 28, 28), ncols=16, title="weights of 32 hidden units", normalize=True)

# %% [markdown] slideshow={"slide_type": "subslide"}
# ## An RBM in TensorFlow/Keras
#
# Babcock and Bali (chapter 4) build the same model as a Keras `Model` whose training step runs Gibbs sampling and
# applies the contrastive-divergence update by hand. In Keras 3 the natural form is the same as in PyTorch:
# the conditionals as `keras.ops` expressions, and the update either applied to the weights directly or obtained
# as the gradient of the free-energy difference $F(\boldsymbol{v}_{\text{data}}) - F(\boldsymbol{v}_{\text{model}})$
# with the negative samples held fixed.
#
# **Hands-on notebook to come:** `notebooks/02_rbm_keras` will mirror `genmodels.rbm` in Keras, name for name.

# %% [markdown] slideshow={"slide_type": "slide"}
# # Part 2 · Energy-based models and Langevin sampling
#
# An energy-based model defines a density by an energy function $E_\theta(\boldsymbol{x})$, for example a
# convolutional network with one output:
#
# $$
# p_\theta(\boldsymbol{x}) = \frac{e^{-E_\theta(\boldsymbol{x})}}{Z_\theta},
# \qquad
# \nabla_\theta \log p_\theta(\boldsymbol{x}) = -\nabla_\theta E_\theta(\boldsymbol{x})
#   + \mathbb{E}_{\boldsymbol{x}'\sim p_\theta}\left[\nabla_\theta E_\theta(\boldsymbol{x}')\right].
# $$
#
# The same positive and negative phases as for the RBM, but no conditional independence to exploit: the negative
# samples come from **Langevin dynamics**, which needs only $\nabla_{\boldsymbol{x}}\log p = -\nabla_{\boldsymbol{x}} E$
# (the unknown $Z_\theta$ drops out). Du and Mordatch (2019) train image EBMs this way, starting the chains from
# noise and from a replay buffer of earlier samples; Foster's chapter 7 rebuilds their model for MNIST.
#
# **Hands-on notebook to come:** `notebooks/04_ebm` (a deep EBM on MNIST); the sampler itself is in
# `notebooks/03_langevin_sampling`.

# %% [markdown] slideshow={"slide_type": "subslide"}
# ## The Langevin update, and a correction to the lecture's formula
#
# The lecture writes the update as
#
# $$\theta_{i+1} = \theta_i + \eta\nabla_\theta\log p(\theta_i) + \sqrt{\eta}\,w_i,\qquad w_i\sim\mathcal{N}(0,1).$$
#
# With this noise the chain does **not** sample $p$. The Langevin diffusion
# $d\theta = \nabla\log p(\theta)\,dt + \sqrt{2}\,dB_t$ has $p$ as its stationary density (its Fokker–Planck equation
# $\partial_t\rho = -\nabla\cdot(\rho\nabla\log p) + \nabla^2\rho$ vanishes at $\rho = p$). Discretised with step $\eta$:
#
# $$\theta_{i+1} = \theta_i + \eta\nabla_\theta\log p(\theta_i) + \sqrt{2\eta}\,w_i
#   \quad\Longleftrightarrow\quad \theta_{i+1} = \theta_i + \tfrac{\epsilon}{2}\nabla_\theta\log p(\theta_i) + \sqrt{\epsilon}\,w_i .$$
#
# With $\sqrt{\eta}$ instead of $\sqrt{2\eta}$ the drift is twice too strong for the noise: the chain samples
# $p^2$ (normalised), whose variance for a unit Gaussian is $1/2$.

# %% [markdown] slideshow={"slide_type": "subslide"}
# For a unit Gaussian, $\nabla\log p(\theta) = -\theta$, so both rules are linear:
# $\theta_{i+1} = (1-\eta)\theta_i + s\,w_i$, with stationary variance $s^2/(1-(1-\eta)^2) = s^2/(\eta(2-\eta))$.
# The lecture's $s^2=\eta$ gives $1/(2-\eta)\approx 1/2$; the corrected $s^2 = 2\eta$ gives $2/(2-\eta)\approx 1$,
# exact as $\eta\to 0$.

# %% slideshow={"slide_type": "fragment"}
# NBVAL_CHECK_OUTPUT
from genmodels.langevin import ula, ula_gaussian_stationary_covariance

for eta in (0.5, 0.1, 0.01):
    lecture = ula_gaussian_stationary_covariance([[1.0]], eta, noise_scale=1.0).item()
    corrected = ula_gaussian_stationary_covariance([[1.0]], eta).item()
    print(f"eta = {eta:<5} stationary variance: lecture's rule {lecture:.4f}, sqrt(2 eta) rule {corrected:.4f}")

# %% [markdown] slideshow={"slide_type": "subslide"}
# The same with 2,000 chains run by `genmodels.langevin.ula` on $\log p(\theta) = -\theta^2/2$, step $\eta = 0.01$:

# %% slideshow={"slide_type": "fragment"}
def log_p(theta):
    return -0.5 * (theta**2).sum(-1)


start = torch.zeros(2000, 1, device=device)
for rule, c in (("lecture's rule, sqrt(eta) w", 1.0), ("corrected, sqrt(2 eta) w", 2**0.5)):
    chains = ula(log_p, start, step_size=0.01, n_steps=1500, burn_in=1000, thin=50, noise_scale=c, seed=seed)
    print(f"{rule:<28} sample variance {chains.flat().var().item():.3f}")

# %% [markdown] slideshow={"slide_type": "subslide"}
# ## Stochastic gradient Langevin dynamics (SGLD)
#
# SGLD (Welling and Teh 2011) samples a Bayesian **posterior** over parameters,
# $p(\theta\mid x_{1:N}) \propto p(\theta)\prod_{i=1}^{N}p(x_i\mid\theta)$, with the minibatch gradients of SGD:
#
# $$
# \theta_{t+1} = \theta_t + \frac{\epsilon_t}{2}\left(\nabla\log p(\theta_t)
#   + \frac{N}{n}\sum_{i\in\text{batch}}\nabla\log p(x_i\mid\theta_t)\right) + \sqrt{\epsilon_t}\,w_t,
# \qquad \epsilon_t = a\,(b+t)^{-\gamma}.
# $$
#
# - The factor $N/n$ makes the minibatch sum an unbiased estimate of the full-data gradient.
# - With $\sum_t\epsilon_t=\infty$ and $\sum_t\epsilon_t^2<\infty$ (e.g. $\gamma\in(0.5, 1]$) the injected noise
#   dominates the minibatch noise as $\epsilon_t\to 0$: the iterates move from optimisation to sampling, with no
#   Metropolis–Hastings step.
# - The lecture suggests starting from a uniform draw in $[-1, 1]$; any start works, the early iterates are burn-in.
#
# `notebooks/03_langevin_sampling` runs SGLD on Welling and Teh's two-mode mixture posterior and compares it with
# the exact posterior on a grid.

# %% [markdown] slideshow={"slide_type": "slide"}
# # Part 3 · Variational autoencoders
#
# ## The autoencoder again
#
# An autoencoder is a network trained to reproduce its input. The **encoder** maps the input to a code,
# $\boldsymbol{h} = f(\boldsymbol{x};\boldsymbol{W})$, and the **decoder** maps the code back,
# $\tilde{\boldsymbol{x}} = g(\boldsymbol{h};\boldsymbol{V})$; both are trained to make the reconstruction error
# small, often the mean squared error $\lVert\boldsymbol{x}-\tilde{\boldsymbol{x}}\rVert^2$ (or the cross-entropy for
# pixels in $[0,1]$). A code smaller than the input forces the network to keep what matters (week 10).
#
# <div style="text-align:center; font-size:1.1em; margin-top:1em">
# <b>x</b> (784 pixels) &nbsp;→&nbsp; [ encoder $f(\boldsymbol{x};\boldsymbol{W})$ ] &nbsp;→&nbsp;
# <b>h</b> (code, 2–20 numbers) &nbsp;→&nbsp; [ decoder $g(\boldsymbol{h};\boldsymbol{V})$ ] &nbsp;→&nbsp;
# <b>x̃</b> (784 pixels)
# </div>
#
# A plain autoencoder is not a generative model: nothing says which codes are typical, so decoding a random
# $\boldsymbol{h}$ gives no digit. The VAE fixes this with a prior $p(\boldsymbol{h})$ and a probabilistic encoder.

# %% [markdown] slideshow={"slide_type": "subslide"}
# ## The marginal likelihood with latent variables
#
# With latent variables $\boldsymbol{h}$ and parameters $\boldsymbol{\Theta}$ the model of the data is the marginal
#
# $$
# p(\boldsymbol{x};\boldsymbol{\Theta}) = \int d\boldsymbol{h}\; p(\boldsymbol{x},\boldsymbol{h};\boldsymbol{\Theta})
# \quad\text{(continuous } \boldsymbol{h}\text{)},
# \qquad
# p(\boldsymbol{x};\boldsymbol{\Theta}) = \sum_{\boldsymbol{h}} p(\boldsymbol{x},\boldsymbol{h};\boldsymbol{\Theta})
# \quad\text{(discrete } \boldsymbol{h}\text{)}.
# $$
#
# By the law of total probability, with the conditional $p(\boldsymbol{x}\mid\boldsymbol{h};\boldsymbol{\Theta})$ and the
# prior $p(\boldsymbol{h})$,
#
# $$p(\boldsymbol{x};\boldsymbol{\Theta}) = \sum_{\boldsymbol{h}} p(\boldsymbol{x}\mid\boldsymbol{h};\boldsymbol{\Theta})\,p(\boldsymbol{h}).$$
#
# *Correction:* the source writes the prior as $p(\boldsymbol{h},\boldsymbol{n})$; it is $p(\boldsymbol{h})$.
# Training maximises this likelihood of the data over $\boldsymbol{\Theta}$.

# %% [markdown] slideshow={"slide_type": "subslide"}
# ## VAEs versus autoencoders
#
# - The decoder outputs a **distribution**, not a point. With Gaussian outputs,
#   $p(\boldsymbol{x}\mid\boldsymbol{h};\boldsymbol{\Theta}) = \mathcal{N}\left(\boldsymbol{x}\mid f(\boldsymbol{h};\boldsymbol{\Theta}), \sigma^2\boldsymbol{I}\right)$,
#   $\sigma^2$ a hyperparameter; for binarised MNIST a Bernoulli per pixel, whose log-likelihood is minus the binary
#   cross-entropy.
# - **Gradient descent**: $p(\boldsymbol{x};\boldsymbol{\Theta})$ is continuous in $\boldsymbol{\Theta}$, so we can raise it by
#   making $f(\boldsymbol{h};\boldsymbol{\Theta})$ approach $\boldsymbol{x}$ for the $\boldsymbol{h}$ that matter.
# - The mathematics has little to do with sparse or denoising autoencoders: the "autoencoder" is what the training
#   objective turns out to look like. There is no sparsity penalty to tune, and sampling is direct
#   ($\boldsymbol{h}\sim p(\boldsymbol{h})$, then decode): no Markov chain, unlike the RBM.
# - Two problems remain: what the latent variables mean, and how to do the integral over $\boldsymbol{h}$.

# %% [markdown] slideshow={"slide_type": "subslide"}
# ## The Kullback–Leibler divergence
#
# To compare an unknown density $p$ with an approximation $q$:
#
# $$\mathrm{KL}(p\,\|\,q) = \int d\boldsymbol{x}\; p(\boldsymbol{x})\log\frac{p(\boldsymbol{x})}{q(\boldsymbol{x})}\ \ge 0,$$
#
# zero only when $p=q$, and not symmetric. It is also called the **relative entropy**.
#
# *Correction:* the source also calls it the "Shannon entropy". It is not: the Shannon entropy is
# $H(p) = -\int p\log p$, and $\mathrm{KL}(p\|q) = H(p, q) - H(p)$, the cross-entropy minus the entropy.

# %% [markdown] slideshow={"slide_type": "subslide"}
# ## The KL divergence and maximum likelihood for RBMs
#
# For data distributed as $f(\boldsymbol{x})$ and an RBM with marginal $p(\boldsymbol{x};\boldsymbol{\Theta}) = e^{-F(\boldsymbol{x})}/Z$:
#
# $$
# \begin{aligned}
# \mathrm{KL}\left(f\,\|\,p\right) &= \int d\boldsymbol{x}\, f(\boldsymbol{x})\log f(\boldsymbol{x})
#   - \int d\boldsymbol{x}\, f(\boldsymbol{x})\log p(\boldsymbol{x};\boldsymbol{\Theta}) \\
# &= \langle\log f\rangle_{\text{data}} - \langle\log p(\boldsymbol{x};\boldsymbol{\Theta})\rangle_{\text{data}}
#  = \langle\log f\rangle_{\text{data}} + \langle F(\boldsymbol{x})\rangle_{\text{data}} + \log Z .
# \end{aligned}
# $$
#
# The first term does not depend on $\boldsymbol{\Theta}$, so **minimising the KL divergence is maximising the
# average log-likelihood** $\langle\log p\rangle_{\text{data}}$.
#
# *Correction:* the source writes $\langle E(\boldsymbol{x})\rangle_{\text{data}}$; for the marginal over the
# visible units it is the free energy $F(\boldsymbol{x})$ (the energy $E(\boldsymbol{v},\boldsymbol{h})$ needs the
# hidden units too).

# %% [markdown] slideshow={"slide_type": "subslide"}
# Checked on the small RBM above, with a data distribution $f$ over its 64 visible states:

# %% slideshow={"slide_type": "fragment"}
# NBVAL_CHECK_OUTPUT
all_v = torch.tensor(list(itertools.product([0.0, 1.0], repeat=6)))
f = torch.softmax(torch.randn(64, generator=torch.Generator().manual_seed(seed), dtype=torch.float64), 0)
log_z = rbms.log_partition_exact(small)
log_p_v = -small.free_energy(all_v).double() - log_z
kl = (f * (f.log() - log_p_v)).sum()
rhs = (f * f.log()).sum() + (f * small.free_energy(all_v).double()).sum() + log_z
print(f"KL(f || p) = {kl.item():.5f}   <log f> + <F> + log Z = {rhs.item():.5f}")
print(f"-<log p>_f (the negative log-likelihood) = {-(f * log_p_v).sum().item():.5f}, <log f> = {(f * f.log()).sum().item():.5f}")

# %% [markdown] slideshow={"slide_type": "subslide"}
# ## Back to VAEs: sample the latent variables that matter
#
# For most $\boldsymbol{h}$, $p(\boldsymbol{x}\mid\boldsymbol{h})$ is nearly zero: averaging it over the prior wastes
# almost every sample. The VAE introduces an **encoder** $Q(\boldsymbol{h}\mid\boldsymbol{x})$ that proposes the
# $\boldsymbol{h}$ likely to have produced $\boldsymbol{x}$, so that $E_{\boldsymbol{h}\sim Q}\,p(\boldsymbol{x}\mid\boldsymbol{h})$
# is cheap to estimate. How does that help with $p(\boldsymbol{x})$? Start from the KL divergence between $Q$ and
# the true posterior:
#
# $$\mathcal{D}\left[Q(\boldsymbol{h})\,\|\,p(\boldsymbol{h}\mid\boldsymbol{x})\right]
#   = E_{\boldsymbol{h}\sim Q}\left[\log Q(\boldsymbol{h}) - \log p(\boldsymbol{h}\mid\boldsymbol{x})\right].$$
#
# **Bayes' rule**, $p(\boldsymbol{h}\mid\boldsymbol{x}) = p(\boldsymbol{x}\mid\boldsymbol{h})p(\boldsymbol{h})/p(\boldsymbol{x})$, brings in
# $p(\boldsymbol{x})$, which leaves the expectation because it does not depend on $\boldsymbol{h}$:
#
# $$\mathcal{D}\left[Q(\boldsymbol{h})\,\|\,p(\boldsymbol{h}\mid\boldsymbol{x})\right]
#   = E_{\boldsymbol{h}\sim Q}\left[\log Q(\boldsymbol{h}) - \log p(\boldsymbol{x}\mid\boldsymbol{h}) - \log p(\boldsymbol{h})\right] + \log p(\boldsymbol{x}).$$

# %% [markdown] slideshow={"slide_type": "subslide"}
# ## Rearranging: the central equation of VAEs
#
# Negate, rearrange, and collect $E_Q[\log Q - \log p(\boldsymbol{h})]$ into a KL divergence; then let $Q$ depend on
# $\boldsymbol{x}$, since we want it to make $\mathcal{D}[Q\|p(\boldsymbol{h}\mid\boldsymbol{x})]$ small:
#
# $$
# \boxed{\;\log p(\boldsymbol{x}) - \mathcal{D}\left[Q(\boldsymbol{h}\mid\boldsymbol{x})\,\|\,p(\boldsymbol{h}\mid\boldsymbol{x})\right]
#   = E_{\boldsymbol{h}\sim Q}\left[\log p(\boldsymbol{x}\mid\boldsymbol{h})\right]
#   - \mathcal{D}\left[Q(\boldsymbol{h}\mid\boldsymbol{x})\,\|\,p(\boldsymbol{h})\right]\;}
# $$
#
# - Left: what we want to maximise, $\log p(\boldsymbol{x})$, minus an error term that is $\ge 0$.
# - Right: the **evidence lower bound (ELBO)**, which stochastic gradient descent can optimise for a good choice
#   of $Q$. The bound is tight when $Q$ equals the true posterior.
#
# The same steps work conditionally, for a model of $y_i$ given $x_i$:
# $\log p(y_i\mid x_i) - \mathcal{D}[Q(\boldsymbol{h})\|p(\boldsymbol{h}\mid x_i, y_i)]
#   = E_{\boldsymbol{h}\sim Q}[\log p(y_i\mid\boldsymbol{h}, x_i) + \log p(\boldsymbol{h}\mid x_i) - \log Q(\boldsymbol{h})]$,
# so the right-hand side approximates $\log p(y_i\mid x_i)$.
# *Correction:* the source writes $\log p(y_i\mid y_i)$ there; it is $\log p(y_i\mid x_i)$.

# %% [markdown] slideshow={"slide_type": "subslide"}
# ## Setting up stochastic gradient descent
#
# The usual encoder is a Gaussian with diagonal covariance,
# $Q(\boldsymbol{h}\mid\boldsymbol{x}) = \mathcal{N}\left(\boldsymbol{h}\mid\mu(\boldsymbol{x};\vartheta), \Sigma(\boldsymbol{x};\vartheta)\right)$,
# where $\mu$ and $\Sigma$ are neural networks with parameters $\vartheta$ (the source writes $\Sigma(;\vartheta)$:
# it depends on $\boldsymbol{x}$ too). They *encode* $\boldsymbol{x}$ into the latent space, hence the name. With the
# prior $p(\boldsymbol{h}) = \mathcal{N}(0, \boldsymbol{I})$ the last term is a KL divergence between two Gaussians,
# in closed form for dimension $k$:
#
# $$
# \mathcal{D}\left[\mathcal{N}(\mu_0,\Sigma_0)\,\|\,\mathcal{N}(\mu_1,\Sigma_1)\right] = \frac12\left(
#   \operatorname{tr}\left(\Sigma_1^{-1}\Sigma_0\right) + (\mu_1-\mu_0)^\top\Sigma_1^{-1}(\mu_1-\mu_0) - k
#   + \log\frac{\det\Sigma_1}{\det\Sigma_0}\right),
# $$
#
# which **simplifies** for $\mathcal{N}(0, \boldsymbol{I})$ and diagonal $\Sigma = \operatorname{diag}(\sigma_1^2,\dots,\sigma_k^2)$ to
#
# $$
# \mathcal{D}\left[\mathcal{N}(\mu(\boldsymbol{x}),\Sigma(\boldsymbol{x}))\,\|\,\mathcal{N}(0,\boldsymbol{I})\right]
#   = \frac12\left(\operatorname{tr}\Sigma + \mu^\top\mu - k - \log\det\Sigma\right)
#   = \frac12\sum_{j=1}^{k}\left(\sigma_j^2 + \mu_j^2 - 1 - \log\sigma_j^2\right).
# $$

# %% slideshow={"slide_type": "fragment"}
# NBVAL_CHECK_OUTPUT
from genmodels.vae import kl_gaussians, kl_standard_normal

mu, log_var = torch.tensor([[0.5, -1.0, 2.0]]), torch.tensor([[0.0, -1.0, 0.7]])
zeros = torch.zeros_like(mu)
print(f"simplified formula:           KL = {kl_standard_normal(mu, log_var).item():.4f} nats")
print(f"general formula, mu_1=0, S_1=I: KL = {kl_gaussians(mu, log_var, zeros, zeros).item():.4f} nats")

# %% slideshow={"slide_type": "fragment"}
q = torch.distributions.Normal(mu, (0.5 * log_var).exp())
h = q.sample((1_000_000,))
log_ratio = (q.log_prob(h) - torch.distributions.Normal(0.0, 1.0).log_prob(h)).sum(-1)
print(f"Monte Carlo:                  KL = {log_ratio.mean():.4f} ± {log_ratio.std() / len(h) ** 0.5:.4f} nats")

# %% [markdown] slideshow={"slide_type": "subslide"}
# ## The terms to compute
#
# The first term, $E_{\boldsymbol{h}\sim Q}[\log p(\boldsymbol{x}\mid\boldsymbol{h})]$, has no closed form. As in any
# stochastic gradient method, one sample of $\boldsymbol{h}$ per data point is an unbiased estimate, and we already
# average over minibatches of data $D$. The objective over the data set is
#
# $$
# E_{\boldsymbol{x}\sim D}\left[\log p(\boldsymbol{x}) - \mathcal{D}\left[Q(\boldsymbol{h}\mid\boldsymbol{x})\,\|\,p(\boldsymbol{h}\mid\boldsymbol{x})\right]\right]
# = E_{\boldsymbol{x}\sim D}\left[E_{\boldsymbol{h}\sim Q}\left[\log p(\boldsymbol{x}\mid\boldsymbol{h})\right]
#   - \mathcal{D}\left[Q(\boldsymbol{h}\mid\boldsymbol{x})\,\|\,p(\boldsymbol{h})\right]\right],
# $$
#
# and for one $\boldsymbol{x}$ and one $\boldsymbol{h}\sim Q(\boldsymbol{h}\mid\boldsymbol{x})$ we take the gradient of
# $\log p(\boldsymbol{x}\mid\boldsymbol{h}) - \mathcal{D}\left[Q(\boldsymbol{h}\mid\boldsymbol{x})\,\|\,p(\boldsymbol{h})\right]$.
# (The source switches to $X$, $z$, $P$ from here; we keep $\boldsymbol{x}$, $\boldsymbol{h}$, $p$.)

# %% [markdown] slideshow={"slide_type": "subslide"}
# ## The reparameterised gradient
#
# The catch: $E_{\boldsymbol{h}\sim Q}[\log p(\boldsymbol{x}\mid\boldsymbol{h})]$ depends on the encoder's parameters
# through the *distribution* we sample from, and sampling has no gradient. Write the sample as a deterministic
# function of the parameters and of parameter-free noise:
#
# $$
# \boldsymbol{h} = \mu(\boldsymbol{x}) + \Sigma^{1/2}(\boldsymbol{x})\,\boldsymbol{\epsilon},\qquad \boldsymbol{\epsilon}\sim\mathcal{N}(0,\boldsymbol{I}),
# $$
#
# $$
# E_{\boldsymbol{x}\sim D}\left[E_{\boldsymbol{\epsilon}\sim\mathcal{N}(0,\boldsymbol{I})}\left[\log p\left(\boldsymbol{x}\mid
#   \boldsymbol{h}=\mu(\boldsymbol{x})+\Sigma^{1/2}(\boldsymbol{x})\,\boldsymbol{\epsilon}\right)\right]
#   - \mathcal{D}\left[Q(\boldsymbol{h}\mid\boldsymbol{x})\,\|\,p(\boldsymbol{h})\right]\right].
# $$
#
# Now the gradient passes through $\mu$ and $\Sigma$ into the encoder: in PyTorch this is `Normal.rsample()`, in
# Keras a `Sampling` layer. It has the same expectation as the score-function (REINFORCE) gradient, with far less
# variance; the tests of `genmodels.vae` check both claims.

# %% [markdown] slideshow={"slide_type": "slide"}
# # Part 4 · Code examples in Keras and PyTorch
#
# The source shows two fragments: fchollet's convolutional VAE from keras.io (a `Sampling` layer and a custom
# `train_step` written with `tf.GradientTape`), and a PyTorch encoder that returns a `torch.distributions.Normal`
# (written with `Variable` and torchvision). Below is our equivalent, built on `genmodels`, and run; the hands-on
# notebooks `05_vae_pytorch` and `06_vae_keras` go through both in detail.

# %% [markdown] slideshow={"slide_type": "subslide"}
# ## PyTorch: an encoder that returns a distribution
#
# As in the lecture's fragment, the encoder returns `torch.distributions.Normal`, so the ELBO reads like the
# equation: `q.rsample()` is the reparameterised sample, `kl_divergence(q, prior)` the closed form.

# %% slideshow={"slide_type": "fragment"}
import inspect

from genmodels import vae

print(inspect.getsource(vae.MLPEncoder))
print(inspect.getsource(vae.elbo_terms))

# %% [markdown] slideshow={"slide_type": "subslide"}
# Trained here for a few epochs on dynamically binarised images (the full profile trains longer; `05_vae_pytorch`
# trains to convergence), with the test ELBO and the importance-weighted bound in nats on a test set binarised
# once:

# %% slideshow={"slide_type": "fragment"}
x_test = data.binarize_stochastic(images.x_test, seed=seed)  # binarised once, with a seed (images: Part 1)
model = vae.mlp_vae(latent_dim=20).to(device)
history = vae.fit(model, images.x_train, epochs=profile.pick(quick=2, full=10), x_test=x_test,
                  progress=profile.progress, seed=seed)
bounds = vae.likelihood_bounds(model, x_test[:1000], k=profile.pick(quick=50, full=200))
print(f"test ELBO {bounds['elbo']:.1f} nats, IWAE bound {bounds['iwae']:.1f} nats (1,000 test images)")

# %% slideshow={"slide_type": "fragment"}
plotting.show_images(vae.generate(model, 32, torch.Generator(device).manual_seed(seed)), ncols=16,
                     title="new images: h ~ N(0, I), then the decoder's pixel probabilities")

# %% [markdown] slideshow={"slide_type": "subslide"}
# ## Keras: keras.io's VAE on any backend
#
# The keras.io original overrides `train_step` with `tf.GradientTape`, which ties it to TensorFlow. In Keras 3 the
# loss goes into `compute_loss` instead, so plain `model.fit` trains it on TensorFlow, PyTorch or JAX alike; the
# `Sampling` layer draws its noise with `keras.random`. The loss terms are the ones above, in `keras.ops`.

# %% slideshow={"slide_type": "fragment"}
from genmodels import vae_keras  # imports Keras (TensorFlow by default) only now

print(inspect.getsource(vae_keras.Sampling))
print(inspect.getsource(vae_keras.VAE.compute_loss))

# %% slideshow={"slide_type": "fragment"}
keras_vae = vae_keras.conv_vae(latent_dim=2, seed=seed)
keras_history = vae_keras.fit(keras_vae, images.x_train[:profile.pick(quick=1500, full=None)],
                              epochs=profile.pick(quick=1, full=3), x_test=x_test, progress=profile.progress, seed=seed)
plotting.show_images(vae_keras.latent_manifold(keras_vae, n=12), ncols=12, title="the 2-D latent manifold (Keras)")

# %% [markdown] slideshow={"slide_type": "slide"}
# ## What to take away
#
# - An RBM's free energy turns $p(\boldsymbol{v})$ into $e^{-F(\boldsymbol{v})}/Z$; contrastive divergence estimates the
#   negative phase with short Gibbs chains; the likelihood needs $\log Z$ (exact for small models, AIS otherwise).
# - Langevin dynamics samples any differentiable density from its score alone, but only with noise
#   $\sqrt{2\eta}$ for step $\eta$: the lecture's $\sqrt{\eta}$ samples $p^2$.
# - The VAE maximises the ELBO, $\log p(\boldsymbol{x})$ minus the KL divergence from the encoder to the true
#   posterior; the Gaussian KL term is closed form and the reparameterisation trick gives the gradient of the rest.
#
# ### Hands-on
# | notebook | topic |
# |---|---|
# | `notebooks/00_data_and_setup` | profiles, device, data, the training loop |
# | `notebooks/01_rbm_pytorch` | the RBM, CD-$k$ and PCD on MNIST, the test log-likelihood by AIS |
# | `notebooks/02_rbm_keras` | the RBM in Keras (to come) |
# | `notebooks/03_langevin_sampling` | ULA, MALA and SGLD; the $\sqrt{2\eta}$ correction shown numerically |
# | `notebooks/04_ebm` | a deep energy-based model on MNIST, sampled by Langevin dynamics (to come) |
# | `notebooks/05_vae_pytorch` | the ELBO derivation checked in code; MLP and convolutional VAEs; IWAE |
# | `notebooks/06_vae_keras` | the keras.io VAE in Keras 3, checked against the PyTorch ELBO |
