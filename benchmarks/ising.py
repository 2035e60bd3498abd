"""Metropolis spin updates per second, 64 lattices of 32×32 at T_c: genmodels.ising against plain NumPy.

ours     genmodels.ising.metropolis, which runs its fast path genmodels.ising_fast on the CPU: int8 spins, one
         32-bit uniform per site per sweep (two from each 64-bit random word), the acceptance test as a threshold on
         s_i h_i (no exponential), on the device; with torch's default threads, and with one thread (NumPy's single
         core, like for like);
numpy    the textbook checkerboard sweep: float64 ±1 spins, neighbours by np.roll, acceptance u < np.exp(-ΔE/T), one
         random array (np.random.default_rng) per half-sweep.

Both are exact Metropolis samplers of the same lattices. Repetitions are interleaved and medians reported. Writes
_build/bench/ising.json. Run: `python benchmarks/ising.py [--repeats 7] [--sweeps 50]`.
"""

import numpy as np
import torch
from harness import interleave, parser, write

from genmodels import ising
from genmodels.device import describe, get_device

N_LATTICES, L = 64, 32
T = ising.CRITICAL_TEMPERATURE


def numpy_sweeps(s: np.ndarray, sweeps: int, rng: np.random.Generator) -> np.ndarray:
    i, j = np.indices((L, L))
    colours = [(i + j) % 2 == c for c in (0, 1)]
    for _ in range(sweeps):
        for colour in colours:
            h = np.roll(s, 1, 1) + np.roll(s, -1, 1) + np.roll(s, 1, 2) + np.roll(s, -1, 2)
            u = rng.random(s.shape)
            flip = (u < np.exp(-2 * s * h / T)) & colour
            s = np.where(flip, -s, s)
    return s


def main():
    arguments = parser(__doc__, repeats=7)
    arguments.add_argument("--sweeps", type=int, default=50, help="sweeps per timed repetition")
    arguments.add_argument("--device", default=None)
    args = arguments.parse_args()
    device = get_device(args.device, "full")
    threads = torch.get_num_threads()
    rng = np.random.default_rng(0)
    start = rng.choice([-1.0, 1.0], size=(N_LATTICES, L, L))
    state = {"numpy": start, "ours": torch.as_tensor(start, dtype=torch.int8, device=device)}
    state["ours, 1 thread"] = state["ours"].clone()
    generator = torch.Generator(device=device).manual_seed(0)

    def ours(s, n_threads=threads):
        torch.set_num_threads(n_threads)
        try:
            return ising.metropolis(s, T, args.sweeps, generator)
        finally:
            torch.set_num_threads(threads)

    samplers = {"numpy": lambda s: numpy_sweeps(s, args.sweeps, rng), "ours": ours}
    if device.type == "cpu" and threads > 1:
        samplers["ours, 1 thread"] = lambda s: ours(s, 1)

    def advance(name):  # each repetition continues that sampler's own chains
        def run(rep):
            state[name] = samplers[name](state[name])
        return run

    times = interleave({name: advance(name) for name in samplers}, args.repeats, device)
    per_s = {name: N_LATTICES * L * L * args.sweeps / median for name, median in times.medians().items()}
    print(f"{N_LATTICES} lattices of {L}×{L} at T_c, {args.sweeps} sweeps per repetition, {describe(device)}, "
          f"{args.repeats} interleaved repetitions")
    print(f"\n{'sampler':<16}{'spin updates/s':>16}{'x numpy':>9}   |m| after the run")
    for name, rate in per_s.items():
        spins = state[name].cpu().numpy() if torch.is_tensor(state[name]) else state[name]
        m = np.abs(spins.mean(axis=(1, 2), dtype=float)).mean()  # the same for both: they sample one distribution
        print(f"{name:<16}{rate:>16.3g}{rate / per_s['numpy']:>9.2f}   {m:.3f}")
    print(times.state())
    write({
        "ours_per_s": per_s["ours"], "numpy_per_s": per_s["numpy"], "ours_over_numpy": per_s["ours"] / per_s["numpy"],
        "ours_1_thread_per_s": per_s.get("ours, 1 thread"), "repetitions_s": dict(times), "n_lattices": N_LATTICES,
        "L": L, "temperature": T, "sweeps_per_repetition": args.sweeps, "device": describe(device),
        "threads": threads, "torch": torch.__version__, "numpy": np.__version__, "handoff_us": times.handoff_us,
    }, "ising.json")


if __name__ == "__main__":
    main()
