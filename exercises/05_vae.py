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
# ### Exercise 1: the KL divergence to the prior
# $\mathrm{KL}(N(\boldsymbol\mu, \operatorname{diag}\boldsymbol\sigma^2) \,\|\, N(0, I)) = \frac12 \sum_j
# (\sigma_j^2 + \mu_j^2 - 1 - \log\sigma_j^2)$, from `log_var` $= \log\sigma^2$; one value per example.

# %%
def kl_standard_normal(mu, log_var):
    raise NotImplementedError("exercise 1: the KL divergence to the prior")


# %% tags=["nbval-check-output"]
exercises.check_kl_standard_normal(kl_standard_normal)

# %% [markdown]
# ### Exercise 2: the KL divergence between two diagonal Gaussians
# The lecture's $\frac12\left[\operatorname{tr}(\Sigma_p^{-1}\Sigma_q) + (\mu_p - \mu_q)^\top \Sigma_p^{-1}
# (\mu_p - \mu_q) - k + \log\frac{\det\Sigma_p}{\det\Sigma_q}\right]$ for diagonal covariances.

# %%
def kl_gaussians(mu_q, log_var_q, mu_p, log_var_p):
    raise NotImplementedError("exercise 2: the KL divergence between two diagonal Gaussians")


# %% tags=["nbval-check-output"]
exercises.check_kl_gaussians(kl_gaussians)

# %% [markdown]
# ### Exercise 3: the reparameterised sample
# $\mathbf h = \boldsymbol\mu + \boldsymbol\sigma \odot \boldsymbol\varepsilon$ with $\boldsymbol\sigma =
# \exp(\frac12 \log\boldsymbol\sigma^2)$ and the given $\boldsymbol\varepsilon \sim N(0, I)$.

# %%
def reparameterise(mu, log_var, eps):
    raise NotImplementedError("exercise 3: the reparameterised sample")


# %% tags=["nbval-check-output"]
exercises.check_reparameterise(reparameterise)

# %% [markdown]
# ### Exercise 4: the decoder's log-likelihood
# $\log p(\mathbf x \mid \mathbf h) = \sum_i [x_i \log\sigma(l_i) + (1 - x_i)\log(1 - \sigma(l_i))]$ for the
# decoder's logits $l$, summed over pixels, computed stably.

# %%
def bernoulli_log_likelihood(x, logits):
    raise NotImplementedError("exercise 4: the decoder's log-likelihood")


# %% tags=["nbval-check-output"]
exercises.check_bernoulli_log_likelihood(bernoulli_log_likelihood)

# %% [markdown]
# ### Exercise 5: the ELBO
# $\log p(\mathbf x \mid \mathbf h) - \mathrm{KL}(Q(\mathbf h \mid \mathbf x) \,\|\, N(0, I))$ at one
# reparameterised sample; `decode(h)` returns the decoder's logits. Use your functions above.

# %%
def elbo(x, mu, log_var, eps, decode):
    raise NotImplementedError("exercise 5: the ELBO")


# %% tags=["nbval-check-output"]
exercises.check_elbo(elbo)

# %% [markdown]
# ### Exercise 6: the IWAE bound
# $\log \frac1K \sum_k w_k$ per example, from the log-weights $\log w_k = \log p(\mathbf x|\mathbf h_k) + \log
# p(\mathbf h_k) - \log Q(\mathbf h_k|\mathbf x)$ of shape (K, N); they are hundreds of nats below zero.

# %%
def iwae_bound(log_weights):
    raise NotImplementedError("exercise 6: the IWAE bound")


# %% tags=["nbval-check-output"]
exercises.check_iwae_bound(iwae_bound)

# %% [markdown]
# ### Exercise 7: the Keras `Sampling` layer
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
        raise NotImplementedError("exercise 7: the Keras `Sampling` layer")


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
# ### Exercise 8: the size of the code (notebook 05, exercise 1)
# Train the MLP VAE with `latent_dim` 2, 5, 20, 50. How do the ELBO, the IWAE bound and their gap change?

# %%
# exercise 8: your code here (the size of the code (notebook 05, exercise 1))

# %% [markdown]
# ### Exercise 9: no KL term (notebook 05, exercise 2)
# Train only the reconstruction term (with `rsample`). What happens to the samples?

# %%
# exercise 9: your code here (no KL term (notebook 05, exercise 2))

# %% [markdown]
# ### Exercise 10: the IWAE bound against K (notebook 05, exercise 3)
# Compute the IWAE bound for K = 1, 10, 100, 1000 on 200 test images and plot it against log K.

# %%
# exercise 10: your code here (the IWAE bound against K (notebook 05, exercise 3))

# %% [markdown]
# ### Exercise 11: a Gaussian decoder (notebook 05, exercise 4)
# Replace the Bernoulli decoder by $N(f(\mathbf h), \sigma^2 I)$ on grey levels. How does $\sigma$ change the
# balance between the two terms of the ELBO?

# %%
# exercise 11: your code here (a Gaussian decoder (notebook 05, exercise 4))

# %% [markdown]
# ### Exercise 12: keras.io's narrow layer (notebook 05, exercise 5)
# Train `vae.conv_vae(latent_dim=20, hidden=16)` as long as the MLP VAE and compare their IWAE bounds.

# %%
# exercise 12: your code here (keras.io's narrow layer (notebook 05, exercise 5))

# %% [markdown]
# ### Exercise 13: another Keras backend (notebook 06, exercise 1)
# Does anything change besides the speed with `KERAS_BACKEND=torch`?

# %%
# exercise 13: your code here (another Keras backend (notebook 06, exercise 1))

# %% [markdown]
# ### Exercise 14: a 16-dimensional code in Keras (notebook 06, exercise 2)
# Train with `latent_dim = 16`. How much does the test ELBO improve, and what happens to the KL term?

# %%
# exercise 14: your code here (a 16-dimensional code in Keras (notebook 06, exercise 2))

# %% [markdown]
# ### Exercise 15: keras.io's loss on grey levels (notebook 06, exercise 3)
# With sigmoid outputs and the binary cross-entropy on grey levels, what does the "loss" measure, and why can it not
# be compared with the ELBO in nats?

# %%
# exercise 15: your code here (keras.io's loss on grey levels (notebook 06, exercise 3))
