"""`python -m genmodels train vae|rbm|ebm`: a notebook's training run from the command line, on one process or many.

    python -m genmodels train vae --epochs 10                      # one process: the notebook's run, as a script
    torchrun --nproc-per-node 2 -m genmodels train vae --epochs 10   # the same on 2 processes (GPUs, or CPU cores)

Each model trains with the settings of the notebook that teaches it (the profile's lengths, the notebook's learning
rate and sizes) and checkpoints where that notebook does, under _build/checkpoints/, so a notebook run afterwards
reads the trained model (a checkpoint written by N processes is resumed by N: see genmodels.distributed):

    vae   05_vae_pytorch's MLP VAE (784-400-20), Adam, dynamic binarisation, test ELBO each epoch: vae_mlp_<profile>.pt
    rbm   01_rbm_pytorch's RBM (784 visible units), PCD with 100 chains, test pseudo-likelihood: 01_rbm_<profile>.pt
    ebm   04_energy_based_model's energy network and replay buffer, Langevin negatives: 04_ebm_<profile>.pt
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

__all__ = ["main", "parser", "MODELS"]

MODELS = ("vae", "rbm", "ebm")


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python -m genmodels", description="The course's models from the command line.")
    commands = top.add_subparsers(dest="command", required=True, metavar="train")
    train = commands.add_parser("train", help="train a model with its notebook's settings (under torchrun: on N "
                                "processes)", description=__doc__.split("\n\n")[2],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    train.add_argument("model", choices=MODELS, help="which notebook's model")
    train.add_argument("--epochs", type=int, default=None, help="epochs in all, counting those a checkpoint holds "
                       "(default: the notebook's, for the profile and device)")
    train.add_argument("--profile", choices=("quick", "full"), default=None,
                       help="quick or full (default: GENMODELS_PROFILE, else full)")
    train.add_argument("--device", default=None, help="cuda, mps, cpu or auto (default: GENMODELS_DEVICE, else the "
                       "profile's; under torchrun each process takes its own GPU)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--checkpoint", type=Path, default=None,
                       help="the checkpoint file (default: the notebook's, under _build/checkpoints/)")
    train.add_argument("--no-resume", dest="resume", action="store_false",
                       help="start afresh instead of resuming from the checkpoint")
    return top


def main(argv: list[str] | None = None):
    """Parse the command line and train; returns the History (on every rank)."""
    args = parser().parse_args(argv)
    if args.epochs is not None and args.epochs < 0:
        parser().error(f"--epochs must be 0 or more, got {args.epochs}")
    import genmodels

    from . import data, distributed
    from .paths import checkpoint_path

    profile, device = genmodels.setup(args.profile, args.device, args.seed)
    world = distributed.from_environment()
    dataset = data.load_data(profile, verbose=world.leader)
    checkpoint = (args.checkpoint if args.checkpoint is not None
                  else checkpoint_path(_CHECKPOINTS[args.model].format(profile=profile.name)))
    history = _TRAIN[args.model](dataset, profile, device, args, checkpoint=checkpoint, resume=args.resume,
                                 progress=profile.progress, seed=args.seed)
    if world.leader:
        print(f"{args.model}: {history.epochs} epochs; last: "
              + ", ".join(f"{name} {value:.4g}" for name, value in history.last().items())
              + f"; checkpoint {checkpoint}")
    return history


def _epochs(args, profile, **notebook) -> int:
    """--epochs if given, else the notebook's number for the profile (`notebook`: profile.pick's keywords)."""
    return args.epochs if args.epochs is not None else profile.pick(**notebook)


# Each trainer is its notebook's run and returns the History; `run` holds what every fit takes from the command line
# and the profile: checkpoint, resume, progress and seed.


def _train_vae(dataset, profile, device, args, **run):
    """05_vae_pytorch: its MLP VAE, Adam at 1e-3, batch 128, the test ELBO after each epoch."""
    from . import data, vae

    model = vae.mlp_vae(latent_dim=20).to(device)
    return vae.fit(model, dataset.x_train, epochs=_epochs(args, profile, quick=3, full=10),
                   x_test=data.binarize_once(dataset.x_test), **run)


def _train_rbm(dataset, profile, device, args, **run):
    """01_rbm_pytorch: its RBM, PCD with 100 chains, lr 0.005, batch 100, the test pseudo-likelihood each epoch."""
    from . import data, rbm

    x_train, x_test = data.binary_vectors(dataset)
    model = rbm.RBM(784, profile.pick(quick=100, full=500), n_chains=100,
                    generator=torch.Generator().manual_seed(args.seed), device=device)

    def evaluate():
        return {"test_pseudo_ll": rbm.pseudo_log_likelihood(model, x_test),
                "test_recon_error": rbm.reconstruction_error(model, x_test)}

    return rbm.fit(model, x_train, epochs=_epochs(args, profile, quick=3, full=20), batch_size=100, lr=0.005,
                   persistent=True, evaluate=evaluate, **run)


def _train_ebm(dataset, profile, device, args, **run):
    """04_energy_based_model: its energy network, the tutorial's sampler with the profile's steps per update."""
    from . import ebm

    x_train = dataset.x_train[:profile.pick(quick=2048, full=None)]
    model = ebm.EnergyModel(generator=torch.Generator().manual_seed(args.seed)).to(device)
    sampler = ebm.Sampler(n_steps=profile.pick(quick=10, full=20, gpu=60))
    return ebm.fit(model, x_train, epochs=_epochs(args, profile, quick=2, full=4, gpu=60),
                   lr=profile.pick(quick=5e-4, full=5e-4, gpu=1e-4), sampler=sampler, **run)


_TRAIN = {"vae": _train_vae, "rbm": _train_rbm, "ebm": _train_ebm}
_CHECKPOINTS = {"vae": "vae_mlp_{profile}.pt", "rbm": "01_rbm_{profile}.pt", "ebm": "04_ebm_{profile}.pt"}  # notebooks'
