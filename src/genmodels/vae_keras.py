"""The keras.io convolutional VAE in Keras 3, on any backend (TensorFlow, PyTorch, JAX).  Taught in 06_vae_keras.

The same model, in the same order, as the convolutional VAE of `genmodels.vae` (05_vae_pytorch): the closed-form
pieces of the ELBO (Gaussian KL divergences, the Bernoulli log-likelihood) written with `keras.ops`; the model (a
`Sampling` layer for h = μ + σ·ε, the keras.io encoder and decoder, the prior N(0, I)); its loss, minus the ELBO

    -ELBO(x) = -E_Q[log p(x|h)] + KL(Q(h|x) || p(h)),   in nats per image,

added in `compute_loss` so that the backend's own `fit` trains it (no TensorFlow-only `train_step`); generation, the
2-D latent manifold; the test ELBO in nats. Images are binarised afresh at every training step (dynamic binarisation
with `keras.random`), so the Bernoulli likelihood is a normalised likelihood of binary images, as on the PyTorch side.

Import it explicitly (`from genmodels import vae_keras`): `import genmodels` never loads Keras or TensorFlow. The
backend is fixed when Keras is first imported; choose it with KERAS_BACKEND=torch (or tensorflow, jax) before that.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers, ops

from .checks import check_binary, check_grey_levels, check_rate
from .keras_training import batched
from .keras_training import fit as keras_fit
from .plotting import latent_grid

__all__ = ["IMAGE_SHAPE", "kl_standard_normal", "kl_gaussians", "bernoulli_log_likelihood", "Sampling", "Binarize",
           "conv_encoder", "conv_decoder", "VAE", "conv_vae", "elbo_terms", "elbo", "fit", "reconstruct", "generate",
           "latent_codes", "latent_manifold", "evaluate_elbo"]

IMAGE_SHAPE = (28, 28)

# --- the closed-form pieces (tensors in, one value per example out) -----------------------------------------------


def kl_standard_normal(mu, log_var):
    """KL(N(mu, diag exp(log_var)) || N(0, I)) = 1/2 Σ_j (σ_j² + μ_j² - 1 - log σ_j²), summed over the last
    (latent) axis: one value per example.  Taught in 06_vae_keras (and 05_vae_pytorch)."""
    return 0.5 * ops.sum(ops.exp(log_var) + ops.square(mu) - 1.0 - log_var, axis=-1)


def kl_gaussians(mu_q, log_var_q, mu_p, log_var_p):
    """KL(N(μ_q, Σ_q) || N(μ_p, Σ_p)) for diagonal covariances,
    1/2 [tr(Σ_p⁻¹Σ_q) + (μ_p - μ_q)ᵀ Σ_p⁻¹ (μ_p - μ_q) - k + log det Σ_p / det Σ_q], summed over the last axis."""
    return 0.5 * ops.sum(ops.exp(log_var_q - log_var_p) + ops.square(mu_q - mu_p) / ops.exp(log_var_p) - 1.0
                         + log_var_p - log_var_q, axis=-1)


def bernoulli_log_likelihood(x, logits):
    """log p(x | h) = Σ_pixels [x log σ(l) + (1 - x) log(1 - σ(l))] = Σ_pixels [x·l - softplus(l)] for binary x and
    decoder logits l (the stable form of minus the binary cross-entropy), summed over all but the first axis."""
    per_pixel = x * logits - ops.softplus(logits)
    return ops.sum(ops.reshape(per_pixel, (ops.shape(per_pixel)[0], -1)), axis=-1)


# --- the model: sampling layer, encoder Q(h|x), decoder p(x|h) ----------------------------------------------------


class Sampling(layers.Layer):
    """h = μ + σ·ε with ε ~ N(0, I) (the reparameterisation), drawn with `keras.random` from a seeded generator."""

    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs):
        mu, log_var = inputs
        eps = keras.random.normal(ops.shape(mu), seed=self.seed_generator)
        return mu + ops.exp(0.5 * log_var) * eps


class Binarize(layers.Layer):
    """Dynamic binarisation: while training, each pixel becomes 1 with probability its grey level, afresh at every
    step; at inference the input passes unchanged (binarise the test set once, with a fixed seed)."""

    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, x, training=False):
        if not training:
            return x
        u = keras.random.uniform(ops.shape(x), seed=self.seed_generator, dtype=x.dtype)
        return ops.cast(u < x, x.dtype)


def conv_encoder(latent_dim=2, hidden=16, seed=None) -> keras.Model:
    """Q(h|x) as in keras.io: Conv 32 and 64 (3x3, stride 2, ReLU) -> Dense 16 (ReLU) -> (μ, log σ², h ~ Q)."""
    x = keras.Input(shape=IMAGE_SHAPE, name="image")
    f = layers.Reshape((*IMAGE_SHAPE, 1))(x)  # channels last
    f = layers.Conv2D(32, 3, strides=2, padding="same", activation="relu")(f)  # 28 -> 14
    f = layers.Conv2D(64, 3, strides=2, padding="same", activation="relu")(f)  # 14 -> 7
    f = layers.Dense(hidden, activation="relu")(layers.Flatten()(f))
    mu = layers.Dense(latent_dim, name="mu")(f)
    log_var = layers.Dense(latent_dim, name="log_var")(f)
    h = Sampling(seed, name="h")([mu, log_var])
    return keras.Model(x, [mu, log_var, h], name="encoder")


def conv_decoder(latent_dim=2) -> keras.Model:
    """Logits of p(x|h) as in keras.io: Dense 7·7·64 (ReLU) -> transposed convs 64, 32 (stride 2, ReLU) -> 1.
    keras.io ends in a sigmoid; we keep the logits, for a stable log-likelihood."""
    h = keras.Input(shape=(latent_dim,), name="h")
    f = layers.Reshape((7, 7, 64))(layers.Dense(7 * 7 * 64, activation="relu")(h))
    f = layers.Conv2DTranspose(64, 3, strides=2, padding="same", activation="relu")(f)  # 7 -> 14
    f = layers.Conv2DTranspose(32, 3, strides=2, padding="same", activation="relu")(f)  # 14 -> 28
    logits = layers.Reshape(IMAGE_SHAPE, name="logits")(layers.Conv2DTranspose(1, 3, padding="same")(f))
    return keras.Model(h, logits, name="decoder")


class VAE(keras.Model):
    """Prior N(0, I), encoder Q(h|x), Bernoulli decoder p(x|h); `compute_loss` returns -ELBO in nats per image, so
    `model.fit(x, epochs=..., batch_size=...)` trains it on every backend.  Taught in 06_vae_keras."""

    def __init__(self, encoder, decoder, binarize=True, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.encoder, self.decoder = encoder, decoder
        self.latent_dim = decoder.input_shape[-1]
        self.binarize = Binarize(seed) if binarize else None
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.reconstruction_tracker = keras.metrics.Mean(name="reconstruction")
        self.kl_tracker = keras.metrics.Mean(name="kl")

    def build(self, input_shape):
        """The encoder and decoder are built when created; nothing else holds weights."""
        if self.binarize is not None:
            self.binarize.build(input_shape)
        self.built = True

    def call(self, x, training=False):
        """The binary image the loss scores (binarised afresh while training), μ, log σ² and the decoder's logits."""
        if self.binarize is not None:
            x = self.binarize(x, training=training)
        mu, log_var, h = self.encoder(x, training=training)
        return {"x": x, "mu": mu, "log_var": log_var, "logits": self.decoder(h, training=training)}

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        reconstruction, kl = elbo_terms(y_pred)
        loss = ops.mean(kl - reconstruction)
        self.loss_tracker.update_state(loss)
        self.reconstruction_tracker.update_state(ops.mean(reconstruction))
        self.kl_tracker.update_state(ops.mean(kl))
        return loss

    @property
    def metrics(self):
        return [self.loss_tracker, self.reconstruction_tracker, self.kl_tracker]


def conv_vae(latent_dim=2, hidden=16, binarize=True, seed=None, lr=1e-3) -> VAE:
    """The keras.io convolutional VAE (latent_dim 2 there), built and compiled with Adam. A `seed` fixes the initial
    weights (through Keras' global seed), the samples of h and the binarisation."""
    if seed is not None:
        keras.utils.set_random_seed(seed)
    model = VAE(conv_encoder(latent_dim, hidden, seed), conv_decoder(latent_dim), binarize,
                None if seed is None else seed + 1, name="vae")
    model.build((None, *IMAGE_SHAPE))
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=lr))
    return model


# --- the ELBO, training ------------------------------------------------------------------------------------------


def elbo_terms(outputs):
    """The two terms of the ELBO per example from the model's outputs: (log p(x|h) at one reparameterised sample
    h ~ Q(h|x), the closed-form KL(Q(h|x) || p(h))).  Taught in week13."""
    return (bernoulli_log_likelihood(outputs["x"], outputs["logits"]),
            kl_standard_normal(outputs["mu"], outputs["log_var"]))


def elbo(model, x):
    """ELBO(x) = E_Q[log p(x|h)] - KL(Q(h|x) || p(h)) <= log p(x), one single-sample estimate per example, in nats."""
    reconstruction, kl = elbo_terms(model(x, training=False))
    return reconstruction - kl


def fit(model, x, *, epochs, batch_size=128, lr=None, x_test=None, backup_dir=None, progress="bar", callbacks=(),
        seed=0):
    """Train with `model.fit` on grey-level images `x` in [0, 1] (binarised afresh at each step); with `x_test`
    (already binary) report the test loss (-ELBO) after each epoch as `val_loss`. `lr`, if given, is the optimiser's
    learning rate from now on (else the one conv_vae compiled); `backup_dir` lets a stopped or diverged fit resume.
    progress "plain" prints one line per epoch (quick profile, stable outputs), "bar" shows Keras' progress bar,
    "none" prints nothing (the conventions of genmodels.keras_training). Returns Keras' History."""
    __tracebackhide__ = True  # a mistake in the call shows the student's line and the message (IPython, pytest)
    check_grey_levels(x, "the training images", n_pixels=784)
    if x_test is not None:
        check_binary(x_test, "x_test")
    if lr is not None:
        model.optimizer.learning_rate = check_rate("lr", lr)
    return keras_fit(model, x, epochs=epochs, batch_size=batch_size, progress=progress, callbacks=callbacks, seed=seed,
                     validation_data=None if x_test is None else (np.asarray(x_test, dtype="float32"),),
                     backup_dir=backup_dir)


# --- what a trained model does: reconstruct, generate, embed -------------------------------------------------------


def reconstruct(model, x):
    """Pixel probabilities σ(g(μ(x))): the decoder's mean at the encoder's mean."""
    return batched(lambda b: ops.sigmoid(model.decoder(model.encoder(b)[0])), x)


def generate(model, n, seed=0):
    """n new images: h ~ p(h) = N(0, I), then the pixel probabilities σ(g(h)) of p(x|h)."""
    h = keras.random.normal((n, model.latent_dim), seed=seed)
    return ops.convert_to_numpy(ops.sigmoid(model.decoder(h)))


def latent_codes(model, x, batch_size=1000):
    """Where each image lands in latent space: the mean of Q(h|x)."""
    return batched(lambda b: model.encoder(b)[0], x, batch_size)


def latent_manifold(model, n=15, quantile=0.05):
    """The 2-D latent manifold: decoder means on plotting.latent_grid (latents evenly spaced in probability under
    the prior), as genmodels.vae.latent_manifold. Returns (n*n, 28, 28) in the grid's reading order."""
    if model.latent_dim != 2:
        raise ValueError(f"the latent manifold is drawn for a 2-D latent space; this model has latent_dim="
                         f"{model.latent_dim}. Build one with conv_vae(latent_dim=2).")
    return ops.convert_to_numpy(ops.sigmoid(model.decoder(latent_grid(n, quantile))))


# --- evaluation in nats -------------------------------------------------------------------------------------------


def evaluate_elbo(model, x, batch_size=1000):
    """Single-sample ELBO per example of binary images x (nats), in batches."""
    check_binary(x, "x")
    return batched(lambda b: elbo(model, b), x, batch_size)
