"""Image grids and learning curves (in place of torchvision's make_grid and save_image).  Taught in 00_data_and_setup.

The helpers draw and return nothing, so no `<Figure ...>` repr lands in a notebook's outputs.
"""

from __future__ import annotations

import math
from statistics import NormalDist

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import MaxNLocator

__all__ = ["image_grid", "show_images", "save_image_grid", "plot_history", "latent_grid", "plot_latent_codes",
           "autoencoder_diagram"]


def _to_numpy(images) -> np.ndarray:
    if hasattr(images, "detach"):
        images = images.detach().float().cpu().numpy()
    images = np.asarray(images, dtype=np.float32)
    if images.ndim == 4 and images.shape[1] == 1:  # (N, 1, H, W)
        images = images[:, 0]
    if images.ndim == 2:  # (N, H*W), square images
        side = math.isqrt(images.shape[1])
        if side * side != images.shape[1]:
            raise ValueError(f"cannot make square images of {images.shape[1]} pixels; reshape to (N, H, W) first")
        images = images.reshape(-1, side, side)
    if images.ndim != 3:
        raise ValueError(f"expected images of shape (N, H, W), (N, 1, H, W) or (N, H*W); got {images.shape}")
    return images


def image_grid(images, ncols: int | None = None, padding: int = 2, pad_value: float = 1.0) -> np.ndarray:
    """Tile N grey images into one 2-D array of `ncols` columns (default: as square as possible)."""
    images = _to_numpy(images)
    n, h, w = images.shape
    ncols = ncols or math.ceil(math.sqrt(n))
    nrows = math.ceil(n / ncols)
    grid = np.full((nrows * (h + padding) + padding, ncols * (w + padding) + padding), pad_value, np.float32)
    for k, image in enumerate(images):
        r, c = divmod(k, ncols)
        top, left = padding + r * (h + padding), padding + c * (w + padding)
        grid[top:top + h, left:left + w] = image
    return grid


def show_images(images, ncols: int | None = None, title: str | None = None, ax=None, labels=None,
                size: float = 0.6, normalize: bool = False, pad_value: float = 1.0) -> None:
    """Draw a grid of grey images (values in [0, 1]); with `labels`, one small caption per image instead.
    normalize=True stretches each image to [0, 1] on its own (for weights, which have no natural range);
    `pad_value` is the grey between images (1, black, by default; 0.5 sets apart images that are all 0 or 1)."""
    images = _to_numpy(images)
    if normalize:
        lo = images.min(axis=(1, 2), keepdims=True)
        images = (images - lo) / np.maximum(images.max(axis=(1, 2), keepdims=True) - lo, 1e-12)
    if labels is not None:
        ncols = ncols or min(len(images), 10)
        nrows = math.ceil(len(images) / ncols)
        fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * size * 1.6, nrows * size * 1.9), squeeze=False)
        for axis in axes.flat:
            axis.axis("off")
        for axis, image, label in zip(axes.flat, images, labels, strict=False):
            axis.imshow(image, cmap="gray_r", vmin=0, vmax=1)
            axis.set_title(str(label), fontsize=8)
        if title:
            fig.suptitle(title)
        plt.show()
        return
    grid = image_grid(images, ncols, pad_value=pad_value)
    own_figure = ax is None
    if own_figure:
        scale = size * 28 / images.shape[-1]
        _, ax = plt.subplots(figsize=(grid.shape[1] / 28 * scale + 0.2, grid.shape[0] / 28 * scale + 0.4))
    ax.imshow(grid, cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
    ax.axis("off")
    if title:
        ax.set_title(title)
    if own_figure:
        plt.show()


def save_image_grid(images, path, ncols: int | None = None) -> None:
    """Write a grid of grey images to a PNG file (dark strokes on white, as the notebooks show them)."""
    plt.imsave(path, 1.0 - image_grid(images, ncols, pad_value=1.0), cmap="gray", vmin=0, vmax=1)


def plot_history(history, names=None, title: str | None = None, ax=None) -> None:
    """Learning curves: one line per metric of a `History` (or dict of lists), against the epoch."""
    metrics = getattr(history, "metrics", history)
    names = list(names or metrics)
    own_figure = ax is None
    if own_figure:
        _, axes = plt.subplots(1, len(names), figsize=(4 * len(names), 3), squeeze=False)
        axes = axes[0]
    else:
        axes = [ax] * len(names)
    for axis, name in zip(axes, names, strict=True):
        values = metrics[name]
        axis.plot(range(1, len(values) + 1), values, marker="o", label=name)
        axis.set_xlabel("epoch")
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.set_ylabel(name)
        axis.grid(alpha=0.3)
    if title:
        axes[0].figure.suptitle(title)
    if own_figure:
        plt.tight_layout()
        plt.show()


def latent_grid(n: int = 15, quantile: float = 0.05) -> np.ndarray:
    """An n × n grid of 2-D latents evenly spaced in probability under the prior N(0, I): h_i = Φ⁻¹(u_i), u from
    `quantile` to 1 - `quantile` (Kingma & Welling 2014). Returns (n*n, 2) float32 in reading order for show_images:
    h_1 grows along a row, h_2 from the bottom row to the top. Both VAEs draw their latent manifold on it."""
    z = np.array([NormalDist().inv_cdf(u) for u in np.linspace(quantile, 1 - quantile, n)], dtype=np.float32)
    h2, h1 = np.meshgrid(z[::-1], z, indexing="ij")  # top row: largest h_2
    return np.stack([h1, h2], axis=-1).reshape(-1, 2)


def plot_latent_codes(codes, labels, title: str | None = None, ax=None) -> None:
    """A 2-D latent space: one point per example at its code (h_1, h_2), coloured by its class label."""
    codes, labels = (np.asarray(a.detach().cpu() if hasattr(a, "detach") else a) for a in (codes, labels))
    own_figure = ax is None
    if own_figure:
        _, ax = plt.subplots(figsize=(6, 5))
    points = ax.scatter(codes[:, 0], codes[:, 1], c=labels, cmap="tab10", s=3)
    ax.figure.colorbar(points, ax=ax, ticks=range(10), label="class")
    ax.set(xlabel="$h_1$", ylabel="$h_2$", title=title)
    if own_figure:
        plt.show()


def autoencoder_diagram(variational: bool = False, ax=None) -> None:
    """The autoencoder as a picture: x (784 pixels) -> encoder f(x; W) -> code h -> decoder g(h; V) -> x̃, the layers
    drawn as bars whose heights follow their sizes. variational=True draws the VAE's encoder instead, which outputs
    μ(x) and σ(x) and samples h = μ + σ·ε, ε ~ N(0, I).  Taught in week13, part 3."""
    from matplotlib.patches import FancyArrowPatch, Polygon, Rectangle

    own_figure = ax is None
    if own_figure:
        _, ax = plt.subplots(figsize=(12, 3.6))
    blue, orange, grey = "#4c72b0", "#dd8452", "#555555"

    def bar(x, height, colour, label, below):
        ax.add_patch(Rectangle((x - 0.18, -height / 2), 0.36, height, facecolor=colour, edgecolor="black", lw=1))
        ax.text(x, height / 2 + 0.12, label, ha="center", va="bottom", fontsize=17)
        ax.text(x, -height / 2 - 0.12, below, ha="center", va="top", fontsize=13, color=grey)

    def network(x0, x1, h0, h1, label):
        ax.add_patch(Polygon([(x0, h0 / 2), (x1, h1 / 2), (x1, -h1 / 2), (x0, -h0 / 2)], closed=True,
                             facecolor="#eeeeee", edgecolor=grey, lw=1))
        ax.text((x0 + x1) / 2, 0, label, ha="center", va="center", fontsize=16)

    def arrow(x0, x1):
        ax.add_patch(FancyArrowPatch((x0, 0), (x1, 0), arrowstyle="-|>", mutation_scale=18, color="black"))

    bar(0, 2.4, blue, r"$\boldsymbol{x}$", "784 pixels")
    network(0.3, 2.6, 2.0, 0.7, "encoder\n" + (r"$Q(\boldsymbol{h}\mid\boldsymbol{x})$" if variational
                                               else r"$f(\boldsymbol{x};\boldsymbol{W})$"))
    if variational:
        ax.add_patch(Rectangle((2.75, 0.05), 0.3, 0.45, facecolor="#8172b3", edgecolor="black"))
        ax.add_patch(Rectangle((2.75, -0.5), 0.3, 0.45, facecolor="#8172b3", edgecolor="black"))
        ax.text(2.9, 0.62, r"$\mu(\boldsymbol{x})$", ha="center", va="bottom", fontsize=15)
        ax.text(2.9, -0.62, r"$\sigma(\boldsymbol{x})$", ha="center", va="top", fontsize=15)
        arrow(3.1, 3.55)
        ax.text(3.33, -0.95, r"$\boldsymbol{h} = \mu + \sigma\,\boldsymbol{\epsilon}$" + "\n"
                + r"$\boldsymbol{\epsilon}\sim\mathcal{N}(0, \boldsymbol{I})$", ha="center", va="top", fontsize=13)
        code_x = 3.8
    else:
        arrow(2.65, 3.5)
        code_x = 3.75
    bar(code_x, 0.6, orange, r"$\boldsymbol{h}$", "code: 2-20\nnumbers")
    network(code_x + 0.3, code_x + 2.6, 0.7, 2.0, "decoder\n" + (r"$p(\boldsymbol{x}\mid\boldsymbol{h})$" if variational
                                                             else r"$g(\boldsymbol{h};\boldsymbol{V})$"))
    bar(code_x + 2.9, 2.4, blue, r"$\tilde{\boldsymbol{x}}$", "784 pixels")
    ax.set(xlim=(-0.5, code_x + 3.4), ylim=(-1.75, 1.75), aspect="equal")
    ax.axis("off")
    if own_figure:
        plt.tight_layout()
        plt.show()
