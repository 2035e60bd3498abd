"""How the Keras models of the course train and report: one convention for vae_keras and rbm_keras.
Used by rbm_keras (02_rbm_keras) and vae_keras (06_vae_keras).

The progress modes are those of genmodels.training ("bar": Keras' progress bar; "plain": one line per epoch, no
carriage returns or timings, so a notebook's output keeps its shape from run to run; "none": silent). `fit` is
`model.fit` with these conventions, a seeded batch order and, like the `evaluate` argument of
genmodels.training.train, optional per-epoch evaluations that land in Keras' History. `batched` runs a function over
a data set in batches and returns NumPy.

After a mistake it behaves as genmodels.training.train does: an epoch that ends with a non-finite loss, metric or
weight stops training with the model's and the optimiser's variables back at the end of the last good epoch (one
copy, kept on the device) and TrainingDiverged; a stop (Ctrl-C) raises TrainingInterrupted saying what the backup
(Keras' BackupAndRestore in `backup_dir`) holds; both end in a short traceback.

Import it explicitly: `import genmodels` never loads Keras or TensorFlow.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import keras
import numpy as np
from keras import ops

from . import basics, training  # the messages, and the errors, of the PyTorch loop
from .checks import check_count, check_progress

__all__ = ["EpochLog", "EvaluateEachEpoch", "fit", "batched"]

class EpochLog(keras.callbacks.Callback):
    """One plain line per epoch (`epoch 2/5: loss 190.1, reconstruction -160.3, kl 29.8`): no carriage returns,
    timings or step counts, so a notebook's output does not change from run to run in shape."""

    def on_epoch_end(self, epoch, logs=None):
        values = ", ".join(f"{name} {value:.4g}" for name, value in (logs or {}).items())
        print(f"epoch {epoch + 1}/{self.params['epochs']}: {values}", flush=True)


class EvaluateEachEpoch(keras.callbacks.Callback):
    """Adds `evaluate()` (a dict of numbers, such as a test pseudo-likelihood) to each epoch's logs, so that the
    History, the plain log line and other callbacks see them (put it before them in the list)."""

    def __init__(self, evaluate):
        super().__init__()
        self.evaluate = evaluate

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs.update({name: float(value) for name, value in self.evaluate().items()})


class LastGoodEpoch(keras.callbacks.Callback):
    """One copy of the model's and the optimiser's variables (on their device), taken as the first epoch begins and
    refreshed at the end of each epoch whose logs and weights are all finite; at the first epoch that is not, it
    records what was not finite and stops training. `restore()` puts the copy back (after fit: on JAX the variables
    are written back when fit ends)."""

    def __init__(self):
        super().__init__()
        self.found, self.epoch, self.epochs_done, self.copies = None, None, 0, None

    def on_epoch_begin(self, epoch, logs=None):
        if self.copies is None:  # after on_train_begin, where a backup may have been loaded
            optimizer = self.model.optimizer
            if optimizer is not None and not optimizer.built:  # its variables exist from here on
                optimizer.build(self.model.trainable_variables)
            self.variables = list(self.model.variables) + list(getattr(self.model.optimizer, "variables", []))
            self.copies = [keras.Variable(ops.copy(v.value), dtype=v.dtype, trainable=False)  # a copy, not an alias
                           for v in self.variables]
            self.epochs_done = epoch

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        metrics = [f"{name} = {logs[name]}" for name in sorted(logs, key=lambda name: name != "loss")
                   if not math.isfinite(float(logs[name]))]
        weights = [v for v in self.model.weights if "float" in str(v.dtype)]
        finite = [bool(ops.convert_to_numpy(ops.all(ops.isfinite(v.value)))) for v in weights]
        tensors = [f"non-finite values in {v.path}" for v, ok in zip(weights, finite, strict=True) if not ok]
        self.found = training.describe_non_finite(metrics, tensors)
        if self.found is not None:
            self.epoch = epoch + 1
            self.model.stop_training = True
            return
        for copy, v in zip(self.copies, self.variables, strict=True):
            copy.assign(ops.copy(v.value))  # JAX's assign keeps the array, which the next step may donate
        self.epochs_done = epoch + 1

    def restore(self):
        for copy, v in zip(self.copies, self.variables, strict=True):
            v.assign(ops.copy(copy.value))


class Backup(keras.callbacks.BackupAndRestore):
    """Keras' BackupAndRestore, except after a divergence: the diverged epoch is not backed up, and the backup of the
    last good one stays (Keras deletes it when fit ends), so that the same call resumes from it."""

    def __init__(self, backup_dir, guard: LastGoodEpoch):
        super().__init__(str(backup_dir))
        self.guard = guard

    def on_epoch_end(self, epoch, logs=None):
        if self.guard.found is None:
            super().on_epoch_end(epoch, logs)

    def on_train_end(self, logs=None):
        if self.guard.found is None:
            super().on_train_end(logs)

    def epoch_held(self) -> int | None:
        """The epoch the backup holds, or None when it holds none."""
        path = Path(self._training_metadata_path)
        return json.loads(path.read_text())["epoch"] if path.exists() else None


class KeepLearningRate(keras.callbacks.Callback):
    """Sets the optimiser's learning rate back to `rate` after a backup is loaded (which restores the old rate): a run
    resumed after a divergence trains with the lower rate it was given."""

    def __init__(self, rate: float, backup: Backup, quiet: bool):
        super().__init__()
        self.rate, self.backup, self.quiet = rate, backup, quiet

    def on_train_begin(self, logs=None):
        old = float(ops.convert_to_numpy(self.model.optimizer.learning_rate))
        held = self.backup.epoch_held()
        changed = "" if math.isclose(old, self.rate) else f", with the learning rate {old:.4g} -> {self.rate:.4g}"
        if changed:
            self.model.optimizer.learning_rate = self.rate
        if held and not self.quiet:
            print(f"Resumed from the backup in {self.backup.backup_dir} after epoch {held}{changed}")


def fit(model, x, *, epochs, batch_size, validation_data=None, evaluate=None, progress="bar", callbacks=(), seed=0,
        backup_dir=None):
    """`model.fit(x, ...)` on float32 NumPy data with the course's conventions: batches shuffled from `seed`, the
    progress mode, `evaluate()` added to the logs after each epoch, the divergence guard and the stop of
    genmodels.training.train; with `backup_dir`, a stopped or diverged fit resumes from its last good epoch when
    called again (BackupAndRestore). Returns Keras' History."""
    __tracebackhide__ = True  # a mistake in the call shows the student's line and the message (IPython, pytest)
    check_progress(progress)
    check_count("epochs", epochs, minimum=0)
    check_count("batch_size", batch_size)  # Keras would quietly use its default of 32 for 0 or None
    callbacks = list(callbacks)
    if evaluate is not None:  # first, so that the caller's callbacks (EarlyStopping, say) see its numbers
        callbacks.insert(0, EvaluateEachEpoch(evaluate))
    guard = LastGoodEpoch()
    callbacks.append(guard)  # after evaluate, to see its numbers; before the backup, to keep a diverged epoch out
    backup = None
    if backup_dir is not None:
        backup = Backup(backup_dir, guard)
        callbacks.append(backup)
        if not callable(model.optimizer._learning_rate):  # a number, not a schedule
            rate = float(ops.convert_to_numpy(model.optimizer.learning_rate))
            callbacks.append(KeepLearningRate(rate, backup, quiet=progress == "none"))
    if progress == "plain":
        callbacks.append(EpochLog())
    keras.utils.set_random_seed(seed)  # the order of the batches
    model._initial_epoch = None  # where a backup last resumed: Keras keeps it, and the next fit would start there
    try:
        history = model.fit(np.asarray(x, dtype="float32"), epochs=epochs, batch_size=batch_size, shuffle=True,
                            validation_data=validation_data, verbose=1 if progress == "bar" else 0,
                            callbacks=callbacks)
    except KeyboardInterrupt:
        held = backup.epoch_held() if backup is not None else None
        basics.stop(training.TrainingInterrupted(training.interrupted_message(
            guard.epochs_done, backup_dir, held, True, store=f"the backup in {backup_dir}", argument="backup_dir")))
    if guard.found is not None:
        guard.restore()
        held = backup.epoch_held() if backup is not None else None
        diverged = training.TrainingDiverged(training.diverged_message(
            guard.found, guard.epoch, guard.epochs_done, backup_dir, held, True, store=f"the backup in {backup_dir}"))
        diverged.history = history
        basics.stop(diverged)
    return history


def batched(fn, x, batch_size=1000) -> np.ndarray:
    """fn over x in batches (float32 tensors of the backend), the results concatenated as one NumPy array."""
    x = np.asarray(x, dtype="float32")
    return np.concatenate([ops.convert_to_numpy(fn(ops.convert_to_tensor(x[i:i + batch_size])))
                           for i in range(0, len(x), batch_size)])
