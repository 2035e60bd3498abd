"""One epoch of CD-1 on 60,000 binary images, 784 visible × 500 hidden, batch 100: the Keras RBM
(genmodels.rbm_keras, `model.fit`) on each installed Keras backend, each in its own process, beside the PyTorch RBM
(genmodels.rbm.fit), in the same run.

Keras runs `epochs` epochs in one `fit`; a callback times each. The first includes tracing and compiling the train
step (reported apart); the figure compared is the median of the others. The PyTorch RBM is timed as the median of
`repeats` calls of rbm.fit(epochs=1), each including its one pass of input checks. The data are MNIST's training
images, or Fashion-MNIST's (genmodels.data.load_split) where MNIST's are absent. Target (TARGETS, printed as met
or not): the Keras RBM, on its fastest backend, at most 2× the PyTorch RBM's epoch; judged only when JAX, the
fastest backend seen, ran. Writes _build/bench/rbm_keras.json.

    python benchmarks/rbm_keras.py [--epochs 3] [--repeats 3]
"""

import argparse
import json
import statistics
import time
from pathlib import Path

from harness import Target, parser, report_targets, training_images, write

import genmodels  # noqa: F401  (silences TensorFlow in the workers)
from genmodels import keras_backends

V, H, B = 784, 500, 100
BACKENDS = ("tensorflow", "torch", "jax")
TARGETS = (Target("fastest Keras backend / PyTorch", "fastest_ratio", 2.0),)


def keras_worker(epochs: int) -> dict:
    """Run in a fresh process with KERAS_BACKEND set: the seconds of each epoch of the Keras RBM's fit."""
    import keras

    from genmodels import rbm_keras

    class EpochTimes(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter() - self.start)

    dataset, x = training_images()
    times = []
    rbm_keras.fit(rbm_keras.RBM(V, H, seed=0), x, epochs=epochs, batch_size=B, lr=0.05, progress="none",
                  callbacks=[EpochTimes()])
    return {"backend": keras.backend.backend(), "dataset": dataset, "epoch_s": times}


def torch_epochs(x, repeats: int) -> list[float]:
    from genmodels import rbm

    times = []
    for _ in range(repeats):
        model = rbm.RBM(V, H)
        start = time.perf_counter()
        rbm.fit(model, x, epochs=1, batch_size=B, lr=0.05, progress="none")
        times.append(time.perf_counter() - start)
    return times


def main():
    arguments = parser(__doc__, repeats=3)  # timed epochs of the PyTorch RBM
    arguments.add_argument("--epochs", type=int, default=3, help="epochs per Keras fit (the first is compile time)")
    arguments.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = arguments.parse_args()
    if args.worker:
        print(json.dumps(keras_worker(args.epochs)))
        return

    dataset, x = training_images()
    results = {"dataset": dataset, "shape": [len(x), V, H], "batch_size": B, "keras": {}}
    for backend in BACKENDS:  # one process per backend, the PyTorch RBM between them
        if backend not in keras_backends.installed_backends():
            results["keras"][backend] = {"missing": True}
            continue
        run = keras_backends.run_on_backend(backend, Path(__file__), "--worker", "--epochs", args.epochs,
                                            timeout=None)
        if run.returncode:
            results["keras"][backend] = {"error": run.stderr.strip().splitlines()[-1:]}
            continue
        worker = json.loads(run.stdout.strip().splitlines()[-1])
        results["keras"][backend] = {"first_epoch_s": worker["epoch_s"][0],
                                     "epoch_s": statistics.median(worker["epoch_s"][1:] or worker["epoch_s"])}
    results["pytorch_epoch_s"] = statistics.median(torch_epochs(x, args.repeats))

    print(f"CD-1, {V}×{H}, batch {B}, one epoch of {len(x):,} {dataset} images (median seconds)")
    print(f"{'model':<22}{'epoch (s)':>11}{'first epoch (s)':>17}{'× PyTorch':>11}")
    print(f"{'PyTorch rbm.fit':<22}{results['pytorch_epoch_s']:>11.2f}{'':>17}{1:>11.2f}")
    for backend, r in results["keras"].items():
        if "epoch_s" in r:
            r["ratio"] = r["epoch_s"] / results["pytorch_epoch_s"]
            print(f"{'Keras, ' + backend:<22}{r['epoch_s']:>11.2f}{r['first_epoch_s']:>17.2f}{r['ratio']:>11.2f}")
        else:
            print(f"{'Keras, ' + backend:<22}{'not installed' if 'missing' in r else 'failed: ' + str(r['error'])}")
    ratios = {b: r["ratio"] for b, r in results["keras"].items() if "ratio" in r}
    if ratios:
        fastest = min(ratios, key=ratios.get)
        results["fastest_backend"], results["fastest_ratio"] = fastest, ratios[fastest]
        print(f"fastest Keras backend: {fastest}, {ratios[fastest]:.2f}× the PyTorch RBM's epoch")
    if "jax" in ratios:  # the target is for the fastest of all three
        report_targets(TARGETS, results)
    else:
        report_targets(TARGETS, {}, missing="not judged (JAX, the fastest backend seen, did not run)")
    write(results, "rbm_keras.json")


if __name__ == "__main__":
    main()
