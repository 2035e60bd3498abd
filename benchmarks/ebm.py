"""Seconds per 1,000 image-steps of Langevin sampling on the energy network of 04_energy_based_model (128 chains of
28×28 images, 60 steps, the UvA tutorial's network and settings):

ours        genmodels.ebm.langevin_sample -> genmodels.langevin.ula with its projection, gradient clamp, last-state
            keeping and non-finite checks;
bound       the same network's forward pass plus the gradient with respect to the input, and nothing else;
baseline    a straightforward per-step loop in the tutorials' style: in-place noise, clamp, backward() into x.grad
            (the network's parameters frozen), gradient clamp, step, clamp.

Repetitions are interleaved and medians reported. Writes _build/bench/ebm.json. Targets: ours <= 1.15 x bound and
<= 1.05 x baseline. Run: `python benchmarks/ebm.py [--reps 7] [--threads N]`.
"""

import argparse
import json
import statistics
import time

import torch

from genmodels import ebm
from genmodels.device import describe, get_device
from genmodels.paths import BUILD_DIR

CHAINS, STEPS = 128, 60
TARGETS = {"bound": 1.15, "baseline": 1.05}


def ours(model, x0, seed):
    return ebm.langevin_sample(model, x0, ebm.Sampler(n_steps=STEPS), seed=seed)


def bound(model, x0, seed):
    x = x0
    for _ in range(STEPS):
        x = x.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(model(x).sum(), x)
    return grad


def baseline(model, x0, seed):
    """The tutorials' loop (UvA tutorial 8, Sampler.generate_samples), with E in place of -E."""
    for p in model.parameters():
        p.requires_grad_(False)
    x = x0.clone().requires_grad_(True)
    noise = torch.randn(x.shape, device=x.device)
    for _ in range(STEPS):
        noise.normal_(0, 0.005)
        x.data.add_(noise.data)
        x.data.clamp_(min=-1.0, max=1.0)
        model(x).sum().backward()
        x.grad.data.clamp_(-0.03, 0.03)
        x.data.add_(-10 * x.grad.data)
        x.grad.detach_()
        x.grad.zero_()
        x.data.clamp_(min=-1.0, max=1.0)
    for p in model.parameters():
        p.requires_grad_(True)
    return x.detach()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--device", default=None)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = get_device(args.device, "full")
    model = ebm.EnergyModel(buffer_size=CHAINS, generator=torch.Generator().manual_seed(0)).to(device)
    x0 = model.buffer.clone()
    print(f"{CHAINS} chains of 28x28 images, {STEPS} steps, {describe(device)}, {args.reps} interleaved repetitions")
    runs = {"ours": ours, "bound": bound, "baseline": baseline}
    times = {name: [] for name in runs}
    for rep in range(args.reps + 1):  # the first repetition warms up and is not counted
        for name, run in runs.items():
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            run(model, x0, rep)
            if device.type == "cuda":
                torch.cuda.synchronize()
            if rep > 0:
                times[name].append((time.perf_counter() - start) / (CHAINS * STEPS) * 1000)
    medians = {name: statistics.median(t) for name, t in times.items()}
    print(f"\n{'sampler':<10}{'s / 1,000 image-steps':>23}{'ours / this':>13}   all repetitions")
    for name, t in times.items():
        print(f"{name:<10}{medians[name]:>23.4f}{medians['ours'] / medians[name]:>13.3f}   "
              + " ".join(f"{v:.4f}" for v in t))
    met = {name: medians["ours"] / medians[name] <= target for name, target in TARGETS.items()}
    for name, target in TARGETS.items():
        print(f"target ours <= {target} x {name}: {'met' if met[name] else 'NOT met'} "
              f"({medians['ours'] / medians[name]:.3f})")
    out = BUILD_DIR / "bench" / "ebm.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "ours_s": medians["ours"], "bound_s": medians["bound"], "baseline_s": medians["baseline"],
        "unit": "seconds per 1,000 image-steps", "ours_over_bound": medians["ours"] / medians["bound"],
        "ours_over_baseline": medians["ours"] / medians["baseline"], "targets": TARGETS, "targets_met": met,
        "repetitions": times, "chains": CHAINS, "steps": STEPS, "device": describe(device),
        "torch": torch.__version__,
    }, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
