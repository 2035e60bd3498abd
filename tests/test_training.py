"""The training loop: batches, history, progress, atomic checkpoints, resume, Ctrl-C, divergence."""

import math

import pytest
import torch

from genmodels import training


def make_problem(seed=0, n=256):
    """A noisy linear regression y = x·w + noise, and a linear model to fit it."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 5, generator=g)
    y = x @ torch.arange(1.0, 6.0) + 0.1 * torch.randn(n, generator=g)
    torch.manual_seed(seed)
    model = torch.nn.Linear(5, 1)
    xy = torch.cat([x, y[:, None]], dim=1)

    def loss_fn(batch):
        noise = 0.01 * torch.randn(len(batch))  # uses torch's global generator: resume must restore it
        loss = ((model(batch[:, :5])[:, 0] - batch[:, 5] + noise) ** 2).mean()
        return loss, {"abs_w_error": (model.weight[0] - torch.arange(1.0, 6.0)).abs().mean()}

    return model, xy, loss_fn


@pytest.fixture(autouse=True)
def no_batch_hook(monkeypatch):
    monkeypatch.setattr(training, "_after_batch", None)  # restored after each test


def fit(epochs, checkpoint=None, on_batch=None, progress="none", seed=0, lr=0.05, **kwargs):
    training._after_batch = on_batch  # the loop's private test hook
    model, xy, loss_fn = make_problem()
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.5)
    history = training.train(model, xy, epochs=epochs, batch_size=32, loss_fn=loss_fn, optimizer=optimizer,
                             checkpoint=checkpoint, progress=progress, seed=seed, **kwargs)
    return model, history


def test_batches_are_slices_of_one_permutation():
    g = torch.Generator().manual_seed(0)
    parts = training.batches(10, 4, g, "cpu")
    assert [len(p) for p in parts] == [4, 4, 2]
    assert sorted(torch.cat(parts).tolist()) == list(range(10))
    assert torch.cat(parts).tolist() != torch.cat(training.batches(10, 4, g, "cpu")).tolist()  # new order each epoch


def test_loss_mode_fits_and_records_one_value_per_epoch():
    model, history = fit(epochs=5)
    assert history.epochs == 5 and len(history["loss"]) == 5 and not history.interrupted
    assert history["loss"][-1] < 0.1 * history["loss"][0]
    assert history["abs_w_error"][-1] < 0.05


def test_step_mode_lets_the_model_update_itself():
    model = torch.nn.Linear(1, 1, bias=False)
    torch.nn.init.zeros_(model.weight)
    x = torch.ones(12, 1)

    def step(batch):  # move the weight towards the batch mean by hand
        with torch.no_grad():
            model.weight += 0.5 * (batch.mean() - model.weight)
        return {"weight": model.weight[0, 0]}

    history = training.train(model, x, epochs=3, batch_size=4, step_fn=step, progress="none")
    weights = [1 - 0.5**k for k in range(1, 10)]  # after batch k the weight is 1 - 0.5**k
    assert history["weight"] == pytest.approx([sum(weights[3 * e:3 * e + 3]) / 3 for e in range(3)])


def test_a_metric_reported_on_some_batches_is_averaged_over_those():
    model = torch.nn.Linear(1, 1)
    x = torch.arange(10.0)[:, None]  # batches of 4, 4 and 2 examples in a random order each epoch
    seen = []

    def step(batch):
        seen.append(batch[:, 0].clone())
        return {"mean": batch.mean()} if len(seen) % 3 != 2 else {}  # silent on the 2nd batch of each epoch

    history = training.train(model, x, epochs=2, batch_size=4, step_fn=step, progress="none")
    for epoch in range(2):
        reported = torch.cat([seen[3 * epoch], seen[3 * epoch + 2]])
        assert history["mean"][epoch] == pytest.approx(reported.mean().item())


def test_history_keeps_one_entry_per_epoch_when_a_metric_skips_epochs():
    model = torch.nn.Linear(1, 1)
    calls = []

    def step(batch):  # two batches an epoch; "rare" only on the first batch of epoch 2
        calls.append(len(calls))
        return {"loss": batch.sum(), **({"rare": torch.tensor(7.0)} if len(calls) == 3 else {})}

    history = training.train(model, torch.ones(8, 1), epochs=3, batch_size=4, step_fn=step, progress="none")
    assert history["loss"] == [4.0, 4.0, 4.0]
    assert history["rare"][1] == 7.0 and len(history["rare"]) == 3
    assert math.isnan(history["rare"][0]) and math.isnan(history["rare"][2])


def test_evaluate_runs_after_each_epoch_without_gradients_in_eval_mode():
    seen = []

    def evaluate():
        seen.append((torch.is_grad_enabled(), model.training))
        return {"test_loss": 1.0}

    model, xy, loss_fn = make_problem()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    history = training.train(model, xy, epochs=2, batch_size=64, loss_fn=loss_fn, optimizer=optimizer,
                             evaluate=evaluate, progress="none")
    assert seen == [(False, False), (False, False)] and history["test_loss"] == [1.0, 1.0]


def test_plain_progress_prints_one_line_per_epoch_and_none_prints_nothing(capsys):
    fit(epochs=3, progress="plain")
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert len(lines) == 3 and lines[0].startswith("epoch 1/3  loss ") and err == ""
    fit(epochs=2, progress="none")
    assert capsys.readouterr() == ("", "")


def test_bar_progress_uses_tqdm_and_keeps_one_line_per_epoch(capsys):
    fit(epochs=2, progress="bar")
    out, err = capsys.readouterr()
    assert len(out.splitlines()) == 2 and "epoch 1/2" in err  # tqdm writes its bar to stderr outside Jupyter


def test_checkpoint_is_written_after_every_epoch_and_loads_with_weights_only(tmp_path):
    path = tmp_path / "ckpt" / "model.pt"
    epochs_on_disk = []

    def on_batch(epoch, i):
        if i == 0 and path.exists():
            epochs_on_disk.append(training.load_checkpoint(path)["epoch"])

    model, history = fit(epochs=3, checkpoint=path, on_batch=on_batch)
    assert epochs_on_disk == [1, 2]
    state = torch.load(path, weights_only=True)
    assert state["epoch"] == 3 and state["history"]["loss"] == history["loss"]
    assert torch.equal(state["model"]["weight"], model.weight)
    assert [p.name for p in path.parent.iterdir()] == ["model.pt"]  # no temporary files left


def test_a_failed_checkpoint_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "model.pt"
    fit(epochs=1, checkpoint=path)
    before = path.read_bytes()
    real_save = torch.save

    def crash_midway(obj, f):
        real_save({"partial": torch.zeros(1)}, f)
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash_midway)
    with pytest.raises(OSError, match="disk full"):
        fit(epochs=2, checkpoint=path)
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["model.pt"]


def test_resume_continues_where_training_stopped_and_matches_an_uninterrupted_run(tmp_path, capsys):
    straight, straight_history = fit(epochs=4)
    path = tmp_path / "model.pt"
    fit(epochs=2, checkpoint=path)
    resumed, history = fit(epochs=4, checkpoint=path, progress="plain")
    assert "Resumed from" in capsys.readouterr().out
    assert history.epochs == 4 and history["loss"] == straight_history["loss"]
    assert torch.equal(resumed.weight, straight.weight)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_resume_on_cuda_restores_the_gpu_random_stream_too(tmp_path):
    def run(epochs, checkpoint):
        torch.manual_seed(0)  # seeds the CUDA generator as well
        model = torch.nn.Linear(1, 1, device="cuda")

        def step(batch):
            with torch.no_grad():
                model.weight += torch.randn(1, 1, device="cuda")  # the global CUDA generator
            return {}

        training.train(model, torch.ones(8, 1), epochs=epochs, batch_size=4, step_fn=step, checkpoint=checkpoint,
                       progress="none")
        return model.weight.item()

    straight = run(4, None)
    run(2, tmp_path / "model.pt")
    assert run(4, tmp_path / "model.pt") == straight


def test_a_generator_state_from_another_device_is_skipped_with_a_note(tmp_path, capsys):
    path, g = tmp_path / "model.pt", torch.Generator().manual_seed(0)
    model = torch.nn.Linear(1, 1)

    def step(batch):
        return {"u": torch.rand(1, generator=g)}

    training.train(model, torch.ones(8, 1), epochs=1, batch_size=4, step_fn=step, checkpoint=path,
                   progress="none", generators={"noise": g})
    state = training.load_checkpoint(path)
    state["generators"]["noise"] = torch.zeros(16, dtype=torch.uint8)  # the size of a CUDA (Philox) state
    training.save_checkpoint(path, state)
    history = training.train(model, torch.ones(8, 1), epochs=2, batch_size=4, step_fn=step, checkpoint=path,
                             progress="none", generators={"noise": g})
    assert history.epochs == 2 and "generator 'noise' is not one for cpu" in capsys.readouterr().out


def test_resume_false_starts_afresh(tmp_path):
    path = tmp_path / "model.pt"
    fit(epochs=2, checkpoint=path)
    _, history = fit(epochs=1, checkpoint=path, resume=False)
    assert history.epochs == 1 and training.load_checkpoint(path)["epoch"] == 1


def test_ctrl_c_stops_cleanly_and_keeps_the_model_trained_so_far(tmp_path, capsys):
    path = tmp_path / "model.pt"
    snapshots = []

    def interrupt(epoch, i):
        if epoch == 2 and i == 3:
            snapshots.append(training.load_checkpoint(path)["model"]["weight"].clone())
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt) as stopped:  # raised again: nothing after fit in a cell or script runs
        fit(epochs=5, checkpoint=path, on_batch=interrupt, progress="plain")
    out = capsys.readouterr().out
    history = stopped.value.history
    assert history.interrupted and history.epochs == 1 and len(history["loss"]) == 1
    assert "Interrupted during epoch 2" in out and "holds epoch 1: run the same call again to resume" in out
    assert training.load_checkpoint(path)["epoch"] == 1
    _, finished = fit(epochs=5, checkpoint=path)  # and the run can be resumed from the last checkpoint
    assert finished.epochs == 5 and not finished.interrupted


def test_a_checkpoint_of_another_model_is_a_clear_error(tmp_path):
    path = tmp_path / "model.pt"
    training.save_checkpoint(path, {"model": {"weight": torch.zeros(3)}, "epoch": 1, "history": {}})
    with pytest.raises(ValueError, match="(?s)does not fit this model.*resume=False"):
        fit(epochs=2, checkpoint=path)


def test_bad_arguments_are_clear_errors():
    model, xy, loss_fn = make_problem()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="exactly one of loss_fn"):
        training.train(model, xy, epochs=1, batch_size=8, loss_fn=loss_fn, step_fn=loss_fn, optimizer=opt)
    with pytest.raises(ValueError, match="needs an optimizer"):
        training.train(model, xy, epochs=1, batch_size=8, loss_fn=loss_fn)
    with pytest.raises(ValueError, match="no training data"):
        training.train(model, xy[:0], epochs=1, batch_size=8, loss_fn=loss_fn, optimizer=opt)
    with pytest.raises(ValueError, match="batch_size must be a whole number >= 1, got 0"):
        training.train(model, xy, epochs=1, batch_size=0, loss_fn=loss_fn, optimizer=opt, progress="none")
    with pytest.raises(ValueError, match="progress must be"):
        training.train(model, xy, epochs=1, batch_size=8, loss_fn=loss_fn, optimizer=opt, progress="tqdm")


def test_tuples_of_arrays_are_batched_together_and_labels_stay_integers():
    import numpy as np

    seen = []
    model = torch.nn.Linear(1, 1)
    x = np.arange(10, dtype=np.float64)
    y = np.arange(10)

    def step(batch):
        images, labels = batch
        seen.append((images.dtype, labels.dtype, torch.equal(images.long(), labels)))
        return {}

    training.train(model, (x, y), epochs=1, batch_size=3, step_fn=step, progress="none")
    assert seen == [(torch.float32, torch.int64, True)] * 4
    with pytest.raises(ValueError, match="different lengths"):
        training.train(model, (x, y[:5]), epochs=1, batch_size=3, step_fn=step)


def test_a_diverging_run_stops_at_the_end_of_the_epoch_and_keeps_the_last_good_checkpoint(tmp_path):
    path = tmp_path / "model.pt"
    fit(epochs=1, checkpoint=path, lr=0.05)
    good = training.load_checkpoint(path)
    bad = tmp_path / "bad.pt"
    training.save_checkpoint(bad, good)
    with pytest.raises(training.TrainingDiverged, match=r"(?s)diverged in epoch \d.*loss = (nan|inf).*learning rate"):
        fit(epochs=30, checkpoint=bad, lr=50.0, resume=False)
    assert training.load_checkpoint(bad)["epoch"] >= 0  # still a loadable checkpoint, of an epoch before the blow-up
    assert all(math.isfinite(v) for v in training.load_checkpoint(bad)["history"]["loss"])


def test_non_finite_parameters_are_named():
    model = torch.nn.Linear(1, 1)

    def step(batch):
        with torch.no_grad():
            model.bias.fill_(float("nan"))
        return {}

    with pytest.raises(training.TrainingDiverged, match="non-finite parameters bias"):
        training.train(model, torch.ones(8, 1), epochs=2, batch_size=4, step_fn=step, progress="none")


def test_resuming_with_other_settings_is_refused_naming_each_difference(tmp_path):
    path = tmp_path / "model.pt"
    fit(epochs=1, checkpoint=path)
    with pytest.raises(ValueError, match=r"(?s)optimizer.lr: 0.05 in the checkpoint, 0.01 now.*resume=False"):
        fit(epochs=2, checkpoint=path, lr=0.01)
    with pytest.raises(ValueError, match=r"seed: 0 in the checkpoint, 1 now"):
        fit(epochs=2, checkpoint=path, seed=1)
    _, history = fit(epochs=3, checkpoint=path)  # more epochs with the same settings extend the run
    assert history.epochs == 3


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all", "truncated"])
def test_a_damaged_checkpoint_is_a_clear_error_naming_the_file(tmp_path, content):
    path = tmp_path / "model.pt"
    if content == "truncated":
        fit(epochs=1, checkpoint=path)
        content = path.read_bytes()[:200]
    path.write_bytes(content)
    with pytest.raises(ValueError, match=rf"(?s)checkpoint {path}.*damaged.*resume=False"):
        fit(epochs=2, checkpoint=path)
    _, history = fit(epochs=1, checkpoint=path, resume=False)  # the advice works
    assert history.epochs == 1


def test_a_checkpoint_of_something_else_is_a_clear_error(tmp_path):
    path = tmp_path / "model.pt"
    torch.save({"weights": torch.zeros(2)}, path)
    with pytest.raises(ValueError, match="not written by genmodels.training.train"):
        fit(epochs=1, checkpoint=path)


@pytest.mark.parametrize(("epochs", "got"), [(-3, " >= 0, got -3"), (1.5, ", got 1.5 \\(float\\)"),
                                             ("2", ", got '2' \\(str\\)"), (3.0, ", got the float 3.0; write 3")])
def test_epochs_must_be_a_whole_number(epochs, got):
    with pytest.raises(ValueError, match=f"epochs must be a whole number{got}"):
        fit(epochs=epochs)


def test_gradient_clipping_bounds_each_step_and_the_scheduler_resumes(tmp_path):
    model, xy, loss_fn = make_problem()
    before = model.weight.detach().clone()
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    training._after_batch = lambda epoch, i: (_ for _ in ()).throw(KeyboardInterrupt) if i == 0 else None
    with pytest.raises(KeyboardInterrupt):  # one step only: its size is lr times the clipped gradient's norm
        training.train(model, xy, epochs=1, batch_size=32, loss_fn=loss_fn, optimizer=optimizer, grad_clip=0.01,
                       progress="none")
    moved = torch.cat([(model.weight - before).flatten()]).norm().item()
    assert moved <= 0.01 + 1e-6
    training._after_batch = None
    path = tmp_path / "model.pt"

    def run(epochs):
        model, xy, loss_fn = make_problem()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
        training.train(model, xy, epochs=epochs, batch_size=32, loss_fn=loss_fn, optimizer=optimizer,
                       scheduler=scheduler, checkpoint=path, progress="none")
        return optimizer.param_groups[0]["lr"]

    assert run(2) == pytest.approx(0.025)
    assert run(3) == pytest.approx(0.0125)  # resumed: the scheduler continued from its checkpointed state


def test_metrics_keep_their_decimals_and_short_epochs_show_milliseconds():
    decimals = {}
    assert training._format_values({"loss": 123.456, "kl": 0.012345}, decimals) == "loss 123.5  kl 0.01235"
    assert training._format_values({"loss": 98.7654, "kl": 0.1}, decimals) == "loss 98.8  kl 0.10000"
    assert training._format_seconds(0.0423) == "42 ms" and training._format_seconds(12.34) == "12.3 s"


def test_a_long_run_in_a_notebook_leaves_few_outputs(tmp_path):
    """One progress bar per run (a widget in Jupyter) and epoch lines that merge into one stream: 60 epochs leave
    a handful of outputs, not two per epoch (JupyterLab hides all but the first 50 outputs of a cell)."""
    nbformat = pytest.importorskip("nbformat")
    from nbclient import NotebookClient

    cell = """
import torch
from genmodels import training
model = torch.nn.Linear(2, 1)
optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
def loss_fn(batch):
    return (model(batch) ** 2).mean(), {}
history = training.train(model, torch.randn(64, 2), epochs=60, batch_size=16, loss_fn=loss_fn,
                         optimizer=optimizer, progress="bar")
"""
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(cell)])
    NotebookClient(notebook, timeout=120, kernel_name="python3", resources={"metadata": {"path": tmp_path}}).execute()
    outputs = notebook.cells[0].outputs
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream" and o.name == "stdout")
    assert len(outputs) < 10, [o.output_type for o in outputs]
    assert not [o for o in outputs if o.get("name") == "stderr"]
    assert text.count("epoch ") == 60 and "epoch 60/60" in text
