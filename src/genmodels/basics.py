"""The small pieces the package's modules share: a tensor on a device, the batches of an epoch, and the one short
frame a message for the student is raised from. The training loop (genmodels.training), the samplers
(genmodels.langevin) and the exercise checks (genmodels.exercises) use them.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["as_tensor", "batches", "stop"]


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


# IPython hides the frames that set __tracebackhide__ (the loop, the models' fit), but never the last one: a message
# for the student is raised from here, so that their traceback is their own line, these few lines, and the message.
def stop(error: Exception):
    """Raise `error` (a message for the student) from this short frame."""
    __tracebackhide__ = True  # pytest hides even this one
    raise error from None
