"""The 2-D Ising model, its exact results and Monte Carlo samples, and an RBM that learns it.  Taught in 07_ising_rbm.

H(s) = -Σ_<ij> s_i s_j (J = 1, nearest neighbours, periodic boundaries) on an L×L lattice of spins s_i = ±1, with the
Boltzmann distribution p(s) = exp(-H(s)/T) / Z (k_B = 1). In the lecture's order: the model (energy, magnetisation,
and the map of spins to an RBM's visible units), exact results (every one of the 2^(L²) states for L ≤ 4; Onsager's
infinite lattice), Monte Carlo (the textbook checkerboard Metropolis sweep, whose fast form lives in ising_fast;
Wolff clusters; burn-in and thinning from the measured autocorrelation time), thermodynamics with error bars, and the
exact KL divergence of an RBM from the Boltzmann distribution. Spins are int8 tensors of shape (..., L, L): many
lattices run at once, on any device. Input checks live in genmodels.checks; Monte Carlo speed is measured by
benchmarks/ising.py.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from . import ising_fast, mcmc
from .checks import check_lattice_size, check_spins, check_temperature
from .device import threads_for
from .rbm import RBM, binary_states, log_probabilities

__all__ = ["CRITICAL_TEMPERATURE", "MAX_EXACT_SIZE", "check_spins", "energy", "magnetisation", "spins_to_visible",
           "visible_to_spins", "ExactIsing", "all_states", "boltzmann_log_probabilities",
           "log_probabilities_from_energies", "exact", "exact_samples", "onsager_energy", "onsager_magnetisation",
           "checkerboard", "local_field", "metropolis_half_sweep", "metropolis", "wolff", "MonteCarlo", "AUTO_RULES",
           "auto_method", "sample", "thermodynamics", "rbm_samples", "exact_kl_divergence"]

CRITICAL_TEMPERATURE = 2 / math.log(1 + math.sqrt(2))  # Onsager (1944): T_c = 2/ln(1 + √2) ≈ 2.269185
MAX_EXACT_SIZE = 4  # 2^16 states; L = 5 would be 2^25


# --- the model ----------------------------------------------------------------------------------------------------


def energy(spins) -> torch.Tensor:
    """H(s) = -Σ_i s_i (s_right(i) + s_down(i)): each bond of the periodic lattice once. One value per lattice, float32.
    Taught in 07_ising_rbm."""
    s = check_spins(spins).to(torch.int32)
    return -(s * (s.roll(-1, -1) + s.roll(-1, -2))).sum((-2, -1)).float()


def magnetisation(spins) -> torch.Tensor:
    """m = (1/N) Σ_i s_i, the magnetisation per site, one value per lattice (N = L² sites)."""
    s = check_spins(spins)
    return s.float().mean((-2, -1))


def spins_to_visible(spins) -> torch.Tensor:
    """v = (1 + s)/2: the spins of each lattice as one row of an RBM's binary visible units, (..., L²) float32.
    This and visible_to_spins are the one place where spins meet visible units.  Taught in 07_ising_rbm."""
    s = check_spins(spins)
    return ((1 + s.float()) / 2).flatten(-2)


def visible_to_spins(v) -> torch.Tensor:
    """s = 2v - 1: rows of L² binary visible units (0/1) as L×L lattices of spins ±1, int8."""
    v = v if torch.is_tensor(v) else torch.as_tensor(np.asarray(v))
    L = math.isqrt(v.shape[-1])
    if L * L != v.shape[-1]:
        raise ValueError(f"{v.shape[-1]} visible units do not make a square lattice; give rows of L² units")
    return check_spins((2 * v - 1).round().reshape(*v.shape[:-1], L, L))


# --- exact results: every state of a small lattice -----------------------------------------------------------------


@dataclass(frozen=True)
class ExactIsing:
    """Exact results of an L×L lattice at temperature T: log Z and the entropy H = -Σ p log p (nats) of the whole
    lattice; the energy ⟨H⟩/N, specific heat (⟨H²⟩ - ⟨H⟩²)/(N T²) and ⟨|m|⟩ per site."""

    L: int
    temperature: float
    log_z: float
    entropy: float
    energy: float
    specific_heat: float
    abs_magnetisation: float


def all_states(L: int, device=None) -> torch.Tensor:
    """The 2^(L²) spin configurations of an L×L lattice, (2^(L²), L, L) int8, in the order of rbm.binary_states
    of their visible units (first site most significant)."""
    L = check_lattice_size(L)
    if L > MAX_EXACT_SIZE:
        raise ValueError(f"exact enumeration of an {L}×{L} lattice needs 2^{L * L} states; use L ≤ {MAX_EXACT_SIZE}, "
                         "or Monte Carlo (ising.sample) for larger lattices")
    return visible_to_spins(binary_states(L * L, device=device))


def boltzmann_log_probabilities(L: int, temperature: float, device=None) -> torch.Tensor:
    """log p(s) = -H(s)/T - log Z for every state of all_states(L), in float64, with log Z = logsumexp(-H/T).
    exact_kl_divergence uses it (07_ising_rbm)."""
    energies = _all_energies(check_lattice_size(L)).to(device)
    return log_probabilities_from_energies(energies, check_temperature(temperature))


def log_probabilities_from_energies(energies: torch.Tensor, temperature: float) -> torch.Tensor:
    """log p(s) = -H(s)/T - log Z for each state's energy in `energies`, log Z = logsumexp(-H/T) over those states
    (stably: exp(-H/T) overflows at low temperature); exercises/07_ising writes it."""
    log_weights = -energies / temperature
    return log_weights - torch.logsumexp(log_weights, 0)


@functools.cache
def _all_energies(L: int) -> torch.Tensor:
    """H(s) of every state of all_states(L), float64 on the CPU, computed once per L (a KL per epoch reuses it)."""
    return energy(all_states(L)).double()


def exact(L: int, temperature: float) -> ExactIsing:
    """Sums over all 2^(L²) states: log Z = log Σ_s e^{-H(s)/T}, H = -Σ p log p = log Z + ⟨H⟩/T, and the per-site
    ⟨H⟩/N, (⟨H²⟩ - ⟨H⟩²)/(N T²) and ⟨|m|⟩.  Taught in 07_ising_rbm."""
    T = check_temperature(temperature)
    states = all_states(L)
    E, m = energy(states).double(), magnetisation(states).double().abs()
    log_z = torch.logsumexp(-E / T, 0).item()
    p = torch.exp(-E / T - log_z)
    mean_E, n = (p * E).sum().item(), L * L
    var_E = (p * (E - mean_E) ** 2).sum().item()
    return ExactIsing(L, T, log_z, log_z + mean_E / T, mean_E / n, var_E / (n * T**2), (p * m).sum().item())


def exact_samples(L: int, temperature: float, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """n independent draws from the Boltzmann distribution of an L×L lattice (L ≤ 4), (n, L, L) int8, by sampling
    the enumerated probabilities."""
    p = boltzmann_log_probabilities(L, temperature).exp()
    index = torch.multinomial(p, n, replacement=True, generator=generator)
    return all_states(L)[index]


# --- exact results: Onsager's infinite lattice ---------------------------------------------------------------------


def _elliptic_k(k: np.ndarray) -> np.ndarray:
    """The complete elliptic integral of the first kind, K(k) = ∫_0^{π/2} dθ / √(1 - k² sin²θ) = π / (2 agm(1, k')),
    k' = √(1 - k²), by the arithmetic-geometric mean."""
    a, b = np.ones_like(k), np.sqrt(np.clip(1 - k**2, 0, None))
    for _ in range(40):  # converges quadratically: 40 rounds reach machine precision even at k' = 1e-12
        a, b = (a + b) / 2, np.sqrt(a * b)
    with np.errstate(divide="ignore"):
        return np.pi / (2 * a)


def onsager_energy(temperature):
    """Onsager's energy per site of the infinite lattice (Onsager 1944; Huang, Statistical Mechanics, §15):
    u = -coth(2β) [1 + (2/π)(2 tanh²(2β) - 1) K(k)], k = 2 sinh(2β)/cosh²(2β), β = 1/T; u(T_c) = -√2.
    Takes a number or an array.  Taught in 07_ising_rbm."""
    T = np.asarray(temperature, dtype=float)
    if (T <= 0).any():
        raise ValueError(f"temperatures must be positive, got {temperature}")
    two_beta = 2 / T
    k = 2 * np.sinh(two_beta) / np.cosh(two_beta) ** 2
    factor = 2 * np.tanh(two_beta) ** 2 - 1  # zero at T_c, where k = 1 and K(k) is infinite: the product tends to 0
    at_critical = k >= 1  # k < 1 everywhere else
    correction = np.where(at_critical, 0.0, factor * _elliptic_k(np.where(at_critical, 0.0, k)))
    u = -(1 + 2 / np.pi * correction) / np.tanh(two_beta)
    return u.item() if u.ndim == 0 else u


def onsager_magnetisation(temperature):
    """The spontaneous magnetisation per site of the infinite lattice (Onsager 1949, Yang 1952):
    m = (1 - sinh⁻⁴(2/T))^(1/8) below T_c, 0 above. Takes a number or an array.  Taught in 07_ising_rbm."""
    T = np.asarray(temperature, dtype=float)
    if (T <= 0).any():
        raise ValueError(f"temperatures must be positive, got {temperature}")
    m = np.clip(1 - np.sinh(2 / T) ** -4.0, 0, None) ** 0.125
    return m.item() if m.ndim == 0 else m


# --- Monte Carlo: checkerboard Metropolis and Wolff clusters ------------------------------------------------------


def checkerboard(L: int, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """The two colours of an L×L checkerboard, boolean masks: a site's four neighbours have the other colour."""
    i, j = torch.meshgrid(torch.arange(L, device=device), torch.arange(L, device=device), indexing="ij")
    return (i + j) % 2 == 0, (i + j) % 2 == 1


def local_field(s: torch.Tensor) -> torch.Tensor:
    """h_i = Σ_{j∈nn(i)} s_j, the sum of each site's four nearest neighbours on the periodic lattice."""
    return s.roll(1, -1) + s.roll(-1, -1) + s.roll(1, -2) + s.roll(-1, -2)


def metropolis_half_sweep(s: torch.Tensor, T: float, u: torch.Tensor, colour: torch.Tensor) -> torch.Tensor:
    """The textbook update of every site of one colour: flipping s_i costs ΔE = 2 s_i h_i, with h_i the sum of its
    four neighbours; the flip is accepted if u_i < e^{-ΔE/T}, u_i uniform on [0, 1). Returns the new spins."""
    delta_e = (2 * s * local_field(s)).double()
    flip = (u < torch.exp(-delta_e / T)) & colour
    return torch.where(flip, -s, s)


def _metropolis_reference(s: torch.Tensor, T: float, sweeps: int, generator) -> torch.Tensor:
    colours = checkerboard(s.shape[-1], s.device)
    for _ in range(sweeps):
        u = torch.rand(s.shape, generator=generator, device=s.device, dtype=torch.float64)  # one uniform per site
        for colour in colours:
            s = metropolis_half_sweep(s, T, u, colour)
    return s


def _metropolis_sweeps(s: torch.Tensor, T: float, sweeps: int, generator) -> torch.Tensor:
    if ising_fast.applies(s):  # the same update, with half the random bits and no exponential
        return ising_fast.metropolis_sweeps(s, T, sweeps, generator, checkerboard(s.shape[-1], s.device))
    return _metropolis_reference(s, T, sweeps, generator)


def metropolis(spins, temperature: float, sweeps: int = 1, generator: torch.Generator | None = None) -> torch.Tensor:
    """`sweeps` checkerboard Metropolis sweeps of every lattice in `spins` (..., L, L), L even.

    Sites of one colour of the checkerboard have no neighbours of their colour, so all of them are updated at once
    (metropolis_half_sweep), then the other colour; each site draws one uniform per sweep. On the CPU and CUDA the
    sweep runs as genmodels.ising_fast (the same flips from the same uniforms, faster). Returns the new spins.
    Taught in 07_ising_rbm."""
    s, T = check_spins(spins), check_temperature(temperature)
    if s.shape[-1] % 2:
        raise ValueError(f"checkerboard Metropolis needs an even L (with odd L a site and its periodic neighbour "
                         f"share a colour); got L={s.shape[-1]}: use an even L, or wolff()")
    with threads_for(s.numel(), s.device):
        return _metropolis_sweeps(s, T, sweeps, generator)


def _wolff_steps(s: torch.Tensor, T: float, steps: int, generator, work: dict | None = None) -> torch.Tensor:
    """With `work`, adds to work["flipped"] the sites flipped (the clusters' sizes, summed over lattices) and to
    work["rounds"] the rounds of growth, each of which touches every site of every lattice: as many as the
    lattice whose cluster grows longest needs."""
    p_add = 1 - math.exp(-2 / T)
    batch, L = s.shape[:-2], s.shape[-1]
    for _ in range(steps):
        aligned_right, aligned_down = s == s.roll(-1, -1), s == s.roll(-1, -2)
        right = aligned_right & (torch.rand(s.shape, generator=generator, device=s.device) < p_add)  # open bonds
        down = aligned_down & (torch.rand(s.shape, generator=generator, device=s.device) < p_add)
        seed = torch.randint(L * L, batch, generator=generator, device=s.device)
        cluster = F.one_hot(seed, L * L).bool().view(s.shape)
        frontier, rounds = cluster, 0
        while frontier.any():  # grow every lattice's cluster through open bonds, one layer of neighbours a round
            grown = ((frontier & right).roll(1, -1) | (frontier & right.roll(1, -1)).roll(-1, -1)
                     | (frontier & down).roll(1, -2) | (frontier & down.roll(1, -2)).roll(-1, -2))
            frontier = grown & ~cluster
            cluster = cluster | frontier
            rounds += 1
        s = torch.where(cluster, -s, s)
        if work is not None:
            work["flipped"] = work.get("flipped", 0) + cluster.sum().item()
            work["rounds"] = work.get("rounds", 0) + rounds
    return s


def wolff(spins, temperature: float, steps: int = 1, generator: torch.Generator | None = None) -> torch.Tensor:
    """`steps` Wolff cluster updates of every lattice in `spins` (..., L, L) (Wolff 1989).

    From a random seed site, the cluster grows to each aligned neighbour with probability p = 1 - e^{-2/T} (each bond
    tested once), and the whole cluster flips; the move is always accepted. Near T_c the clusters span the lattice and
    decorrelate it in a few steps, where single spin flips slow down critically. Returns the new spins.
    Taught in 07_ising_rbm."""
    s = check_spins(spins)
    with threads_for(s.numel(), s.device):
        return _wolff_steps(s, check_temperature(temperature), steps, generator)


@dataclass
class MonteCarlo:
    """What `sample` returns: `spins` (n_samples, n_lattices, L, L) int8, kept every `thin` steps after `burn_in`
    steps, and τ, the integrated autocorrelation time (in steps) of the energy and |m| measured on the pilot run;
    `why` says how the method was chosen. The work of a step, measured on the pilot, per lattice:
    `site_updates_per_step` (Metropolis: the N = L² sites of a sweep; Wolff: the mean cluster size ⟨|C|⟩) and
    `passes_per_step`, the passes over all N sites that this tensor implementation makes for it: a Metropolis
    sweep is one; a Wolff step makes one per round of cluster growth, each a few tensor operations over the
    whole lattice, like a sweep, until the slowest of the lattices run together has grown its cluster
    (benchmarks/ising.py times both)."""

    spins: torch.Tensor
    temperature: float
    method: str
    tau: float
    burn_in: int
    thin: int
    why: str = "asked for"
    site_updates_per_step: float = 0.0
    passes_per_step: float = 0.0

    @property
    def site_updates_per_sample(self) -> float:
        """τ × the site updates of a step: the work of one independent sample, in the units of a textbook's
        cost count (a Metropolis sweep updates all N sites; a Wolff step flips its cluster, ⟨|C|⟩ sites)."""
        return self.tau * self.site_updates_per_step


# method="auto": a fixed rule per device type, so that results do not depend on timings taken at run time. Notebook 07
# prints the work per independent sample of both at T_c (τ times the passes over the lattices of a step): a
# Metropolis sweep is one pass, a Wolff step one pass per layer of its slowest lattice's cluster, and per independent
# sample Metropolis makes fewer passes at the course's sizes (8 to 32); benchmarks/ising.py times a pass of each on a
# CPU. On a GPU the rule is the textbook's (Wolff near T_c, where Metropolis slows down critically); it has not been
# timed there.
AUTO_RULES = {
    "cpu": "Metropolis at every temperature (cheaper per independent sample on a CPU; Wolff for odd L)",
    "gpu": "Wolff within 25 % of T_c, Metropolis elsewhere (the textbook rule; Wolff for odd L)",
}


def auto_method(L: int, temperature: float, device) -> tuple[str, str]:
    """The method that method="auto" takes for an L×L lattice at T on `device`, and the rule it followed."""
    kind = "cpu" if torch.device(device).type == "cpu" else "gpu"
    near_critical = 0.75 * CRITICAL_TEMPERATURE <= temperature <= 1.25 * CRITICAL_TEMPERATURE
    method = "wolff" if L % 2 or (kind == "gpu" and near_critical) else "metropolis"
    return method, f"auto on {torch.device(device).type}: {AUTO_RULES[kind]}"


def _observables(s: torch.Tensor) -> torch.Tensor:
    """(energy per site, |m|) of each lattice, (n_lattices, 2) float32."""
    return torch.stack([energy(s) / s[0].numel(), magnetisation(s).abs()], -1)


def sample(L: int, temperature: float, n_lattices: int = 100, n_samples: int = 100, *, method: str = "auto",
           pilot: int = 400, device=None, generator: torch.Generator | None = None, seed: int = 0) -> MonteCarlo:
    """Equilibrium samples of `n_lattices` independent L×L lattices, `n_samples` from each.

    From random spins, a pilot run of `pilot` steps measures τ = max(τ_energy, τ_|m|) on its second half
    (mcmc.integrated_autocorrelation_time); burn-in lasts max(pilot, 20τ) steps, and one state in every ⌈τ⌉ is
    kept. A step is a Metropolis sweep or a Wolff cluster flip. method="auto" follows a fixed rule per device type
    (AUTO_RULES; the result's `why` states it): on a CPU, Metropolis at every temperature; on a GPU, Wolff within
    25 % of T_c and Metropolis elsewhere; Wolff for an odd L everywhere.  Taught in 07_ising_rbm."""
    L, T = check_lattice_size(L), check_temperature(temperature)
    device = torch.device(device) if device is not None else (generator.device if generator else torch.device("cpu"))
    why = "asked for"
    if method == "auto":
        method, why = auto_method(L, T, device)
    if method not in ("metropolis", "wolff"):
        raise ValueError(f"method must be 'metropolis', 'wolff' or 'auto', got {method!r}")
    if method == "metropolis" and L % 2:
        raise ValueError(f"checkerboard Metropolis needs an even L, got L={L}; use an even L or method='wolff'")
    if n_lattices < 1 or n_samples < 4 or pilot < 8:
        raise ValueError(f"need n_lattices >= 1, n_samples >= 4 and pilot >= 8; got {n_lattices}, {n_samples}, {pilot}")
    generator = generator or torch.Generator(device=device).manual_seed(seed)
    with threads_for(n_lattices * L * L, device):  # one CPU thread for a few small lattices
        return _sample(L, T, n_lattices, n_samples, method, pilot, device, generator, why)


def _sample(L, T, n_lattices, n_samples, method, pilot, device, generator, why) -> MonteCarlo:
    """sample's algorithm, its arguments checked."""
    steps = _wolff_steps if method == "wolff" else _metropolis_sweeps
    s = 2 * torch.randint(2, (n_lattices, L, L), generator=generator, device=device, dtype=torch.int8) - 1
    trace, work = [], {}  # τ and the work of a step are measured on the pilot's second half
    for i in range(pilot):
        if method == "wolff":
            s = _wolff_steps(s, T, 1, generator, work if i >= pilot // 2 else None)
        else:
            s = _metropolis_sweeps(s, T, 1, generator)
        trace.append(_observables(s))
    measured = pilot - pilot // 2
    tau = mcmc.integrated_autocorrelation_time(torch.stack(trace[pilot // 2:])).max().item()
    if method == "wolff":
        per_step = (work["flipped"] / (measured * n_lattices), work["rounds"] / measured)
    else:
        per_step = (L * L, 1.0)
    burn_in, thin = max(pilot, math.ceil(20 * tau)), math.ceil(tau)
    s = steps(s, T, burn_in - pilot, generator)
    kept = []
    for _ in range(n_samples):
        s = steps(s, T, thin, generator)
        kept.append(s)
    return MonteCarlo(torch.stack(kept), T, method, tau, burn_in, thin, why, *per_step)


# --- thermodynamics with error bars -------------------------------------------------------------------------------


def thermodynamics(spins, temperature: float, n_groups: int = 10) -> dict[str, tuple[float, float]]:
    """Per-site energy ⟨H⟩/N, ⟨|m|⟩ and specific heat c = N (⟨e²⟩ - ⟨e⟩²)/T² (e = H/N) from chains of samples
    (n_steps, n_chains, L, L), each as (value, standard error). Errors of the means come from the measured
    autocorrelation time (mcmc.monte_carlo_error); that of c from the spread of c over `n_groups` groups of
    independent chains.  Taught in 07_ising_rbm."""
    s, T = check_spins(spins), check_temperature(temperature)
    if s.ndim != 4 or s.shape[1] < 2:
        raise ValueError(f"spins must be chains (n_steps, n_chains, L, L) with n_chains >= 2, got {tuple(s.shape)}")
    n = s.shape[-1] ** 2
    e, m = (energy(s) / n).double(), magnetisation(s).abs().double()
    groups = torch.tensor_split(e, min(n_groups, e.shape[1]), dim=1)
    c = torch.stack([n * g.var() / T**2 for g in groups])
    return {"energy": (e.mean().item(), mcmc.monte_carlo_error(e).item()),
            "abs_magnetisation": (m.mean().item(), mcmc.monte_carlo_error(m).item()),
            "specific_heat": (n * e.var().item() / T**2, c.std().item() / math.sqrt(len(c)))}


# --- the RBM's view: samples, and its exact distance from Boltzmann ------------------------------------------------


@torch.no_grad()
def rbm_samples(rbm: RBM, n_chains: int = 1000, n_records: int = 20, *, burn_in: int = 200, thin: int = 10,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """Spins sampled from an RBM by block Gibbs sampling: `n_chains` chains from the base rate, `burn_in` sweeps,
    then one state every `thin` sweeps, (n_records, n_chains, L, L) int8, ready for `thermodynamics`."""
    v = rbm.sample(n_chains, burn_in, generator=generator, probabilities=False)
    records = []
    for _ in range(n_records):
        v = rbm.sample(steps=thin, v0=v, generator=generator, probabilities=False)
        records.append(visible_to_spins(v))
    return torch.stack(records)


@torch.no_grad()
def exact_kl_divergence(rbm: RBM, temperature: float) -> float:
    """KL(p_Boltzmann ‖ p_RBM) = Σ_s p(s) [log p(s) - log p_RBM(v(s))] = -H(p) - ⟨log p_RBM⟩_p, exactly, summed over
    all 2^(L²) states (L ≤ 4), with log p_RBM from rbm.log_probabilities (float64, on the CPU).
    Taught in 07_ising_rbm."""
    L = math.isqrt(rbm.n_visible)
    if L * L != rbm.n_visible:
        raise ValueError(f"the RBM has {rbm.n_visible} visible units, not the L² sites of a square lattice")
    log_p = boltzmann_log_probabilities(L, temperature)  # the order of all_states(L), which is binary_states'
    log_q = log_probabilities(rbm)
    return (log_p.exp() * (log_p - log_q)).sum().item()
