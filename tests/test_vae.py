"""The mathematics of the variational autoencoder (05_vae_pytorch), checked numerically.

Monte Carlo checks compare to within 5 standard errors: a false alarm about once in 1.7 million comparisons, so about
once in 50,000 runs for a check whose `.all()` compares up to 36 values (the seeds are fixed, so a run that passes
always passes); closed-form identities in float64 to 1e-9.
"""

import math

import numpy as np
import pytest
import torch
from conftest import mnist_test_dir
from torch.distributions import Independent, MultivariateNormal, Normal, kl_divergence

from genmodels import vae
from genmodels.data import binarize_stochastic, load_split

Z = 5.0  # standard errors allowed in a Monte Carlo comparison


def within_error(samples, expected, z=Z):
    """Is the mean of `samples` (first axis) equal to `expected` within z standard errors (elementwise)?"""
    mean, se = samples.mean(0), samples.std(0) / math.sqrt(len(samples))
    return bool(((mean - expected).abs() <= z * se + 1e-12).all())


def repeated(fn, x, n):
    """fn evaluated on n copies of the batch x at once: an (n, len(x)) tensor of independent estimates."""
    with torch.no_grad():
        return fn(x.repeat(n, 1)).view(n, len(x))


def elbo_estimates(model, x, n, analytic_kl=True):
    """n independent one-sample estimates of each example's ELBO (vae.elbo): an (n, len(x)) tensor."""
    return repeated(lambda batch: vae.elbo(model, batch, analytic_kl=analytic_kl), x, n)


def linear_gaussian(seed=0, d=6, k=3, noise_std=0.5):
    g = torch.Generator().manual_seed(seed)
    W = torch.randn(d, k, generator=g, dtype=torch.float64)
    b = torch.randn(d, generator=g, dtype=torch.float64)
    model = vae.LinearGaussianVAE(W, b, noise_std)
    with torch.no_grad():  # a reasonable but imperfect linear encoder
        model.linear_encoder.weight.normal_(0, 0.2, generator=g)
        model.linear_encoder.bias.zero_()
    x = (torch.randn(4, k, generator=g, dtype=torch.float64) @ W.T + b
         + noise_std * torch.randn(4, d, generator=g, dtype=torch.float64))
    return model, x


# --- KL divergences -----------------------------------------------------------------------------------------------


def test_closed_form_kl_to_standard_normal_matches_monte_carlo():
    torch.manual_seed(0)
    mu, log_var = torch.randn(3, 4, dtype=torch.float64), torch.randn(3, 4, dtype=torch.float64)
    q, p = Normal(mu, (0.5 * log_var).exp()), Normal(0.0, 1.0)
    h = q.sample((200_000,))
    log_ratio = (q.log_prob(h) - p.log_prob(h)).sum(-1)  # KL = E_Q[log Q - log p]
    assert within_error(log_ratio, vae.kl_standard_normal(mu, log_var))


def test_general_two_gaussian_kl_matches_monte_carlo_and_torch():
    torch.manual_seed(1)
    mu_q, lv_q, mu_p, lv_p = torch.randn(4, 3, 5, dtype=torch.float64).unbind(0)
    q, p = Normal(mu_q, (0.5 * lv_q).exp()), Normal(mu_p, (0.5 * lv_p).exp())
    h = q.sample((200_000,))
    kl = vae.kl_gaussians(mu_q, lv_q, mu_p, lv_p)
    assert within_error((q.log_prob(h) - p.log_prob(h)).sum(-1), kl)
    torch.testing.assert_close(kl, kl_divergence(q, p).sum(-1), rtol=1e-12, atol=1e-12)


def test_lecture_kl_formula_for_full_covariances_matches_monte_carlo():
    """1/2 [tr(Σ1⁻¹Σ0) + (μ1-μ0)ᵀΣ1⁻¹(μ1-μ0) - k + log det Σ1/det Σ0], as the lecture states it."""
    g = torch.Generator().manual_seed(2)
    k = 4
    A0, A1 = torch.randn(2, k, k, generator=g, dtype=torch.float64)
    S0, S1 = A0 @ A0.T + 0.5 * torch.eye(k, dtype=torch.float64), A1 @ A1.T + 0.5 * torch.eye(k, dtype=torch.float64)
    m0, m1 = torch.randn(2, k, generator=g, dtype=torch.float64)
    inv1 = torch.linalg.inv(S1)
    lecture = 0.5 * (torch.trace(inv1 @ S0) + (m1 - m0) @ inv1 @ (m1 - m0) - k
                     + torch.logdet(S1) - torch.logdet(S0))
    q, p = MultivariateNormal(m0, S0), MultivariateNormal(m1, S1)
    torch.manual_seed(2)
    h = q.sample((200_000,))
    assert within_error(q.log_prob(h) - p.log_prob(h), lecture)


def test_standard_normal_kl_is_the_general_formula_with_p_standard():
    mu, log_var = torch.randn(2, 7, 3, dtype=torch.float64).unbind(0)
    torch.testing.assert_close(vae.kl_standard_normal(mu, log_var),
                               vae.kl_gaussians(mu, log_var, torch.zeros_like(mu), torch.zeros_like(mu)))


def test_bernoulli_log_likelihood_is_the_bernoulli_log_pmf_and_stable():
    logits = torch.tensor([[-3.0, 0.0, 2.0, 200.0, -200.0]], dtype=torch.float64)
    x = torch.tensor([[1.0, 0.0, 1.0, 1.0, 0.0]], dtype=torch.float64)
    p = torch.sigmoid(logits[:, :3])
    direct = (x[:, :3] * p.log() + (1 - x[:, :3]) * (1 - p).log()).sum(-1)
    assert torch.isfinite(vae.bernoulli_log_likelihood(x, logits)).all()
    torch.testing.assert_close(vae.bernoulli_log_likelihood(x, logits), direct, rtol=1e-12, atol=1e-12)


# --- the ELBO identity, on a model with exact log p(x) ---------------------------------------------------------------


def test_elbo_gap_equals_kl_to_true_posterior():
    """E_Q[ELBO estimate] = log p(x) - KL(Q(h|x) || p(h|x)), the lecture's central equation."""
    model, x = linear_gaussian()
    torch.manual_seed(3)
    with torch.no_grad():
        samples = elbo_estimates(model, x, 20_000)
        q = model.encoder(x)
        q_full = MultivariateNormal(q.mean, torch.diag_embed(q.variance))
        gap = kl_divergence(q_full, model.true_posterior(x))
        log_px = model.log_marginal(x)
    assert within_error(samples, log_px - gap)


def test_elbo_is_below_log_marginal():
    model, x = linear_gaussian(seed=4)
    torch.manual_seed(4)
    with torch.no_grad():
        samples = elbo_estimates(model, x, 20_000)
        log_px = model.log_marginal(x)
    upper = samples.mean(0) + Z * samples.std(0) / math.sqrt(len(samples))
    assert (upper < log_px).all()


def test_elbo_equals_log_marginal_at_true_posterior():
    """With Q = p(h|x), log p(x|h) + log p(h) - log Q(h|x) = log p(x) for every h: the gap and the variance vanish."""
    model, x = linear_gaussian(seed=5)
    model.encoder = model.true_posterior
    with torch.no_grad():
        samples = elbo_estimates(model, x, 10, analytic_kl=False)
        log_px = model.log_marginal(x)
    torch.testing.assert_close(samples, log_px.expand_as(samples), rtol=0, atol=1e-9)


def test_analytic_and_sampled_kl_give_the_same_elbo_on_average():
    model, x = linear_gaussian(seed=6)
    torch.manual_seed(6)
    with torch.no_grad():
        sampled = elbo_estimates(model, x, 20_000, analytic_kl=False)
        analytic = elbo_estimates(model, x, 20_000)
    assert within_error(sampled - analytic.mean(0), 0.0, z=Z * math.sqrt(2))
    assert (analytic.std(0) < sampled.std(0)).all()  # the closed form removes part of the noise


def test_linear_gaussian_log_marginal_and_posterior_are_the_gaussian_closed_forms():
    """For h ~ N(0, I), x = Wh + b + s·ε: log p(x) = log N(x; b, WWᵀ + s²I), built here with torch.distributions;
    p(h|x) by Bayes' rule in precision form, the prior's precision I plus the likelihood's WᵀW/s², with mean
    (I + WᵀW/s²)⁻¹Wᵀ(x - b)/s²; log p(h|x) = log p(x|h) + log p(h) - log p(x) at every h (not only on average);
    log p(x|h) = log N(x; Wh + b, s²I). s = 0.5, so s and s² differ. Identities in float64: 1e-9."""
    model, x = linear_gaussian(seed=11)
    with torch.no_grad():
        W, b, s = model.W, model.b, model.noise_std
        d, k = W.shape
        marginal = MultivariateNormal(b, W @ W.T + s**2 * torch.eye(d, dtype=torch.float64))
        precision = torch.eye(k, dtype=torch.float64) + W.T @ W / s**2
        posterior = model.true_posterior(x)
        h = torch.randn(7, len(x), k, generator=torch.Generator().manual_seed(11), dtype=torch.float64)
        log_lik = Independent(Normal(h @ W.T + b, s), 1).log_prob(x)
        log_prior = Normal(torch.zeros(k, dtype=torch.float64), 1.0).log_prob(h).sum(-1)
        torch.testing.assert_close(model.log_marginal(x), marginal.log_prob(x), rtol=0, atol=1e-9)
        torch.testing.assert_close(posterior.mean, torch.linalg.solve(precision, W.T @ (x - b).T / s**2).T,
                                   rtol=0, atol=1e-9)
        torch.testing.assert_close(posterior.covariance_matrix, torch.linalg.inv(precision).expand(len(x), k, k),
                                   rtol=0, atol=1e-9)
        torch.testing.assert_close(model.log_likelihood_given_h(x, h), log_lik, rtol=0, atol=1e-9)
        torch.testing.assert_close(posterior.log_prob(h), log_lik + log_prior - marginal.log_prob(x), rtol=0,
                                   atol=1e-9)


def closed_form_elbo(model, x):
    """The linear-Gaussian VAE's ELBO per example with no sampling: Q = N(μ, diag σ²), (μ, log σ²) the two halves of
    its linear encoder's output, and E_Q[log p(x|h)] = log N(x; Wμ + b, s²I) - Σ_j σ_j² ||W_:j||² / (2s²) (the mean
    squared error ||x - Wh - b||² under Q adds tr(W diag σ² Wᵀ)), minus KL(Q || N(0, I)) from torch.distributions."""
    mu, log_var = model.linear_encoder(x).chunk(2, dim=-1)
    var = log_var.exp()
    expected_log_lik = (Independent(Normal(mu @ model.W.T + model.b, model.noise_std), 1).log_prob(x)
                        - var @ model.W.square().sum(0) / (2 * model.noise_std**2))
    kl = kl_divergence(Normal(mu, var.sqrt()), Normal(torch.zeros_like(mu), torch.ones_like(mu))).sum(-1)
    return expected_log_lik - kl


def test_closed_form_elbo_is_log_marginal_minus_the_gap_and_the_encoder_is_that_q():
    """closed_form_elbo, the reference of the gradient test below, is right: it equals log p(x) - KL(Q || p(h|x))
    (float64, 1e-9), and the encoder's Q(h|x) is the Normal it assumes, mean μ and standard deviation
    σ = exp(½ log σ²) (the square root of the variance, not the variance)."""
    model, x = linear_gaussian(seed=12)
    with torch.no_grad():
        mu, log_var = model.linear_encoder(x).chunk(2, dim=-1)
        q = model.encoder(x)
        gap = kl_divergence(MultivariateNormal(mu, torch.diag_embed(log_var.exp())), model.true_posterior(x))
        torch.testing.assert_close(closed_form_elbo(model, x), model.log_marginal(x) - gap, rtol=0, atol=1e-9)
    torch.testing.assert_close(q.mean, mu, rtol=0, atol=1e-12)
    torch.testing.assert_close(q.stddev, (0.5 * log_var).exp(), rtol=0, atol=1e-12)


@pytest.mark.usefixtures("one_thread")  # 400 backward passes through a tiny model
def test_elbo_gradient_is_on_average_the_gradient_of_the_exact_elbo():
    """Training follows the gradient of the single-sample ELBO, so it must be an unbiased estimate of the exact
    ELBO's gradient, for every parameter: the encoder's (through the reconstruction term, along h = μ + σε, as well
    as through the KL) and the decoder's. 400 independent estimates, each the gradient of the ELBO averaged over 50
    draws per data point, agree with autograd of closed_form_elbo within 5 standard errors (their spread / √400).
    A draw that is not reparameterised (q.sample(), no path from h back to μ and σ) leaves the encoder only the KL's
    gradient: the reconstruction term's share, checked to be over 20 standard errors here, would be missing."""
    model, x = linear_gaussian(seed=13)
    encoder = dict(model.linear_encoder.named_parameters())
    params = {"W": model.W, "b": model.b, **{f"encoder {name}": p for name, p in encoder.items()}}
    exact = torch.autograd.grad(closed_form_elbo(model, x).sum(), list(params.values()))
    mu, log_var = model.linear_encoder(x).chunk(2, dim=-1)
    kl = kl_divergence(Normal(mu, (0.5 * log_var).exp()), Normal(torch.zeros_like(mu), torch.ones_like(mu)))
    kl_only = torch.autograd.grad(-kl.sum(), list(encoder.values()))  # the encoder's gradient without reconstruction
    torch.manual_seed(13)
    n_estimates, n_draws = 400, 50
    estimates = [torch.autograd.grad(vae.elbo(model, x.repeat(n_draws, 1)).sum() / n_draws, list(params.values()))
                 for _ in range(n_estimates)]
    estimates = [torch.stack(per_parameter) for per_parameter in zip(*estimates, strict=True)]

    def worst_z(estimate, value):  # the largest |mean estimate - value| in standard errors, over the entries
        return ((estimate.mean(0) - value).abs() / (estimate.std(0) / math.sqrt(n_estimates))).max().item()

    for name, estimate, value in zip(params, estimates, exact, strict=True):
        assert worst_z(estimate, value) < Z, f"{name}: {worst_z(estimate, value):.1f} standard errors off"
    for estimate, value in zip(estimates[2:], kl_only, strict=True):
        assert worst_z(estimate, value) > 20  # the reconstruction term's share of the encoder's gradient


# --- gradient estimators ---------------------------------------------------------------------------------------------


def f_cos(h):
    return h.cos().sum(-1)  # E_Q[cos h] = cos μ exp(-σ²/2) per coordinate


def test_reparameterised_gradient_matches_score_function_on_average():
    mu = torch.tensor([0.3, -1.0, 2.0], dtype=torch.float64)
    log_var = torch.tensor([-1.0, 0.0, 0.5], dtype=torch.float64)
    var = log_var.exp()
    exact_mu = -mu.sin() * (-var / 2).exp()
    exact_log_var = -mu.cos() * (-var / 2).exp() * var / 2
    g = torch.Generator().manual_seed(7)
    rep_mu, rep_lv = vae.reparameterised_gradient(f_cos, mu, log_var, 4_000, generator=g)
    sf_mu, sf_lv = vae.score_function_gradient(f_cos, mu, log_var, 200_000, generator=g)
    for rep, sf, exact in ((rep_mu, sf_mu, exact_mu), (rep_lv, sf_lv, exact_log_var)):
        assert within_error(rep, exact) and within_error(sf, exact)
        assert within_error(sf - rep.mean(0), 0.0, z=Z * math.sqrt(2))


def test_score_function_variance_grows_with_the_dimension_and_the_reparameterised_does_not():
    """For f = Σ_j cos h_j with every μ_j = 1, log σ_j² = -1 (notebook 05's cases): the reparameterised gradient's
    variance per coordinate is Var(sin h_j) σ_j², the same for any d (within 10 %, about 20 standard errors of a
    variance from 20,000 draws); the score function's grows about as d² (over 20× from d = 1 to 10, over 10× from 10
    to 50), and exceeds the reparameterised one in every coordinate from d = 10."""
    g = torch.Generator().manual_seed(8)
    rep, sf = {}, {}
    for d in (1, 10, 50):
        mu, log_var = torch.ones(d, dtype=torch.float64), -torch.ones(d, dtype=torch.float64)
        rep[d] = vae.reparameterised_gradient(f_cos, mu, log_var, 20_000, generator=g)[0].var(0)
        sf[d] = vae.score_function_gradient(f_cos, mu, log_var, 20_000, generator=g)[0].var(0)
    rep_mean, sf_mean = {d: v.mean().item() for d, v in rep.items()}, {d: v.mean().item() for d, v in sf.items()}
    assert rep_mean[10] == pytest.approx(rep_mean[1], rel=0.1) and rep_mean[50] == pytest.approx(rep_mean[1], rel=0.1)
    assert sf_mean[10] > 20 * sf_mean[1] and sf_mean[50] > 10 * sf_mean[10]
    assert (sf[10] > rep[10]).all() and (sf[50] > rep[50]).all()


def test_the_reparameterised_gradient_is_not_less_noisy_in_every_coordinate():
    """Notebook 05's two coordinates (μ = 1, -0.5; log σ² = -1, 0.5): five times less noisy in the first, noisier in
    the second, where σ is larger (sd 0.67 against 0.58 from 200,000 draws; their standard errors are about 0.001)."""
    mu, log_var = torch.tensor([1.0, -0.5], dtype=torch.float64), torch.tensor([-1.0, 0.5], dtype=torch.float64)
    g = torch.Generator().manual_seed(2)
    rep = vae.reparameterised_gradient(f_cos, mu, log_var, 200_000, generator=g)[0].std(0)
    sf = vae.score_function_gradient(f_cos, mu, log_var, 200_000, generator=g)[0].std(0)
    assert sf[0] > 5 * rep[0] and rep[1] > sf[1] + 0.05


# --- the importance-weighted bound ------------------------------------------------------------------------------------


def test_iwae_with_one_sample_equals_elbo_in_expectation():
    model, x = linear_gaussian(seed=9)
    torch.manual_seed(9)
    with torch.no_grad():
        iwae1 = repeated(lambda b: vae.iwae_log_likelihood(model, b, 1), x, 20_000)
        q = model.encoder(x)
        exact_elbo = model.log_marginal(x) - kl_divergence(MultivariateNormal(q.mean, torch.diag_embed(q.variance)),
                                                           model.true_posterior(x))
    assert within_error(iwae1, exact_elbo)


def test_iwae_does_not_decrease_with_k_and_stays_below_log_marginal():
    model, x = linear_gaussian(seed=10)
    torch.manual_seed(10)
    means, ses = [], []
    for k in (1, 4, 16, 64, 256):
        est = repeated(lambda b, k=k: vae.iwae_log_likelihood(model, b, k), x, 2_000)
        means.append(est.mean(0))
        ses.append(est.std(0) / math.sqrt(len(est)))
    log_px = model.log_marginal(x).detach()
    for (m0, s0), (m1, s1) in zip(zip(means, ses, strict=True), zip(means[1:], ses[1:], strict=True), strict=False):
        assert (m1 >= m0 - Z * torch.sqrt(s0**2 + s1**2)).all()
    assert (means[-1] > means[0]).all()
    assert (means[-1] <= log_px + Z * ses[-1]).all()
    assert ((log_px - means[-1]).abs() < (log_px - means[0]).abs()).all()


def test_iwae_rejects_k_below_one():
    model, x = linear_gaussian()
    with pytest.raises(ValueError, match="at least 1"):
        vae.iwae_log_likelihood(model, x, 0)


# --- the networks and the training step -------------------------------------------------------------------------------


@pytest.mark.parametrize("make, latent", [(vae.mlp_vae, 20), (vae.conv_vae, 2), (vae.conv_vae, 7)])
def test_encoder_returns_normal_and_decoder_logits_of_image_shape(make, latent):
    model = make(latent_dim=latent)
    x = torch.rand(5, 28, 28)
    q = model.encoder(x)
    assert isinstance(q, Normal) and q.mean.shape == (5, latent) and q.stddev.shape == (5, latent)
    assert model.decoder(q.rsample()).shape == (5, 28, 28)
    assert model.logits(torch.zeros(3, 5, latent)).shape == (3, 5, 28, 28)
    images = vae.generate(model, 4, torch.Generator().manual_seed(0))  # h ~ N(0, I), then σ(g(h))
    h = torch.randn(4, latent, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(images, torch.sigmoid(model.decoder(h)).detach())


@pytest.mark.parametrize("make, latent", [(vae.mlp_vae, 4), (vae.conv_vae, 2)])
def test_encoder_scale_is_the_square_root_of_the_variance_head(make, latent):
    """Q(h|x) = N(μ(x), diag σ²(x)) from the encoder's two heads of the same features, μ and log σ²: its standard
    deviation is σ = exp(½ log σ²), not σ² = exp(log σ²), and its reparameterised draw is h = μ + σ·ε (the same ε).
    The log-variance head's bias is set to -2 (σ ≈ 0.37, σ² ≈ 0.14) so that the two differ clearly (float32: 1e-6)."""
    torch.manual_seed(14)
    model = make(latent_dim=latent)
    x = torch.rand(5, 28, 28)
    with torch.no_grad():
        model.encoder.log_var.bias.fill_(-2.0)
        features = model.encoder.features(x)
        mu, log_var = model.encoder.mu(features), model.encoder.log_var(features)
        q = model.encoder(x)
        torch.manual_seed(15)
        h = q.rsample()
        torch.manual_seed(15)
        expected = mu + (0.5 * log_var).exp() * torch.randn_like(mu)
    torch.testing.assert_close(q.mean, mu, rtol=0, atol=1e-6)
    torch.testing.assert_close(q.stddev, (0.5 * log_var).exp(), rtol=0, atol=1e-6)
    torch.testing.assert_close(h, expected, rtol=0, atol=1e-6)


def test_mlp_vae_has_the_pytorch_examples_size():
    n = sum(p.numel() for p in vae.mlp_vae().parameters())
    assert n == (784 * 400 + 400) + 2 * (400 * 20 + 20) + (20 * 400 + 400) + (400 * 784 + 784)


def test_elbo_terms_use_closed_form_kl():
    torch.manual_seed(0)
    model = vae.mlp_vae()
    x = (torch.rand(6, 28, 28) < 0.3).float()
    torch.manual_seed(1)
    reconstruction, kl = vae.elbo_terms(model, x)
    q = model.encoder(x)
    torch.testing.assert_close(kl, vae.kl_standard_normal(q.mean, 2 * q.stddev.log()), rtol=1e-5, atol=1e-5)
    torch.manual_seed(1)  # the same ε: the reconstruction term is log p(x|h) at h = μ + σε
    h = q.mean + q.stddev * torch.randn_like(q.mean)
    torch.testing.assert_close(reconstruction, vae.bernoulli_log_likelihood(x, model.decoder(h)), rtol=1e-5, atol=1e-4)


def test_likelihood_on_grey_levels_is_refused():
    with pytest.raises(ValueError, match="binar"):
        vae.evaluate_elbo(vae.mlp_vae(), torch.full((2, 28, 28), 0.5))


def test_latent_manifold_needs_two_latent_dimensions():
    assert vae.latent_manifold(vae.mlp_vae(latent_dim=2), n=3).shape == (9, 28, 28)
    with pytest.raises(ValueError, match="latent_dim=2"):
        vae.latent_manifold(vae.mlp_vae(latent_dim=20))


def test_training_on_mnist_raises_the_test_elbo_and_iwae_bounds_it():
    images, _ = load_split("mnist", "test", mnist_test_dir())
    x_train, x_test = images[:3000], binarize_stochastic(images[-500:], seed=0)
    torch.manual_seed(0)
    model = vae.mlp_vae()
    before = vae.evaluate_elbo(model, x_test).mean().item()
    history = vae.fit(model, x_train, epochs=2, x_test=x_test, progress="none")
    assert history["test_elbo"][-1] > before + 100  # ~ -545 nats untrained, ~ -200 after two epochs
    torch.manual_seed(1)
    elbo = vae.evaluate_elbo(model, x_test).mean().item()
    iwae = vae.iwae_log_likelihood(model, x_test, 50).mean().item()
    assert elbo < iwae
    bounds = vae.likelihood_bounds(model, x_test[:100], 10)  # the same images for both bounds
    assert bounds["elbo"] < bounds["iwae"]


def test_autoencoder_trains_and_embeds():
    images, labels = load_split("mnist", "test", mnist_test_dir())
    model = vae.mlp_autoencoder(latent_dim=2)
    history = vae.fit(model, images[:2000], epochs=2, x_test=binarize_stochastic(images[-200:], seed=0),
                      progress="none")
    assert history["test_bce"][-1] < history["loss"][0]
    codes = vae.latent_codes(model, images[:10])
    with torch.no_grad():  # h = f(x): the encoder's code of each image
        torch.testing.assert_close(codes, model.encoder.code(torch.as_tensor(images[:10])))


def test_reconstruct_takes_arrays_like_the_other_helpers():
    torch.manual_seed(0)
    model = vae.mlp_vae(latent_dim=2, hidden=16)
    images = np.random.default_rng(0).random((3, 784), dtype=np.float32)
    assert torch.equal(vae.reconstruct(model, images), vae.reconstruct(model, torch.from_numpy(images)))


def test_a_resumed_run_binarises_as_an_uninterrupted_one(tmp_path, capsys):
    """The dynamic-binarisation generator is checkpointed: two epochs, then two more after a resume, give the same
    model, to the bit, as four epochs in one go."""
    images = torch.rand(300, 28, 28, generator=torch.Generator().manual_seed(0))

    def run(epochs, checkpoint=None, progress="none"):
        torch.manual_seed(0)
        model = vae.mlp_vae(latent_dim=2, hidden=16)
        vae.fit(model, images, epochs=epochs, batch_size=100, checkpoint=checkpoint, progress=progress)
        return model

    straight = run(4)
    path = tmp_path / "vae.pt"
    run(2, path)
    resumed = run(4, path, progress="plain")
    printed = capsys.readouterr().out
    assert "Resumed from vae.pt after epoch 2" in printed and "epoch 1/4" not in printed  # not four fresh epochs
    for a, b in zip(straight.parameters(), resumed.parameters(), strict=True):
        assert torch.equal(a, b)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_the_loss_and_its_gradient_on_cuda_never_wait_for_the_gpu():
    model = vae.mlp_vae(latent_dim=2, hidden=16).cuda()
    loss_fn = vae.vae_loss(model, generator=torch.Generator(device="cuda").manual_seed(0))
    images = torch.rand(64, 28, 28, device="cuda")
    torch.cuda.set_sync_debug_mode("error")  # any host-device synchronisation raises
    try:
        loss, _ = loss_fn(images)
        loss.backward()
    finally:
        torch.cuda.set_sync_debug_mode("default")


def test_latent_manifold_reads_like_a_page_of_the_latent_plane():
    """One grid for both VAEs (plotting.latent_grid): h_1 grows along each row, h_2 falls from the top row down,
    and the grid's quantiles are those of N(0, 1)."""
    from genmodels.plotting import latent_grid

    grid = latent_grid(n=3, quantile=0.1).reshape(3, 3, 2)
    assert (np.diff(grid[..., 0], axis=1) > 0).all() and (np.diff(grid[..., 1], axis=0) < 0).all()
    np.testing.assert_allclose(grid[0, 0], [-1.2815516, 1.2815516], rtol=1e-6)  # Φ⁻¹(0.1), Φ⁻¹(0.9)


@pytest.mark.parametrize(("images", "message"), [
    (np.full((10, 28, 28), 200.0, dtype=np.float32), r"in \[0, 1\]; got values in \[200, 200\]: divide by 255"),
    (np.full((10, 28, 28), 200, dtype=np.uint8), r"uint8 .*divide by 255"),
    (np.full((10, 28, 28), np.nan, dtype=np.float32), "contain 7840 NaN"),
    (np.zeros((10, 27, 27), dtype=np.float32), r"784 pixels per example \(28×28\); got shape \(10, 27, 27\)"),
    ((np.zeros((10, 28, 28), dtype=np.float32), np.zeros(10)), r"not \(x, y\)"),
    (np.zeros((0, 28, 28), dtype=np.float32), "empty"),
])
def test_bad_training_images_are_clear_errors(images, message):
    with pytest.raises(ValueError, match=message):
        vae.fit(vae.conv_vae(), images, epochs=1, progress="none")


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"epochs": -3}, "epochs must be a whole number >= 0, got -3"),
    ({"epochs": 1, "lr": -1e-3}, "lr must be a positive, finite number, got -0.001"),
    ({"epochs": 1, "batch_size": 0}, "batch_size must be a whole number >= 1, got 0"),
])
def test_bad_training_settings_are_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        vae.fit(vae.mlp_vae(latent_dim=2, hidden=8), np.zeros((10, 28, 28), dtype=np.float32), progress="none",
                **kwargs)


def test_a_learning_rate_that_blows_up_stops_training_and_a_lower_one_then_trains_the_same_model(tmp_path):
    """The notebook's fit cell run with lr=10, then again with lr=1e-3: the model cell is not run again."""
    torch.manual_seed(0)
    images = np.random.default_rng(0).random((256, 28, 28), dtype=np.float32)
    model = vae.mlp_vae(latent_dim=2, hidden=32)
    initial = {name: t.clone() for name, t in model.state_dict().items()}
    with pytest.raises(FloatingPointError, match=r"diverged in epoch 1: .*back at their initial values.*lower it"):
        vae.fit(model, images, epochs=3, lr=10, batch_size=32, progress="none", checkpoint=tmp_path / "vae.pt",
                resume=False)
    assert all(torch.equal(t, initial[name]) for name, t in model.state_dict().items())
    history = vae.fit(model, images, epochs=3, lr=1e-3, batch_size=32, progress="none",
                      checkpoint=tmp_path / "vae.pt", resume=False)
    assert history.epochs == 3 and all(np.isfinite(history["loss"])) and history["loss"][-1] < history["loss"][0]
