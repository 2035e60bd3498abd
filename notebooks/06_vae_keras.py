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
# # 06 · The variational autoencoder in Keras: keras.io's convolutional VAE on any backend
#
# The lecture shows François Chollet's convolutional VAE from keras.io: a `Sampling` layer, a small convolutional
# encoder and decoder, and a custom training step written with TensorFlow's `GradientTape`. Here is the same model in
# Keras 3, written once with `keras.ops` and `keras.random`, so that it trains unchanged on the TensorFlow backend
# (the default here) and on the PyTorch backend (`KERAS_BACKEND=torch`). Its loss is the one derived in the PyTorch
# VAE notebook, minus the ELBO in nats per image, and we score it on the same binarised test digits as a PyTorch
# model of identical shape.
#
# You will learn
# - how the reparameterisation $\mathbf h=\boldsymbol\mu+\boldsymbol\sigma\odot\boldsymbol\epsilon$ becomes a Keras
#   layer, and how a model supplies its own loss to `fit` without a framework-specific training step;
# - that the Keras loss terms are exactly the PyTorch ones (checked below on the same numbers);
# - the 2-D latent space of keras.io's model and the manifold of digits it decodes;
# - how the Keras model's test ELBO compares with the PyTorch model's, trained the same way.

# %% tags=["parameters"]
profile = None  # "quick" (seconds, CPU) or "full" (real results); None: GENMODELS_PROFILE, else "full"
device = None  # the PyTorch comparison model: None picks CUDA, then Apple MPS, then the CPU
seed = 0
latent_dim = None  # None: the run's (genmodels.runs.RUNS["vae_keras"], printed below: keras.io's 2, drawable)
epochs = None  # None: the run's, for the profile and device (on a GPU keras.io's); for both models
n_train = None  # images both models train on; None: the run's

# %%
import os

import genmodels  # first: silences TensorFlow's C++ logging before Keras loads it

os.environ.setdefault("KERAS_BACKEND", "tensorflow")  # or "torch"; fixed when keras is first imported
import keras
import numpy as np
import torch

from genmodels import data, plotting, runs, vae, vae_keras

profile, device = genmodels.setup(profile, device, seed)
settings = runs.settings("vae_keras", profile, latent_dim=latent_dim, epochs=epochs, n_train=n_train)
twin_settings = runs.settings("vae_keras_twin", profile, latent_dim=latent_dim, epochs=epochs, n_train=n_train)
latent_dim, epochs, n_train = settings.latent_dim, settings.epochs, settings.n_train
print(f"Keras {keras.__version__} on the {keras.backend.backend()} backend")
print(settings)
print(twin_settings)

# %% [markdown]
# ## The data: binarised, exactly as on the PyTorch side
#
# The decoder is a product of Bernoulli distributions, a normalised likelihood of *binary* images only. So the
# training digits are binarised afresh at every step (each pixel is 1 with probability its grey level; here a
# `Binarize` layer that draws with `keras.random`, active only while training), and the test digits once, with a fixed
# seed, so that both models are scored on the same binary images.

# %% tags=["nbval-check-output"]
dataset = data.load_data(profile)
x_train = dataset.x_train[:n_train]  # grey levels: binarised afresh at every training step
x_test = data.binarize_once(dataset.x_test)
print(f"{dataset}; training on the first {len(x_train):,}")
print(f"test set binarised once: {x_test.shape}, values {sorted(np.unique(x_test).tolist())}, "
      f"{x_test.mean():.2f} of the pixels on")

# %% [markdown]
# ## The pieces of the loss, in `keras.ops`
#
# Minus the ELBO of one image is the reconstruction term plus the KL divergence to the prior $N(0, I)$:
# $$-\mathcal L(\mathbf x)=-\sum_{i}\big[x_i l_i-\log(1+e^{l_i})\big]
#   +\tfrac12\sum_j\big(\sigma_j^2+\mu_j^2-1-\log\sigma_j^2\big),$$
# with $l_i$ the decoder's logit for pixel $i$ at one sample $\mathbf h\sim Q(\mathbf h|\mathbf x)$. `vae_keras`
# writes both terms with `keras.ops`; `genmodels.vae` writes them in PyTorch. Fed the same $\boldsymbol\mu$,
# $\log\boldsymbol\sigma^2$ and logits, they agree to float32 precision:

# %% tags=["nbval-check-output"]
rng = np.random.default_rng(seed)
mu, log_var = rng.normal(size=(2, 100, latent_dim)).astype("float32")
logits = rng.normal(scale=3, size=(100, 28, 28)).astype("float32")
x = x_test[:100]
keras_terms = [keras.ops.convert_to_numpy(t) for t in
               (vae_keras.kl_standard_normal(mu, log_var), vae_keras.bernoulli_log_likelihood(x, logits))]
torch_terms = [vae.kl_standard_normal(torch.from_numpy(mu), torch.from_numpy(log_var)).numpy(),
               vae.bernoulli_log_likelihood(torch.from_numpy(x), torch.from_numpy(logits)).numpy()]
for name, k, t in zip(["KL", "log p(x|h)"], keras_terms, torch_terms, strict=True):
    print(f"{name:>10}: mean {k.mean():9.2f} nats; largest relative difference Keras vs PyTorch below 1e-5: "
          f"{bool(np.max(np.abs(k - t) / np.abs(t)) < 1e-5)}")

# %% [markdown]
# ## The model: `Sampling`, encoder, decoder
#
# The encoder is keras.io's: two stride-2 convolutions (32 and 64 filters, 28 → 14 → 7), a dense layer of 16, and two
# heads for $\boldsymbol\mu$ and $\log\boldsymbol\sigma^2$; a `Sampling` layer draws
# $\mathbf h=\boldsymbol\mu+e^{\log\boldsymbol\sigma^2/2}\odot\boldsymbol\epsilon$, $\boldsymbol\epsilon\sim N(0,I)$
# from a seeded `keras.random.SeedGenerator`. The decoder mirrors it with transposed convolutions and returns logits.

# %%
model = runs.build(settings, device, seed=seed)  # vae_keras.conv_vae(latent_dim=latent_dim, seed=seed)
model.encoder.summary()
model.decoder.summary()

# %% [markdown]
# The PyTorch `vae.conv_vae` is built to the same plan, layer for layer, so the two have exactly as many parameters:

# %% tags=["nbval-check-output"]
torch_model = runs.build(twin_settings, device, seed=seed)  # vae.conv_vae(latent_dim=latent_dim)
print(f"Keras: {model.count_params():,} parameters; "
      f"PyTorch: {sum(p.numel() for p in torch_model.parameters()):,} parameters")

# %% [markdown]
# ## Training with `fit`
#
# `VAE.call` returns the (binarised) image, $\boldsymbol\mu$, $\log\boldsymbol\sigma^2$ and the logits;
# `VAE.compute_loss` turns them into the batch mean of $-\mathcal L$ and updates the `loss`, `reconstruction` and `kl`
# trackers. That is all Keras needs: `vae_keras.fit` is `model.fit(x, epochs=..., batch_size=..., callbacks=...)`,
# with the binarised test set as validation data (`val_loss` is minus the test ELBO) and, in the quick profile, one
# plain line per epoch instead of Keras' progress bar.

# %%
history = runs.train(model, dataset, settings, seed=seed, teaching=True)  # vae_keras.fit, the run's settings
plotting.plot_history(history.history, names=["loss", "val_loss", "kl"])

# %% [markdown]
# The loss falls as the reconstructions sharpen; with only two latent dimensions the KL term stays small.
# Reconstructions (the decoder's mean at the encoder's mean) and new digits from the prior:

# %%
plotting.show_images(np.concatenate([x_test[:10], vae_keras.reconstruct(model, x_test[:10])]), ncols=10,
                     title="binarised test digits (top), Keras VAE reconstructions (bottom)")
plotting.show_images(vae_keras.generate(model, 30, seed=seed), ncols=10,
                     title="samples: h ~ N(0, I), pixel probabilities of p(x|h)")

# %% [markdown]
# ## The 2-D latent space and the manifold of digits
#
# With two latent dimensions we can draw where each test digit lands (the mean of $Q(\mathbf h|\mathbf x)$), and
# decode a grid of latents evenly spaced in probability under the prior ($h_i=\Phi^{-1}(u_i)$, $u$ from 0.05 to 0.95).

# %%
plotting.plot_latent_codes(vae_keras.latent_codes(model, x_test), dataset.y_test,
                           title="test images in the latent space (Keras VAE)")

# %%
plotting.show_images(vae_keras.latent_manifold(model, n=15), ncols=15, title="decoder means over the 2-D latent grid")

# %% [markdown]
# Classes occupy neighbouring regions of a roughly Gaussian cloud, and the decoder morphs one digit smoothly into the
# next across the grid (in the quick profile, after seconds of training, only blurry strokes have formed).
#
# ## The same model in PyTorch, on the same data
#
# `genmodels.vae` trains the PyTorch twin through the course's training loop with the same optimiser (Adam at the
# same learning rate: the two runs' settings, printed at the top), batch size, number of epochs and dynamic
# binarisation. Both are then scored by the single-sample ELBO on the same binarised test digits (higher is better).
# The runs differ in their initial weights (Keras: Glorot-uniform kernels and zero biases; PyTorch: its own uniform
# scheme) and their random draws, so do not expect equal numbers, least of all after a few steps of training.

# %%
torch_history = runs.train(torch_model, dataset, twin_settings, seed=seed, teaching=True)
keras_elbo = vae_keras.evaluate_elbo(model, x_test).mean()
torch_elbo = vae.evaluate_elbo(torch_model, x_test).mean().item()
print(f"test ELBO, nats per image: Keras {keras_elbo:.1f}, PyTorch {torch_elbo:.1f} "
      f"({len(x_test):,} binarised test digits, {epochs} epoch(s), latent size {latent_dim})")
profile.note(f"{epochs} epoch(s) on {n_train:,} images", "both models trained on the whole training split, with a "
             "latent space and manifold worth reading")

# %% [markdown]
# Both train on the same images, for the same number of epochs. The quick profile's handful of updates leaves a
# 2-D VAE barely past its starting point, so the full profile trains both on the whole training split, on a GPU for
# keras.io's 30 epochs (sharper digits). A 2-D code is a tight bottleneck: both stay far from the ≈ 85–90 nats that
# larger VAEs reach on binarised MNIST (published figures, Burda et al. 2016; the 20-dimensional models of the
# PyTorch notebook do better). The two frameworks compute the same objective (checked term by term above); their
# results still differ by the margin printed above, because the two models start differently: Keras and PyTorch
# initialise layers differently by default (Glorot-uniform weights and zero biases against Kaiming-uniform weights
# and biases), and their Adam defaults differ in ε (10⁻⁷ against 10⁻⁸).
#
# ## What changed from the keras.io original, and why
# - **No TensorFlow-only training step.** The original subclasses `keras.Model` with a `train_step` that opens a
#   `tf.GradientTape`, computes the loss and applies the gradients itself; that code runs on TensorFlow only. Here the
#   model overrides `compute_loss` and lets each backend's own `fit` differentiate it, so callbacks, validation data
#   and `History` work, and `KERAS_BACKEND=torch` runs the same file.
# - **`keras.ops` and `keras.random` instead of `tf.*`.** The `Sampling` layer draws from a seeded `SeedGenerator`,
#   which keeps runs reproducible on every backend.
# - **Logits and a likelihood in nats.** The original decoder ends in a sigmoid and trains binary cross-entropy on
#   grey levels (train and test images together); ours returns logits (a numerically stable log-likelihood), trains
#   on dynamically binarised training images and scores a held-out test set binarised once, so the loss is a true
#   $-\mathcal L$ in nats, comparable with the PyTorch notebook and with the literature.
#
# ## What to take away
# - A Keras 3 model that supplies its loss in `compute_loss` trains with plain `fit` on any backend.
# - The loss terms are framework-independent mathematics: Keras and PyTorch agree to float32 precision.
# - A 2-D latent space is easy to look at and costly in likelihood.
#
# ## Exercises
# The exercises for this notebook are in `exercises/05_vae.ipynb` (open it in `make lab`): write keras.io's `Sampling`
# layer (and the ELBO's pieces in PyTorch), checked as you go; and answer this notebook's questions (another backend,
# a 16-dimensional code, keras.io's loss on grey levels) by running code. Worked answers:
# `exercises/solutions/05_vae.ipynb`.
#
# ## Further
# keras.io, *Variational AutoEncoder* (F. Chollet, https://keras.io/examples/generative/vae/); Keras 3's guide
# *Customizing what happens in fit()*; Kingma & Welling, *Auto-Encoding Variational Bayes* (2014). The derivation and
# the tighter IWAE bound are in the PyTorch VAE notebook.
