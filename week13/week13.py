# ---
# jupyter:
#   jupytext:
#     cell_metadata_filter: slideshow,tags,-all
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

# %% [markdown] slideshow={"slide_type": "slide"}
# # Week 13: Deep generative models
# ### Boltzmann machines in code, energy-based models and Langevin sampling, variational autoencoders
#
# *Advanced machine learning and data analysis for the physical sciences*
#
# Following the lecture notes of Morten Hjorth-Jensen (University of Oslo and Michigan State University),
# week of April 15–19, 2024 (CC BY-NC 4.0).
#
# Every number on these slides is computed by the cells that show it.

# %% [markdown] slideshow={"slide_type": "notes"}
# **Speaker note.**
# About 90 minutes in all: part 1 (RBMs in code) 20 min, part 2 (EBMs, Langevin) 20 min, part 3 (the mathematics
# of VAEs) 35 min, part 4 (code) 15 min. Before class: `make run`, then `make slides`, so that the figures come from
# the full profile (the terminal says which notebook the slides were made from); `make handout` prints the PDF.
# Stress at the start: every formula on the slides is checked by a cell or a test, and where the original notes are
# wrong the slides say *Correction*; each is worth a sentence.

# %% slideshow={"slide_type": "skip"} tags=["parameters"]
profile = None  # "quick" or "full"; None: GENMODELS_PROFILE, else "full"
device = None
seed = 0

# %% slideshow={"slide_type": "skip"}
import torch

import genmodels
from genmodels.source import show_source  # the code of a function, without its docstring, for the slides

profile, device = genmodels.setup(profile, device, seed)

# %% [markdown] slideshow={"slide_type": "slide"}
# ## Plans for the week
#
# - Finish the Boltzmann machines: implementations in PyTorch and in TensorFlow/Keras
# - Other energy-based models, and **Langevin sampling** in place of Gibbs or Metropolis sampling
# - **Variational autoencoders** (VAEs): the mathematics and the code
#
# Last week (week 12): Boltzmann machines, their energy, the positive and negative phases of the
# log-likelihood gradient, and Gibbs sampling. Next: **generative adversarial networks**.
#
# *Correction:* the source calls those "generalized adversarial networks"; they are *generative* adversarial
# networks (Goodfellow et al. 2014).

# %% [markdown] slideshow={"slide_type": "notes"}
# **Speaker note.**
# 3 minutes. Connect to week 12: the RBM's energy and the two phases of its gradient are assumed known. Point out
# the first correction (generative, not "generalized", adversarial networks). Hands-on: students who have not yet
# run `notebooks/00_data_and_setup` should do so now; it shows the data, the profiles and the training loop that
# every other notebook uses.

# %% [markdown] slideshow={"slide_type": "subslide"}
# ## Readings
#
# - Goodfellow, Bengio and Courville, *Deep Learning*, sections 20.10–20.11 (VAEs)
# - Babcock and Bali, *Generative AI with Python and TensorFlow 2*, chapter 4 (an RBM in Keras)
# - Foster, *Generative Deep Learning* (2nd ed.), chapter 7 (energy-based models), built on
#   Du and Mordatch, [*Implicit generation and modeling with energy-based models*](https://arxiv.org/abs/1903.08689)
#   (2019)
# - Welling and Teh, *Bayesian learning via stochastic gradient Langevin dynamics* (ICML 2011)
# - Kingma and Welling, [*Auto-encoding variational Bayes*](https://arxiv.org/abs/1312.6114) (2014)
#
# Hands-on: `notebooks/00_data_and_setup` (data, profiles, the training loop), then one notebook per model.

# %% [markdown] slideshow={"slide_type": "slide"}
# # Part 1 · Restricted Boltzmann machines in code
#
# - the energy, the free energy and the conditionals, checked by brute force
# - contrastive divergence: what it estimates
# - the original PyTorch code, modernised, and run
# - the same model in TensorFlow/Keras

# %% [markdown] slideshow={"slide_type": "notes"}
# **Speaker note.**
# About 20 minutes. Stress that the free energy is what makes an RBM's likelihood computable up to $\log Z$, and
# that everything here is checked by enumeration on a 6×4 model. Point out why the original code's
# `log(exp(x) + 1)` fails in float32 (the cell shows `inf`). Switch to `notebooks/01_rbm_pytorch` after this part
# if the class has laptops: it trains a larger RBM by PCD and estimates its test log-likelihood by AIS.

# %% [markdown] slideshow={"slide_type": "subslide"}
# ## Energy and free energy
#
# A binary–binary RBM, visible units $\boldsymbol{v}\in\{0,1\}^{D}$, hidden units
# $\boldsymbol{h}\in\{0,1\}^{H}$:
#
# $$
# E(\boldsymbol{v},\boldsymbol{h}) = -\boldsymbol{b}^\top\boldsymbol{v} - \boldsymbol{c}^\top\boldsymbol{h}
#   - \boldsymbol{v}^\top\boldsymbol{W}\boldsymbol{h},
# \qquad
# p(\boldsymbol{v},\boldsymbol{h}) = \frac{e^{-E(\boldsymbol{v},\boldsymbol{h})}}{Z}.
# $$
#
# Summing out the hidden units gives the **free energy**, $p(\boldsymbol{v}) = e^{-F(\boldsymbol{v})}/Z$:
#
# $$
# \begin{aligned}
# F(\boldsymbol{v}) &= -\boldsymbol{b}^\top\boldsymbol{v}
#   - \sum_{j=1}^{H}\log\left(1 + e^{c_j + \boldsymbol{v}^\top\boldsymbol{W}_{:j}}\right)\\
# &= -\boldsymbol{b}^\top\boldsymbol{v}
#   - \sum_{j=1}^{H} \operatorname{softplus}\left(c_j + \boldsymbol{v}^\top\boldsymbol{W}_{:j}\right).
# \end{aligned}
# $$

# %% [markdown] slideshow={"slide_type": "fragment"}
# The conditionals factorise: $p(h_j=1\mid\boldsymbol{v}) = \sigma(c_j + \boldsymbol{v}^\top\boldsymbol{W}_{:j})$,
# $\;p(v_i=1\mid\boldsymbol{h}) = \sigma(b_i + \boldsymbol{W}_{i:}\boldsymbol{h})$.

# %% [markdown] slideshow={"slide_type": "subslide"}
# ## Checked by brute force
#
# On a small RBM (6 visible, 4 hidden units, random weights) every sum can be done by brute force:
# $F(\boldsymbol{v}) = -\log\sum_{\boldsymbol{h}} e^{-E(\boldsymbol{v},\boldsymbol{h})}$, and $\log Z$ by
# enumerating either layer.

# %% slideshow={"slide_type": "fragment"} tags=["nbval-check-output"]
from genmodels import rbm

g = torch.Generator().manual_seed(seed)
small = rbm.RBM(6, 4, init_std=1.0, generator=g)
v = torch.tensor([[1.0, 0, 1, 1, 0, 0]])
all_h = rbm.binary_states(4)
E = small.energy(v.expand(16, 6), all_h)
brute_force = -torch.logsumexp(-E, dim=0)
print(f"F(v): softplus formula {small.free_energy(v).item():.4f},"
      f" brute force over 16 h {brute_force.item():.4f}")
z_v = rbm.log_partition_exact(small, over="visible")
z_h = rbm.log_partition_exact(small, over="hidden")
print(f"log Z: over the 64 visible states {z_v:.4f}, "
      f"over the 16 hidden states {z_h:.4f}")

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
# - The model average needs samples from $p(\boldsymbol{v},\boldsymbol{h})$.
# - **CD-$k$** starts a Gibbs chain at the data and stops after $k$ steps.
# - **Persistent CD** keeps the chains running from one update to the next.
# - Neither follows the exact gradient; with large $k$, CD-$k$ approaches it (the tests check this against the
#   gradient computed by enumeration on a small RBM).

# %% [markdown] slideshow={"slide_type": "notes"}
# **Speaker note.**
# 3 minutes. CD-1 is biased but works; say that "the loss goes down" is not evidence of a better model: only the
# log-likelihood (with $\log Z$) is. The course's tests compare CD-$k$ with the exact gradient of a small RBM.

# %% [markdown] slideshow={"slide_type": "subslide"}
# ## What changed from the lecture's original PyTorch code
#
# - `torch.autograd.Variable` is gone since 2018: tensors carry gradients themselves.
# - It loads MNIST with `torchvision`; we read the IDX files ourselves (`genmodels.data`) and keep the
#   training set on the device as one tensor.
# - Its "loss" (the difference of free energies) has the right gradient but is not a likelihood; we report
#   the average log-likelihood in nats, with $\log Z$ exact (small models) or by annealed importance sampling.
# - Its free energy computed $\log(1 + e^{x})$ as `log(exp(x) + 1)`, which overflows to `inf` once
#   $x \gtrsim 89$ in float32; `softplus` is exact there:

# %% slideshow={"slide_type": "fragment"} tags=["nbval-check-output"]
x = torch.tensor([10.0, 88.0, 89.0, 100.0])  # float32, as on a GPU
print("log(exp(x) + 1):", torch.log(torch.exp(x) + 1).tolist())
print("softplus(x):    ", torch.nn.functional.softplus(x).tolist())

# %% [markdown] slideshow={"slide_type": "subslide"}
# ## The modernised code, run
#
# `genmodels.rbm.fit` trains with CD-$k$ or PCD through the course's training loop (data resident on the
# device, checkpoints, Ctrl-C safe); `genmodels.runs` holds each run's settings, here the lecture's shorter
# CD-1 run; `01_rbm_pytorch` trains a larger RBM by PCD and evaluates it with AIS.

# %% slideshow={"slide_type": "fragment"} tags=["remove-output"]
from genmodels import data, plotting, runs

dataset = data.load_data(profile)
settings = runs.settings("lecture_rbm", profile)
print(settings)  # CD-1 on binarised images
rbm_model = runs.build(settings, device, seed=seed)
history = runs.train(rbm_model, dataset, settings,
                     seed=seed, teaching=True)

# %% [markdown] slideshow={"slide_type": "subslide"}
# ## What the hidden units learnt
#
# Each filter is one hidden unit's weights to the 784 pixels, drawn as an image:

# %% slideshow={"slide_type": "fragment"}
weights = rbm_model.W.T[:24].reshape(-1, 28, 28)
plotting.show_images(weights, ncols=12, size=1.1, normalize=True,
                     title="weights of 24 hidden units")

# %% [markdown] slideshow={"slide_type": "notes"}
# **Speaker note.**
# The training log stays in the notebook, not on the slide. The filters are strokes and blobs, the parts from which
# the RBM composes digits. In the quick profile (8,000 images, a
# few epochs) they are rougher than after `make run`.

# %% [markdown] slideshow={"slide_type": "subslide"}
# ## An RBM in TensorFlow/Keras
#
# - Babcock and Bali (chapter 4) build the same model as a Keras `Model` whose training step runs Gibbs
#   sampling and applies the contrastive-divergence update by hand.
# - In Keras 3 the natural form is the same as in PyTorch: the conditionals as `keras.ops` expressions, and
#   the update either applied to the weights directly or obtained as the gradient of the free-energy
#   difference $F(\boldsymbol{v}_{\text{data}}) - F(\boldsymbol{v}_{\text{model}})$, with the negative
#   samples held fixed.
#
# **Hands-on:** `notebooks/02_rbm_keras` mirrors `genmodels.rbm` in Keras, name for name.

# %% [markdown] slideshow={"slide_type": "slide"}
# # Part 2 · Energy-based models and Langevin sampling
#
# - a density from any energy function, and the gradient of its log-likelihood
# - Langevin dynamics: sampling from the score alone, and a correction to the lecture's update
# - stochastic gradient Langevin dynamics for Bayesian posteriors

# %% [markdown] slideshow={"slide_type": "notes"}
# **Speaker note.**
# About 20 minutes. The one thing to stress: the noise of the Langevin update is $\sqrt{2\eta}$, not the source's
# $\sqrt{\eta}$; with $\sqrt\eta$ the chain samples $p^2$, which the two cells show for a unit Gaussian (variance
# 1/2 instead of 1). Hands-on afterwards: `notebooks/03_langevin_sampling` (ULA against MALA, SGLD against the exact
# posterior); `notebooks/04_energy_based_model` trains a deep EBM on MNIST.

# %% [markdown] slideshow={"slide_type": "subslide"}
# ## Energy-based models
#
# An energy function $E_\theta(\boldsymbol{x})$, for example a convolutional network with one output, defines
#
# $$
# p_\theta(\boldsymbol{x}) = \frac{e^{-E_\theta(\boldsymbol{x})}}{Z_\theta},
# \qquad
# \nabla_\theta \log p_\theta(\boldsymbol{x}) = -\nabla_\theta E_\theta(\boldsymbol{x})
#   + \mathbb{E}_{\boldsymbol{x}'\sim p_\theta}\left[\nabla_\theta E_\theta(\boldsymbol{x}')\right].
# $$
#
# - The same positive and negative phases as for the RBM, but no conditional independence to exploit.
# - The negative samples come from **Langevin dynamics**, which needs only
#   $\nabla_{\boldsymbol{x}}\log p = -\nabla_{\boldsymbol{x}} E$: the unknown $Z_\theta$ drops out.
# - Du and Mordatch (2019) train image EBMs this way, starting the chains from noise and from a replay
#   buffer of earlier samples; Foster's chapter 7 rebuilds their model for MNIST.
#
# **Hands-on:** `notebooks/04_energy_based_model`; the sampler alone in `notebooks/03_langevin_sampling`.

# %% [markdown] slideshow={"slide_type": "notes"}
# **Speaker note.**
# Correction to point out: the source says the sampler's derivative "involves the so-called positive and negative
# phases". The sampler needs $\nabla_{\boldsymbol{x}}\log p = -\nabla_{\boldsymbol{x}}E$, in which $Z$ drops out;
# the two phases belong to $\nabla_\theta$, the training gradient above.

# %% [markdown] slideshow={"slide_type": "subslide"}
# ## The Langevin update, and a correction
#
# The lecture writes the update as
#
# $$\theta_{i+1} = \theta_i + \eta\nabla_\theta\log p(\theta_i) + \sqrt{\eta}\,w_i,
# \qquad w_i\sim\mathcal{N}(0,1).$$
#
# With this noise the chain does **not** sample $p$. The Langevin diffusion
# $d\theta = \nabla\log p(\theta)\,dt + \sqrt{2}\,dB_t$ has $p$ as its stationary density: its Fokker–Planck
# equation $\partial_t\rho = -\nabla\cdot(\rho\nabla\log p) + \nabla^2\rho$ vanishes at $\rho = p$.

# %% [markdown] slideshow={"slide_type": "fragment"}
# Discretised with step $\eta$ (or $\epsilon = 2\eta$):
#
# $$
# \begin{aligned}
# \theta_{i+1} &= \theta_i + \eta\nabla_\theta\log p(\theta_i) + \sqrt{2\eta}\,w_i\\
# &= \theta_i + \tfrac{\epsilon}{2}\nabla_\theta\log p(\theta_i) + \sqrt{\epsilon}\,w_i .
# \end{aligned}
# $$
#
# With $\sqrt{\eta}$ the drift is twice too strong for the noise: the chain samples $p^2$ (normalised), whose
# variance for a unit Gaussian is $1/2$.

# %% [markdown] slideshow={"slide_type": "notes"}
# **Speaker note.**
# Correction to point out: $\sqrt{2\eta}$, not $\sqrt\eta$. Derive it from Fokker–Planck only if the class knows it;
# otherwise the next two slides show it numerically. 5 minutes.

# %% [markdown] slideshow={"slide_type": "subslide"}
# ## A unit Gaussian, exactly
#
# $\nabla\log p(\theta) = -\theta$, so both rules are linear:
# $\theta_{i+1} = (1-\eta)\theta_i + s\,w_i$, with stationary variance
#
# $$\frac{s^2}{1-(1-\eta)^2} = \frac{s^2}{\eta(2-\eta)}.$$
#
# The lecture's $s^2=\eta$ gives $1/(2-\eta)\approx 1/2$; the corrected $s^2 = 2\eta$ gives
# $2/(2-\eta)\approx 1$, exact as $\eta\to 0$.

# %% slideshow={"slide_type": "fragment"} tags=["nbval-check-output"]
from genmodels import langevin

stationary = langevin.ula_gaussian_stationary_covariance
for eta in (0.5, 0.1, 0.01):
    lecture = stationary([[1.0]], eta, noise_scale=1.0).item()
    corrected = stationary([[1.0]], eta).item()
    print(f"eta = {eta:<5} stationary variance: lecture's rule "
          f"{lecture:.4f}, sqrt(2 eta) rule {corrected:.4f}")

# %% [markdown] slideshow={"slide_type": "subslide"}
# ## The same by sampling
#
# 2,000 chains run by `genmodels.langevin.ula` on $\log p(\theta) = -\theta^2/2$, step $\eta = 0.01$:

# %% slideshow={"slide_type": "fragment"}
def log_p(theta):
    return -0.5 * (theta**2).sum(-1)


start = torch.zeros(2000, 1, device=device)
rules = (("lecture's rule, sqrt(eta) w", 1.0),
         ("corrected, sqrt(2 eta) w", 2**0.5))
for rule, c in rules:
    chains = langevin.ula(log_p, start, step_size=0.01, n_steps=1500,
                 burn_in=1000, thin=50, noise_scale=c, seed=seed)
    variance = chains.flat().var().item()
    print(f"{rule:<28} sample variance {variance:.3f}")

# %% [markdown] slideshow={"slide_type": "subslide"}
# ## Stochastic gradient Langevin dynamics (SGLD)
#
# SGLD (Welling and Teh 2011) samples a Bayesian **posterior** over parameters,
# $p(\theta\mid x_{1:N}) \propto p(\theta)\prod_{i=1}^{N}p(x_i\mid\theta)$, with the minibatch gradients of SGD:
#
# $$
# \begin{aligned}
# \theta_{t+1} = \theta_t &+ \frac{\epsilon_t}{2}\Big(\nabla\log p(\theta_t)
#   + \frac{N}{n}\sum_{i\in\text{batch}}\nabla\log p(x_i\mid\theta_t)\Big)\\
# &+ \sqrt{\epsilon_t}\,w_t,
# \qquad \epsilon_t = a\,(b+t)^{-\gamma}.
# \end{aligned}
# $$
#
# The factor $N/n$ makes the minibatch sum an unbiased estimate of the full-data gradient.

# %% [markdown] slideshow={"slide_type": "fragment"}
# - With $\sum_t\epsilon_t=\infty$ and $\sum_t\epsilon_t^2<\infty$ (e.g. $\gamma\in(0.5, 1]$) the injected noise
#   dominates the minibatch noise as $\epsilon_t\to 0$: from optimisation to sampling, with no
#   Metropolis–Hastings step.
# - The lecture suggests starting from a uniform draw in $[-1, 1]$; any start works, the early iterates are
#   burn-in.
# - *Correction:* the source's "SGLD" update has no minibatch and no $N/n$, and "updates the log of this
#   probability"; SGLD updates $\theta$, as above (`03_langevin_sampling` computes the minibatch estimate).

# %% [markdown] slideshow={"slide_type": "notes"}
# **Speaker note.**
# 4 minutes. `notebooks/03_langevin_sampling` runs SGLD on Welling and Teh's two-mode mixture posterior and compares
# it with the exact posterior on a grid: a good moment to switch to the notebook for ten minutes.

# %% [markdown] slideshow={"slide_type": "slide"}
# # Part 3 · Variational autoencoders
#
# - the autoencoder again, and what a generative model needs in addition
# - the marginal likelihood with latent variables; the KL divergence
# - the ELBO: the central equation of VAEs, derived and checked
# - the Gaussian encoder, its closed-form KL, and the reparameterisation trick

# %% [markdown] slideshow={"slide_type": "notes"}
# **Speaker note.**
# About 35 minutes, the heart of the lecture. Stress the central equation: $\log p(\boldsymbol{x})$ minus a KL
# divergence equals the ELBO, so maximising the ELBO both raises the likelihood and pulls the encoder towards the true
# posterior. Corrections to point out in this part: the prior is $p(\boldsymbol{h})$, not $p(\boldsymbol{h},
# \boldsymbol{n})$; the KL divergence is not the "Shannon entropy"; the RBM's KL uses the free energy $F$, not $E$;
# the conditional ELBO has $\log p(y_i\mid x_i)$, not $\log p(y_i\mid y_i)$; $\Sigma$ depends on $\boldsymbol{x}$.
# Hands-on afterwards: `notebooks/05_vae_pytorch` checks the derivation step by step.

# %% [markdown] slideshow={"slide_type": "subslide"}
# ## The autoencoder again
#
# A network trained to reproduce its input: the **encoder** maps the input to a code,
# $\boldsymbol{h} = f(\boldsymbol{x};\boldsymbol{W})$, the **decoder** maps it back,
# $\tilde{\boldsymbol{x}} = g(\boldsymbol{h};\boldsymbol{V})$; both minimise a reconstruction error
# $\lVert\boldsymbol{x}-\tilde{\boldsymbol{x}}\rVert^2$ (or a cross-entropy).

# %% slideshow={"slide_type": "fragment"}
plotting.autoencoder_diagram()

# %% [markdown] slideshow={"slide_type": "fragment"}
# A small code keeps what matters (week 10), but a random $\boldsymbol{h}$ decodes to no digit: not a generative model.

# %% [markdown] slideshow={"slide_type": "notes"}
# **Speaker note.**
# 3 minutes. The diagram is drawn by `genmodels.plotting.autoencoder_diagram`; the VAE version
# (`variational=True`) comes back at the reparameterisation slide.

# %% [markdown] slideshow={"slide_type": "subslide"}
# ## The marginal likelihood with latent variables
#
# With latent variables $\boldsymbol{h}$ and parameters $\boldsymbol{\Theta}$ the model of the data is the marginal
#
# $$
# p(\boldsymbol{x};\boldsymbol{\Theta})
#   = \int d\boldsymbol{h}\; p(\boldsymbol{x},\boldsymbol{h};\boldsymbol{\Theta})
# \quad\text{or}\quad
# \sum_{\boldsymbol{h}} p(\boldsymbol{x},\boldsymbol{h};\boldsymbol{\Theta})
# \quad\text{(continuous or discrete } \boldsymbol{h}\text{)}.
# $$
#
# By the law of total probability, with the conditional $p(\boldsymbol{x}\mid\boldsymbol{h};\boldsymbol{\Theta})$
# and the prior $p(\boldsymbol{h})$,
#
# $$p(\boldsymbol{x};\boldsymbol{\Theta})
#   = \sum_{\boldsymbol{h}} p(\boldsymbol{x}\mid\boldsymbol{h};\boldsymbol{\Theta})\,p(\boldsymbol{h}).$$
#
# Training maximises this likelihood of the data over $\boldsymbol{\Theta}$.
#
# *Correction:* the source writes the prior as $p(\boldsymbol{h},\boldsymbol{n})$; it is $p(\boldsymbol{h})$.

# %% [markdown] slideshow={"slide_type": "subslide"}
# ## VAEs versus autoencoders
#
# - The decoder outputs a **distribution**, not a point: with Gaussian outputs
#   $p(\boldsymbol{x}\mid\boldsymbol{h};\boldsymbol{\Theta})
#   = \mathcal{N}\left(\boldsymbol{x}\mid f(\boldsymbol{h};\boldsymbol{\Theta}), \sigma^2\boldsymbol{I}\right)$;
#   for binarised MNIST a Bernoulli per pixel (minus the binary cross-entropy).
# - **Gradient descent**: $p(\boldsymbol{x};\boldsymbol{\Theta})$ is continuous in $\boldsymbol{\Theta}$, so we
#   can raise it by making $f(\boldsymbol{h};\boldsymbol{\Theta})$ approach $\boldsymbol{x}$ for the
#   $\boldsymbol{h}$ that matter. *Correction:* the source says the marginal "can be computed"; only
#   $p(\boldsymbol{x}\mid\boldsymbol{h})$ can, and the integral over $\boldsymbol{h}$ is why the ELBO exists.
# - The "autoencoder" is what the training objective turns out to look like: no sparsity penalty to tune,
#   and sampling is direct ($\boldsymbol{h}\sim p(\boldsymbol{h})$, then decode), with no Markov chain.
# - Two problems remain: what the latent variables mean, and how to do the integral over $\boldsymbol{h}$.

# %% [markdown] slideshow={"slide_type": "subslide"}
# ## The Kullback–Leibler divergence
#
# To compare an unknown density $p$ with an approximation $q$:
#
# $$\mathrm{KL}(p\,\|\,q) = \int d\boldsymbol{x}\; p(\boldsymbol{x})
#   \log\frac{p(\boldsymbol{x})}{q(\boldsymbol{x})}\ \ge 0,$$
#
# zero only when $p=q$, and not symmetric. It is also called the **relative entropy**.
#
# *Correction:* the source also calls it the "Shannon entropy". It is not: the Shannon entropy is
# $H(p) = -\int p\log p$, and $\mathrm{KL}(p\|q) = H(p, q) - H(p)$, the cross-entropy minus the entropy.

# %% [markdown] slideshow={"slide_type": "subslide"}
# ## The KL divergence and maximum likelihood for RBMs
#
# Data distributed as $f(\boldsymbol{x})$, an RBM with marginal
# $p(\boldsymbol{x};\boldsymbol{\Theta}) = e^{-F(\boldsymbol{x})}/Z$:
#
# $$
# \begin{aligned}
# \mathrm{KL}\left(f\,\|\,p\right) &= \int d\boldsymbol{x}\, f(\boldsymbol{x})\log f(\boldsymbol{x})
#   - \int d\boldsymbol{x}\, f(\boldsymbol{x})\log p(\boldsymbol{x};\boldsymbol{\Theta}) \\
# &= \langle\log f\rangle_{\text{data}} - \langle\log p(\boldsymbol{x};\boldsymbol{\Theta})\rangle_{\text{data}}\\
# &= \langle\log f\rangle_{\text{data}} + \langle F(\boldsymbol{x})\rangle_{\text{data}} + \log Z .
# \end{aligned}
# $$
#
# The first term does not depend on $\boldsymbol{\Theta}$: **minimising the KL divergence is maximising the
# average log-likelihood** $\langle\log p\rangle_{\text{data}}$.
#
# *Correction:* the source writes $\langle E(\boldsymbol{x})\rangle_{\text{data}}$; for the marginal over the
# visible units it is the free energy $F(\boldsymbol{x})$.

# %% [markdown] slideshow={"slide_type": "subslide"}
# ## Checked on the small RBM
#
# With a data distribution $f$ over its 64 visible states:

# %% slideshow={"slide_type": "fragment"} tags=["nbval-check-output"]
all_v = rbm.binary_states(6)
g = torch.Generator().manual_seed(seed)
f = torch.softmax(
    torch.randn(64, generator=g, dtype=torch.float64), 0)
log_z = rbm.log_partition_exact(small)
F_v = small.free_energy(all_v).double()
log_p_v = -F_v - log_z
kl = (f * (f.log() - log_p_v)).sum()
rhs = (f * f.log()).sum() + (f * F_v).sum() + log_z
print(f"KL(f || p) = {kl.item():.5f}"
      f"   <log f> + <F> + log Z = {rhs.item():.5f}")
nll = -(f * log_p_v).sum().item()
print(f"-<log p>_f (the negative log-likelihood) = {nll:.5f}, "
      f"<log f> = {(f * f.log()).sum().item():.5f}")

# %% [markdown] slideshow={"slide_type": "subslide"}
# ## The source's version overstates the KL divergence
#
# With $\langle E\rangle$ in place of $\langle F\rangle$, $\boldsymbol{h}$ drawn from
# $p(\boldsymbol{h}\mid\boldsymbol{v})$ (averaged exactly: $E$ is linear in $\boldsymbol{h}$), since
#
# $$F(\boldsymbol{v}) = \langle E(\boldsymbol{v},\boldsymbol{h})\rangle_{p(\boldsymbol{h}\mid\boldsymbol{v})}
#   - H[p(\boldsymbol{h}\mid\boldsymbol{v})],$$
#
# the difference is the average entropy of the hidden units:

# %% slideshow={"slide_type": "fragment"} tags=["nbval-check-output"]
ph = small.p_h_given_v(all_v)  # p(h_j = 1 | v), all 64 v
mean_E = small.energy(all_v, ph).double()  # E is linear in h
source = (f * f.log()).sum() + (f * mean_E).sum() + log_z
print(f"KL(f || p) = {kl.item():.4f}; <log f> + <.> + log Z with "
      f"<F>: {rhs.item():.4f}, with <E>: {source.item():.4f}")
minus_h = ph * ph.log() + (1 - ph) * (1 - ph).log()  # -H per unit
H = -(f * minus_h.sum(1).double()).sum()  # entropy of p(h|v)
print(f"<E> - <F> = {(f * (mean_E - F_v)).sum().item():.4f} nats"
      f" = <H[p(h|v)]> = {H.item():.4f}")

# %% [markdown] slideshow={"slide_type": "subslide"}
# ## Back to VAEs: sample the latent variables that matter
#
# For most $\boldsymbol{h}$, $p(\boldsymbol{x}\mid\boldsymbol{h})$ is nearly zero: averaging it over the prior
# wastes almost every sample. An **encoder** $Q(\boldsymbol{h}\mid\boldsymbol{x})$ proposes the $\boldsymbol{h}$
# likely to have produced $\boldsymbol{x}$. How does that help with $p(\boldsymbol{x})$? Start from the KL
# divergence between $Q$ and the true posterior:
#
# $$\mathcal{D}\left[Q(\boldsymbol{h})\,\|\,p(\boldsymbol{h}\mid\boldsymbol{x})\right]
#   = E_{\boldsymbol{h}\sim Q}\left[\log Q(\boldsymbol{h})
#   - \log p(\boldsymbol{h}\mid\boldsymbol{x})\right].$$

# %% [markdown] slideshow={"slide_type": "fragment"}
# **Bayes' rule**, $p(\boldsymbol{h}\mid\boldsymbol{x})
# = p(\boldsymbol{x}\mid\boldsymbol{h})p(\boldsymbol{h})/p(\boldsymbol{x})$, brings in $p(\boldsymbol{x})$,
# which leaves the expectation because it does not depend on $\boldsymbol{h}$:
#
# $$
# \begin{aligned}
# \mathcal{D}\left[Q(\boldsymbol{h})\,\|\,p(\boldsymbol{h}\mid\boldsymbol{x})\right]
#   = E_{\boldsymbol{h}\sim Q}\big[&\log Q(\boldsymbol{h}) - \log p(\boldsymbol{x}\mid\boldsymbol{h})
#   - \log p(\boldsymbol{h})\big]\\ &+ \log p(\boldsymbol{x}).
# \end{aligned}
# $$

# %% [markdown] slideshow={"slide_type": "subslide"}
# ## Rearranging: the central equation of VAEs
#
# Negate, rearrange, collect $E_Q[\log Q - \log p(\boldsymbol{h})]$ into a KL divergence, and let $Q$ depend on
# $\boldsymbol{x}$, since we want it to make $\mathcal{D}[Q\|p(\boldsymbol{h}\mid\boldsymbol{x})]$ small:
#
# $$
# \boxed{\begin{aligned}
# \log p(\boldsymbol{x})
#   &- \mathcal{D}\left[Q(\boldsymbol{h}\mid\boldsymbol{x})\,\|\,p(\boldsymbol{h}\mid\boldsymbol{x})\right]\\
#   &= E_{\boldsymbol{h}\sim Q}\left[\log p(\boldsymbol{x}\mid\boldsymbol{h})\right]
#   - \mathcal{D}\left[Q(\boldsymbol{h}\mid\boldsymbol{x})\,\|\,p(\boldsymbol{h})\right]
# \end{aligned}}
# $$
#
# - Left: what we want to maximise, $\log p(\boldsymbol{x})$, minus an error term that is $\ge 0$.
# - Right: the **evidence lower bound (ELBO)**, which stochastic gradient descent can optimise for a good
#   choice of $Q$. The bound is tight when $Q$ equals the true posterior.

# %% [markdown] slideshow={"slide_type": "notes"}
# **Speaker note.**
# 5 minutes: the slide to stop on. Ask the class which side is computable. Then the conditional version, and its
# correction ($\log p(y_i\mid x_i)$, not $\log p(y_i\mid y_i)$).

# %% [markdown] slideshow={"slide_type": "subslide"}
# ## The same, conditionally
#
# For a model of $y_i$ given $x_i$, the same steps give
#
# $$
# \begin{aligned}
# \log p(y_i\mid x_i) &- \mathcal{D}[Q(\boldsymbol{h})\|p(\boldsymbol{h}\mid x_i, y_i)]\\
# &= E_{\boldsymbol{h}\sim Q}\left[\log p(y_i\mid\boldsymbol{h}, x_i) + \log p(\boldsymbol{h}\mid x_i)
#   - \log Q(\boldsymbol{h})\right],
# \end{aligned}
# $$
#
# so the right-hand side approximates $\log p(y_i\mid x_i)$.
#
# *Correction:* the source writes $\log p(y_i\mid y_i)$ there; it is $\log p(y_i\mid x_i)$.

# %% [markdown] slideshow={"slide_type": "subslide"}
# ## Checked on a conditional linear-Gaussian model
#
# $p(\boldsymbol{h}\mid x) = \mathcal{N}(Ax, I)$,
# $p(y\mid\boldsymbol{h}, x) = \mathcal{N}(W\boldsymbol{h} + Bx + b, s^2 I)$: $\log p(y\mid x)$ and
# $p(\boldsymbol{h}\mid x, y)$ are closed forms (`vae.ConditionalLinearGaussian`). A $Q$ that is not the
# posterior (wrong covariance), and the right-hand side by sampling 100,000 $\boldsymbol{h}\sim Q$:

# %% slideshow={"slide_type": "skip"}
from torch.distributions import MultivariateNormal, kl_divergence

from genmodels import vae

g = torch.Generator().manual_seed(seed)
A, W, B, b, x_i, y_i, eps = (
    torch.randn(*shape, generator=g, dtype=torch.float64)
    for shape in ((3, 2), (4, 3), (4, 2), (4,), (1, 2), (1, 4),
                  (100_000, 1, 3)))
cond = vae.ConditionalLinearGaussian(A, W, B, b, noise_std=0.5)
posterior = cond.true_posterior(y_i, x_i)
Q = MultivariateNormal(posterior.mean, 0.1 * torch.eye(3).double())

# %% slideshow={"slide_type": "fragment"} tags=["nbval-check-output"]
gap = kl_divergence(Q, posterior)  # Q is not the posterior
left = cond.log_marginal(y_i, x_i) - gap
h = Q.mean + 0.1**0.5 * eps  # 100,000 draws from Q
right = (cond.log_likelihood_given_h(y_i, h, x_i)
         + cond.prior(x_i).log_prob(h) - Q.log_prob(h))
se = right.std() / len(h) ** 0.5
print(f"log p(y|x) - D[Q || p(h|x, y)] = {left.item():.3f} nats"
      f" (D = {gap.item():.3f})")
print(f"E_Q[log p(y|h, x) + log p(h|x) - log Q(h)] = "
      f"{right.mean():.3f} ± {se:.3f} nats")

# %% [markdown] slideshow={"slide_type": "subslide"}
# ## Setting up stochastic gradient descent
#
# The usual encoder is a Gaussian with diagonal covariance,
#
# $$Q(\boldsymbol{h}\mid\boldsymbol{x})
#   = \mathcal{N}\left(\boldsymbol{h}\mid\mu(\boldsymbol{x};\vartheta), \Sigma(\boldsymbol{x};\vartheta)\right),$$
#
# where $\mu$ and $\Sigma$ are neural networks with parameters $\vartheta$. They *encode* $\boldsymbol{x}$ into the
# latent space, hence the name. (The source writes $\Sigma(;\vartheta)$: it depends on $\boldsymbol{x}$ too.)
#
# With the prior $p(\boldsymbol{h}) = \mathcal{N}(0, \boldsymbol{I})$ the last term of the ELBO is a KL divergence
# between two Gaussians, in closed form for dimension $k$:
#
# $$
# \begin{aligned}
# \mathcal{D}\left[\mathcal{N}(\mu_0,\Sigma_0)\,\|\,\mathcal{N}(\mu_1,\Sigma_1)\right] = \frac12\Big(
#   &\operatorname{tr}\left(\Sigma_1^{-1}\Sigma_0\right) + (\mu_1-\mu_0)^\top\Sigma_1^{-1}(\mu_1-\mu_0)\\
#   &- k + \log\frac{\det\Sigma_1}{\det\Sigma_0}\Big).
# \end{aligned}
# $$

# %% [markdown] slideshow={"slide_type": "subslide"}
# ## The KL term for a standard normal prior
#
# For $\mathcal{N}(0, \boldsymbol{I})$ and diagonal $\Sigma = \operatorname{diag}(\sigma_1^2,\dots,\sigma_k^2)$
# the general formula **simplifies** to
#
# $$
# \begin{aligned}
# \mathcal{D}\left[\mathcal{N}(\mu(\boldsymbol{x}),\Sigma(\boldsymbol{x}))\,\|\,\mathcal{N}(0,\boldsymbol{I})\right]
#   &= \frac12\left(\operatorname{tr}\Sigma + \mu^\top\mu - k - \log\det\Sigma\right)\\
#   &= \frac12\sum_{j=1}^{k}\left(\sigma_j^2 + \mu_j^2 - 1 - \log\sigma_j^2\right).
# \end{aligned}
# $$

# %% slideshow={"slide_type": "fragment"} tags=["nbval-check-output"]
from genmodels.vae import kl_gaussians, kl_standard_normal

mu = torch.tensor([[0.5, -1.0, 2.0]])
log_var = torch.tensor([[0.0, -1.0, 0.7]])
zeros = torch.zeros_like(mu)
simple = kl_standard_normal(mu, log_var).item()
general = kl_gaussians(mu, log_var, zeros, zeros).item()
print(f"simplified formula:           KL = {simple:.4f} nats")
print(f"general formula, mu_1=0, S_1=I: KL = {general:.4f} nats")

# %% [markdown] slideshow={"slide_type": "subslide"}
# ## … and by Monte Carlo
#
# The KL divergence is the average of $\log Q(\boldsymbol{h}) - \log p(\boldsymbol{h})$ over
# $\boldsymbol{h}\sim Q$; a million samples agree with the closed form to within two standard errors:

# %% slideshow={"slide_type": "fragment"}
q = torch.distributions.Normal(mu, (0.5 * log_var).exp())
h = q.sample((1_000_000,))
prior = torch.distributions.Normal(0.0, 1.0)
log_ratio = (q.log_prob(h) - prior.log_prob(h)).sum(-1)
se = log_ratio.std() / len(h) ** 0.5
print(f"Monte Carlo:                  "
      f"KL = {log_ratio.mean():.4f} ± {se:.4f} nats, "
      f"{abs(log_ratio.mean() - simple) / se:.1f} s.e. off")

# %% [markdown] slideshow={"slide_type": "subslide"}
# ## The terms to compute
#
# $E_{\boldsymbol{h}\sim Q}[\log p(\boldsymbol{x}\mid\boldsymbol{h})]$ has no closed form. As in any stochastic
# gradient method, one sample of $\boldsymbol{h}$ per data point is an unbiased estimate, and we already average
# over minibatches of data $D$. The objective over the data set is
#
# $$
# \begin{aligned}
# E_{\boldsymbol{x}\sim D}\Big[\log p(\boldsymbol{x})
#   &- \mathcal{D}\left[Q(\boldsymbol{h}\mid\boldsymbol{x})\,\|\,p(\boldsymbol{h}\mid\boldsymbol{x})\right]\Big]\\
# &= E_{\boldsymbol{x}\sim D}\Big[E_{\boldsymbol{h}\sim Q}\left[\log p(\boldsymbol{x}\mid\boldsymbol{h})\right]
#   - \mathcal{D}\left[Q(\boldsymbol{h}\mid\boldsymbol{x})\,\|\,p(\boldsymbol{h})\right]\Big],
# \end{aligned}
# $$
#
# and for one $\boldsymbol{x}$ and one $\boldsymbol{h}\sim Q(\boldsymbol{h}\mid\boldsymbol{x})$ we take the gradient
# of $\log p(\boldsymbol{x}\mid\boldsymbol{h}) -
# \mathcal{D}\left[Q(\boldsymbol{h}\mid\boldsymbol{x})\,\|\,p(\boldsymbol{h})\right]$.

# %% [markdown] slideshow={"slide_type": "notes"}
# **Speaker note.**
# The source switches to $X$, $z$, $P$ from here; the slides keep $\boldsymbol{x}$, $\boldsymbol{h}$, $p$. Say so,
# since students reading the original notes will meet both.

# %% [markdown] slideshow={"slide_type": "subslide"}
# ## The reparameterised gradient
#
# $E_{\boldsymbol{h}\sim Q}[\log p(\boldsymbol{x}\mid\boldsymbol{h})]$ depends on the encoder's parameters through
# the *distribution* we sample from, and sampling has no gradient. Write the sample as a deterministic function
# of the parameters and of parameter-free noise:
#
# $$
# \boldsymbol{h} = \mu(\boldsymbol{x}) + \Sigma^{1/2}(\boldsymbol{x})\,\boldsymbol{\epsilon},
# \qquad \boldsymbol{\epsilon}\sim\mathcal{N}(0,\boldsymbol{I}).
# $$

# %% slideshow={"slide_type": "fragment"}
plotting.autoencoder_diagram(variational=True)

# %% [markdown] slideshow={"slide_type": "notes"}
# **Speaker note.**
# Correction to point out: the source says the gradient symbol "can be moved into the expectations". Not while
# the distribution $Q$ depends on the parameters being differentiated: that is the whole difficulty, and the
# reparameterisation removes it by moving the parameters out of the distribution, into $\mu$ and $\Sigma^{1/2}$.

# %% [markdown] slideshow={"slide_type": "subslide"}
# ## The objective, reparameterised
#
# $$
# \begin{aligned}
# E_{\boldsymbol{x}\sim D}\Big[&E_{\boldsymbol{\epsilon}\sim\mathcal{N}(0,\boldsymbol{I})}\left[\log p\left(
#   \boldsymbol{x}\mid\boldsymbol{h}=\mu(\boldsymbol{x})+\Sigma^{1/2}(\boldsymbol{x})\,\boldsymbol{\epsilon}
#   \right)\right]\\
#   &- \mathcal{D}\left[Q(\boldsymbol{h}\mid\boldsymbol{x})\,\|\,p(\boldsymbol{h})\right]\Big].
# \end{aligned}
# $$
#
# - Now the gradient passes through $\mu$ and $\Sigma$ into the encoder: in PyTorch `Normal.rsample()`, in
#   Keras a `Sampling` layer.
# - It has the same expectation as the score-function (REINFORCE) gradient, and a variance that does not grow
#   with the number of latent dimensions, where the score function's does; the tests of `genmodels.vae` check both.

# %% [markdown] slideshow={"slide_type": "notes"}
# **Speaker note.**
# 4 minutes. If time is short, skip the REINFORCE comparison: `notebooks/05_vae_pytorch` measures both gradients'
# variance.

# %% [markdown] slideshow={"slide_type": "slide"}
# # Part 4 · Code examples in Keras and PyTorch
#
# The source shows two fragments: fchollet's convolutional VAE from keras.io (a `Sampling` layer and a custom
# `train_step` written with `tf.GradientTape`), and a PyTorch encoder that returns a `torch.distributions.Normal`
# (written with `Variable` and torchvision).
#
# Below is our equivalent, built on `genmodels`, and run; `05_vae_pytorch` and `06_vae_keras` go through both in
# detail.

# %% [markdown] slideshow={"slide_type": "notes"}
# **Speaker note.**
# About 15 minutes. Show that the code reads like the equations: `q.rsample()` is the reparameterised sample,
# `kl_divergence(q, prior)` the closed form. Training logs stay in the notebook. With the quick profile (the
# committed deck) the models train for seconds to a minute; after `make run` the figures are from the full profile.
# End by sending students to `notebooks/05_vae_pytorch` and `notebooks/06_vae_keras`.

# %% [markdown] slideshow={"slide_type": "subslide"}
# ## PyTorch: an encoder that returns a `Normal`

# %% slideshow={"slide_type": "fragment"}
show_source(vae.MLPEncoder)

# %% [markdown] slideshow={"slide_type": "subslide"}
# ## PyTorch: the two terms of the ELBO
#
# The ELBO reads like the equation: `q.rsample()` is the reparameterised sample,
# `kl_divergence(q, prior)` the closed form.

# %% slideshow={"slide_type": "fragment"}
show_source(vae.elbo_terms)

# %% [markdown] slideshow={"slide_type": "subslide"}
# ## PyTorch: trained, and evaluated in nats
#
# A few epochs on dynamically binarised images (`05_vae_pytorch` trains to convergence); the test ELBO and the
# importance-weighted bound on a test set binarised once:

# %% slideshow={"slide_type": "fragment"} tags=["remove-output"]
x_test = data.binarize_once(dataset.x_test)  # the course's one seed
settings = runs.settings("lecture_vae", profile)
print(settings)
vae_model = runs.build(settings, device, seed=seed)
history = runs.train(vae_model, dataset, settings,
                     seed=seed, teaching=True)

# %% slideshow={"slide_type": "fragment"}
k = profile.pick(quick=50, full=200)
bounds = vae.likelihood_bounds(vae_model, x_test[:1000], k=k)
print(f"test ELBO {bounds['elbo']:.1f} nats, "
      f"IWAE bound {bounds['iwae']:.1f} nats (1,000 test images)")

# %% [markdown] slideshow={"slide_type": "subslide"}
# ## PyTorch: new images
#
# $\boldsymbol{h} \sim \mathcal{N}(0, \boldsymbol{I})$, then the decoder's pixel probabilities:

# %% slideshow={"slide_type": "fragment"}
samples = vae.generate(vae_model, 24,
                       torch.Generator(device).manual_seed(seed))
plotting.show_images(samples, ncols=12, size=1.1,
                     title="24 samples of the VAE (PyTorch)")

# %% [markdown] slideshow={"slide_type": "subslide"}
# ## Keras: keras.io's VAE on any backend
#
# keras.io overrides `train_step` with `tf.GradientTape`, tied to TensorFlow; in Keras 3 the loss goes into
# `compute_loss`, and `model.fit` trains it on any backend. The `Sampling` layer draws its noise with `keras.random`:

# %% slideshow={"slide_type": "fragment"}
from genmodels import vae_keras  # imports Keras only now

show_source(vae_keras.Sampling)

# %% [markdown] slideshow={"slide_type": "subslide"}
# ## Keras: the loss
#
# The terms are the ones above, in `keras.ops`; `elbo_terms` returns the reconstruction term and the closed-form
# KL divergence per image.

# %% slideshow={"slide_type": "fragment"}
show_source(vae_keras.VAE.compute_loss)

# %% [markdown] slideshow={"slide_type": "subslide"}
# ## Keras: a 2-D latent space
#
# With two latent dimensions the decoder can be drawn over the whole latent space: decode a grid of
# $\boldsymbol{h}$ evenly spaced in probability under the prior (the *latent manifold*).

# %% slideshow={"slide_type": "fragment"} tags=["remove-output"]
settings = runs.settings("lecture_vae_keras", profile)
print(settings)
keras_vae = runs.build(settings, device, seed=seed)
keras_history = runs.train(keras_vae, dataset, settings,
                           seed=seed, teaching=True)

# %% [markdown] slideshow={"slide_type": "notes"}
# **Speaker note.**
# The run `lecture_vae_keras` (its settings printed in the notebook): the quick profile trains a few epochs with a
# larger learning rate (about a minute on a laptop CPU), enough for a manifold in which several digits appear; the
# full profile trains longer on the whole training split (about 8 minutes on a 2-core CPU).

# %% [markdown] slideshow={"slide_type": "subslide"}
# ### The 2-D latent manifold (Keras), $h_1$ along a row, $h_2$ up

# %% slideshow={"slide_type": "-"} tags=["remove-input"]
manifold = vae_keras.latent_manifold(keras_vae, n=7)
plotting.show_images(manifold, ncols=7, size=1.1)

# %% [markdown] slideshow={"slide_type": "notes"}
# **Speaker note.**
# Neighbouring codes decode to similar digits, and the digit classes occupy regions of the plane: the prior has
# been filled. Compare with the PyTorch 2-D VAE in `05_vae_pytorch`.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## One yardstick for the lecture's models
#
# The RBM and the VAEs above, measured alike in the features $\varphi(\boldsymbol{x})$ of one classifier trained on
# the same images (the *judge*), between a floor (new training images) and a ceiling (uniform noise): the Fréchet
# distance of Gaussians fitted to $\varphi$ (lower is better), precision and recall ($k = 3$), the classifier score.

# %% slideshow={"slide_type": "skip"}
from genmodels import judge, measures

referee = judge.train_judge(dataset, seed=seed, device=device,
                            progress=profile.progress)
n_judged = profile.pick(quick=1000, full=2000)  # images per row
yardstick = measures.Yardstick.build(referee, dataset, n_judged)


def on_device(s):
    return torch.Generator(device).manual_seed(s)


rows = {
    "training images (floor)": lambda s: dataset.x_train[n_judged * (s + 1):n_judged * (s + 2)],
    "RBM p(v|h)": lambda s: rbm_model.sample(n_judged, steps=profile.pick(quick=300, full=1000),
                                             generator=on_device(s)).cpu(),
    "VAE means (PyTorch)": lambda s: vae.generate(vae_model, n_judged, on_device(s)).cpu(),
    "VAE means (Keras, 2-D)": lambda s: vae_keras.generate(keras_vae, n_judged, seed=s),
    "uniform noise (ceiling)": lambda s: measures.uniform_noise(n_judged, seed=s),
}
results, examples = measures.measure_rows(yardstick, rows, seeds=(0, 1, 2))

# %% slideshow={"slide_type": "fragment"} tags=["remove-input"]
nats = {"VAE means (PyTorch)": f"{bounds['iwae']:.1f} (IWAE)"}
print(measures.format_table(results, nats, "nats", columns=("fd", "precision", "recall", "score")))
print(f"N = {n_judged:,} per row, 3 seeds; judge: "
      f"{judge.accuracy(referee, dataset.x_test, dataset.y_test):.1%} test accuracy")

# %% [markdown] slideshow={"slide_type": "notes"}
# **Speaker note.**
# 3 minutes. Lower FD is better, precision asks "do the samples look like data", recall "are the data covered", and
# the floor is not 0 because two finite samples differ. What each measure misses: FD and precision/recall judge
# samples, not likelihood (a model that copies its training set scores like the floor; notebook 08's
# nearest-neighbour ratio catches that), and they see only what the judge's features see; nats judge how probable
# the model finds new data, not how its samples look. FD is biased upwards by about $c/N$, so rows are compared at
# one $N$ only. `notebooks/08_yardstick` has the full table: the EBM, the convolutional VAE, noise and blur, the
# bias against $N$.

# %% [markdown] slideshow={"slide_type": "slide"}
# ## What to take away
#
# - An RBM's free energy turns $p(\boldsymbol{v})$ into $e^{-F(\boldsymbol{v})}/Z$; contrastive divergence
#   estimates the negative phase with short Gibbs chains; the likelihood needs $\log Z$ (exact for small
#   models, AIS otherwise).
# - Langevin dynamics samples any differentiable density from its score alone, but only with noise
#   $\sqrt{2\eta}$ for step $\eta$: the lecture's $\sqrt{\eta}$ samples $p^2$.
# - The VAE maximises the ELBO, $\log p(\boldsymbol{x})$ minus the KL divergence from the encoder to the true
#   posterior; the Gaussian KL term is closed form and the reparameterisation trick gives the gradient of
#   the rest.

# %% [markdown] slideshow={"slide_type": "notes"}
# **Speaker note.**
# 3 minutes. Then the hands-on table: for the rest of the session (or as homework), students pick a notebook;
# 01 and 05 are the core, 03 the shortest.

# %% [markdown] slideshow={"slide_type": "subslide"}
# ## Hands-on
#
# | notebook | topic |
# |---|---|
# | `00_data_and_setup` | profiles, device, data, the training loop |
# | `01_rbm_pytorch` | the RBM, CD-$k$ and PCD on MNIST, the test log-likelihood by AIS |
# | `02_rbm_keras` | the RBM in Keras 3 |
# | `03_langevin_sampling` | ULA, MALA and SGLD; the $\sqrt{2\eta}$ correction shown numerically |
# | `04_energy_based_model` | a deep energy-based model on MNIST, sampled by Langevin dynamics |
# | `05_vae_pytorch` | the ELBO derivation checked in code; MLP and convolutional VAEs; IWAE |
# | `06_vae_keras` | the keras.io VAE in Keras 3, checked against the PyTorch ELBO |
# | `07_ising_rbm` | RBMs learning the 2-D Ising model |
# | `08_yardstick` | all the week's models measured alike: Fréchet distance, precision and recall, nats |
#
# All in `notebooks/`; start with `make lab`.
