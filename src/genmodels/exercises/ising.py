"""The checks of exercises/07_ising: the Ising model's energy, its Metropolis half-sweep and its exact distribution
on small lattices. Each spec compares with genmodels.ising; its mistakes are the wrong versions it names."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .. import ising
from .grading import Case, Exercise, Mistake, binary, uniform


def _spins(shape, seed, p=0.5):
    return (2 * binary(shape, seed, p) - 1).to(torch.int8)


def _spin_cases():
    return [Case("a batch of 4×4 lattices", lambda: (_spins((5, 4, 4), 1),)),
            Case("6×6, mostly up", lambda: (_spins((3, 6, 6), 2, 0.9),)),
            Case("one lattice without a batch axis", lambda: (_spins((8, 8), 3),)),
            Case("2×2", lambda: (_spins((1, 2, 2), 0),))]


def _bonds_twice(s):
    s = s.float()
    return -(s * ising.local_field(s)).sum((-2, -1))


def _open_bonds(s):
    s = s.float()
    return -((s[..., :, 1:] * s[..., :, :-1]).sum((-2, -1)) + (s[..., 1:, :] * s[..., :-1, :]).sum((-2, -1)))


ISING_ENERGY = Exercise(
    "the Ising energy", "energy(spins)", ising.energy, _spin_cases(), returns="tensor", name="ising_energy",
    mistakes=[
        Mistake(_bonds_twice, "each bond counted twice: sum over the right and down neighbours only (4 neighbours "
                              "per site count every bond from both ends)"),
        Mistake(_open_bonds, "the boundaries are periodic: the last column bonds to the first (torch.roll), "
                             "so every site has four neighbours"),
        Mistake(lambda s: -ising.energy(s), "the sign is flipped: H = -Σ s_i s_j, lowest when neighbours align"),
        Mistake(lambda s: ising.energy(s) / s.shape[-1] ** 2,
                "that is the energy per site: return the lattice's energy H(s)"),
        Mistake(lambda s: -(s.float() * s.float().roll(1, -1)).sum((-2, -1)),
                "the vertical bonds are missing: sum the right and the down neighbours (torch.roll along both "
                "lattice axes)"),
    ], shape_hint="one energy per lattice: sum over the two lattice axes, dim=(-2, -1) (a lattice may come without "
                  "a batch axis)",
    doc="""The Ising energy.  energy(spins) -> H(s) = -Σ_⟨ij⟩ s_i s_j over the nearest-neighbour bonds of the
    periodic lattice, each bond once, for spins (..., L, L) of ±1 (int8); one float per lattice.""")

MAGNETISATION = Exercise(
    "the magnetisation", "magnetisation(spins)", ising.magnetisation, _spin_cases(),
    mistakes=[
        Mistake(lambda s: s.float().sum((-2, -1)), "m is per site: divide the sum by the N = L² sites (a mean)"),
        Mistake(lambda s: ising.magnetisation(s).abs(),
                "that is |m|: return the signed magnetisation (its absolute value is a separate observable)"),
        Mistake(lambda s: s.float().mean(-1), "average over both lattice axes (dim=(-2, -1)), one m per lattice"),
        Mistake(lambda s: s.float().sum((-2, -1)) / s.shape[-1],
                "divide by the number of sites N = L², not by L"),
    ], shape_hint="one m per lattice: average over the two lattice axes, dim=(-2, -1)",
    doc="""The magnetisation per site.  magnetisation(spins) -> m = (1/N) Σ_i s_i for each lattice of spins
    (..., L, L), N = L².""")


def _open_field(s):
    padded = F.pad(s.float(), (1, 1, 1, 1))
    return padded[..., 1:-1, :-2] + padded[..., 1:-1, 2:] + padded[..., :-2, 1:-1] + padded[..., 2:, 1:-1]


LOCAL_FIELD = Exercise(
    "the local field", "local_field(spins)", ising.local_field, _spin_cases(), rtol=0, atol=1e-9, dtype="number",
    mistakes=[
        Mistake(_open_field, "the boundaries are periodic: torch.roll wraps the edges, so each edge site has "
                             "four neighbours too"),
        Mistake(lambda s: ising.local_field(s) + s, "the site itself is not its own neighbour: four neighbours only"),
        Mistake(lambda s: s.roll(1, -1) + s.roll(1, -2),
                "all four neighbours: left, right, up and down (you have two)"),
    ],
    doc="""The local field.  local_field(spins) -> h_i = Σ_j∈nn(i) s_j, the sum of the four nearest neighbours
    of each site on the periodic lattice, same shape as spins (..., L, L).""")


def _half_sweep(spins, temperature, u, colour):
    return ising.metropolis_half_sweep(spins, temperature, u, ising.checkerboard(spins.shape[-1])[colour])


def _half_sweep_with(spins, T, u, colour, delta, times=False):
    s = spins.to(torch.int32)
    d = delta(s, ising.local_field(s))
    flip = (u < torch.exp(-d * T if times else -d / T)) & ising.checkerboard(s.shape[-1])[colour]
    return (s - 2 * s * flip).to(torch.int8)


def _flip_all(spins, T, u):
    s = spins.to(torch.int32)
    flip = u < torch.exp(-2 * s * ising.local_field(s) / T)
    return (s - 2 * s * flip).to(torch.int8)


def _sweep_case(shape, T, colour, seed, p=0.5):
    return lambda: (_spins(shape, seed, p), T, uniform(shape, seed + 1), colour)


METROPOLIS_HALF_SWEEP = Exercise(
    "the Metropolis half-sweep", "metropolis_half_sweep(spins, temperature, u, colour)", _half_sweep,
    [Case("black sites at T = 2", _sweep_case((3, 4, 4), 2.0, 0, 0)),
     Case("white sites at T_c", _sweep_case((2, 8, 8), ising.CRITICAL_TEMPERATURE, 1, 1)),
     Case("ordered at T = 1", _sweep_case((4, 6, 6), 1.0, 0, 2, 0.9))],
    returns="tensor", rtol=0, atol=1e-9, shape_hint="the spins' shape: every site, flipped or not",
    mistakes=[
        Mistake(lambda s, T, u, c: _half_sweep_with(s, T, u, c, lambda s, h: -2 * s * h),
                "ΔE has the wrong sign: flipping s_i changes the energy by +2 s_i h_i (an aligned spin costs "
                "energy to flip)"),
        Mistake(lambda s, T, u, c: _half_sweep_with(s, T, u, c, lambda s, h: s * h),
                "flipping s_i changes the energy by ΔE = 2 s_i h_i: the factor 2 is missing"),
        Mistake(lambda s, T, u, c: _half_sweep_with(s, T, u, c, lambda s, h: 2 * s * h, times=True),
                "the Boltzmann factor is exp(-ΔE / T): divide by T"),
        Mistake(lambda s, T, u, c: _flip_all(s, T, u),
                "you updated every site at once: neighbours flip together, which is not a Metropolis chain; "
                "update only the sites of one colour ((i + j) % 2 == colour)"),
    ],
    doc="""A checkerboard Metropolis half-sweep.  metropolis_half_sweep(spins, temperature, u, colour) -> the
    spins after trying to flip every site with (i + j) % 2 == colour at once, accepting where u < exp(-ΔE/T),
    ΔE = 2 s_i h_i; u (..., L, L) holds one uniform number per site. Returns int8 spins, the input unchanged.""")


def _exact_log_z(L, temperature):
    return ising.exact(L, temperature).log_z


def _all_energies(L):
    return ising.energy(ising.all_states(L)).double()


EXACT_LOG_Z = Exercise(
    "the exact log Z", "exact_log_z(L, temperature)", _exact_log_z,
    [Case("3×3 at T_c", lambda: (3, ising.CRITICAL_TEMPERATURE)), Case("2×2 at T = 3", lambda: (2, 3.0)),
     Case("3×3 at T = 0.02, where exp(-H/T) overflows in float64", lambda: (3, 0.02))], returns="number",
    mistakes=[
        Mistake(lambda L, T: torch.logsumexp(_all_energies(L) / T, 0), "the sign: the Boltzmann weight is exp(-H/T)"),
        Mistake(lambda L, T: torch.logsumexp(-_all_energies(L) * T, 0),
                "divide the energy by T: exp(-H/T), not exp(-H·T)"),
        Mistake(lambda L, T: _exact_log_z(L, T) - L * L * math.log(2),
                "log Z sums the weights; you averaged them over the 2^(L²) states"),
        Mistake(lambda L, T: torch.log(torch.exp(-ising.energy(ising.all_states(L)) / T).sum()),
                "exp(-H/T) overflows at low temperature: use torch.logsumexp(-H / T, 0)"),
    ],
    doc="""The exact log Z of a small lattice.  exact_log_z(L, temperature) -> log Z = log Σ_s exp(-H(s)/T) over
    all 2^(L²) states (L = 2 or 3), stably; use your energy().""")

BOLTZMANN_LOG_PROBABILITIES = Exercise(
    "the Boltzmann log-probabilities", "boltzmann_log_probabilities(energies, temperature)",
    ising.log_probabilities_from_energies,
    [Case("2×2 at T = 3", lambda: (_all_energies(2), 3.0)),
     Case("3×3 at T_c", lambda: (_all_energies(3), ising.CRITICAL_TEMPERATURE)),
     Case("3×3 at T = 0.01, where exp(-H/T) overflows in float64", lambda: (_all_energies(3), 0.01))],
    mistakes=[
        Mistake(lambda E, T: -E / T, "log Z is missing: the probabilities must sum to one"),
        Mistake(lambda E, T: E / T - torch.logsumexp(E / T, 0), "the sign: p(s) ∝ exp(-H(s)/T)"),
        Mistake(lambda E, T: -E * T - torch.logsumexp(-E * T, 0), "divide the energy by T: exp(-H/T)"),
        Mistake(lambda E, T: torch.log(torch.exp(-E / T) / torch.exp(-E / T).sum()),
                "exp(-H/T) overflows at low temperature: compute log Z by torch.logsumexp"),
        Mistake(lambda E, T: -E / T + torch.logsumexp(-E / T, 0), "subtract log Z: log p(s) = -H(s)/T - log Z"),
    ], shape_hint="one log-probability per state, the shape of `energies`",
    doc="""The Boltzmann distribution.  boltzmann_log_probabilities(energies, temperature) -> log p(s) = -H(s)/T
    - log Z for each state's energy in `energies` (n_states,), log Z = logsumexp(-H/T) over the same states.""")

SPECS = [ISING_ENERGY, MAGNETISATION, LOCAL_FIELD, METROPOLIS_HALF_SWEEP, EXACT_LOG_Z, BOLTZMANN_LOG_PROBABILITIES]
