"""One rank of tests/test_distributed.py's runs, started by torch.distributed.run (torchrun) on 2 gloo processes:

    python -m torch.distributed.run --nproc-per-node 2 tests/distributed_worker.py SCENARIO OUT_DIR MNIST_IMAGES

Each scenario trains through genmodels.training.train (or the models' fit) and leaves what the test checks in
OUT_DIR/<scenario>_rank<r>.pt: parameters, buffers, the examples each step saw, who wrote checkpoints, messages.
  train    a small regressor (each rank builds its own initial weights), an RBM by PCD, the energy model over
           4 epochs and over 2 (checkpointed), an epoch that diverges, and a step_fn that does not average
  resume   the energy model's 2-epoch checkpoint resumed to 4 epochs in new processes
  raise    rank 1 raises in its third step of the first epoch; rank 0 carries on into the next all-reduce
"""

import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

from genmodels import data, distributed, ebm, rbm, training

N_EXAMPLES, BATCH, EPOCHS = 203, 20, 3  # the last batch (3 examples) splits unevenly: 2 and 1


def regression_data():
    """Inputs, targets and example ids: the same on every rank (a fixed generator)."""
    g = torch.Generator().manual_seed(5)
    x = torch.randn(N_EXAMPLES, 5, generator=g)
    y = torch.sin(x.sum(1, keepdim=True)) + 0.1 * torch.randn(N_EXAMPLES, 1, generator=g)
    return x, y, torch.arange(N_EXAMPLES)


def regressor(seed):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(5, 16), nn.Tanh(), nn.Linear(16, 1))


def train_regressor(model, checkpoint, seen=None, diverge_in_epoch=None, rank=0):
    """SGD on the mean squared error, with the mean absolute error as a second metric and the squared error on all
    the data as the evaluation (the same on every rank, whose weights agree); `seen` collects the example ids of
    each step; from `diverge_in_epoch` on, rank 1's loss is NaN. Returns the History."""
    epoch = [0]
    x, y, ids = regression_data()

    def loss_fn(batch):
        xb, yb, idb = batch
        if seen is not None:
            seen.append(idb.tolist())
        error = model(xb) - yb
        loss = (error ** 2).mean()
        if diverge_in_epoch is not None and epoch[0] >= diverge_in_epoch and rank == 1:
            loss = loss * float("nan")
        return loss, {"abs_error": error.abs().mean()}

    def evaluate():
        epoch[0] += 1
        return {"squared_error_all": ((model(x) - y) ** 2).mean()}

    return training.train(model, (x, y, ids), epochs=EPOCHS, batch_size=BATCH, loss_fn=loss_fn,
                          optimizer=torch.optim.SGD(model.parameters(), lr=0.1), evaluate=evaluate,
                          checkpoint=checkpoint, progress="none", seed=3)


def energy_model():
    torch.manual_seed(0)  # the network's initial weights (its buffer's noise comes from the generator)
    return ebm.EnergyModel(channels=(4, 4, 8, 8), hidden=8, buffer_size=128, generator=torch.Generator().manual_seed(0))


def train_energy_model(model, images, epochs, checkpoint):
    return ebm.fit(model, images, epochs=epochs, batch_size=32, lr=1e-3, sampler=ebm.Sampler(n_steps=5),
                   checkpoint=checkpoint, progress="none", seed=1)


def main(scenario, out, images_path):
    out = Path(out)
    images = data.read_idx(images_path)[:256].astype(np.float32)[:, None] / 255
    world = distributed.start(torch.device("cpu"))  # train would start it; the RBM's statistics come first
    rank = world.rank
    result = {}
    if scenario == "train":
        writes = []
        save = training.save_checkpoint
        training.save_checkpoint = lambda path, state: (writes.append(Path(path).name), save(path, state))
        model = regressor(seed=100 + rank)  # rank 0's weights must reach every rank
        seen = []
        history = train_regressor(model, out / "regressor.pt", seen)
        result["regressor"] = {k: v.detach().clone() for k, v in model.state_dict().items()}
        result["regressor_history"] = history.metrics
        result["seen"] = seen

        machine = rbm.RBM(784, 16, n_chains=10, generator=torch.Generator().manual_seed(0))
        v = torch.as_tensor(data.binarize_once(images.reshape(len(images), -1))[:64])
        global_batch = v[:11]
        shard = distributed.shard(torch.arange(11), world)
        result["rbm_statistics_averaged"] = distributed.average(machine.phase_statistics(global_batch[shard]),
                                                                weight=len(shard))
        result["rbm_statistics_whole_batch"] = machine.phase_statistics(global_batch)
        rbm.fit(machine, v, epochs=2, batch_size=16, lr=0.05, persistent=True, progress="none", seed=2)
        result["rbm"] = {"W": machine.W.detach().clone(), "chains": machine.chains.clone()}

        uninterrupted = energy_model()
        train_energy_model(uninterrupted, images, 4, out / "ebm_uninterrupted.pt")
        result["ebm_uninterrupted"] = {k: v.clone() for k, v in uninterrupted.state_dict().items()}
        train_energy_model(energy_model(), images, 2, out / "ebm_resumed.pt")
        result["writes"] = writes

        diverging = regressor(seed=0)
        try:
            train_regressor(diverging, None, diverge_in_epoch=1, rank=rank)
        except training.TrainingDiverged as err:
            result["diverged"] = str(err)
        result["after_divergence"] = {k: v.detach().clone() for k, v in diverging.state_dict().items()}

        drifting = regressor(seed=0)

        def own_update(batch):  # a step_fn that forgets to average its update over the ranks
            with torch.no_grad():
                drifting[0].bias.add_(0.01 * (rank + 1))
            return {}

        try:
            training.train(drifting, regression_data()[0], epochs=1, batch_size=BATCH, step_fn=own_update,
                           progress="none")
        except training.TrainingDiverged as err:
            result["drifted"] = str(err)
    elif scenario == "resume":
        model = energy_model()
        history = train_energy_model(model, images, 4, out / "ebm_resumed.pt")
        result["ebm_resumed"] = {k: v.clone() for k, v in model.state_dict().items()}
        result["history"] = history.metrics
    elif scenario == "raise":
        def fail(epoch, step):
            if rank == 1 and epoch == 1 and step == 2:
                raise RuntimeError("rank 1 fails on purpose in its third step")

        training._after_batch = fail
        train_regressor(regressor(seed=0), None)
    torch.save(result, out / f"{scenario}_rank{rank}.pt")


if __name__ == "__main__":
    main(*sys.argv[1:])
