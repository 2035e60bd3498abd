"""The one training loop of the course.  Taught in 00_data_and_setup; used by every model.

The data live as one tensor on the device and each batch is a slice of a fresh permutation (no per-sample
DataLoader). A model is trained either from a loss (`loss_fn(batch) -> loss, metrics`, the loop does backward and the
optimiser step) or from a custom update (`step_fn(batch) -> metrics`, e.g. contrastive divergence). The loop keeps a
history, reports progress, writes a checkpoint atomically after every epoch, resumes from it, and stops cleanly on
Ctrl-C, keeping the model trained so far. An epoch that ends with a non-finite loss or weights puts the model and
the optimiser back where the last good epoch left them (one copy of their state, kept on the device), so that a
lower learning rate can carry on from there. Started by torchrun on several processes (CPUs or GPUs, one machine or
many), the same loop trains data-parallel: genmodels.distributed says how, step by step.
"""

from __future__ import annotations

import contextlib
import copy
import math
import os
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from . import distributed
from .basics import as_tensor, batches, stop
from .checks import check_count, check_progress
from .device import amp_dtype

__all__ = ["train", "History", "TrainingDiverged", "CheckpointRefused", "TrainingInterrupted", "save_checkpoint",
           "load_checkpoint", "describe_non_finite", "diverged_message", "interrupted_message"]


@dataclass
class History:
    """Per-epoch means of the training metrics and the values of `evaluate`: one list per name, one entry per epoch,
    NaN for an epoch in which a metric had no value (a step that reports it now and then, say)."""

    metrics: dict[str, list[float]] = field(default_factory=dict)
    epochs: int = 0  # epochs completed
    interrupted: bool = False
    recoveries: list[dict] = field(default_factory=list)  # learning rates changed on resuming after a divergence

    def append(self, values: dict[str, float]) -> None:
        for name in values:
            self.metrics.setdefault(name, [math.nan] * self.epochs)
        for name, history in self.metrics.items():
            history.append(float(values.get(name, math.nan)))
        self.epochs += 1

    def __getitem__(self, name: str) -> list[float]:
        return self.metrics[name]

    def __contains__(self, name: str) -> bool:
        return name in self.metrics

    def last(self) -> dict[str, float]:
        return {name: values[-1] for name, values in self.metrics.items() if values}


def save_checkpoint(path, state: dict) -> None:
    """torch.save to a temporary file beside `path`, then rename: a crash never leaves a half-written checkpoint."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def load_checkpoint(path, device="cpu") -> dict:
    """Load a checkpoint written by `train` (tensors and plain containers only: weights_only=True). A file that is
    not one (truncated, empty, another format) is a ValueError naming it."""
    try:
        with warnings.catch_warnings():  # torch warns of a damaged file's pickle protocol; our message says it
            warnings.simplefilter("ignore", UserWarning)
            state = torch.load(path, map_location=device, weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as err:  # torch raises RuntimeError, EOFError, UnpicklingError, ... depending on the damage
        # torch's own first line only: its advice to load with weights_only=False would run the file's code
        first = str(err).strip().splitlines()[0] if str(err).strip() else "no details"
        if "weights_only" in first.lower() or "weights only" in first.lower():
            first = "not a file that torch.load reads safely"
        raise CheckpointRefused(f"the checkpoint {path} is damaged or not a checkpoint ({type(err).__name__}: "
                                f"{first}); delete it, or pass resume=False to start afresh") from err
    if not isinstance(state, dict) or not {"model", "epoch", "history"} <= state.keys():
        raise CheckpointRefused(f"the checkpoint {path} was not written by genmodels.training.train; delete it, or "
                                "pass resume=False to start afresh")
    return state


class CheckpointRefused(ValueError):
    """A checkpoint that cannot be resumed: damaged, not written by `train`, or written with other settings, another
    model or another number of processes. The message says how to start afresh."""


class TrainingDiverged(FloatingPointError):
    """Training produced a non-finite loss or weights; the model is back at the last good epoch (`.history`)."""


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C (or Jupyter's stop button) during training: its message says what is kept and how to go on; raised
    afresh from the loop, so that the traceback ends at the student's call rather than deep inside torch."""


_after_batch = None  # tests set this to a function(epoch, batch_index), to interrupt training at a chosen batch


def train(
    model: torch.nn.Module,
    x,
    *,
    epochs: int,
    batch_size: int,
    loss_fn: Callable | None = None,
    step_fn: Callable | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    evaluate: Callable[[], dict] | None = None,
    checkpoint: str | os.PathLike | None = None,
    resume: bool = True,
    progress: str = "bar",
    seed: int = 0,
    amp: bool | None = None,
    generators: dict[str, torch.Generator] | None = None,
    config: dict | None = None,
    grad_clip: float | None = None,
    scheduler=None,
) -> History:
    """Train `model` for `epochs` passes over `x`: an array or tensor whose first axis indexes examples, or a tuple
    of them (images and labels, say), in which case each batch is a tuple too.

    loss_fn(batch) -> (loss, metrics)  with `optimizer`: the loop does zero_grad, backward and step.
    step_fn(batch) -> metrics          the function updates the model itself (contrastive divergence, say).
    Each metric's epoch value is its mean over the examples of the batches that reported it.
    evaluate() -> metrics              called after each epoch with gradients off, model in eval mode.
    checkpoint: file written atomically after each epoch; with `resume`, training continues from it (asking for more
    epochs extends a run). `config`, the settings that change the result (learning rate, k, ...), is stored with it,
    together with the batch size, the seed and the optimiser's settings: resuming with other values is refused.
    progress: "bar" (tqdm), "plain" (one line per epoch) or "none".
    amp: bfloat16 autocast around loss_fn; None turns it on where it pays (CUDA), never on the CPU.
    generators: the random generators loss_fn or step_fn draw from (dynamic binarisation, say), by name: their states
    go into the checkpoint, so that a resumed run draws what an uninterrupted one would have.
    grad_clip: clip the gradients' norm to this value between backward and step; scheduler: a learning-rate scheduler
    stepped after each epoch (both with loss_fn only).
    Under torchrun (WORLD_SIZE > 1) it trains data-parallel (genmodels.distributed): `batch_size` stays the global
    batch of one step, split across the processes; rank 0 alone prints and writes the checkpoint, which holds every
    rank's own buffers and generators and is resumed only by as many processes.
    A non-finite metric or weight at the end of an epoch stops training (TrainingDiverged) with the model, the
    optimiser and the scheduler back at the end of the last good epoch (their start when the first one diverged), the
    checkpoint still holding that epoch: resuming from it with a lower learning rate (only) is then allowed, and
    recorded in the checkpoint and in History.recoveries. Ctrl-C stops training (TrainingInterrupted, a
    KeyboardInterrupt) with a message that says what the model and the checkpoint hold and how to go on.
    """
    __tracebackhide__ = True  # IPython and pytest show the caller's line and the message, not this frame
    if (loss_fn is None) == (step_fn is None):
        raise ValueError("give exactly one of loss_fn (with an optimizer) or step_fn")
    if loss_fn is not None and optimizer is None:
        raise ValueError("loss_fn needs an optimizer to step")
    check_progress(progress)
    check_count("epochs", epochs, minimum=0)
    check_count("batch_size", batch_size)
    device = next(model.parameters()).device
    as_tuple = isinstance(x, tuple | list)
    tensors = tuple(as_tensor(a, device) for a in x) if as_tuple else (as_tensor(x, device),)
    n = len(tensors[0])
    if n == 0:
        raise ValueError("no training data: x is empty")
    if any(len(t) != n for t in tensors):
        raise ValueError(f"the arrays in x have different lengths {[len(t) for t in tensors]}; they must match")
    world = distributed.start(device)
    if world.active:
        if batch_size < world.size:
            raise ValueError(f"batch_size={batch_size} is the global batch of one step, split across the "
                             f"{world.size} processes: it must be at least {world.size}")
        progress = progress if world.leader else "none"  # one voice: rank 0's
    settings = {**(config or {}), "batch_size": batch_size, "seed": seed, **_optimizer_settings(optimizer)}
    run = _Run(model, optimizer, scheduler, torch.Generator().manual_seed(seed), generators or {},
               {**settings, "world_size": world.size} if world.active else settings, world)
    loss_through = loss_fn  # under torchrun, through DistributedDataParallel: backward averages the gradients
    if world.active:
        if loss_fn is not None:
            loss_through = distributed.data_parallel_loss(model, loss_fn, device)
        else:
            distributed.broadcast_parameters(model)
    history = History()
    if checkpoint is not None and resume and Path(checkpoint).exists():
        history = run.restore(checkpoint)
        if progress != "none":
            print(f"Resumed from {Path(checkpoint).name} after epoch {history.epochs}{run.recovery_note()}")
    elif world.active:
        run.seed_per_rank(seed)
    snapshot = _Snapshot(model, optimizer, scheduler)  # what a diverging epoch returns to

    def batch_step(batch, weight):
        if step_fn is not None:
            return step_fn(batch)
        with torch.autocast(device.type, dtype=autocast_dtype) if autocast_dtype else contextlib.nullcontext():
            loss, metrics = loss_through(batch)
        optimizer.zero_grad(set_to_none=True)
        (loss * weight if weight != 1 else loss).backward()  # weight: this rank's share of the global batch
        if grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        optimizer.step()
        return {"loss": loss, **metrics}

    autocast_dtype = amp_dtype(device) if amp in (None, True) else None
    bar = _progress_bar(progress, (epochs - history.epochs) * math.ceil(n / batch_size))
    say = bar.write if bar is not None else print  # lines printed beside a live bar must not break it
    decimals: dict[str, int] = {}
    model.train()
    try:
        for epoch in range(history.epochs + 1, epochs + 1):
            start = time.perf_counter()
            if bar is not None:
                bar.set_description(f"epoch {epoch}/{epochs}")
            raised = False
            try:
                values = _run_epoch(batch_step, tensors, as_tuple, batch_size, run.generator, epoch, bar, world)
                if evaluate is not None:
                    model.eval()
                    with torch.no_grad():
                        evaluated = {k: float(v) for k, v in evaluate().items()}
                    values.update(distributed.mean_over_ranks(evaluated) if world.active else evaluated)
                    model.train()
                found = _non_finite(model, values)
            except TrainingDiverged as err:  # a step that met non-finite values itself (the energy model's sampler)
                found, raised = str(err), True  # under torchrun this rank stops alone, the others mid-epoch
            if world.active and not raised:
                found = distributed.agree(found, model, world)
            if found is not None:
                snapshot.restore()
                if checkpoint is not None and run.saved_epoch == history.epochs > 0:
                    run.mark_diverged(checkpoint, epoch)
                diverged = TrainingDiverged(diverged_message(found, epoch, history.epochs, checkpoint,
                                                             run.saved_epoch, resume))
                diverged.history = history
                stop(diverged)
            if scheduler is not None:
                scheduler.step()
            history.append(values)
            if progress != "none":
                say(f"epoch {epoch}/{epochs}  {_format_values(values, decimals)}  "
                    f"({_format_seconds(time.perf_counter() - start)})")
            if checkpoint is not None:
                run.save(checkpoint, history)
            snapshot.take()
    except RuntimeError as err:
        if not (world.active and distributed.connection_broke(err)):
            raise
        stop(distributed.other_rank_failed(err, world))  # another rank stopped: this one says so in a line
    except KeyboardInterrupt:
        history.interrupted = True
        interrupted = TrainingInterrupted(interrupted_message(history.epochs, checkpoint, run.saved_epoch, resume))
        interrupted.history = history
        stop(interrupted)  # a fresh traceback: from the student's call to stop(), not into torch's internals
    finally:
        if bar is not None:
            bar.close()
        model.eval()
    return history


def _progress_bar(progress: str, total: int):
    """One tqdm bar for the whole run (a widget in Jupyter): one output in a notebook, however many epochs."""
    if progress != "bar" or total == 0:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, leave=False, dynamic_ncols=True)


def _format_values(values: dict[str, float], decimals: dict[str, int]) -> str:
    """Metrics with four significant figures in the first epoch, then the same decimals, so the columns line up."""
    shown = []
    for name, value in values.items():
        if name not in decimals:
            digits = math.floor(math.log10(abs(value))) if math.isfinite(value) and value != 0 else 0
            decimals[name] = min(6, max(0, 3 - digits))
        shown.append(f"{name} {value:.{decimals[name]}f}")
    return "  ".join(shown)


def _format_seconds(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.1f} s"


def _run_epoch(batch_step, tensors, as_tuple, batch_size, generator, epoch, bar, world) -> dict[str, float]:
    """One pass over the data in random batches (this rank's shard of each, under torchrun); the mean of each metric
    over the examples that reported it, on every rank."""
    device = tensors[0].device
    sums: dict[str, torch.Tensor] = {}
    counts: dict[str, int] = {}  # examples per metric: a step may report a metric on some batches only
    epoch_batches = batches(len(tensors[0]), batch_size, generator, device)
    if world.active:  # every rank takes as many steps: a last batch smaller than the world is left out
        epoch_batches = [b for b in epoch_batches if len(b) >= world.size]
    for i, global_idx in enumerate(epoch_batches):
        idx = distributed.shard(global_idx, world) if world.active else global_idx
        weight = world.size * len(idx) / len(global_idx)
        batch = tuple(t.index_select(0, idx) for t in tensors) if as_tuple else tensors[0].index_select(0, idx)
        metrics = {k: torch.as_tensor(v, device=device).detach().float()
                   for k, v in batch_step(batch, weight).items()}
        for name, value in metrics.items():  # summed on the device: no GPU sync per batch
            total = sums.get(name)
            sums[name] = value * len(idx) if total is None else total.add_(value, alpha=len(idx))
            counts[name] = counts.get(name, 0) + len(idx)
        if bar is not None:
            bar.update()
            if i % 50 == 0 and metrics:
                bar.set_postfix({k: f"{float(v):.4g}" for k, v in metrics.items()})
        if _after_batch is not None:
            _after_batch(epoch, i)
    if world.active:
        totals, counts = distributed.add_over_ranks({name: total.item() for name, total in sums.items()}, counts)
        return {name: total / counts[name] for name, total in totals.items()}
    return {name: (total / counts[name]).item() for name, total in sums.items()}


def _non_finite(model, values: dict[str, float]) -> str | None:
    """The first non-finite metric or tensor of the model's state (parameters and buffers), and how many more; None
    when all are finite. Checked once per epoch: no GPU sync per batch."""
    metrics = [f"{name} = {value}" for name, value in values.items() if not math.isfinite(value)]
    state = [(name, t) for name, t in model.state_dict().items() if torch.is_tensor(t) and t.is_floating_point()]
    finite = torch.stack([t.isfinite().all() for _, t in state]).tolist() if state else []
    tensors = [f"non-finite values in {name}" for (name, _), ok in zip(state, finite, strict=True) if not ok]
    return describe_non_finite(metrics, tensors)


def describe_non_finite(metrics: list[str], tensors: list[str]) -> str | None:
    """"loss = nan; 2 more metrics and 3 tensors of the model are not finite either" (None when both lists are empty):
    the first non-finite value named, the rest counted."""
    if not metrics and not tensors:
        return None
    n_metrics, n_tensors = max(len(metrics) - 1, 0), len(tensors) - (0 if metrics else 1)
    more = ([f"{n_metrics} more metric{'s' * (n_metrics > 1)}"] if n_metrics else []) + (
        [f"{n_tensors} {'' if metrics else 'more '}tensor{'s' * (n_tensors > 1)} of the model"] if n_tensors else [])
    verb = "is" if n_metrics + n_tensors == 1 else "are"
    return (metrics + tensors)[0] + (f"; {' and '.join(more)} {verb} not finite either" if more else "")


def diverged_message(found: str, epoch: int, good: int, checkpoint, saved_epoch, resume: bool,
                      store: str | None = None) -> str:
    """What diverged, where the model is now, and the advice that works from there (see the tests). `store` names
    the file or folder that holds saved_epoch (default: the checkpoint)."""
    store = store or f"the checkpoint {checkpoint}"
    if good == 0:
        where, advice = "their initial values", "run the same call again"
    elif checkpoint is not None and saved_epoch == good and resume:
        where = f"the end of epoch {good}, which {store} holds"
        advice = f"run the same call again: it resumes from epoch {good} with the new rate"
    else:
        where = f"the end of epoch {good}"
        advice = "run the same call again: it trains from these weights, counting epochs from 1"
        if checkpoint is not None and saved_epoch == good:
            advice += f" (resume=True would resume from epoch {good} in {Path(checkpoint).name})"
    return (f"training diverged in epoch {epoch}: {found}. The model and its optimiser are back at {where}. "
            f"A learning rate too large is the likely cause: lower it and {advice}. (NaN or infinite values in the "
            "data would do this too.)")


def interrupted_message(done: int, checkpoint, saved_epoch, resume: bool, store: str | None = None,
                         argument: str = "checkpoint") -> str:
    """What an interrupted run keeps, and how to go on from it. `store` names the file or folder that holds
    saved_epoch (default: the checkpoint), `argument` the one that asks for it."""
    stopped = f"Interrupted during epoch {done + 1}: the model keeps the training done so far"
    if checkpoint is None:
        return f"{stopped}; nothing was saved to resume from (pass {argument}=... for that)."
    if saved_epoch is None:
        return f"{stopped}; no epoch was finished, so {store or Path(checkpoint).name} holds nothing of this run."
    held = f"{store or f'the checkpoint {checkpoint}'} holds epoch {saved_epoch}"
    if resume:
        return f"{stopped}; {held}: run the same call again to resume from there."
    return (f"{stopped}; {held}. With resume=False the same call starts again at epoch 1: pass resume=True to resume "
            f"from epoch {saved_epoch}.")


class _Snapshot:
    """The state of the model (parameters and buffers, such as a replay buffer), the optimiser and the scheduler,
    copied on their device before the first epoch and refreshed in place after each good one: one copy of the state,
    which a diverging epoch is undone to."""

    def __init__(self, model, optimizer, scheduler):
        self.model, self.optimizer, self.scheduler = model, optimizer, scheduler
        self.state = None
        self.take()

    def _current(self) -> dict:
        return {"model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict() if self.optimizer is not None else None,
                "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None}

    @torch.no_grad()
    def take(self) -> None:
        self.state = _copy_into(self.state, self._current())

    @torch.no_grad()
    def restore(self) -> None:
        self.model.load_state_dict(self.state["model"])
        if self.optimizer is not None:  # a fresh copy: the optimiser adopts the tensors it is given
            self.optimizer.load_state_dict(_copy_into(None, self.state["optimizer"]))
        if self.scheduler is not None:
            self.scheduler.load_state_dict(copy.deepcopy(self.state["scheduler"]))


def _copy_into(old, new):
    """A copy of `new` (nested dicts, lists and tensors), written into the tensors of `old`, an earlier copy of the
    same structure, wherever their shapes match: refreshing a snapshot allocates nothing."""
    if torch.is_tensor(new):
        if torch.is_tensor(old) and (old.shape, old.dtype, old.device) == (new.shape, new.dtype, new.device):
            return old.copy_(new)
        return new.detach().clone()
    if isinstance(new, dict):
        old = old if isinstance(old, dict) else {}
        return {key: _copy_into(old.get(key), value) for key, value in new.items()}
    if isinstance(new, list | tuple):
        old = old if isinstance(old, list | tuple) and len(old) == len(new) else [None] * len(new)
        return type(new)(_copy_into(o, value) for o, value in zip(old, new, strict=True))
    return copy.deepcopy(new)


def _optimizer_settings(optimizer) -> dict:
    """The settings of the optimiser that change the result (lr, betas, weight decay, ...), for the checkpoint."""
    if optimizer is None:
        return {}
    group = optimizer.param_groups[0]
    settings = {k: v for k, v in group.items() if k != "params" and isinstance(v, int | float | bool | str | tuple)}
    return {"optimizer": type(optimizer).__name__, **{f"optimizer.{k}": v for k, v in settings.items()}}


@dataclass
class _Run:
    """What a checkpoint holds beside the history: the model, optimiser, scheduler, random states and settings."""

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer | None
    scheduler: object
    generator: torch.Generator
    generators: dict[str, torch.Generator]
    config: dict
    world: distributed.World = field(default_factory=distributed.World)
    saved_epoch: int | None = None  # the epoch the checkpoint holds, once this run has written or resumed from it
    recovery: dict | None = None  # the learning rates changed on resuming after a divergence, if they were

    def seed_per_rank(self, seed: int) -> None:
        """Under torchrun, at a fresh start: this rank's own random streams (torch's and the named generators), so
        that the ranks draw different noise; the shuffling generator stays the same on every rank."""
        torch.manual_seed(distributed.rank_seed(seed, self.world.rank))
        for g in self.generators.values():
            g.manual_seed(distributed.rank_seed(g.initial_seed(), self.world.rank))

    def _own_state(self) -> dict:
        """What differs between the ranks: the buffers (replay buffer, chains) and the random states."""
        device = next(self.model.parameters()).device
        return {"buffers": {name: b.detach().cpu() for name, b in self.model.named_buffers()},
                "torch_rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
                "generators": {name: g.get_state() for name, g in self.generators.items()}}

    def _restore_own_state(self, own: dict) -> None:
        """The other half of _own_state, on resuming (the model and its optimiser are loaded already)."""
        with torch.no_grad():
            for name, value in own["buffers"].items():
                self.model.get_buffer(name).copy_(value)
        torch.set_rng_state(own["torch_rng"])
        device = next(self.model.parameters()).device
        if device.type == "cuda" and own.get("cuda_rng") is not None:
            torch.cuda.set_rng_state(own["cuda_rng"], device)
        for name, g in self.generators.items():
            if name in own.get("generators", {}):
                try:
                    g.set_state(own["generators"][name])
                except RuntimeError:  # a state of another kind of generator: the checkpoint came from another device
                    print(f"The checkpoint's state of generator {name!r} is not one for {g.device}: it draws afresh, "
                          "so this run will not repeat an uninterrupted one draw for draw.")

    def save(self, path, history: History) -> None:
        self.saved_epoch = history.epochs
        own = self._own_state()
        ranks = distributed.gather_to_leader(own) if self.world.active else None
        if not self.world.leader:
            return
        save_checkpoint(path, {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict() if self.optimizer is not None else None,
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "epoch": history.epochs,
            "history": history.metrics,
            "config": _plain(self.config),
            "generator": self.generator.get_state(),
            "torch_rng": own["torch_rng"],
            "cuda_rng": own["cuda_rng"],
            "generators": own["generators"],
            "recoveries": history.recoveries,
            **({"ranks": ranks} if ranks is not None else {}),  # every rank's own state, rank 0's first
        })

    def mark_diverged(self, path, epoch: int) -> None:
        """Note in the checkpoint (which holds the last good epoch) that the next epoch diverged: resuming from it with
        another learning rate is then a recovery, allowed and recorded."""
        if not self.world.leader:  # rank 0 writes the checkpoint
            return
        state = load_checkpoint(path)
        save_checkpoint(path, {**state, "diverged_in_epoch": epoch})

    def recovery_note(self) -> str:
        if self.recovery is None:
            return ""
        changes = ", ".join(f"{name} {old} -> {new}" for name, (old, new) in self.recovery["changed"].items())
        return (f", with {changes} after the divergence in epoch {self.recovery['diverged_in_epoch']} (recorded in "
                "the checkpoint and in history.recoveries)")

    def restore(self, path) -> History:
        __tracebackhide__ = True
        state = load_checkpoint(path)  # on the CPU, where random states must be; load_state_dict moves the rest
        written_by, running = state.get("config", {}).get("world_size", 1), self.config.get("world_size", 1)
        if written_by != running:
            def processes(n):
                return "one process" if n == 1 else f"{n} processes (torchrun --nproc-per-node ... with {n} in all)"
            raise CheckpointRefused(f"the checkpoint {path} was written by {processes(written_by)}, and this run has "
                                    f"{processes(running)}: each process resumes its own chains and random streams, "
                                    f"so resume it with {written_by} process{'es' * (written_by > 1)}, or start "
                                    "afresh: pass resume=False (--no-resume on the command line), or delete the file.")
        saved, wanted = state.get("config", {}), _plain(self.config)
        if "config" not in state:  # written before checkpoints kept their settings: nothing to compare
            saved = wanted
        changed = {k: (saved.get(k, "unset"), wanted.get(k, "unset"))
                   for k in sorted(saved.keys() | wanted.keys()) if saved.get(k) != wanted.get(k)}
        recovering = "diverged_in_epoch" in state and changed.keys() <= _LEARNING_RATES
        if changed and not recovering:
            listed = "; ".join(f"{k}: {old!r} in the checkpoint, {new!r} now" for k, (old, new) in changed.items())
            raise CheckpointRefused(f"the checkpoint {path} was trained with other settings ({listed}). To train with "
                                    "the new ones, start afresh: pass resume=False, or delete the file.")
        new_rates = [group.get("initial_lr", group.get("lr")) for group in self.optimizer.param_groups] \
            if self.optimizer is not None else []
        try:
            self.model.load_state_dict(state["model"])
            if self.optimizer is not None and state.get("optimizer") is not None:
                self.optimizer.load_state_dict(state["optimizer"])
            if self.scheduler is not None and state.get("scheduler") is not None:
                self.scheduler.load_state_dict(state["scheduler"])
        except (RuntimeError, ValueError, KeyError) as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise CheckpointRefused(f"checkpoint {path} does not fit this model or optimiser ({first}); "
                                    "delete it, or pass resume=False to start afresh") from err
        recoveries = list(state.get("recoveries", []))
        if changed:  # a recovery: the new learning rates replace the checkpoint's, where a scheduler has taken them
            self._set_learning_rates(new_rates)
            self.recovery = {"diverged_in_epoch": state["diverged_in_epoch"], "resumed_after_epoch": state["epoch"],
                             "changed": {k: list(v) for k, v in changed.items()}}
            recoveries.append(self.recovery)
        self.generator.set_state(state["generator"])
        self._restore_own_state(state["ranks"][self.world.rank] if self.world.active else
                                {"buffers": {}, "torch_rng": state["torch_rng"], "cuda_rng": state.get("cuda_rng"),
                                 "generators": state.get("generators", {})})
        self.saved_epoch = state["epoch"]
        return History(metrics={k: list(v) for k, v in state["history"].items()}, epochs=state["epoch"],
                       recoveries=recoveries)

    def _set_learning_rates(self, new_rates: list) -> None:
        """After loading the optimiser's state: each group's rate scaled by new/old starting rate, so that a schedule
        (StepLR, say) carries on from where it was, at the new level."""
        if self.optimizer is None:
            return
        for group, new in zip(self.optimizer.param_groups, new_rates, strict=True):
            old = group.get("initial_lr", group["lr"])
            group["lr"] *= new / old
            if "initial_lr" in group:
                group["initial_lr"] = new
        if self.scheduler is not None and hasattr(self.scheduler, "base_lrs"):
            self.scheduler.base_lrs = list(new_rates)
            self.scheduler._last_lr = [group["lr"] for group in self.optimizer.param_groups]


_LEARNING_RATES = {"lr", "optimizer.lr", "optimizer.initial_lr"}  # the settings a recovery from a divergence may change


def _plain(config: dict) -> dict:
    """Settings as plain values a checkpoint can hold (weights_only) and compare: tuples become lists."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in config.items()}
