"""Seconds per epoch of the 784-400-20 VAE (60,000 images, batch 128): the course's loop against a DataLoader and a
bare loop.

ours         genmodels.vae.fit -> genmodels.training.train, with its per-epoch progress line, metrics (reconstruction,
             KL) and an atomic checkpoint after the epoch;
dataloader   the usual tutorial pipeline: a DataLoader over a TensorDataset, shuffled, batch 128;
bound        a bare loop: forward, backward and Adam over slices of a permutation of a resident tensor.

All three compute the same loss (-ELBO, dynamic binarisation, one reparameterised sample, closed-form KL), so the
differences are the loops' overheads. Repetitions are interleaved and medians reported. Writes
_build/bench/vae.json. Run: `python benchmarks/vae.py [--reps 5]`.
"""

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader, TensorDataset

from genmodels import vae
from genmodels.data import binarize_stochastic, load_data
from genmodels.device import describe, get_device
from genmodels.paths import BUILD_DIR

BATCH = 128


def step(model, optimizer, x, generator):
    reconstruction, kl = vae.elbo_terms(model, binarize_stochastic(x, generator=generator))
    loss = (kl - reconstruction).mean()
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def bound_epoch(model, x, seed):
    optimizer, generator = torch.optim.Adam(model.parameters(), lr=1e-3), torch.Generator(x.device).manual_seed(seed)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed)).to(x.device)
    for idx in order.split(BATCH):
        step(model, optimizer, x[idx], generator)


def dataloader_epoch(model, x, seed):
    optimizer, generator = torch.optim.Adam(model.parameters(), lr=1e-3), torch.Generator(x.device).manual_seed(seed)
    loader = DataLoader(TensorDataset(x), batch_size=BATCH, shuffle=True,
                        generator=torch.Generator().manual_seed(seed))
    for (xb,) in loader:
        step(model, optimizer, xb, generator)


def ours_epoch(model, x, seed, checkpoint):
    vae.fit(model, x, epochs=1, batch_size=BATCH, checkpoint=checkpoint, resume=False, progress="plain", seed=seed)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--device", default=None)
    args = parser.parse_args()
    device = get_device(args.device, "full")
    data = load_data("full", verbose=False)
    x = torch.as_tensor(data.x_train[:60_000], device=device)
    print(f"{data.name}, {len(x)} images, batch {BATCH}, {describe(device)}, {args.reps} interleaved repetitions")
    times = {"ours": [], "dataloader": [], "bound": []}
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = Path(tmp) / "vae_bench.pt"
        runs = {"ours": lambda m, s: ours_epoch(m, x, s, checkpoint),
                "dataloader": lambda m, s: dataloader_epoch(m, x, s),
                "bound": lambda m, s: bound_epoch(m, x, s)}
        for rep in range(args.reps + 1):  # the first repetition warms up and is not counted
            for name, run in runs.items():
                torch.manual_seed(rep)
                model = vae.mlp_vae().to(device)
                model.train()
                if device.type == "cuda":
                    torch.cuda.synchronize()
                start = time.perf_counter()
                run(model, rep)
                if device.type == "cuda":
                    torch.cuda.synchronize()
                if rep > 0:
                    times[name].append(time.perf_counter() - start)
    medians = {name: statistics.median(t) for name, t in times.items()}
    print(f"\n{'loop':<12}{'median s/epoch':>16}{'x bare loop':>13}   all repetitions")
    for name, t in times.items():
        print(f"{name:<12}{medians[name]:>16.2f}{medians[name] / medians['bound']:>13.2f}   "
              + " ".join(f"{v:.2f}" for v in t))
    out = BUILD_DIR / "bench" / "vae.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "ours_s": medians["ours"], "dataloader_s": medians["dataloader"], "bound_s": medians["bound"],
        "ours_over_bound": medians["ours"] / medians["bound"], "repetitions": times, "dataset": data.name,
        "n_images": len(x), "batch_size": BATCH, "device": describe(device), "torch": torch.__version__,
    }, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
