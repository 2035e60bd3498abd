"""Input checks: one function per rule, used by every model module.

A notebook's call into the package is checked once, where it comes in; inside the algorithms nothing is checked
again. Each check returns the value it accepted (converted: an int, a float, an int8 tensor, ...) or raises a short
ValueError that names the argument, what was found, and what to do. The rules, in the order a student meets them:

- numbers:  check_count (whole numbers >= a minimum), check_rate (positive and finite), check_momentum,
            check_progress (how training reports);
- images:   check_binary (0/1 pixels), check_grey_levels (floats in [0, 1]), flatten_examples (the shape);
- chains:   check_chain_start (a sampler's x0 and generator), check_chain_run (step size, n_steps, burn-in, thin),
            check_finite_rows (data a sampler reads), check_log_prob_value (what log_prob returned),
            check_series (chains handed to an MCMC diagnostic);
- lattices: check_lattice_size, check_temperature, check_spins (the Ising model).

The exercises' checks of a student's own functions are another thing: they live in genmodels.exercises.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
import torch

__all__ = ["check_count", "check_rate", "check_momentum", "check_progress", "check_binary", "check_grey_levels",
           "flatten_examples", "check_chain_start", "check_chain_run", "check_finite_rows", "check_log_prob_value",
           "check_series", "describe_state", "check_lattice_size", "check_temperature", "check_spins"]


# --- numbers ------------------------------------------------------------------------------------------------------


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


def check_momentum(momentum) -> tuple[float, ...]:
    """The momenta of SGD (one value, or the pair (before, after the switch) the RBMs use) as floats in [0, 1)."""
    values = momentum if isinstance(momentum, tuple | list) else (momentum,)
    numbers_given = all(isinstance(mu, numbers.Real) and not isinstance(mu, bool) for mu in values)
    if not (values and numbers_given and all(0 <= mu < 1 for mu in values)):
        raise ValueError(f"momentum must lie in [0, 1), got {momentum!r}: give numbers such as (0.5, 0.9)")
    return tuple(float(mu) for mu in values)


def check_progress(progress: str) -> str:
    """`progress` if it is one of the ways training reports: "bar", "plain" or "none"."""
    if progress not in ("bar", "plain", "none"):
        raise ValueError(f"progress must be 'bar', 'plain' or 'none', got {progress!r}")
    return progress


# --- images -------------------------------------------------------------------------------------------------------


def check_binary(x, what="the data", pixel_means=False):
    """Raise a ValueError, saying what was found and how to binarise, unless every value of `x` (a NumPy array or a
    torch tensor, examples on the first axis) is 0 or 1. With `pixel_means`, return the fraction of examples with
    each pixel on, from the same pass. x·x == x holds only for 0, 1 and +inf (NaN ≠ NaN); +inf makes a sum infinite."""
    is_array = isinstance(x, np.ndarray)
    equal = np.array_equal if is_array else torch.equal
    if len(x) == 0:
        raise ValueError(f"{what} is empty: there are no examples to use")
    flat, sums, binary = x.reshape(len(x), -1), 0, True
    for start in range(0, len(flat), 1024):  # chunks that stay in the cache
        chunk = flat[start:start + 1024]
        if not equal(chunk * chunk, chunk):
            binary = False
            break
        sums = sums + chunk.sum(0)
    finite = binary and bool((np.isfinite(sums) if is_array else sums.isfinite()).all())
    if not (binary and finite):
        values = x if is_array else x.detach().cpu().numpy()
        n_nan, n_inf = int(np.isnan(values).sum()), int(np.isinf(values).sum())
        if n_nan or n_inf:
            raise ValueError(f"{what} contains {n_nan} NaN and {n_inf} infinite values; clean or drop those "
                             "examples first")
        example, low, high = values[(values != 0) & (values != 1)].flat[0], values.min(), values.max()
        got = (f"grey levels between 0 and 1, such as {example:.3g}" if 0 <= low and high <= 1 else
               f"values from {low:.3g} to {high:.3g}, such as {example:.3g}")
        raise ValueError(f"{what} must be binary (0/1); got {got}. "
                         "Binarise it with genmodels.data.binarize_once(x) (stochastic, fixed seed) or "
                         "genmodels.data.binarize(x) (threshold).")
    return sums / len(x) if pixel_means else None


def check_grey_levels(x, what="the images", n_pixels: int | None = None):
    """Raise a ValueError, saying what was found and what to do, unless `x` (a NumPy array or a torch tensor of
    images, examples on the first axis) holds finite grey levels in [0, 1] of a floating type and, with `n_pixels`,
    that many pixels per example. Models that binarise on the fly (the VAEs) take such images."""
    if isinstance(x, tuple | list):
        raise ValueError(f"{what} must be one array of images, got a {type(x).__name__} of {len(x)} items; pass the "
                         "images alone (dataset.x_train, not (x, y))")
    if not hasattr(x, "dtype") or not hasattr(x, "shape"):
        raise ValueError(f"{what} must be a NumPy array or a torch tensor of images, got {type(x).__name__}")
    if len(x) == 0:
        raise ValueError(f"{what} is empty: there are no examples to use")
    if n_pixels is not None and math.prod(x.shape[1:]) != n_pixels:
        raise ValueError(f"{what} must have {n_pixels} pixels per example (28×28); got shape {tuple(x.shape)}")
    values = x if isinstance(x, np.ndarray) else x.detach().cpu().numpy()
    if not np.issubdtype(values.dtype, np.floating):
        raise ValueError(f"{what} are {values.dtype} (values {values.min()} to {values.max()}); the model needs grey "
                         "levels in [0, 1] as floats: divide by 255 (x / 255.0)")
    low, high = float(values.min()), float(values.max())  # NaN if any value is NaN
    if not (math.isfinite(low) and math.isfinite(high)):
        n_nan, n_inf = int(np.isnan(values).sum()), int(np.isinf(values).sum())
        raise ValueError(f"{what} contain {n_nan} NaN and {n_inf} infinite values; clean or drop those examples first")
    if low < 0 or high > 1:
        hint = "divide by 255" if high > 1 and high <= 255 and low >= 0 else "rescale them"
        raise ValueError(f"{what} must be grey levels in [0, 1]; got values in [{low:.3g}, {high:.3g}]: {hint}")


def flatten_examples(x, n_features: int, what="the data"):
    """`x` (a NumPy array or a torch tensor) as (N, n_features): images (N, 28, 28) are flattened and one example
    (n_features,) becomes a batch of one; any other shape is a ValueError naming what was expected."""
    if x.ndim >= 2 and math.prod(x.shape[1:]) == n_features:
        return x.reshape(len(x), n_features)
    if x.ndim == 1 and x.shape[0] == n_features:
        return x[None]
    raise ValueError(f"{what} must have shape (N, {n_features}) (or images with {n_features} pixels); got shape "
                     f"{tuple(x.shape)}")


# --- chains (the Langevin samplers and the MCMC diagnostics) ---------------------------------------------------------


def describe_state(state: torch.Tensor) -> str:
    """One chain's state for an error message: its values for a few coordinates, else its shape and range."""
    if state.numel() <= 8:
        return str([round(v, 4) for v in state.flatten().tolist()])
    finite = state[torch.isfinite(state)]
    spread = f"finite values in [{finite.min().item():.3g}, {finite.max().item():.3g}]" if len(finite) else "no finite"
    return f"a {tuple(state.shape)} state with {int((~torch.isfinite(state)).sum())} non-finite values, {spread}"


def check_chain_start(x0, generator, seed, images: bool = False) -> tuple[torch.Tensor, torch.Generator]:
    """A sampler's start: x0 a finite floating-point tensor (n_chains, dim) (or (n_chains, *event_shape) for image
    chains), and a generator on the chains' device (made from `seed` when None). Returns (a copy of x0, generator)."""
    if not torch.is_tensor(x0) or x0.ndim < 2 or (x0.ndim > 2 and not images) or not x0.is_floating_point():
        shape = tuple(x0.shape) if torch.is_tensor(x0) else type(x0).__name__
        also = " or (n_chains, *event_shape)" if images else ""
        raise ValueError(f"x0 must be a floating-point tensor of shape (n_chains, dim){also}; got {shape}. "
                         "For one chain of a 1-D density use x0 = torch.zeros(1, 1).")
    if x0.numel() == 0:
        raise ValueError(f"x0 has shape {tuple(x0.shape)}: need at least one chain and one coordinate, "
                         "shape (n_chains, dim) with both >= 1")
    if x0.device.type != "meta":
        bad = ~torch.isfinite(x0).flatten(1).all(-1)
        if bad.any():
            chain = int(bad.nonzero()[0])
            shown = x0[chain].tolist() if x0.ndim == 2 else describe_state(x0[chain])
            raise ValueError(f"x0 holds NaN or infinite values in {int(bad.sum())} of {len(x0)} chains (first: "
                             f"chain {chain}, x0[{chain}] = {shown}); start every chain at a finite "
                             "point where log_prob is defined")
    if generator is None:
        generator = torch.Generator(device=x0.device).manual_seed(seed)
    elif generator.device.type != x0.device.type:
        raise ValueError(f"the generator lives on {generator.device} but the chains on {x0.device}; create it with "
                         f"torch.Generator(device={str(x0.device)!r}) or pass seed= instead")
    return x0.detach().clone(), generator


def check_chain_run(step_size, n_steps, burn_in, thin, step_name: str = "step_size") -> tuple[float, int, int, int]:
    """A run's settings: a positive finite step, n_steps >= 1, 0 <= burn_in < n_steps, and a `thin` that keeps at
    least one state ((n_steps - burn_in) // thin states are kept)."""
    step_size = check_rate(step_name, step_size)
    n_steps, burn_in = check_count("n_steps", n_steps), check_count("burn_in", burn_in, 0)
    thin = check_count("thin", thin)
    if burn_in >= n_steps:
        raise ValueError(f"burn_in={burn_in} discards all n_steps={n_steps} steps, so nothing would be kept; "
                         f"need burn_in < n_steps (for example burn_in={n_steps // 4})")
    if thin > n_steps - burn_in:
        raise ValueError(f"thin={thin} keeps no state: after burn_in={burn_in}, only {n_steps - burn_in} of "
                         f"n_steps={n_steps} steps remain; need thin <= n_steps - burn_in = {n_steps - burn_in} "
                         f"(every thin-th state after the burn-in is kept)")
    return step_size, n_steps, burn_in, thin


def check_finite_rows(data: torch.Tensor) -> torch.Tensor:
    """Data a sampler reads (SGLD's minibatches): at least one row, and every row finite (a NaN row would make the
    gradient of every minibatch holding it NaN)."""
    if data.ndim == 0 or len(data) == 0:
        raise ValueError(f"data must hold at least one data point along its first axis; got shape {tuple(data.shape)}")
    if data.is_floating_point():
        bad = ~torch.isfinite(data).reshape(len(data), -1).all(-1)
        if bad.any():
            n_nan, n_inf = int(torch.isnan(data).sum()), int(torch.isinf(data).sum())
            raise ValueError(f"data contain {n_nan} NaN and {n_inf} infinite values, in {int(bad.sum())} of "
                             f"{len(data)} rows (first: row {int(bad.nonzero()[0])}); every minibatch holding them "
                             "would give a NaN gradient. Drop or repair those rows first, e.g. "
                             "data[torch.isfinite(data).reshape(len(data), -1).all(-1)].")
    return data


def check_log_prob_value(value, x: torch.Tensor) -> torch.Tensor:
    """What a sampler's `log_prob(x)` returned: a torch tensor with one value per chain, computed from x by torch
    operations (so autograd can differentiate it); half precision comes back as float32."""
    if not torch.is_tensor(value):
        raise ValueError(f"log_prob must return a torch tensor of shape {tuple(x.shape[:1])}, one value per "
                         f"chain; got {type(value).__name__}. Write it with torch operations on x.")
    if value.shape != x.shape[:1]:
        raise ValueError(f"log_prob must return one value per chain, shape {tuple(x.shape[:1])}; got "
                         f"{tuple(value.shape)}. Sum over the coordinates (dim=-1), not over the chains.")
    if not value.requires_grad:
        raise ValueError("log_prob's result does not depend on x through torch operations, so autograd cannot "
                         "differentiate it: write it with torch functions of x (no .item(), .numpy(), "
                         ".detach() or math.* on x)")
    return value.float() if value.dtype in (torch.float16, torch.bfloat16) else value


def check_series(x) -> torch.Tensor:
    """Chains for an MCMC diagnostic (a sampler's result, or a tensor (n_steps, n_chains[, dim])) as a float64
    (n_steps, n_chains, dim) tensor on the CPU: at least 4 steps, finite, and every coordinate moving (a chain that
    never moves has no autocorrelation: 0/0)."""
    x = torch.as_tensor(getattr(x, "samples", x)).detach().cpu().double()
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim == 2:
        x = x[..., None]
    if x.ndim != 3 or len(x) < 4:
        raise ValueError(f"expected chains of shape (n_steps, n_chains[, dim]) with n_steps >= 4; got {tuple(x.shape)}")
    if not torch.isfinite(x).all():
        raise ValueError(f"the chains hold {int((~torch.isfinite(x)).sum())} NaN or infinite values: no "
                         "autocorrelation or effective sample size can be computed from them; rerun the sampler "
                         "with a smaller step size")
    frozen = (x == x[:1, :1]).flatten(0, 1).all(0)
    if frozen.any():
        which = frozen.nonzero().flatten().tolist()
        raise ValueError(f"the chains never moved in coordinate {which[0]} (of {len(which)} such): every one of "
                         f"their {x.shape[0]} steps holds {x[0, 0, which[0]].item():.4g}, so they have no "
                         "autocorrelation time or effective sample size. The sampler is stuck: MALA rejected every "
                         "proposal (reduce the step size), or the chains never left their start.")
    return x


# --- lattices (the Ising model) -----------------------------------------------------------------------------------


def check_lattice_size(L: int) -> int:
    """L as an int, or a ValueError unless it is a whole number of at least 2."""
    if int(L) != L or L < 2:
        raise ValueError(f"the lattice size L must be an integer of at least 2, got L={L}; use L=4 for exact "
                         "results, L=8 or more for Monte Carlo")
    return int(L)


def check_temperature(temperature: float) -> float:
    """T as a float, or a ValueError unless it is positive and finite."""
    if not math.isfinite(temperature) or temperature <= 0:
        raise ValueError(f"the temperature must be positive and finite, got T={temperature}; the critical "
                         f"temperature is T_c = {2 / math.log(1 + math.sqrt(2)):.6f}")
    return float(temperature)


def check_spins(spins) -> torch.Tensor:
    """`spins` as an int8 tensor of ±1 with shape (..., L, L), L ≥ 2; a clear error for anything else."""
    spins = spins if torch.is_tensor(spins) else torch.as_tensor(np.asarray(spins))
    if spins.ndim < 2 or spins.shape[-1] != spins.shape[-2]:
        raise ValueError(f"spins must have shape (..., L, L), got {tuple(spins.shape)}; reshape visible units with "
                         "visible_to_spins(v)")
    check_lattice_size(spins.shape[-1])
    bad = spins[(spins != 1) & (spins != -1)]
    if len(bad):
        raise ValueError(f"spins must be +1 or -1, got values such as {sorted(set(bad.unique()[:5].tolist()))}; "
                         "turn an RBM's visible units (0/1) into spins with visible_to_spins(v)")
    return spins.to(torch.int8)
