"""Seconds per epoch of the 784-400-20 VAE (60,000 images, batch 128): the course's loop against a DataLoader and a
bare loop; then the convolutional VAE of notebook 05 against its own bare loop, and its arithmetic rate.

ours         genmodels.vae.fit -> genmodels.training.train, with its per-epoch progress line, metrics (reconstruction,
             KL) and an atomic checkpoint after the epoch;
dataloader   the usual tutorial pipeline: a DataLoader over a TensorDataset, shuffled, batch 128;
bound        a bare loop: forward, backward and Adam over slices of a permutation of a resident tensor.

All three compute the same loss (-ELBO, dynamic binarisation, one reparameterised sample, closed-form KL), so the
differences are the loops' overheads.

The convolutional VAE (keras.io's layers, dense 256, latent 20, as notebook 05 trains it) on --conv-images images:
ours (vae.fit) against the bound (forward, backward and Adam on slices of the resident tensor), and the GFLOP/s the
epoch achieves, its FLOPs counted by torch.utils.flop_counter (convolutions and products, forward and backward),
beside the GFLOP/s of a 1024³ float32 product timed in the same run (harness.product_gflops, which rbm.py's
products use too). Target (TARGETS, printed as met or not): the convolutional VAE's epoch by vae.fit at most 1.05×
its bare loop's.

Repetitions are interleaved and medians reported. Writes _build/bench/vae.json.
Run: `python benchmarks/vae.py [--repeats 5] [--conv-images 6000]`.
"""

import tempfile
from pathlib import Path

import torch
from harness import Target, benchmark_device, interleave, parser, print_table, product_gflops, report_targets, write
from torch.utils.data import DataLoader, TensorDataset
from torch.utils.flop_counter import FlopCounterMode

from genmodels import vae
from genmodels.data import binarize_stochastic, load_data
from genmodels.device import describe

BATCH = 128
TARGETS = (Target("convolutional VAE: ours / bound", "conv.ours_over_bound", 1.05),)


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


def fresh_model(device, rep, make=vae.mlp_vae):
    torch.manual_seed(rep)
    return make().to(device).train()


def conv_model():
    return vae.conv_vae(latent_dim=20, hidden=256)  # notebook 05's


def flops_per_image(model, x) -> float:
    """FLOPs of one training step per image (forward and backward; Adam's elementwise work is not counted)."""
    with FlopCounterMode(display=False) as counter:
        step(model, torch.optim.Adam(model.parameters(), lr=1e-3), x[:BATCH], torch.Generator(x.device))
    return counter.get_total_flops() / BATCH


def main():
    arguments = parser(__doc__, repeats=5, device=True)
    arguments.add_argument("--conv-images", type=int, default=6000, help="images per convolutional VAE epoch")
    args = arguments.parse_args()
    device = benchmark_device(args)
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
    print_table("", [("loop", 12), ("median s/epoch", 16, ".2f"), ("x bare loop", 13, ".2f")],
                {name: [medians[name], medians[name] / medians["bound"]] for name in times}, times, digits=2)
    print(times.state())

    x_conv = x[:args.conv_images]
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = Path(tmp) / "vae_conv_bench.pt"
        conv_runs = {"ours": lambda rep, model: ours_epoch(model, x_conv, rep, checkpoint),
                     "bound": lambda rep, model: bound_epoch(model, x_conv, rep)}
        conv_times = interleave(conv_runs, args.repeats, device,
                                prepare=lambda name, rep: fresh_model(device, rep, conv_model))
    conv_medians = conv_times.medians()
    flops = flops_per_image(fresh_model(device, 0, conv_model), x_conv)
    product = product_gflops(1024, 1024, 1024, device)
    rates = {name: flops * len(x_conv) / t / 1e9 for name, t in conv_medians.items()}
    print_table(f"convolutional VAE, {len(x_conv):,} images an epoch, {flops / 1e6:.0f} MFLOP per image (forward and "
                "backward)", [("loop", 12), ("median s/epoch", 16, ".2f"), ("x bare loop", 13, ".2f"),
                              ("GFLOP/s", 10, ".1f")],
                {name: [conv_medians[name], conv_medians[name] / conv_medians["bound"], rates[name]]
                 for name in conv_times}, conv_times, digits=2)
    print(f"a 1024³ float32 product in the same run: {product:.0f} GFLOP/s; the epoch runs at "
          f"{rates['ours'] / product:.2f} of it")
    print(conv_times.state())
    result = {
        "ours_s": medians["ours"], "dataloader_s": medians["dataloader"], "bound_s": medians["bound"],
        "ours_over_bound": medians["ours"] / medians["bound"], "repetitions": dict(times), "dataset": data.name,
        "n_images": len(x), "batch_size": BATCH, "device": describe(device), "torch": torch.__version__,
        "handoff_us": times.handoff_us,
        "conv": {"ours_s": conv_medians["ours"], "bound_s": conv_medians["bound"],
                 "ours_over_bound": conv_medians["ours"] / conv_medians["bound"], "n_images": len(x_conv),
                 "flops_per_image": flops, "gflops": rates, "product_gflops": product,
                 "repetitions": dict(conv_times), "handoff_us": conv_times.handoff_us},
    }
    report_targets(TARGETS, result)
    write(result, "vae.json")


if __name__ == "__main__":
    main()
