"""Target densities with known answers, for testing samplers: 2-D densities known up to a constant, normalised on a
fine grid, and Welling & Teh's mixture posterior (the Bayesian example of SGLD).  Taught in 03_langevin_sampling.

Each target has `log_prob(x)` for x of shape (n, 2) and an `extent` holding nearly all of its mass, so the exact
probability of every cell of a grid is known (`cell_probabilities`) and a sampler's histogram can be compared with it
by the total-variation distance, beside the floor that exact independent draws reach (`noise_floor`).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .checks import check_count, check_rate

__all__ = ["Target", "CorrelatedGaussian", "DoubleWell", "GaussianMixture", "Banana", "MixturePosterior"]


class Target:
    """A 2-D density known up to a constant (`log_prob`), with a box that holds nearly all its mass (`extent`), so
    that it can be normalised, binned and sampled exactly on a grid."""

    name = "target"
    extent = (-4.0, 4.0, -4.0, 4.0)  # θ1 from, to, θ2 from, to

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def grid(self, n: int = 200):
        """Cell centres θ1 (n,), θ2 (n,) and the probability of each cell, (n, n) indexed [θ2, θ1], summing to 1.
        Computed once per n (in float64, on the CPU) and kept."""
        cache = self.__dict__.setdefault("_grids", {})
        if n not in cache:
            cache[n] = self._grid(n)
        return cache[n]

    def _grid(self, n: int):
        x0, x1, y0, y1 = self.extent
        t1 = torch.linspace(x0, x1, n + 1, dtype=torch.float64)
        t2 = torch.linspace(y0, y1, n + 1, dtype=torch.float64)
        c1, c2 = (t1[1:] + t1[:-1]) / 2, (t2[1:] + t2[:-1]) / 2
        points = torch.stack(torch.meshgrid(c2, c1, indexing="ij")[::-1], dim=-1).reshape(-1, 2)
        log_p = torch.cat([self.log_prob(chunk) for chunk in points.split(50_000)]).reshape(n, n)
        return c1, c2, torch.softmax(log_p.flatten(), 0).reshape(n, n)

    def cell_probabilities(self, bins: int = 20, refine: int = 10) -> torch.Tensor:
        """Exact probability of each cell of a coarse bins × bins grid over `extent` (float64, indexed [θ2, θ1]),
        by summing a grid refine times finer."""
        _, _, p = self.grid(bins * refine)
        return p.reshape(bins, refine, bins, refine).sum((1, 3))

    def histogram(self, samples, bins: int = 20) -> torch.Tensor:
        """Fraction of the samples (n, 2) in each coarse cell, indexed [θ2, θ1]; samples outside `extent` count in
        no cell (so the fractions sum to less than 1 and the distance below counts them as a mismatch)."""
        s = torch.as_tensor(samples).detach().cpu().double().reshape(-1, 2)
        x0, x1, y0, y1 = self.extent
        i = torch.floor((s[:, 0] - x0) / (x1 - x0) * bins).long()
        j = torch.floor((s[:, 1] - y0) / (y1 - y0) * bins).long()
        inside = (i >= 0) & (i < bins) & (j >= 0) & (j < bins)
        counts = torch.bincount(j[inside] * bins + i[inside], minlength=bins * bins).double()
        return counts.reshape(bins, bins) / len(s)

    def total_variation(self, samples, bins: int = 20) -> float:
        """½ Σ_cells |fraction of samples - exact probability| on the coarse grid (0: identical, 1: disjoint)."""
        p = self.cell_probabilities(bins)
        q = self.histogram(samples, bins)
        outside = 1 - q.sum()
        return float(0.5 * ((q - p).abs().sum() + outside))

    def noise_floor(self, n_samples: int, bins: int = 20, repeats: int = 200, seed: int = 0) -> torch.Tensor:
        """Total-variation distances reached by n_samples exact independent draws from the grid distribution,
        `repeats` times: what a perfect sampler with that many independent samples would score."""
        p = self.cell_probabilities(bins).flatten()
        g = torch.Generator().manual_seed(seed)
        counts = torch.stack([torch.bincount(torch.multinomial(p, n_samples, replacement=True, generator=g),
                                             minlength=len(p)) for _ in range(repeats)]).double()
        return 0.5 * (counts / n_samples - p).abs().sum(1)

    def plot(self, samples=None, ax=None, title: str | None = None, n_points: int = 2000) -> None:
        """Contours of the exact density, with up to n_points of `samples` on top."""
        import matplotlib.pyplot as plt

        own = ax is None
        if own:
            _, ax = plt.subplots(figsize=(4, 4))
        c1, c2, p = self.grid(150)
        ax.contour(c1.numpy(), c2.numpy(), p.numpy(), levels=8, cmap="viridis", linewidths=1)
        if samples is not None:
            s = torch.as_tensor(samples).detach().cpu().reshape(-1, 2)
            s = s[torch.linspace(0, len(s) - 1, min(n_points, len(s))).long()]
            ax.scatter(s[:, 0].numpy(), s[:, 1].numpy(), s=2, color="C3", alpha=0.4)
        ax.set_xlim(*self.extent[:2])
        ax.set_ylim(*self.extent[2:])
        ax.set_title(title or self.name, fontsize=10)
        if own:
            plt.show()


class CorrelatedGaussian(Target):
    """N(μ, Σ) with Σ = [[σ1², ρσ1σ2], [ρσ1σ2, σ2²]]: the target whose moments every sampler must reproduce."""

    def __init__(self, mean=(0.0, 0.0), std=(1.0, 1.0), rho: float = 0.8):
        if not -1 < rho < 1:
            raise ValueError(f"the correlation rho must lie in (-1, 1), got {rho}")
        self.mean = torch.tensor(mean, dtype=torch.float64)
        s1, s2 = (check_rate("std", s) for s in std)
        self.cov = torch.tensor([[s1 * s1, rho * s1 * s2], [rho * s1 * s2, s2 * s2]], dtype=torch.float64)
        self.precision = torch.linalg.inv(self.cov)
        self.log_norm = -0.5 * torch.logdet(2 * math.pi * self.cov).item()
        self.name = f"correlated Gaussian (ρ = {rho})"
        half = 4.5 * max(s1, s2)
        self.extent = (mean[0] - half, mean[0] + half, mean[1] - half, mean[1] + half)

    def log_prob(self, x):
        # written out elementwise: a matmul of (n, 2) by (2, 2) can cost more in thread start-up than in arithmetic
        (p11, p12), (_, p22) = self.precision.tolist()
        d1, d2 = x[:, 0] - self.mean[0].item(), x[:, 1] - self.mean[1].item()
        return -0.5 * (p11 * d1 * d1 + 2 * p12 * d1 * d2 + p22 * d2 * d2) + self.log_norm


class DoubleWell(Target):
    """p(x) ∝ exp(-E(x)), E = h (θ1² - 1)² + θ2²/2: two wells at θ1 = ±1 separated by a barrier of height h."""

    name = "double well"
    extent = (-2.5, 2.5, -4.0, 4.0)

    def __init__(self, barrier: float = 3.0):
        self.barrier = barrier

    def energy(self, x):
        return self.barrier * (x[..., 0] ** 2 - 1) ** 2 + 0.5 * x[..., 1] ** 2

    def log_prob(self, x):
        return -self.energy(x)


class GaussianMixture(Target):
    """Σ_k w_k N(μ_k, s_k² I): separated modes, the case where a local sampler must cross low-density regions."""

    name = "Gaussian mixture"

    def __init__(self, means=((-2.0, 0.0), (2.0, 1.0), (0.0, -2.5)), stds=(0.6, 0.8, 0.5), weights=(0.3, 0.4, 0.3)):
        self.means = torch.tensor(means, dtype=torch.float64)
        self.stds = torch.tensor(stds, dtype=torch.float64)
        self.weights = torch.tensor(weights, dtype=torch.float64) / sum(weights)
        self.extent = (-5.0, 5.0, -5.0, 5.0)

    def log_prob(self, x):
        means, stds, weights = self.means.to(x), self.stds.to(x), self.weights.to(x)
        d2 = ((x[:, None, :] - means) ** 2).sum(-1)  # (n, k)
        log_components = -0.5 * d2 / stds**2 - 2 * torch.log(stds) - math.log(2 * math.pi)
        return torch.logsumexp(torch.log(weights) + log_components, dim=-1)


class Banana(Target):
    """Haario's twisted Gaussian: θ1 ~ N(0, s²), θ2 | θ1 ~ N(b (θ1² - s²), 1). A curved ridge; E[θ] = 0."""

    name = "banana"

    def __init__(self, s: float = 1.5, b: float = 0.5):
        self.s, self.b = s, b
        self.extent = (-5.0, 5.0, -3.5, 8.0)

    def log_prob(self, x):
        t1, t2 = x[..., 0], x[..., 1] - self.b * (x[..., 0] ** 2 - self.s**2)
        return -0.5 * (t1 / self.s) ** 2 - 0.5 * t2**2 - math.log(2 * math.pi * self.s)


# --- the Bayesian example: Welling & Teh's mixture posterior ---------------------------------------------------------


class MixturePosterior(Target):
    """Welling & Teh (2011), section 5.1: θ1 ~ N(0, 10), θ2 ~ N(0, 1), x_i ~ ½ N(θ1, 2) + ½ N(θ1 + θ2, 2), where the
    second argument is the variance. N data drawn with θ = (0, 1) (the component first, then the point). The
    posterior has two modes, near (0, 1) and (1, -1): θ and (θ1 + θ2, -θ2) explain the data almost equally well."""

    name = "mixture posterior"
    extent = (-1.5, 2.5, -3.0, 3.0)
    var1, var2, var_x = 10.0, 1.0, 2.0

    def __init__(self, n: int = 100, theta=(0.0, 1.0), seed: int = 0, data=None):
        if data is None:
            n = check_count("n", n)
            g = torch.Generator().manual_seed(seed)
            component = torch.rand(n, generator=g) < 0.5  # True: the second component, mean θ1 + θ2
            means = theta[0] + theta[1] * component.double()
            data = means + math.sqrt(self.var_x) * torch.randn(n, generator=g, dtype=torch.float64)
        self.x = torch.as_tensor(data, dtype=torch.float64)
        if self.x.ndim != 1 or len(self.x) == 0:
            raise ValueError(f"data must be a non-empty 1-D sequence of numbers; got shape {tuple(self.x.shape)}")
        if not torch.isfinite(self.x).all():
            first = int((~torch.isfinite(self.x)).nonzero()[0])
            raise ValueError(f"data contain {int((~torch.isfinite(self.x)).sum())} NaN or infinite values (first: "
                             f"data[{first}] = {self.x[first].item()}); drop or repair them first")

    def log_prior(self, theta):
        return -0.5 * theta[:, 0] ** 2 / self.var1 - 0.5 * theta[:, 1] ** 2 / self.var2

    def log_likelihood(self, theta, x):
        """Σ_i log p(x_i | θ) for each chain: theta (n_chains, 2), x (n,) shared or (n_chains, n) -> (n_chains,)."""
        x = x.to(theta)
        x = x[None, :] if x.ndim == 1 else x
        a = -0.5 * (x - theta[:, :1]) ** 2 / self.var_x
        b = -0.5 * (x - theta[:, :1] - theta[:, 1:]) ** 2 / self.var_x
        log_norm = math.log(0.5) - 0.5 * math.log(2 * math.pi * self.var_x)
        return (a + F.softplus(b - a) + log_norm).sum(-1)  # a + softplus(b - a) = log(e^a + e^b)

    def log_prob(self, theta):
        """The unnormalised log posterior: log p(θ) + Σ_{all i} log p(x_i | θ)."""
        return self.log_prior(theta) + self.log_likelihood(theta, self.x)

    def modes(self, grid: int = 400) -> tuple[tuple[float, float], tuple[float, float]]:
        """The highest cell of the exact grid posterior in each half-plane, θ2 > 0 and θ2 < 0, as (θ1, θ2)."""
        c1, c2, p = self.grid(grid)
        found = []
        for half in (c2 > 0, c2 < 0):
            row, col = divmod(int((p * half[:, None]).argmax()), grid)
            found.append((float(c1[col]), float(c2[row])))
        return found[0], found[1]

    def mode_masses(self, samples=None) -> tuple[float, float]:
        """Mass of the half-planes θ2 > 0 (the mode near (0, 1)) and θ2 < 0 (near (1, -1)): of the exact grid
        posterior, or the fractions of `samples`."""
        if samples is None:
            _, c2, p = self.grid(400)
            upper = float(p[c2 > 0].sum())
        else:
            upper = float((torch.as_tensor(samples).detach().cpu().reshape(-1, 2)[:, 1] > 0).double().mean())
        return upper, 1 - upper
