"""Plotting helpers: grids of images in any of the shapes the models produce; they draw and return nothing."""

import matplotlib
import numpy as np
import pytest
import torch

matplotlib.use("Agg")

from genmodels import plotting  # noqa: E402


def test_image_grid_tiles_images_with_padding():
    images = np.arange(6 * 4, dtype=np.float32).reshape(6, 2, 2) / 24
    grid = plotting.image_grid(images, ncols=3, padding=1)
    assert grid.shape == (2 * 3 + 1, 3 * 3 + 1)
    assert np.array_equal(grid[1:3, 1:3], images[0]) and np.array_equal(grid[4:6, 7:9], images[5])


@pytest.mark.parametrize("shape", [(4, 28, 28), (4, 1, 28, 28), (4, 784)])
def test_show_images_accepts_the_shapes_models_produce_and_returns_nothing(shape):
    assert plotting.show_images(torch.rand(shape), normalize=True) is None
    assert plotting.show_images(torch.rand(shape), labels=list("abcd")) is None


def test_non_square_flat_images_are_a_clear_error():
    with pytest.raises(ValueError, match="cannot make square images of 10 pixels"):
        plotting.image_grid(np.zeros((2, 10)))


def test_plot_history_draws_every_metric():
    assert plotting.plot_history({"loss": [3.0, 2.0], "test_elbo": [-100.0, -90.0]}) is None
