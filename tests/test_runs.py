"""genmodels.runs: every training run defined once, trained only through it, and one checkpoint rule."""

import ast
from dataclasses import replace

import jupytext
import pytest
import torch
from conftest import REPO, mnist_test_dir

from genmodels import cli, data, get_profile, paths, runs

QUICK, FULL = get_profile("quick"), replace(get_profile("full"), device_type="cpu")
FULL_GPU = replace(FULL, device_type="cuda")  # the GPU column, which CI never runs

# A notebook or the lecture trains models through genmodels.runs alone. These calls of a fit are not runs of the
# course, each for its reason: (notebook, the start of the call's line).
NOT_RUNS = {
    ("00_data_and_setup.py", "history = training.train("): "teaches the training loop itself, on a softmax",
    ("02_rbm_keras.py", "rbm_keras.fit(rbm_keras.RBM(784, 10)"): "shows the error a grey-level input gets",
    ("04_energy_based_model.py", "trial = ebm.fit(copy"): "varies the safeguards on purpose, to show divergence",
}
FITS = {"fit", "train"}  # rbm.fit, ebm.fit, vae.fit, rbm_keras.fit, vae_keras.fit, training.train
NOTEBOOK_SCRIPTS = sorted(p for folder in ("week13", "notebooks") for p in (REPO / folder).glob("*.py"))


def fit_calls(source: str) -> list[str]:
    """The lines of `source` that call a function named fit or train on a module other than runs."""
    lines = source.splitlines()
    return [lines[node.lineno - 1].strip() for node in ast.walk(ast.parse(source))
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in FITS
            and not (isinstance(node.func.value, ast.Name) and node.func.value.id == "runs")]


@pytest.mark.parametrize("script", NOTEBOOK_SCRIPTS, ids=lambda p: p.name)
def test_notebooks_train_only_through_runs(script):
    source = "\n".join(cell.source for cell in jupytext.read(script).cells
                       if cell.cell_type == "code" and not cell.source.lstrip().startswith(("%", "!")))
    found = [line for line in fit_calls(source)
             if not any(name == script.name and line.startswith(start) for name, start in NOT_RUNS)]
    assert not found, (f"{script.name} trains a model with settings that genmodels.runs does not define; define a run "
                       "there and call runs.build and runs.train:\n" + "\n".join(found))


def test_a_fit_outside_runs_is_found():
    code = "model = runs.build(s, d)\nruns.train(model, dataset, s)\nrbm.fit(model, x, epochs=3)\nh = ebm.fit(m, x)"
    assert fit_calls(code) == ["rbm.fit(model, x, epochs=3)", "h = ebm.fit(m, x)"]


def test_every_allowed_fit_is_still_in_its_notebook():
    """An entry of NOT_RUNS whose call is gone would let a new fit through under its name."""
    for name, start in NOT_RUNS:
        script = next(p for p in NOTEBOOK_SCRIPTS if p.name == name)
        assert any(line.startswith(start) for line in fit_calls(script.read_text())), (name, start)


@pytest.mark.parametrize("name", runs.RUNS)
def test_every_run_resolves_in_each_profile_and_device_column(name):
    resolved = [runs.settings(name, profile) for profile in (QUICK, FULL, FULL_GPU)]
    for settings in resolved:
        assert not any(isinstance(value, runs.By) for value in settings.values.values())
        assert name in str(settings) and runs.RUNS[name].notebook in str(settings)
    names = [s.checkpoint.name for s in resolved if s.checkpoint is not None]
    assert len(set(names)) == len(names) - (len(names) == 3)  # quick and full differ; the GPU shares full's file


def test_no_two_runs_write_one_checkpoint():
    files = [runs.settings(name, profile).checkpoint for name in runs.RUNS for profile in (QUICK, FULL)]
    files = [f for f in files if f is not None]
    assert len(files) == len(set(files))


def test_the_gpu_column_is_the_tutorials_recipe_and_changes_only_what_it_names():
    from genmodels import ebm

    cpu, gpu = (runs.settings("ebm", p) for p in (FULL, FULL_GPU))
    tutorial = ebm.TUTORIAL_TRAINING
    assert (gpu.epochs, gpu.lr, gpu.batch_size) == (tutorial["epochs"], tutorial["lr"], tutorial["batch_size"])
    assert gpu.n_steps == tutorial["sampler"].n_steps and gpu.restart == ebm.EnergyModel().restart
    assert (cpu.epochs, cpu.n_steps) != (gpu.epochs, gpu.n_steps)
    assert runs.settings("rbm", FULL).values == runs.settings("rbm", FULL_GPU).values  # no gpu= column


def test_an_override_replaces_one_setting_and_none_keeps_the_runs():
    base = runs.settings("rbm", QUICK)
    changed = runs.settings("rbm", QUICK, epochs=7, n_hidden=None)
    assert changed.epochs == 7 and changed.n_hidden == base.n_hidden
    assert {k: v for k, v in changed.values.items() if k != "epochs"} == \
        {k: v for k, v in base.values.items() if k != "epochs"}


def test_a_wrong_run_or_setting_is_named():
    with pytest.raises(ValueError, match=r"no run named 'rbn'; the course's runs: rbm, "):
        runs.settings("rbn", QUICK)
    with pytest.raises(ValueError, match=r"the run 'rbm' has no setting 'epoch'; its settings: n_hidden, lr"):
        runs.settings("rbm", QUICK, epoch=3)
    with pytest.raises(AttributeError, match=r"the run 'rbm' has no setting 'learning_rate'"):
        _ = runs.settings("rbm", QUICK).learning_rate


def test_the_checkpoint_rule():
    """Full profile: everyone resumes. Quick: the teaching notebook starts afresh, the others read its checkpoint."""
    assert runs.resumes(runs.settings("rbm", FULL), teaching=True)
    assert runs.resumes(runs.settings("rbm", FULL), teaching=False)
    assert not runs.resumes(runs.settings("rbm", QUICK), teaching=True)
    assert runs.resumes(runs.settings("rbm", QUICK), teaching=False)


@pytest.fixture
def small_rbm_run(tmp_path, monkeypatch, one_thread):
    """The run `rbm` made small (8 hidden units, one epoch) on 1,000 test images, its checkpoint under tmp_path."""
    monkeypatch.setattr(paths, "BUILD_DIR", tmp_path)
    monkeypatch.setenv("GENMODELS_DATA", str(mnist_test_dir().parent))
    dataset = data.load_data(QUICK, verbose=False)
    dataset = replace(dataset, x_train=dataset.x_train[:1000], x_test=dataset.x_test[:200])
    return dataset, lambda profile, **changes: runs.settings("rbm", profile, n_hidden=8, epochs=1, **changes)


def test_quick_teaching_trains_afresh_and_the_others_read_its_checkpoint(small_rbm_run, capsys):
    dataset, small = small_rbm_run
    settings = small(QUICK)
    taught = runs.build(settings, "cpu", seed=0)
    history = runs.train(taught, dataset, settings, teaching=True)
    assert settings.checkpoint.exists() and history.epochs == 1
    capsys.readouterr()
    reader, read = runs.trained(dataset, settings, "cpu")  # notebook 08, the command line
    assert "Resumed from 01_rbm_quick.pt after epoch 1" in capsys.readouterr().out
    assert torch.equal(reader.W, taught.W) and read.metrics == history.metrics
    again = runs.build(settings, "cpu", seed=0)
    runs.train(again, dataset, settings, teaching=True)  # the teaching notebook run a second time: afresh
    assert "Resumed" not in capsys.readouterr().out


def test_full_teaching_reads_what_the_command_line_wrote(small_rbm_run, capsys):
    dataset, small = small_rbm_run
    settings = small(FULL)
    runs.trained(dataset, settings, "cpu")  # python -m genmodels train rbm
    capsys.readouterr()
    model = runs.build(settings, "cpu", seed=0)
    runs.train(model, dataset, settings, teaching=True)  # notebook 01 afterwards
    assert "Resumed from 01_rbm_full.pt after epoch 1" in capsys.readouterr().out
    with pytest.raises(ValueError, match="trained with other settings"):  # another learning rate is refused
        runs.train(runs.build(settings, "cpu"), dataset, small(FULL, lr=0.01), teaching=True)


def test_the_command_line_trains_the_runs_and_prints_their_settings(tmp_path, monkeypatch, capsys, one_thread):
    monkeypatch.setattr(paths, "BUILD_DIR", tmp_path)
    monkeypatch.setenv("GENMODELS_DATA", str(mnist_test_dir().parent))
    for run in cli._RUNS.values():
        assert run in runs.RUNS and runs.RUNS[run].checkpoint is not None
    cli.main(["train", "rbm", "--profile", "quick", "--epochs", "0", "--device", "cpu"])
    out = capsys.readouterr().out
    assert str(runs.settings("rbm", QUICK, epochs=0)) in out
