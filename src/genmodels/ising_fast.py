"""The checkerboard Metropolis sweep made fast: the same update as `ising.metropolis_half_sweep`, the reference.

What it speeds up, measured by benchmarks/ising.py (figures in benchmarks/README.md):
- half the random numbers: one 32-bit integer uniform per site per sweep, two from each 64-bit random word, where
  the reference draws one float uniform per site;
- no exponential per site: since s_i h_i ∈ {-4, -2, 0, 2, 4}, the test u < e^{-2 s_i h_i / T} reads s_i h_i ≤ r(u),
  where r(u) is the largest of 0, 2, 4 with u < e^{-2r/T}: two integer comparisons with thresholds computed once.
`ising.metropolis` uses this module where it applies (`applies`: the CPU and CUDA) and the reference elsewhere.
tests/test_ising.py checks that both make the same flips from the same uniforms and sample the same distribution.
"""

from __future__ import annotations

import math

import torch

__all__ = ["applies", "uniform_int32", "threshold", "as_unit_uniforms", "half_sweeps", "metropolis_sweeps"]


def applies(spins: torch.Tensor) -> bool:
    """Whether ising.metropolis takes this path: spins on the CPU or a CUDA GPU (64-bit random words there)."""
    return spins.device.type in ("cpu", "cuda")


def uniform_int32(shape, generator: torch.Generator | None, device) -> torch.Tensor:
    """Integers uniform on [-2³¹, 2³¹) of the given shape: two from each random 64-bit word (half the draws of as
    many float uniforms)."""
    n = math.prod(shape)
    words = torch.empty((n + 1) // 2, dtype=torch.int64, device=device)
    words.random_(-(2**63), None, generator=generator)  # all 64 bits random
    return words.view(torch.int32)[:n].view(shape)


def threshold(p: float) -> int:
    """t with P(u < t) = p to within 2⁻³² for u uniform on the int32 range."""
    return min(math.ceil(p * 2**32) - 2**31, 2**31 - 1)


def as_unit_uniforms(u: torch.Tensor) -> torch.Tensor:
    """The int32 uniforms as the float64 uniforms on [0, 1) they stand for, (u + 2³¹) / 2³²: given these, the
    reference sweep makes exactly the flips that this one makes (the test's bridge between the two)."""
    return (u.double() + 2**31) / 2**32


def half_sweeps(s: torch.Tensor, T: float, u: torch.Tensor, colours) -> torch.Tensor:
    """One sweep (both colours) with the int32 uniforms u, one per site."""
    t2, t4 = threshold(math.exp(-4 / T)), threshold(math.exp(-8 / T))  # u < e^{-2·sh/T} for sh = 2, 4
    largest_accepted = 2 * (u < t2).to(torch.int8) + 2 * (u < t4).to(torch.int8)  # r(u) ∈ {0, 2, 4}
    for colour in colours:
        h = s.roll(1, -1) + s.roll(-1, -1) + s.roll(1, -2) + s.roll(-1, -2)  # local field, in {-4, ..., 4}
        flip = (s * h <= largest_accepted) & colour
        s = s - 2 * s * flip
    return s


def metropolis_sweeps(s: torch.Tensor, T: float, sweeps: int, generator, colours) -> torch.Tensor:
    """`sweeps` sweeps of int8 spins s (..., L, L), L even, at temperature T."""
    for _ in range(sweeps):
        s = half_sweeps(s, T, uniform_int32(s.shape, generator, s.device), colours)
    return s
