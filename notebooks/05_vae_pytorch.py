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
# # 05 · Variational autoencoders in PyTorch: the derivation, checked in code
#
# A variational autoencoder (VAE; Kingma & Welling 2014, Rezende et al. 2014) is a latent-variable model
# $p(\mathbf x)=\int d\mathbf h\, p(\mathbf x|\mathbf h)\,p(\mathbf h)$ trained by maximising a lower bound on
# $\log p(\mathbf x)$, with a second network, the encoder $Q(\mathbf h|\mathbf x)$, proposing the latents that could
# have produced $\mathbf x$. We follow the lecture's derivation one equation at a time, and after each equation a
# cell checks it numerically. Then we train the models on MNIST and measure them in nats.
#
# You will learn
# - why $\log p(\mathbf x) - D[Q\|p(\mathbf h|\mathbf x)] = E_Q[\log p(\mathbf x|\mathbf h)] - D[Q\|p(\mathbf h)]$,
#   and what each term means, checked on a model where $\log p(\mathbf x)$ is exact;
# - the closed-form KL divergence between Gaussians and the reparameterisation trick;
# - an MLP VAE (784-400-20, as in pytorch/examples) and a convolutional VAE (as on keras.io): reconstructions,
#   samples, the 2-D latent space and its manifold;
# - how to report a likelihood honestly: the ELBO and the importance-weighted bound (IWAE) on binarised images;
# - how a VAE's latent space differs from a plain autoencoder's.

# %% tags=["parameters"]
profile = None  # "quick" (seconds, CPU) or "full" (real results); None: GENMODELS_PROFILE, else "full"
device = None  # None picks CUDA, then Apple MPS, then the CPU
seed = 0
epochs = None  # for the MLP models; None: their runs' (genmodels.runs.RUNS["vae_mlp"], printed below)
conv_epochs = None  # None: the run's (RUNS["vae_conv"]: on a GPU, as long as keras.io trains it)
iwae_k = None  # importance samples for the IWAE bound: None: 50 (quick) or 200 (full)

# %%
import math

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch.distributions import MultivariateNormal, Normal, kl_divergence

import genmodels
from genmodels import data, plotting, runs, vae

profile, device = genmodels.setup(profile, device, seed)
settings = runs.settings("vae_mlp", profile, epochs=epochs)  # the run notebook 08 and the command line train too
conv_settings = runs.settings("vae_conv", profile, epochs=conv_epochs)
iwae_k = iwae_k or profile.pick(quick=50, full=200)
print(settings)
print(conv_settings)
print(f"IWAE with K = {iwae_k}")

# %% [markdown]
# ## The data, and why we binarise
#
# Our decoder will be a product of Bernoulli distributions, one per pixel. That is a normalised likelihood for
# **binary** images only, so likelihoods in nats are measured on binarised digits, the convention of the MNIST
# likelihood literature: the training images are binarised afresh at every step (pixel = 1 with probability its grey
# level: *dynamic binarisation*), and the test set is binarised **once**, with a fixed seed, so that every model is
# scored on the same binary images. (Binary cross-entropy on grey levels, as many tutorials train, is not the
# log-likelihood of anything normalised: see the continuous Bernoulli of Loaiza-Ganem & Cunningham 2019. Every model
# here trains on binary images.)

# %% tags=["nbval-check-output"]
dataset = data.load_data(profile)
x_test = data.binarize_once(dataset.x_test)  # fixed once: the same binary test set for every model and notebook
print(dataset)
print(f"mean grey level {dataset.x_test.mean():.3f}, fraction of ones after binarising {x_test.mean():.3f}")

# %%
plotting.show_images(np.concatenate([dataset.x_test[:8], x_test[:8]]), ncols=8,
                     title="grey levels (top), binarised (bottom)")

# %% [markdown]
# ## 1 · The autoencoder, again
#
# An autoencoder maps $\mathbf x$ to a code $\mathbf h=f(\mathbf x;\mathbf W)$ and back to
# $\tilde{\mathbf x}=g(\mathbf h;\mathbf V)$, and is trained to make $\tilde{\mathbf x}$ close to $\mathbf x$. It is
# not a generative model: nothing says which codes are likely, so decoding a random code gives no digit. The VAE
# keeps the encoder-decoder shape but makes both ends probability distributions. `vae.Autoencoder` has exactly the
# VAE's networks (the code is the encoder's mean head); we compare the two latent spaces at the end.
#
# ## 2 · The latent-variable model
#
# With latent variables $\mathbf h$ and a prior $p(\mathbf h)$, the law of total probability gives
# $p(\mathbf x) = \int d\mathbf h\, p(\mathbf x|\mathbf h)\,p(\mathbf h)$. (The lecture writes the prior as
# $p(\mathbf h, \mathbf n)$ on one slide: a typo for $p(\mathbf h)$.) For images we take $p(\mathbf h)=N(0, I)$ and
# $p(\mathbf x|\mathbf h)$ a product of Bernoullis whose logits a decoder network computes from $\mathbf h$. (The
# lecture's example is a Gaussian $N(\mathbf x| f(\mathbf h), \sigma^2 I)$, the natural choice for real-valued data.)
#
# For most $\mathbf h$ drawn from the prior, $p(\mathbf x|\mathbf h)$ is almost zero, so sampling the prior to estimate
# the integral is hopeless. The VAE's key idea: a distribution $Q(\mathbf h|\mathbf x)$ that proposes latents likely
# to have produced $\mathbf x$.
#
# ## 3 · The KL divergence and the central equation
#
# $D[Q\|P] = E_{\mathbf h\sim Q}[\log Q(\mathbf h) - \log P(\mathbf h)] \ge 0$ (the *relative* entropy; the lecture
# also calls it the Shannon entropy, which it is not). Writing $p(\mathbf h|\mathbf x)$ by Bayes' rule inside
# $D[Q(\mathbf h|\mathbf x)\|p(\mathbf h|\mathbf x)]$ and taking $\log p(\mathbf x)$ out of the expectation gives the
# equation at the core of the VAE:
#
# $$\log p(\mathbf x) - D[Q(\mathbf h|\mathbf x)\,\|\,p(\mathbf h|\mathbf x)]
#   = E_{\mathbf h\sim Q}[\log p(\mathbf x|\mathbf h)] - D[Q(\mathbf h|\mathbf x)\,\|\,p(\mathbf h)].$$
#
# The right-hand side, the **evidence lower bound** (ELBO), can be computed and optimised; it is below
# $\log p(\mathbf x)$ by exactly the KL divergence from $Q$ to the true posterior. (One lecture slide repeats the
# derivation for a conditional model $p(y_i|x_i)$ and ends with "$\log p(y_i|y_i)$", a typo for $\log p(y_i|x_i)$.)
#
# **Check.** A linear-Gaussian VAE (probabilistic PCA: $p(\mathbf x|\mathbf h) = N(W\mathbf h+\mathbf b, s^2 I)$)
# has $\log p(\mathbf x)$ and $p(\mathbf h|\mathbf x)$ in closed form. With a deliberately imperfect linear encoder
# $Q$, the average of many one-sample ELBO estimates should equal $\log p(\mathbf x) - D[Q\|p(\mathbf h|\mathbf x)]$.

# %% tags=["nbval-check-output"]
g = torch.Generator().manual_seed(0)
W, b = torch.randn(6, 3, generator=g, dtype=torch.float64), torch.randn(6, generator=g, dtype=torch.float64)
ppca = vae.LinearGaussianVAE(W, b, noise_std=0.5)  # its linear encoder Q(h|x) is random: far from p(h|x)
x = torch.randn(1, 3, generator=g, dtype=torch.float64) @ W.T + b + 0.5 * torch.randn(1, 6, generator=g,
                                                                                        dtype=torch.float64)
torch.manual_seed(0)
with torch.no_grad():
    estimates = vae.elbo(ppca, x.repeat(100_000, 1))  # 100,000 one-sample ELBO estimates
    q = ppca.encoder(x)
    gap = kl_divergence(MultivariateNormal(q.mean, torch.diag_embed(q.variance)), ppca.true_posterior(x))
    log_px = ppca.log_marginal(x)
se = estimates.std() / math.sqrt(len(estimates))
print(f"log p(x) = {log_px.item():.3f}   KL(Q || p(h|x)) = {gap.item():.3f}   difference {(log_px - gap).item():.3f}")
print(f"ELBO, Monte Carlo mean = {estimates.mean():.3f} ± {se:.3f}: "
      f"{abs(estimates.mean() - (log_px - gap)).item() / se:.1f} standard errors from the difference")

# %% [markdown]
# The Monte Carlo ELBO agrees with $\log p(\mathbf x)-D[Q\|p(\mathbf h|\mathbf x)]$ within its standard error, and
# lies below $\log p(\mathbf x)$. When $Q$ **is** the posterior the gap closes, and more: every single sample of
# $\log p(\mathbf x|\mathbf h)+\log p(\mathbf h)-\log Q(\mathbf h|\mathbf x)$ equals $\log p(\mathbf x)$.

# %% tags=["nbval-check-output"]
ppca.encoder = ppca.true_posterior
with torch.no_grad():
    at_posterior = vae.elbo(ppca, x.repeat(5, 1), analytic_kl=False)  # KL estimated by sampling, as IWAE does
print("five one-sample ELBOs at Q = p(h|x):", [round(v, 6) for v in at_posterior.tolist()])
print(f"log p(x) = {log_px.item():.6f}")
ppca.encoder = ppca.encode_linear

# %% [markdown]
# ## 4 · Gaussian $Q$ and the KL in closed form
#
# The usual choice is $Q(\mathbf h|\mathbf x)=N(\boldsymbol\mu(\mathbf x), \Sigma(\mathbf x))$ with a diagonal
# $\Sigma$, both computed by the encoder. The last term of the ELBO is then a KL divergence between Gaussians, which the
# lecture states in closed form for $k$ dimensions:
#
# $$D[N(\boldsymbol\mu_0,\Sigma_0)\|N(\boldsymbol\mu_1,\Sigma_1)] = \tfrac12\Big(\mathrm{tr}(\Sigma_1^{-1}\Sigma_0)
#   + (\boldsymbol\mu_1-\boldsymbol\mu_0)^\top\Sigma_1^{-1}(\boldsymbol\mu_1-\boldsymbol\mu_0) - k
#   + \log\frac{\det\Sigma_1}{\det\Sigma_0}\Big),$$
#
# and against the prior $N(0, I)$ it simplifies to
# $\tfrac12\big(\mathrm{tr}\,\Sigma + \boldsymbol\mu^\top\boldsymbol\mu - k - \log\det\Sigma\big)
#   = \tfrac12\sum_j(\sigma_j^2+\mu_j^2-1-\log\sigma_j^2)$.
# `vae.kl_gaussians` and `vae.kl_standard_normal` compute these for diagonal covariances; we check both against the
# definition $E_Q[\log Q-\log P]$ estimated by sampling.

# %% tags=["nbval-check-output"]
mu_q, lv_q = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64), torch.tensor([0.0, -1.0, 0.7], dtype=torch.float64)
mu_p, lv_p = torch.tensor([0.0, 1.0, 1.0], dtype=torch.float64), torch.tensor([0.5, 0.0, -0.3], dtype=torch.float64)
Q, P = Normal(mu_q, (lv_q / 2).exp()), Normal(mu_p, (lv_p / 2).exp())
torch.manual_seed(1)
h = Q.sample((400_000,))
for name, closed, log_ratio in [
        ("KL(Q || P)", vae.kl_gaussians(mu_q, lv_q, mu_p, lv_p), Q.log_prob(h) - P.log_prob(h)),
        ("KL(Q || N(0, I))", vae.kl_standard_normal(mu_q, lv_q), Q.log_prob(h) - Normal(0.0, 1.0).log_prob(h))]:
    mc = log_ratio.sum(-1)
    se = mc.std() / math.sqrt(len(mc))
    print(f"{name:17s} closed form {closed.item():.3f}   Monte Carlo {mc.mean():.3f} ± {se:.3f}"
          f"   ({abs(mc.mean() - closed.item()) / se:.1f} standard errors apart)")

# %% [markdown]
# Both closed forms agree with sampling to within two standard errors (the ± is one standard error,
# $\mathrm{sd}/\sqrt{400\,000}$), as an exact formula should: a gap of 1 to 2 standard errors is common.
# `tests/test_vae.py` also checks the full-covariance formula above.
#
# ## 5 · The reparameterisation trick
#
# We want the gradient of $E_{\mathbf h\sim Q}[f(\mathbf h)]$ with respect to the encoder's $\boldsymbol\mu$ and
# $\boldsymbol\sigma$, but sampling is not differentiable. Write $\mathbf h=\boldsymbol\mu+\boldsymbol\sigma\odot
# \boldsymbol\epsilon$ with $\boldsymbol\epsilon\sim N(0,I)$ (the lecture's $\mu(X)+\Sigma^{1/2}(X)\,\epsilon$):
# the randomness no longer depends on the parameters, and $\nabla E_Q[f(\mathbf h)] =
# E_{\boldsymbol\epsilon}[\nabla f(\boldsymbol\mu+\boldsymbol\sigma\odot\boldsymbol\epsilon)]$.
# This is what `Normal.rsample()` does. The alternative that never differentiates $f$, the score-function
# (REINFORCE) estimator $E_Q[f(\mathbf h)\nabla\log Q(\mathbf h)]$, has the same mean but a much larger variance.
# We check both on $f(\mathbf h)=\sum_j\cos h_j$, whose expectation
# $\sum_j \cos\mu_j\, e^{-\sigma_j^2/2}$ we can differentiate by hand.

# %% tags=["nbval-check-output"]
mu, log_var = torch.tensor([1.0, -0.5], dtype=torch.float64), torch.tensor([-1.0, 0.5], dtype=torch.float64)
exact = -mu.sin() * (-log_var.exp() / 2).exp()  # d/dmu of cos(mu) exp(-sigma^2/2)
gen = torch.Generator().manual_seed(2)
for name, estimator in [("reparameterised", vae.reparameterised_gradient),
                        ("score function", vae.score_function_gradient)]:
    grad_mu, _ = estimator(lambda h: h.cos().sum(-1), mu, log_var, 100_000, generator=gen)
    print(f"{name:16s} dE/dmu = {[round(v, 2) for v in grad_mu.mean(0).tolist()]}   "
          f"sd per sample {[round(v, 2) for v in grad_mu.std(0).tolist()]}")
print(f"{'exact':16s} dE/dmu = {[round(v, 2) for v in exact.tolist()]}")

# %% [markdown]
# Both estimators are unbiased. Per sample, the reparameterised one is five times less noisy in the first coordinate
# (sd 0.33 against 1.73) but a little noisier in the second (0.67 against 0.58), where $\sigma$ is larger: it is not
# better everywhere. What sets them apart is the dimension. The score function multiplies the whole $f(\mathbf h)$
# by each coordinate's score, so every coordinate's term adds to every coordinate's noise; the reparameterised
# gradient differentiates $f$ where it is. Take $d$ coordinates, all with $\mu_j = 1$ and $\log\sigma_j^2 = -1$:

# %%
for d in (1, 10, 50):
    mu_d, log_var_d = torch.ones(d, dtype=torch.float64), -torch.ones(d, dtype=torch.float64)
    variances = [estimator(lambda h: h.cos().sum(-1), mu_d, log_var_d, 20_000, generator=gen)[0].var(0).mean()
                 for estimator in (vae.reparameterised_gradient, vae.score_function_gradient)]
    print(f"d = {d:2d}: variance per sample of dE/dmu_j, reparameterised {variances[0]:.2f}, "
          f"score function {variances[1]:.3g}")

# %% [markdown]
# The reparameterised variance stays where it is while the score function's grows faster than $d$ itself: with
# the 20 latent dimensions of the VAEs below, a single reparameterised sample of $\mathbf h$ per image is enough to
# train. The objective for one image and one
# $\boldsymbol\epsilon$ is the lecture's equation (1): $\log p(\mathbf x|\mathbf h) - D[Q(\mathbf h|\mathbf x)\|
# p(\mathbf h)]$ at $\mathbf h = \boldsymbol\mu(\mathbf x)+\boldsymbol\sigma(\mathbf x)\odot\boldsymbol\epsilon$,
# averaged over a batch. In `genmodels.vae.elbo_terms` that is three lines: `q.rsample()`,
# `model.log_likelihood_given_h(x, h)` (a `Bernoulli` distribution's `log_prob`) and `kl_divergence(q, prior)`.
#
# ## 6 · The MLP VAE
#
# The encoder returns a `torch.distributions.Normal`, as in the lecture; the network predicts $\log\sigma^2$ (any real
# number) rather than $\sigma$. The sizes are those of pytorch/examples: 784 → 400 → 20 and back.

# %% tags=["nbval-check-output"]
model = runs.build(settings, device, seed=seed)  # vae.mlp_vae(latent_dim=20), its weights drawn after seeding
print(model)
print(f"{sum(p.numel() for p in model.parameters()):,} parameters;",
      "the encoder returns", type(model.encoder(torch.zeros(1, 28, 28, device=device))).__name__)

# %% [markdown]
# Training (the run `vae_mlp`, printed at the top): Adam, each batch binarised afresh; after each epoch the loop
# reports the test ELBO in nats (higher is better; the training `loss` is -ELBO).

# %%
history = runs.train(model, dataset, settings, seed=seed, teaching=True)  # vae.fit with the run's settings
plotting.plot_history(history, names=["loss", "kl"])

# %% [markdown]
# The KL term grows as the encoder learns to put information in the code; the reconstruction term improves faster.
# Reconstructions (decoder mean at the encoder mean) and new digits drawn from the prior:

# %%
originals = torch.as_tensor(x_test[:10], device=device)
plotting.show_images(torch.cat([originals, vae.reconstruct(model, originals)]), ncols=10,
                     title="binarised test digits (top) and their reconstructions (bottom)")
plotting.show_images(vae.generate(model, 30, generator=torch.Generator(device=device).manual_seed(seed)), ncols=10,
                     title="samples: h ~ N(0, I), pixel probabilities of p(x|h)")

# %% [markdown]
# ## 7 · Likelihood in nats: the ELBO and the importance-weighted bound
#
# The ELBO is a lower bound on $\log p(\mathbf x)$. A tighter one (Burda et al. 2016) averages $K$ importance weights
# inside the logarithm,
# $\log\frac1K\sum_{k=1}^K \frac{p(\mathbf x|\mathbf h_k)p(\mathbf h_k)}{Q(\mathbf h_k|\mathbf x)}$,
# $\mathbf h_k\sim Q(\mathbf h|\mathbf x)$: for $K=1$ it is the ELBO, and it rises to $\log p(\mathbf x)$ as $K$
# grows (both are checked in `tests/test_vae.py`). `vae.iwae_log_likelihood` computes it in batches with
# `logsumexp`.

# %%
n_eval = profile.pick(quick=500, full=len(x_test))
torch.manual_seed(seed)
bounds = vae.likelihood_bounds(model, x_test[:n_eval], iwae_k)
print(f"MLP VAE, {n_eval} binarised {dataset.name} test images: -ELBO {-bounds['elbo']:.1f} nats, "
      f"-IWAE(K={iwae_k}) {-bounds['iwae']:.1f} nats")
profile.note(f"{settings.epochs} epochs on {len(dataset.x_train):,} images", "the bounds and samples of models "
             "trained for the epochs of the run on the whole training split")

# %% [markdown]
# The IWAE bound is a few nats tighter than the ELBO: that difference is (a bound on) the average
# $D[Q\|p(\mathbf h|\mathbf x)]$, the price of an approximate posterior. For comparison, Burda, Grosse &
# Salakhutdinov (2016, the IWAE paper) report about 87 nats for a VAE with one stochastic layer of 50 units on
# binarised MNIST, trained for thousands of epochs; the full profile's run is well short of that.
#
# ## 8 · The convolutional VAE
#
# The keras.io architecture: two stride-2 convolutions (32 and 64 filters, 28 → 14 → 7), a dense layer, then
# $\boldsymbol\mu$ and $\log\boldsymbol\sigma^2$; the decoder mirrors it with transposed convolutions. keras.io uses a
# 2-D latent space and a dense layer of 16; the latent size is a parameter, and we use 20 to compare with the MLP. A
# 16-unit layer would then be narrower than the 20-D code it feeds, a bottleneck before the bottleneck, so we widen it
# to 256 (`hidden=256`; the exercise on keras.io's narrow layer in `exercises/05_vae` puts 16 back). Convolutions
# are slower on a CPU, so both models are compared on the first images of the test set; the run's epochs, printed at
# the top, are enough in the quick profile for samples of most digits (notebook 08 counts the classes the judge sees
# in them).

# %%
conv = runs.build(conv_settings, device, seed=seed)  # vae.conv_vae(latent_dim=20, hidden=256)
conv_history = runs.train(conv, dataset, conv_settings, seed=seed, teaching=True)
n_conv = profile.pick(quick=200, full=1000)
for name, m in [("MLP", model), ("conv", conv)]:
    torch.manual_seed(seed)
    bounds = vae.likelihood_bounds(m, x_test[:n_conv], iwae_k)
    print(f"{name:4s} -ELBO {-bounds['elbo']:.1f} nats, -IWAE(K={iwae_k}) {-bounds['iwae']:.1f} nats "
          f"(first {n_conv} test images)")

# %%
plotting.show_images(vae.generate(conv, 30, generator=torch.Generator(device=device).manual_seed(seed)), ncols=10,
                     title="samples from the convolutional VAE")

# %% [markdown]
# ## 9 · A 2-D latent space: autoencoder and VAE side by side
#
# With two latent dimensions we can look at the latent space directly. We train an MLP VAE and a plain autoencoder of
# the same shape (784-400-2), both on binarised images, and plot where the test digits land (the encoder mean for the
# VAE, the code for the autoencoder), coloured by digit.

# %%
trained_2d = {}
for name in ("vae_2d", "autoencoder_2d"):  # the runs: vae.mlp_vae and vae.mlp_autoencoder with latent_dim=2
    settings_2d = runs.settings(name, profile, epochs=epochs)
    trained_2d[name] = runs.build(settings_2d, device, seed=seed)
    runs.train(trained_2d[name], dataset, settings_2d, seed=seed, teaching=True)
vae2, ae2 = trained_2d["vae_2d"], trained_2d["autoencoder_2d"]

# %%
fig, axes = plt.subplots(1, 2, figsize=(12, 5))
for ax, m, title in [(axes[0], ae2, "autoencoder: codes f(x)"), (axes[1], vae2, "VAE: means of Q(h|x)")]:
    plotting.plot_latent_codes(vae.latent_codes(m, x_test[:3000]), dataset.y_test[:3000], title=title, ax=ax)
plt.show()

# %% [markdown]
# The autoencoder's codes spread over whatever region and scale suits the decoder, with empty gaps between classes:
# a random point there decodes to nothing in particular. The VAE's KL term pulls the codes towards the prior
# $N(0, I)$, so the occupied region is compact and centred, and decoding any likely $\mathbf h$ gives a digit.
#
# The **2-D manifold**: decode a grid of latents evenly spaced in probability under the prior
# ($h_i=\Phi^{-1}(u_i)$, $u$ from 0.05 to 0.95, as in Kingma & Welling's figure).

# %%
plotting.show_images(vae.latent_manifold(vae2, n=15), ncols=15, title="decoder means over the 2-D latent grid")

# %% [markdown]
# Neighbouring latents decode to similar images and one class morphs smoothly into the next: the decoder has
# learned a continuous map from the prior to images.
#
# ## What to take away
# - The ELBO is $\log p(\mathbf x)$ minus $D[Q(\mathbf h|\mathbf x)\|p(\mathbf h|\mathbf x)]$: we checked the
#   identity to Monte Carlo precision, and the equality at the true posterior, on a model with exact
#   $\log p(\mathbf x)$.
# - The KL to the prior is in closed form for Gaussians; the reconstruction term is estimated with one reparameterised
#   sample, whose gradient is unbiased and far less noisy than the score-function
#   estimator's as the latent dimension grows (in one coordinate it can be a little noisier, as printed above).
# - Likelihoods in nats need a normalised decoder: Bernoulli on binarised images, the test set binarised once.
#   Report the ELBO and a tighter IWAE bound.
# - The KL term is what turns an autoencoder's latent space into one you can sample from.
#
# ## Exercises
# The exercises for this notebook are in `exercises/05_vae.ipynb` (open it in `make lab`): write the two Gaussian KL
# divergences, the reparameterised sample, the Bernoulli log-likelihood, the ELBO and the IWAE bound yourself, each
# checked as you go; and answer this notebook's questions (the size of the code, no KL term, IWAE against K, a
# Gaussian decoder, keras.io's narrow layer) by running code. Worked answers: `exercises/solutions/05_vae.ipynb`.
#
# ## Further
# Kingma & Welling, *Auto-Encoding Variational Bayes* (2014); Doersch, *Tutorial on Variational Autoencoders* (2016),
# whose derivation the lecture follows; Burda, Grosse & Salakhutdinov, *Importance Weighted Autoencoders* (2016);
# Loaiza-Ganem & Cunningham, *The continuous Bernoulli* (2019). The same models in Keras are in the Keras VAE notebook.
