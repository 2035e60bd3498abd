"""MCMC diagnostics: how far apart in a chain two states are independent, and what a run of correlated samples is
worth.  Taught in 03_langevin_sampling (and used in 07_ising_rbm).

For a stationary chain with autocorrelation ρ(k) at lag k, the integrated autocorrelation time

    τ = 1 + 2 Σ_{k≥1} ρ(k)

counts the steps per independent draw: n correlated states estimate a mean as well as n/τ independent ones (the
effective sample size, ESS), so the Monte Carlo error of the mean is sd/√ESS. Chains come as (n_steps, n_chains[,
dim]) tensors or as a sampler's result (langevin.Chains); every diagnostic is per coordinate, in float64 on the CPU.
"""

from __future__ import annotations

import torch

from .checks import check_series

__all__ = ["autocorrelation", "integrated_autocorrelation_time", "effective_sample_size", "monte_carlo_error",
           "plot_traces"]


def autocorrelation(x, max_lag: int | None = None) -> torch.Tensor:
    """ρ(k) = C(k)/C(0), C(k) the autocovariance at lag k averaged over chains (about the mean of all chains, so that
    chains stuck in different places show up as slow decay). Input (n_steps, n_chains[, dim]); output
    (max_lag + 1, dim). Computed by FFT."""
    x = check_series(x)
    n = len(x)
    y = x - x.mean(dim=(0, 1))
    f = torch.fft.rfft(y, n=2 * n, dim=0)
    acov = torch.fft.irfft(f * f.conj(), n=2 * n, dim=0)[:n].mean(dim=1) / n
    rho = acov / acov[:1]
    return rho[: (n if max_lag is None else max_lag + 1)]


def integrated_autocorrelation_time(x) -> torch.Tensor:
    """τ = 1 + 2 Σ_{k≥1} ρ(k), summed with Geyer's initial monotone sequence (pairs ρ(2m) + ρ(2m+1) while positive
    and decreasing). Clamped at 1, so that a standard error is never claimed smaller than for independent draws."""
    rho = autocorrelation(x)
    n_pairs = len(rho) // 2
    pairs = rho[: 2 * n_pairs].reshape(n_pairs, 2, -1).sum(1)  # Γ_m = ρ(2m) + ρ(2m+1)
    taus = []
    for gamma in pairs.T:
        negative = (gamma <= 0).nonzero()
        gamma = gamma[: int(negative[0]) if len(negative) else n_pairs]
        gamma = torch.cummin(gamma, dim=0).values
        taus.append(-1 + 2 * gamma.sum())
    return torch.stack(taus).clamp(min=1.0)


def effective_sample_size(x) -> torch.Tensor:
    """ESS = n_steps · n_chains / τ, per coordinate: how many independent draws the correlated chains are worth."""
    series = check_series(x)
    return series.shape[0] * series.shape[1] / integrated_autocorrelation_time(series)


def monte_carlo_error(x) -> torch.Tensor:
    """Standard error of the mean of each coordinate over all steps and chains: sd / √ESS."""
    series = check_series(x)
    return series.reshape(-1, series.shape[-1]).std(dim=0) / effective_sample_size(series).sqrt()


def plot_traces(chains, names=None, n_chains: int = 3, max_lag: int = 200, title: str | None = None) -> None:
    """Trace plots of a few chains, one row per coordinate, beside the autocorrelation ρ(k) with the ESS."""
    import matplotlib.pyplot as plt

    x = check_series(chains)
    dim = x.shape[-1]
    names = names or [f"θ{i + 1}" for i in range(dim)]
    rho, ess = autocorrelation(x, max_lag=min(max_lag, len(x) - 1)), effective_sample_size(x)
    fig, axes = plt.subplots(dim, 2, figsize=(10, 2.2 * dim), squeeze=False, gridspec_kw={"width_ratios": [3, 1]})
    for i in range(dim):
        axes[i, 0].plot(x[:, :n_chains, i].numpy(), lw=0.6)
        axes[i, 0].set_ylabel(names[i])
        axes[i, 1].plot(rho[:, i].numpy())
        axes[i, 1].axhline(0, color="grey", lw=0.5)
        axes[i, 1].set_title(f"ρ(k), ESS {ess[i]:.0f}", fontsize=9)
    axes[-1, 0].set_xlabel("step")
    axes[-1, 1].set_xlabel("lag k")
    if title:
        fig.suptitle(title)
    plt.tight_layout()
    plt.show()
