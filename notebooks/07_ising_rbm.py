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
# # 07 · An RBM learns the 2-D Ising model, checked against exact results
#
# The restricted Boltzmann machine is a model from statistical physics, so let it learn a physical system whose
# answers we know. The 2-D Ising model, $H(s) = -\sum_{\langle ij\rangle} s_i s_j$ with spins $s_i = \pm1$ on an
# $L\times L$ lattice (periodic boundaries, $J = k_B = 1$), has the Boltzmann distribution
# $p(s) = e^{-H(s)/T}/Z$ and a phase transition at Onsager's $T_c = 2/\ln(1+\sqrt2) \approx 2.269$.
#
# You will learn
# - the exact answers: every one of the $2^{16}$ states of a $4\times4$ lattice, and Onsager's infinite lattice;
# - Monte Carlo sampling of many lattices at once: checkerboard Metropolis, and Wolff's cluster update, which beats
#   the critical slowing down near $T_c$; burn-in and thinning chosen from the measured autocorrelation time;
# - the KL divergence of an RBM from the Boltzmann distribution, computed exactly for $L = 4$, falling as the RBM
#   trains, and why it moves with the likelihood that training maximises;
# - as Torlai & Melko (2016): RBMs trained on Monte Carlo samples of an $8\times8$ lattice reproduce its energy,
#   magnetisation and specific heat, except near $T_c$, where more hidden units help.

# %% tags=["parameters"]
profile = None  # "quick" (seconds, CPU) or "full" (real results); None: GENMODELS_PROFILE, else "full"
device = None  # None picks CUDA, then Apple MPS, then the CPU
seed = 0

# %%
import matplotlib.pyplot as plt
import matplotlib.ticker as ticker
import numpy as np
import torch

import genmodels
from genmodels import explorers, ising, plotting, rbm, runs

profile, device = genmodels.setup(profile, device, seed)  # the package picks one CPU thread for these small models
T_c = ising.CRITICAL_TEMPERATURE

# %% [markdown]
# ## The model and its exact answers
#
# A configuration $s$ of an $L\times L$ lattice has energy $H(s) = -\sum_i s_i(s_{\text{right}(i)} +
# s_{\text{down}(i)})$, each bond counted once. With $N = L^2$ sites, the quantities per site are the energy
# $u = \langle H\rangle/N$, the specific heat $c = (\langle H^2\rangle - \langle H\rangle^2)/(N T^2)$ and the mean
# absolute magnetisation $\langle|m|\rangle$, $m = \frac1N\sum_i s_i$ (on a finite lattice $\langle m\rangle = 0$
# by symmetry, so $|m|$ is the order parameter). For $L = 4$ there are $2^{16} = 65{,}536$ states: we sum over all
# of them, $\log Z = \log\sum_s e^{-H(s)/T}$, and get every probability exactly.

# %% tags=["nbval-check-output"]
print(f"{len(ising.all_states(4)):,} states of a 4×4 lattice")
print(" T      log Z   entropy   energy  spec. heat   <|m|>   (per site but log Z and entropy)")
for T in (2.0, T_c, 3.0):
    r = ising.exact(4, T)
    print(f"{T:.3f} {r.log_z:9.5f} {r.entropy:8.4f} {r.energy:9.5f} {r.specific_heat:9.5f} {r.abs_magnetisation:9.5f}")

# %% [markdown]
# For the infinite lattice, Onsager (1944) found the free energy in closed form. Its energy per site is
# $u = -\coth 2\beta\,\big[1 + \tfrac{2}{\pi}(2\tanh^2 2\beta - 1)K(k)\big]$ with $k = 2\sinh 2\beta/\cosh^2 2\beta$
# and $K$ the complete elliptic integral of the first kind; at $T_c$ it is $-\sqrt2$. Below $T_c$ the spontaneous
# magnetisation is $(1 - \sinh^{-4}(2/T))^{1/8}$ (Onsager 1949, Yang 1952); above, zero.

# %% tags=["nbval-check-output"]
print(f"T_c = 2/ln(1 + √2) = {T_c:.6f}")
print(f"u(T_c) = {ising.onsager_energy(T_c):.6f}  (-√2 = {-np.sqrt(2):.6f})")
for T in (1.5, 2.0, 2.25, 3.0):
    print(f"T = {T}: u = {ising.onsager_energy(T):.5f}, m = {ising.onsager_magnetisation(T):.5f}")

# %% [markdown]
# The $4\times4$ lattice is far from infinite: at $T = 2$ its energy is $-1.755$ against Onsager's $-1.746$, and at
# $T = 3$ its $\langle|m|\rangle = 0.60$ where the infinite lattice has none. The transition is rounded off; a
# finite lattice has no singularity.

# %% [markdown]
# ## Monte Carlo: Metropolis, and Wolff near $T_c$
#
# Beyond $L = 4$ we sample. **Metropolis** proposes to flip one spin, which costs $\Delta E = 2 s_i h_i$ with
# $h_i$ the sum of its four neighbours, and accepts with probability $\min(1, e^{-\Delta E/T})$. Colour the lattice
# as a checkerboard: a site's neighbours all have the other colour, so all sites of one colour update at once, then
# the other, in a few tensor operations for hundreds of lattices side by side. Near $T_c$ the correlation length
# grows to the lattice size and single flips barely move the large domains: the autocorrelation time $\tau$ grows
# like $L^{z}$, $z \approx 2.17$ for single-spin updates (Nightingale & Blöte 1996: critical slowing down).
# **Wolff**'s update grows a cluster of aligned spins from a random site, adding each aligned neighbour with
# probability $1 - e^{-2/T}$, and flips it whole, always accepted; its $z$ is about $0.25$ in two dimensions
# (Coddington & Baillie 1992).
#
# `ising.sample` runs a pilot, measures $\tau$ of the energy and $|m|$ with
# `mcmc.integrated_autocorrelation_time`,
# burns in for $\max(\text{pilot}, 20\tau)$ steps and keeps one state every $\lceil\tau\rceil$ steps. At $T_c$:

# %%
sizes = profile.pick(quick=(8,), full=(8, 16, 32))
print("site updates, and passes over all the lattices, per step and per independent sample (tau steps)")
print(" L  method        tau  updates/step  updates/sample  passes/step  passes/sample")
for L in sizes:
    for method in ("metropolis", "wolff"):
        run = ising.sample(L, T_c, n_lattices=100, n_samples=20, method=method, pilot=profile.pick(100, 400),
                           device=device, seed=seed)
        print(f"{L:2d}  {method:10s}{run.tau:6.1f}{run.site_updates_per_step:14.1f}{run.site_updates_per_sample:16.0f}"
              f"{run.passes_per_step:13.1f}{run.tau * run.passes_per_step:15.1f}")

# %% [markdown]
# Counted as a textbook counts, in site updates, Wolff's independent sample is the cheaper one (136 against 387 at
# $L = 8$), and more so as $L$ grows: Wolff's $\tau$ barely grows with $L$, where Metropolis's grows about as $L^2$
# (the full profile's table shows $L$ = 8 to 32). Run as tensors over many lattices at once, though, a Wolff step is
# not $|C|$ updates: its cluster grows by one layer of neighbours per pass over all the lattices, and the passes go
# on until the slowest lattice's cluster stops, 21.5 passes per step here against one per Metropolis sweep. Per
# independent sample that is 70.4 passes against 6.0, and a pass of either is a few tensor operations over every
# site; `benchmarks/ising.py` times both. So on a CPU `sample(method="auto")` takes Metropolis at every temperature,
# a rule fixed per device type so that results never depend on a timing taken at run time (`ising.AUTO_RULES`); on
# a GPU, where nothing has been timed yet, it takes the textbook's Wolff within 25 % of $T_c$. Each result says
# which rule chose its method (`run.why`).
# The samplers are checked against the exact $4\times4$ energy and $\langle|m|\rangle$ in `tests/test_ising.py`
# (within 4 standard errors at $T = 2$, $T_c$ and 3); `benchmarks/ising.py` measures their speed.

# %% [markdown]
# ## An RBM's exact distance from Boltzmann ($L = 4$)
#
# The RBM sees spins as binary visible units, $v_i = (1 + s_i)/2$. For $L = 4$ both distributions are known
# exactly: the Boltzmann $p(s)$ by enumeration, the RBM's $q(v) = e^{-F(v)}/Z_{\text{RBM}}$ with
# $\log Z_{\text{RBM}}$ summed over the smaller layer (`rbm.log_partition_exact`). So the KL divergence is exact:
# $$\mathrm{KL}(p\,\|\,q) = \sum_s p(s)\log\frac{p(s)}{q(v(s))} = -H(p) - \langle \log q\rangle_p .$$
# $H(p)$ does not depend on the RBM, so minimising the KL is maximising $\langle\log q\rangle_p$, the expected
# log-likelihood, which training estimates by the mean over its samples.
#
# A check with a closed form: an RBM with $W = 0$ is a model of independent spins,
# $q(v) = \prod_i\sigma(b_i)^{v_i}(1-\sigma(b_i))^{1-v_i}$. With $b = 0$ every state has $q = 2^{-16}$ and
# $\mathrm{KL} = N\ln2 - H(p)$.

# %% tags=["nbval-check-output"]
independent = rbm.RBM(16, 4, init_std=0.0)  # W = 0, b = 0
for T in (2.0, T_c, 3.0):
    closed_form = 16 * np.log(2) - ising.exact(4, T).entropy
    print(f"T = {T:.3f}: KL of independent spins, N ln 2 - H = {closed_form:.6f}; "
          f"summed over all states = {ising.exact_kl_divergence(independent, T):.6f}")

# %% [markdown]
# The correlations carry about 8 nats at $T = 2$, where the spins are nearly all aligned, and about 3 at $T = 3$
# (the lines above: the KL of a model that ignores them). Now train
# RBMs with several numbers of hidden units on exact samples of the Boltzmann distribution (CD-$k$ with long chains,
# the weights starting at a larger scale than the MNIST RBM's so that they leave the symmetric start quickly: the run
# `ising_rbm_4x4`, printed below), and compute the exact KL after every epoch, beside its estimate from the training
# data, $-H(p) - \frac1n\sum_k\log q(v_k)$.

# %%
temperatures_4 = (2.0, T_c, 3.0)
settings_4 = runs.settings("ising_rbm_4x4", profile)
print(settings_4)
hidden_4, n_train_4, epochs_4 = settings_4.hidden, settings_4.n_train, settings_4.epochs
generator = torch.Generator().manual_seed(seed)
curves = {}
for T in temperatures_4:
    x = ising.spins_to_visible(ising.exact_samples(4, T, n_train_4, generator=generator)).to(device)
    entropy = ising.exact(4, T).entropy
    for n_hidden in hidden_4:
        model = runs.build(settings_4, device, seed=seed, n_visible=16, n_hidden=n_hidden)

        def evaluate(model=model, x=x, T=T, entropy=entropy):
            return {"kl": ising.exact_kl_divergence(model, T),
                    "kl_from_data": -entropy - rbm.log_likelihood(model, x)}

        history = runs.train(model, x, settings_4, seed=seed, teaching=True, evaluate=evaluate)
        curves[T, n_hidden] = history
        print(f"T = {T:.3f}, {n_hidden:2d} hidden: KL {history['kl'][0]:.3f} after one epoch, "
              f"{history['kl'][-1]:.3f} after {epochs_4}")

# %%
fig, axes = plt.subplots(1, len(temperatures_4), figsize=(12, 3.4), sharey=True)
for ax, T in zip(axes, temperatures_4, strict=True):
    for colour, n_hidden in zip(("C0", "C1", "C2"), hidden_4, strict=False):
        history, epochs = curves[T, n_hidden], np.arange(1, epochs_4 + 1)
        ax.plot(epochs, history["kl"], colour, marker="o", ms=3, label=f"{n_hidden} hidden: exact KL")
        ax.plot(epochs, history["kl_from_data"], colour, ls="--", label="−H − mean log q(training data)")
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(ticker.FormatStrFormatter("%g"))  # 0.5, not 5×10⁻¹
    ax.yaxis.set_minor_formatter(ticker.FormatStrFormatter("%g"))  # ticks inside a decade read 6, not 6×10⁰
    ax.set_title(f"T = {T:.3f}" + (" = T_c" if T == T_c else ""))
    ax.set_xlabel("epoch")
axes[0].set_ylabel("KL(Boltzmann ‖ RBM), nats")
axes[0].legend(fontsize=7)
plt.tight_layout()
plt.show()

# %% [markdown]
# The exact KL and its estimate from the training data lie on top of each other: the likelihood CD climbs is the
# KL it lowers. Train longer (the full profile) and read the final KLs: more hidden units lower the KL fastest in
# the first epochs, but at the end CD's noisy gradient (a fixed learning rate, short chains) limits the
# KL more than the number of hidden units does, and the curves wobble once they flatten. Below $T_c$ the Boltzmann
# distribution is nearly two spikes (all up, all down), which CD's short chains rarely cross.

# %% [markdown]
# ## Thermodynamics from an RBM ($L = 8$, as Torlai & Melko 2016)
#
# No enumeration now ($2^{64}$ states): at each temperature, Monte Carlo produces samples of the $8\times8$ lattice,
# one RBM per temperature learns them, and Gibbs sampling of the RBM produces new lattices. We measure $u$,
# $\langle|m|\rangle$ and $c$ on both sets of samples, with standard errors from the autocorrelation time (and, for
# $c$, from its spread over groups of independent chains).

# %%
temperatures_8 = profile.pick(quick=(1.8, T_c, 3.0), full=(1.5, 1.8, 2.0, 2.2, T_c, 2.4, 2.6, 3.0, 3.5))
settings_8 = runs.settings("ising_rbm_8x8", profile)
print(settings_8)
hidden_8, epochs_8 = settings_8.hidden, settings_8.epochs
n_lattices, n_samples = profile.pick(quick=(50, 40), full=(100, 100))
mc, models = {}, {}
for T in temperatures_8:
    mc[T] = ising.sample(8, T, n_lattices, n_samples, device=device, seed=seed)
    x = ising.spins_to_visible(mc[T].spins).reshape(-1, 64)
    for n_hidden in hidden_8:
        models[T, n_hidden] = runs.build(settings_8, device, seed=seed, n_visible=64, n_hidden=n_hidden)
        runs.train(models[T, n_hidden], x, settings_8, seed=seed, teaching=True)
    print(f"T = {T:.3f}: {mc[T].method}, tau = {mc[T].tau:.1f} steps, {len(x):,} training lattices")
print(mc[T].why)

# %%
gibbs = torch.Generator(device=device).manual_seed(seed)
n_chains, n_records = profile.pick(quick=(200, 10), full=(1000, 20))
results = {}
for T in temperatures_8:
    results[T, "Monte Carlo"] = ising.thermodynamics(mc[T].spins, T)
    for n_hidden in hidden_8:
        spins = ising.rbm_samples(models[T, n_hidden], n_chains, n_records, generator=gibbs)
        results[T, n_hidden] = ising.thermodynamics(spins, T)
for T in temperatures_8:
    row = " ".join(f"{results[T, key]['energy'][0]:8.4f}" for key in ("Monte Carlo", *hidden_8))
    print(f"T = {T:.3f}: energy per site, Monte Carlo then RBMs of {', '.join(map(str, hidden_8))} hidden: {row}")
profile.note(f"{len(temperatures_8)} temperatures, {epochs_8} epochs, RBMs of {', '.join(map(str, hidden_8))} "
             "hidden units",
             "more temperatures, larger RBMs trained longer: the comparison with Monte Carlo to read")

# %%
quantities = {"energy": "energy per site u", "abs_magnetisation": "⟨|m|⟩", "specific_heat": "specific heat c"}
grid = np.linspace(1.2, 3.6, 400)
fig, axes = plt.subplots(1, 3, figsize=(13, 3.8), sharex=True)  # one temperature axis, 1.2 to 3.6, for all three
for ax, (name, label) in zip(axes, quantities.items(), strict=True):
    for key, style in zip(("Monte Carlo", *hidden_8), ("ko", "s", "^"), strict=False):
        value, error = np.array([results[T, key][name] for T in temperatures_8]).T
        label_key = "Monte Carlo (8×8)" if key == "Monte Carlo" else f"RBM, {key} hidden"
        ax.errorbar(temperatures_8, value, yerr=error, fmt=style, ms=4, capsize=2, label=label_key,
                    fillstyle="none" if key != "Monte Carlo" else "full")
    if name == "energy":
        ax.plot(grid, ising.onsager_energy(grid), "k:", lw=1, label="Onsager, infinite lattice")
    if name == "abs_magnetisation":
        ax.plot(grid, ising.onsager_magnetisation(grid), "k:", lw=1, label="Onsager, infinite lattice")
    ax.axvline(T_c, color="grey", lw=0.5)
    ax.set_xlim(grid[0], grid[-1])
    ax.set_xlabel("temperature T")
    ax.set_title(label)
axes[0].legend(fontsize=8)
fig.suptitle("RBMs trained on Monte Carlo samples of the 8×8 Ising model (after Torlai & Melko 2016)")
plt.tight_layout()
plt.show()

# %% [markdown]
# What to look for in the full profile (the quick one trains for seconds only, and its RBM points lie far off): the
# RBMs follow the Monte Carlo curves but tend to come out too disordered, their energy above the Monte Carlo energy,
# most near $T_c$; and the specific heat goes wrong first there, since $c$ is the *variance* of the energy, a
# second moment that a model can get wrong while its mean is close. More hidden units shrink the errors. Torlai and
# Melko found the same, with the error falling as $\alpha = n_h/n_v$ grows (they
# went to 4). The finite lattice also departs from Onsager's curves near $T_c$: that is physics (finite size),
# not a failure of the samplers.

# %%
show = [temperatures_8[0], T_c, temperatures_8[-1]]
fig, axes = plt.subplots(2, len(show), figsize=(13, 3.6))
for col, T in enumerate(show):  # black: spin up; white: spin down; grey between lattices
    rbm_spins = ising.rbm_samples(models[T, hidden_8[-1]], 3, 1, generator=gibbs)[0]
    plotting.show_images(ising.spins_to_visible(mc[T].spins[-1, :3]), ncols=3, ax=axes[0, col], pad_value=0.5,
                         title=f"T = {T:.2f}: Monte Carlo")
    plotting.show_images(ising.spins_to_visible(rbm_spins), ncols=3, ax=axes[1, col], pad_value=0.5,
                         title=f"T = {T:.2f}: RBM ({hidden_8[-1]} hidden)")
plt.tight_layout()
plt.show()

# %% [markdown]
# Ordered below $T_c$, large fluctuating domains at $T_c$, short-range disorder above. In the full profile the RBM's
# lattices look like the Monte Carlo ones; the quick profile's RBMs, trained for seconds, scatter single flipped
# spins where Monte Carlo shows domains.
#
# ## The temperature under your hand
#
# `explorers.IsingExplorer` puts the temperature on a slider: at any $T$ it samples $8\times8$ lattices by checkerboard
# Metropolis (burn-in and thinning from the measured $\tau$, as above) and marks their energy and $\langle|m|\rangle$
# on Onsager's curves; the RBM panel snaps to the trained temperature nearest $T$ and shows that RBM's Gibbs samples,
# measured the same way. Three temperatures, one row each, with what each row measures:

# %%
explorer = explorers.IsingExplorer({T: models[T, hidden_8[-1]] for T in temperatures_8}, L=8,
                                   n_lattices=n_lattices, n_samples=profile.pick(quick=20, full=50), seed=seed,
                                   device=device)
explorer.static([{"temperature": T} for T in (1.5, T_c, 3.4)])

# %% [markdown]
# The red line marks each row's $T$; the blue points are the Monte Carlo lattices at every temperature computed so
# far, the orange squares the RBMs at their trained temperatures. Below $T_c$ the small lattice follows Onsager's
# curves; near and above $T_c$ it keeps a magnetisation the infinite lattice loses (finite size, again physics).
# In JupyterLab (`make lab`, the full profile) the cell below shows the slider: move it across $T_c$ and watch the
# domains form, and see where an RBM's samples part from the Monte Carlo curve.

# %%
explorers.show(explorer, profile)

# %% [markdown]
# ## What to take away
# - For a small lattice everything is exact: $\log Z$, every probability, and the KL divergence of an RBM from the
#   Boltzmann distribution. Minimising that KL is maximising the expected log-likelihood; the two curves move
#   together.
# - Checkerboard Metropolis updates half the lattice at once, for many lattices at once; near $T_c$ it slows down
#   critically, and Wolff's clusters do not. Measure $\tau$, then burn in and thin by it, and quote errors from it.
# - An RBM trained on Monte Carlo samples reproduces the thermodynamics away from $T_c$. Near $T_c$, where the
#   correlations are long, it needs more hidden units, and second moments (the specific heat) show the errors first.
#
# ## Exercises
# The exercises for this notebook are in `exercises/07_ising.ipynb` (open it in `make lab`): write the energy, the
# magnetisation, the local field, a checkerboard Metropolis half-sweep, the exact log Z of a 3×3 lattice and the
# Boltzmann distribution yourself, each checked as you go; and answer this notebook's questions (CD-1, CD-10 and PCD
# below $T_c$, hidden units at $T_c$, critical slowing down, the RBM as a proposal) by running code. Worked answers:
# `exercises/solutions/07_ising.ipynb`.
#
# References: L. Onsager, *Crystal statistics. I.*, Phys. Rev. 65, 117 (1944); C. N. Yang, Phys. Rev. 85, 808
# (1952); U. Wolff, *Collective Monte Carlo updating for spin systems*, Phys. Rev. Lett. 62, 361 (1989);
# M. E. J. Newman and G. T. Barkema, *Monte Carlo Methods in Statistical Physics* (1999); G. Torlai and
# R. G. Melko, *Learning thermodynamics with Boltzmann machines*, Phys. Rev. B 94, 165134 (2016).
#
# Previous: the restricted Boltzmann machine (`01_rbm_pytorch`) and Langevin sampling (`03_langevin_sampling`).
