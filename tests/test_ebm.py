"""The deep energy-based model: its sampler on a known energy, the replay buffer, the loss's phases, the divergence
guard, and a short run on MNIST that already tells test images from noise."""

import math

import pytest
import torch
from conftest import mnist_test_dir

from genmodels import data, ebm, training

Z = 4.0  # standard errors allowed


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny networks: a second thread costs more than it saves


def tiny_model(buffer_size=256, restart=0.05, seed=0):
    """A small network (the tests' time goes into the sampler's forward and backward passes)."""
    torch.manual_seed(seed)
    return ebm.EnergyModel(channels=(4, 4, 8, 8), hidden=8, buffer_size=buffer_size, restart=restart,
                           generator=torch.Generator().manual_seed(seed))


def quadratic(s2):
    """E(x) = Σ x²/(2 s²): the chains should sample N(0, s² T) at the temperature T."""
    return lambda x: 0.5 * (x**2).flatten(1).sum(-1) / s2


# --- the sampler on a fixed quadratic energy -------------------------------------------------------------------------


def test_image_sampler_with_matched_noise_reproduces_the_gaussian_variance():
    """σ = √(2η) is temperature 1: 12,544 independent pixels of E = x²/(2·0.04) have ULA's stationary variance
    s²/(1 - η/(2s²)) = 0.0421 (η = 0.004) within four standard errors var·√(2/N). The clamp to [-1, 1] sits at five
    standard deviations and changes nothing measurable."""
    step = 0.004
    sampler = ebm.Sampler(n_steps=200, step_size=step, noise=math.sqrt(2 * step), grad_clamp=None)
    assert sampler.temperature == pytest.approx(1.0)
    x = ebm.langevin_sample(quadratic(0.04), torch.rand(16, 1, 28, 28) * 2 - 1, sampler, seed=1).double().flatten()
    expected = 0.04 / (1 - step / (2 * 0.04))
    assert abs(x.var().item() - expected) < Z * expected * math.sqrt(2 / len(x))


def test_usual_settings_only_lower_the_energy():
    """The tutorial's η = 10, σ = 0.005 (T = 1.25e-6) on E = x²/(2·20): the mean energy falls at every step until
    the chains sit at the bottom, with the variance of the AR(1) chain x' = x/2 + σw, σ²/0.75 = 3.3e-5 (12,544
    pixels: 1.3 % standard error, 5 % allowed), a millionth of the Gaussian's variance 20: descent, not sampling."""
    assert ebm.TUTORIAL_SAMPLER.temperature == pytest.approx(1.25e-6)
    states = ebm.langevin_sample(quadratic(20.0), torch.rand(16, 1, 28, 28) * 2 - 1, ebm.TUTORIAL_SAMPLER, seed=2,
                                 thin=1)
    energies = torch.stack([quadratic(20.0)(s).mean() for s in states])
    floor = energies[-20:].mean()  # where the noise balances the pull: 784 · 3.3e-5 / 40 per chain
    falling = energies[energies > 2 * floor]  # the first steps, each shrinking the energy about four times
    assert len(falling) >= 5 and (falling[1:] < falling[:-1]).all()
    assert energies[-1] < 1e-3 * energies[0]
    variance = states[-1].double().var().item()
    assert variance == pytest.approx(0.005**2 / 0.75, rel=0.05)


def test_projection_keeps_chains_in_the_data_range():
    def downhill_outwards(x):  # E = -Σ 10 x: the gradient pushes every pixel to +∞
        return -10 * x.flatten(1).sum(-1)

    sampler = ebm.Sampler(n_steps=30, step_size=1.0, noise=0.5, grad_clamp=None)
    x = ebm.langevin_sample(downhill_outwards, torch.zeros(8, 1, 28, 28), sampler, thin=1)
    assert x.min() >= -1 and x.max() <= 1 and (x[-1] == 1).float().mean() > 0.99


# --- the replay buffer -----------------------------------------------------------------------------------------------


def test_buffer_keeps_its_size_and_restart_fraction():
    model = tiny_model(buffer_size=256, restart=0.25)
    model.buffer.fill_(0.5)
    still = ebm.Sampler(n_steps=1, step_size=1e-6, noise=1e-6, grad_clamp=None)  # chains barely move
    samples = ebm.negative_samples(model, 64, still, generator=torch.Generator().manual_seed(0))
    from_noise = ((samples - 0.5).abs().flatten(1).amax(-1) > 1e-3).sum().item()
    rewritten = ((model.buffer - 0.5).abs().flatten(1).amax(-1) > 1e-3).sum().item()
    assert samples.shape == (64, 1, 28, 28) and model.buffer.shape == (256, 1, 28, 28)
    assert from_noise == rewritten == round(0.25 * 64)  # exactly the restart fraction, written back in place
    with pytest.raises(ValueError, match="replay buffer of at least 300 states; it holds 256"):
        ebm.negative_samples(model, 300, still)


class Uphill(ebm.EnergyModel):
    """E(x) = -0.01 Σ x: with η = 1 and no clamp, every step raises every pixel by 0.01, so the median pixel of a
    chain that started from uniform noise in [-1, 1] is 0.01 × its age in steps (until it reaches 1, after 100)."""

    def forward(self, x):
        return -0.01 * x.flatten(1).sum(-1)


def test_negative_samples_have_run_n_steps_over_restart_steps_since_noise():
    """A draw restarts each chain with probability r = 0.25, so a negative sample's age is geometric: 1/r = 4 draws
    of 2 steps, 8 steps on average (mean_steps_from_noise). After 50 draws (each of the 64 states drawn 25 times,
    0.75^25 < 0.001 never restarted), 150 draws of 32 chains: the median of 784 pixels reads each age within 3.6
    steps (sd), and the mean of the 4,800 ages is within about 0.3 steps (sd; the geometric's sd is 6.9 steps, and
    a state drawn again is counted again); 10 % allowed."""
    torch.manual_seed(0)
    model = Uphill(channels=(1, 1, 1, 1), hidden=1, buffer_size=64, restart=0.25,
                   generator=torch.Generator().manual_seed(0))
    rise = ebm.Sampler(n_steps=2, step_size=1.0, noise=1e-6, grad_clamp=None)
    generator = torch.Generator().manual_seed(1)
    ages = []
    for draw in range(200):
        samples = ebm.negative_samples(model, 32, rise, generator)
        if draw >= 50:
            ages.append(samples.flatten(1).median(-1).values / 0.01)
    ages = torch.cat(ages)
    assert ebm.mean_steps_from_noise(2, 0.25) == 8
    assert ages.mean().item() == pytest.approx(8, rel=0.1)
    with pytest.raises(ValueError, match="restart is the fraction.*never start again"):
        ebm.mean_steps_from_noise(10, 0.0)


def test_generate_runs_the_generation_sampler_from_uniform_noise():
    """generate's default is GENERATE, the course's one generation sampler, on chains from uniform noise in
    [-1, 1] drawn from the seed's generator."""
    model = tiny_model()
    generator = torch.Generator().manual_seed(3)
    x0 = torch.rand(6, 1, 28, 28, generator=generator) * 2 - 1
    expected = ebm.to_images(ebm.langevin_sample(model, x0, ebm.GENERATE, generator=generator))
    torch.testing.assert_close(ebm.generate(model, 6, seed=3), expected, rtol=0, atol=0)


def images(n=128, seed=0):
    return torch.rand(n, 784, generator=torch.Generator().manual_seed(seed))


def test_buffer_survives_a_checkpoint_round_trip(tmp_path):
    model = tiny_model(buffer_size=128)
    start = model.buffer.clone()
    path = tmp_path / "ebm.pt"
    ebm.fit(model, images(64), epochs=1, batch_size=32, sampler=ebm.Sampler(n_steps=2), checkpoint=path,
            progress="none")
    fresh = tiny_model(buffer_size=128, seed=1)
    fresh.load_state_dict(training.load_checkpoint(path)["model"])
    assert not torch.equal(model.buffer, start) and torch.equal(fresh.buffer, model.buffer)
    history = ebm.fit(fresh, images(64), epochs=2, batch_size=32, sampler=ebm.Sampler(n_steps=2), checkpoint=path,
                      progress="none")  # resumes after epoch 1
    assert history.epochs == 2 and len(history["loss"]) == 2
    with pytest.raises(ValueError, match="other settings.*n_steps: 2 in the checkpoint, 3 now"):
        ebm.fit(fresh, images(64), epochs=3, batch_size=32, sampler=ebm.Sampler(n_steps=3), checkpoint=path,
                progress="none")


# --- the loss --------------------------------------------------------------------------------------------------------


def test_loss_gradient_is_positive_minus_negative_phase_on_a_toy_energy():
    """E_θ(x) = θ·x: ∂loss/∂θ = mean x_data - mean x_samples + α·(2/n) Σ (E(x) x) over both sets (n = 32 each). A step
    against it lowers the data's energy (positive phase) and raises the samples' (negative phase)."""
    theta = torch.randn(784, generator=torch.Generator().manual_seed(0), requires_grad=True)
    x_data, x_samples = images(32, seed=1), images(32, seed=2) * 2 - 1
    for alpha in (0.0, 0.1):
        loss, _ = ebm.contrastive_loss(x_data @ theta, x_samples @ theta, alpha)
        (grad,) = torch.autograd.grad(loss, theta)
        e_d, e_s = (x_data @ theta).detach(), (x_samples @ theta).detach()
        expected = x_data.mean(0) - x_samples.mean(0) + alpha * 2 * (e_d @ x_data + e_s @ x_samples) / 32
        torch.testing.assert_close(grad, expected, rtol=1e-4, atol=1e-5)  # float32 sums of 32 terms
    loss, _ = ebm.contrastive_loss(x_data @ theta, x_samples @ theta, 0.0)
    (grad,) = torch.autograd.grad(loss, theta)
    with torch.no_grad():
        stepped = theta - 1e-3 * grad
        assert (x_data @ stepped).mean() < (x_data @ theta).mean()
        assert (x_samples @ stepped).mean() > (x_samples @ theta).mean()


def test_loss_takes_as_many_negative_samples_as_the_batch_holds():
    """Foster's Keras port splits a short last batch (96 images) in halves that mix data and samples; here every
    batch size gets its own number of chains."""
    model = tiny_model()
    seen = []
    loss = ebm.loss_fn(model, ebm.Sampler(n_steps=1), generator=torch.Generator().manual_seed(0))
    original = ebm.negative_samples

    def spy(model, n, *args):
        seen.append(n)
        return original(model, n, *args)

    ebm.negative_samples = spy
    try:
        for n in (96, 3, 128):
            value, metrics = loss(torch.rand(n, 1, 28, 28) * 2 - 1)
            assert value.shape == () and torch.isfinite(value)
    finally:
        ebm.negative_samples = original
    assert seen == [96, 3, 128]
    assert ebm.generate(model, 5, ebm.Sampler(n_steps=2), batch_size=2).shape == (5, 1, 28, 28)


# --- training ------------------------------------------------------------------------------------------------------


def test_divergence_guard_trips_on_a_forced_blow_up_and_the_checkpoint_survives(tmp_path, monkeypatch):
    model = tiny_model(buffer_size=128)
    path = tmp_path / "ebm.pt"

    def blow_up(epoch, batch):
        if epoch == 2 and batch == 0:
            with torch.no_grad():
                model.net[0].weight.fill_(float("inf"))

    monkeypatch.setattr(training, "_after_batch", blow_up)
    with pytest.raises(training.TrainingDiverged, match="(?s)diverged in epoch 2: the network's parameters are NaN"
                       ".*back at the end of epoch 1, which the checkpoint .* holds"):
        ebm.fit(model, images(64), epochs=3, batch_size=32, sampler=ebm.Sampler(n_steps=2), checkpoint=path,
                progress="none")
    state = training.load_checkpoint(path)
    assert state["epoch"] == 1
    assert all(torch.isfinite(v).all() for v in state["model"].values())  # the parameters and the buffer
    assert all(torch.equal(t, state["model"][name]) for name, t in model.state_dict().items())  # and the model too


def test_bad_input_gets_clear_errors():
    model = tiny_model()
    with pytest.raises(ValueError, match="divide by 255"):
        ebm.fit(model, (images(8) * 255).to(torch.uint8), epochs=1)
    with pytest.raises(ValueError, match=r"grey levels in \[0, 1\]; got values in \[-1"):
        ebm.energy(model, images(8) * 2 - 1)
    with pytest.raises(ValueError, match="784 pixels"):
        ebm.fit(model, torch.rand(8, 10), epochs=1)
    with pytest.raises(ValueError, match="lr must be a positive"):
        ebm.fit(model, images(8), epochs=1, lr=0)
    with pytest.raises(ValueError, match="n_steps .* must be a whole number >= 1"):
        ebm.fit(model, images(8), epochs=1, sampler=ebm.Sampler(n_steps=0))
    with pytest.raises(ValueError, match="batch_size=512 needs as many chains"):
        ebm.fit(model, images(8), epochs=1, batch_size=512)
    with pytest.raises(ValueError, match="restart is the fraction"):
        ebm.EnergyModel(restart=5)


def test_after_a_short_quick_profile_run_test_images_have_lower_energy_than_noise(monkeypatch):
    monkeypatch.setenv("GENMODELS_DATA", str(mnist_test_dir().parent))
    dataset = data.load_data("quick", verbose=False)
    model = tiny_model(buffer_size=512)
    ebm.fit(model, dataset.x_train[:512], epochs=2, batch_size=64, lr=1e-3, sampler=ebm.Sampler(n_steps=10),
            progress="none")
    e_test = ebm.energy(model, dataset.x_test[:500])
    e_noise = ebm.energy(model, images(500))
    assert e_test.mean() < e_noise.mean() and ebm.ood_auc(e_test, e_noise) > 0.9


def test_ood_auc_is_the_probability_that_the_other_data_score_higher():
    assert ebm.ood_auc([0.0, 1.0], [2.0, 3.0]) == 1.0
    assert ebm.ood_auc([2.0, 3.0], [0.0, 1.0]) == 0.0
    assert ebm.ood_auc([1.0, 1.0], [1.0]) == 0.5  # ties count half
    assert ebm.ood_auc([0.0, 2.0], [1.0, 3.0]) == 0.75


def test_langevin_sample_is_langevin_step_iterated():
    """langevin_sample runs langevin.ula's in-place loop; ebm.langevin_step is the formula, the exercise's reference.
    The loop's noise is (σ/√η)·√η w, not σ w: equal to float32 rounding."""
    model, sampler = tiny_model(), ebm.Sampler(n_steps=5)
    x0 = torch.rand(4, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 2 - 1
    sampled = ebm.langevin_sample(model, x0, sampler, generator=torch.Generator().manual_seed(1))
    noise, x = torch.Generator().manual_seed(1), x0.clone()
    for _ in range(sampler.n_steps):
        x = x.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(model(x).sum(), x)
        w = torch.randn(x.shape, generator=noise)
        x = ebm.langevin_step(x.detach(), grad, sampler.step_size, sampler.noise, w, sampler.grad_clamp)
    torch.testing.assert_close(sampled, x, rtol=0, atol=1e-6)


def test_negative_samples_start_from_buffer_draw():
    """negative_samples draws its starts with buffer_draw (the exercise's reference): a step that moves nothing shows
    them."""
    model, generator = tiny_model(buffer_size=32, restart=0.25), torch.Generator().manual_seed(4)
    buffer = model.buffer.clone()
    sampler = ebm.Sampler(n_steps=1, step_size=1e-12, noise=1e-12)  # one step that moves nothing
    samples = ebm.negative_samples(model, 8, sampler, generator=torch.Generator().manual_seed(4))
    slots = torch.randperm(32, generator=generator)[:8]
    noise = torch.rand(2, 1, 28, 28, generator=generator) * 2 - 1
    torch.testing.assert_close(samples, ebm.buffer_draw(buffer, slots, noise, 0.25), rtol=0, atol=1e-9)
