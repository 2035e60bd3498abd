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
# # Exercises 03 · Langevin sampling and SGLD
#
# Goes with `notebooks/03_langevin_sampling`. Implementation exercises: write one function of the lecture; the
# cell after it checks it with `genmodels.exercises`, which names the mistake when it is a known one. Experiment
# exercises: the questions at the end of notebook 03, answered by running code. Run All works at any time:
# a function not written yet reports "not done yet". Chains are tensors of shape (n_chains, dim).

# %% tags=["parameters"]
profile = None  # "quick" (seconds, CPU) or "full" (real results); None: GENMODELS_PROFILE, else "full"
seed = 0

# %%
import math

import torch

import genmodels
from genmodels import exercises, langevin, mcmc, targets

profile, device = genmodels.setup(profile, "cpu", seed)

# %% [markdown]
# ## Implementation exercises
#
# ### Exercise: the ULA step
# $\theta' = \theta + \eta\, \nabla \log p(\theta) + \sqrt{2\eta}\, w$, $w \sim N(0, I)$ given as `noise`.

# %%
def ula_step(x, grad_log_p, step_size, noise):
    ### BEGIN SOLUTION
    return x + step_size * grad_log_p + math.sqrt(2 * step_size) * noise
    ### END SOLUTION


# %% tags=["nbval-check-output"]
exercises.check_ula_step(ula_step)

# %% [markdown]
# ### Exercise: MALA's acceptance probability
# $\alpha = \min\!\left(1, \frac{p(y)\, q(x \mid y)}{p(x)\, q(y \mid x)}\right)$ with the Langevin proposal
# $q(y \mid x) = N(y;\, x + \eta \nabla \log p(x),\, 2\eta I)$; one probability per chain.

# %%
def mala_acceptance(x, y, log_p_x, log_p_y, grad_x, grad_y, step_size):
    ### BEGIN SOLUTION
    def log_q(to, frm, grad_frm):
        return -((to - frm - step_size * grad_frm) ** 2).sum(-1) / (4 * step_size)
    log_alpha = log_p_y + log_q(x, y, grad_y) - log_p_x - log_q(y, x, grad_x)
    return torch.exp(log_alpha).clamp(max=1)
    ### END SOLUTION


# %% tags=["nbval-check-output"]
exercises.check_mala_acceptance(mala_acceptance)

# %% [markdown]
# ### Exercise: the SGLD step
# $\Delta\theta = \frac{\epsilon}{2}\left[\nabla \log p(\theta) + \frac{N}{n} \sum_{i \in \text{batch}} \nabla \log
# p(x_i \mid \theta)\right] + \sqrt{\epsilon}\, w$; `grad_log_likelihood` is the minibatch sum.

# %%
def sgld_step(theta, grad_log_prior, grad_log_likelihood, n_data, batch_size, eps, noise):
    ### BEGIN SOLUTION
    drift = grad_log_prior + n_data / batch_size * grad_log_likelihood
    return theta + eps / 2 * drift + math.sqrt(eps) * noise
    ### END SOLUTION


# %% tags=["nbval-check-output"]
exercises.check_sgld_step(sgld_step)

# %% [markdown]
# ### Exercise: the step schedule
# Welling & Teh's $\epsilon_t = a (b + t)^{-\gamma}$, for a tensor of steps `t`.

# %%
def step_schedule(t, a, b, gamma):
    ### BEGIN SOLUTION
    return a * (b + t) ** (-gamma)
    ### END SOLUTION


# %% tags=["nbval-check-output"]
exercises.check_step_schedule(step_schedule)

# %% [markdown]
# ### Exercise: the autocorrelation
# $\rho(k) = C(k)/C(0)$, $C(k) = \frac1{n}\sum_{t} (x_t - \bar x)(x_{t+k} - \bar x)$ averaged over chains, with
# $\bar x$ the mean over all steps and chains; `x` has shape (n_steps, n_chains, dim), the result
# (max_lag + 1, dim).

# %%
def autocorrelation(x, max_lag):
    ### BEGIN SOLUTION
    n = len(x)
    y = x - x.mean(dim=(0, 1))
    acov = torch.stack([(y[: n - k] * y[k:]).sum(0).mean(0) / n for k in range(max_lag + 1)])
    return acov / acov[0]
    ### END SOLUTION


# %% tags=["nbval-check-output"]
exercises.check_autocorrelation(autocorrelation)

# %% [markdown]
# ### Exercise: the effective sample size
# $\text{ESS} = n_{\text{steps}}\, n_{\text{chains}} / \tau$ per coordinate, with $\tau = -1 + 2\sum_m \Gamma_m$,
# $\Gamma_m = \rho(2m) + \rho(2m+1)$ summed while positive and made non-increasing (Geyer's initial monotone
# sequence), and $\tau \ge 1$. Use your `autocorrelation` with `max_lag = n_steps - 1`.

# %%
def effective_sample_size(x):
    ### BEGIN SOLUTION
    rho = autocorrelation(x, len(x) - 1)
    n_pairs = len(rho) // 2
    pairs = rho[: 2 * n_pairs].reshape(n_pairs, 2, -1).sum(1)
    taus = []
    for gamma in pairs.T:
        negative = (gamma <= 0).nonzero()
        gamma = gamma[: int(negative[0]) if len(negative) else n_pairs]
        taus.append(-1 + 2 * torch.cummin(gamma, dim=0).values.sum())
    return x.shape[0] * x.shape[1] / torch.stack(taus).clamp(min=1)
    ### END SOLUTION


# %% tags=["nbval-check-output"]
exercises.check_effective_sample_size(effective_sample_size)

# %% [markdown]
# ## Experiment exercises
#
# ### Exercise: the lecture's rule (notebook 03, exercise 1)
# Run the lecture's rule (noise $\sqrt\eta$) on the correlated Gaussian and compare its covariance with $\Sigma/2$.
# Which target $p^\beta$ would noise $c\sqrt\eta$ sample, for general $c$?

# %%
### BEGIN SOLUTION
target = targets.CorrelatedGaussian()
n_chains, n_steps = profile.pick(quick=200, full=2000), profile.pick(quick=500, full=5000)
x0 = torch.randn(n_chains, 2, generator=torch.Generator().manual_seed(seed))
chains = langevin.ula(target.log_prob, x0, 0.05, n_steps, burn_in=n_steps // 2, noise_scale=1.0, seed=seed)
samples = chains.flat()
exact = langevin.ula_gaussian_stationary_covariance(target.cov, 0.05, noise_scale=1.0)
for name, cov in (("the lecture's chain", samples.T.cov()), ("Σ/2", target.cov / 2), ("exact at η = 0.05", exact)):
    print(f"{name:20s} variances {cov[0, 0]:.2f}, {cov[1, 1]:.2f}, covariance {cov[0, 1]:.2f}")
### END SOLUTION

# %% [markdown] tags=["solution"]
# **What to look for.** The chain's covariance is close to $\Sigma/2$, the covariance of $p^2$ (a Gaussian squared
# halves its covariance). With noise $c\sqrt\eta$ the chain runs at temperature $T = c^2/2$ and samples
# $p^{1/T} = p^{2/c^2}$: $c = \sqrt2$ gives $p$, $c = 1$ gives $p^2$.

# %% [markdown]
# ### Exercise: MALA's acceptance and the ESS per step (notebook 03, exercise 2)
# Increase the step size of MALA on the banana until the acceptance drops below 0.2. What happens to the ESS per
# step?

# %%
### BEGIN SOLUTION
banana = targets.Banana()
n_chains, n_steps = profile.pick(quick=50, full=200), profile.pick(quick=400, full=4000)
x0 = torch.randn(n_chains, 2, generator=torch.Generator().manual_seed(seed))
for step_size in (0.05, 0.2, 0.5, 1.0, 2.0):
    chains = langevin.mala(banana.log_prob, x0, step_size, n_steps, burn_in=n_steps // 4, seed=seed)
    ess = mcmc.effective_sample_size(chains.samples).min().item() / chains.samples[:, :, 0].numel()
    print(f"η = {step_size:4}: acceptance {chains.acceptance_rate:.2f}, ESS per kept state {ess:.3f}")
### END SOLUTION

# %% [markdown] tags=["solution"]
# **What to look for.** The ESS per step first rises with the step (longer moves), peaks at an intermediate
# acceptance (about 0.5–0.6 for MALA), then falls once most proposals are rejected: the chain stands still, and
# below an acceptance of 0.2 it is worth less than at a much smaller step.

# %% [markdown]
# ### Exercise: SGLD with a batch of one and a constant step (notebook 03, exercise 3)
# Run SGLD with batch size 1 and a constant step $\epsilon = 0.01$. How far is it from the exact posterior, and why?

# %%
### BEGIN SOLUTION
posterior = targets.MixturePosterior()
n_chains, n_steps = profile.pick(quick=50, full=200), profile.pick(quick=400, full=5000)
x0 = torch.randn(n_chains, 2, generator=torch.Generator().manual_seed(seed))
for batch_size in (1, 10):
    chains = langevin.sgld(posterior.log_prior, posterior.log_likelihood, posterior.x, x0, n_steps,
                           batch_size=batch_size, a=0.01, b=1.0, gamma=1e-9, burn_in=n_steps // 2, seed=seed)
    print(f"batch {batch_size:2d}, ε = 0.01: total variation from the exact posterior "
          f"{posterior.total_variation(chains.flat()):.2f}")
theta = torch.tensor([[0.0, 1.0]], requires_grad=True)
per_datum = torch.stack([torch.autograd.grad(posterior.log_likelihood(theta, x[None]).sum(), theta)[0][0]
                         for x in posterior.x])
n = len(posterior.x)
gradient_noise = n**2 * per_datum.var(0) * 0.01**2 / 4
print(f"at θ = (0, 1), batch 1: variance of the gradient noise (ε/2)² N² Var[∇log p(x_i|θ)] = "
      f"{gradient_noise[0]:.3f}, {gradient_noise[1]:.3f}; injected noise variance ε = 0.01")
### END SOLUTION

# %% [markdown] tags=["solution"]
# **What to look for.** With one datum per step the gradient noise, $(\epsilon/2)^2 N^2 \operatorname{Var}[\nabla
# \log p(x_i|\theta)]$, is larger than the injected noise $\epsilon$: the chain is hotter than the posterior and its
# total variation from it is larger than with batch 10. Welling & Teh's argument needs $\epsilon_t \to 0$, where the
# injected noise ($\propto \epsilon$) dominates the gradient noise ($\propto \epsilon^2$); a constant step never gets
# there.

# %% [markdown]
# ### Exercise: a higher barrier (notebook 03, exercise 4)
# Raise the double well's barrier to 8. How many steps does a chain need, on average, to change wells?

# %%
### BEGIN SOLUTION
n_chains, n_steps = profile.pick(quick=100, full=500), profile.pick(quick=2000, full=20000)
for barrier in (3.0, 8.0):
    well = targets.DoubleWell(barrier)
    x0 = torch.zeros(n_chains, 2) + torch.tensor([1.0, 0.0])
    chains = langevin.ula(well.log_prob, x0, 0.01, n_steps, seed=seed)
    side = torch.sign(chains.samples[..., 0])
    crossings = (side[1:] != side[:-1]).sum().item()
    print(f"barrier {barrier}: {crossings} well changes in {n_chains * n_steps:,} steps, "
          f"about {n_chains * n_steps / max(crossings, 1):,.0f} steps per change")
### END SOLUTION

# %% [markdown] tags=["solution"]
# **What to look for.** The waiting time grows like $e^{\Delta E}$ with the barrier height $\Delta E$ (Kramers'
# law): from 3 to 8 it grows by a factor of order $e^5 \approx 150$, and in the quick run a chain may not cross at
# all. (Counting sign changes also counts the jitter of a chain sitting on the barrier, so the figure for the low
# barrier is a lower bound.)
