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
# ### Exercise 1: the ULA step
# $\theta' = \theta + \eta\, \nabla \log p(\theta) + \sqrt{2\eta}\, w$, $w \sim N(0, I)$ given as `noise`.

# %%
def ula_step(x, grad_log_p, step_size, noise):
    raise NotImplementedError("exercise 1: the ULA step")


# %% tags=["nbval-check-output"]
exercises.check_ula_step(ula_step)

# %% [markdown]
# ### Exercise 2: MALA's acceptance probability
# $\alpha = \min\!\left(1, \frac{p(y)\, q(x \mid y)}{p(x)\, q(y \mid x)}\right)$ with the Langevin proposal
# $q(y \mid x) = N(y;\, x + \eta \nabla \log p(x),\, 2\eta I)$; one probability per chain.

# %%
def mala_acceptance(x, y, log_p_x, log_p_y, grad_x, grad_y, step_size):
    raise NotImplementedError("exercise 2: MALA's acceptance probability")


# %% tags=["nbval-check-output"]
exercises.check_mala_acceptance(mala_acceptance)

# %% [markdown]
# ### Exercise 3: the SGLD step
# $\Delta\theta = \frac{\epsilon}{2}\left[\nabla \log p(\theta) + \frac{N}{n} \sum_{i \in \text{batch}} \nabla \log
# p(x_i \mid \theta)\right] + \sqrt{\epsilon}\, w$; `grad_log_likelihood` is the minibatch sum.

# %%
def sgld_step(theta, grad_log_prior, grad_log_likelihood, n_data, batch_size, eps, noise):
    raise NotImplementedError("exercise 3: the SGLD step")


# %% tags=["nbval-check-output"]
exercises.check_sgld_step(sgld_step)

# %% [markdown]
# ### Exercise 4: the step schedule
# Welling & Teh's $\epsilon_t = a (b + t)^{-\gamma}$, for a tensor of steps `t`.

# %%
def step_schedule(t, a, b, gamma):
    raise NotImplementedError("exercise 4: the step schedule")


# %% tags=["nbval-check-output"]
exercises.check_step_schedule(step_schedule)

# %% [markdown]
# ### Exercise 5: the autocorrelation
# $\rho(k) = C(k)/C(0)$, $C(k) = \frac1{n}\sum_{t} (x_t - \bar x)(x_{t+k} - \bar x)$ averaged over chains, with
# $\bar x$ the mean over all steps and chains; `x` has shape (n_steps, n_chains, dim), the result
# (max_lag + 1, dim).

# %%
def autocorrelation(x, max_lag):
    raise NotImplementedError("exercise 5: the autocorrelation")


# %% tags=["nbval-check-output"]
exercises.check_autocorrelation(autocorrelation)

# %% [markdown]
# ### Exercise 6: the effective sample size
# $\text{ESS} = n_{\text{steps}}\, n_{\text{chains}} / \tau$ per coordinate, with $\tau = -1 + 2\sum_m \Gamma_m$,
# $\Gamma_m = \rho(2m) + \rho(2m+1)$ summed while positive and made non-increasing (Geyer's initial monotone
# sequence), and $\tau \ge 1$. Use your `autocorrelation` with `max_lag = n_steps - 1`.

# %%
def effective_sample_size(x):
    raise NotImplementedError("exercise 6: the effective sample size")


# %% tags=["nbval-check-output"]
exercises.check_effective_sample_size(effective_sample_size)

# %% [markdown]
# ## Experiment exercises
#
# ### Exercise 7: the lecture's rule (notebook 03, exercise 1)
# Run the lecture's rule (noise $\sqrt\eta$) on the correlated Gaussian and compare its covariance with $\Sigma/2$.
# Which target $p^\beta$ would noise $c\sqrt\eta$ sample, for general $c$?

# %%
# exercise 7: your code here (the lecture's rule (notebook 03, exercise 1))

# %% [markdown]
# ### Exercise 8: MALA's acceptance and the ESS per step (notebook 03, exercise 2)
# Increase the step size of MALA on the banana until the acceptance drops below 0.2. What happens to the ESS per
# step?

# %%
# exercise 8: your code here (MALA's acceptance and the ESS per step (notebook 03, exercise 2))

# %% [markdown]
# ### Exercise 9: SGLD with a batch of one and a constant step (notebook 03, exercise 3)
# Run SGLD with batch size 1 and a constant step $\epsilon = 0.01$. How far is it from the exact posterior, and why?

# %%
# exercise 9: your code here (SGLD with a batch of one and a constant step (notebook 03, exercise 3))

# %% [markdown]
# ### Exercise 10: a higher barrier (notebook 03, exercise 4)
# Raise the double well's barrier to 8. How many steps does a chain need, on average, to change wells?

# %%
# exercise 10: your code here (a higher barrier (notebook 03, exercise 4))
