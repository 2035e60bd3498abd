"""The Keras VAE (genmodels.vae_keras): its loss terms are the PyTorch ELBO's, and `fit` trains it on every backend."""

import json
import re
import textwrap

import numpy as np
import pytest
import torch
from torch.distributions import Bernoulli, Independent, Normal, kl_divergence

from genmodels import vae
from genmodels import vae_keras as vk
from genmodels.keras_backends import run_on_backend

# float32: a sum of 784 per-pixel terms of order 1 (or a few latent terms) agrees to a few ulps of its size
RTOL, ATOL = 1e-5, 1e-4


@pytest.fixture
def same_inputs():
    """The same μ, log σ², decoder logits and binary images for both frameworks."""
    rng = np.random.default_rng(0)
    n, k = 16, 5
    mu = rng.normal(size=(n, k)).astype(np.float32)
    log_var = rng.normal(scale=0.5, size=(n, k)).astype(np.float32)
    logits = rng.normal(scale=3.0, size=(n, 28, 28)).astype(np.float32)
    x = (rng.random((n, 28, 28)) < 0.3).astype(np.float32)
    return mu, log_var, logits, x


def as_numpy(value):
    return np.asarray(vk.ops.convert_to_numpy(value))


def test_kl_standard_normal_equals_pytorch(same_inputs):
    mu, log_var, _, _ = same_inputs
    q = Normal(torch.from_numpy(mu), torch.from_numpy(log_var).mul(0.5).exp())
    by_distributions = kl_divergence(q, Normal(0.0, 1.0)).sum(-1).numpy()  # what vae.elbo_terms uses
    keras_kl = as_numpy(vk.kl_standard_normal(mu, log_var))
    np.testing.assert_allclose(keras_kl, vae.kl_standard_normal(torch.from_numpy(mu), torch.from_numpy(log_var)),
                               rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(keras_kl, by_distributions, rtol=RTOL, atol=ATOL)


def test_kl_gaussians_equals_pytorch(same_inputs):
    mu, log_var, _, _ = same_inputs
    args = (mu, log_var, mu[::-1].copy(), log_var[::-1].copy())
    np.testing.assert_allclose(as_numpy(vk.kl_gaussians(*args)),
                               vae.kl_gaussians(*map(torch.from_numpy, args)), rtol=RTOL, atol=ATOL)


def test_bernoulli_log_likelihood_equals_pytorch(same_inputs):
    _, _, logits, x = same_inputs
    t_logits, t_x = torch.from_numpy(logits), torch.from_numpy(x)
    by_distributions = Independent(Bernoulli(logits=t_logits), 2).log_prob(t_x).numpy()  # log_likelihood_given_h
    keras_ll = as_numpy(vk.bernoulli_log_likelihood(x, logits))
    np.testing.assert_allclose(keras_ll, vae.bernoulli_log_likelihood(t_x, t_logits), rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(keras_ll, by_distributions, rtol=RTOL, atol=ATOL)


def test_keras_loss_is_minus_pytorch_elbo_of_the_same_outputs():
    """compute_loss, what `fit` minimises, is the batch mean of KL - log p(x|h), as the PyTorch side computes it."""
    model = vk.conv_vae(latent_dim=3, seed=0)
    x = np.random.default_rng(1).random((8, 28, 28)).astype(np.float32)
    outputs = model(x, training=True)  # binarised afresh, one h ~ Q(h|x)
    loss = float(as_numpy(model.compute_loss(x, None, outputs)))
    out = {name: torch.from_numpy(as_numpy(value)) for name, value in outputs.items()}
    assert set(out["x"].unique().tolist()) <= {0.0, 1.0}
    reconstruction = vae.bernoulli_log_likelihood(out["x"], out["logits"])
    kl = vae.kl_standard_normal(out["mu"], out["log_var"])
    assert loss == pytest.approx(float((kl - reconstruction).mean()), rel=RTOL)


def test_sampling_layer_draws_mu_plus_sigma_eps_reproducibly():
    mu, log_var = np.full((100_000, 1), 1.5, np.float32), np.full((100_000, 1), np.log(0.25), np.float32)
    h = as_numpy(vk.Sampling(seed=3)([mu, log_var]))
    np.testing.assert_array_equal(h, as_numpy(vk.Sampling(seed=3)([mu, log_var])))
    # σ = 0.5 and n = 10⁵: the standard error of the mean is 0.0016 and of the standard deviation 0.0011
    assert abs(h.mean() - 1.5) < 0.01 and abs(h.std() - 0.5) < 0.01


def test_dynamic_binarisation_is_fresh_each_step_with_grey_level_probability():
    layer = vk.Binarize(seed=0)
    x = np.full((200, 28, 28), 0.3, dtype=np.float32)
    first, second = as_numpy(layer(x, training=True)), as_numpy(layer(x, training=True))
    assert set(np.unique(first)) == {0.0, 1.0}
    # mean of 156,800 Bernoulli(0.3) pixels: standard error 0.0012, so 0.01 is over eight standard errors
    assert abs(first.mean() - 0.3) < 0.01
    assert (first != second).mean() > 0.3  # independent draws differ in 2·0.3·0.7 = 42 % of pixels
    np.testing.assert_array_equal(as_numpy(layer(x, training=False)), x)


def test_bad_input_gets_a_clear_error():
    with pytest.raises(ValueError, match="must be binary.*binarize_once"):
        vk.evaluate_elbo(vk.conv_vae(latent_dim=2, seed=0), np.full((2, 28, 28), 0.5, np.float32))
    with pytest.raises(ValueError, match="latent_dim=2"):
        vk.latent_manifold(vk.conv_vae(latent_dim=3, seed=0))
    with pytest.raises(ValueError, match="progress"):
        vk.fit(vk.conv_vae(seed=0), np.zeros((4, 28, 28), np.float32), epochs=1, progress="tqdm")


FIT_SCRIPT = textwrap.dedent("""
    import json
    import genmodels
    from genmodels import vae_keras as vk
    from genmodels.data import binarize_stochastic, load_data
    import keras

    data = load_data("quick", verbose=False)
    x_test = binarize_stochastic(data.x_test[:500], seed=0)
    model = vk.conv_vae(latent_dim=2, seed=0)
    before = float(vk.evaluate_elbo(model, x_test).mean())
    history = vk.fit(model, data.x_train[:256], epochs=2, batch_size=16, progress="plain")
    after = float(vk.evaluate_elbo(model, x_test).mean())
    print(json.dumps({"backend": keras.backend.backend(), "before": before, "after": after,
                      "loss": history.history["loss"]}))
""")


@pytest.mark.parametrize("backend", ["tensorflow", "torch", "jax"])
def test_short_fit_raises_test_elbo_with_stable_silent_output(backend):
    """Fresh process per backend (Keras fixes it at import). Also: progress="plain" prints one line per epoch and
    TensorFlow/Keras write nothing to stderr, so notebook outputs keep their shape from run to run."""
    run = run_on_backend(backend, FIT_SCRIPT, timeout=300,  # `import genmodels` must set TF_CPP_MIN_LOG_LEVEL itself
                         env={"GENMODELS_PROFILE": "quick", "TF_CPP_MIN_LOG_LEVEL": None})
    assert run.returncode == 0, run.stderr
    assert run.stderr == "", f"{backend}: wrote to stderr: {run.stderr[:500]}"
    *epoch_lines, result = run.stdout.strip().splitlines()
    assert len(epoch_lines) == 2 and all(re.fullmatch(r"epoch [12]/2: [a-z_]+ [-\d.e+]+(, [a-z_]+ [-\d.e+]+)*", line)
                                         for line in epoch_lines), epoch_lines
    result = json.loads(result)
    assert result["backend"] == backend
    assert result["loss"][1] < result["loss"][0]
    # an untrained decoder scores about 784·log 2 = 543 nats; 32 steps of 16 images lift the test ELBO by over 50
    assert result["after"] > result["before"] + 50, result


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"epochs": -3}, "epochs must be a whole number >= 0, got -3"),
    ({"epochs": 1, "batch_size": 0}, "batch_size must be a whole number >= 1, got 0"),
    ({"epochs": 1, "x": np.full((8, 28, 28), 255.0, dtype=np.float32)}, r"in \[0, 1\]; got values in \[255, 255\]"),
    ({"epochs": 1, "x": np.full((8, 28, 28), np.nan, dtype=np.float32)}, "contain 6272 NaN"),
    ({"epochs": 1, "x": np.zeros((8, 27, 27), dtype=np.float32)}, r"784 pixels per example"),
])
def test_bad_training_input_is_a_clear_error_not_a_quiet_binarisation(kwargs, message):
    """0-255 or NaN pixels would be binarised to 1 and 0 without a word; batch_size=0 would train with 32."""
    settings = {"x": np.zeros((8, 28, 28), dtype=np.float32), "progress": "none", **kwargs}
    with pytest.raises(ValueError, match=message):
        vk.fit(vk.conv_vae(latent_dim=2, seed=0), settings.pop("x"), **settings)
