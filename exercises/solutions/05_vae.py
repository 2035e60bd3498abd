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
# # Exercises 05 · The variational autoencoder
#
# Goes with `notebooks/05_vae_pytorch` and `notebooks/06_vae_keras`. Implementation exercises: write one piece
# of the ELBO; the cell after it checks it with `genmodels.exercises`, which names the mistake when it is a known
# one. Experiment exercises: the questions at the end of notebooks 05 and 06. Run All works at any time: a
# function not written yet reports "not done yet". Codes are (N, latent_dim) tensors, images (N, 784) or (N, 28, 28).

# %% tags=["parameters"]
profile = None  # "quick" (seconds, CPU) or "full" (real results); None: GENMODELS_PROFILE, else "full"
seed = 0

# %%
import genmodels  # noqa: I001 (first: it loads what must come before TensorFlow; see genmodels/__init__.py)

import math

import keras
import numpy as np
import torch
import torch.nn.functional as F
from keras import layers, ops

from genmodels import data, exercises, training, vae, vae_keras

profile, device = genmodels.setup(profile, "cpu", seed)

# %% [markdown]
# ## Implementation exercises
#
# ### Exercise: the KL divergence to the prior
# $\mathrm{KL}(N(\boldsymbol\mu, \operatorname{diag}\boldsymbol\sigma^2) \,\|\, N(0, I)) = \frac12 \sum_j
# (\sigma_j^2 + \mu_j^2 - 1 - \log\sigma_j^2)$, from `log_var` $= \log\sigma^2$; one value per example.

# %%
def kl_standard_normal(mu, log_var):
    ### BEGIN SOLUTION
    return 0.5 * (log_var.exp() + mu**2 - 1 - log_var).sum(-1)
    ### END SOLUTION


# %% tags=["nbval-check-output"]
exercises.check_kl_standard_normal(kl_standard_normal)

# %% [markdown]
# ### Exercise: the KL divergence between two diagonal Gaussians
# The lecture's $\frac12\left[\operatorname{tr}(\Sigma_p^{-1}\Sigma_q) + (\mu_p - \mu_q)^\top \Sigma_p^{-1}
# (\mu_p - \mu_q) - k + \log\frac{\det\Sigma_p}{\det\Sigma_q}\right]$ for diagonal covariances.

# %%
def kl_gaussians(mu_q, log_var_q, mu_p, log_var_p):
    ### BEGIN SOLUTION
    return 0.5 * ((log_var_q - log_var_p).exp() + (mu_q - mu_p) ** 2 / log_var_p.exp() - 1
                  + log_var_p - log_var_q).sum(-1)
    ### END SOLUTION


# %% tags=["nbval-check-output"]
exercises.check_kl_gaussians(kl_gaussians)

# %% [markdown]
# ### Exercise: the reparameterised sample
# $\mathbf h = \boldsymbol\mu + \boldsymbol\sigma \odot \boldsymbol\varepsilon$ with $\boldsymbol\sigma =
# \exp(\frac12 \log\boldsymbol\sigma^2)$ and the given $\boldsymbol\varepsilon \sim N(0, I)$.

# %%
def reparameterise(mu, log_var, eps):
    ### BEGIN SOLUTION
    return mu + torch.exp(0.5 * log_var) * eps
    ### END SOLUTION


# %% tags=["nbval-check-output"]
exercises.check_reparameterise(reparameterise)

# %% [markdown]
# ### Exercise: the decoder's log-likelihood
# $\log p(\mathbf x \mid \mathbf h) = \sum_i [x_i \log\sigma(l_i) + (1 - x_i)\log(1 - \sigma(l_i))]$ for the
# decoder's logits $l$, summed over pixels, computed stably.

# %%
def bernoulli_log_likelihood(x, logits):
    ### BEGIN SOLUTION
    return -F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(-1)
    ### END SOLUTION


# %% tags=["nbval-check-output"]
exercises.check_bernoulli_log_likelihood(bernoulli_log_likelihood)

# %% [markdown]
# ### Exercise: the ELBO
# $\log p(\mathbf x \mid \mathbf h) - \mathrm{KL}(Q(\mathbf h \mid \mathbf x) \,\|\, N(0, I))$ at one
# reparameterised sample; `decode(h)` returns the decoder's logits. Use your functions above.

# %%
def elbo(x, mu, log_var, eps, decode):
    ### BEGIN SOLUTION
    h = reparameterise(mu, log_var, eps)
    return bernoulli_log_likelihood(x, decode(h)) - kl_standard_normal(mu, log_var)
    ### END SOLUTION


# %% tags=["nbval-check-output"]
exercises.check_elbo(elbo)

# %% [markdown]
# ### Exercise: the IWAE bound
# $\log \frac1K \sum_k w_k$ per example, from the log-weights $\log w_k = \log p(\mathbf x|\mathbf h_k) + \log
# p(\mathbf h_k) - \log Q(\mathbf h_k|\mathbf x)$ of shape (K, N); they are hundreds of nats below zero.

# %%
def iwae_bound(log_weights):
    ### BEGIN SOLUTION
    return torch.logsumexp(log_weights, dim=0) - math.log(len(log_weights))
    ### END SOLUTION


# %% tags=["nbval-check-output"]
exercises.check_iwae_bound(iwae_bound)

# %% [markdown]
# ### Exercise: the Keras `Sampling` layer
# keras.io's layer: `call((mu, log_var))` returns $\boldsymbol\mu + \exp(\frac12\log\boldsymbol\sigma^2)\,
# \boldsymbol\varepsilon$, with $\boldsymbol\varepsilon$ from `keras.random.normal` and the layer's own
# `keras.random.SeedGenerator`, so that every call draws fresh noise.

# %%
class Sampling(layers.Layer):
    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs):
        mu, log_var = inputs
        ### BEGIN SOLUTION
        eps = keras.random.normal(ops.shape(mu), seed=self.seed_generator)
        return mu + ops.exp(0.5 * log_var) * eps
        ### END SOLUTION


# %% tags=["nbval-check-output"]
exercises.check_sampling_layer(Sampling)

# %% [markdown]
# ## Experiment exercises
#
# Small MLP VAEs trained for one epoch stand in for the notebooks' models in the quick profile.

# %%
dataset = data.load_data(profile, verbose=False)
x_train = dataset.x_train[:profile.pick(quick=300, full=None)]
x_test = torch.as_tensor(data.binarize_once(dataset.x_test[:profile.pick(quick=100, full=2000)]))
epochs, hidden = profile.pick(quick=1, full=20), profile.pick(quick=50, full=400)
n_iwae = profile.pick(quick=20, full=1000)


def train_vae(model=None, latent_dim=20, loss_fn=None, **settings):
    torch.manual_seed(seed)
    model = model or vae.mlp_vae(latent_dim, hidden)
    if loss_fn is None:
        vae.fit(model, x_train, epochs=epochs, progress="none", seed=seed, **settings)
    else:
        training.train(model, x_train, epochs=epochs, batch_size=128, loss_fn=loss_fn(model), progress="none",
                       optimizer=torch.optim.Adam(model.parameters(), lr=1e-3), seed=seed)
    return model

# %% [markdown]
# ### Exercise: the size of the code (notebook 05, exercise 1)
# Train the MLP VAE with `latent_dim` 2, 5, 20, 50. How do the ELBO, the IWAE bound and their gap change?

# %%
### BEGIN SOLUTION
models = {}
for latent_dim in profile.pick(quick=(2, 20), full=(2, 5, 20, 50)):
    models[latent_dim] = train_vae(latent_dim=latent_dim)
    bounds = vae.likelihood_bounds(models[latent_dim], x_test, k=n_iwae)
    print(f"latent_dim {latent_dim:2d}: ELBO {bounds['elbo']:.1f}, IWAE (K = {n_iwae}) {bounds['iwae']:.1f}, "
          f"gap {bounds['iwae'] - bounds['elbo']:.1f} nats")
### END SOLUTION

# %% [markdown] tags=["solution"]
# **What to look for.** Both bounds rise from 2 to 20 dimensions and little beyond: unused dimensions collapse onto
# the prior (their KL is zero). The gap between them measures how far $Q$ is from the true posterior; it is largest
# where the code is small and the posterior far from Gaussian.

# %% [markdown]
# ### Exercise: no KL term (notebook 05, exercise 2)
# Train only the reconstruction term (with `rsample`). What happens to the samples?

# %%
### BEGIN SOLUTION
def reconstruction_only(model):
    def loss_fn(x):
        x = data.binarize_stochastic(x)
        reconstruction, kl = vae.elbo_terms(model, x)
        return -reconstruction.mean(), {"kl": kl.mean().detach()}
    return loss_fn


for name, model in (("with the KL term", models[20]), ("without it", train_vae(loss_fn=reconstruction_only))):
    reconstruction, kl = vae.elbo_terms(model, x_test)
    samples = torch.sigmoid(model.logits(torch.randn(200, 20, generator=torch.Generator().manual_seed(seed))))
    print(f"{name:17s}: log p(x|h) {reconstruction.mean():.1f}, KL {kl.mean():.1f} nats; "
          f"samples from the prior: mean pixel {samples.mean():.3f} (data {x_test.mean():.3f})")
### END SOLUTION

# %% [markdown] tags=["solution"]
# **What to look for.** Without the KL the reconstructions improve but the KL grows large: the codes spread far from
# $N(0, I)$, so codes drawn from the prior land where the decoder has never been trained, and the samples are blurry
# or not digits at all. The model is an autoencoder that cannot generate.

# %% [markdown]
# ### Exercise: the IWAE bound against K (notebook 05, exercise 3)
# Compute the IWAE bound for K = 1, 10, 100, 1000 on 200 test images and plot it against log K.

# %%
### BEGIN SOLUTION
import matplotlib.pyplot as plt

ks = profile.pick(quick=(1, 10, 50), full=(1, 10, 100, 1000))
bounds = [vae.iwae_log_likelihood(models[20], x_test[:200], k).mean().item() for k in ks]
print("IWAE bound:", ", ".join(f"K = {k}: {b:.2f}" for k, b in zip(ks, bounds, strict=True)))
plt.figure(figsize=(4, 3))
plt.semilogx(ks, bounds, "o-")
plt.xlabel("K")
plt.ylabel("IWAE bound (nats)")
plt.show()
### END SOLUTION

# %% [markdown] tags=["solution"]
# **What to look for.** The bound rises with K, quickly at first and then more and more slowly (roughly linear in
# log K over this range, flattening as it approaches log p(x)); K = 1 is the ELBO with a sampled KL.

# %% [markdown]
# ### Exercise: a Gaussian decoder (notebook 05, exercise 4)
# Replace the Bernoulli decoder by $N(f(\mathbf h), \sigma^2 I)$ on grey levels. How does $\sigma$ change the
# balance between the two terms of the ELBO?

# %%
### BEGIN SOLUTION
def gaussian_elbo_loss(noise_std):
    def make(model):
        def loss_fn(x):
            q = model.encoder(x)
            h = q.rsample()
            mean = torch.sigmoid(model.logits(h)).reshape(x.shape)
            reconstruction = vae.gaussian_log_likelihood(x, mean, noise_std)
            kl = vae.kl_standard_normal(q.loc, 2 * q.scale.log())
            return (kl - reconstruction).mean(), {"kl": kl.mean().detach()}
        return loss_fn
    return make


grey_test = torch.as_tensor(dataset.x_test[:100])
for noise_std in (0.05, 0.2, 1.0):
    model = train_vae(loss_fn=gaussian_elbo_loss(noise_std))
    q = model.encoder(grey_test)
    error = (torch.sigmoid(model.logits(q.loc)).reshape(grey_test.shape) - grey_test).square().flatten(1).sum(1).mean()
    kl = vae.kl_standard_normal(q.loc, 2 * q.scale.log()).mean()
    print(f"σ = {noise_std:4}: squared error {error:.1f}, KL {kl:.1f} nats")
### END SOLUTION

# %% [markdown] tags=["solution"]
# **What to look for.** The reconstruction term is $-\|\mathbf x - f(\mathbf h)\|^2 / (2\sigma^2)$ plus a constant:
# a small $\sigma$ weighs reconstruction heavily (small error, large KL: sharp reconstructions, poor samples), a large
# $\sigma$ lets the KL win (codes near the prior, blurry reconstructions; at $\sigma = 1$ the code may collapse).

# %% [markdown]
# ### Exercise: keras.io's narrow layer (notebook 05, exercise 5)
# Train `vae.conv_vae(latent_dim=20, hidden=16)` as long as the MLP VAE and compare their IWAE bounds.

# %%
### BEGIN SOLUTION
conv = train_vae(vae.conv_vae(latent_dim=20, hidden=16))
for name, model in (("MLP", models[20]), ("convolutional, 16 hidden", conv)):
    print(f"{name}: IWAE (K = {n_iwae}) {vae.iwae_log_likelihood(model, x_test, n_iwae).mean():.1f} nats")
### END SOLUTION

# %% [markdown] tags=["solution"]
# **What to look for.** keras.io's dense layer of 16 units between the convolutions and the code is a bottleneck:
# trained as long, the convolutional VAE's bound stays below the MLP's (in the full profile, by several nats).

# %% [markdown]
# ### Exercise: another Keras backend (notebook 06, exercise 1)
# Does anything change besides the speed with `KERAS_BACKEND=torch`?

# %%
### BEGIN SOLUTION
mu, log_var = np.random.default_rng(seed).normal(size=(2, 100, 16)).astype("float32")
keras_kl = ops.convert_to_numpy(vae_keras.kl_standard_normal(mu, log_var))
torch_kl = vae.kl_standard_normal(torch.as_tensor(mu), torch.as_tensor(log_var)).numpy()
print(f"backend {keras.backend.backend()}: largest difference of the KL from PyTorch's: "
      f"{np.abs(keras_kl - torch_kl).max():.1e}")
### END SOLUTION

# %% [markdown] tags=["solution"]
# **What to look for.** Only float32 rounding: the loss is written in `keras.ops`, the same formulas on every
# backend. Restart Jupyter with another `KERAS_BACKEND` to print this line there; random streams differ between
# backends, so trained models agree in their figures, not digit by digit.

# %% [markdown]
# ### Exercise: a 16-dimensional code in Keras (notebook 06, exercise 2)
# Train with `latent_dim = 16`. How much does the test ELBO improve, and what happens to the KL term?

# %%
### BEGIN SOLUTION
keras_train = dataset.x_train[:profile.pick(quick=64, full=None)]
for latent_dim in (2, 16):
    model = vae_keras.conv_vae(latent_dim=latent_dim, seed=seed)
    vae_keras.fit(model, keras_train, epochs=epochs, progress="none", seed=seed)
    reconstruction, kl = vae_keras.elbo_terms(model(x_test.numpy(), training=False))
    reconstruction, kl = ops.convert_to_numpy(reconstruction).mean(), ops.convert_to_numpy(kl).mean()
    print(f"latent_dim {latent_dim:2d}: test ELBO {reconstruction - kl:.1f} nats (KL {kl:.1f})")
### END SOLUTION

# %% [markdown] tags=["solution"]
# **What to look for.** More dimensions let the code carry more of each image: the reconstruction term rises and so
# does the KL (it pays for the information), and the ELBO improves by tens of nats once trained (full profile).

# %% [markdown]
# ### Exercise: keras.io's loss on grey levels (notebook 06, exercise 3)
# With sigmoid outputs and the binary cross-entropy on grey levels, what does the "loss" measure, and why can it not
# be compared with the ELBO in nats?

# %%
### BEGIN SOLUTION
grey = torch.as_tensor(dataset.x_test[:200]).reshape(-1, 784).double().clamp(1e-6, 1 - 1e-6)
floor = -(grey * grey.log() + (1 - grey) * (1 - grey).log()).sum(1).mean()
print(f"the smallest binary cross-entropy any decoder can reach on these grey levels: {floor:.1f} nats per image")
### END SOLUTION

# %% [markdown] tags=["solution"]
# **What to look for.** On grey levels the cross-entropy $-\sum_i [x_i \log p_i + (1 - x_i)\log(1 - p_i)]$ is
# smallest at $p = x$, where it equals the entropy printed above, not zero: the "loss" carries that constant and is
# not minus the log-likelihood of any distribution over grey images (a Bernoulli is normalised only on {0, 1}). The
# ELBO of binary images is a bound on log p(x) in nats; the two numbers measure different things.
