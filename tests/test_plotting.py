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
    import matplotlib.pyplot as plt

    images = 0.2 + 0.5 * torch.rand(shape)  # grey levels in [0.2, 0.7]
    for normalize in (True, False):
        _, ax = plt.subplots()
        assert plotting.show_images(images, normalize=normalize, ax=ax) is None
        drawn = np.asarray(ax.get_images()[0].get_array())
        assert drawn.min() == (0.0 if normalize else pytest.approx(images.min().item()))  # each tile rescaled
    plt.close("all")
    assert plotting.show_images(torch.rand(shape), labels=list("abcd")) is None
    captioned = [axis for axis in plt.gcf().axes if axis.get_images()]
    assert [axis.get_title() for axis in captioned] == list("abcd")  # one image, one caption each
    plt.close("all")


def test_the_grey_between_images_sets_apart_images_of_one_value():
    """Spins drawn as 0/1 images: a lattice all 1 (black) beside the default black padding would merge with it."""
    import matplotlib.pyplot as plt

    _, ax = plt.subplots()
    plotting.show_images(np.ones((2, 4, 4)), ncols=2, ax=ax, pad_value=0.5)
    drawn = np.asarray(ax.get_images()[0].get_array())
    assert drawn[0, 0] == 0.5 and drawn[2:6, 2:6].min() == 1 and set(np.unique(drawn)) == {0.5, 1.0}
    plt.close("all")


def test_non_square_flat_images_are_a_clear_error():
    with pytest.raises(ValueError, match="cannot make square images of 10 pixels"):
        plotting.image_grid(np.zeros((2, 10)))


def test_plot_history_draws_every_metric():
    import matplotlib.pyplot as plt

    assert plotting.plot_history({"loss": [3.0, 2.0], "test_elbo": [-100.0, -90.0]}) is None
    _, ax = plt.subplots()
    plotting.plot_history({"loss": [3.0, 2.0, 1.5], "test_elbo": [-100.0, -90.0, -85.0]}, ax=ax)
    assert [line.get_label() for line in ax.lines] == ["loss", "test_elbo"]
    assert list(ax.lines[1].get_ydata()) == [-100.0, -90.0, -85.0]
    plt.close("all")


def test_plot_latent_codes_draws_one_point_per_example():
    import matplotlib.pyplot as plt

    _, ax = plt.subplots()
    assert plotting.plot_latent_codes(np.random.default_rng(0).normal(size=(50, 2)), np.arange(50) % 10, ax=ax) is None
    assert len(ax.collections[0].get_offsets()) == 50
    plt.close("all")
