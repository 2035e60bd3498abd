# ---
# jupyter:
#   jupytext:
#     cell_metadata_filter: tags,-all
#     notebook_metadata_filter: -jupytext.text_representation.jupytext_version
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Exercises 07 · The Ising model
#
# Goes with `notebooks/07_ising_rbm`. Implementation exercises: write one piece of the model; the cell after
# it checks it with `genmodels.exercises`, which names the mistake when it is a known one. Experiment
# exercises: the questions at the end of notebook 07. Run All works at any time: a function not written yet reports
# "not done yet". Spins are int8 tensors of ±1 with shape (..., L, L), on a periodic lattice.

# %% tags=["parameters"]
profile = None  # "quick" (seconds, CPU) or "full" (real results); None: GENMODELS_PROFILE, else "full"
seed = 0

# %%
import math

import torch

import genmodels
from genmodels import exercises, ising, rbm

profile, device = genmodels.setup(profile, "cpu", seed)

# %% [markdown]
# ## Implementation exercises
#
# ### Exercise: the energy
# $H(\mathbf s) = -\sum_{\langle ij \rangle} s_i s_j$ over the nearest-neighbour bonds, each bond once (the right and
# the lower neighbour of every site, wrapping around the edges).

# %%
def energy(spins):
    ### BEGIN SOLUTION
    s = spins.float()
    return -(s * (s.roll(-1, -1) + s.roll(-1, -2))).sum((-2, -1))
    ### END SOLUTION


# %% tags=["nbval-check-output"]
exercises.check_ising_energy(energy)

# %% [markdown]
# ### Exercise: the magnetisation
# $m = \frac1N \sum_i s_i$ per lattice.

# %%
def magnetisation(spins):
    ### BEGIN SOLUTION
    return spins.float().mean((-2, -1))
    ### END SOLUTION


# %% tags=["nbval-check-output"]
exercises.check_magnetisation(magnetisation)

# %% [markdown]
# ### Exercise: the local field
# $h_i = \sum_{j \in \mathrm{nn}(i)} s_j$, the sum of the four neighbours of every site.

# %%
def local_field(spins):
    ### BEGIN SOLUTION
    return spins.roll(1, -1) + spins.roll(-1, -1) + spins.roll(1, -2) + spins.roll(-1, -2)
    ### END SOLUTION


# %% tags=["nbval-check-output"]
exercises.check_local_field(local_field)

# %% [markdown]
# ### Exercise: a checkerboard Metropolis half-sweep
# Flipping $s_i$ costs $\Delta E = 2 s_i h_i$; accept where $u_i < e^{-\Delta E/T}$. Sites of one colour,
# $(i + j) \bmod 2 =$ `colour`, have no neighbours of that colour, so they are all tried at once. Return new spins.

# %%
def metropolis_half_sweep(spins, temperature, u, colour):
    ### BEGIN SOLUTION
    L = spins.shape[-1]
    i, j = torch.meshgrid(torch.arange(L), torch.arange(L), indexing="ij")
    s = spins.int()
    delta_e = 2 * s * local_field(s)
    flip = (u < torch.exp(-delta_e / temperature)) & ((i + j) % 2 == colour)
    return (s - 2 * s * flip).to(torch.int8)
    ### END SOLUTION


# %% tags=["nbval-check-output"]
exercises.check_metropolis_half_sweep(metropolis_half_sweep)

# %% [markdown]
# ### Exercise: the exact log Z of a small lattice
# $\log Z = \log \sum_{\mathbf s} e^{-H(\mathbf s)/T}$ over all $2^{L^2}$ states ($L = 3$: 512), stably.
# `ising.all_states(L)` lists the states.

# %%
def exact_log_z(L, temperature):
    ### BEGIN SOLUTION
    return torch.logsumexp(-energy(ising.all_states(L)) / temperature, 0).item()
    ### END SOLUTION


# %% tags=["nbval-check-output"]
exercises.check_exact_log_z(exact_log_z)

# %% [markdown]
# ### Exercise: the Boltzmann distribution
# $\log p(\mathbf s) = -H(\mathbf s)/T - \log Z$ for every state, given the states' energies.

# %%
def boltzmann_log_probabilities(energies, temperature):
    ### BEGIN SOLUTION
    log_weights = -energies / temperature
    return log_weights - torch.logsumexp(log_weights, 0)
    ### END SOLUTION


# %% tags=["nbval-check-output"]
exercises.check_boltzmann_log_probabilities(boltzmann_log_probabilities)

# %% [markdown]
# ## Experiment exercises
#
# RBMs on the $L = 4$ lattice (16 spins) have an exact KL from the Boltzmann distribution; the quick profile trains
# them for a few epochs.

# %%
L, n_samples, epochs = 4, profile.pick(quick=1000, full=20000), profile.pick(quick=3, full=50)


def train_ising_rbm(temperature, n_hidden=16, **settings):
    spins = ising.exact_samples(L, temperature, n_samples, generator=torch.Generator().manual_seed(seed))
    model = rbm.RBM(L * L, n_hidden, generator=torch.Generator().manual_seed(seed))
    rbm.fit(model, ising.spins_to_visible(spins), epochs=epochs, batch_size=100, progress="none", seed=seed,
            **{"lr": 0.05, **settings})
    return model

# %% [markdown]
# ### Exercise: CD-1, CD-10 and PCD below $T_c$ (notebook 07, exercise 1)
# Which one lowers the exact KL fastest below $T_c$, and why do persistent chains struggle with a two-spike
# distribution?

# %%
### BEGIN SOLUTION
T = 1.8
for name, settings in (("CD-1", {"k": 1}), ("CD-10", {"k": 10}), ("PCD-1", {"persistent": True, "lr": 0.01})):
    print(f"T = {T}, {name:5s}: exact KL {ising.exact_kl_divergence(train_ising_rbm(T, **settings), T):.3f} nats")
### END SOLUTION

# %% [markdown] tags=["solution"]
# **What to look for.** Below $T_c$ the distribution has two spikes, all spins up and all down. CD-1 starts its
# chains at the data, so both spikes are always represented; persistent chains must cross between the spikes by
# Gibbs sampling, which a well-trained RBM makes exponentially slow: the chains sit in one spike, the negative phase
# misses the other, and the KL falls slowly or oscillates.

# %% [markdown]
# ### Exercise: the number of hidden units at $T_c$ (notebook 07, exercise 2)
# How does the error in the specific heat $c(T_c)$ fall with $\alpha = n_h / n_v$? (Notebook 07 uses $L = 8$ and
# 128 or 256 hidden units, minutes each; here the exact $L = 4$ lattice.)

# %%
### BEGIN SOLUTION
T = ising.CRITICAL_TEMPERATURE
exact = ising.exact(L, T)
for n_hidden in profile.pick(quick=(4, 32), full=(4, 16, 32, 64)):
    model = train_ising_rbm(T, n_hidden=n_hidden)
    samples = ising.rbm_samples(model, n_chains=profile.pick(quick=100, full=1000), n_records=10,
                                burn_in=50, thin=5, generator=torch.Generator().manual_seed(seed))
    c, error = ising.thermodynamics(samples, T)["specific_heat"]
    print(f"α = {n_hidden / (L * L):.2f}: c(T_c) = {c:.3f} ± {error:.3f}, exact {exact.specific_heat:.3f}")
### END SOLUTION

# %% [markdown] tags=["solution"]
# **What to look for.** The specific heat, a fluctuation, is the hardest quantity to reproduce: with few hidden
# units the RBM underestimates it; the error falls as α grows, until the statistical error of the samples (printed)
# dominates. Torlai & Melko (2016) needed α of about 2–4 at $T_c$.

# %% [markdown]
# ### Exercise: critical slowing down (notebook 07, exercise 3)
# Measure τ of Metropolis at $T_c$ for growing L and fit $\tau \propto L^z$. Do the same for Wolff.

# %%
### BEGIN SOLUTION
sizes = profile.pick(quick=(4, 8, 16), full=(8, 16, 32))
for method in ("metropolis", "wolff"):
    taus = []
    for size in sizes:
        run = ising.sample(size, T, n_lattices=profile.pick(quick=20, full=100), n_samples=10, method=method,
                           pilot=profile.pick(quick=200, full=2000), seed=seed)
        taus.append(run.tau)
    z = torch.linalg.lstsq(torch.tensor([[math.log(s), 1.0] for s in sizes]),
                           torch.tensor([[math.log(t)] for t in taus])).solution[0].item()
    print(f"{method}: τ = {', '.join(f'{t:.1f}' for t in taus)} steps for L = {sizes}; fitted z = {z:.2f}")
### END SOLUTION

# %% [markdown] tags=["solution"]
# **What to look for.** Metropolis slows down as $L^z$ with $z \approx 2.17$ at $T_c$ (Nightingale & Blöte 1996);
# Wolff's τ, counted in cluster steps, grows far more slowly. (A fair comparison counts a Wolff step as
# $\langle|C|\rangle/N$ sweeps; `ising.sample` reports τ in its own steps, so the figure here overstates Wolff's cost
# per step at small L.) Short pilot runs give rough τ: the full profile measures longer.

# %% [markdown]
# ### Exercise: the RBM as a Monte Carlo proposal (notebook 07, exercise 4)
# Propose independent samples from a trained RBM and accept them with the Metropolis–Hastings ratio (exact for
# $L = 4$, where $q$ is known). How often is a proposal accepted at $T = 3$, and at $T_c$?

# %%
### BEGIN SOLUTION
log_p_states = {}
for T in (3.0, ising.CRITICAL_TEMPERATURE):
    model = train_ising_rbm(T)
    log_q = rbm.log_probabilities(model)  # every visible state, in the order of ising.all_states
    log_p = ising.boltzmann_log_probabilities(L, T)
    generator = torch.Generator().manual_seed(seed)
    proposals = torch.multinomial(log_q.exp(), 5001, replacement=True, generator=generator)
    current, accepted = proposals[0], 0
    for proposal in proposals[1:]:
        log_ratio = log_p[proposal] - log_p[current] + log_q[current] - log_q[proposal]
        if torch.rand((), generator=generator, dtype=torch.float64).log() < log_ratio:
            current, accepted = proposal, accepted + 1
    print(f"T = {T:.3f}: acceptance of RBM proposals {accepted / 5000:.2f}")
### END SOLUTION

# %% [markdown] tags=["solution"]
# **What to look for.** An independence sampler accepts often when $q$ is close to $p$: at $T = 3$, where the
# distribution is broad and the RBM fits it well, most proposals are accepted; at $T_c$ the fit is worse (large
# fluctuations, the two ordered states) and the acceptance falls. Each accepted proposal is a fresh, uncorrelated
# state: where it works, it beats Metropolis' critical slowing down.
