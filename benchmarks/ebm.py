"""Seconds per 1,000 image-steps of Langevin sampling on the energy network of 04_energy_based_model (128 chains of
28×28 images, 60 steps, the UvA tutorial's network and settings):

ours        genmodels.ebm.langevin_sample -> genmodels.langevin.ula with its projection, gradient clamp, last-state
            keeping and non-finite checks;
bound       the same network's forward pass plus the gradient with respect to the input, and nothing else;
baseline    a straightforward per-step loop in the tutorials' style: in-place noise, clamp, backward() into x.grad
            (the network's parameters frozen), gradient clamp, step, clamp.

Repetitions are interleaved and medians reported. Writes _build/bench/ebm.json. Targets (TARGETS, each printed as
met or not): ours / bound ≤ 1.15 and ours / baseline ≤ 1.05.
Run: `python benchmarks/ebm.py [--repeats 7] [--threads N]`.
"""

import statistics

import torch
from harness import Target, benchmark_device, interleave, parser, print_table, report_targets, write

from genmodels import ebm
from genmodels.device import describe

CHAINS, STEPS = 128, 60
TARGETS = (Target("ours / bound", "ours_over_bound", 1.15), Target("ours / baseline", "ours_over_baseline", 1.05))


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
    arguments = parser(__doc__, repeats=7, device=True)
    arguments.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = arguments.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = benchmark_device(args)
    model = ebm.EnergyModel(buffer_size=CHAINS, generator=torch.Generator().manual_seed(0)).to(device)
    x0 = model.buffer.clone()
    print(f"{CHAINS} chains of 28x28 images, {STEPS} steps, {describe(device)}, {args.repeats} interleaved repetitions")
    samplers = {"ours": ours, "bound": bound, "baseline": baseline}
    times = interleave({name: lambda rep, run=run: run(model, x0, rep) for name, run in samplers.items()},
                       args.repeats, device)
    per_1000 = {name: [t / (CHAINS * STEPS) * 1000 for t in seconds] for name, seconds in times.items()}
    medians = {name: statistics.median(t) for name, t in per_1000.items()}
    print_table("", [("sampler", 10), ("s / 1,000 image-steps", 23, ".4f"), ("ours / this", 13, ".3f")],
                {name: [medians[name], medians["ours"] / medians[name]] for name in per_1000}, per_1000, digits=4)
    print(times.state())
    result = {
        "ours_s": medians["ours"], "bound_s": medians["bound"], "baseline_s": medians["baseline"],
        "unit": "seconds per 1,000 image-steps", "ours_over_bound": medians["ours"] / medians["bound"],
        "ours_over_baseline": medians["ours"] / medians["baseline"], "repetitions": per_1000, "chains": CHAINS,
        "steps": STEPS, "device": describe(device), "torch": torch.__version__, "handoff_us": times.handoff_us,
    }
    report_targets(TARGETS, result)
    write(result, "ebm.json")


if __name__ == "__main__":
    main()
