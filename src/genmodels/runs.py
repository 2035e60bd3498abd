"""Every training run of the course, defined once: its model, its settings per profile and device, its checkpoint.

A *run* is a model that a notebook trains: notebook 01's RBM, 04's energy-based model, 05's VAEs, the lecture's
shorter runs, ... Its settings live in RUNS and nowhere else. The notebooks, the lecture and `python -m genmodels
train` resolve them for their profile, print them, and train through the run:

    settings = runs.settings("rbm", profile, epochs=epochs)  # RUNS["rbm"] for this profile and device; a value
    print(settings)                                          # that is not None (a parameters cell's) overrides one
    model = runs.build(settings, device, seed=seed)          # the run's model, untrained
    history = runs.train(model, dataset, settings, seed=seed, teaching=True)

or, where the model is only used (notebook 08, the command line), `model, history = runs.trained(dataset, settings,
device, seed=seed)`. A setting that differs between profiles is a `By(quick, full)`; with a third value,
`By(quick, full, gpu)`, the full profile on a GPU takes it (Profile.pick: the tutorials' lengths there, what fits ten
minutes a notebook on a 2-core CPU otherwise).

The checkpoint rule, the same in every notebook, the lecture and the command line (README, "Checkpoints"):
- full profile: a run resumes from its checkpoint under _build/checkpoints/, whoever wrote it (`python -m genmodels
  train`, the notebook that teaches the run, or notebook 08), if it was trained with the same settings; the training
  loop refuses one trained with others. Running the cell again continues the run; more epochs extend it.
- quick profile: the notebook that teaches a run (`teaching=True`) trains it afresh, so that its outputs, which nbval
  compares, never depend on what ran before; every other caller (notebook 08, the command line) reads the checkpoint
  that the teaching notebook wrote, or trains the same run itself when there is none.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import torch

from . import data
from .paths import checkpoint_path

__all__ = ["By", "Run", "RUNS", "Settings", "settings", "build", "train", "trained", "resumes"]


@dataclass(frozen=True)
class By:
    """A setting that differs between profiles: By(quick=3, full=20); with gpu, the full profile's value on a CUDA
    or MPS device (full is then the CPU's), By(quick=2, full=4, gpu=60)."""

    quick: Any
    full: Any
    gpu: Any = None

    def resolve(self, profile):
        return profile.pick(self.quick, self.full, gpu=self.gpu)


@dataclass(frozen=True)
class Run:
    """A training run: the notebook that teaches it, what it trains, its settings and checkpoint, and the two
    functions that build its model and train it."""

    name: str
    notebook: str
    what: str
    settings: dict
    build: Callable = field(repr=False)
    train: Callable = field(repr=False)
    checkpoint: str | None = None  # a file name under _build/checkpoints/; {profile} is filled in


@dataclass(frozen=True)
class Settings:
    """A run's settings resolved for one profile and device: `settings.epochs`, `settings.lr`, ...; print it to show
    them."""

    run: Run
    profile: Any  # the genmodels.profiles.Profile they were resolved for
    values: dict
    checkpoint: Path | None

    def __getattr__(self, name):
        values = self.__dict__.get("values", {})
        if name in values:
            return values[name]
        raise AttributeError(f"the run {self.run.name!r} has no setting {name!r}; its settings: {', '.join(values)}")

    def __str__(self):
        """Two lines: the run, its notebook and checkpoint; then its settings."""
        where = f", checkpoint {self.checkpoint.name}" if self.checkpoint is not None else ""
        listed = ", ".join(f"{name} {_shown(value)}" for name, value in self.values.items())
        return f"run {self.run.name!r} ({self.run.notebook}: {self.run.what}){where}\n  {listed}"


def _shown(value) -> str:
    """A setting as the settings line prints it: 2,048 images, lr 0.005, n_train all (None: the whole split)."""
    if value is None:
        return "all"
    if isinstance(value, tuple):
        return "(" + ", ".join(map(str, value)) + ")"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def settings(name: str, profile, checkpoint: Path | str | None = None, **overrides) -> Settings:
    """RUNS[name]'s settings for `profile` (and its device type), with each override that is not None in place of the
    run's value (a notebook's parameters cell passes its values, None meaning the run's); `checkpoint` replaces the
    run's file."""
    if name not in RUNS:
        raise ValueError(f"no run named {name!r}; the course's runs: {', '.join(RUNS)}")
    run = RUNS[name]
    unknown = sorted(set(overrides) - set(run.settings))
    if unknown:
        raise ValueError(f"the run {name!r} has no setting {', '.join(map(repr, unknown))}; "
                         f"its settings: {', '.join(run.settings)}")
    values = {key: value.resolve(profile) if isinstance(value, By) else value for key, value in run.settings.items()}
    values.update({key: value for key, value in overrides.items() if value is not None})
    if checkpoint is None and run.checkpoint is not None:
        checkpoint = checkpoint_path(run.checkpoint.format(profile=profile.name))
    return Settings(run, profile, values, None if checkpoint is None else Path(checkpoint))


def resumes(settings: Settings, teaching: bool) -> bool:
    """The checkpoint rule (module docstring): resume in the full profile; in the quick profile, start afresh in the
    notebook that teaches the run and read its checkpoint everywhere else."""
    return not (settings.profile.quick and teaching)


def build(settings: Settings, device, seed: int = 0, **shape):
    """The run's model, untrained, on `device`, its initial weights fixed by `seed` (`shape`: the sizes a run leaves
    to its notebook, e.g. n_visible and n_hidden of the Ising RBMs)."""
    return settings.run.build(settings, device, seed, **shape)


def train(model, data, settings: Settings, *, seed: int = 0, teaching: bool = False, resume: bool | None = None,
          evaluate=None):
    """Train `model` (from build) on `data` (a data.Data; the Ising runs take their lattices) with the run's settings
    and checkpoint; `resume` None follows the checkpoint rule (resumes), `evaluate` replaces the run's own per-epoch
    evaluation. Returns the History (Keras' History for the Keras runs)."""
    resume = resumes(settings, teaching) if resume is None else resume
    return settings.run.train(model, data, settings, seed=seed, resume=resume, evaluate=evaluate)


class Trained(NamedTuple):
    model: Any
    history: Any


def trained(dataset, settings: Settings, device, *, seed: int = 0, resume: bool | None = None) -> Trained:
    """build, then train: the run's model trained (or read from its checkpoint, by the checkpoint rule)."""
    model = build(settings, device, seed)
    return Trained(model, train(model, dataset, settings, seed=seed, resume=resume))


# --- the runs: how each builds its model and trains it -------------------------------------------------------------


def _named(s: Settings, *names) -> dict:
    """The fit keywords among `names` that the run sets; the others keep the fit's defaults."""
    return {name: s.values[name] for name in names if name in s.values}


def _rbm(s, device, seed, n_visible=784, n_hidden=None):
    from . import rbm
    return rbm.RBM(n_visible, n_hidden or s.n_hidden, n_chains=s.n_chains, init_std=s.init_std,
                   generator=torch.Generator().manual_seed(seed), device=device)


def _train_rbm(model, dataset, s, *, seed, resume, evaluate):
    """PCD or CD through rbm.fit; by default the test pseudo-likelihood and reconstruction error after each epoch."""
    from . import rbm
    x_train, x_test = data.binary_vectors(dataset)
    if evaluate is None and s.evaluate:
        def evaluate():
            return {"test_pseudo_ll": rbm.pseudo_log_likelihood(model, x_test),
                    "test_recon_error": rbm.reconstruction_error(model, x_test)}
    return rbm.fit(model, x_train, epochs=s.epochs, batch_size=s.batch_size, lr=s.lr, k=s.k,
                   persistent=s.persistent, evaluate=evaluate, checkpoint=s.checkpoint, resume=resume,
                   progress=s.profile.progress, seed=seed, **_named(s, "lr_schedule", "momentum"))


def _train_ising_rbm(model, lattices, s, *, seed, resume, evaluate):
    """CD-k on the lattices as binary vectors (ising.spins_to_visible), no checkpoint (seconds per model)."""
    from . import rbm
    return rbm.fit(model, lattices, epochs=s.epochs, lr=s.lr, k=s.k, evaluate=evaluate, progress="none", seed=seed)


def _rbm_keras(s, device, seed):
    from . import rbm_keras
    return rbm_keras.RBM(784, s.n_hidden, n_chains=s.n_chains, init_std=s.init_std, seed=seed)


def _train_rbm_keras(model, dataset, s, *, seed, resume, evaluate):
    """model.fit through rbm_keras.fit (no checkpoint: Keras' BackupAndRestore, backup_dir, is the notebook's to
    show); the test pseudo-likelihood and reconstruction error after each epoch."""
    from . import rbm_keras
    x_train, x_test = data.binary_vectors(dataset)
    if evaluate is None:
        def evaluate():
            return {"test_pseudo_ll": rbm_keras.pseudo_log_likelihood(model, x_test, seed=seed),
                    "test_recon_error": rbm_keras.reconstruction_error(model, x_test)}
    return rbm_keras.fit(model, x_train, epochs=s.epochs, batch_size=s.batch_size, lr=s.lr, k=s.k,
                         persistent=s.persistent, evaluate=evaluate, progress=s.profile.progress, seed=seed,
                         **_named(s, "lr_schedule", "momentum"))


def _ebm(s, device, seed):
    from . import ebm
    return ebm.EnergyModel(buffer_size=s.buffer_size, restart=s.restart,
                           generator=torch.Generator().manual_seed(seed)).to(device)


def _train_ebm(model, dataset, s, *, seed, resume, evaluate):
    """The contrastive loss with Langevin negatives from the replay buffer, through ebm.fit."""
    from . import ebm
    return ebm.fit(model, dataset.x_train[:s.n_train], epochs=s.epochs, batch_size=s.batch_size, lr=s.lr,
                   sampler=ebm.Sampler(n_steps=s.n_steps), evaluate=evaluate, checkpoint=s.checkpoint, resume=resume,
                   progress=s.profile.progress, seed=seed)


def _vae(kind):
    def build_vae(s, device, seed):
        from . import vae
        torch.manual_seed(seed)  # the networks' initial weights
        if kind == "conv":
            return vae.conv_vae(latent_dim=s.latent_dim, hidden=s.hidden).to(device)
        make = vae.mlp_autoencoder if kind == "autoencoder" else vae.mlp_vae
        return make(latent_dim=s.latent_dim).to(device)
    return build_vae


def _train_vae(model, dataset, s, *, seed, resume, evaluate):
    """Adam on dynamically binarised images through vae.fit, scored on the test images binarised once."""
    from . import vae
    if evaluate is not None:
        raise ValueError("a VAE run evaluates on the binarised test images itself; pass no evaluate")
    return vae.fit(model, dataset.x_train[:s.n_train], epochs=s.epochs, batch_size=s.batch_size, lr=s.lr,
                   x_test=data.binarize_once(dataset.x_test), checkpoint=s.checkpoint, resume=resume,
                   progress=s.profile.progress, seed=seed)


def _vae_keras(s, device, seed):
    from . import vae_keras
    return vae_keras.conv_vae(latent_dim=s.latent_dim, seed=seed, lr=s.lr)


def _train_vae_keras(model, dataset, s, *, seed, resume, evaluate):
    """model.fit through vae_keras.fit, the binarised test images as validation data."""
    from . import vae_keras
    return vae_keras.fit(model, dataset.x_train[:s.n_train], epochs=s.epochs, batch_size=s.batch_size,
                         x_test=data.binarize_once(dataset.x_test), progress=s.profile.progress, seed=seed)


# The MNIST RBM of notebooks 01 and 02 (and of 08 and the command line): one set of settings, PCD-1 as Tieleman
# (2008), chosen by measurement (issue 45's table in the README): a learning rate of 0.05 falling linearly to 0, and
# momentum 0.5 throughout (at 0.9 the parameters outran the persistent chains and fresh chains fell into one mode).
# 02 trains it, in Keras and in PyTorch, for fewer epochs.
_MNIST_RBM = dict(n_hidden=By(100, 500), lr=0.05, lr_schedule="linear", momentum=(0.5, 0.5), k=1, persistent=True,
                  n_chains=100, batch_size=100, init_std=0.01)
# 06's two VAEs, Keras and PyTorch: keras.io's 2-D latent space, and on a GPU its 30 epochs
_VAE_KERAS = dict(latent_dim=2, n_train=By(1500, 60_000), epochs=By(1, 5, gpu=30), lr=1e-3, batch_size=128)

RUNS = {run.name: run for run in (
    Run("rbm", "01_rbm_pytorch", "a 784-visible RBM, PCD on binarised images",
        dict(_MNIST_RBM, epochs=By(60, 30), evaluate=True, sample_sweeps=By(300, 1000)), _rbm, _train_rbm,
        checkpoint="01_rbm_{profile}.pt"),  # sample_sweeps: Gibbs sweeps of fresh chains, in 01's figure and 08's row
    Run("rbm_keras", "02_rbm_keras", "notebook 01's RBM in Keras, PCD with model.fit",
        dict(_MNIST_RBM, epochs=By(10, 10)), _rbm_keras, _train_rbm_keras),
    Run("rbm_keras_twin", "02_rbm_keras", "notebook 01's RBM, trained as long as the Keras one, for their comparison",
        dict(_MNIST_RBM, epochs=By(10, 10), evaluate=False), _rbm, _train_rbm,
        checkpoint="02_rbm_keras_twin_{profile}.pt"),
    # The energy model: on a GPU the UvA tutorial's recipe (ebm.TUTORIAL_TRAINING: old negatives, a buffer that
    # samples well, chains from noise that do not); on a CPU, measured for samples from noise in ten minutes (issue
    # 46's table in the README): fewer steps per update and more restarts from noise, so that the negatives are
    # young chains, as the 40 steps of ebm.GENERATE are; the quick profile's also a small buffer, drawn often.
    Run("ebm", "04_energy_based_model", "the convolutional energy, Langevin negatives from a replay buffer",
        dict(n_train=By(2048, None), epochs=By(6, 4, gpu=60), batch_size=By(64, 128), n_steps=By(10, 10, gpu=60),
             lr=By(2e-3, 2e-4, gpu=1e-4), restart=By(0.5, 0.2, gpu=0.05), buffer_size=By(1024, 8192)),
        _ebm, _train_ebm, checkpoint="04_ebm_{profile}.pt"),
    Run("vae_mlp", "05_vae_pytorch", "the MLP VAE 784-400-20",
        dict(latent_dim=20, n_train=None, epochs=By(10, 10), lr=1e-3, batch_size=128), _vae("mlp"), _train_vae,
        checkpoint="vae_mlp_{profile}.pt"),
    Run("vae_conv", "05_vae_pytorch", "the convolutional VAE, keras.io's layers with a 256-unit dense layer",
        dict(latent_dim=20, hidden=256, n_train=None, epochs=By(4, 4, gpu=30), lr=1e-3, batch_size=128),
        _vae("conv"), _train_vae, checkpoint="vae_conv_{profile}.pt"),
    Run("vae_2d", "05_vae_pytorch", "the MLP VAE with a 2-D code",
        dict(latent_dim=2, n_train=None, epochs=By(10, 10), lr=1e-3, batch_size=128), _vae("mlp"), _train_vae,
        checkpoint="vae2_{profile}.pt"),
    Run("autoencoder_2d", "05_vae_pytorch", "the MLP autoencoder with a 2-D code",
        dict(latent_dim=2, n_train=None, epochs=By(10, 10), lr=1e-3, batch_size=128), _vae("autoencoder"),
        _train_vae, checkpoint="ae2_{profile}.pt"),
    Run("vae_keras", "06_vae_keras", "keras.io's convolutional VAE in Keras 3", _VAE_KERAS, _vae_keras,
        _train_vae_keras),
    Run("vae_keras_twin", "06_vae_keras", "the PyTorch convolutional VAE trained as the Keras one",
        dict(_VAE_KERAS, hidden=16), _vae("conv"), _train_vae, checkpoint="vae_keras_twin_{profile}.pt"),
    Run("ising_rbm_4x4", "07_ising_rbm", "RBMs of the 4x4 lattice, CD-10 on exact samples",
        dict(hidden=By((4, 16), (4, 16, 32)), n_train=By(2000, 10_000), epochs=By(5, 20), lr=0.05, k=10, n_chains=100,
             init_std=0.1), _rbm, _train_ising_rbm),
    Run("ising_rbm_8x8", "07_ising_rbm", "RBMs of the 8x8 lattice, CD-10 on Monte Carlo samples",
        dict(hidden=By((16,), (16, 64)), epochs=By(15, 30), lr=0.05, k=10, n_chains=100, init_std=0.1), _rbm,
        _train_ising_rbm),
    Run("lecture_rbm", "week13", "the lecture's RBM, CD-1",
        dict(n_hidden=By(100, 500), epochs=By(5, 10), lr=0.1, k=1, persistent=False, batch_size=100, n_chains=100,
             init_std=0.01, evaluate=False), _rbm, _train_rbm),
    Run("lecture_vae", "week13", "the lecture's MLP VAE 784-400-20",
        dict(latent_dim=20, n_train=None, epochs=By(6, 10), lr=1e-3, batch_size=128), _vae("mlp"), _train_vae),
    Run("lecture_vae_keras", "week13", "the lecture's Keras VAE with a 2-D code",
        dict(latent_dim=2, n_train=None, epochs=By(4, 5), lr=By(4e-3, 2e-3), batch_size=By(64, 128)), _vae_keras,
        _train_vae_keras),
)}
