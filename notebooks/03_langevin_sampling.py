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
# # 03 · Langevin sampling and stochastic gradient Langevin dynamics
#
# Gibbs sampling needs conditionals we can draw from (the RBM has them). Most models do not: an energy-based model
# with a neural-network energy, or the posterior of a Bayesian model, gives us only a density up to a constant,
# $p(\theta) \propto e^{-E(\theta)}$, and its gradient by automatic differentiation. Langevin sampling needs nothing
# more.
#
# You will learn
# - why the update rule in the lecture notes, $\theta_{i+1} = \theta_i + \eta\nabla\log p(\theta_i) + \sqrt{\eta}\,w_i$,
#   samples $p^2$ and not $p$, and why the noise must be $\sqrt{2\eta}\,w_i$ (the Fokker–Planck equation);
# - how to read a sampler's output: traces, autocorrelation, effective sample size, Monte Carlo error;
# - the bias of the unadjusted Langevin algorithm (ULA) as the step grows, and how the Metropolis-adjusted version
#   (MALA) removes it;
# - stochastic gradient Langevin dynamics (SGLD) on Welling & Teh's Bayesian mixture, checked against the exact
#   posterior;
# - why this is the sampler of the energy-based models that come next.

# %% tags=["parameters"]
profile = None  # "quick" (seconds, CPU) or "full" (real results); None: GENMODELS_PROFILE, else "full"
device = None  # None picks CUDA, then Apple MPS, then the CPU
seed = 0

# %%
import math

import matplotlib.pyplot as plt
import torch

import genmodels
from genmodels import explorers, langevin, mcmc, targets

profile, device = genmodels.setup(profile, device, seed)
n_chains = profile.pick(quick=500, full=2000)  # chains run side by side, as one (n_chains, dim) tensor

# %% [markdown]
# ## The lecture's rule, and what is wrong with it
#
# The lecture writes the Langevin update as
# $$\theta_{i+1} = \theta_i + \eta\,\nabla_\theta \log p(\theta_i) + \sqrt{\eta}\,w_i, \qquad w_i \sim N(0, 1).$$
# It is the Euler step, with time step $\eta$, of the stochastic differential equation
# $d\theta = \nabla\log p(\theta)\,dt + dW$. The density $\rho(\theta, t)$ of many such walkers obeys the
# **Fokker–Planck equation**
# $$\partial_t \rho = -\nabla\cdot\big(\rho\,\nabla\log p\big) + \tfrac{1}{2}\nabla^2\rho
#   = -\nabla\cdot\Big(\rho\,\nabla\log p - \tfrac{1}{2}\nabla\rho\Big).$$
# It stops changing when the flux in brackets vanishes: $\nabla\log\rho = 2\nabla\log p$, i.e. $\rho \propto p^2$.
# The drift pulls towards high $p$ twice as hard as the noise spreads the walkers out.
#
# With noise $\sqrt{2}\,dW$ the diffusion term is $\nabla^2\rho$, the flux $\rho\nabla\log p - \nabla\rho$ vanishes
# for $\rho = p$, and the Euler step is the **unadjusted Langevin algorithm** (ULA):
# $$\theta_{i+1} = \theta_i + \eta\,\nabla\log p(\theta_i) + \sqrt{2\eta}\,w_i,$$
# or, with $\epsilon = 2\eta$ (Welling & Teh's notation),
# $\theta_{i+1} = \theta_i + \tfrac{\epsilon}{2}\nabla\log p(\theta_i) + \sqrt{\epsilon}\,w_i$.
#
# For $p = N(0, 1)$ the chain is linear and we can solve it: $\theta_{i+1} = (1-\eta)\theta_i + c\sqrt{\eta}\,w_i$
# has the stationary variance $c^2\eta / (1 - (1-\eta)^2) = c^2 / (2 - \eta)$. The lecture's $c = 1$ gives about
# $\tfrac12$, the variance of $p^2 \propto N(0, \tfrac12)$; $c = \sqrt2$ gives $1 + O(\eta)$.

# %% tags=["nbval-check-output"]
for step in (0.01, 0.1):
    lecture = langevin.ula_gaussian_stationary_covariance([[1.0]], step, noise_scale=1.0).item()
    correct = langevin.ula_gaussian_stationary_covariance([[1.0]], step).item()
    print(f"eta = {step}: stationary variance, lecture's rule {lecture:.4f}, ULA {correct:.4f} (target 1)")

# %% [markdown]
# Now the same thing by simulation: one function, `langevin.ula`, with the noise scale as its only difference.
# Every chain is a row of one tensor; the gradient comes from autograd.

# %%
def log_p(x):  # the standard normal, up to a constant
    return -0.5 * (x**2).sum(-1)


x0 = torch.zeros(n_chains, 1, device=device)
noise_scales = {"lecture, sqrt(eta) w": 1.0, "ULA, sqrt(2 eta) w": math.sqrt(2)}
runs = {name: langevin.ula(log_p, x0, 0.01, 3000, burn_in=500, noise_scale=c, seed=seed)
        for name, c in noise_scales.items()}
for name, run in runs.items():
    z = run.samples.cpu().double() ** 2
    error = mcmc.monte_carlo_error(z).item()
    exact = langevin.ula_gaussian_stationary_covariance([[1.0]], 0.01, noise_scale=noise_scales[name]).item()
    print(f"{name:22s} variance {z.mean():.3f} ± {error:.3f}, exact for this step {exact:.4f}: "
          f"{abs(z.mean().item() - exact) / error:.1f} s.e. apart  "
          f"(effective samples {mcmc.effective_sample_size(run.samples).item():.0f})")

# %% [markdown]
# The lecture's chain sits on $p^2$: half the variance, within two standard errors of the stationary variance
# $c^2/(2-\eta)$ computed exactly above; the corrected chain sits on $p$. The test
# `test_lecture_langevin_rule_samples_p_squared` asserts both numbers. The histograms show the same:

# %%
grid = torch.linspace(-4, 4, 200)
fig, ax = plt.subplots(figsize=(7, 3))
for name, run in runs.items():
    ax.hist(run.flat().cpu().numpy().ravel(), bins=80, density=True, alpha=0.5, label=name)
ax.plot(grid, torch.exp(-grid**2 / 2) / math.sqrt(2 * math.pi), "k", label="p = N(0, 1)")
ax.plot(grid, torch.exp(-grid**2) / math.sqrt(math.pi), "k--", label="p² normalised = N(0, 1/2)")
ax.legend(fontsize=8)
ax.set_xlabel("θ")
plt.show()

# %% [markdown]
# ## Reading a sampler's output
#
# Successive states of a chain are correlated. With autocorrelation $\rho(k)$ at lag $k$, the integrated
# autocorrelation time $\tau = 1 + 2\sum_{k\ge1}\rho(k)$ says how many steps are worth one independent draw: the
# **effective sample size** is $\text{ESS} = (\text{steps} \times \text{chains})/\tau$ and the Monte Carlo error of a
# mean is $\text{sd}/\sqrt{\text{ESS}}$. On a correlated Gaussian ($\rho = 0.8$, variances 1.8 and 0.2 along its
# axes) ULA needs about $1.8/\eta$ steps to cross the long axis.

# %%
gauss = targets.CorrelatedGaussian(rho=0.8)
chains = langevin.ula(gauss.log_prob, torch.full((n_chains, 2), 3.0, device=device), 0.05, 2000, seed=seed)
mcmc.plot_traces(chains.samples[:600], names=["θ1", "θ2"], title="ULA, η = 0.05, from (3, 3): the first 600 steps")
kept = chains.samples[500:]  # drop the burn-in, visible above as the decay from the start
tau, ess = mcmc.integrated_autocorrelation_time(kept), mcmc.effective_sample_size(kept)
print(f"tau = {tau[0]:.0f} and {tau[1]:.0f} steps; ESS = {ess[0]:.0f} and {ess[1]:.0f} of {kept[..., 0].numel()}")

# %% [markdown]
# ## Four targets with known densities
#
# MALA proposes the ULA step and accepts it with the Metropolis–Hastings probability
# $\min\!\big(1, \frac{p(y)\,q(\theta\mid y)}{p(\theta)\,q(y\mid\theta)}\big)$, where
# $q(y\mid\theta) = N(y;\ \theta + \eta\nabla\log p(\theta),\ 2\eta I)$. That test makes $p$ exactly stationary at any
# step size. Here it samples a correlated Gaussian, a double well, a Gaussian mixture and Haario's banana.

# %%
densities = [gauss, targets.DoubleWell(), targets.GaussianMixture(), targets.Banana()]
steps = [0.3, 0.05, 0.2, 0.1]
fig, axes = plt.subplots(1, 4, figsize=(16, 4))
for target, step, ax in zip(densities, steps, axes, strict=True):
    start = torch.randn(n_chains, 2, device=device)
    run = langevin.mala(target.log_prob, start, step, 1000, burn_in=500, seed=seed)
    tv = target.total_variation(run.samples[-1], bins=20)
    target.plot(run.samples[-1], ax=ax, title=f"{target.name}\nacceptance {run.acceptance_rate:.2f}, TV {tv:.2f}")
plt.tight_layout()
plt.show()

# %% [markdown]
# Red: the last state of each chain; contours: the exact density. TV is the total-variation distance between the
# chains' histogram and the exact cell probabilities on a 20 × 20 grid (with a few hundred points it cannot be 0;
# the SGLD section below measures that floor). The mixture's modes are each held by the chains that started near
# them: Langevin moves are local, and crossing a low-density valley takes a long time. The few points far out in
# the double well are chains that started there and never moved: the gradient is so steep that every proposal
# overshoots and is rejected, a known weakness of MALA on targets with light tails (their TV counts it).

# %% [markdown]
# ## ULA's bias grows with the step; MALA has none
#
# For a Gaussian target ULA's stationary law is again Gaussian and its covariance is known in closed form: along
# an axis of variance $\sigma^2$ it is $\sigma^2/(1 - \eta/(2\sigma^2))$, so the narrow axis ($\sigma^2 = 0.2$)
# blows up as $\eta \to 0.4$ and the chain diverges beyond. MALA stays exact and pays with a lower acceptance rate.

# %% tags=["nbval-check-output"]
steps = [0.01, 0.05, 0.1, 0.2, 0.3, 0.35]
narrow = torch.tensor([1.0, -1.0], dtype=torch.float64) / math.sqrt(2)  # the axis of variance 0.2
for step in steps:
    ula_cov = langevin.ula_gaussian_stationary_covariance(gauss.cov, step)
    print(f"eta {step:4}: ULA's exact stationary variance along the narrow axis {narrow @ ula_cov @ narrow:.3f}"
          f" (target {narrow @ gauss.cov @ narrow:.3f})")

# %%
start = torch.zeros(n_chains, 2, device=device)
n_steps = profile.pick(quick=800, full=2000)
ula_var, mala_var, acceptance = [], [], []
for step in steps:
    u = langevin.ula(gauss.log_prob, start, step, n_steps, burn_in=n_steps // 4, seed=seed)
    m = langevin.mala(gauss.log_prob, start, step, n_steps, burn_in=n_steps // 4, seed=seed)
    ula_var.append((u.flat().cpu().double() * narrow).sum(-1).pow(2).mean().item())
    mala_var.append((m.flat().cpu().double() * narrow).sum(-1).pow(2).mean().item())
    acceptance.append(m.acceptance_rate)
    print(f"eta {step:4}: narrow-axis variance ULA {ula_var[-1]:.3f}, MALA {mala_var[-1]:.3f}"
          f" (acceptance {m.acceptance_rate:.2f})")

# %%
fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3))
left.plot(steps, ula_var, "o-", label="ULA")
left.plot(steps, mala_var, "s-", label="MALA")
left.axhline(0.2, color="k", ls="--", label="exact 0.2")
left.set(xlabel="step η", ylabel="variance along the narrow axis")
left.legend()
right.plot(steps, acceptance, "s-", color="C1")
right.set(xlabel="step η", ylabel="MALA acceptance rate")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## The knobs under your hand
#
# Step, noise, number of steps and target decide what a Langevin chain samples. `explorers.LangevinExplorer` runs ULA
# and MALA side by side from the same broad start, $N(0, 2^2 I)$, with the noise written as a multiple $k$ of
# $\sqrt{2\eta}$: ULA then samples $p^{1/T}$ at the temperature $T = \sigma^2/(2\eta) = k^2$. On the correlated
# Gaussian each row prints the chains' variances along the target's two axes, ULA's exact stationary ones (the closed
# form above) and the target's; the dashed ellipse is ULA's exact stationary law, the contours are $p$. The four rows:
# ULA's noise, the lecture's $\sqrt{\eta}$, the UvA tutorials' image setting ($\sigma = 0.005$ at $\eta = 10$, the same
# multiple here), and a large step.

# %%
explorer = explorers.LangevinExplorer(n_chains=profile.pick(quick=500, full=1000), seed=seed)
explorer.static([{"noise": k} for _, k in explorers.NOISE_PRESETS] + [{"step_size": 0.3}])

# %% [markdown]
# Read the temperature first (the right-hand scale marks the three settings). At $T = 1$ ULA's variances lie close
# to its exact stationary ones, a little above the target's; the lecture's noise halves them ($T$ printed as 0.5:
# the chain samples $p^2$); the tutorials' setting is $T$ = 1.25e-06, so its chains collapse onto the mode: noisy
# gradient descent, not sampling. A larger step inflates ULA's narrow axis while MALA keeps the target's variances
# and pays with fewer accepted moves. MALA's noise is always $\sqrt{2\eta}$, so its rows change only with the step.
#
# In JupyterLab (`make lab`, the full profile) the cell below shows sliders for the step, the noise (with buttons at
# the three marked values), the number of steps and the target, and redraws one such row as you move them; the line
# under the sliders says how long the redraw took. Try a chain of 10 steps (it still shows its start: variances near
# the start's 4), a step near $2\sigma^2_{\min}$ = 0.4 where ULA diverges, and the mixture, where the rows print
# total-variation distances beside the floor of as many exact draws.

# %%
explorers.show(explorer, profile)

# %% [markdown]
# ## SGLD: Langevin on a Bayesian posterior with minibatches
#
# For a posterior $p(\theta\mid x_{1..N}) \propto p(\theta)\prod_i p(x_i\mid\theta)$ the gradient of the log density
# is a sum over all $N$ data. Welling & Teh (2011) replace it by a minibatch of $n$ points scaled by $N/n$ and let the
# step size decrease, $\epsilon_t = a(b+t)^{-\gamma}$ with $\gamma = 0.55$:
# $$\Delta\theta_t = \frac{\epsilon_t}{2}\Big(\nabla\log p(\theta_t) + \frac{N}{n}\sum_{i\in\text{batch}}
#   \nabla\log p(x_i\mid\theta_t)\Big) + \eta_t,\qquad \eta_t \sim N(0, \epsilon_t).$$
# Early on it moves like stochastic gradient descent; as $\epsilon_t \to 0$ the minibatch noise (of order
# $\epsilon_t$) becomes negligible beside the injected noise (of order $\sqrt{\epsilon_t}$) and the chain samples the
# posterior. Note the $\sqrt{\epsilon}$ beside $\epsilon/2$: the same ratio as ULA's $\sqrt{2\eta}$ beside $\eta$.
#
# Their example: $\theta_1 \sim N(0, 10)$, $\theta_2 \sim N(0, 1)$,
# $x_i \sim \tfrac12 N(\theta_1, 2) + \tfrac12 N(\theta_1 + \theta_2, 2)$, with **variances** as second arguments
# (`torch.distributions.Normal` takes standard deviations), and 100 points drawn with $\theta = (0, 1)$. Swapping
# the components, $(\theta_1 + \theta_2, -\theta_2)$ explains the data almost as well: the posterior has two modes.

# %% tags=["nbval-check-output"]
posterior = targets.MixturePosterior(n=100, theta=(0.0, 1.0), seed=seed)
x = posterior.x
print(f"{len(x)} data points: mean {x.mean():.2f}, variance {x.var():.2f} (population: 0.5 and 2.25)")
upper, lower = posterior.mode_masses()
for name, (t1, t2), mass in zip(("upper", "lower"), posterior.modes(), (upper, lower), strict=True):
    print(f"{name} mode at θ = ({t1:.2f}, {t2:.2f}), posterior mass {mass:.3f}")

# %% [markdown]
# The exact posterior is computed on a 400 × 400 grid (two parameters make that cheap): it is the reference every
# sampler is measured against. SGLD runs with batch size 1 (Welling & Teh's choice) and 10; each chain starts from a
# draw of the prior.

# %%
n_steps = {1: profile.pick(quick=10000, full=30000), 10: profile.pick(quick=5000, full=15000)}
prior_draw = torch.randn(n_chains, 2, device=device) * torch.tensor([math.sqrt(10.0), 1.0], device=device)
settings = {1: (0.01, 0.0002), 10: (0.02, 0.001)}  # batch size: (first, last step size)
sgld = {}
for batch_size, (first, last) in settings.items():
    steps = n_steps[batch_size]
    a, b = langevin.schedule_from_range(first, last, steps)
    sgld[batch_size] = langevin.sgld(posterior.log_prior, posterior.log_likelihood, posterior.x, prior_draw, steps,
                                     batch_size=batch_size, a=a, b=b, burn_in=steps - 1, seed=seed)
    print(f"batch size {batch_size:2d}: a = {a:.3g}, b = {b:.3g}, step {first} -> {last} over {steps} steps")

# %%
floor = posterior.noise_floor(n_chains, bins=20, seed=seed)
fig, axes = plt.subplots(1, 2, figsize=(9, 4.5))
for (batch_size, run), ax in zip(sgld.items(), axes, strict=True):
    tv = posterior.total_variation(run.flat(), bins=20)
    up, low = posterior.mode_masses(run.flat())
    posterior.plot(run.flat(), ax=ax, n_points=n_chains,
                   title=f"SGLD, batch size {batch_size}: TV {tv:.3f}\nmode masses {up:.2f} / {low:.2f}")
    ax.set(xlabel="θ1", ylabel="θ2")
plt.tight_layout()
plt.show()
print(f"exact mode masses {upper:.2f} / {lower:.2f}; noise floor for {n_chains} exact independent draws: "
      f"TV {floor.median():.3f} (median), {floor.quantile(0.99):.3f} (99th percentile)")

# %% [markdown]
# Both modes are found. Compare the total-variation distance with the noise floor printed below the figure: the
# distance that the same number of *exact* independent draws reaches, below which no sampler can go with this many
# samples. What is left above the floor shows mostly in the mode masses: the posterior is a narrow curved ridge
# and, once the step is small, a chain needs many thousands of steps to travel from one mode to the other, so the
# masses still remember where the chains started (the full profile runs longer). Batch size 1 needs a smaller final
# step than batch size 10, because its gradient noise is ten times larger in variance. Each chain gets its own
# minibatch: with a shared one, all chains would receive the same gradient noise and move together.
# `test_sgld_on_mixture_posterior_approaches_the_grid_posterior` checks the distance for batch size 10, and that
# forgetting the factor $N/n$ (a posterior as if there were only $n$ data) fails the same threshold.

# %% [markdown]
# ## The link to energy-based models
#
# An energy-based model defines $p(x) = e^{-E(x)}/Z$ with a network $E$ and an intractable $Z$. Langevin needs
# $\nabla\log p = -\nabla E$ only: $Z$ never appears. The double well above is such a model,
# $E(\theta) = h(\theta_1^2 - 1)^2 + \theta_2^2/2$. Shifting the energy by any constant (a different $Z$) gives the
# very same chains.

# %% tags=["nbval-check-output"]
well = targets.DoubleWell(barrier=3.0)
start = torch.zeros(8, 2, device=device)
plain = langevin.ula(lambda x: -well.energy(x), start, 0.01, 100, seed=seed)
shifted = langevin.ula(lambda x: -(well.energy(x) + 123.0), start, 0.01, 100, seed=seed)
print("identical chains for E and E + 123:", torch.equal(plain.samples, shifted.samples))

# %% [markdown]
# The energy-based-model notebook does exactly this on images: $x$ is a 784-pixel image, $E$ a convolutional
# network, and a few dozen Langevin steps from noise (or from a replay buffer) produce the model's samples that
# contrastive training pushes towards the data.
#
# ## What to take away
# - Langevin dynamics samples $p$ with noise $\sqrt{2\eta}$ beside the step $\eta$ (or $\sqrt{\epsilon}$ beside
#   $\epsilon/2$). The lecture's $\sqrt{\eta}$ samples $p^2$: half the variance for a Gaussian.
# - ULA is biased by $O(\eta)$ and diverges at large steps; MALA's accept/reject makes it exact, at the price of
#   rejections. Judge a sampler by its ESS and Monte Carlo error, not by its number of steps.
# - SGLD makes Langevin scale to large data with minibatch gradients scaled by $N/n$ and a decreasing step; on
#   Welling & Teh's mixture it finds both modes of the posterior.
# - Langevin needs $\nabla\log p$ only: exactly what an energy-based model offers.
#
# ## Exercises
# The exercises for this notebook are in `exercises/03_langevin.ipynb` (open it in `make lab`): write the ULA step,
# MALA's acceptance probability, the SGLD step and its schedule, the autocorrelation and the effective sample size
# yourself, each checked as you go; and answer this notebook's questions (the lecture's rule and $\Sigma/2$, MALA's
# step size and the ESS, SGLD with a batch of one, a higher barrier) by running code. Worked answers:
# `exercises/solutions/03_langevin.ipynb`.
#
# References: M. Welling and Y. W. Teh, *Bayesian learning via stochastic gradient Langevin dynamics*, ICML 2011;
# G. O. Roberts and R. L. Tweedie, *Exponential convergence of Langevin distributions and their discrete
# approximations*, Bernoulli 1996 (MALA); Y. Du and I. Mordatch, *Implicit generation and modeling with energy-based
# models*, 2019 (Langevin sampling for image EBMs).
#
# Previous: the restricted Boltzmann machine (`01_rbm_pytorch`). Next: energy-based models on images.
