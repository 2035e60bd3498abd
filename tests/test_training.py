"""The training loop: batches, history, progress, atomic checkpoints, resume, Ctrl-C, divergence."""

import math
import re
import traceback
from pathlib import Path

import pytest
import torch

from genmodels import basics, training


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
    parts = basics.batches(10, 4, g, "cpu")
    assert [len(p) for p in parts] == [4, 4, 2]
    assert sorted(torch.cat(parts).tolist()) == list(range(10))
    assert torch.cat(parts).tolist() != torch.cat(basics.batches(10, 4, g, "cpu")).tolist()  # new order each epoch


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


def interrupt_in_epoch(stop_epoch, batch=3):
    """An _after_batch hook that presses Ctrl-C at a chosen batch of a chosen epoch."""
    def interrupt(epoch, i):
        if (epoch, i) == (stop_epoch, batch):
            raise KeyboardInterrupt
    return interrupt


def test_ctrl_c_stops_cleanly_and_running_the_same_call_again_resumes(tmp_path, capsys):
    path = tmp_path / "model.pt"
    with pytest.raises(KeyboardInterrupt) as stopped:  # raised again: nothing after fit in a cell or script runs
        fit(epochs=5, checkpoint=path, on_batch=interrupt_in_epoch(2), progress="plain")
    assert isinstance(stopped.value, training.TrainingInterrupted)
    history = stopped.value.history
    assert history.interrupted and history.epochs == 1 and len(history["loss"]) == 1
    assert str(stopped.value) == (f"Interrupted during epoch 2: the model keeps the training done so far; the "
                                  f"checkpoint {path} holds epoch 1: run the same call again to resume from there.")
    assert training.load_checkpoint(path)["epoch"] == 1
    capsys.readouterr()
    _, finished = fit(epochs=5, checkpoint=path, progress="plain")  # the advice, followed literally
    out = capsys.readouterr().out
    assert out.startswith("Resumed from model.pt after epoch 1\n") and "epoch 1/5" not in out
    assert finished.epochs == 5 and not finished.interrupted
    assert finished["loss"][0] == history["loss"][0]


def test_ctrl_c_with_resume_off_says_the_same_call_starts_again_and_how_to_resume(tmp_path, capsys):
    path = tmp_path / "model.pt"
    with pytest.raises(KeyboardInterrupt) as stopped:
        fit(epochs=5, checkpoint=path, on_batch=interrupt_in_epoch(3), resume=False)
    assert str(stopped.value).endswith(f"the checkpoint {path} holds epoch 2. With resume=False the same call starts "
                                       "again at epoch 1: pass resume=True to resume from epoch 2.")
    _, again = fit(epochs=5, checkpoint=path, resume=False, progress="plain")  # starts again at epoch 1, as it says
    assert capsys.readouterr().out.startswith("epoch 1/5") and again.epochs == 5
    with pytest.raises(KeyboardInterrupt):
        fit(epochs=5, checkpoint=path, on_batch=interrupt_in_epoch(3), resume=False)
    _, resumed = fit(epochs=5, checkpoint=path, resume=True, progress="plain")  # and resume=True resumes
    assert capsys.readouterr().out.startswith("Resumed from model.pt after epoch 2\n") and resumed.epochs == 5


@pytest.mark.parametrize(("checkpoint", "said"), [
    (False, "nothing was saved to resume from (pass checkpoint=... for that)."),
    (True, "no epoch was finished, so model.pt holds nothing of this run.")])
def test_ctrl_c_in_the_first_epoch_names_no_checkpoint_that_holds_nothing(tmp_path, checkpoint, said):
    path = tmp_path / "model.pt"
    if checkpoint:
        fit(epochs=3, checkpoint=path, lr=0.01)  # an earlier run's file, which resume=False will not continue
    with pytest.raises(KeyboardInterrupt) as stopped:
        fit(epochs=5, checkpoint=path if checkpoint else None, on_batch=interrupt_in_epoch(1), resume=False)
    assert str(stopped.value) == f"Interrupted during epoch 1: the model keeps the training done so far; {said}"


def test_an_interrupt_shows_a_traceback_of_the_package_frames_only(tmp_path):
    with pytest.raises(KeyboardInterrupt) as stopped:
        fit(epochs=5, checkpoint=tmp_path / "model.pt", on_batch=interrupt_in_epoch(2))
    frames = [frame.f_code.co_filename for frame, _ in traceback.walk_tb(stopped.value.__traceback__)]
    assert frames[-1].endswith("basics.py") and not [f for f in frames if "torch" in Path(f).parts]  # basics.stop
    assert stopped.value.__suppress_context__  # the KeyboardInterrupt inside torch is not shown either


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


class Student:
    """A notebook's two cells: one builds the model (once), the other trains it and is run again after a mistake,
    building its optimiser afresh each time, as vae.fit does."""

    def __init__(self):
        self.model, self.xy, self.loss_fn = make_problem()

    def fit(self, lr, epochs=8, **kwargs):
        optimizer = torch.optim.SGD(self.model.parameters(), lr=lr, momentum=0.5)
        return training.train(self.model, self.xy, epochs=epochs, batch_size=32, loss_fn=self.loss_fn,
                              optimizer=optimizer, progress="plain", **kwargs)


def diverged_epoch(error) -> int:
    return int(str(error.value).split("diverged in epoch ")[1].split(":")[0])


def test_a_divergence_in_epoch_1_puts_back_the_initial_weights_and_a_lower_rate_then_trains(tmp_path, capsys):
    path = tmp_path / "model.pt"
    fit(epochs=2, checkpoint=path)  # an earlier run's checkpoint, which resume=False does not use
    before = path.read_bytes()
    student = Student()
    initial = student.model.state_dict()
    initial = {name: t.clone() for name, t in initial.items()}
    with pytest.raises(training.TrainingDiverged) as diverged:
        student.fit(lr=1e4, checkpoint=path, resume=False)
    message = str(diverged.value)
    assert message.startswith("training diverged in epoch 1: loss = ")
    assert ("The model and its optimiser are back at their initial values. A learning rate too large is the likely "
            "cause: lower it and run the same call again.") in message
    assert str(path) not in message and path.read_bytes() == before  # the file is another run's: not named, untouched
    assert all(torch.equal(t, initial[name]) for name, t in student.model.state_dict().items())
    capsys.readouterr()
    history = student.fit(lr=0.05, checkpoint=path, resume=False)  # the advice, followed literally
    assert history.epochs == 8 and history["loss"][-1] < 0.1 * history["loss"][0]
    assert capsys.readouterr().out.startswith("epoch 1/8")


def test_a_later_divergence_with_resume_goes_back_to_the_checkpoint_and_a_lower_rate_resumes_from_it(tmp_path,
                                                                                                      capsys):
    path = tmp_path / "model.pt"
    student = Student()
    with pytest.raises(training.TrainingDiverged) as diverged:
        student.fit(lr=2.0, checkpoint=path)
    epoch = diverged_epoch(diverged)
    good = training.load_checkpoint(path)
    assert epoch > 1 and good["epoch"] == epoch - 1 and diverged.value.history.epochs == epoch - 1
    assert (f"back at the end of epoch {epoch - 1}, which the checkpoint {path} holds. A learning rate too large is "
            f"the likely cause: lower it and run the same call again: it resumes from epoch {epoch - 1} with the new "
            "rate.") in str(diverged.value)
    assert all(torch.equal(t, good["model"][name]) for name, t in student.model.state_dict().items())
    capsys.readouterr()
    history = student.fit(lr=0.05, checkpoint=path)  # the advice, followed literally: allowed, and recorded
    assert capsys.readouterr().out.startswith(
        f"Resumed from model.pt after epoch {epoch - 1}, with optimizer.lr 2.0 -> 0.05 after the divergence in epoch "
        f"{epoch} (recorded in the checkpoint and in history.recoveries)\nepoch {epoch}/8")
    assert history.epochs == 8 and history["loss"][:epoch - 1] == diverged.value.history["loss"]
    assert history["loss"][-1] < 1e-3 * max(history["loss"])
    recovery = {"diverged_in_epoch": epoch, "resumed_after_epoch": epoch - 1, "changed": {"optimizer.lr": [2.0, 0.05]}}
    assert history.recoveries == [recovery] and training.load_checkpoint(path)["recoveries"] == [recovery]
    assert student.fit(lr=0.05, epochs=9, checkpoint=path).recoveries == [recovery]  # kept as the run goes on
    with pytest.raises(ValueError, match="other settings.*optimizer.lr: 0.05 in the checkpoint, 0.01 now"):
        student.fit(lr=0.01, epochs=10, checkpoint=path)  # without a divergence, a new rate is still refused


def test_a_later_divergence_without_resume_says_what_each_choice_does(tmp_path, capsys):
    path = tmp_path / "model.pt"
    student = Student()
    with pytest.raises(training.TrainingDiverged) as diverged:
        student.fit(lr=2.0, checkpoint=path, resume=False)
    epoch = diverged_epoch(diverged)
    assert str(diverged.value).endswith(
        f"back at the end of epoch {epoch - 1}. A learning rate too large is the likely cause: lower it and run the "
        "same call again: it trains from these weights, counting epochs from 1 (resume=True would resume from epoch "
        f"{epoch - 1} in model.pt). (NaN or infinite values in the data would do this too.)")
    weights = student.model.weight.detach().clone()
    assert torch.equal(weights, training.load_checkpoint(path)["model"]["weight"])
    capsys.readouterr()
    history = student.fit(lr=0.05, checkpoint=path, resume=False)  # from these weights, epochs from 1
    assert capsys.readouterr().out.startswith("epoch 1/8") and history.epochs == 8
    assert history["loss"][-1] < 1e-3 * history["loss"][0]
    student = Student()
    with pytest.raises(training.TrainingDiverged):
        student.fit(lr=2.0, checkpoint=path, resume=False)
    history = student.fit(lr=0.05, checkpoint=path, resume=True)  # or resume from the checkpoint, as it says
    assert history.epochs == 8 and history.recoveries[0]["resumed_after_epoch"] == epoch - 1


NAN, INF = float("nan"), float("inf")


@pytest.mark.parametrize("poisoned, metrics, message", [
    ({"0.bias": NAN, "1.running_var": INF}, {"loss": NAN, "kl": 1.0, "other": INF},
     r"in epoch 1: loss = nan; 1 more metric and 2 tensors of the model are not finite either"),
    ({"0.bias": NAN}, {}, r"in epoch 1: non-finite values in 0\.bias\. The model"),
    ({"0.bias": NAN, "0.weight": NAN}, {}, r"values in 0\.weight; 1 more tensor of the model is not"),
], ids=["a metric, then a parameter and a buffer", "one parameter", "the first of two parameters"])
def test_the_first_non_finite_value_is_named_and_the_rest_counted(poisoned, metrics, message):
    """Each step makes the `poisoned` tensors of the model (parameters or buffers, by name) non-finite and returns
    `metrics`: the error names the first non-finite value, a metric before a tensor, and counts the rest."""
    model = torch.nn.Sequential(torch.nn.Linear(1, 2), torch.nn.BatchNorm1d(2))

    def step(batch):
        tensors = model.state_dict()  # shares the model's storage
        with torch.no_grad():
            for name, value in poisoned.items():
                tensors[name].fill_(value)
        return {name: torch.tensor(value) for name, value in metrics.items()}

    with pytest.raises(training.TrainingDiverged, match=message):
        training.train(model, torch.ones(8, 1), epochs=2, batch_size=4, step_fn=step, progress="none")


def test_a_divergence_puts_back_buffers_and_the_optimiser_state_of_the_last_good_epoch():
    """The energy model's replay buffer is a module buffer: it is part of the state a divergence is undone to."""
    model, xy, loss_fn = make_problem()
    model.register_buffer("replay", torch.zeros(3))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.5)
    seen = {}

    def on_batch(epoch, i):
        model.replay += 1  # one more per batch: 8 batches per epoch
        if epoch == 2 and i == 7:
            seen["momentum"] = optimizer.state[model.weight]["momentum_buffer"].clone()
        if epoch == 3 and i == 7:
            model.weight.data.fill_(float("nan"))

    training._after_batch = on_batch
    with pytest.raises(training.TrainingDiverged, match="in epoch 3: .*back at the end of epoch 2"):
        training.train(model, xy, epochs=5, batch_size=32, loss_fn=loss_fn, optimizer=optimizer, progress="none")
    assert model.replay.tolist() == [16.0] * 3 and model.weight.isfinite().all()
    assert torch.equal(optimizer.state[model.weight]["momentum_buffer"], seen["momentum"])


def test_the_snapshot_is_one_copy_of_the_state_refreshed_in_place():
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.Adam(model.parameters())
    model(torch.ones(1, 3)).sum().backward()
    optimizer.step()
    snapshot = training._Snapshot(model, optimizer, None)
    tensors = [t for t in snapshot.state["model"].values()]
    optimizer.step()
    snapshot.take()
    assert [t.data_ptr() for t in snapshot.state["model"].values()] == [t.data_ptr() for t in tensors]
    assert torch.equal(snapshot.state["model"]["weight"], model.weight)
    assert snapshot.state["model"]["weight"].data_ptr() != model.weight.data_ptr()


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


def test_a_students_mistakes_end_in_tracebacks_of_at_most_15_lines_in_a_notebook(tmp_path):
    """Bad input, a divergence and a stop, as IPython shows them in a notebook: the student's line, one short frame
    of the package (IPython never hides the last one) and the message, not pages of the loop or of torch."""
    nbformat = pytest.importorskip("nbformat")
    from nbclient import NotebookClient

    setup = f"""
import numpy as np, torch
from genmodels import training, vae
images = np.random.default_rng(0).random((256, 28, 28), dtype=np.float32)
torch.manual_seed(0)
model = vae.mlp_vae(latent_dim=2, hidden=32)
checkpoint = {str(tmp_path / "vae.pt")!r}
def stop(epoch, i):  # the stop button, pressed in epoch 2
    if (epoch, i) == (2, 3):
        raise KeyboardInterrupt
"""
    cells = [setup, "history = vae.fit(model, images * 255, epochs=2)",
             "history = vae.fit(model, images, epochs=2, lr=10, batch_size=32, progress='plain',\n"
             "                  checkpoint=checkpoint, resume=False)",
             "training._after_batch = stop\n"
             "history = vae.fit(model, images, epochs=4, batch_size=32, progress='plain', checkpoint=checkpoint)"]
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    NotebookClient(notebook, timeout=120, kernel_name="python3", allow_errors=True,
                   resources={"metadata": {"path": tmp_path}}).execute()
    errors = [[o for o in cell.outputs if o.output_type == "error"] for cell in notebook.cells[1:]]
    assert [[e.ename for e in cell] for cell in errors] == [["ValueError"], ["TrainingDiverged"],
                                                            ["TrainingInterrupted"]]
    for cell in errors:
        lines = re.sub(r"\x1b\[[0-9;]*m", "", "\n".join(cell[0].traceback)).splitlines()
        assert len(lines) <= 15 and "torch" not in "\n".join(lines[:-1]), "\n".join(lines)
        assert "skipping hidden" in "\n".join(lines)
