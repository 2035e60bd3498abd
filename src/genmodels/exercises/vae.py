"""The checks of exercises/05_vae: the ELBO's pieces, the reparameterisation, IWAE, and the Keras Sampling layer.
Each spec compares with genmodels.vae; its mistakes are the wrong versions it names."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from .. import vae
from .grading import Case, Exercise, Mistake, SamplingLayerExercise, binary, normal


def _latent_cases():
    return [Case("", lambda: (normal((1, 2), 0), normal((1, 2), 1))),
            Case("a batch of 20-D codes", lambda: (normal((16, 20), 2), normal((16, 20), 3))),
            Case("log σ² from -5 to 3", lambda: (normal((4, 3), 4, 2.0), torch.linspace(-5, 3, 12).reshape(4, 3)))]


KL_STANDARD_NORMAL = Exercise(
    "KL(Q || N(0, I))", "kl_standard_normal(mu, log_var)", vae.kl_standard_normal, _latent_cases(), grad=(0, 1),
    mistakes=[
        Mistake(lambda mu, lv: 0.5 * (lv.exp() + mu**2 - lv).sum(-1),
                "the -k term is missing (-1 per latent dimension): KL = 1/2 Σ_j (σ_j² + μ_j² - 1 - log σ_j²), "
                "zero when Q = N(0, I)"),
        Mistake(lambda mu, lv: 0.5 * ((2 * lv).exp() + mu**2 - 1 - lv).sum(-1),
                "σ² is exp(log σ²) itself, not its square: you used exp(2 log σ²)"),
        Mistake(lambda mu, lv: 0.5 * (lv.exp() + mu**2 - 1 - lv).sum(0),
                "a sum over the wrong axis: sum over the latent dimensions (dim=-1), one KL per example"),
        Mistake(lambda mu, lv: 0.5 * (lv.exp() + mu**2 - 1 - lv).mean(-1),
                "the KL sums over the latent dimensions; you averaged them"),
        Mistake(lambda mu, lv: -0.5 * (lv.exp() + mu**2 - 1 - lv).sum(-1),
                "a KL divergence is ≥ 0: the sign is flipped (this is the -KL the ELBO adds)"),
        Mistake(lambda mu, lv: 0.5 * (lv.exp() + mu**2 - 1 + lv).sum(-1),
                "the log-variance enters with a minus: ... - 1 - log σ_j²"),
        Mistake(lambda mu, lv: (lv.exp() + mu**2 - 1 - lv).sum(-1),
                "the ½ is missing: KL = 1/2 Σ_j (σ_j² + μ_j² - 1 - log σ_j²)"),
        Mistake(lambda mu, lv: vae.kl_standard_normal(lv, mu),
                "μ and log σ² are swapped: kl_standard_normal(mu, log_var), the mean first"),
    ], shape_hint="one value per example, (N,): sum over the last axis (dim=-1)",
    doc="""The closed-form KL to N(0, I).  kl_standard_normal(mu, log_var) -> 1/2 Σ_j (σ_j² + μ_j² - 1 -
    log σ_j²) with σ² = exp(log_var), summed over the last axis (N,), differentiable.""")


def _four(shape, seed):
    return lambda: tuple(normal(shape, seed + i) for i in range(4))


KL_GAUSSIANS = Exercise(
    "KL(Q || P) between diagonal Gaussians", "kl_gaussians(mu_q, log_var_q, mu_p, log_var_p)", vae.kl_gaussians,
    [Case("", _four((1, 2), 0)), Case("a batch of 20-D codes", _four((16, 20), 10)),
     Case("P = N(0, I): the standard-normal KL", lambda: (normal((4, 3), 20), normal((4, 3), 21),
                                                          torch.zeros(4, 3), torch.zeros(4, 3)))],
    grad=(0, 1),
    mistakes=[
        Mistake(lambda mq, lq, mp, lp: vae.kl_gaussians(mq, lq, mp, lp) + 0.5 * mq.shape[-1],
                "the -k term is missing (-1 per latent dimension): the KL of Q from itself must be 0"),
        Mistake(lambda mq, lq, mp, lp: vae.kl_gaussians(mp, lp, mq, lq),
                "that is KL(P || Q): the KL is not symmetric; the trace term is tr(Σ_p⁻¹ Σ_q)"),
        Mistake(lambda mq, lq, mp, lp: 0.5 * ((lq - lp).exp() + (mq - mp) ** 2 - 1 + lp - lq).sum(-1),
                "the mean term is weighted by Σ_p⁻¹: (μ_p - μ_q)² / σ_p²"),
        Mistake(lambda mq, lq, mp, lp: 0.5 * ((lq - lp).exp() + (mq - mp) ** 2 / lp.exp() - 1 + lq - lp).sum(-1),
                "the log-determinant term is log det Σ_p - log det Σ_q: + log σ_p² - log σ_q²"),
        Mistake(lambda mq, lq, mp, lp: 2 * vae.kl_gaussians(mq, lq, mp, lp), "the ½ in front is missing"),
        Mistake(lambda mq, lq, mp, lp: vae.kl_gaussians(mq, mp, lq, lp),
                "the arguments are (mu_q, log_var_q, mu_p, log_var_p): each distribution's mean, then its "
                "log-variance"),
    ], shape_hint="one value per example, (N,): sum over the last axis (dim=-1)",
    doc="""The general Gaussian KL.  kl_gaussians(mu_q, log_var_q, mu_p, log_var_p) -> KL(N(μ_q, Σ_q) ||
    N(μ_p, Σ_p)) for diagonal covariances, 1/2 [tr(Σ_p⁻¹Σ_q) + (μ_p - μ_q)ᵀΣ_p⁻¹(μ_p - μ_q) - k + log det Σ_p/det Σ_q],
    summed over the last axis (N,).""")


def _with_eps(make, seed):
    return lambda: (*make(), normal(make()[0].shape, seed))


REPARAMETERISE = Exercise(
    "the reparameterised sample", "reparameterise(mu, log_var, eps)", vae.reparameterise,
    [Case(c.note, _with_eps(c.make, 50 + i)) for i, c in enumerate(_latent_cases())], grad=(0, 1),
    mistakes=[
        Mistake(lambda mu, lv, eps: mu + torch.exp(lv) * eps,
                "σ = exp(½ log σ²), not exp(log σ²) (which is the variance σ²): your samples are too spread "
                "where σ > 1 and too narrow where σ < 1"),
        Mistake(lambda mu, lv, eps: mu + lv * eps, "log_var is the log-variance: σ = exp(½ log_var)"),
        Mistake(lambda mu, lv, eps: mu + torch.exp(0.5 * lv), "multiply σ by the noise ε: h = μ + σ ε"),
        Mistake(lambda mu, lv, eps: mu * torch.exp(0.5 * lv) + eps, "h = μ + σ ε: the noise is scaled, not μ"),
        Mistake(lambda mu, lv, eps: lv + torch.exp(0.5 * mu) * eps,
                "μ and log σ² are swapped: reparameterise(mu, log_var, eps), the mean first"),
        Mistake(lambda mu, lv, eps: mu + torch.sqrt(lv.abs()) * eps,
                "log_var is the log of the variance: σ = exp(½ log_var), not √log_var"),
    ], verified="its gradients in μ and log σ² are the package's",
    shape_hint="h has the shape of μ, one sample per example and latent dimension",
    doc="""The reparameterised sample.  reparameterise(mu, log_var, eps) -> h = μ + σ ε with σ = exp(½ log σ²),
    for ε ~ N(0, I) given; differentiable in μ and log σ² (that is the point of the trick).""")


def _pixels_case(shape, seed, scale=1.0):
    return lambda: (binary(shape, seed), normal(shape, seed + 1, scale))


BERNOULLI_LOG_LIKELIHOOD = Exercise(
    "the Bernoulli log-likelihood", "bernoulli_log_likelihood(x, logits)", vae.bernoulli_log_likelihood,
    [Case("", _pixels_case((2, 10), 0)), Case("images (N, 28, 28)", _pixels_case((3, 28, 28), 1)),
     Case("logits of ±100, where σ rounds to 0 or 1", _pixels_case((4, 16), 2, 60.0))],
    grad=(1,),
    mistakes=[
        Mistake(lambda x, logits: (x * torch.log(torch.sigmoid(logits))
                                   + (1 - x) * torch.log(1 - torch.sigmoid(logits))).flatten(1).sum(-1),
                "log σ(l) and log(1 - σ(l)) overflow to -inf once σ rounds to 0 or 1: use F.logsigmoid or "
                "-F.binary_cross_entropy_with_logits(logits, x, reduction='none')"),
        Mistake(lambda x, logits: -vae.bernoulli_log_likelihood(x, logits),
                "that is the binary cross-entropy, minus the log-likelihood: flip the sign"),
        Mistake(lambda x, logits: vae.bernoulli_log_likelihood(x, logits) / x[0].numel(),
                "the log-likelihood sums the pixels; you averaged them (F.binary_cross_entropy's default "
                "reduction='mean')"),
        Mistake(lambda x, logits: vae.bernoulli_log_likelihood(x, logits).sum() if len(x) > 1 else None,
                "you summed over the examples too: one value per example, shape (N,)"),
        Mistake(lambda x, logits: -F.binary_cross_entropy_with_logits(x, logits, reduction="none").flatten(1).sum(1),
                "the arguments of binary_cross_entropy_with_logits are swapped: (logits, x), the logits first"),
        Mistake(lambda x, logits: (x * F.logsigmoid(logits)).flatten(1).sum(1),
                "the term of the pixels that are off is missing: + (1 - x) log(1 - σ(l)) = (1 - x) logsigmoid(-l)"),
        Mistake(lambda x, logits: (x * torch.log(logits.abs()) + (1 - x) * torch.log((1 - logits).abs())
                                   ).flatten(1).sum(1),
                "the decoder returns logits: p = σ(l), so use F.logsigmoid(l) and F.logsigmoid(-l), not log(l)"),
    ], shape_hint="one value per example, (N,): sum over every axis but the first, x.flatten(1).sum(1) (images are "
                  "(N, 28, 28))",
    doc="""The decoder's log-likelihood.  bernoulli_log_likelihood(x, logits) -> Σ_pixels [x log σ(l) + (1 - x)
    log(1 - σ(l))] for binary x and logits l, summed over all but the first axis (N,), computed stably.""")


def _elbo(x, mu, log_var, eps, decode):
    h = vae.reparameterise(mu, log_var, eps)
    return vae.bernoulli_log_likelihood(x, decode(h)) - vae.kl_standard_normal(mu, log_var)


def _decoder(latent, pixels, seed):
    W = normal((latent, pixels), seed, 2.0)
    return lambda h: h @ W


def _elbo_case(n, latent, pixels, seed):
    return lambda: (binary((n, pixels), seed), normal((n, latent), seed + 1), normal((n, latent), seed + 2, 0.5),
                    normal((n, latent), seed + 3), _decoder(latent, pixels, seed + 4))


def _log_likelihood(x, mu, log_var, eps, decode):
    return vae.bernoulli_log_likelihood(x, decode(vae.reparameterise(mu, log_var, eps)))


ELBO = Exercise(
    "the ELBO", "elbo(x, mu, log_var, eps, decode)", _elbo,
    [Case("", _elbo_case(1, 2, 10, 0)), Case("784 pixels, 20-D codes", _elbo_case(8, 20, 784, 10)),
     Case("", _elbo_case(3, 5, 30, 20))], grad=(1, 2),
    mistakes=[
        Mistake(lambda x, mu, lv, eps, dec: _log_likelihood(x, mu, lv, eps, dec) + vae.kl_standard_normal(mu, lv),
                "the ELBO subtracts the KL: log p(x|h) - KL(Q || p(h))"),
        Mistake(lambda x, mu, lv, eps, dec: vae.bernoulli_log_likelihood(x, dec(mu + torch.exp(lv) * eps))
                - vae.kl_standard_normal(mu, lv),
                "σ = exp(½ log σ²), not exp(log σ²), in the sample h = μ + σ ε"),
        Mistake(lambda x, mu, lv, eps, dec: _log_likelihood(x, mu, lv, eps, dec)
                - 0.5 * (lv.exp() + mu**2 - lv).sum(-1),
                "the KL's -k term is missing (-1 per latent dimension): KL = 1/2 Σ_j (σ_j² + μ_j² - 1 - log σ_j²)"),
        Mistake(lambda x, mu, lv, eps, dec: vae.bernoulli_log_likelihood(x, dec(mu)) - vae.kl_standard_normal(mu, lv),
                "you decoded μ, not the sample h = μ + σ ε: the ELBO's first term is an expectation over Q"),
        Mistake(_log_likelihood, "the KL term is missing: ELBO = log p(x|h) - KL(Q(h|x) || p(h))"),
        Mistake(lambda x, mu, lv, eps, dec: vae.bernoulli_log_likelihood(x, torch.sigmoid(dec(
            vae.reparameterise(mu, lv, eps)))) - vae.kl_standard_normal(mu, lv),
                "decode(h) returns logits already: do not apply the sigmoid before the log-likelihood"),
        Mistake(lambda x, mu, lv, eps, dec: _log_likelihood(x, mu, lv, eps, dec)
                - 2 * vae.kl_standard_normal(mu, lv),
                "the KL's ½ is missing: KL = 1/2 Σ_j (σ_j² + μ_j² - 1 - log σ_j²)"),
    ], shape_hint="one value per example, (N,): sum the pixels and the latent dimensions, not the examples",
    doc="""The ELBO.  elbo(x, mu, log_var, eps, decode) -> log p(x | h) - KL(Q(h|x) || N(0, I)) per example, with
    h = μ + σ ε (one sample), decode(h) the decoder's logits, the Bernoulli log-likelihood and the closed-form KL
    (your functions above, or genmodels.vae's).""")


def _log_weights_case(k, n, shift, seed):
    return lambda: (normal((k, n), seed, 3.0, shift),)


IWAE_BOUND = Exercise(
    "the IWAE bound", "iwae_bound(log_weights)", vae.iwae_bound,
    [Case("K = 5", _log_weights_case(5, 3, -100.0, 0)), Case("K = 1: the ELBO", _log_weights_case(1, 4, -90.0, 1)),
     Case("log-weights near -800, where exp underflows", _log_weights_case(50, 6, -800.0, 2))],
    mistakes=[
        Mistake(lambda lw: torch.logsumexp(lw, 0),
                "log K is missing: the bound is log of the mean of the K weights, logsumexp - log K; without it "
                "the 'bound' exceeds log p(x) by log K"),
        Mistake(lambda lw: lw.mean(0), "you averaged the log-weights: that is the ELBO (K samples of it), not the "
                                       "IWAE bound, which averages the weights inside the log"),
        Mistake(lambda lw: torch.log(torch.exp(lw).mean(0)),
                "exp(log w) underflows to 0 for log-weights of hundreds of nats (log 0 = -inf): use "
                "torch.logsumexp(log_weights, dim=0) - log K"),
        Mistake(lambda lw: torch.logsumexp(lw, 1) - math.log(lw.shape[1]),
                "a sum over the wrong axis: the K samples are along dim 0; one bound per example (N,)"),
        Mistake(lambda lw: torch.logsumexp(lw, 0) - math.log(lw.shape[1]),
                "K is the number of samples, len(log_weights) (dim 0), not the number of examples"),
        Mistake(lambda lw: torch.logsumexp(lw, 0) / lw.shape[0],
                "log (1/K) Σ w = logsumexp - log K: you divided by K after the log"),
    ], shape_hint="one bound per example, (N,): the K samples are along dim 0",
    doc="""The IWAE bound.  iwae_bound(log_weights) -> log (1/K) Σ_k w_k per example (N,), from the log-weights
    log w_k = log p(x|h_k) + log p(h_k) - log Q(h_k|x) of shape (K, N), stably (they are about -100 to -800 nats).""")

SAMPLING_LAYER = SamplingLayerExercise(
    "the Keras Sampling layer", "sampling_layer", mean=(0.0, 3.0, -1.0), std=(1.0, 2.0, 0.5), n_draws=20_000,
    mistakes=[
        Mistake(lambda sigma: sigma**2, "σ = exp(½ log σ²), not exp(log σ²) (the variance): your draws spread too "
                                        "much where σ > 1 and too little where σ < 1"),
        Mistake(np.sqrt, "σ = exp(½ log σ²); you took exp(¼ log σ²) (√σ)"),
        Mistake(np.zeros_like, "the draws do not vary: add σ times keras.random.normal(shape, "
                               "seed=self.seed_generator)"),
    ],
    verified="20,000 draws have mean μ and standard deviation exp(½ log σ²) for σ = 1, 2, 0.5; fresh noise at every "
             "call",
    doc="""The Keras `Sampling` layer.  Sampling(seed=None) is a keras.layers.Layer whose call((mu, log_var))
    returns h = μ + exp(½ log σ²) ε with ε ~ N(0, I) drawn by keras.random.normal from a keras.random.SeedGenerator.
    Checked on 20,000 draws: their mean and standard deviation, and that draws differ from call to call.""")

SPECS = [KL_STANDARD_NORMAL, KL_GAUSSIANS, REPARAMETERISE, BERNOULLI_LOG_LIKELIHOOD, ELBO, IWAE_BOUND, SAMPLING_LAYER]
