"""Every formula of the week-13 lecture that no other test pins down, checked so that a wrong formula fails.

One test per claim, in the lecture's order (the table in the issue "Every formula of the lecture checked
strictly"). Tiny models make every sum exact: RBMs small enough to enumerate every (v, h), a linear-Gaussian VAE
and a conditional linear-Gaussian model whose log p(x) and log p(y|x) are closed forms. Identities in float64 to
1e-9; float32 models (the RBM) to 1e-5, the rounding of sums of a few dozen float32 terms. Monte Carlo comparisons
within 5 standard errors: a false alarm about once in 1.7 million comparisons, so about once in 50,000 runs for a
check whose `.all()` compares up to 36 values (the seeds are fixed, so a run that passes always passes).
"""

import math

import pytest
import torch
from conftest import mnist_test_dir, random_rbm
from torch import nn
from torch.distributions import Independent, MultivariateNormal, Normal, kl_divergence

from genmodels import langevin, targets, training, vae
from genmodels import rbm as R
from genmodels.data import load_split

Z = 5.0  # standard errors allowed in a Monte Carlo comparison
F64 = torch.float64


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: thread start-up would dominate


def within_error(samples, expected, z=Z):
    """Is the mean of `samples` (first axis) equal to `expected` within z standard errors (elementwise)?"""
    mean, se = samples.mean(0), samples.std(0) / math.sqrt(len(samples))
    return bool(((mean - expected).abs() <= z * se + 1e-12).all())


def joint_log_weights(rbm):
    """-E(v, h) for every pair of states, shape (2^D, 2^H), straight from the energy (no free energy, no log Z)."""
    v, h = R.binary_states(rbm.n_visible), R.binary_states(rbm.n_hidden)
    pairs_v = v.repeat_interleave(len(h), 0)
    pairs_h = h.repeat(len(v), 1)
    return -rbm.energy(pairs_v, pairs_h).double().view(len(v), len(h)), v, h


def linear_gaussian(seed=0, d=6, k=3, noise_std=0.5):
    """A linear-Gaussian VAE with a reasonable but imperfect linear encoder, and 4 data points drawn from it."""
    g = torch.Generator().manual_seed(seed)
    W = torch.randn(d, k, generator=g, dtype=F64)
    b = torch.randn(d, generator=g, dtype=F64)
    model = vae.LinearGaussianVAE(W, b, noise_std)
    with torch.no_grad():
        model.linear_encoder.weight.normal_(0, 0.2, generator=g)
        model.linear_encoder.bias.zero_()
    return model, model.sample(4, generator=g)


# --- Part 2: Langevin sampling ---------------------------------------------------------------------------------------


def log_density_z_score(posterior, samples, cells=200):
    """How many standard errors the samples' mean log posterior density lies from the exact posterior's E_p[log p]:
    (mean of log p(θ) over the n samples - E_p[log p]) / (sd_p(log p) / √n), with the mean and standard deviation
    of log p(θ) under p summed over the exact grid posterior (cells × cells): the standard error of the mean of n
    independent exact draws. log p is the unnormalised log posterior; its constant cancels in the difference."""
    c1, c2, p = posterior.grid(cells)
    theta2, theta1 = torch.meshgrid(c2, c1, indexing="ij")  # indexed [θ2, θ1], as the grid's probabilities
    log_p = posterior.log_prob(torch.stack([theta1.flatten(), theta2.flatten()], -1)).view_as(p)
    mean = (p * log_p).sum()
    se = (p * (log_p - mean) ** 2).sum().sqrt() / math.sqrt(len(samples))
    return ((posterior.log_prob(samples).mean() - mean) / se).item()


def test_sgld_started_uniformly_in_minus_one_one_forgets_its_start():
    """The lecture starts SGLD from a uniform draw in [-1, 1]²: that square holds 49 % of Welling & Teh's mixture
    posterior (30 % lies at |θ2| > 1, on a grid), so the start is far from it, yet after the run the 500 final states
    match the grid posterior as closely as exact draws do: their total-variation distance lies below 1.25 × the 99th
    percentile of that of 500 exact independent draws (the noise floor, as in test_langevin), and their mean log
    posterior density lies within Z standard errors of E_p[log p] (log_density_z_score).

    The second check is the one that sees the noise scale. The lecture's rule, noise √η for a step η (here √(ε/2)
    for the drift (ε/2)∇log p, instead of √ε), samples p², which piles its mass where p is high: E_(p²)[log p] lies
    about 10 standard errors above E_p[log p]. On the 20 × 20 histogram p² is only a TV distance of 0.17 from p,
    inside the noise floor's spread, so the TV check alone would pass it by luck or fail it by luck. The lecture's
    rule is run here as SGLD on p² with half the step: doubling log p and halving ε gives the same update,
    (ε/4)·2∇log p + √(ε/2) w; it must fail the check that the correct SGLD passes."""
    posterior = targets.MixturePosterior()
    n_chains, n_steps = 500, 1500
    threshold = 1.25 * posterior.noise_floor(n_chains, bins=20, seed=6).quantile(0.99).item()
    x0 = 2 * torch.rand(n_chains, 2, generator=torch.Generator().manual_seed(3), dtype=F64) - 1
    assert posterior.total_variation(x0, bins=20) > 2 * threshold  # the start is not already the posterior
    a, b = langevin.schedule_from_range(0.02, 0.001, n_steps)
    chains = langevin.sgld(posterior.log_prior, posterior.log_likelihood, posterior.x, x0, n_steps, batch_size=10,
                           a=a, b=b, burn_in=n_steps - 1, seed=4)
    z = log_density_z_score(posterior, chains.flat())
    assert abs(z) < Z, z
    assert posterior.total_variation(chains.flat(), bins=20) < threshold

    def doubled(log_density):  # log p², term by term
        return lambda *args: 2 * log_density(*args)

    lecture = langevin.sgld(doubled(posterior.log_prior), doubled(posterior.log_likelihood), posterior.x, x0, n_steps,
                            batch_size=10, a=a / 2, b=b, burn_in=n_steps - 1, seed=4)
    z_lecture = log_density_z_score(posterior, lecture.flat())
    assert z_lecture > Z, z_lecture  # the lecture's rule piles the samples where p is high


# --- Part 1 and the KL section: RBMs ---------------------------------------------------------------------------------


def test_log_likelihood_gradient_is_positive_minus_negative_phase():
    """∂⟨log p(v)⟩_data/∂W_ij = ⟨v_i h_j⟩_data - ⟨v_i h_j⟩_model (and ⟨v_i⟩, ⟨h_j⟩ for b and c), both averages taken
    over the joint p(v, h) ∝ e^(-E) by enumeration, against autograd of the exact log-likelihood -F(v) - log Z with
    log Z = log Σ_v e^(-F(v)) enumerated. float32 energies: 1e-5."""
    rbm = random_rbm(5, 3, seed=11)
    data = torch.bernoulli(torch.full((7, 5), 0.4), generator=torch.Generator().manual_seed(12))
    all_v = R.binary_states(5)
    log_likelihood = -rbm.free_energy(data).mean() - torch.logsumexp(-rbm.free_energy(all_v), 0)
    grad_W, grad_b, grad_c = torch.autograd.grad(log_likelihood, (rbm.W, rbm.b, rbm.c))
    with torch.no_grad():
        log_w, v, h = joint_log_weights(rbm)
        p_model = torch.softmax(log_w.flatten(), 0).view_as(log_w)  # p(v, h)
        rows = [int("".join(str(int(u)) for u in row), 2) for row in data]  # each data v's index in all_v
        p_data = torch.zeros_like(log_w)
        for r in rows:  # the data's v, with h from p(h|v) = e^(-E(v, h)) / Σ_h e^(-E(v, h))
            p_data[r] += torch.softmax(log_w[r], 0) / len(rows)
        v, h = v.double(), h.double()
        phase = {name: (v.T @ p @ h, p.sum(1) @ v, p.sum(0) @ h) for name, p in
                 (("positive", p_data), ("negative", p_model))}
    for autograd_value, positive, negative in zip((grad_W, grad_b, grad_c), phase["positive"], phase["negative"],
                                                  strict=True):
        torch.testing.assert_close(autograd_value.double(), positive - negative, rtol=0, atol=1e-5)


def test_marginal_is_the_sum_over_h_of_conditional_times_prior():
    """p(v) = Σ_h p(v|h) p(h): p(v|h) = Π_i σ(b_i + W_i:h)^v_i (1 - σ)^(1 - v_i), the factorised conditional, times
    the hidden marginal p(h) = Σ_v e^(-E(v, h)) / Z from the energy, equals e^(-F(v)) / Z with the free energy and
    the exact log Z. float32 conditionals: 1e-6 in probability."""
    rbm = random_rbm(5, 4, seed=13)
    with torch.no_grad():
        log_w, v, h = joint_log_weights(rbm)
        p_h = torch.softmax(log_w.flatten(), 0).view_as(log_w).sum(0)  # (2^H,)
        pv = rbm.p_v_given_h(h).double()  # (2^H, D): p(v_i = 1 | h)
        p_v_given_h = torch.prod(torch.where(v.bool()[:, None, :], pv, 1 - pv), -1)  # (2^D, 2^H)
        total = p_v_given_h @ p_h
        exact = torch.exp(-rbm.free_energy(v).double() - R.log_partition_exact(rbm))
    torch.testing.assert_close(total, exact, rtol=0, atol=1e-6)


def test_kl_of_data_to_rbm_is_mean_log_f_minus_mean_log_p():
    """KL(f || p) = Σ_v f log(f/p), with p(v) from its definition Σ_h e^(-E(v, h)) / Σ_(v,h) e^(-E(v, h)), equals
    ⟨log f⟩_f - ⟨log p⟩_f computed from the free energy and the package's exact log Z. float32 energies: 1e-5."""
    rbm = random_rbm(6, 4, seed=14)
    f = torch.softmax(torch.randn(64, generator=torch.Generator().manual_seed(15), dtype=F64), 0)
    with torch.no_grad():
        log_w, v, _ = joint_log_weights(rbm)
        p = torch.softmax(log_w.flatten(), 0).view_as(log_w).sum(1)
        left = (f * (f / p).log()).sum()
        log_p = -rbm.free_energy(v).double() - R.log_partition_exact(rbm)
    right = (f * f.log()).sum() - (f * log_p).sum()
    assert left.item() > 0.1  # f is not p: a divergence far from 0
    assert left.item() == pytest.approx(right.item(), abs=1e-5)


def test_minimising_kl_is_maximising_likelihood_along_a_training_path():
    """Twenty exact-gradient steps of a tiny RBM (gradient ascent on ⟨log p⟩_f, log Z enumerated): at every step
    KL(f || p) and -⟨log p⟩_f differ by the same constant ⟨log f⟩_f, so they fall together. float32 model: 1e-5."""
    rbm = random_rbm(4, 3, scale=0.5, seed=16)
    f = torch.softmax(2 * torch.randn(16, generator=torch.Generator().manual_seed(17), dtype=F64), 0)
    v = R.binary_states(4)
    optimizer = torch.optim.SGD(rbm.parameters(), lr=0.5)
    kls, nlls = [], []
    for _ in range(20):
        log_p = -rbm.free_energy(v) - torch.logsumexp(-rbm.free_energy(v), 0)
        nll = -(f * log_p.double()).sum()
        with torch.no_grad():
            log_w, _, _ = joint_log_weights(rbm)
            p = torch.softmax(log_w.flatten(), 0).view_as(log_w).sum(1)
            kls.append((f * (f / p).log()).sum().item())
        nlls.append(nll.item())
        optimizer.zero_grad()
        nll.backward()
        optimizer.step()
    kls, nlls = torch.tensor(kls, dtype=F64), torch.tensor(nlls, dtype=F64)
    torch.testing.assert_close(kls - nlls, torch.full_like(kls, (f * f.log()).sum().item()), rtol=0, atol=1e-5)
    assert (kls.diff() < 0).all() and kls[0] - kls[-1] > 0.1  # the parameters moved, and the KL fell each step


# --- Part 3: autoencoders and VAEs -----------------------------------------------------------------------------------


def test_encoder_code_is_a_function_of_x_and_its_weights():
    """h = f(x; W) and x̃ = g(h; V): the plain autoencoder's code is the encoder's mean head on its hidden layer,
    W_μ relu(W_1 x + b_1) + b_μ, and its output the decoder's V_2 relu(V_1 h + c_1) + c_2, written out by hand."""
    torch.manual_seed(18)
    model = vae.mlp_autoencoder(latent_dim=3, hidden=16)
    x = torch.rand(5, 784, generator=torch.Generator().manual_seed(19))
    enc, dec = model.encoder, model.decoder.net
    with torch.no_grad():
        h = torch.relu(x @ enc.hidden.weight.T + enc.hidden.bias) @ enc.mu.weight.T + enc.mu.bias
        x_tilde = torch.relu(h @ dec[0].weight.T + dec[0].bias) @ dec[2].weight.T + dec[2].bias
        torch.testing.assert_close(enc.code(x), h)
        torch.testing.assert_close(model(x).flatten(1), x_tilde)
        torch.testing.assert_close(vae.latent_codes(model, x), h)


def test_autoencoder_trained_on_mean_squared_error_reconstructs_better_than_the_mean_image():
    """The lecture's decoder is trained on the mean squared error: autoencoder_loss(error="mse") is
    Σ_pixels (x - x̃)², x̃ = σ(g(f(x))), averaged over the batch; three epochs of Adam on 3,000 MNIST images lower
    it on 500 held-out images to below 0.7 × the error of the best constant guess, the mean training image (about
    0.6 × after three epochs; 1.0 × before training)."""
    images, _ = load_split("mnist", "test", mnist_test_dir())
    x_train, x_test = torch.as_tensor(images[:3000]), torch.as_tensor(images[-500:])
    torch.manual_seed(20)
    model = vae.mlp_autoencoder(latent_dim=8, hidden=128)
    loss_fn = vae.autoencoder_loss(model, binarize=False, error="mse")
    with torch.no_grad():
        by_hand = (x_test - torch.sigmoid(model(x_test))).square().flatten(1).sum(-1).mean()
        torch.testing.assert_close(loss_fn(x_test)[0], by_hand)
    training.train(model, x_train, epochs=3, batch_size=64, loss_fn=loss_fn,
                   optimizer=torch.optim.Adam(model.parameters(), lr=3e-3), progress="none")
    with torch.no_grad():
        trained = loss_fn(x_test)[0].item()
    mean_image = (x_test - x_train.mean(0)).square().flatten(1).sum(-1).mean().item()
    assert trained < 0.7 * mean_image, (trained, mean_image)


def test_gaussian_decoder_log_density_is_normal_with_mean_f_h():
    """p(x|h) = N(x; f(h), σ²I) with f a network: gaussian_log_likelihood equals torch.distributions' log density,
    and 2σ²·(log p(x|h) + (d/2) log 2πσ²) = -||x - f(h)||² for every σ (float64, 1e-9)."""
    torch.manual_seed(21)
    f = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 5)).double()
    h, x = torch.randn(4, 2, dtype=F64), torch.randn(4, 5, dtype=F64)
    with torch.no_grad():
        for sigma in (0.1, 1.0, 3.0):
            ours = vae.gaussian_log_likelihood(x, f(h), sigma)
            torch.testing.assert_close(ours, Independent(Normal(f(h), sigma), 1).log_prob(x), rtol=0, atol=1e-9)
            scaled = 2 * sigma**2 * (ours + 2.5 * math.log(2 * math.pi * sigma**2))
            torch.testing.assert_close(scaled, -(x - f(h)).square().sum(-1), rtol=0, atol=1e-9)


class GaussianDecoderVAE(nn.Module):
    """A VAE with p(x|h) = N(f(h), σ²I), f a small network: what elbo_terms needs (encoder, prior,
    log_likelihood_given_h), for the σ² test."""

    def __init__(self, noise_std, d=5, k=2):
        super().__init__()
        self.encoder = vae.MLPEncoder(latent_dim=k, hidden=32, n_pixels=d)
        self.decoder = nn.Sequential(nn.Linear(k, 32), nn.Tanh(), nn.Linear(32, d))
        self.noise_std, self.latent_dim = noise_std, k

    def prior(self):
        return Normal(torch.zeros(self.latent_dim), torch.ones(self.latent_dim))

    def log_likelihood_given_h(self, x, h):
        return vae.gaussian_log_likelihood(x, self.decoder(h), self.noise_std)


def test_decoder_noise_variance_weighs_reconstruction_against_kl():
    """-ELBO = ||x - f(h)||²/(2σ²) + KL + const: σ² decides how much the squared error counts against the KL.
    Trained on the same data from the same start, a small σ (0.1) buys a small reconstruction error with a large KL;
    a large σ (1, above the data's noise) lets the KL win: the code carries little and the reconstruction is poor."""
    g = torch.Generator().manual_seed(22)
    t = torch.randn(500, 1, generator=g)
    x = torch.cat([t, t.sin(), t**2 / 2, -t, 0.5 * t.cos()], 1) + 0.05 * torch.randn(500, 5, generator=g)
    results = {}
    for sigma in (0.1, 1.0):
        torch.manual_seed(23)
        model = GaussianDecoderVAE(sigma)
        optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
        for _ in range(600):
            reconstruction, kl = vae.elbo_terms(model, x)
            optimizer.zero_grad()
            (kl - reconstruction).mean().backward()
            optimizer.step()
        with torch.no_grad():
            squared_error = (x - model.decoder(model.encoder(x).mean)).square().sum(-1).mean().item()
            results[sigma] = squared_error, vae.elbo_terms(model, x)[1].mean().item()
    (error_small, kl_small), (error_large, kl_large) = results[0.1], results[1.0]
    assert error_small < 0.3 * error_large, results
    assert kl_small > kl_large + 1.0, results


def test_gradient_ascent_on_the_elbo_raises_the_exact_log_likelihood():
    """p(x; Θ) is continuous in Θ, so gradient steps raise it, though in general it cannot be computed (the lecture
    says it can: only p(x|h) can, and the ELBO stands in for log p(x)). Here a linear-Gaussian VAE makes log p(x)
    exact: 300 Adam steps on the single-sample ELBO (decoder and encoder) raise the exact mean log p(x) of 200 data
    points by more than a nat, and the ELBO stays below it."""
    g = torch.Generator().manual_seed(24)
    teacher = vae.LinearGaussianVAE(2 * torch.randn(6, 3, generator=g, dtype=F64),
                                    torch.randn(6, generator=g, dtype=F64), 0.3)
    x = teacher.sample(200, generator=g)
    model, _ = linear_gaussian(seed=25)
    with torch.no_grad():
        before = model.log_marginal(x).mean().item()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
    torch.manual_seed(26)
    for _ in range(300):
        loss = -vae.elbo(model, x).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        after = model.log_marginal(x).mean().item()
        elbos = vae.elbo(model, x.repeat(200, 1)).view(200, -1).mean(1)
    assert after > before + 1.0, (before, after)
    assert elbos.mean().item() + Z * elbos.std().item() / math.sqrt(len(elbos)) < after


def test_ancestral_samples_have_the_model_covariance_without_a_markov_chain():
    """A VAE samples p(x) directly: h ~ N(0, I), then x ~ p(x|h). For the linear-Gaussian model the draws have the
    exact mean b and covariance WWᵀ + σ²I (each entry within 5 standard errors, √((Σ_ii Σ_jj + Σ_ij²)/n) for a
    Gaussian), with no chain to burn in."""
    model, _ = linear_gaussian(seed=28)
    n = 200_000
    x = model.sample(n, generator=torch.Generator().manual_seed(29))
    with torch.no_grad():
        W, b, s = model.W, model.b, model.noise_std
        cov = W @ W.T + s**2 * torch.eye(len(b), dtype=F64)
    se_mean = (cov.diagonal() / n).sqrt()
    assert ((x.mean(0) - b).abs() < Z * se_mean).all()
    d = x - b
    se_cov = ((cov.diagonal()[:, None] * cov.diagonal()[None, :] + cov**2) / n).sqrt()
    assert ((d.T @ d / n - cov).abs() < Z * se_cov).all()


def posterior_like_encoder(model):
    """Q(h|x): a diagonal Gaussian near the true posterior, its mean shifted by half a posterior standard deviation
    and its spread doubled, as a trained encoder might be: imperfect, but broader than p(h|x) (bounded weights)."""
    def encoder(x):
        posterior = model.true_posterior(x)
        sd = posterior.covariance_matrix.diagonal(dim1=-2, dim2=-1).sqrt()
        return Normal(posterior.mean + 0.5 * sd, 2 * sd)
    return encoder


def test_averaging_p_x_given_h_over_q_is_biased_and_importance_weights_remove_the_bias():
    """p(x) = E_(h~p(h))[p(x|h)], but p(x|h) ≈ 0 for most h ~ p(h): the prior estimate is unbiased with a tiny
    effective sample size. Drawing h ~ Q(h|x) instead, the plain average E_Q[p(x|h)] is biased (it is not p(x));
    weighted by p(h)/Q(h|x) it is unbiased again, with far less variance than the prior estimate. In units of the
    exact p(x), 200,000 draws each, within 5 standard errors."""
    model, x = linear_gaussian(seed=30)
    model.encoder = posterior_like_encoder(model)
    x = x[:1]
    n = 200_000
    torch.manual_seed(31)
    with torch.no_grad():
        log_px = model.log_marginal(x)
        h_prior = model.prior().sample((n, 1))
        prior_estimate = (model.log_likelihood_given_h(x, h_prior) - log_px).exp()
        q = model.encoder(x)
        h_q = q.sample((n,))
        log_lik = model.log_likelihood_given_h(x, h_q)
        plain = (log_lik - log_px).exp()
        weighted = (log_lik + model.prior().log_prob(h_q).sum(-1) - q.log_prob(h_q).sum(-1) - log_px).exp()
    assert within_error(prior_estimate, 1.0)
    assert within_error(weighted, 1.0)
    assert not within_error(plain, 1.0, z=20)  # biased by far more than its noise
    ess = {name: (w.sum() ** 2 / w.square().sum()).item() for name, w in (("prior", prior_estimate),
                                                                             ("weighted", weighted))}
    assert ess["prior"] < 0.05 * n and ess["weighted"] > 10 * ess["prior"], ess


def test_iwae_bound_reaches_log_marginal_at_large_k():
    """The importance-weighted bound log (1/K) Σ_k p(x|h_k)p(h_k)/Q(h_k|x) rises to log p(x) as K grows: at K = 4096
    it lies within 5 standard errors (of the mean of 50 repeats, ~0.005 nat) plus 0.005 nat of the exact value; its
    bias, about Var(w)/(2K E[w]²), is ~1e-3 nat here (Var(w)/E[w]² ≈ 6, from the gap at K = 64). K = 1 (the ELBO)
    is nats below."""
    model, x = linear_gaussian(seed=32)
    model.encoder = posterior_like_encoder(model)
    torch.manual_seed(33)
    with torch.no_grad():
        log_px = model.log_marginal(x)
        iwae_1 = vae.iwae_log_likelihood(model, x.repeat(200, 1), 1).view(200, -1)
        iwae_k = vae.iwae_log_likelihood(model, x.repeat(50, 1), 4096, batch_size=20).view(50, -1)
    se = iwae_k.std(0) / math.sqrt(len(iwae_k))
    assert ((iwae_k.mean(0) - log_px).abs() < Z * se + 0.005).all(), (iwae_k.mean(0) - log_px, se)
    assert ((log_px - iwae_1.mean(0)) > 1.0).all(), log_px - iwae_1.mean(0)


def conditional_model(seed=34, m=2, k=3, d=4, n=5):
    """A conditional linear-Gaussian model with random parameters, n pairs (x, y) drawn from it, and a diagonal
    Gaussian Q(h) per pair that is deliberately not the posterior p(h|y, x): its mean off by about one posterior
    standard deviation, its spread 1.5 times too wide, its correlations missing."""
    g = torch.Generator().manual_seed(seed)
    A, W, B = (torch.randn(*shape, generator=g, dtype=F64) for shape in ((k, m), (d, k), (d, m)))
    model = vae.ConditionalLinearGaussian(A, W, B, torch.randn(d, generator=g, dtype=F64), 0.5)
    x = torch.randn(n, m, generator=g, dtype=F64)
    with torch.no_grad():
        h = model.prior(x).sample()
        y = h @ W.T + x @ B.T + model.b + 0.5 * torch.randn(n, d, generator=g, dtype=F64)
        posterior = model.true_posterior(y, x)
        sd = posterior.covariance_matrix.diagonal(dim1=-2, dim2=-1).sqrt()
    q = Normal(posterior.mean + sd * torch.randn(n, k, generator=g, dtype=F64), 1.5 * sd)
    return model, x, y, q


def test_conditional_bayes_step_holds_for_every_h():
    """The lecture's conditional Bayes step, log p(y|h, x) = log p(h|y, x) - log p(h|x) + log p(y|x), holds pointwise
    in h (not only in expectation), with every term in closed form (float64, 1e-9)."""
    model, x, y, _ = conditional_model()
    h = torch.randn(7, *x.shape[:1], model.latent_dim, generator=torch.Generator().manual_seed(35), dtype=F64)
    with torch.no_grad():
        left = model.log_likelihood_given_h(y, h, x)
        right = model.true_posterior(y, x).log_prob(h) - model.prior(x).log_prob(h) + model.log_marginal(y, x)
    torch.testing.assert_close(left, right, rtol=0, atol=1e-9)


def test_conditional_elbo_identity():
    """log p(y|x) - KL(Q || p(h|y, x)) = E_Q[log p(y|h, x)] - KL(Q || p(h|x)), the lecture's conditional ELBO, exact
    (float64, 1e-9): for a Gaussian Q = N(m, S), E_Q[log p(y|h, x)] = log N(y; Wm + Bx + b, s²I) - tr(WSWᵀ)/(2s²).
    Its sampled form E_Q[log p(y|h, x) + log p(h|x) - log Q(h)], 100,000 draws from Q, agrees within 5 standard
    errors (about 0.1 nat). The gap KL(Q || p(h|y, x)) is far from 0, so both sides depend on Q."""
    model, x, y, q = conditional_model()
    with torch.no_grad():
        q_full = MultivariateNormal(q.mean, torch.diag_embed(q.variance))
        gap = kl_divergence(q_full, model.true_posterior(y, x))
        left = model.log_marginal(y, x) - gap
        expected_log_lik = (model.log_likelihood_given_h(y, q.mean, x)
                            - (model.W.square() @ q.variance.T).sum(0) / (2 * model.noise_std**2))
        prior = model.prior(x)
        kl_prior = kl_divergence(q_full, MultivariateNormal(prior.mean, torch.diag_embed(prior.variance)))
        h = q.sample((100_000,))
        lecture_form = model.log_likelihood_given_h(y, h, x) + prior.log_prob(h) - q.log_prob(h).sum(-1)
    assert (gap > 1.0).all()
    torch.testing.assert_close(left, expected_log_lik - kl_prior, rtol=0, atol=1e-9)
    assert within_error(lecture_form, left)


def test_encoder_is_a_diagonal_gaussian_whose_mean_and_variance_depend_on_x():
    """Q(h|x) = N(μ(x), Σ(x)), Σ diagonal: μ is the mean head and σ² = exp(log-variance head) of the same hidden
    layer; the independent coordinates' log density is that of the diagonal multivariate normal (float32: 1e-4);
    100,000 draws have covariance diag σ²(x) (5 standard errors, √((Σ_ii Σ_jj + Σ_ij²)/n)); two inputs, two Q's."""
    torch.manual_seed(36)
    encoder = vae.MLPEncoder(latent_dim=3, hidden=16)
    x = torch.rand(2, 784, generator=torch.Generator().manual_seed(37))
    with torch.no_grad():
        q = encoder(x)
        hidden = torch.relu(x @ encoder.hidden.weight.T + encoder.hidden.bias)
        torch.testing.assert_close(q.mean, hidden @ encoder.mu.weight.T + encoder.mu.bias)
        torch.testing.assert_close(q.variance, (hidden @ encoder.log_var.weight.T + encoder.log_var.bias).exp())
        h = q.sample((100_000,)).double()
        full = MultivariateNormal(q.mean.double(), torch.diag_embed(q.variance.double()))
        torch.testing.assert_close(q.log_prob(h.float()).sum(-1).double(), full.log_prob(h), rtol=0, atol=1e-4)
    assert ((q.mean[0] - q.mean[1]).abs() > 1e-3).any() and ((q.variance[0] - q.variance[1]).abs() > 1e-3).any()
    d = h[:, 0] - q.mean[0].double()
    cov = torch.diag(q.variance[0].double())
    se = ((cov.diagonal()[:, None] * cov.diagonal()[None, :] + cov**2) / len(d)).sqrt()
    assert ((d.T @ d / len(d) - cov).abs() < Z * se).all()


class LectureEncoder(nn.Module):
    """The lecture's PyTorch encoder: two ReLU layers, a μ head and a log σ head (not log σ²), Normal(μ, exp(log σ))."""

    def __init__(self, d_in, hidden, latent):
        super().__init__()
        self.linear1, self.linear2 = nn.Linear(d_in, hidden), nn.Linear(hidden, hidden)
        self.enc_mu, self.enc_log_sigma = nn.Linear(hidden, latent), nn.Linear(hidden, latent)

    def heads(self, x):
        z = torch.relu(self.linear2(torch.relu(self.linear1(x.flatten(1)))))
        return self.enc_mu(z), self.enc_log_sigma(z)

    def forward(self, x):
        mu, log_sigma = self.heads(x)
        return Normal(mu, log_sigma.exp())


def test_lecture_encoder_with_a_log_sigma_head_gives_our_kl_with_log_var_twice_log_sigma():
    """Plugged into the package's ELBO, the lecture's encoder (scale exp(log σ)) gives KL(Q || N(0, I)) =
    kl_standard_normal(μ, log σ² = 2 log σ), not with log σ in place of log σ² (off by more than 0.1 nat), and the
    reconstruction term at h = μ + exp(log σ)·ε, ε the same draw (float32: 1e-5)."""
    torch.manual_seed(38)
    model = vae.VAE(LectureEncoder(784, 32, 4), vae.MLPDecoder(latent_dim=4, hidden=32), latent_dim=4)
    with torch.no_grad():
        model.encoder.enc_log_sigma.bias.fill_(-0.5)  # σ = e^(-1/2) on average: log σ and log σ² differ clearly
    x = (torch.rand(6, 28, 28, generator=torch.Generator().manual_seed(39)) < 0.3).float()
    with torch.no_grad():
        mu, log_sigma = model.encoder.heads(x)
        torch.manual_seed(40)
        reconstruction, kl = vae.elbo_terms(model, x)
        torch.manual_seed(40)
        h = mu + log_sigma.exp() * torch.randn_like(mu)
    torch.testing.assert_close(kl, vae.kl_standard_normal(mu, 2 * log_sigma), rtol=0, atol=1e-5)
    assert ((kl - vae.kl_standard_normal(mu, log_sigma)).abs() > 0.1).all()
    torch.testing.assert_close(reconstruction, vae.bernoulli_log_likelihood(x, model.decoder(h)), rtol=0, atol=1e-4)
