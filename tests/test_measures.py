"""The yardstick's measures: the Fréchet distance against an independent closed form, precision and recall and the
classifier score where their values are known, the nearest-neighbour ratio on copies, the 1/N fit, and a clear error
for each kind of bad input."""

import numpy as np
import pytest
import scipy.linalg
import torch
import torch.nn.functional as F

from genmodels import data, judge, measures


def random_covariance(d, seed):
    a = torch.randn(d, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return a @ a.T / d + 0.1 * torch.eye(d, dtype=torch.float64)


def closed_form_with_scipy(mu_x, sigma_x, mu_y, sigma_y):
    """|μ_X - μ_Y|² + tr(Σ_X + Σ_Y - 2 (Σ_X Σ_Y)^½), with SciPy's general matrix square root (the FID papers'
    formula, computed another way than the package's symmetric eigendecompositions)."""
    root = scipy.linalg.sqrtm(sigma_x.numpy() @ sigma_y.numpy()).real
    return float(((mu_x - mu_y) ** 2).sum() + np.trace(sigma_x.numpy() + sigma_y.numpy() - 2 * root))


def clusters(n_per_class, classes, seed=0, spread=0.3):
    """Points in 16 dimensions around well-separated class centres (14 apart), n_per_class around each, spread in
    two of the dimensions (in a low-dimensional cluster a few hundred k-NN balls cover the support)."""
    g = torch.Generator().manual_seed(seed)
    centres = 10 * torch.eye(16, dtype=torch.float64)[:10]
    return torch.cat([centres[c] + F.pad(spread * torch.randn(n_per_class, 2, generator=g, dtype=torch.float64),
                                         (0, 14)) for c in classes])


# --- the Fréchet distance -------------------------------------------------------------------------------------------


def test_frechet_distance_of_exact_gaussian_moments_equals_the_closed_form():
    """Exact moments of two 20-D Gaussians: eigh's symmetric square roots agree with SciPy's sqrtm of Σ_X Σ_Y to
    float64 rounding (1e-8 relative)."""
    g = torch.Generator().manual_seed(0)
    mu_x, mu_y = torch.randn(20, generator=g, dtype=torch.float64), torch.randn(20, generator=g, dtype=torch.float64)
    sigma_x, sigma_y = random_covariance(20, 1), random_covariance(20, 2)
    fd = measures.frechet_distance_from_moments(mu_x, sigma_x, mu_y, sigma_y)
    assert fd == pytest.approx(closed_form_with_scipy(mu_x, sigma_x, mu_y, sigma_y), rel=1e-8)


def sampled_features(n, d, seed, shift):
    """n draws of d correlated features, their mean `shift` away from 0 (so that a covariance that forgets to centre
    is wrong by μμᵀ); few draws, so that dividing by N instead of N - 1 is wrong by 1/N."""
    g = torch.Generator().manual_seed(seed)
    mixing = torch.randn(d, d, generator=g, dtype=torch.float64)
    return torch.randn(n, d, generator=g, dtype=torch.float64) @ mixing + shift


def test_moments_are_numpys_mean_and_covariance():
    """np.cov (rows are draws; divided by N - 1) of 40 draws of 5 features: float64 rounding apart (1e-12)."""
    f = sampled_features(40, 5, seed=0, shift=3.0)
    mu, sigma = measures.moments(f)
    np.testing.assert_allclose(mu.numpy(), f.numpy().mean(0), rtol=1e-12)
    np.testing.assert_allclose(sigma.numpy(), np.cov(f.numpy(), rowvar=False), rtol=1e-12, atol=1e-12)


def test_frechet_distance_of_sampled_features_equals_scipys_on_numpys_moments():
    """The distance the tables print, from features: NumPy's mean and covariance, then SciPy's sqrtm of Σ_X Σ_Y, agree
    with moments and the eigendecompositions to float64 rounding (1e-8 relative)."""
    x, y = sampled_features(60, 6, seed=1, shift=2.0), sampled_features(50, 6, seed=2, shift=-1.0)
    independent = closed_form_with_scipy(*(torch.from_numpy(a) for a in (
        x.numpy().mean(0), np.cov(x.numpy(), rowvar=False), y.numpy().mean(0), np.cov(y.numpy(), rowvar=False))))
    assert measures.frechet_distance(x, y) == pytest.approx(independent, rel=1e-8)


def test_frechet_distance_of_diagonal_gaussians_is_the_sum_of_squared_differences():
    mu_x, mu_y = torch.tensor([0.0, 1.0, 2.0]), torch.tensor([1.0, 1.0, 0.0])
    var_x, var_y = torch.tensor([1.0, 4.0, 9.0]), torch.tensor([4.0, 1.0, 1.0])
    fd = measures.frechet_distance_from_moments(mu_x, torch.diag(var_x), mu_y, torch.diag(var_y))
    assert fd == pytest.approx(5.0 + 1.0 + 1.0 + 4.0, rel=1e-12)  # |Δμ|² = 5, Σ(σ_X - σ_Y)² = 1 + 1 + 4


def test_frechet_distance_is_zero_for_a_set_against_itself_and_symmetric():
    x = torch.randn(500, 10, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    y = torch.randn(400, 10, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * 1.5 + 0.2
    assert measures.frechet_distance(x, x) == pytest.approx(0.0, abs=1e-9)
    assert measures.frechet_distance(x, y) == pytest.approx(measures.frechet_distance(y, x), rel=1e-9)


def test_frechet_distance_grows_with_added_noise():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2000, 8, generator=g, dtype=torch.float64)
    y = torch.randn(2000, 8, generator=g, dtype=torch.float64)
    noise = torch.randn(2000, 8, generator=g, dtype=torch.float64)
    distances = [measures.frechet_distance(x, y + s * noise) for s in (0.0, 0.5, 1.0, 2.0)]
    assert distances == sorted(distances) and distances[-1] > 10 * distances[0]


def test_fit_in_one_over_n_recovers_the_intercept_and_slope():
    sizes = [500, 1000, 2000, 5000]
    fit = measures.extrapolate_to_infinite_n(sizes, [3.0 + 800.0 / n for n in sizes])
    assert (fit.fd_infinity, fit.slope) == (pytest.approx(3.0, abs=1e-9), pytest.approx(800.0, rel=1e-9))
    assert fit.r_squared == pytest.approx(1.0, abs=1e-12)


def test_fit_in_one_over_n_reports_how_much_the_line_explains():
    """Distances that zigzag (10, 12, 10, 12) as N doubles: the least-squares line, from the normal equations in plain
    Python, explains little of them; R² = 1 - SS_res/SS_tot with SS_tot = 4."""
    sizes, fds = [250, 500, 1000, 2000], [10.0, 12.0, 10.0, 12.0]
    x = [1 / n for n in sizes]
    mx, my = sum(x) / 4, sum(fds) / 4
    slope = sum((a - mx) * (b - my) for a, b in zip(x, fds, strict=True)) / sum((a - mx) ** 2 for a in x)
    residual = sum((b - (my + slope * (a - mx))) ** 2 for a, b in zip(x, fds, strict=True))
    fit = measures.extrapolate_to_infinite_n(sizes, fds)
    assert fit.slope == pytest.approx(slope, rel=1e-9) and fit.fd_infinity == pytest.approx(my - slope * mx)
    assert fit.r_squared == pytest.approx(1 - residual / 4.0, rel=1e-9) and fit.r_squared < 0.5
    with pytest.raises(ValueError, match="three sizes at least"):
        measures.extrapolate_to_infinite_n([500, 1000], [2.0, 1.0])


def test_compare_rows_names_a_gap_only_beyond_the_seeds_spread():
    results = {"a": {"fd": [10.0, 12.0, 14.0]}, "b": {"fd": [20.0, 21.0, 22.0]}, "c": {"fd": [13.0, 15.0, 17.0]}}
    assert measures.compare_rows(results, "a", "b") == "Fréchet distance: a 12, b 21: a lower by 9"
    assert measures.compare_rows(results, "b", "a") == "Fréchet distance: b 21, a 12: b higher by 9"
    assert measures.compare_rows(results, "a", "c").endswith("a within the seeds' spread")  # gap 3 <= 2 × sd 2
    with pytest.raises(ValueError, match="no row 'z'"):
        measures.compare_rows(results, "a", "z")


# --- precision and recall -------------------------------------------------------------------------------------------


def test_precision_and_recall_of_sets_on_a_line_are_counted_by_hand():
    """The reference 0, 1, …, 9: its balls reach the third neighbour, radius 2 inside and 3 at the ends, so its
    support is [-3, 12]. Of the 12 samples, the four near 3 and the four near 11.6 lie in it, the four past 30 do not:
    precision 8/12. The samples' own balls: radius 3 at 2.5 and 5.5, 2 at 3.5 and 4.5, covering [-0.5, 8.5]; the
    clusters at 11.6 and 32 are tight (radii 0.3 at most): recall 9/10 (9 falls outside). The second or fourth
    neighbour gives (4/12, 7/10) or (8/12, 10/10); a radius compared unsquared with squared distances, (4/12, 7/10);
    the two swapped, (9/10, 8/12)."""
    reference = torch.arange(10, dtype=torch.float64)[:, None]
    samples = torch.tensor([2.5, 3.5, 4.5, 5.5, 11.5, 11.6, 11.7, 11.8, 30.5, 31.5, 32.5, 33.5],
                           dtype=torch.float64)[:, None]
    assert measures.precision_recall(reference, samples) == (pytest.approx(8 / 12), pytest.approx(9 / 10))


def test_dropping_half_the_classes_lowers_recall_and_keeps_precision():
    """Samples from 5 of the 10 clusters: every sample lies in the data's support (precision 1), the samples' balls
    cover the 5 clusters they came from only (recall about 1/2)."""
    reference = clusters(100, range(10), seed=0)
    samples = clusters(200, range(5), seed=1)
    precision, recall = measures.precision_recall(reference, samples)
    assert precision > 0.95
    assert 0.4 < recall < 0.55


def test_chunked_distances_agree_with_one_block():
    x, y = clusters(20, range(10), seed=0), clusters(15, range(10), seed=1)
    assert measures.precision_recall(x, y, chunk=7) == measures.precision_recall(x, y, chunk=10_000)
    radii = measures.kth_neighbour_radii(x, chunk=7)
    direct = torch.cdist(x, x).sort(1).values[:, measures.K]  # column 0 is the point itself
    assert torch.allclose(radii, direct, atol=1e-9)


# --- the classifier's view ------------------------------------------------------------------------------------------


def test_classifier_score_is_ten_for_ten_confident_equal_classes_and_one_for_one_class():
    ten = torch.eye(10).repeat(50, 1)
    one = torch.eye(10)[[3] * 500]
    assert measures.classifier_score(ten) == pytest.approx(10.0, rel=1e-12)
    assert measures.classifier_score(one) == pytest.approx(1.0, rel=1e-12)
    assert measures.classifier_score(torch.full((100, 10), 0.1)) == pytest.approx(1.0, rel=1e-12)  # unsure: 1 too
    assert (measures.classes_covered(ten), measures.classes_covered(one)) == (10, 1)


def test_classifier_score_of_unsure_samples_is_the_exponential_of_the_mean_kl():
    """Two classes; half the samples sure of class 0, (1, 0), half unsure, (1/2, 1/2): p(y) = (3/4, 1/4),
    KL = log(4/3) for the sure ones, ½ log(2/3) + ½ log 2 = ½ log(4/3) for the unsure ones, so the score is
    exp(¾ log(4/3)) = (4/3)^¾ = 1.2408 (the mean of exp KL would be 1.2440)."""
    p = torch.tensor([[1.0, 0.0], [0.5, 0.5]]).repeat(50, 1)
    assert measures.classifier_score(p) == pytest.approx((4 / 3) ** 0.75, rel=1e-12)


def test_a_class_is_covered_by_the_samples_it_is_most_probable_for_not_by_summed_probabilities():
    """100 samples, each 0.46 sure of class 0 or 1 (50 each) and 0.06 for each of the other nine classes: only
    classes 0 and 1 are any sample's top class. Classes 2 to 9 receive 100 × 0.06 = 6 samples' worth of probability
    each, more than half their fair share (N / 2C = 5), but no sample."""
    p = torch.full((100, 10), 0.06, dtype=torch.float64)
    p[torch.arange(100), torch.arange(100) % 2] = 0.46
    assert measures.classes_covered(p) == 2


def test_a_class_needs_half_its_fair_share_to_be_covered():
    labels = [0] * 50 + [1] * 50 + [2] * 5 + [3] * 4 + list(range(4, 10)) * 15  # N = 199; half a fair share: 9.95
    p = torch.eye(10)[labels]
    assert measures.classes_covered(p) == 8  # classes 2 (5 samples) and 3 (4) fall short


# --- copying --------------------------------------------------------------------------------------------------------


def test_nearest_neighbour_ratio_is_zero_for_copies_and_near_one_for_fresh_draws():
    g = torch.Generator().manual_seed(0)
    train, test, fresh = (torch.randn(1000, 5, generator=g, dtype=torch.float64) for _ in range(3))
    assert measures.nearest_neighbour_ratio(train[:200], train, test) == 0.0
    assert measures.nearest_neighbour_ratio(fresh, train, test) == pytest.approx(1.0, abs=0.1)


# --- bad input ------------------------------------------------------------------------------------------------------


def test_fewer_samples_than_features_says_how_many_are_needed():
    with pytest.raises(ValueError, match="singular.*at least 129 samples"):
        measures.moments(torch.randn(100, 128))


def test_precision_recall_needs_k_plus_one_samples():
    with pytest.raises(ValueError, match="3 samples, too few.*at least 4"):
        measures.precision_recall(torch.randn(100, 4), torch.randn(3, 4))


def test_features_with_nan_are_refused():
    f = torch.randn(300, 4)
    f[7, 2] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        measures.frechet_distance(f, torch.randn(300, 4))


@pytest.fixture(scope="module")
def tiny_judge():
    """An untrained judge named for MNIST: the checks run before any feature is used."""
    torch.manual_seed(0)
    return judge.Judge(dataset="MNIST").eval()


@pytest.fixture(scope="module")
def tiny_yardstick(tiny_judge):
    images = torch.rand(300, 28, 28, generator=torch.Generator().manual_seed(0))
    return measures.Yardstick(tiny_judge, "MNIST", judge.features(tiny_judge, images[:150]),
                              judge.features(tiny_judge, images[150:]))


@pytest.mark.parametrize("images, message", [
    (torch.rand(200, 28, 28) * 2, r"grey levels in \[0, 1\]; got values in \[.*, 2\]"),
    (torch.rand(200, 32, 32), "784 pixels per example"),
    (torch.full((200, 28, 28), float("nan")), "contain 156800 NaN"),
    (torch.randint(0, 256, (200, 28, 28), dtype=torch.uint8), "divide by 255"),
], ids=["outside [0, 1]", "another size", "NaN", "bytes"])
def test_bad_images_are_a_clear_error(tiny_yardstick, images, message):
    with pytest.raises(ValueError, match=message):
        tiny_yardstick.measure(images)


def test_a_judge_of_another_data_set_is_refused(tiny_judge, tiny_yardstick):
    with pytest.raises(ValueError, match="trained on MNIST, but the images are measured against Fashion-MNIST"):
        tiny_yardstick.measure(torch.rand(200, 28, 28), dataset="Fashion-MNIST")
    fashion = data.Data("Fashion-MNIST", np.zeros((10, 28, 28), np.float32), np.zeros(10, np.int64),
                        np.zeros((10, 28, 28), np.float32), np.zeros(10, np.int64), data.CLASSES["fashion-mnist"])
    with pytest.raises(ValueError, match="trained on MNIST"):
        measures.Yardstick.build(tiny_judge, fashion, 5)


# --- the reference rows ---------------------------------------------------------------------------------------------


def test_independent_pixels_keep_each_pixel_mean_and_lose_the_correlations():
    images = torch.zeros(1000, 28, 28)
    images[:500, :, :14] = 1.0  # half the images dark on the left, the others blank: pixels perfectly correlated
    n = 20_000
    fake = measures.independent_pixels(images, n, seed=0).reshape(-1, 784)
    # each left pixel's mean is a mean of n draws of 0 or 1 (p = 1/2), sd 0.5/√n; the largest of the 392 errors
    # passes 4.5 sd with probability 392 × 7e-6 = 0.3 %
    assert torch.allclose(fake.mean(0), images.reshape(-1, 784).mean(0), atol=4.5 * 0.5 / n**0.5)
    corr = torch.corrcoef(fake[:, [0, 1]].T)[0, 1]
    assert abs(corr) < 4 / n**0.5  # 4 sd of a correlation of n independent pairs (sd 1/√n)


def test_blurring_keeps_the_ink_and_spreads_it():
    image = torch.zeros(1, 28, 28)
    image[0, 14, 14] = 1.0
    out = measures.blurred(image, sigma=1.0)
    assert out.sum().item() == pytest.approx(1.0, rel=1e-5)  # a normalised kernel away from the border
    assert out[0, 14, 14] < 0.2 and out[0, 14, 15] > 0.05


def test_the_table_shows_the_columns_asked_for_aligned_with_their_titles():
    results = {"a row": {"fd": [10.0, 12.0], "precision": [0.5, 0.7], "recall": [0.25, 0.25], "score": [9.0, 9.0],
                         "classes": [10, 10], "nn_ratio": [1.0, 0.9]},
               "another row": {"fd": [100.0, 100.0], "precision": [0.0, 0.0], "recall": [0.0, 0.0],
                               "score": [1.0, 1.0], "classes": [1, 1], "nn_ratio": [0.5, 0.5]}}
    header, rule, first, second = measures.format_table(results, {"a row": "-90.0"}, "nats",
                                                        columns=("fd", "recall")).splitlines()
    assert header.split() == ["FD", "(mean", "±", "sd)", "recall", "nats"] and set(rule) == {"-"}
    assert first.split() == ["a", "row", "11.0", "±", "1.4", "0.250", "-90.0"]
    assert second.split() == ["another", "row", "100.0", "±", "0.0", "0.000"]
    assert first.index("0.250") + len("0.250") == header.index("recall") + len("recall")  # right-aligned as titled
    full = measures.format_table(results).splitlines()[0]
    assert full.split()[4:] == ["precision", "recall", "score", "classes", "NN", "ratio"]
    with pytest.raises(ValueError, match=r"unknown columns \['FID'\]: choose from \['fd', 'precision'"):
        measures.format_table(results, columns=("FID",))


def test_classes_seen_counts_the_judges_classes(monkeypatch):
    """Six images the judge puts in classes 3, 3, 3, 7, 7, 1 of ten: class 3 and 7 reach N / 2C = 0.3, class 1 too."""
    labels = torch.tensor([3, 3, 3, 7, 7, 1])
    monkeypatch.setattr(measures.judges, "probabilities", lambda judge, images: torch.eye(10)[labels][:len(images)])
    line = measures.classes_seen(None, torch.zeros(6, 784))
    assert line == " 3 classes covered, the judge's counts per class [0, 1, 0, 3, 0, 0, 0, 2, 0, 0]"


def test_nearest_neighbour_summary_sets_the_copied_row_beside_the_others_range():
    results = {"copied": {"nn_ratio": [0.0, 0.0]}, "a": {"nn_ratio": [0.8, 0.9]}, "b": {"nn_ratio": [1.0, 1.02]}}
    assert measures.nearest_neighbour_summary(results, copied="copied") == (
        "nearest-neighbour ratio: 0.00 for the copied training images, 0.85 to 1.01 for every other row")
