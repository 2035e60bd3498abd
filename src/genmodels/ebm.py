"""Deep energy-based models on images, trained with Langevin samples.  Taught in 04_energy_based_model.

p(x) = e^(-E(x)) / Z, with E a small convolutional network. The gradient of the mean log-likelihood of the data is

    -∂ mean log p(x)/∂θ = ⟨∂E/∂θ⟩_data - ⟨∂E/∂θ⟩_model     (the positive and the negative phase; Z drops out),

and the model's expectation is estimated with Langevin samples (genmodels.langevin.ula on image chains) started from
a replay buffer of earlier samples (Du & Mordatch 2019; the UvA deep-learning tutorial 8, which Foster's chapter 7
ports to Keras). In the lecture's order: the energy network, the sampler and the replay buffer, the contrastive loss
and training through genmodels.training.train, then what a trained model does (generate, score images).

The replay buffer's states and fresh chains from noise are two different samplers. A negative sample has run
`n_steps / restart` Langevin steps since its chain last started from noise, on average (mean_steps_from_noise): the
tutorial's 5 % restarts train the energy against chains hundreds of steps old, and nothing in training shapes what a
short chain from noise meets, so the buffer can look like data while `generate` from noise draws textures. Restarting
a large fraction of the chains (restart 0.2 to 0.5, from a buffer small enough that its states are drawn again and
again) keeps the negatives about as young as the generation chain from noise (GENERATE): what the model was trained
against is then what a student draws, the short-run MCMC of Nijkamp, Hill, Zhu & Wu (2019) with a little
persistence. The price is the buffer's: its young states look less like data than the tutorial's old ones.

Images come in and go out as grey levels in [0, 1], as everywhere in the course; inside, the network and the chains
work on x = 2·image - 1 in [-1, 1], the tutorial's range, so that its step sizes carry over.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

import torch
from torch import nn

from . import checks, langevin, training

__all__ = ["EnergyModel", "Sampler", "TUTORIAL_SAMPLER", "GENERATE", "INPUT_SHAPE", "temperature",
           "mean_steps_from_noise", "to_model_range", "to_images", "langevin_step", "langevin_sample", "buffer_draw",
           "negative_samples", "contrastive_loss", "loss_fn", "fit", "TUTORIAL_TRAINING", "energy", "generate",
           "ood_auc"]

INPUT_SHAPE = (1, 28, 28)  # what the energy network takes: one channel of 28×28 pixels


# --- the model ----------------------------------------------------------------------------------------------------


class EnergyModel(nn.Module):
    """E(x) for images x in [-1, 1] of shape (N, 1, 28, 28): four strided convolutions with SiLU (Swish), then
    Linear → SiLU → Linear to one number. The UvA tutorial's network is channels=(16, 32, 64, 64), hidden=64 (it
    returns -E; this one returns E).

    The replay buffer `buffer` (buffer_size, 1, 28, 28), the states of earlier Langevin chains, is a module buffer:
    it travels with the state_dict, so checkpoints and resume keep it. It starts as uniform noise in [-1, 1];
    `restart` is the fraction of each batch of chains restarted from fresh noise instead of the buffer."""

    def __init__(self, channels=(16, 32, 64, 64), hidden: int = 64, buffer_size: int = 8192, restart: float = 0.05,
                 generator: torch.Generator | None = None):
        super().__init__()
        if len(channels) != 4:
            raise ValueError(f"channels must list the widths of the four convolutions, e.g. (16, 32, 64, 64); "
                             f"got {channels!r}")
        for c in channels:
            checks.check_count("each entry of channels", c)
        checks.check_count("hidden", hidden)
        checks.check_count("buffer_size", buffer_size)
        if not 0 <= restart <= 1:
            raise ValueError(f"restart is the fraction of chains restarted from noise, in [0, 1]; got {restart!r}")
        c1, c2, c3, c4 = channels
        self.net = nn.Sequential(
            nn.Conv2d(1, c1, 5, stride=2, padding=4), nn.SiLU(),  # 28 → 16
            nn.Conv2d(c1, c2, 3, stride=2, padding=1), nn.SiLU(),  # 16 → 8
            nn.Conv2d(c2, c3, 3, stride=2, padding=1), nn.SiLU(),  # 8 → 4
            nn.Conv2d(c3, c4, 3, stride=2, padding=1), nn.SiLU(),  # 4 → 2
            nn.Flatten(), nn.Linear(c4 * 4, hidden), nn.SiLU(), nn.Linear(hidden, 1))
        self.channels, self.hidden, self.restart = tuple(channels), hidden, float(restart)
        self.register_buffer("buffer", torch.rand(buffer_size, *INPUT_SHAPE, generator=generator) * 2 - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """E(x), one number per image: x (N, 1, 28, 28) in [-1, 1] → (N,)."""
        return self.net(x).squeeze(-1)

    def extra_repr(self):
        return f"buffer_size={len(self.buffer)}, restart={self.restart}"


def to_model_range(images) -> torch.Tensor:
    """Grey levels in [0, 1] (checked), any layout with 784 pixels per image → x = 2·image - 1, (N, 1, 28, 28)."""
    checks.check_grey_levels(images, "the images", n_pixels=784)
    x = images if torch.is_tensor(images) else torch.from_numpy(images)
    return (x.float().reshape(len(x), *INPUT_SHAPE) * 2 - 1).contiguous()


def to_images(x: torch.Tensor) -> torch.Tensor:
    """States in [-1, 1] back to grey levels in [0, 1], on the CPU, for plotting."""
    return ((x.detach().float().cpu() + 1) / 2).clamp(0, 1)


# --- the sampler and the replay buffer ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Sampler:
    """Settings of Langevin on images: x' = clamp(x - η clamp(∇E(x), ±grad_clamp) + σ w, -1, 1), n_steps times.
    The UvA tutorial (TUTORIAL_SAMPLER) takes η = 10 and σ = 0.005, i.e. the temperature σ²/(2η) = 1.25e-6: noisy
    gradient descent on E, not a sampler of e^(-E). noise = √(2η) makes it ULA at temperature 1."""

    n_steps: int = 60
    step_size: float = 10.0
    noise: float = 0.005
    grad_clamp: float | None = 0.03

    @property
    def temperature(self) -> float:
        return temperature(self.step_size, self.noise)

    def check(self) -> Sampler:
        checks.check_count("n_steps (Langevin steps)", self.n_steps)
        checks.check_rate("step_size", self.step_size)
        checks.check_rate("noise", self.noise)
        if self.grad_clamp is not None:
            checks.check_rate("grad_clamp", self.grad_clamp)
        return self


TUTORIAL_SAMPLER = Sampler()  # UvA tutorial 8 (and Foster ch. 7) while training
# The course's one generation sampler, from fresh uniform noise (generate's default; notebook 04's figures and
# notebook 08's row): the tutorial's step, noise and clamp, for about as many steps as the negatives of a run with
# 10 steps per update and restart 0.2 to 0.5 have run since noise (mean_steps_from_noise: 20 to 50).
GENERATE = replace(TUTORIAL_SAMPLER, n_steps=40)


def mean_steps_from_noise(n_steps: int, restart: float) -> float:
    """The Langevin steps a negative sample has run since its chain last started from noise, on average, once every
    state of the buffer has been drawn many times: each draw restarts a chain with probability r = restart, so its
    age in draws is geometric with mean 1/r, and n_steps/r in steps (tutorial: 60/0.05 = 1,200; restart=0.5 with
    10 steps: 20). A generation chain from noise much shorter than this meets an energy nothing trained there.
    Taught in 04_energy_based_model."""
    checks.check_count("n_steps (Langevin steps)", n_steps)
    if not 0 < restart <= 1:
        raise ValueError(f"restart is the fraction of chains restarted from noise, in (0, 1]; got {restart!r} "
                         f"(with no restarts the chains never start again from noise)")
    return n_steps / restart


def temperature(step_size: float, noise: float) -> float:
    """T = σ²/(2η): the chain x' = x - η∇E + σw samples e^(-E/T). ULA (σ = √(2η)) has T = 1."""
    return noise**2 / (2 * step_size)


def langevin_step(x: torch.Tensor, grad_energy: torch.Tensor, step_size: float, noise_std: float, noise: torch.Tensor,
                  grad_clamp: float) -> torch.Tensor:
    """One step of the image sampler from given noise w: x' = clamp(x - η clamp(∇E(x), ±grad_clamp) + σ w, -1, 1).
    langevin_sample runs it as genmodels.langevin.ula's in-place loop (the tests check that its chains are these
    steps', to float rounding); exercises/04_energy_based_model writes it."""
    return (x - step_size * grad_energy.clamp(-grad_clamp, grad_clamp) + noise_std * noise).clamp(-1, 1)


def langevin_sample(energy_fn, x0: torch.Tensor, sampler: Sampler = TUTORIAL_SAMPLER, *, generator=None, seed: int = 0,
                    thin: int | None = None) -> torch.Tensor:
    """Run `sampler` on the chains x0 (n_chains, 1, 28, 28) in [-1, 1] under the energy `energy_fn(x) -> (n,)`:
    genmodels.langevin.ula on log p = -E with step η, noise scale σ/√η, the gradient clamped and every state
    clamped to [-1, 1]. Returns the final states or, with `thin`, every thin-th state (n_kept, n_chains, ...)."""
    sampler.check()
    chains = langevin.ula(lambda x: -energy_fn(x), x0, sampler.step_size, sampler.n_steps,
                          noise_scale=sampler.noise / math.sqrt(sampler.step_size), generator=generator, seed=seed,
                          project=lambda x: x.clamp_(-1, 1), grad_clamp=sampler.grad_clamp,
                          burn_in=sampler.n_steps - 1 if thin is None else 0, thin=thin or 1)
    return chains.last if thin is None else chains.samples


def buffer_draw(buffer: torch.Tensor, slots: torch.Tensor, noise: torch.Tensor | None, restart: float) -> torch.Tensor:
    """The chains' starts x0 for one negative phase: the buffer's states at `slots` (n,), the first round(restart · n)
    of them replaced by `noise` (fresh uniform noise in [-1, 1], at least that many rows). The buffer is not changed.
    exercises/04_energy_based_model writes it."""
    x0 = buffer.index_select(0, slots)
    n_new = round(restart * len(slots))
    if n_new:
        x0[:n_new] = noise[:n_new]
    return x0


@torch.no_grad()
def negative_samples(model: EnergyModel, n: int, sampler: Sampler = TUTORIAL_SAMPLER, generator=None) -> torch.Tensor:
    """The negative phase's samples: n chains drawn from the replay buffer (a fraction model.restart of them
    restarted from uniform noise), moved by `sampler` under the model's energy, and written back to the buffer."""
    checks.check_count("the number of chains", n)
    size = len(model.buffer)
    if n > size:
        raise ValueError(f"{n} chains need a replay buffer of at least {n} states; it holds {size}: build the model "
                         f"with EnergyModel(buffer_size={n}) or more, or use smaller batches")
    device = model.buffer.device
    slots = torch.randperm(size, generator=generator, device=device)[:n]
    n_new = round(model.restart * n)
    noise = torch.rand(n_new, *INPUT_SHAPE, generator=generator, device=device) * 2 - 1 if n_new else None
    x0 = buffer_draw(model.buffer, slots, noise, model.restart)
    samples = langevin_sample(model, x0, sampler, generator=generator)
    model.buffer.index_copy_(0, slots, samples)
    return samples


# --- training -----------------------------------------------------------------------------------------------------


def contrastive_loss(energy_data: torch.Tensor, energy_samples: torch.Tensor, alpha: float = 0.1):
    """mean E(data) - mean E(samples) + α·mean(E(data)² + E(samples)²): its gradient is the positive phase (lower the
    energy of the data) minus the negative phase (raise the energy of the samples); the α term keeps the energies
    near zero, since the contrastive term alone only fixes their differences. Returns (loss, metrics)."""
    energy_data, energy_samples = energy_data.float(), energy_samples.float()
    contrastive = energy_data.mean() - energy_samples.mean()
    regulariser = alpha * (energy_data**2 + energy_samples**2).mean()
    metrics = {"contrastive": contrastive.detach(), "energy_data": energy_data.mean().detach(),
               "energy_samples": energy_samples.mean().detach()}
    return contrastive + regulariser, metrics


def loss_fn(model: EnergyModel, sampler: Sampler = TUTORIAL_SAMPLER, alpha: float = 0.1, data_noise: float = 0.005,
            generator=None):
    """A `loss_fn` for genmodels.training.train: batch (n, 1, 28, 28) in [-1, 1] → (loss, metrics). The data get
    a little noise (σ = data_noise, clamped to [-1, 1]); as many negative samples as data, whatever the batch size."""

    def loss(batch):
        positive = (batch + data_noise * torch.randn(batch.shape, generator=generator, device=batch.device,
                                                      dtype=batch.dtype)).clamp(-1, 1)
        try:
            negative = negative_samples(model, len(batch), sampler, generator)
        except (FloatingPointError, ValueError) as err:
            if all(p.isfinite().all() for p in model.parameters()):
                raise
            raise training.TrainingDiverged(  # the loop says where the model is now, and what to do
                "the network's parameters are NaN or infinite, so its energies are too (the sampler said: "
                f"{str(err)[:200]}...)") from err
        energies = model(torch.cat([positive, negative]))
        return contrastive_loss(energies[:len(batch)], energies[len(batch):], alpha)

    return loss


TUTORIAL_TRAINING = dict(epochs=60, batch_size=128, lr=1e-4, alpha=0.1, sampler=TUTORIAL_SAMPLER, lr_decay=0.97,
                         grad_clip=0.1)


def fit(model: EnergyModel, images, *, epochs: int, batch_size: int = 128, lr: float = 1e-4, alpha: float = 0.1,
        sampler: Sampler = TUTORIAL_SAMPLER, lr_decay: float = 0.97, grad_clip: float | None = 0.1,
        data_noise: float = 0.005, evaluate=None, checkpoint=None, resume: bool = True, progress: str = "bar",
        seed: int = 0, amp=None):
    """Train `model` on grey-level images in [0, 1] with the contrastive loss, Adam (β1 = 0, β2 = 0.999), the
    gradient norm clipped to grad_clip and the learning rate multiplied by lr_decay after each epoch, through the
    course's training loop (its divergence guard, checkpoints with the replay buffer, resume). Returns the
    History.  Taught in 04_energy_based_model; TUTORIAL_TRAINING holds the UvA tutorial's settings."""
    __tracebackhide__ = True  # a mistake in the call shows the student's line and the message (IPython, pytest)
    x = to_model_range(images)
    checks.check_count("batch_size", batch_size)
    checks.check_rate("lr", lr)
    sampler.check()
    if not (isinstance(alpha, int | float) and 0 <= alpha < math.inf):
        raise ValueError(f"alpha (the weight of the energy regulariser) must be a number >= 0, got {alpha!r}")
    if not 0 < checks.check_rate("lr_decay", lr_decay) <= 1:
        raise ValueError(f"lr_decay multiplies the learning rate after each epoch; it must lie in (0, 1], got "
                         f"{lr_decay}")
    if grad_clip is not None:
        checks.check_rate("grad_clip", grad_clip)
    if batch_size > len(model.buffer):
        raise ValueError(f"batch_size={batch_size} needs as many chains, but the replay buffer holds "
                         f"{len(model.buffer)}: build the model with a larger buffer_size")
    device = next(model.parameters()).device
    generator = torch.Generator(device=device).manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, betas=(0.0, 0.999))
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=lr_decay)
    config = dict(alpha=alpha, lr_decay=lr_decay, grad_clip=grad_clip, data_noise=data_noise,
                  restart=model.restart, buffer_size=len(model.buffer), **asdict(sampler))
    return training.train(model, x, epochs=epochs, batch_size=batch_size,
                          loss_fn=loss_fn(model, sampler, alpha, data_noise, generator), optimizer=optimizer,
                          evaluate=evaluate, checkpoint=checkpoint, resume=resume, progress=progress, seed=seed,
                          amp=amp, generators={"sampler": generator}, config=config, grad_clip=grad_clip,
                          scheduler=scheduler)


# --- what a trained model does: generate, score -------------------------------------------------------------------


@torch.no_grad()
def energy(model: EnergyModel, images, batch_size: int = 1000) -> torch.Tensor:
    """E of grey-level images in [0, 1] (checked), in batches; a float32 tensor (N,) on the CPU."""
    x = to_model_range(images)
    device = next(model.parameters()).device
    return torch.cat([model(chunk.to(device)).float().cpu() for chunk in x.split(batch_size)])


def generate(model: EnergyModel, n: int, sampler: Sampler = GENERATE, *, from_buffer: bool = False,
             seed: int = 0, batch_size: int = 1024, thin: int | None = None) -> torch.Tensor:
    """n images in [0, 1] (on the CPU): Langevin chains (GENERATE by default, the course's one generation sampler)
    from fresh uniform noise, or from n states of the replay buffer (from_buffer=True). Any n; chains run
    batch_size at a time. With `thin`, every thin-th state of each chain: (n_kept, n, 1, 28, 28), to watch long
    runs."""
    checks.check_count("n (images to generate)", n)
    sampler.check()
    device = next(model.parameters()).device
    generator = torch.Generator(device=device).manual_seed(seed)
    if from_buffer:
        if n > len(model.buffer):
            raise ValueError(f"the replay buffer holds {len(model.buffer)} states; asked for n={n}")
        x0 = model.buffer[torch.randperm(len(model.buffer), generator=generator, device=device)[:n]]
    else:
        x0 = torch.rand(n, *INPUT_SHAPE, generator=generator, device=device) * 2 - 1
    runs = [langevin_sample(model, chunk, sampler, generator=generator, thin=thin) for chunk in x0.split(batch_size)]
    return to_images(torch.cat(runs, dim=0 if thin is None else 1))


def ood_auc(energy_in, energy_out) -> float:
    """ROC AUC of the energy as an out-of-distribution score: the probability that an image from the other data set
    has a higher energy than one from the training distribution (ties count half). 0.5: no better than chance."""
    e_in = torch.as_tensor(energy_in, dtype=torch.float64).flatten().sort().values
    e_out = torch.as_tensor(energy_out, dtype=torch.float64).flatten()
    if len(e_in) == 0 or len(e_out) == 0 or not (e_in.isfinite().all() and e_out.isfinite().all()):
        raise ValueError("ood_auc needs non-empty, finite energies for both data sets")
    below = torch.searchsorted(e_in, e_out, right=False)  # in-distribution energies < each out-energy
    ties = torch.searchsorted(e_in, e_out, right=True) - below
    return float((below + ties / 2).sum() / (len(e_in) * len(e_out)))
