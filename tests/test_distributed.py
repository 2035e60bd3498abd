"""The training loop under torchrun (genmodels.distributed): 2 gloo processes on loopback, started by the tests, against
one process trained on the same global batches; a checkpoint resumed by new processes; a rank that fails. And the
command line, `python -m genmodels train`, in one process."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from browser import free_port
from conftest import REPO, mnist_test_dir
from distributed_worker import BATCH, EPOCHS, N_EXAMPLES, regressor, train_regressor

from genmodels import cli, distributed, paths, training

WORKER = Path(__file__).with_name("distributed_worker.py")
LAUNCH_TIMEOUT_S = 240  # a run takes seconds; a hung collective must not hang the suite


def launch(scenario: str, out: Path) -> tuple[subprocess.CompletedProcess, float]:
    """torchrun with 2 processes on this machine's loopback; returns the finished process and its wall time."""
    env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "GLOO_SOCKET_IFNAME": "lo", "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO / "tests"), os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-addr", "127.0.0.1",
               "--master-port", str(free_port()), str(WORKER), scenario, str(out),
               str(mnist_test_dir() / "t10k-images-idx3-ubyte.gz")]
    start = time.perf_counter()
    finished = subprocess.run(command, env=env, capture_output=True, text=True, timeout=LAUNCH_TIMEOUT_S)
    return finished, time.perf_counter() - start


def ranks(out: Path, scenario: str) -> list[dict]:
    return [torch.load(out / f"{scenario}_rank{r}.pt", weights_only=False) for r in range(2)]


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    """The `train` scenario, then the `resume` scenario on its checkpoint, in fresh processes."""
    out = tmp_path_factory.mktemp("torchrun")
    for scenario in ("train", "resume"):
        finished, _ = launch(scenario, out)
        assert finished.returncode == 0, f"torchrun {scenario} failed:\n{finished.stdout[-3000:]}\n" \
                                         f"{finished.stderr[-6000:]}"
    return out, ranks(out, "train"), ranks(out, "resume")


@pytest.fixture(scope="module")
def one_process():
    """The regressor trained in one process on the whole batches: its weights, the example ids of each step, and its
    history of metrics."""
    model, seen = regressor(seed=100), []
    history = train_regressor(model, None, seen=seen)
    return model.state_dict(), seen, history.metrics


def test_two_ranks_train_as_one_process_on_the_same_global_batches(two_ranks, one_process):
    """Each rank starts from its own weights; after 3 epochs (33 steps, the last of each epoch split 2 + 1) both
    hold rank 0's weights trained on the whole batches: the one-process run's, within float32 rounding."""
    _, (rank0, rank1), _ = two_ranks
    weights, _, _ = one_process
    for name, expected in weights.items():
        assert torch.equal(rank0["regressor"][name], rank1["regressor"][name]), name
        torch.testing.assert_close(rank0["regressor"][name], expected, rtol=1e-5, atol=1e-6)


def test_the_ranks_metric_histories_and_evaluations_are_the_one_process_runs(two_ranks, one_process):
    """Epoch by epoch, on both ranks: the loss and the mean absolute error (each rank's sums and counts over its
    shards, added over the ranks) and the squared error on all the data (each rank's evaluation, averaged over the
    ranks) equal the one-process run's on the whole batches, within float32 rounding (sums in another order)."""
    _, (rank0, rank1), _ = two_ranks
    _, _, history = one_process
    assert set(history) == {"loss", "abs_error", "squared_error_all"} and len(history["loss"]) == EPOCHS
    for rank in (rank0, rank1):
        assert rank["regressor_history"].keys() == history.keys()
        for name, expected in history.items():
            torch.testing.assert_close(torch.tensor(rank["regressor_history"][name]), torch.tensor(expected),
                                       rtol=1e-5, atol=1e-6, msg=name)


def test_the_shards_of_an_epoch_are_disjoint_cover_the_data_and_change_between_epochs(two_ranks, one_process):
    """Step by step, the two ranks' examples are the one-process run's batch cut in two (sizes within one);
    each epoch's steps cover all 203 examples once; the epochs' orders differ."""
    _, (rank0, rank1), _ = two_ranks
    _, whole_batches, _ = one_process
    assert len(rank0["seen"]) == len(rank1["seen"]) == len(whole_batches) == EPOCHS * -(-N_EXAMPLES // BATCH)
    for mine, theirs, whole in zip(rank0["seen"], rank1["seen"], whole_batches, strict=True):
        assert mine + theirs == whole and not set(mine) & set(theirs) and abs(len(mine) - len(theirs)) <= 1
    steps = len(whole_batches) // EPOCHS
    epochs = [sum(whole_batches[e * steps:(e + 1) * steps], []) for e in range(EPOCHS)]
    assert all(sorted(order) == list(range(N_EXAMPLES)) for order in epochs)
    assert epochs[0] != epochs[1] != epochs[2]


def test_rank_0_alone_writes_the_checkpoint_with_every_ranks_own_state(two_ranks):
    out, (rank0, rank1), _ = two_ranks
    assert rank0["writes"] and rank1["writes"] == []
    assert rank0["writes"].count("regressor.pt") == EPOCHS
    state = training.load_checkpoint(out / "ebm_uninterrupted.pt")
    assert state["config"]["world_size"] == 2 and len(state["ranks"]) == 2
    assert torch.equal(state["ranks"][1]["buffers"]["buffer"], rank1["ebm_uninterrupted"]["buffer"])


def test_the_rbm_step_averages_its_statistics_over_the_ranks(two_ranks):
    """The positive phase's statistics averaged over the shards (6 and 5 rows), weighted by rows, are those of the
    whole batch; after PCD training the weights agree while each rank's persistent chains are its own."""
    _, (rank0, rank1), _ = two_ranks
    for rank in (rank0, rank1):
        for averaged, whole in zip(rank["rbm_statistics_averaged"], rank["rbm_statistics_whole_batch"], strict=True):
            torch.testing.assert_close(averaged, whole, rtol=1e-5, atol=1e-6)
    assert torch.equal(rank0["rbm"]["W"], rank1["rbm"]["W"])
    assert (rank0["rbm"]["chains"] != rank1["rbm"]["chains"]).float().mean() > 0.05


def test_each_rank_keeps_its_own_replay_buffer_and_resumes_it(two_ranks):
    """The energy model's buffers part after the first step (each rank's own noise and restarts) while the weights
    agree; 2 epochs, then 2 more in new processes from the checkpoint, end where 4 uninterrupted epochs do."""
    _, (rank0, rank1), resumed = two_ranks
    assert (rank0["ebm_uninterrupted"]["buffer"] != rank1["ebm_uninterrupted"]["buffer"]).float().mean() > 0.5
    for name, value in rank0["ebm_uninterrupted"].items():
        if name != "buffer":
            assert torch.equal(value, rank1["ebm_uninterrupted"][name]), name
    for uninterrupted, again in zip((rank0, rank1), resumed, strict=True):
        for name, value in uninterrupted["ebm_uninterrupted"].items():
            torch.testing.assert_close(again["ebm_resumed"][name], value, rtol=1e-5, atol=1e-6, msg=name)
    assert len(resumed[0]["history"]["loss"]) == 4


def test_a_divergence_on_one_rank_stops_every_rank_with_the_same_message(two_ranks):
    """Rank 1's loss turns NaN in epoch 2; the averaged gradient carries it to both, and both stop, back at epoch 1."""
    _, (rank0, rank1), _ = two_ranks
    assert rank0.get("diverged") and rank0["diverged"] == rank1.get("diverged")
    assert "epoch 2" in rank0["diverged"]
    for name, value in rank0["after_divergence"].items():
        assert value.isfinite().all() and torch.equal(value, rank1["after_divergence"][name])


def test_a_step_fn_that_does_not_average_over_the_ranks_is_caught_at_the_epochs_end(two_ranks):
    _, (rank0, rank1), _ = two_ranks
    assert "the ranks' parameters differ" in rank0.get("drifted", "") and rank0["drifted"] == rank1["drifted"]
    assert "genmodels.distributed.average" in rank0["drifted"]


def test_a_rank_that_raises_ends_both_processes_within_seconds_with_its_message(tmp_path):
    """Rank 0, waiting in backward's all-reduce for rank 1, learns of the broken connection and says so in a line."""
    finished, seconds = launch("raise", tmp_path)
    assert finished.returncode != 0
    output = finished.stdout + finished.stderr
    assert "rank 1 fails on purpose in its third step" in output
    assert "rank 0 stops: another process of this run failed or ended" in output
    assert seconds < 60, f"the run took {seconds:.0f} s to end after rank 1 failed"
    assert not list(tmp_path.glob("raise_rank*.pt"))  # neither rank reached the end


# --- in one process ----------------------------------------------------------------------------------------------


def test_a_checkpoint_of_two_processes_is_not_resumed_by_one(two_ranks):
    out, _, _ = two_ranks
    with pytest.raises(ValueError, match="written by 2 processes.*this run has one process.*resume=False"):
        train_regressor(regressor(seed=0), out / "regressor.pt")


def test_shards_cut_a_batch_into_consecutive_pieces_within_one_of_each_other():
    batch = torch.arange(11)
    pieces = [distributed.shard(batch, distributed.World(rank, 3)) for rank in range(3)]
    assert [p.tolist() for p in pieces] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10]]
    assert distributed.rank_seed(0, 0) != distributed.rank_seed(0, 1) == distributed.rank_seed(0, 1)


@pytest.mark.parametrize(("environment", "message"), [
    ({"WORLD_SIZE": "two"}, "WORLD_SIZE='two' must be a whole number"),
    ({"WORLD_SIZE": "2", "RANK": "2"}, "RANK=2 but WORLD_SIZE=2"),
])
def test_a_broken_torchrun_environment_is_named(monkeypatch, environment, message):
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=message):
        distributed.from_environment()


def test_the_command_line_trains_and_checkpoints_where_the_notebook_does(tmp_path, monkeypatch, capsys):
    """python -m genmodels train vae, one epoch of the quick profile: the notebook's checkpoint, then resumed."""
    monkeypatch.setattr(paths, "BUILD_DIR", tmp_path)
    history = cli.main(["train", "vae", "--profile", "quick", "--epochs", "1", "--device", "cpu"])
    checkpoint = paths.checkpoint_path("vae_mlp_quick.pt")
    assert history.epochs == 1 and checkpoint.exists() and tmp_path in checkpoint.parents
    assert "test_elbo" in history.metrics and f"checkpoint {checkpoint}" in capsys.readouterr().out
    again = cli.main(["train", "vae", "--profile", "quick", "--epochs", "1", "--device", "cpu"])
    assert again.metrics == history.metrics and "Resumed from vae_mlp_quick.pt" in capsys.readouterr().out


def test_the_command_line_names_a_wrong_model_and_negative_epochs(capsys):
    with pytest.raises(SystemExit):
        cli.main(["train", "gan"])
    assert "invalid choice: 'gan'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["train", "rbm", "--epochs", "-1"])
    assert "--epochs must be 0 or more" in capsys.readouterr().err


def test_under_torchrun_cuda_means_this_ranks_own_gpu(monkeypatch):
    """LOCAL_RANK picks the GPU ('cuda' → cuda:LOCAL_RANK); an explicit index and a single process are left alone;
    a rank without a GPU of its own is told how many processes fit."""
    from genmodels import device

    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    monkeypatch.setenv("WORLD_SIZE", "8")
    monkeypatch.setenv("LOCAL_RANK", "3")
    assert device._this_ranks_gpu(torch.device("cuda")) == torch.device("cuda", 3)
    assert device._this_ranks_gpu(torch.device("cuda", 0)) == torch.device("cuda", 0)
    assert device._this_ranks_gpu(torch.device("cpu")) == torch.device("cpu")
    monkeypatch.setenv("LOCAL_RANK", "4")
    with pytest.raises(ValueError, match=r"LOCAL_RANK=4 but this machine has 4 CUDA.*--nproc-per-node 4"):
        device._this_ranks_gpu(torch.device("cuda"))
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert device._this_ranks_gpu(torch.device("cuda")) == torch.device("cuda")
