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
import re
import sys
import textwrap
from pathlib import Path

__all__ = ["main", "command", "parser", "MODELS", "EXIT_CODES"]

MODELS = ("vae", "rbm", "ebm")
# What the command's exit status says: 2 is argparse's for bad usage.
EXIT_CODES = {"trained": 0, "error": 1, "usage": 2, "checkpoint refused": 3, "diverged": 4, "interrupted": 130}


def parser() -> argparse.ArgumentParser:
    """The command line's parser (`python -m genmodels --help`)."""
    return _parsers()[0]


def _parsers() -> tuple[argparse.ArgumentParser, argparse.ArgumentParser]:
    """The top-level parser and its `train` subcommand's, whose usage line a mistake in train's flags shows."""
    top = argparse.ArgumentParser(prog="python -m genmodels", description="The course's models from the command line.")
    commands = top.add_subparsers(dest="command", required=True, metavar="train")
    train = commands.add_parser("train", usage="%(prog)s {vae,rbm,ebm} [--epochs N] [--lr LR] [...] (--help: "
                                "all flags)", help="train a model with its notebook's settings (under torchrun: on N "
                                "processes)", description=__doc__.split("\n\n")[2],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    train.add_argument("model", choices=MODELS, help="which notebook's model")
    train.add_argument("--epochs", type=int, default=None, help="epochs in all, counting those a checkpoint holds "
                       "(default: the notebook's, for the profile and device)")
    train.add_argument("--profile", choices=("quick", "full"), default=None,
                       help="quick or full (default: GENMODELS_PROFILE, else full)")
    train.add_argument("--device", default=None, help="cuda, mps, cpu or auto (default: GENMODELS_DEVICE, else the "
                       "profile's; under torchrun each process takes its own GPU)")
    train.add_argument("--lr", type=float, default=None,
                       help="the learning rate (default: the notebook's); after a divergence, a lower one resumes")
    train.add_argument("--seed", type=int, default=0, help="the seed of every random draw (default: 0)")
    train.add_argument("--checkpoint", type=Path, default=None,
                       help="the checkpoint file (default: the notebook's, under _build/checkpoints/)")
    train.add_argument("--no-resume", dest="resume", action="store_false",
                       help="start afresh instead of resuming from the checkpoint")
    train.add_argument("--traceback", action="store_true", help="on an error, show Python's traceback, not one message")
    train.epilog = ("exit status: " + ", ".join(f"{code} {what}" for what, code in EXIT_CODES.items()) + ".")
    return top, train


def main(argv: list[str] | None = None):
    """Parse the command line and train; returns the History (on every rank)."""
    args = parser().parse_args(argv)
    if args.epochs is not None and args.epochs < 0:
        _parsers()[1].error(f"--epochs must be 0 or more, got {args.epochs}")
    if args.lr is not None and not args.lr > 0:
        _parsers()[1].error(f"--lr must be a number above 0, got {args.lr}")
    import genmodels

    from . import data, distributed, runs

    profile, device = genmodels.setup(args.profile, args.device, args.seed)
    world = distributed.from_environment()
    dataset = data.load_data(profile, verbose=world.leader)
    settings = runs.settings(_RUNS[args.model], profile, checkpoint=args.checkpoint, epochs=args.epochs, lr=args.lr)
    if world.leader:
        print(settings)
    _, history = runs.trained(dataset, settings, device, seed=args.seed, resume=None if args.resume else False)
    if world.leader:
        last = ", ".join(f"{name} {value:.4g}" for name, value in history.last().items())
        print(f"{args.model}: {history.epochs} epoch{'s' * (history.epochs != 1)}"
              + (f"; last: {last}" if last else "") + f"; checkpoint {settings.checkpoint}")
    return history


# The command line trains the course's runs (genmodels.runs), where their settings and checkpoints live; the models
# it offers and the runs they are.
_RUNS = {"vae": "vae_mlp", "rbm": "rbm", "ebm": "ebm"}


def command(argv: list[str] | None = None) -> int:
    """`python -m genmodels`: main, with an error told in one short message in the command line's words (flags, not
    Python arguments) and an exit status from EXIT_CODES; --traceback shows Python's traceback instead."""
    from .training import CheckpointRefused, TrainingDiverged

    words = sys.argv[1:] if argv is None else argv
    try:
        main(argv)
    except (Exception, KeyboardInterrupt) as err:
        if "--traceback" in words:
            raise
        kind = ("diverged" if isinstance(err, TrainingDiverged) else
                "checkpoint refused" if isinstance(err, CheckpointRefused) else
                "interrupted" if isinstance(err, KeyboardInterrupt) else "error")
        message = in_flags(str(err)) or type(err).__name__
        lines = textwrap.wrap(f"python -m genmodels: {kind}: {message}", width=100, subsequent_indent="  ",
                              break_on_hyphens=False)
        print("\n".join(lines[:4] + (["  ... (--traceback shows all of it)"] if len(lines) > 4 else [])),
              file=sys.stderr)
        return EXIT_CODES[kind]
    return EXIT_CODES["trained"]


# The package's messages advise Python arguments (they are written for notebooks); the command's flags instead.
_FLAGS = [
    (r"run the same call again: it trains from these weights, counting epochs from 1 \(resume=True would resume "
     r"from epoch (\d+) in ([^)]+)\)", r"run the command again without --no-resume: it resumes from epoch \1 in \2"),
    (r"With resume=False the same call starts again at epoch 1: pass resume=True to resume",
     "With --no-resume the command starts again at epoch 1: leave it out to resume"),
    (r"resume=False \(--no-resume on the command line\)", "--no-resume"),
    (r"resume=False", "--no-resume"),
    (r"the same call", "the same command"),
    (r"lower it and run", "pass a lower --lr and run"),
    (r"pass a smaller lr", "pass a smaller --lr"),
    (r"pass device=None or 'auto'", "pass --device auto"),
    (r"pass device='auto' or device='cpu' \(device=None would read", "pass --device auto or --device cpu (no --device "
     "would read"),
]


def in_flags(message: str) -> str:
    """A package message with its advice in the command line's flags (--no-resume, --lr, --device)."""
    for pattern, replacement in _FLAGS:
        message = re.sub(pattern, replacement, message)
    return message.strip()
