"""How the Keras models of the course train and report: one convention for vae_keras and rbm_keras.
Used by rbm_keras (02_rbm_keras) and vae_keras (06_vae_keras).

The progress modes are those of genmodels.training ("bar": Keras' progress bar; "plain": one line per epoch, no
carriage returns or timings, so a notebook's output keeps its shape from run to run; "none": silent). `fit` is
`model.fit` with these conventions, a seeded batch order and, like the `evaluate` argument of
genmodels.training.train, optional per-epoch evaluations that land in Keras' History. `batched` runs a function over
a data set in batches and returns NumPy.

Import it explicitly: `import genmodels` never loads Keras or TensorFlow.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

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


def fit(model, x, *, epochs, batch_size, validation_data=None, evaluate=None, progress="bar", callbacks=(), seed=0):
    """`model.fit(x, ...)` on float32 NumPy data with the course's conventions: batches shuffled from `seed`, the
    progress mode, `evaluate()` added to the logs after each epoch. Returns Keras' History."""
    check_progress(progress)
    check_count("epochs", epochs, minimum=0)
    check_count("batch_size", batch_size)  # Keras would quietly use its default of 32 for 0 or None
    callbacks = list(callbacks)
    if evaluate is not None:  # first, so that the caller's callbacks (EarlyStopping, say) see its numbers
        callbacks.insert(0, EvaluateEachEpoch(evaluate))
    if progress == "plain":
        callbacks.append(EpochLog())
    keras.utils.set_random_seed(seed)  # the order of the batches
    return model.fit(np.asarray(x, dtype="float32"), epochs=epochs, batch_size=batch_size, shuffle=True,
                     validation_data=validation_data, verbose=1 if progress == "bar" else 0, callbacks=callbacks)


def batched(fn, x, batch_size=1000) -> np.ndarray:
    """fn over x in batches (float32 tensors of the backend), the results concatenated as one NumPy array."""
    x = np.asarray(x, dtype="float32")
    return np.concatenate([ops.convert_to_numpy(fn(ops.convert_to_tensor(x[i:i + batch_size])))
                           for i in range(0, len(x), batch_size)])
