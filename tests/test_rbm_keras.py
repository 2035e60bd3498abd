"""The Keras RBM (genmodels.rbm_keras) is the PyTorch RBM (genmodels.rbm): the same numbers from the same weights,
the same CD update, and `fit` trains it on every backend (TensorFlow, PyTorch, JAX), each in its own process."""

import re
import textwrap

import numpy as np
import pytest
import torch
from conftest import backend_results

from genmodels import rbm as R
from genmodels import rbm_keras as RK

BACKENDS = ["tensorflow", "torch", "jax"]

# Everything a backend must show, in one fresh process per backend (Keras fixes its backend at import).
BACKEND_SCRIPT = textwrap.dedent("""
    import json, sys, tempfile
    import numpy as np
    import torch
    import genmodels
    import keras
    from genmodels import data, rbm as R, rbm_keras as RK

    out = {"backend": keras.backend.backend()}
    as_np = keras.ops.convert_to_numpy

    # 1. the same weights give the same free energies and conditionals
    twin = R.RBM(20, 7, generator=torch.Generator().manual_seed(0), init_std=1.0)
    with torch.no_grad():
        twin.b.normal_(generator=torch.Generator().manual_seed(1))
        twin.c.normal_(generator=torch.Generator().manual_seed(2))
    model = RK.from_pytorch(twin, seed=0)
    v = (np.random.default_rng(3).random((64, 20)) < 0.4).astype("float32")
    h = (np.random.default_rng(4).random((64, 7)) < 0.5).astype("float32")
    tv, th = torch.from_numpy(v), torch.from_numpy(h)
    with torch.no_grad():
        pairs = {"free_energy": (model.free_energy(v), twin.free_energy(tv)),
                 "energy": (model.energy(v, h), twin.energy(tv, th)),
                 "p_h_given_v": (model.p_h_given_v(v), twin.p_h_given_v(tv)),
                 "p_v_given_h": (model.p_v_given_h(h), twin.p_v_given_h(th))}
    out["max_abs_diff"] = {k: float(np.abs(as_np(a) - b.numpy()).max()) for k, (a, b) in pairs.items()}

    # 2. one CD step each, from the same state and the same negatives, with momentum 0.5 then 0.9 and weight decay
    class FixedNegatives(RK.RBM):
        def call(self, v, training=False):
            return self.v_neg + 0 * v[:1]

    lr, wd = 0.1, 0.01
    twin = R.RBM(30, 10, generator=torch.Generator().manual_seed(5), init_std=0.5)
    model = FixedNegatives(30, 10)
    for name in ("W", "b", "c"):
        getattr(model, name).assign(getattr(twin, name).detach().numpy())
    model.v_neg = model.add_weight(shape=(16, 30), initializer="zeros", trainable=False, name="v_neg")
    model.compile(optimizer=RK.MomentumSGD(lr, momentum=(0.5, 0.9), momentum_switch=1, weight_decay=wd))
    rng = np.random.default_rng(6)
    for mu in (0.5, 0.9):
        v = (rng.random((16, 30)) < 0.3).astype("float32")
        v_neg = rng.random((16, 30)).astype("float32")  # mean-field negatives, as CD's last step gives them
        model.v_neg.assign(v_neg)
        model.train_on_batch(v)
        twin.sgd_step(twin.cd_gradient(torch.from_numpy(v), torch.from_numpy(v_neg)), lr, mu, wd)
    out["cd_step_max_abs_diff"] = {name: float(np.abs(as_np(getattr(model, name))
                                                     - getattr(twin, name).detach().numpy()).max())
                                   for name in ("W", "b", "c")}

    # 3. two identical rows in one batch get their own samples
    model = RK.RBM(784, 50, seed=0)
    same = np.ones((2, 784), "float32")
    v1, _ = model.gibbs_step(same)
    v1 = as_np(v1)
    out["identical_rows_differ"] = float((v1[0] != v1[1]).mean())

    # 4. a short fit on the quick data: reconstruction error down, pseudo-likelihood up
    images = data.load_data("quick", verbose=False)
    x = data.binarize_once(images.x_train[:2000])
    x_test = data.binarize_once(images.x_test[:500])
    model = RK.RBM(784, 50, seed=0)
    model.init_visible_bias(x)
    out["before"] = [RK.reconstruction_error(model, x_test), RK.pseudo_log_likelihood(model, x_test, seed=1)]
    history = RK.fit(model, x, epochs=2, batch_size=20, lr=0.1, progress="plain", seed=0)
    out["after"] = [RK.reconstruction_error(model, x_test), RK.pseudo_log_likelihood(model, x_test, seed=1)]
    out["history"] = history.history

    # 5. an interrupted fit resumes from its last completed epoch, momentum and update count included
    class Interrupt(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 1:
                raise KeyboardInterrupt

    backup = tempfile.mkdtemp()
    model = RK.RBM(784, 20, seed=0)
    try:
        RK.fit(model, x[:200], epochs=3, batch_size=50, backup_dir=backup, progress="none", callbacks=[Interrupt()])
    except KeyboardInterrupt:
        pass
    interrupted_at = int(model.optimizer.iterations)
    resumed = RK.RBM(784, 20, seed=1)  # a fresh process would start from new weights: the backup restores them
    history = RK.fit(resumed, x[:200], epochs=3, batch_size=50, backup_dir=backup, progress="none")
    out["resume"] = {"interrupted_at": interrupted_at, "epochs_run": history.epoch,
                     "updates": int(resumed.optimizer.iterations)}
    print(json.dumps(out))
""")


def run_backend(backend):
    """The backend script's results, run once per backend (`import genmodels` must set TF_CPP_MIN_LOG_LEVEL itself)."""
    return backend_results(BACKEND_SCRIPT, backend, GENMODELS_PROFILE="quick", TF_CPP_MIN_LOG_LEVEL=None)


@pytest.mark.parametrize("backend", BACKENDS)
def test_same_weights_give_pytorch_free_energies_and_conditionals(backend):
    result = run_backend(backend)
    assert result["backend"] == backend
    # float32: F and E are sums of ~20 terms of order 1-10, so a few ulps of 10; probabilities lie in [0, 1]
    assert max(result["max_abs_diff"].values()) < 1e-5, result["max_abs_diff"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_one_cd_step_is_pytorch_cd_gradient_plus_sgd_step(backend):
    """Through Keras' own train step (compute_loss's gradient, MomentumSGD, weight decay on W only), two updates
    from the same state and negatives land where rbm.RBM.cd_gradient + sgd_step do, momentum switch included."""
    # float32: parameters of order 1 after two updates of order lr·1, summed in a different order
    assert max(run_backend(backend)["cd_step_max_abs_diff"].values()) < 1e-5, run_backend(backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_identical_rows_in_a_batch_get_independent_samples(backend):
    """The reference code's shared row of thresholds would make the two samples equal. With p(v|h) near 0.5 here,
    independent draws differ in about half of the 784 pixels; 0.2 is far below that and far above 0."""
    assert run_backend(backend)["identical_rows_differ"] > 0.2


@pytest.mark.parametrize("backend", BACKENDS)
def test_short_fit_improves_both_monitors_with_stable_silent_output(backend):
    result = run_backend(backend)
    assert result["stderr"] == "", f"{backend}: wrote to stderr: {result['stderr'][:500]}"
    assert len(result["lines"]) == 2 and all(
        re.fullmatch(r"epoch [12]/2: loss [-\d.e+]+, recon_error [-\d.e+]+", line) for line in result["lines"]
    ), result["lines"]
    (recon_before, pll_before), (recon_after, pll_after) = result["before"], result["after"]
    # from the base-rate model (76 per image, -191 nats) 200 CD-1 updates reach about 54 and -156 (TensorFlow)
    assert recon_after < recon_before - 10, result
    assert pll_after > pll_before + 15, result
    assert result["history"]["recon_error"][1] < result["history"]["recon_error"][0]


@pytest.mark.parametrize("backend", BACKENDS)
def test_interrupted_fit_resumes_with_keras_backup(backend):
    resume = run_backend(backend)["resume"]
    assert resume["interrupted_at"] == 4  # one epoch of 200 images in batches of 50
    assert resume["epochs_run"] == [1, 2]  # BackupAndRestore starts at the second epoch ...
    assert resume["updates"] == 12  # ... with the optimizer's state (update count, increments) restored


# --- in this process (the default backend) ---------------------------------------------------------------------


def small_pair(seed=0):
    twin = R.RBM(12, 5, generator=torch.Generator().manual_seed(seed), init_std=1.0)
    with torch.no_grad():
        twin.b.normal_(generator=torch.Generator().manual_seed(seed + 1))
        twin.base_bias.copy_(twin.b * 0.5)
    return twin, RK.from_pytorch(twin, seed=seed)


def test_weights_copy_both_ways():
    twin, model = small_pair()
    back = RK.to_pytorch(model)
    for name in ("W", "b", "c", "base_bias", "chains"):
        assert torch.equal(getattr(back, name), getattr(twin, name)), name


def test_log_likelihood_equals_pytorch_on_the_same_weights():
    """Keras' free energies against PyTorch's (log Z is rbm.log_partition_exact on the copied weights in both, so
    what differs is the free energy); float32 sums of order 10 on both sides: 1e-4."""
    twin, model = small_pair()
    v = (np.random.default_rng(0).random((50, 12)) < 0.5).astype("float32")
    assert RK.log_likelihood(model, v) == pytest.approx(R.log_likelihood(twin, torch.from_numpy(v)), abs=1e-4)


def test_log_likelihood_bracket_equals_pytorch_on_the_same_weights():
    """One bracket for both frameworks: the same copied weights and the same generator seed give the same numbers."""
    twin, model = small_pair()
    v = (np.random.default_rng(0).random((20, 12)) < 0.5).astype("float32")
    keras_side = RK.log_likelihood_bracket(model, v, n_betas=20, n_runs=10, generator=torch.Generator().manual_seed(0))
    torch_side = R.log_likelihood_bracket(twin, torch.from_numpy(v), n_betas=20, n_runs=10,
                                          generator=torch.Generator().manual_seed(0))
    assert keras_side.pessimistic == pytest.approx(torch_side.pessimistic, abs=1e-4)  # float32 free energies
    assert keras_side.optimistic == pytest.approx(torch_side.optimistic, abs=1e-4)


def test_monitors_equal_pytorch_on_the_same_weights():
    twin, model = small_pair()
    v = (np.random.default_rng(1).random((40, 12)) < 0.5).astype("float32")
    assert RK.reconstruction_error(model, v) == pytest.approx(R.reconstruction_error(twin, torch.from_numpy(v)),
                                                              rel=1e-5)  # float32



def test_pseudo_log_likelihood_is_unbiased_for_the_sum_over_every_pixel():
    """One random pixel per example, scaled by the 12 pixels: over 200 seeds the mean is the exact Σ_i log p(v_i |
    v_-i), computed here from PyTorch's free energies with every pixel flipped in turn (within 5 standard errors)."""
    twin, model = small_pair()
    v = (np.random.default_rng(1).random((40, 12)) < 0.5).astype("float32")
    tv = torch.from_numpy(v)
    with torch.no_grad():
        flipped = tv[:, None, :].repeat(1, 12, 1)
        flipped[:, range(12), range(12)] = 1 - flipped[:, range(12), range(12)]
        gaps = twin.free_energy(flipped.reshape(-1, 12)).view(40, 12) - twin.free_energy(tv)[:, None]
        exact = torch.nn.functional.logsigmoid(gaps.double()).sum(1).mean().item()
    estimates = np.array([RK.pseudo_log_likelihood(model, v, seed=s) for s in range(200)])
    assert abs(estimates.mean() - exact) < 5 * estimates.std() / np.sqrt(len(estimates)), (estimates.mean(), exact)


def test_bernoulli_draws_ones_with_probability_p():
    p = np.linspace(0, 1, 11, dtype="float32")[None].repeat(20_000, 0)
    draws = RK.ops.convert_to_numpy(RK.bernoulli(p, seed=0))
    # 20,000 draws per probability: standard error at most 0.0036, so 0.02 is over five standard errors
    np.testing.assert_allclose(draws.mean(0), p[0], atol=0.02)


@pytest.mark.parametrize("bad, message", [
    (np.full((3, 784), 0.5, np.float32), "must be binary.*binarize_once"),
    (np.full((3, 784), np.nan, np.float32), "NaN"),
    (np.zeros((0, 784), np.float32), "empty"),
    (np.zeros((3, 100), np.float32), r"shape \(N, 784\)"),
])
def test_bad_input_gets_the_pytorch_rbm_errors(bad, message):
    model = RK.RBM(784, 10, seed=0)
    with pytest.raises(ValueError, match=message):
        RK.fit(model, bad, epochs=1)
    with pytest.raises(ValueError, match=message):
        R.fit(R.RBM(784, 10), bad, epochs=1)


@pytest.mark.parametrize("settings, message", [
    ({"progress": "tqdm"}, "progress must be 'bar', 'plain' or 'none', got 'tqdm'"),
    ({"k": 0}, r"k \(Gibbs steps per update\) must be a whole number >= 1, got 0"),
    ({"batch_size": 0}, "batch_size must be a whole number >= 1, got 0"),
    ({"lr": 100.0}, "lr=100.0 is far above what CD training tolerates"),
    ({"momentum": (0.5, 1.0)}, r"momentum must lie in \[0, 1\)"),
])
def test_fit_refuses_bad_settings_as_rbm_fit_does(settings, message):
    x = np.zeros((4, 784), np.float32)
    with pytest.raises(ValueError, match=message):
        RK.fit(RK.RBM(784, 10, seed=0), x, epochs=1, **settings)
    with pytest.raises(ValueError, match=message):
        R.fit(R.RBM(784, 10), x, epochs=1, **settings)


def test_a_linear_schedule_falls_to_zero_over_the_fits_updates_as_rbm_fit_does():
    x = (np.random.default_rng(0).random((30, 784)) < 0.3).astype(np.float32)
    model = RK.RBM(784, 10, seed=0)
    RK.fit(model, x, epochs=2, batch_size=10, lr=0.05, lr_schedule="linear", progress="none")
    schedule = model.optimizer._learning_rate  # lr·(1 - t/T) over T = 6 updates
    assert [round(float(schedule(t)), 6) for t in (0, 3, 6)] == [0.05, 0.025, 0.0]
    assert int(model.optimizer.iterations) == 6
    with pytest.raises(ValueError, match="lr_schedule must be 'constant' or 'linear'"):
        RK.fit(RK.RBM(784, 10, seed=0), x, epochs=1, lr_schedule="cosine")
