"""The one training loop of the course.  Taught in 00_data_and_setup; used by every model.

The data live as one tensor on the device and each batch is a slice of a fresh permutation (no per-sample
DataLoader). A model is trained either from a loss (`loss_fn(batch) -> loss, metrics`, the loop does backward and the
optimiser step) or from a custom update (`step_fn(batch) -> metrics`, e.g. contrastive divergence). The loop keeps a
history, reports progress, writes a checkpoint atomically after every epoch, resumes from it, and stops cleanly on
Ctrl-C, keeping the model trained so far.
"""

from __future__ import annotations

import contextlib
import math
import numbers
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .device import amp_dtype

__all__ = ["train", "History", "TrainingDiverged", "as_tensor", "batches", "check_progress", "check_count",
           "check_rate", "save_checkpoint", "load_checkpoint"]


@dataclass
class History:
    """Per-epoch means of the training metrics and the values of `evaluate`: one list per name, one entry per epoch,
    NaN for an epoch in which a metric had no value (a step that reports it now and then, say)."""

    metrics: dict[str, list[float]] = field(default_factory=dict)
    epochs: int = 0  # epochs completed
    interrupted: bool = False

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


def as_tensor(x, device) -> torch.Tensor:
    """`x` as a tensor on `device`, copied there once: floating point as float32, integers (labels) as they are."""
    x = x if torch.is_tensor(x) else torch.from_numpy(np.asarray(x))
    return x.to(device=device, dtype=torch.float32 if x.is_floating_point() else None)


def batches(n: int, batch_size: int, generator: torch.Generator, device) -> list[torch.Tensor]:
    """Index tensors on `device`: consecutive slices of one random permutation of range(n)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size}")
    order = torch.randperm(n, generator=generator).to(device)
    return list(order.split(batch_size))


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
        state = torch.load(path, map_location=device, weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as err:  # torch raises RuntimeError, EOFError, UnpicklingError, ... depending on the damage
        raise ValueError(f"the checkpoint {path} is damaged or not a checkpoint ({type(err).__name__}: {err}); "
                         "delete it, or pass resume=False to start afresh") from err
    if not isinstance(state, dict) or not {"model", "epoch", "history"} <= state.keys():
        raise ValueError(f"the checkpoint {path} was not written by genmodels.training.train; delete it, or pass "
                         "resume=False to start afresh")
    return state


class TrainingDiverged(FloatingPointError):
    """Training produced a non-finite loss or parameters; the checkpoint keeps the last good epoch."""


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
    A non-finite loss or parameters at the end of an epoch stop training (TrainingDiverged), keeping the checkpoint
    of the last good epoch. Ctrl-C stops training, says how to resume, and raises KeyboardInterrupt again.
    """
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
    run = _Run(model, optimizer, scheduler, torch.Generator().manual_seed(seed), generators or {},
               {**(config or {}), "batch_size": batch_size, "seed": seed, **_optimizer_settings(optimizer)})
    history = History()
    if checkpoint is not None and resume and Path(checkpoint).exists():
        history = run.restore(checkpoint)
        if progress != "none":
            print(f"Resumed from {Path(checkpoint).name} after epoch {history.epochs}")

    def batch_step(batch):
        if step_fn is not None:
            return step_fn(batch)
        with torch.autocast(device.type, dtype=autocast_dtype) if autocast_dtype else contextlib.nullcontext():
            loss, metrics = loss_fn(batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
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
            values = _run_epoch(batch_step, tensors, as_tuple, batch_size, run.generator, epoch, bar)
            if evaluate is not None:
                model.eval()
                with torch.no_grad():
                    values.update({k: float(v) for k, v in evaluate().items()})
                model.train()
            _check_finite(model, values, epoch, checkpoint)
            if scheduler is not None:
                scheduler.step()
            history.append(values)
            if progress != "none":
                say(f"epoch {epoch}/{epochs}  {_format_values(values, decimals)}  "
                    f"({_format_seconds(time.perf_counter() - start)})")
            if checkpoint is not None:
                run.save(checkpoint, history)
    except KeyboardInterrupt as interrupt:
        history.interrupted = True
        where = (f"the checkpoint {checkpoint} holds epoch {history.epochs}: run the same call again to resume"
                 if checkpoint is not None else "pass checkpoint=... to be able to resume")
        if bar is not None:
            bar.close()
            bar = None
        print(f"Interrupted during epoch {history.epochs + 1}: the model keeps the training done so far; {where}.")
        interrupt.history = history
        raise
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


def check_progress(progress: str) -> str:
    """`progress` if it is one of the ways training reports: "bar", "plain" or "none"."""
    if progress not in ("bar", "plain", "none"):
        raise ValueError(f"progress must be 'bar', 'plain' or 'none', got {progress!r}")
    return progress


def check_count(name: str, value, minimum: int = 1) -> int:
    """`value` as an int, or a ValueError naming `name` unless it is a whole number >= `minimum`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        got = (f"the float {value!r}; write {int(value)}" if isinstance(value, float) and value.is_integer()
               else f"{value!r} ({type(value).__name__})")
        raise ValueError(f"{name} must be a whole number, got {got}")
    if value < minimum:
        raise ValueError(f"{name} must be a whole number >= {minimum}, got {value}")
    return int(value)


def check_rate(name: str, value) -> float:
    """`value` as a float (numbers and 0-d tensors), or a ValueError naming `name` unless it is positive and finite."""
    try:
        number = math.nan if isinstance(value, bool) else float(value)
    except (TypeError, ValueError, RuntimeError):
        raise ValueError(f"{name} must be a positive, finite number, got {value!r}") from None
    if not (math.isfinite(number) and number > 0):
        raise ValueError(f"{name} must be a positive, finite number, got {value}")
    return number


def _run_epoch(batch_step, tensors, as_tuple, batch_size, generator, epoch, bar) -> dict[str, float]:
    """One pass over the data in random batches; the mean of each metric over the examples that reported it."""
    device = tensors[0].device
    sums: dict[str, torch.Tensor] = {}
    counts: dict[str, int] = {}  # examples per metric: a step may report a metric on some batches only
    for i, idx in enumerate(batches(len(tensors[0]), batch_size, generator, device)):
        batch = tuple(t.index_select(0, idx) for t in tensors) if as_tuple else tensors[0].index_select(0, idx)
        metrics = {k: torch.as_tensor(v, device=device).detach().float() for k, v in batch_step(batch).items()}
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
    return {name: (total / counts[name]).item() for name, total in sums.items()}


def _check_finite(model, values: dict[str, float], epoch: int, checkpoint) -> None:
    """Raise TrainingDiverged if a metric or a parameter is not finite (one check per epoch: no GPU sync per batch)."""
    bad_metrics = [name for name, value in values.items() if not math.isfinite(value)]
    finite = torch.stack([p.detach().isfinite().all() for p in model.parameters()]).tolist()
    bad_params = [name for (name, _), ok in zip(model.named_parameters(), finite, strict=True) if not ok]
    if bad_metrics or bad_params:
        found = ", ".join([f"{name} = {values[name]}" for name in bad_metrics] +
                          ([f"non-finite parameters {', '.join(bad_params)}"] if bad_params else []))
        kept = (f"; the checkpoint {checkpoint} still holds the last good epoch" if checkpoint is not None else "")
        raise TrainingDiverged(
            f"training diverged in epoch {epoch} ({found}). The likely cause is a learning rate too large: lower it "
            f"and start afresh (resume=False){kept}. If the data hold NaN or infinite values, clean them first.")


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

    def save(self, path, history: History) -> None:
        device = next(self.model.parameters()).device
        save_checkpoint(path, {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict() if self.optimizer is not None else None,
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "epoch": history.epochs,
            "history": history.metrics,
            "config": _plain(self.config),
            "generator": self.generator.get_state(),
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
            "generators": {name: g.get_state() for name, g in self.generators.items()},
        })

    def restore(self, path) -> History:
        state = load_checkpoint(path)  # on the CPU, where random states must be; load_state_dict moves the rest
        saved, wanted = state.get("config", {}), _plain(self.config)
        if "config" not in state:  # written before checkpoints kept their settings: nothing to compare
            saved = wanted
        changed = [f"{k}: {saved.get(k, 'unset')!r} in the checkpoint, {wanted.get(k, 'unset')!r} now"
                   for k in sorted(saved.keys() | wanted.keys()) if saved.get(k) != wanted.get(k)]
        if changed:
            raise ValueError(f"the checkpoint {path} was trained with other settings ({'; '.join(changed)}). To train "
                             "with the new ones, start afresh: pass resume=False, or delete the file.")
        try:
            self.model.load_state_dict(state["model"])
            if self.optimizer is not None and state.get("optimizer") is not None:
                self.optimizer.load_state_dict(state["optimizer"])
            if self.scheduler is not None and state.get("scheduler") is not None:
                self.scheduler.load_state_dict(state["scheduler"])
        except (RuntimeError, ValueError, KeyError) as err:
            raise ValueError(f"checkpoint {path} does not fit this model or optimiser ({err}); "
                             "delete it, or pass resume=False to start afresh") from err
        self.generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        device = next(self.model.parameters()).device
        if device.type == "cuda" and state.get("cuda_rng") is not None:
            torch.cuda.set_rng_state(state["cuda_rng"], device)
        for name, g in self.generators.items():
            if name in state.get("generators", {}):
                try:
                    g.set_state(state["generators"][name])
                except RuntimeError:  # a state of another kind of generator: the checkpoint came from another device
                    print(f"The checkpoint's state of generator {name!r} is not one for {g.device}: it draws afresh, "
                          "so this run will not repeat an uninterrupted one draw for draw.")
        return History(metrics={k: list(v) for k, v in state["history"].items()}, epochs=state["epoch"])


def _plain(config: dict) -> dict:
    """Settings as plain values a checkpoint can hold (weights_only) and compare: tuples become lists."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in config.items()}
