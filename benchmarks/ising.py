"""Ising samplers at T_c: genmodels.ising's Metropolis against plain NumPy, Wolff against Metropolis, and threads.

Three tables from one run, repetitions interleaved and medians reported; writes _build/bench/ising.json.
Run: `python benchmarks/ising.py [--repeats 7] [--sweeps 50]`.

1. Spin updates per second, 64 lattices of 32×32:
   ours     genmodels.ising.metropolis, which runs its fast path genmodels.ising_fast on the CPU: int8 spins, one
            32-bit uniform per site per sweep (two from each 64-bit random word), the acceptance test as a threshold
            on s_i h_i (no exponential), on the device; as a notebook calls it (genmodels.device.threads_for picks
            the thread count: one for these 65,536-site ops), and with one thread set here (NumPy's single core,
            like for like);
   numpy    the textbook checkerboard sweep: float64 ±1 spins, neighbours by np.roll, acceptance u < np.exp(-ΔE/T),
            one random array (np.random.default_rng) per half-sweep.
   Both are exact Metropolis samplers of the same lattices. Target (TARGETS, printed as met or not): ours at least
   2.5× NumPy's spin updates per second.
2. Milliseconds per independent sample, the same lattices: a Metropolis sweep and a Wolff step (genmodels.ising.wolff)
   timed side by side, each times its τ from a pilot run of ising.sample (notebook 07 prints τ and the passes over
   the lattices that a step takes; this table gives their cost in time).
3. Threads by op size: a Metropolis sweep of lattices of growing size with one thread and with torch's count, beside
   what genmodels.device.threads_for chooses (one thread below SMALL_WORK site updates).
"""

import numpy as np
import torch
from harness import Target, benchmark_device, interleave, parser, report_targets, write

from genmodels import ising
from genmodels.device import SMALL_WORK, describe

N_LATTICES, L = 64, 32
T = ising.CRITICAL_TEMPERATURE
TARGETS = (Target("ours / numpy", "ours_over_numpy", 2.5, at_most=False),)


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
    arguments = parser(__doc__, repeats=7, device=True)
    arguments.add_argument("--sweeps", type=int, default=50, help="sweeps per timed repetition")
    arguments.add_argument("--pilot", type=int, default=400, help="pilot steps that measure each sampler's τ")
    args = arguments.parse_args()
    device = benchmark_device(args)
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

    # 2. Wolff against Metropolis per independent sample
    pilots = {method: ising.sample(L, T, N_LATTICES, n_samples=4, method=method, pilot=args.pilot, device=device)
              for method in ("metropolis", "wolff")}
    lattices = {method: run.spins[-1].clone() for method, run in pilots.items()}  # equilibrium states

    def step(method):
        def run(rep):
            if method == "wolff":
                lattices[method] = ising.wolff(lattices[method], T, 1, generator)
            else:
                lattices[method] = ising.metropolis(lattices[method], T, 1, generator)
        return run

    step_times = interleave({method: step(method) for method in pilots}, args.repeats * 5, device).medians()
    per_sample_ms = {method: 1000 * step_times[method] * pilots[method].tau for method in pilots}
    print(f"\n{'sampler':<12}{'ms per step':>12}{'tau (steps)':>13}{'passes per step':>17}"
          f"{'ms per independent sample':>27}")
    for method, run in pilots.items():
        print(f"{method:<12}{1000 * step_times[method]:>12.3f}{run.tau:>13.1f}{run.passes_per_step:>17.1f}"
              f"{per_sample_ms[method]:>27.2f}")
    print(f"wolff / metropolis per independent sample: {per_sample_ms['wolff'] / per_sample_ms['metropolis']:.2f}")

    # 3. threads by op size
    thread_rows = []
    if device.type == "cpu" and threads > 1:
        print(f"\n{'sites per op':>12}{'1 thread, µs/sweep':>20}{f'{threads} threads':>12}{'threads_for picks':>19}")
        for n_lattices, side in ((100, 8), (50, 16), (16, 32), (64, 32), (256, 32)):
            spins = {n: 2 * torch.randint(2, (n_lattices, side, side), dtype=torch.int8, device=device) - 1
                     for n in (1, threads)}

            def sweep(n, spins=spins):
                def run(rep):
                    torch.set_num_threads(n)
                    try:
                        spins[n] = ising._metropolis_sweeps(spins[n], T, args.sweeps, generator)  # threads as set
                    finally:
                        torch.set_num_threads(threads)
                return run

            medians = interleave({n: sweep(n) for n in (1, threads)}, args.repeats, device).medians()
            sites = n_lattices * side * side
            picks = 1 if sites < SMALL_WORK else threads
            row = {"sites": sites, "one_thread_us": 1e6 * medians[1] / args.sweeps,
                   "threads_us": 1e6 * medians[threads] / args.sweeps, "threads_for": picks}
            thread_rows.append(row)
            print(f"{sites:>12,}{row['one_thread_us']:>20.1f}{row['threads_us']:>12.1f}{picks:>19}")
    result = {
        "ours_per_s": per_s["ours"], "numpy_per_s": per_s["numpy"], "ours_over_numpy": per_s["ours"] / per_s["numpy"],
        "ours_1_thread_per_s": per_s.get("ours, 1 thread"), "repetitions_s": dict(times), "n_lattices": N_LATTICES,
        "L": L, "temperature": T, "sweeps_per_repetition": args.sweeps, "device": describe(device),
        "threads": threads, "torch": torch.__version__, "numpy": np.__version__, "handoff_us": times.handoff_us,
        "ms_per_step": {m: 1000 * t for m, t in step_times.items()}, "tau": {m: r.tau for m, r in pilots.items()},
        "passes_per_step": {m: r.passes_per_step for m, r in pilots.items()}, "ms_per_independent_sample":
        per_sample_ms, "threads_by_op_size": thread_rows, "small_work": SMALL_WORK,
    }
    report_targets(TARGETS, result)
    write(result, "ising.json")


if __name__ == "__main__":
    main()
