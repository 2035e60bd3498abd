"""Variational autoencoders in PyTorch.  Taught in 05_vae_pytorch.

In the lecture's order: the closed-form pieces of the ELBO (Gaussian KL divergences, the Bernoulli log-likelihood),
the model (an encoder returning Q(h|x) as a `torch.distributions.Normal`, a Bernoulli decoder giving logits, the prior
N(0, I)), in an MLP (784-400-20, as pytorch/examples) and a convolutional (as keras.io) variant; the ELBO

    log p(x) - KL(Q(h|x) || p(h|x)) = E_Q[log p(x|h)] - KL(Q(h|x) || p(h)),

its training step (reparameterised, dynamic binarisation) through the course's one training loop; generation, the
2-D latent manifold; evaluation by the ELBO and the importance-weighted bound (IWAE) in nats. A plain autoencoder of
the same shape, and a linear-Gaussian VAE (probabilistic PCA, where log p(x) is exact) for checking the identity.

Likelihoods are for binary images: a Bernoulli decoder is a normalised likelihood only on {0, 1} pixels.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import Bernoulli, Independent, MultivariateNormal, Normal, kl_divergence

from . import plotting, training
from .checks import check_binary, check_count, check_grey_levels, check_rate
from .data import binarize_stochastic

__all__ = ["kl_standard_normal", "kl_gaussians", "bernoulli_log_likelihood", "gaussian_log_likelihood",
           "GaussianEncoder", "MLPEncoder", "MLPDecoder", "ConvEncoder", "ConvDecoder", "VAE", "mlp_vae", "conv_vae",
           "Autoencoder", "mlp_autoencoder", "conv_autoencoder", "LinearGaussianVAE", "ConditionalLinearGaussian",
           "elbo_terms", "elbo", "reparameterise", "reparameterised_gradient", "score_function_gradient", "vae_loss",
           "autoencoder_loss", "fit", "on_device", "batched", "reconstruct", "generate", "latent_codes",
           "latent_manifold", "evaluate_elbo", "iwae_log_likelihood", "likelihood_bounds", "IMAGE_SHAPE"]

IMAGE_SHAPE = (28, 28)

# --- the closed-form pieces (tensors in, one value per example out) -----------------------------------------------


def kl_standard_normal(mu, log_var):
    """KL(N(mu, diag exp(log_var)) || N(0, I)) = 1/2 Σ_j (σ_j² + μ_j² - 1 - log σ_j²), summed over the last
    (latent) axis: one value per example.  Taught in 05_vae_pytorch."""
    return 0.5 * (log_var.exp() + mu.square() - 1.0 - log_var).sum(-1)


def kl_gaussians(mu_q, log_var_q, mu_p, log_var_p):
    """KL(N(μ_q, Σ_q) || N(μ_p, Σ_p)) for diagonal covariances, the lecture's
    1/2 [tr(Σ_p⁻¹Σ_q) + (μ_p - μ_q)ᵀ Σ_p⁻¹ (μ_p - μ_q) - k + log det Σ_p / det Σ_q], summed over the last axis.
    Taught in 05_vae_pytorch."""
    return 0.5 * ((log_var_q - log_var_p).exp() + (mu_q - mu_p).square() / log_var_p.exp() - 1.0
                  + log_var_p - log_var_q).sum(-1)


def bernoulli_log_likelihood(x, logits):
    """log p(x | h) = Σ_pixels [x log σ(l) + (1 - x) log(1 - σ(l))] for binary x and decoder logits l, computed
    stably as minus the binary cross-entropy with logits, summed over all but the first axis (nats per example).
    Taught in 06_vae_keras."""
    return -F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(-1)


def gaussian_log_likelihood(x, mean, noise_std):
    """log p(x | h) = log N(x; f(h), σ²I) = -||x - f(h)||² / (2σ²) - (d/2) log(2πσ²) for the decoder's mean f(h)
    and a fixed noise_std σ, summed over all but the first axis (nats per example). For σ fixed, maximising it is
    minimising the squared error; 1/(2σ²) sets its weight against the KL term of the ELBO.
    The lecture's Gaussian decoder (week13); tests/test_lecture_formulas.py checks it."""
    d = x[0].numel()
    noise_std = torch.as_tensor(noise_std, dtype=x.dtype, device=x.device)
    squared_error = (x - mean).square().flatten(1).sum(-1)
    return -0.5 * squared_error / noise_std.square() - 0.5 * d * torch.log(2 * math.pi * noise_std.square())


def _sum_latent(dist, value):
    """log-density or KL of a latent distribution summed to one value per example (Normal is per coordinate)."""
    return value.sum(-1) if isinstance(dist, Normal) else value


# --- the model: encoder Q(h|x), decoder p(x|h), prior p(h) --------------------------------------------------------


class GaussianEncoder(nn.Module):
    """Q(h|x) = N(μ(x), diag σ²(x)): a network's `features(x)`, then two linear heads, μ and log σ², so that
    σ = exp(½ log σ²). Subclasses build their network, then the heads (`add_heads`, so that the layers are
    initialised in the order data flows through them), and define `features`."""

    def add_heads(self, n_features: int, latent_dim: int) -> None:
        self.mu = nn.Linear(n_features, check_count("latent_dim", latent_dim))
        self.log_var = nn.Linear(n_features, latent_dim)

    def features(self, x):
        raise NotImplementedError

    def code(self, x):
        """The deterministic code μ(x) (what a plain autoencoder uses)."""
        return self.mu(self.features(x))

    def forward(self, x) -> Normal:
        f = self.features(x)
        return Normal(self.mu(f), (0.5 * self.log_var(f)).exp(), validate_args=False)  # checks would sync a GPU


class MLPEncoder(GaussianEncoder):
    """Q(h|x) = N(μ(x), diag σ²(x)): 784 -> 400 (ReLU) -> (μ, log σ²), as in pytorch/examples."""

    def __init__(self, latent_dim=20, hidden=400, n_pixels=784):
        super().__init__()
        self.hidden = nn.Linear(n_pixels, hidden)
        self.add_heads(hidden, latent_dim)

    def features(self, x):
        return F.relu(self.hidden(x.flatten(1)))


class MLPDecoder(nn.Module):
    """Logits of p(x|h) = Π Bernoulli(x_i | σ(l_i(h))): latent -> 400 (ReLU) -> 784."""

    def __init__(self, latent_dim=20, hidden=400, n_pixels=784):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(check_count("latent_dim", latent_dim), hidden), nn.ReLU(),
                                 nn.Linear(hidden, n_pixels))

    def forward(self, h):
        return self.net(h).view(-1, *IMAGE_SHAPE)


class ConvEncoder(GaussianEncoder):
    """Q(h|x) as in the keras.io VAE: Conv 32 and 64 (3x3, stride 2, ReLU) -> Dense 16 (ReLU) -> (μ, log σ²)."""

    def __init__(self, latent_dim=2, hidden=16):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, 32, 3, stride=2, padding=1), nn.ReLU(),  # 28 -> 14
            nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.ReLU(),  # 14 -> 7
            nn.Flatten(), nn.Linear(64 * 7 * 7, hidden), nn.ReLU(),
        )
        self.add_heads(hidden, latent_dim)

    def features(self, x):
        return self.net(x.view(-1, 1, *IMAGE_SHAPE))


class ConvDecoder(nn.Module):
    """Logits of p(x|h) as in the keras.io VAE: Dense 7·7·64 (ReLU) -> transposed convs 64, 32 (stride 2) -> 1."""

    def __init__(self, latent_dim=2):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(check_count("latent_dim", latent_dim), 64 * 7 * 7), nn.ReLU(), nn.Unflatten(1, (64, 7, 7)),
            nn.ConvTranspose2d(64, 64, 3, stride=2, padding=1, output_padding=1), nn.ReLU(),  # 7 -> 14
            nn.ConvTranspose2d(64, 32, 3, stride=2, padding=1, output_padding=1), nn.ReLU(),  # 14 -> 28
            nn.ConvTranspose2d(32, 1, 3, padding=1),
        )

    def forward(self, h):
        return self.net(h).view(-1, *IMAGE_SHAPE)


class VAE(nn.Module):
    """Prior p(h) = N(0, I), encoder Q(h|x) (a Normal), Bernoulli decoder p(x|h) (logits).  Taught in 05_vae_pytorch."""

    def __init__(self, encoder: nn.Module, decoder: nn.Module, latent_dim: int):
        super().__init__()
        self.encoder, self.decoder, self.latent_dim = encoder, decoder, check_count("latent_dim", latent_dim)

    def prior(self) -> Normal:
        p = next(self.parameters())
        zeros = torch.zeros(self.latent_dim, device=p.device, dtype=p.dtype)
        return Normal(zeros, torch.ones_like(zeros), validate_args=False)

    def logits(self, h):
        """Decoder logits for latents h of any leading shape (..., latent_dim) -> (..., 28, 28)."""
        return self.decoder(h.reshape(-1, self.latent_dim)).view(*h.shape[:-1], *IMAGE_SHAPE)

    def likelihood(self, h) -> Independent:
        """p(x|h): independent Bernoulli pixels, one event of 28x28 per latent."""
        return Independent(Bernoulli(logits=self.logits(h), validate_args=False), 2)

    def log_likelihood_given_h(self, x, h):
        """log p(x|h) in nats, one value per latent sample (not log p(x), which integrates over h)."""
        return self.likelihood(h).log_prob(x)


def mlp_vae(latent_dim=20, hidden=400) -> VAE:
    """The pytorch/examples VAE: 784-400-latent_dim, and back."""
    return VAE(MLPEncoder(latent_dim, hidden), MLPDecoder(latent_dim, hidden), latent_dim)


def conv_vae(latent_dim=2, hidden=16) -> VAE:
    """The keras.io convolutional VAE (latent_dim 2 there)."""
    return VAE(ConvEncoder(latent_dim, hidden), ConvDecoder(latent_dim), latent_dim)


class Autoencoder(nn.Module):
    """A plain autoencoder of the same shape: code h = f(x) (the encoder's mean head), reconstruction logits g(h)."""

    def __init__(self, encoder: nn.Module, decoder: nn.Module, latent_dim: int):
        super().__init__()
        self.encoder, self.decoder, self.latent_dim = encoder, decoder, latent_dim

    @classmethod
    def from_vae(cls, vae: VAE) -> Autoencoder:
        """The VAE's encoder and decoder, used without the noise: the two models on one architecture."""
        return cls(vae.encoder, vae.decoder, vae.latent_dim)

    def forward(self, x):
        return self.decoder(self.encoder.code(x))


def mlp_autoencoder(latent_dim=20, hidden=400) -> Autoencoder:
    """mlp_vae's networks, as a plain autoencoder."""
    return Autoencoder.from_vae(mlp_vae(latent_dim, hidden))


def conv_autoencoder(latent_dim=2, hidden=16) -> Autoencoder:
    """conv_vae's networks, as a plain autoencoder."""
    return Autoencoder.from_vae(conv_vae(latent_dim, hidden))


# --- a linear-Gaussian VAE (probabilistic PCA): log p(x) and p(h|x) exact -----------------------------------------
# One derivation serves both models below. For h ~ N(0, I) and x | h ~ N(Wh + c, s²I), with any offset c:
#     p(x)   = N(c, WWᵀ + s²I)                            (x is a linear map of Gaussians, plus Gaussian noise)
#     p(h|x) = N(M⁻¹Wᵀ(x - c), s²M⁻¹),  M = WᵀW + s²I      (complete the square in h, or Bayes for Gaussians)


def _linear_gaussian_marginal(W, offset, noise_std) -> MultivariateNormal:
    """p(x) = N(c, WWᵀ + s²I) for h ~ N(0, I), x | h ~ N(Wh + c, s²I); c = offset of shape (d,) or (N, d)."""
    eye = torch.eye(W.shape[0], dtype=W.dtype, device=W.device)
    return MultivariateNormal(offset, W @ W.T + noise_std**2 * eye)


def _linear_gaussian_posterior(W, offset, noise_std, x) -> MultivariateNormal:
    """p(h|x) = N(M⁻¹Wᵀ(x - c), s²M⁻¹) with M = WᵀW + s²I, for the same model; x (N, d)."""
    eye = torch.eye(W.shape[1], dtype=W.dtype, device=W.device)
    M = W.T @ W + noise_std**2 * eye
    mean = torch.linalg.solve(M, W.T @ (x - offset).T).T
    return MultivariateNormal(mean, noise_std**2 * torch.linalg.inv(M))



class LinearGaussianVAE(nn.Module):
    """p(h) = N(0, I), p(x|h) = N(Wh + b, s²I), so p(x) = N(b, WWᵀ + s²I) and p(h|x) are Gaussians in closed form.
    Q(h|x) is a diagonal Gaussian, linear in x (a linear encoder), unless another `encoder` is given.
    Used to check the ELBO identity in 05_vae_pytorch and tests/test_vae.py."""

    def __init__(self, W, b, noise_std, encoder=None):
        super().__init__()
        self.W, self.b = nn.Parameter(torch.as_tensor(W)), nn.Parameter(torch.as_tensor(b))
        self.register_buffer("noise_std", torch.as_tensor(noise_std, dtype=self.W.dtype))
        self.latent_dim = self.W.shape[1]
        d, k = self.W.shape
        self.linear_encoder = nn.Linear(d, 2 * k, dtype=self.W.dtype)
        self.encoder = encoder if encoder is not None else self.encode_linear

    def encode_linear(self, x) -> Normal:
        mu, log_var = self.linear_encoder(x).chunk(2, dim=-1)
        return Normal(mu, (0.5 * log_var).exp())

    def prior(self) -> Normal:
        zeros = torch.zeros(self.latent_dim, dtype=self.W.dtype, device=self.W.device)
        return Normal(zeros, torch.ones_like(zeros))

    def log_likelihood_given_h(self, x, h):
        """log p(x|h) = log N(x; Wh + b, s²I)."""
        return Independent(Normal(h @ self.W.T + self.b, self.noise_std), 1).log_prob(x)

    def log_marginal(self, x):
        """Exact log p(x) = log N(x; b, WWᵀ + s²I)."""
        return _linear_gaussian_marginal(self.W, self.b, self.noise_std).log_prob(x)

    def true_posterior(self, x) -> MultivariateNormal:
        """p(h|x) = N(M⁻¹Wᵀ(x - b), s²M⁻¹) with M = WᵀW + s²I."""
        return _linear_gaussian_posterior(self.W, self.b, self.noise_std, x)

    @torch.no_grad()
    def sample(self, n, generator: torch.Generator | None = None):
        """n independent draws of x by ancestral sampling, h ~ N(0, I), then x = Wh + b + s·ε, ε ~ N(0, I): a
        generative model's samples of p(x) with no Markov chain."""
        h = torch.randn(n, self.latent_dim, generator=generator, dtype=self.W.dtype, device=self.W.device)
        eps = torch.randn(n, len(self.b), generator=generator, dtype=self.W.dtype, device=self.W.device)
        return h @ self.W.T + self.b + self.noise_std * eps


class ConditionalLinearGaussian(nn.Module):
    """A conditional latent-variable model of y given x, for checking the lecture's conditional ELBO:
    p(h|x) = N(Ax, I), p(y|h, x) = N(Wh + Bx + b, s²I). With u = h - Ax ~ N(0, I), y = Wu + c(x) + noise and
    c(x) = (WA + B)x + b: the unconditional model above with offset c(x), so p(y|x) = N(c(x), WWᵀ + s²I) and
    p(h|y, x) = N(Ax + M⁻¹Wᵀ(y - c(x)), s²M⁻¹), M = WᵀW + s²I.
    x (N, m), y (N, d), h (..., N, k).  Checked in tests/test_lecture_formulas.py, shown in week13."""

    def __init__(self, A, W, B, b, noise_std):
        super().__init__()
        self.A, self.W = nn.Parameter(torch.as_tensor(A)), nn.Parameter(torch.as_tensor(W))
        self.B, self.b = nn.Parameter(torch.as_tensor(B)), nn.Parameter(torch.as_tensor(b))
        self.register_buffer("noise_std", torch.as_tensor(noise_std, dtype=self.W.dtype))
        self.latent_dim = self.W.shape[1]

    def prior(self, x) -> Independent:
        """p(h|x) = N(Ax, I): the prior of the latent variables, which now depends on x."""
        mean = x @ self.A.T
        return Independent(Normal(mean, torch.ones_like(mean)), 1)

    def log_likelihood_given_h(self, y, h, x):
        """log p(y|h, x) = log N(y; Wh + Bx + b, s²I)."""
        return Independent(Normal(h @ self.W.T + x @ self.B.T + self.b, self.noise_std), 1).log_prob(y)

    def _offset(self, x):
        """c(x) = (WA + B)x + b, the mean of y given x."""
        return x @ (self.W @ self.A + self.B).T + self.b

    def log_marginal(self, y, x):
        """Exact log p(y|x) = log N(y; c(x), WWᵀ + s²I)."""
        return _linear_gaussian_marginal(self.W, self._offset(x), self.noise_std).log_prob(y)

    def true_posterior(self, y, x) -> MultivariateNormal:
        """p(h|y, x) = N(Ax + M⁻¹Wᵀ(y - c(x)), s²M⁻¹): the posterior of u = h - Ax, shifted by Ax."""
        u = _linear_gaussian_posterior(self.W, self._offset(x), self.noise_std, y)
        return MultivariateNormal(u.mean + x @ self.A.T, u.covariance_matrix)


# --- the ELBO, its gradient estimators, the training step ----------------------------------------------------------


def elbo_terms(model, x, analytic_kl=True):
    """The two terms of the ELBO per example, (E_Q[log p(x|h)] estimated with one reparameterised sample h ~ Q(h|x),
    KL(Q(h|x) || p(h))), the KL in closed form, or estimated by log Q(h|x) - log p(h) at the same h.
    Taught in 05_vae_pytorch."""
    q = model.encoder(x)
    h = q.rsample()  # h = μ + σ·ε, ε ~ N(0, I): differentiable in μ and σ
    reconstruction = model.log_likelihood_given_h(x, h)
    if analytic_kl:
        kl = _sum_latent(q, kl_divergence(q, model.prior()))
    else:
        kl = _sum_latent(q, q.log_prob(h)) - model.prior().log_prob(h).sum(-1)
    return reconstruction, kl


def elbo(model, x, analytic_kl=True):
    """ELBO(x) = E_Q[log p(x|h)] - KL(Q(h|x) || p(h)) <= log p(x), one single-sample estimate per example, in nats.
    Taught in 05_vae_pytorch."""
    reconstruction, kl = elbo_terms(model, x, analytic_kl)
    return reconstruction - kl


def reparameterise(mu, log_var, eps):
    """h = μ + σ ε with σ = exp(½ log σ²): a draw of N(μ, diag σ²) from ε ~ N(0, I), differentiable in μ and
    log σ² (the reparameterisation trick); exercises/05_vae writes it."""
    return mu + (0.5 * log_var).exp() * eps


def reparameterised_gradient(f, mu, log_var, n_samples, generator=None):
    """Samples of ∇_(μ, log σ²) f(μ + σε), ε ~ N(0, I): the pathwise (reparameterisation) estimator of
    ∇ E_Q[f(h)], for f giving one value per sample. Returns two tensors of shape (n_samples, *mu.shape).
    Taught in 05_vae_pytorch."""
    shape = (n_samples, *mu.shape)
    mu = mu.detach().expand(shape).clone().requires_grad_()  # one copy per sample: per-sample gradients
    log_var = log_var.detach().expand(shape).clone().requires_grad_()
    eps = torch.randn(shape, generator=generator, device=mu.device, dtype=mu.dtype)
    return torch.autograd.grad(f(reparameterise(mu, log_var, eps)).sum(), (mu, log_var))


def score_function_gradient(f, mu, log_var, n_samples, generator=None):
    """Samples of f(h) ∇_(μ, log σ²) log Q(h), h ~ Q = N(μ, diag exp(log σ²)): the score-function (REINFORCE)
    estimator of ∇ E_Q[f(h)], which never differentiates f. Closed-form score: ∂/∂μ = (h - μ)/σ²,
    ∂/∂log σ² = ((h - μ)²/σ² - 1)/2.  Taught in 05_vae_pytorch."""
    var = log_var.exp()
    h = mu + var.sqrt() * torch.randn(n_samples, *mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
    values = f(h).detach().view(n_samples, *([1] * mu.dim()))
    return values * (h - mu) / var, values * 0.5 * ((h - mu).square() / var - 1.0)


def vae_loss(model, generator: torch.Generator | None = None, binarize=True):
    """loss_fn(batch) for `genmodels.training.train`: -ELBO averaged over the batch, with each grey-level image
    binarised afresh (dynamic binarisation, pixel = 1 with probability its grey level) unless binarize=False."""

    def loss_fn(x):
        if binarize:
            x = binarize_stochastic(x, generator=generator)
        reconstruction, kl = elbo_terms(model, x)
        loss = (kl - reconstruction).mean()
        return loss, {"reconstruction": reconstruction.mean().detach(), "kl": kl.mean().detach()}

    return loss_fn


def autoencoder_loss(model, generator: torch.Generator | None = None, binarize=True, error="bce"):
    """loss_fn(batch) for a plain autoencoder, summed over pixels and averaged over the batch: the binary
    cross-entropy of the reconstruction logits g(f(x)) (error="bce"), or the squared error ||x - x̃||² with
    x̃ = σ(g(f(x))) (error="mse"). A reconstruction error, not a likelihood of the data: the code has no prior."""
    if error not in ("bce", "mse"):
        raise ValueError(f"error must be 'bce' (binary cross-entropy) or 'mse' (squared error), got {error!r}")

    def loss_fn(x):
        if binarize:
            x = binarize_stochastic(x, generator=generator)
        if error == "mse":
            loss = (x - torch.sigmoid(model(x))).square().flatten(1).sum(-1).mean()
        else:
            loss = -bernoulli_log_likelihood(x, model(x)).mean()
        return loss, {}

    return loss_fn


def fit(model, x, *, epochs, batch_size=128, lr=1e-3, x_test=None, checkpoint=None, resume=True, progress="bar",
        seed=0, binarize=True, amp=None):
    """Train a VAE (or an Autoencoder) with Adam on images `x` in [0, 1], dynamically binarised, through the course's
    training loop; with `x_test` (already binary), report the test ELBO (VAE) or reconstruction error after each
    epoch. Returns the loop's History.  Taught in 05_vae_pytorch."""
    __tracebackhide__ = True  # a mistake in the call shows the student's line and the message (IPython, pytest)
    if binarize:
        check_grey_levels(x, "the training images", n_pixels=784)
    else:
        check_binary(x, "the training images (binarize=False)")
    check_rate("lr", lr)
    device = next(model.parameters()).device
    generator = torch.Generator(device=device).manual_seed(seed)
    is_vae = isinstance(model, VAE)
    loss_fn = (vae_loss if is_vae else autoencoder_loss)(model, generator, binarize)
    evaluate = None
    if x_test is not None:
        x_test = on_device(x_test, model)
        check_binary(x_test, "x_test")
        if is_vae:
            def evaluate():
                return {"test_elbo": evaluate_elbo(model, x_test).mean().item()}
        else:
            def evaluate():
                return {"test_bce": -batched(lambda b: bernoulli_log_likelihood(b, model(b)), x_test).mean().item()}
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    return training.train(model, x, epochs=epochs, batch_size=batch_size, loss_fn=loss_fn, optimizer=optimizer,
                          evaluate=evaluate, checkpoint=checkpoint, resume=resume, progress=progress, seed=seed,
                          amp=amp, generators={"binarize": generator}, config={"binarize": binarize})


# --- what a trained model does: reconstruct, generate, embed -------------------------------------------------------


@torch.no_grad()
def on_device(x, model) -> torch.Tensor:
    """x as a tensor on the model's device, in the model's floating-point type."""
    p = next(model.parameters())
    return (x if torch.is_tensor(x) else torch.as_tensor(x)).to(device=p.device, dtype=p.dtype)


@torch.no_grad()
def batched(fn, x, batch_size=1000):
    """fn applied to slices of x (on the model's device), results concatenated along the first axis."""
    return torch.cat([fn(x[i:i + batch_size]) for i in range(0, len(x), batch_size)])


@torch.no_grad()
def reconstruct(model, x):
    """Pixel probabilities σ(g(μ(x))): the decoder's mean at the encoder's mean (VAE) or code (autoencoder)."""
    x = on_device(x, model)
    h = model.encoder.code(x) if isinstance(model, Autoencoder) else model.encoder(x).mean
    return torch.sigmoid(model.decoder(h))


@torch.no_grad()
def generate(model, n, generator: torch.Generator | None = None):
    """n new images: h ~ p(h) = N(0, I), then the pixel probabilities σ(g(h)) of p(x|h).  Taught in 05_vae_pytorch."""
    p = next(model.parameters())
    h = torch.randn(n, model.latent_dim, generator=generator, device=p.device, dtype=p.dtype)
    return torch.sigmoid(model.decoder(h))


@torch.no_grad()
def latent_codes(model, x, batch_size=1000):
    """Where each image lands in latent space: the mean of Q(h|x) for a VAE, the code f(x) for an autoencoder."""
    x = on_device(x, model)
    fn = model.encoder.code if isinstance(model, Autoencoder) else (lambda b: model.encoder(b).mean)
    return batched(fn, x, batch_size).cpu()


@torch.no_grad()
def latent_manifold(model, n=15, quantile=0.05):
    """The 2-D latent manifold: decoder means on an n x n grid of latents evenly spaced in probability under the
    prior (genmodels.plotting.latent_grid). Returns (n*n, 28, 28) in its reading order.  Taught in 05_vae_pytorch."""
    if model.latent_dim != 2:
        raise ValueError(f"the latent manifold is drawn for a 2-D latent space; this model has latent_dim="
                         f"{model.latent_dim}. Train one with latent_dim=2.")
    p = next(model.parameters())
    h = torch.as_tensor(plotting.latent_grid(n, quantile), device=p.device, dtype=p.dtype)
    return torch.sigmoid(model.decoder(h))


# --- evaluation in nats: the ELBO and the importance-weighted bound ------------------------------------------------


@torch.no_grad()
def evaluate_elbo(model, x, batch_size=1000):
    """Single-sample ELBO per example of binary images x (nats), in batches."""
    x = on_device(x, model)
    check_binary(x, "the images to evaluate")
    return batched(lambda b: elbo(model, b), x, batch_size)


@torch.no_grad()
def iwae_log_likelihood(model, x, k, batch_size=None):
    """The importance-weighted estimate of log p(x) (Burda et al. 2016), per example:
    log (1/K) Σ_k p(x|h_k) p(h_k) / Q(h_k|x), h_k ~ Q(h|x), by logsumexp. K = 1 is the ELBO (with the KL estimated
    by sampling); the bound rises towards log p(x) as K grows. Batched so that K x batch latents fit in memory.
    Taught in 05_vae_pytorch."""
    if k < 1:
        raise ValueError(f"k, the number of importance samples, must be at least 1; got {k}")
    x = on_device(x, model)
    if isinstance(model, VAE):
        check_binary(x, "the images to evaluate")
    batch_size = batch_size or max(1, 20_000 // k)
    out = []
    for i in range(0, len(x), batch_size):
        xb = x[i:i + batch_size]
        q = model.encoder(xb)
        h = q.sample((k,))  # (k, batch, latent)
        log_w = model.log_likelihood_given_h(xb, h) + model.prior().log_prob(h).sum(-1) - _sum_latent(q, q.log_prob(h))
        out.append(iwae_bound(log_w))
    return torch.cat(out)


def iwae_bound(log_weights):
    """log (1/K) Σ_k w_k per example, from log-weights (K, N), by logsumexp (they are hundreds of nats: exp
    underflows); exercises/05_vae writes it."""
    return torch.logsumexp(log_weights, dim=0) - math.log(len(log_weights))


def likelihood_bounds(model, x, k):
    """Mean test ELBO and IWAE(K = k) bound on the same binary images, in nats: {"elbo": ..., "iwae": ...}.
    Taught in 05_vae_pytorch."""
    return {"elbo": evaluate_elbo(model, x).mean().item(), "iwae": iwae_log_likelihood(model, x, k).mean().item()}
