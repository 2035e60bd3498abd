"""The Keras side after a student's mistake, on every backend (each in its own process): a divergence in the first
epoch and in a later one, and a stop with and without a backup; each message's advice followed literally."""

import textwrap

import pytest
from conftest import REPO, backend_results

BACKENDS = ["tensorflow", "torch", "jax"]

SCRIPT = textwrap.dedent("""
    import json, sys, tempfile
    import keras
    import numpy as np
    from keras import ops
    from genmodels import vae_keras

    out = {"backend": keras.backend.backend()}
    x = np.random.default_rng(0).random((256, 28, 28)).astype("float32")
    backup = tempfile.mkdtemp() + "/backup"

    def weights(model):
        return [ops.convert_to_numpy(v.value) for v in model.weights]

    def run(cell, *args, **kwargs):
        "A cell: what it printed last, and the error it ended with, as a notebook shows them."
        try:
            cell(*args, **kwargs)
            return {"error": None}
        except BaseException as err:
            return {"error": type(err).__name__, "message": str(err)}

    class Poison(keras.callbacks.Callback):
        "A weight turns NaN at the end of epoch 2: a later-epoch divergence, the same on every backend."
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                self.model.weights[0].assign(np.full(self.model.weights[0].shape, np.nan, "float32"))

    class Stop(keras.callbacks.Callback):
        "The stop button, pressed in epoch 2."
        def __init__(self):
            super().__init__()
            self.epochs = 0
        def on_epoch_end(self, epoch, logs=None):
            self.epochs += 1
        def on_train_batch_end(self, batch, logs=None):
            if self.epochs == 1 and batch == 1:
                raise KeyboardInterrupt

    # 1. lr=10 in the fit cell, then the same cell with lr=1e-3 (the model cell is not run again)
    model = vae_keras.conv_vae(latent_dim=2, seed=0)
    initial = weights(model)
    out["epoch_1"] = run(vae_keras.fit, model, x, epochs=2, batch_size=64, lr=10.0, progress="none")
    out["epoch_1"]["restored"] = all(np.array_equal(a, b) for a, b in zip(initial, weights(model)))
    history = vae_keras.fit(model, x, epochs=2, batch_size=64, lr=1e-3, progress="none")
    out["epoch_1"]["after"] = history.history["loss"]

    # 2. a divergence in epoch 3 of a run with a backup, then the same call with a lower rate
    model = vae_keras.conv_vae(latent_dim=2, seed=0)
    out["later"] = run(vae_keras.fit, model, x, epochs=4, batch_size=64, lr=1e-2, backup_dir=backup,
                       progress="none", callbacks=[Poison()])
    out["later"]["finite"] = all(np.isfinite(w).all() for w in weights(model))
    history = vae_keras.fit(model, x, epochs=4, batch_size=64, lr=1e-3, backup_dir=backup, progress="plain")
    out["later"]["epochs_run"] = history.epoch
    out["later"]["after"] = history.history["loss"]

    # 3. a stop in epoch 2 with a backup, then the same call; and without one
    model = vae_keras.conv_vae(latent_dim=2, seed=0)
    out["stop"] = run(vae_keras.fit, model, x, epochs=3, batch_size=64, backup_dir=backup, progress="none",
                      callbacks=[Stop()])
    out["stop"]["epochs_run"] = vae_keras.fit(model, x, epochs=3, batch_size=64, backup_dir=backup,
                                              progress="plain").epoch
    out["stop_without_backup"] = run(vae_keras.fit, model, x, epochs=3, batch_size=64, progress="none",
                                     callbacks=[Stop()])
    print(json.dumps(out))
""")


@pytest.fixture(params=BACKENDS)
def results(request):
    """The script's results on each backend in turn (run once per backend, cached), with the lines it printed."""
    return backend_results(SCRIPT, request.param, timeout=600)


def test_a_first_epoch_divergence_puts_back_the_initial_weights_and_a_lower_rate_trains(results):
    result = results["epoch_1"]
    assert result["error"] == "TrainingDiverged" and result["restored"], result
    assert result["message"].startswith("training diverged in epoch 1: loss = nan")
    assert ("The model and its optimiser are back at their initial values. A learning rate too large is the likely "
            "cause: lower it and run the same call again.") in result["message"]
    assert all(v == v and v < 1e4 for v in result["after"]), result["after"]  # finite, and a likelihood's size


def test_a_later_divergence_keeps_the_backup_of_the_last_good_epoch_and_a_lower_rate_resumes_from_it(results):
    later = results["later"]
    assert later["error"] == "TrainingDiverged" and later["finite"], later
    assert later["message"].startswith("training diverged in epoch 2: non-finite values in ")
    assert "back at the end of epoch 1, which the backup in " in later["message"]
    assert "run the same call again: it resumes from epoch 1 with the new rate" in later["message"]
    assert later["epochs_run"] == [1, 2, 3] and all(v == v for v in later["after"])
    resumed = [line for line in results["lines"] if line.startswith("Resumed from the backup")]
    assert resumed[0].endswith("after epoch 1, with the learning rate 0.01 -> 0.001"), results["lines"]


def test_a_stop_says_what_the_backup_holds_and_the_same_call_resumes(results):
    stop = results["stop"]
    assert stop["error"] == "TrainingInterrupted", stop
    assert stop["message"].startswith("Interrupted during epoch 2: the model keeps the training done so far; the "
                                      "backup in ")
    assert stop["message"].endswith(" holds epoch 1: run the same call again to resume from there.")
    assert stop["epochs_run"] == [1, 2]  # epochs 2 and 3, counted from 0 by Keras
    assert results["stop_without_backup"]["message"] == (
        "Interrupted during epoch 2: the model keeps the training done so far; nothing was saved to resume from "
        "(pass backup_dir=... for that).")


def test_a_keras_divergence_and_bad_input_end_in_tracebacks_of_at_most_15_lines_in_a_notebook(tmp_path):
    """As IPython shows them in a notebook (TensorFlow, the default backend): the student's line, a short frame of
    the package and the message, not pages of Keras."""
    import re

    nbformat = pytest.importorskip("nbformat")
    from nbclient import NotebookClient

    cells = ["import numpy as np\nfrom genmodels import vae_keras\n"
             "images = np.random.default_rng(0).random((256, 28, 28), dtype=np.float32)\n"
             "model = vae_keras.conv_vae(latent_dim=2, seed=0)",
             "history = vae_keras.fit(model, images * 255, epochs=2, batch_size=64, progress='none')",
             "history = vae_keras.fit(model, images, epochs=2, batch_size=64, lr=10.0, progress='none')"]
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    env = {"KERAS_BACKEND": "tensorflow", "PYTHONPATH": str(REPO / "src")}
    client = NotebookClient(notebook, timeout=300, kernel_name="python3", allow_errors=True,
                            resources={"metadata": {"path": tmp_path}})
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        client.execute()
    errors = [[o for o in cell.outputs if o.output_type == "error"] for cell in notebook.cells[1:]]
    assert [[e.ename for e in cell] for cell in errors] == [["ValueError"], ["TrainingDiverged"]], errors
    for cell in errors:
        lines = re.sub(r"\x1b\[[0-9;]*m", "", "\n".join(cell[0].traceback)).splitlines()
        assert len(lines) <= 15 and "keras/src" not in "\n".join(lines[:-1]), "\n".join(lines)
