"""One epoch of CD-1 on 60,000 binary images, 784 visible × 500 hidden, batch 100: genmodels.rbm (which trains
through genmodels.rbm_fast with the kernels rbm_fast.choice measured, printed above the table) against
scikit-learn's BernoulliRBM (float32 and float64 input), beside the best rate of the matrix products timed in the
same run.

FLOPs: 5 matrix products of 2·B·V·H per CD-1 batch (v·W, h·Wᵀ, v⁻·W, and the two statistics vᵀp(h|v)), 235 GFLOP
per epoch. The products are timed two ways: torch.mm on the RBM's three shapes and a 1024² product, and the
epoch's five products alone (computed as rbm_fast computes them, with no sampling or updates: the ceiling of our
loop; once more with addmm then sigmoid for the conditionals, to show what the fused product gains). The peak is
the best of these (medians over repeats), so our fraction of it cannot pass 100 %; the CPU's theoretical fp32 peak
is printed beside it. Targets (TARGETS, each printed as met or not): fraction of peak ≥ 0.75 and speed-up over
scikit-learn float32 ≥ 1.4.
Repeats are interleaved and medians reported; core_handoff_us tells the machine's state. Writes _build/bench/rbm.json.

--compare REV times one epoch of rbm.fit with the package at git revision REV (a temporary git worktree) and with
the working tree, in alternating subprocesses, and reports each pair's ratio; target (COMPARE_TARGETS): median
ratio ≤ 1.03. Writes
_build/bench/rbm_compare.json. How to read the tables, and figures seen: benchmarks/README.md.

    python benchmarks/rbm.py [--repeats 3] [--compare REV [--pairs 5]]
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from harness import Target, core_handoff_us, parser, product_gflops, report_targets, training_images, write

import genmodels
from genmodels import rbm

V, H, B = 784, 500, 100
MM_SHAPES = [(B, V, H), (B, H, V), (V, B, H), (1024, 1024, 1024)]  # m, k, n: v·W, h·Wᵀ, vᵀp(h|v), and a large one
REPO = Path(__file__).resolve().parents[1]
TARGETS = (Target("fraction of peak", "fraction_of_peak", 0.75, at_most=False),
           Target("speed-up over sklearn float32", "speedup_vs_sklearn", 1.4, at_most=False))
COMPARE_TARGETS = (Target("median ratio working tree / REV", "median_ratio", 1.03),)


def matmul_rates(seconds=0.3) -> dict:
    """The best GFLOP/s of torch.mm (fp32) in three tries, for each shape m×k×n of MM_SHAPES."""
    return {f"torch.mm {m}x{k}x{n}": product_gflops(m, k, n, seconds=seconds) for m, k, n in MM_SHAPES}


def theoretical_peak():
    """The CPU's fp32 peak, threads × clock × lanes × 2 (an FMA is two FLOPs) × 2 FMA units (assumed: x86 server
    cores since Haswell and Zen 2 have two), and how it was read; (None, why not) where it cannot be read."""
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
    except OSError:
        return None, "no /proc/cpuinfo to read the vector width and clock from"
    flags = set(re.search(r"^flags\s*:(.*)$", cpuinfo, re.M).group(1).split()) if "flags" in cpuinfo else set()
    isa, lanes = ("AVX-512", 16) if "avx512f" in flags else ("AVX2", 8) if {"avx2", "fma"} <= flags else (None, 0)
    max_freq = Path("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq")
    if max_freq.exists():  # what lscpu reports as "CPU max MHz"
        ghz, clock = int(max_freq.read_text()) / 1e6, "cpuinfo_max_freq"
    elif mhz := re.search(r"^cpu MHz\s*:\s*([\d.]+)", cpuinfo, re.M):
        ghz, clock = float(mhz.group(1)) / 1e3, "/proc/cpuinfo cpu MHz, the current clock (turbo may be faster)"
    else:
        ghz, clock = None, None
    if not (isa and ghz):
        return None, "could not read " + ("the clock" if isa else "an FMA vector width (avx512f or avx2+fma)")
    threads = torch.get_num_threads()
    return (threads * ghz * lanes * 2 * 2, f"{threads} threads × {ghz:.2f} GHz × {lanes * 4} FLOP/cycle ({isa}: "
            f"{lanes} lanes × 2 (FMA) × 2 FMA units, assumed); clock from {clock}")


def time_products_alone(x: torch.Tensor, fused: bool = True) -> float:
    """The epoch's matrix products and nothing else, computed as rbm_fast computes them (the three conditionals
    with linear_sigmoid, the two statistics with torch.addmm), with the same shapes, data and batches as CD-1: the
    ceiling of our loop. fused=False computes the conditionals with addmm then sigmoid."""
    from genmodels.rbm_fast import linear_sigmoid  # here, not above: --compare runs this file with older packages

    W, c, b, dW = torch.randn(V, H) * 0.01, torch.zeros(H), torch.zeros(V), torch.zeros(V, H)
    conditional = linear_sigmoid if fused else lambda x, weight, bias: torch.addmm(bias, x, weight.t()).sigmoid_()
    start = time.perf_counter()
    with torch.no_grad():
        for idx in torch.randperm(len(x)).split(B)[: len(x) // B]:
            v = x.index_select(0, idx)
            ph = conditional(v, W.t(), c)
            v_neg = conditional(ph, W, b)
            ph_neg = conditional(v_neg, W.t(), c)
            torch.addmm(dW, v.t(), ph, beta=0.9, out=dW)
            torch.addmm(dW, v_neg.t(), ph_neg, alpha=-1.0, out=dW)
    return time.perf_counter() - start


def time_ours(x: torch.Tensor) -> float:
    model = rbm.RBM(V, H, generator=torch.Generator().manual_seed(0))
    start = time.perf_counter()
    rbm.fit(model, x, epochs=1, batch_size=B, lr=0.05, progress="none", init_bias=True)
    return time.perf_counter() - start


def time_sklearn(x: np.ndarray) -> float:
    from sklearn.neural_network import BernoulliRBM

    model = BernoulliRBM(n_components=H, batch_size=B, n_iter=1, learning_rate=0.05, random_state=0)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(x)
    return time.perf_counter() - start


def benchmark(repeats: int) -> None:
    from genmodels import rbm_fast  # here, not above: --compare runs this file with older packages

    dataset, x = training_images()
    kernels = rbm_fast.choice(rbm.RBM(V, H), B)  # measured (or read from the cache) before any epoch is timed
    x32, x64, xt = x.astype(np.float32), x.astype(np.float64), torch.from_numpy(x.astype(np.float32))
    flop = 5 * 2 * B * V * H * (len(x) // B)
    runs = {k: [] for k in ("ours", "products", "products_plain", "sklearn", "sklearn_f64", "mm", "handoff")}
    for _ in range(repeats):  # interleaved, so that drifts in machine load hit every contestant alike
        runs["mm"].append(matmul_rates())
        before = core_handoff_us()
        runs["ours"].append(time_ours(xt))
        runs["handoff"].append((before, core_handoff_us()))  # the machine may change state in between
        runs["products"].append(time_products_alone(xt))
        runs["products_plain"].append(time_products_alone(xt, fused=False))
        runs["sklearn"].append(time_sklearn(x32))
        runs["sklearn_f64"].append(time_sklearn(x64))
    med = {k: statistics.median(v) for k, v in runs.items() if k not in ("mm", "handoff")}
    rows = [("genmodels.rbm", "ours"), ("its 5 products alone", "products"), ("  with addmm, sigmoid",
            "products_plain"), ("sklearn float32", "sklearn"), ("sklearn float64", "sklearn_f64")]
    gflops = {name: flop / med[key] / 1e9 for name, key in rows}
    products = {name: gflops[name] for name in ("its 5 products alone", "  with addmm, sigmoid")}
    products |= {shape: statistics.median(r[shape] for r in runs["mm"]) for shape in runs["mm"][0]}
    best = max(products, key=products.get)
    peak, (theory, how) = products[best], theoretical_peak()
    fraction, speedup = gflops["genmodels.rbm"] / peak, med["sklearn"] / med["ours"]
    best_by_repeat = [max(*mm.values(), flop / p / 1e9, flop / q / 1e9)
                      for mm, p, q in zip(runs["mm"], runs["products"], runs["products_plain"], strict=True)]

    print(f"CD-1, one epoch of {len(x):,} {dataset} images, {V}x{H}, batch {B}, {torch.get_num_threads()} threads, "
          f"median of {repeats} ({flop / 1e9:.0f} GFLOP)")
    print(kernels)
    print(f"{'':26}{'seconds':>8}{'GFLOP/s':>9}")
    for name, key in rows:
        print(f"{name:26}{med[key]:8.2f}{gflops[name]:9.0f}")
    for shape in runs["mm"][0]:
        print(f"{shape:26}{'':8}{products[shape]:9.0f}")
    print(f"{'peak: best product':26}{'':8}{peak:9.0f}  ({best.strip()})")
    print(f"{'theoretical fp32 peak':26}{'':8}" + (f"{theory:9.0f}  ({how})" if theory else f"{'-':>9}  ({how})"))
    print("genmodels.rbm by repeat, fraction of that repeat's best product (handoff before/after): " + ", ".join(
        f"{flop / t / 1e9 / best:.0%} ({before:.0f}/{after:.0f} µs)"
        for t, best, (before, after) in zip(runs["ours"], best_by_repeat, runs["handoff"], strict=True)))
    result = {"dataset": dataset, "n_images": len(x), "threads": torch.get_num_threads(), "repeats": repeats,
              "kernels": str(kernels), "kernel_seconds": kernels.seconds,
              "ours_s": med["ours"], "sklearn_s": med["sklearn"], "sklearn_f64_s": med["sklearn_f64"],
              "products_alone_s": med["products"], "products_plain_s": med["products_plain"],
              "gflops": gflops["genmodels.rbm"], "product_gflops": products, "peak_gflops": peak,
              "peak_is": best.strip(), "fraction_of_peak": fraction, "speedup_vs_sklearn": speedup,
              "theoretical_peak_gflops": theory, "theoretical_peak_how": how, "runs": runs}
    report_targets(TARGETS, result)
    write(result, "rbm.json")


# --- --compare REV: the same epoch with the package at another revision, in alternating subprocesses -------------


def one_epoch(images: str) -> None:
    """In a subprocess: one CD-1 epoch of rbm.fit on the images saved in `images`, after imports, loading and a
    short warm-up (so start-up is not timed); prints seconds, handoffs and which genmodels was imported, as JSON."""
    x = torch.from_numpy(np.load(images).astype(np.float32))
    rbm.fit(rbm.RBM(V, H), x[:1000], epochs=1, batch_size=B, lr=0.05, progress="none")  # first-call costs, untimed
    before = core_handoff_us()
    seconds = time_ours(x)
    print(json.dumps({"seconds": seconds, "handoff": [before, core_handoff_us()], "genmodels": genmodels.__file__}))


def run_epoch(src: Path, images: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(src)}
    done = subprocess.run([sys.executable, __file__, "--one-epoch", str(images)], env=env, check=True,
                          capture_output=True, text=True)
    result = json.loads(done.stdout.splitlines()[-1])
    if not Path(result["genmodels"]).resolve().is_relative_to(src.resolve()):
        raise SystemExit(f"the subprocess meant to run {src} imported genmodels from {result['genmodels']}")
    return result


def compare(rev: str, pairs: int) -> None:
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", rev], check=True, capture_output=True,
                            text=True).stdout.strip()
    dataset, x = training_images()
    with tempfile.TemporaryDirectory() as tmp:
        tree, images = Path(tmp) / "tree", Path(tmp) / "images.npy"
        np.save(images, x.astype(np.uint8))
        git = ["git", "-C", str(REPO), "worktree"]
        subprocess.run([*git, "add", "--quiet", "--detach", str(tree), commit], check=True)
        try:
            srcs = {rev: tree / "src", "working tree": REPO / "src"}
            results = []
            for i in range(pairs):  # the order alternates, so a drift in the machine's state hits both alike
                order = list(srcs) if i % 2 == 0 else list(srcs)[::-1]
                results.append({"first": order[0]} | {name: run_epoch(srcs[name], images) for name in order})
        finally:
            subprocess.run([*git, "remove", "--force", str(tree)], check=True)
    ratios = [r["working tree"]["seconds"] / r[rev]["seconds"] for r in results]
    median = statistics.median(ratios)

    print(f"CD-1, one epoch of {len(x):,} {dataset} images by rbm.fit: the working tree against {rev} ({commit}), "
          f"{pairs} pairs of subprocesses, {torch.get_num_threads()} threads")
    print(f"{'pair':<6}{'first':<14}{rev + ' s':>12}{'working s':>11}{'ratio':>8}   handoff µs before/after: "
          f"{rev}, working")
    for i, (r, ratio) in enumerate(zip(results, ratios, strict=True), 1):
        a, b = r[rev], r["working tree"]
        print(f"{i:<6}{r['first']:<14}{a['seconds']:12.3f}{b['seconds']:11.3f}{ratio:8.3f}   "
              f"{a['handoff'][0]:.0f}/{a['handoff'][1]:.0f}, {b['handoff'][0]:.0f}/{b['handoff'][1]:.0f}")
    print("imported: " + ", ".join(f"{name} {Path(results[0][name]['genmodels']).parent}" for name in srcs))
    result = {"rev": rev, "commit": commit, "dataset": dataset, "n_images": len(x), "pairs": results,
              "ratios": ratios, "median_ratio": median}
    report_targets(COMPARE_TARGETS, result)
    write(result, "rbm_compare.json")


def main():
    arguments = parser(__doc__, repeats=3)
    arguments.add_argument("--compare", metavar="REV", help="time rbm.fit at git revision REV against the working tree")
    arguments.add_argument("--pairs", type=int, default=5, help="subprocess pairs for --compare")
    arguments.add_argument("--one-epoch", metavar="IMAGES", help=argparse.SUPPRESS)  # a --compare subprocess
    args = arguments.parse_args()
    if args.one_epoch:
        one_epoch(args.one_epoch)
    elif args.compare:
        compare(args.compare, args.pairs)
    else:
        benchmark(args.repeats)


if __name__ == "__main__":
    main()
