"""`python -m genmodels train vae|rbm|ebm`: a notebook's training run from the command line, on one process or many.

    python -m genmodels train vae --epochs 10                      # one process: the notebook's run, as a script
    torchrun --nproc-per-node 2 -m genmodels train vae --epochs 10   # the same on 2 processes (GPUs, or CPU cores)

Each model is a run of genmodels.runs, the one home of its settings: it trains with the settings of the notebook that
teaches it (for the profile and device) and checkpoints where that notebook does, under _build/checkpoints/. By the
checkpoint rule (genmodels.runs), a full-profile notebook run afterwards reads the trained model, and the command
resumes from a checkpoint with the same settings (a checkpoint written by N processes is resumed by N: see
genmodels.distributed). It prints the settings it uses first.

    vae   05_vae_pytorch's MLP VAE (784-400-20), Adam, dynamic binarisation, test ELBO each epoch: vae_mlp_<profile>.pt
    rbm   01_rbm_pytorch's RBM (784 visible units), PCD, test pseudo-likelihood each epoch: 01_rbm_<profile>.pt
    ebm   04_energy_based_model's energy network and replay buffer, Langevin negatives: 04_ebm_<profile>.pt
"""

from __future__ import annotations

import argparse
from pathlib import Path

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

    from . import data, distributed, runs

    profile, device = genmodels.setup(args.profile, args.device, args.seed)
    world = distributed.from_environment()
    dataset = data.load_data(profile, verbose=world.leader)
    settings = runs.settings(_RUNS[args.model], profile, checkpoint=args.checkpoint, epochs=args.epochs)
    if world.leader:
        print(settings)
    _, history = runs.trained(dataset, settings, device, seed=args.seed, resume=None if args.resume else False)
    if world.leader:
        print(f"{args.model}: {history.epochs} epochs; last: "
              + ", ".join(f"{name} {value:.4g}" for name, value in history.last().items())
              + f"; checkpoint {settings.checkpoint}")
    return history


# The command line trains the course's runs (genmodels.runs), where their settings and checkpoints live; the models
# it offers and the runs they are.
_RUNS = {"vae": "vae_mlp", "rbm": "rbm", "ebm": "ebm"}
