"""Seconds per epoch of the 784-400-20 VAE (60,000 images, batch 128): the course's loop against a DataLoader and a
bare loop.

ours         genmodels.vae.fit -> genmodels.training.train, with its per-epoch progress line, metrics (reconstruction,
             KL) and an atomic checkpoint after the epoch;
dataloader   the usual tutorial pipeline: a DataLoader over a TensorDataset, shuffled, batch 128;
bound        a bare loop: forward, backward and Adam over slices of a permutation of a resident tensor.

All three compute the same loss (-ELBO, dynamic binarisation, one reparameterised sample, closed-form KL), so the
differences are the loops' overheads. Repetitions are interleaved and medians reported. Writes
_build/bench/vae.json. Run: `python benchmarks/vae.py [--repeats 5]`.
"""

import tempfile
from pathlib import Path

import torch
from harness import interleave, parser, write
from torch.utils.data import DataLoader, TensorDataset

from genmodels import vae
from genmodels.data import binarize_stochastic, load_data
from genmodels.device import describe, get_device

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


def fresh_model(device, rep):
    torch.manual_seed(rep)
    return vae.mlp_vae().to(device).train()


def main():
    arguments = parser(__doc__, repeats=5)
    arguments.add_argument("--device", default=None)
    args = arguments.parse_args()
    device = get_device(args.device, "full")
    data = load_data("full", verbose=False)
    x = torch.as_tensor(data.x_train[:60_000], device=device)
    print(f"{data.name}, {len(x)} images, batch {BATCH}, {describe(device)}, {args.repeats} interleaved repetitions")
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = Path(tmp) / "vae_bench.pt"
        runs = {"ours": lambda rep, model: ours_epoch(model, x, rep, checkpoint),
                "dataloader": lambda rep, model: dataloader_epoch(model, x, rep),
                "bound": lambda rep, model: bound_epoch(model, x, rep)}
        times = interleave(runs, args.repeats, device, prepare=lambda name, rep: fresh_model(device, rep))
    medians = times.medians()
    print(f"\n{'loop':<12}{'median s/epoch':>16}{'x bare loop':>13}   all repetitions")
    for name, t in times.items():
        print(f"{name:<12}{medians[name]:>16.2f}{medians[name] / medians['bound']:>13.2f}   "
              + " ".join(f"{v:.2f}" for v in t))
    print(times.state())
    write({
        "ours_s": medians["ours"], "dataloader_s": medians["dataloader"], "bound_s": medians["bound"],
        "ours_over_bound": medians["ours"] / medians["bound"], "repetitions": dict(times), "dataset": data.name,
        "n_images": len(x), "batch_size": BATCH, "device": describe(device), "torch": torch.__version__,
        "handoff_us": times.handoff_us,
    }, "vae.json")


if __name__ == "__main__":
    main()
