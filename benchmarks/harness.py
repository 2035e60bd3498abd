"""What the benchmarks in this folder share: interleaved timing with the machine's state beside it, the training
images, the table of medians, the targets' lines and the JSON file. Not a benchmark itself (`make bench` leaves it out).

    times = interleave({"ours": run_ours, "bound": run_bound}, repeats=7, device=device)
        # each run(rep) is called once per repetition, the contestants in turn (the order rotating), so that a
        # drift in the machine's load hits them alike; repetition 0 warms up and is not counted; CUDA is
        # synchronised around each timing;
        # times.handoff_us holds the core-handoff probe read before each counted repetition
    print_table("", [("loop", 12), ("median s", 10, ".2f")], {n: [m] for n, m in times.medians().items()}, times, 2)
        # loop          median s   all repetitions
        # ours              0.52   0.52 0.51 0.53 …    (a row per contestant)
    result = {"ours_over_bound": ratio, ...}
    report_targets([Target("ours / bound", "ours_over_bound", 1.15)], result)   # target ours / bound ≤ 1.15: met (1.07)
    write(result, "ebm.json")                                                   # _build/bench/ebm.json, and says so

core_handoff_us() tells the machine's state: this shared machine has a fast state (tens of µs) and a slow one
(hundreds), and a benchmark's figures are read beside it (benchmarks/README.md).
"""

import argparse
import json
import statistics
import time
from typing import NamedTuple

import torch

from genmodels import data
from genmodels.device import get_device
from genmodels.paths import BUILD_DIR


class Times(dict):
    """{contestant: [seconds of each counted repetition]}, with `handoff_us`, the probe read before each."""

    handoff_us: list[float]

    def medians(self) -> dict[str, float]:
        return {name: statistics.median(seconds) for name, seconds in self.items()}

    def state(self) -> str:
        """One line on the machine's state during the run, from the handoff probe."""
        low, high = min(self.handoff_us), max(self.handoff_us)
        return f"core handoff {low:.0f}-{high:.0f} µs over the repetitions (tens: fast state; hundreds: slow)"


def interleave(runs: dict, repeats: int, device=None, prepare=None) -> Times:
    """Call each run(rep) in turn, repeats + 1 times; time all but the first (a warm-up) of each. The order rotates
    with the repetition, so that each contestant runs first (right after the handoff probe) equally often. With
    `prepare`, run(rep, prepare(name, rep)): what prepare makes (a fresh model, say) is not timed."""
    cuda = device is not None and torch.device(device).type == "cuda"
    times, times.handoff_us = Times({name: [] for name in runs}), []
    for rep in range(repeats + 1):
        if rep > 0:
            times.handoff_us.append(core_handoff_us())
        names = list(runs)
        for name in names[rep % len(names):] + names[:rep % len(names)]:  # each goes first in turn: the one
            run = runs[name]  # right after the probe finds its threads cold
            arguments = (rep,) if prepare is None else (rep, prepare(name, rep))
            if cuda:
                torch.cuda.synchronize()
            start = time.perf_counter()
            run(*arguments)
            if cuda:
                torch.cuda.synchronize()
            if rep > 0:
                times[name].append(time.perf_counter() - start)
    return times


def core_handoff_us(reps: int = 100) -> float:
    """Median time for all threads to update 1 MB that one thread has just read: data moving from one core's cache
    to another's, as it does between every two steps of CD (benchmarks/README.md: the machine's two states)."""
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


def product_gflops(m: int, k: int, n: int, device=None, seconds: float = 0.3) -> float:
    """The best GFLOP/s of an m×k by k×n float32 torch.mm in three tries of about `seconds` each: the machine's
    arithmetic rate, beside which a benchmark reads its own."""
    device = torch.device(device or "cpu")
    a, b = torch.randn(m, k, device=device), torch.randn(k, n, device=device)
    out = torch.empty(m, n, device=device)
    torch.mm(a, b, out=out)
    reps, best = max(5, int(seconds * 100e9 / (2 * m * k * n))), 0.0
    for _ in range(3):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(reps):
            torch.mm(a, b, out=out)
        if device.type == "cuda":
            torch.cuda.synchronize()
        best = max(best, 2 * m * k * n * reps / (time.perf_counter() - start) / 1e9)
    return best


def training_images(binary: bool = True, progress: bool = False):
    """(data set name, images): MNIST's 60,000 training images, or Fashion-MNIST's where MNIST's are absent; binary
    (data.binarize_once, flattened) or as grey levels (N, 28, 28)."""
    for dataset in ("mnist", "fashion-mnist"):
        try:
            x, _ = data.load_split(dataset, "train", download_missing=False, progress=progress)
        except data.DataNotFoundError:
            continue
        return dataset, data.binarize_once(x.reshape(len(x), -1)) if binary else x
    raise SystemExit("neither MNIST nor Fashion-MNIST training images found; see genmodels.data.load_split")


def print_table(title: str, columns: list[tuple], rows: dict[str, list[float]], repetitions: dict, digits: int):
    """A benchmark's table: the line `title` (a blank line if empty), a heading, and a row per contestant: its name
    under columns[0] = (heading, width), its figures under the other columns, (heading, width, format) each, then
    all its repetitions with `digits` decimals."""
    (name_heading, name_width), *figures = columns
    print(f"\n{title}" if title else "")
    print(f"{name_heading:<{name_width}}" + "".join(f"{heading:>{width}}" for heading, width, _ in figures)
          + "   all repetitions")
    for name, values in rows.items():
        cells = "".join(f"{value:>{width}{fmt}}" for value, (_, width, fmt) in zip(values, figures, strict=True))
        print(f"{name:<{name_width}}{cells}   " + " ".join(f"{v:.{digits}f}" for v in repetitions[name]))


class Target(NamedTuple):
    """A target that benchmarks/README.md states for a benchmark: the figure, the key of the benchmark's result that
    holds it ("conv.ours_over_bound" for result["conv"]["ours_over_bound"]), and the bound it must stay at or below
    (at_most) or reach."""

    what: str
    key: str
    bound: float
    at_most: bool = True

    @property
    def wording(self) -> str:
        """'ours / bound ≤ 1.15', as the target's line and benchmarks/README.md write it."""
        return f"{self.what} {'≤' if self.at_most else '≥'} {self.bound:g}"

    def value(self, result: dict) -> float | None:
        for key in self.key.split("."):
            result = result.get(key) if isinstance(result, dict) else None
        return result

    def met(self, value: float) -> bool:
        return value <= self.bound if self.at_most else value >= self.bound


def verdict(target: str, value: float, met: bool) -> str:
    """The one wording of a target's line: 'target ours / bound ≤ 1.15: met (1.07)'."""
    return f"target {target}: {'met' if met else 'NOT met'} ({value:.3g})"


def report_targets(targets, result: dict, missing: str = "not measured in this run") -> None:
    """Print a line per target, in verdict's wording, from the result the benchmark writes, and record in it
    result["targets_met"]; a target whose figure the result lacks prints 'target …: ' and `missing`."""
    result["targets_met"] = {}
    for target in targets:
        value = target.value(result)
        if value is None:
            print(f"target {target.wording}: {missing}")
            continue
        result["targets_met"][target.wording] = target.met(value)
        print(verdict(target.wording, value, target.met(value)))


def write(result: dict, name: str):
    """_build/bench/NAME as indented JSON; prints where it went and returns the path."""
    out = BUILD_DIR / "bench" / name
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out}")
    return out


def parser(doc: str, repeats: int, device: bool = False) -> argparse.ArgumentParser:
    """An argument parser with the one flag every benchmark has, --repeats (timed repetitions, medians reported), and
    with `device`, --device (default None: the full profile's device, see benchmark_device)."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=repeats, help="timed repetitions (medians are reported)")
    if device:
        parser.add_argument("--device", default=None)
    return parser


def benchmark_device(args) -> torch.device:
    """The device --device names, else the one the full profile picks (the fastest)."""
    return get_device(args.device, "full")
