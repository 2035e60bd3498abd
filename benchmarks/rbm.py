"""One epoch of CD-1 on 60,000 binary images, 784 visible × 500 hidden, batch 100: genmodels.rbm against
scikit-learn's BernoulliRBM (float32 and float64 input), beside torch's fp32 matmul peak, all in one run.

FLOPs: 5 matrix products of 2·B·V·H per CD-1 batch (v·W, h·Wᵀ, v⁻·W, and the two statistics vᵀp(h|v)), 235 GFLOP
per epoch. The peak is the best rate of torch.mm over the RBM's three product shapes and a 1024³ product. The
same products alone, computed as genmodels.rbm computes them but with no sampling or updates, are the ceiling of
our loop: the rest of the gap to the peak is the small shapes. The same products with addmm then sigmoid for the
conditionals show what oneDNN's fused product and sigmoid (rbm.linear_sigmoid) gains.
Repetitions are interleaved and medians reported; writes _build/bench/rbm.json.

The handoff times the threads updating 1 MB that one core has just read: data moving from one core's cache to
another's, as it does between every two steps of CD. On the shared 2-core machine this course is tested on, it
alternates between about 50 µs and about 230 µs over minutes. In the slow state the memory-bound steps (sampling,
the weight update) take several times longer while the products slow by about 10 %, and our epoch falls from about
77 % of the peak to about 61 %. The line "by repeat" gives each repeat of ours with the handoff timed just before
and just after it, so a run says which state each repeat met.

    python benchmarks/rbm.py [--repeats 3]
"""

import argparse
import json
import statistics
import time
import warnings

import numpy as np
import torch

from genmodels import data
from genmodels import rbm as R
from genmodels.paths import BUILD_DIR

V, H, B = 784, 500, 100


def load_images():
    for dataset in ("mnist", "fashion-mnist"):
        try:
            x, _ = data.load_split(dataset, "train", download_missing=False)
            return dataset, data.binarize_stochastic(x.reshape(len(x), -1), seed=0)
        except data.DataNotFoundError:
            continue
    raise SystemExit("neither MNIST nor Fashion-MNIST training images found; see genmodels.data.load_split")


def matmul_peak(seconds=0.3) -> float:
    """Best GFLOP/s of torch.mm (fp32) over the RBM's product shapes and a 1024³ product."""
    best = 0.0
    for m, k, n in [(B, V, H), (B, H, V), (V, B, H), (1024, 1024, 1024)]:
        a, b = torch.randn(m, k), torch.randn(k, n)
        out = torch.empty(m, n)
        torch.mm(a, b, out=out)
        reps = max(5, int(seconds * 100e9 / (2 * m * k * n)))
        for _ in range(3):
            start = time.perf_counter()
            for _ in range(reps):
                torch.mm(a, b, out=out)
            best = max(best, 2 * m * k * n * reps / (time.perf_counter() - start) / 1e9)
    return best


def core_handoff_us(reps: int = 100) -> float:
    """Median time for all threads to update 1 MB that one thread has just read (see the module's docstring)."""
    threads, x, times = torch.get_num_threads(), torch.zeros(2**18), []
    try:
        for _ in range(reps):
            torch.set_num_threads(1)
            x.sum()  # one core reads x: its cache holds the lines
            torch.set_num_threads(threads)
            start = time.perf_counter()
            x.add_(1.0)  # each thread writes its part: the other cores take their lines from that core
            times.append(time.perf_counter() - start)
    finally:
        torch.set_num_threads(threads)
    return statistics.median(times) * 1e6


def time_products_alone(x: torch.Tensor, fused: bool = True) -> float:
    """The epoch's matrix products and nothing else, computed as genmodels.rbm computes them (the three
    conditionals with rbm.linear_sigmoid, the two statistics with torch.addmm), with the same shapes, data and
    batches as CD-1: the ceiling of our loop. fused=False computes the conditionals with addmm then sigmoid."""
    W, c, b, dW = torch.randn(V, H) * 0.01, torch.zeros(H), torch.zeros(V), torch.zeros(V, H)
    conditional = R.linear_sigmoid if fused else lambda x, weight, bias: torch.addmm(bias, x, weight.t()).sigmoid_()
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
    rbm = R.RBM(V, H, generator=torch.Generator().manual_seed(0))
    start = time.perf_counter()
    R.fit(rbm, x, epochs=1, batch_size=B, lr=0.05, progress="none", init_bias=True)
    return time.perf_counter() - start


def time_sklearn(x: np.ndarray) -> float:
    from sklearn.neural_network import BernoulliRBM

    model = BernoulliRBM(n_components=H, batch_size=B, n_iter=1, learning_rate=0.05, random_state=0)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(x)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    dataset, x = load_images()
    x32, x64, xt = x.astype(np.float32), x.astype(np.float64), torch.from_numpy(x.astype(np.float32))
    flop = 5 * 2 * B * V * H * (len(x) // B)
    runs = {k: [] for k in ("ours", "products", "products_plain", "sklearn", "sklearn_f64", "peak", "handoff")}
    for _ in range(args.repeats):  # interleaved, so that drifts in machine load hit every contestant alike
        runs["peak"].append(matmul_peak())
        before = core_handoff_us()
        runs["ours"].append(time_ours(xt))
        runs["handoff"].append((before, core_handoff_us()))  # the machine may change state in between
        runs["products"].append(time_products_alone(xt))
        runs["products_plain"].append(time_products_alone(xt, fused=False))
        runs["sklearn"].append(time_sklearn(x32))
        runs["sklearn_f64"].append(time_sklearn(x64))
    med = {k: statistics.median(v) for k, v in runs.items() if k != "handoff"}
    result = {
        "dataset": dataset, "n_images": len(x), "threads": torch.get_num_threads(), "repeats": args.repeats,
        "ours_s": med["ours"], "sklearn_s": med["sklearn"], "sklearn_f64_s": med["sklearn_f64"],
        "speedup_vs_sklearn": med["sklearn"] / med["ours"],
        "gflops": flop / med["ours"] / 1e9, "peak_gflops": med["peak"],
        "fraction_of_peak": flop / med["ours"] / 1e9 / med["peak"],
        "products_alone_s": med["products"], "products_fraction_of_peak": flop / med["products"] / 1e9 / med["peak"],
        "products_plain_s": med["products_plain"], "runs": runs,
    }
    print(f"CD-1, one epoch of {len(x):,} {dataset} images, {V}x{H}, batch {B}, {result['threads']} threads, "
          f"median of {args.repeats} ({flop / 1e9:.0f} GFLOP)")
    print(f"{'':24}{'seconds':>10}{'GFLOP/s':>10}")
    for name, key in [("genmodels.rbm", "ours"), ("its 5 products alone", "products"),
                      ("  with addmm, sigmoid", "products_plain"), ("sklearn float32", "sklearn"),
                      ("sklearn float64", "sklearn_f64")]:
        print(f"{name:24}{med[key]:10.2f}{flop / med[key] / 1e9:10.0f}")
    print(f"{'torch.mm peak':24}{'':10}{med['peak']:10.0f}")
    print("genmodels.rbm by repeat, fraction of peak (handoff before/after): " + ", ".join(
        f"{flop / t / 1e9 / peak:.0%} ({before:.0f}/{after:.0f} µs)"
        for t, peak, (before, after) in zip(runs["ours"], runs["peak"], runs["handoff"], strict=True)))
    print(f"fraction of peak {result['fraction_of_peak']:.0%} (the products alone: "
          f"{result['products_fraction_of_peak']:.0%}), speed-up vs sklearn float32 "
          f"{result['speedup_vs_sklearn']:.2f}x")
    out = BUILD_DIR / "bench" / "rbm.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
