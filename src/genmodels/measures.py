"""One yardstick for every generative model: samples measured in the judge's feature space.  Taught in 08_yardstick.

Let φ(x) be the judge's 128 features of an image (genmodels.judge), X the reference images (held-out test images),
Y the samples, N images each. The measures, all computed in float64:

Fréchet distance (FID with a digit classifier for Inception; Heusel et al. 2017). Fit a Gaussian to each set of
features, (μ_X, Σ_X) and (μ_Y, Σ_Y), and take the squared 2-Wasserstein distance between the two Gaussians,

    FD = |μ_X - μ_Y|² + tr(Σ_X + Σ_Y - 2 (Σ_X^½ Σ_Y Σ_X^½)^½).

Σ_X^½ Σ_Y Σ_X^½ is symmetric and positive semi-definite, so both square roots come from symmetric
eigendecompositions (eigh), with no SciPy. A covariance needs more samples than features (N > d), else it is singular.
FD estimated from N samples is biased upwards, by about c/N (Chong & Forsyth 2020): compare at equal N, or
extrapolate to N → ∞ (`extrapolate_to_infinite_n`, which reports the fit's R²: where the points do not lie on a line
in 1/N, the intercept means nothing).

Precision and recall (Kynkäänniemi et al. 2019). Around each reference feature put a ball reaching its k-th nearest
reference neighbour (k = 3): the union of balls estimates the support of the data. Precision is the fraction of
samples inside the data's support (are the samples realistic?), recall the fraction of reference images inside the
samples' support, built the same way (do the samples cover the data?). Distances are computed in chunks, so 10,000 ×
10,000 fits in memory.

Classifier score (the Inception score with the judge; Salimans et al. 2016): exp(E_x KL(p(y|x) ‖ p(y))), with p(y)
the mean of p(y|x) over the samples. It is the number of classes when every sample is labelled confidently and the
classes are equally frequent, and 1 when all samples look alike to the judge. Classes covered: how many classes the
judge assigns at least half their fair share of the samples (N / 2C each, for C classes).

Nearest-neighbour ratio: for each sample, its distance (in feature space) to the nearest of n training images,
divided by its distance to the nearest of n held-out test images; the median over samples. About 1 for a model that
generalises (train and test images are draws from one distribution), well below 1 for one that copies its
training data.

The reference rows (what a perfect and a useless model would score) are built here too: noisy and blurred test
images, independent pixels with the data's marginals, uniform noise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F

from . import checks, data
from . import judge as judges

__all__ = ["moments", "frechet_distance", "frechet_distance_from_moments", "precision_recall", "kth_neighbour_radii",
           "classifier_score", "classes_covered", "classes_seen", "nearest_neighbour_ratio",
           "extrapolate_to_infinite_n", "InverseNFit", "compare_rows", "nearest_neighbour_summary", "Yardstick",
           "measure_rows", "format_table", "MEASURES", "with_noise", "blurred", "independent_pixels",
           "uniform_noise", "check_features", "K"]

K = 3  # neighbours for the balls of precision and recall (Kynkäänniemi et al. 2019)


# --- the Fréchet distance -----------------------------------------------------------------------------------------


def moments(features) -> tuple[torch.Tensor, torch.Tensor]:
    """(μ, Σ): the mean and the covariance (divided by N - 1) of features (N, d), in float64."""
    f = check_features(features, "the features", minimum=None)
    n, d = f.shape
    if n <= d:
        raise ValueError(f"a covariance of {d} features from {n} samples is singular (rank < {d}): the Fréchet "
                         f"distance needs at least {d + 1} samples (ten times as many for a small bias); measure more "
                         "samples, or use fewer features")
    mu = f.mean(0)
    centred = f - mu
    return mu, centred.T @ centred / (n - 1)


def _sqrt_psd(matrix: torch.Tensor) -> torch.Tensor:
    """The square root of a symmetric positive semi-definite matrix, V diag(√λ) Vᵀ from eigh (negative rounding
    errors in λ set to 0)."""
    eigenvalues, vectors = torch.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * eigenvalues.clamp(min=0).sqrt()) @ vectors.T


def frechet_distance_from_moments(mu_x, sigma_x, mu_y, sigma_y) -> float:
    """FD = |μ_X - μ_Y|² + tr Σ_X + tr Σ_Y - 2 tr (Σ_X^½ Σ_Y Σ_X^½)^½, in float64.  Taught in 08_yardstick."""
    mu_x, sigma_x, mu_y, sigma_y = (torch.as_tensor(t, dtype=torch.float64) for t in (mu_x, sigma_x, mu_y, sigma_y))
    root_x = _sqrt_psd(sigma_x)
    cross = _sqrt_psd(root_x @ sigma_y @ root_x)
    value = (mu_x - mu_y).square().sum() + sigma_x.trace() + sigma_y.trace() - 2 * cross.trace()
    return max(float(value), 0.0)


def frechet_distance(features_x, features_y) -> float:
    """The Fréchet distance between two sets of features (N_X, d) and (N_Y, d); notebook 08's table uses it."""
    return frechet_distance_from_moments(*moments(features_x), *moments(features_y))


class InverseNFit(NamedTuple):
    """FD(N) = fd_infinity + slope / N fitted by least squares; r_squared is the fraction of the distances' variance
    over the sizes that the line explains (1: on the line; near 0: the 1/N bias is lost in the noise, and the
    intercept is not an estimate of anything)."""
    fd_infinity: float
    slope: float
    r_squared: float


def extrapolate_to_infinite_n(sizes, distances) -> InverseNFit:
    """Fit FD(N) = FD_∞ + c/N by least squares to distances measured at several sizes N; returns (FD_∞, c, R²)."""
    inv_n = torch.tensor([1.0 / n for n in sizes], dtype=torch.float64)
    fd = torch.as_tensor(distances, dtype=torch.float64)
    if len(inv_n) < 3 or len(inv_n) != len(fd):
        raise ValueError(f"the 1/N fit needs distances at three sizes at least (two always lie on a line), one per "
                         f"size; got {len(inv_n)} sizes and {len(fd)} distances")
    design = torch.stack([torch.ones_like(inv_n), inv_n], 1)
    solution = torch.linalg.lstsq(design, fd[:, None]).solution[:, 0]
    residual = float(((fd - design @ solution) ** 2).sum())
    total = float(((fd - fd.mean()) ** 2).sum())
    r_squared = 1.0 - residual / total if total > 0 else 1.0  # all distances equal: the flat line fits exactly
    return InverseNFit(float(solution[0]), float(solution[1]), r_squared)


# --- precision and recall -----------------------------------------------------------------------------------------


def _squared_distances_in_chunks(a: torch.Tensor, b: torch.Tensor, chunk: int):
    """Yields (start, d2): d2[i, j] = |a_{start+i} - b_j|² for chunk rows of a at a time (a chunk × N_b block in
    memory), from |a|² - 2 a·b + |b|²."""
    b_sq = b.square().sum(1)
    for start in range(0, len(a), chunk):
        block = a[start:start + chunk]
        yield start, block.square().sum(1, keepdim=True) - 2 * block @ b.T + b_sq


def _chunked_min_distances(a: torch.Tensor, b: torch.Tensor, k: int, chunk: int, skip_self: bool) -> torch.Tensor:
    """For each row of a, the distances to its k nearest rows of b (N_a, k), sorted; computed chunk rows of a at a
    time. skip_self drops each row's zero distance to itself (a is b)."""
    out = []
    for start, d2 in _squared_distances_in_chunks(a, b, chunk):
        if skip_self:
            rows = torch.arange(len(d2))
            d2[rows, start + rows] = math.inf
        out.append(d2.clamp_(min=0).topk(k, dim=1, largest=False).values.sqrt())
    return torch.cat(out)


def kth_neighbour_radii(features, k: int = K, chunk: int = 1000) -> torch.Tensor:
    """The distance from each feature vector to its k-th nearest neighbour in the same set (itself excluded)."""
    f = check_features(features, "the features", minimum=k + 1, why=f"k = {k} neighbours besides itself")
    return _chunked_min_distances(f, f, k, chunk, skip_self=True)[:, k - 1]


def _inside_balls(points: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor, chunk: int) -> torch.Tensor:
    """For each point, whether it lies within radii[j] of some centre j (a boolean (N_points,) tensor)."""
    return torch.cat([(d2 <= radii.square()).any(1) for _, d2 in _squared_distances_in_chunks(points, centres, chunk)])


def precision_recall(reference, samples, k: int = K, chunk: int = 1000) -> tuple[float, float]:
    """(precision, recall) of sample features against reference features, with k-nearest-neighbour balls:
    precision = fraction of samples within the reference's balls, recall = fraction of reference features within the
    samples' balls. 1 and 1 for identical sets, 0 and 0 for far-apart ones.  Taught in 08_yardstick."""
    why = f"k = {k} neighbours besides itself"
    x = check_features(reference, "the reference features", minimum=k + 1, why=why)
    y = check_features(samples, "the sample features", minimum=k + 1, why=why)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"the reference has {x.shape[1]} features per image, the samples {y.shape[1]}: measure both "
                         "with the same judge")
    precision = _inside_balls(y, x, kth_neighbour_radii(x, k, chunk), chunk).double().mean()
    recall = _inside_balls(x, y, kth_neighbour_radii(y, k, chunk), chunk).double().mean()
    return float(precision), float(recall)


# --- the classifier's view: score and classes covered -------------------------------------------------------------


def _check_probabilities(p) -> torch.Tensor:
    p = torch.as_tensor(p, dtype=torch.float64)
    if p.ndim != 2 or len(p) == 0:
        raise ValueError(f"class probabilities must be a non-empty (N, classes) array; got shape {tuple(p.shape)}")
    if not (p.isfinite().all() and (p >= 0).all() and torch.allclose(p.sum(1), torch.ones(len(p), dtype=p.dtype),
                                                                       atol=1e-6)):
        raise ValueError("class probabilities must be finite, non-negative and sum to 1 over each row: pass "
                         "judge.probabilities(judge, images), not the logits")
    return p


def classifier_score(p) -> float:
    """exp(E_x KL(p(y|x) ‖ p(y))), p(y) = mean_x p(y|x), from class probabilities (N, C).  Taught in 08_yardstick."""
    p = _check_probabilities(p)
    marginal = p.mean(0, keepdim=True)
    kl = torch.xlogy(p, p).sum(1) - torch.xlogy(p, marginal.expand_as(p)).sum(1)  # 0 log 0 = 0
    return float(kl.mean().exp())


def classes_covered(p) -> int:
    """How many of the C classes the judge assigns (as most probable) to at least N / 2C of the N samples."""
    p = _check_probabilities(p)
    counts = torch.bincount(p.argmax(1), minlength=p.shape[1])
    return int((2 * p.shape[1] * counts >= len(p)).sum())


def classes_seen(judge, images) -> str:
    """One line on what the judge sees in `images` (any shape with 784 pixels per image): the classes covered and how
    many images it puts in each class, e.g. for chains that may all have fallen into one mode."""
    p = judges.probabilities(judge, torch.as_tensor(images).reshape(-1, 28, 28))
    counts = p.argmax(1).bincount(minlength=p.shape[1]).tolist()
    return f"{classes_covered(p):2d} classes covered, the judge's counts per class {counts}"


# --- memorisation: nearest neighbours in the training set and in the test set --------------------------------------


def nearest_neighbour_ratio(samples, train, test, chunk: int = 1000) -> float:
    """The median over samples of (distance to the nearest training feature) / (distance to the nearest test
    feature); train and test should hold as many images each. Near 1: the samples are no closer to the training
    data than to unseen data; near 0: copies of training images."""
    y = check_features(samples, "the sample features", minimum=1)
    a = check_features(train, "the training features", minimum=1)
    b = check_features(test, "the test features", minimum=1)
    to_train = _chunked_min_distances(y, a, 1, chunk, skip_self=False)[:, 0]
    to_test = _chunked_min_distances(y, b, 1, chunk, skip_self=False)[:, 0]
    return float((to_train / to_test.clamp(min=1e-12)).median())


# --- checks -------------------------------------------------------------------------------------------------------


def check_features(features, what="the features", minimum: int | None = 2, why: str = "") -> torch.Tensor:
    """features as a float64 (N, d) tensor; a ValueError for another shape, non-finite values, or fewer than
    `minimum` rows."""
    f = torch.as_tensor(features).double()
    if f.ndim != 2:
        raise ValueError(f"{what} must be a 2-D array (N images, d features); got shape {tuple(f.shape)}: compute "
                         "them with judge.features(judge, images)")
    if not f.isfinite().all():
        raise ValueError(f"{what} hold NaN or infinite values: the images had some; check them with "
                         "genmodels.checks.check_grey_levels")
    if minimum is not None and len(f) < minimum:
        raise ValueError(f"{what}: {len(f)} samples, too few; {why or 'this measure'} needs at least {minimum}")
    return f


# --- the yardstick: a judge, its reference, and one row of measures -----------------------------------------------


@dataclass
class Yardstick:
    """The judge with what every row is measured against: the reference (held-out test) images' features and
    moments, and n training images' features for the nearest-neighbour ratio."""

    judge: judges.Judge
    dataset: str
    reference: torch.Tensor  # φ of the reference images (N, d)
    train: torch.Tensor  # φ of as many training images (N, d)
    k: int = K

    @classmethod
    def build(cls, judge, dataset: data.Data, n: int, k: int = K) -> Yardstick:
        """The first n test images as the reference, the first n training images for the nearest-neighbour ratio."""
        judges.check_same_dataset(judge, dataset.name)
        if n > min(len(dataset.x_test), len(dataset.x_train)):
            raise ValueError(f"n={n} reference images asked for; {dataset.name} here has {len(dataset.x_test):,} test "
                             f"and {len(dataset.x_train):,} training images")
        reference = judges.features(judge, dataset.x_test[:n])
        moments(reference)  # a clear error now if n is too small for a covariance
        return cls(judge, dataset.name, reference, judges.features(judge, dataset.x_train[:n]), k)

    def __post_init__(self):
        self.reference_moments = moments(self.reference)

    def measure(self, images, dataset: str | None = None) -> dict[str, float]:
        """Every measure of one set of grey-level images: fd, precision, recall, score, classes, nn_ratio."""
        judges.check_same_dataset(self.judge, self.dataset if dataset is None else dataset)
        checks.check_grey_levels(images, "the samples", n_pixels=784)
        f = judges.features(self.judge, images)
        fd = frechet_distance_from_moments(*self.reference_moments, *moments(f))
        precision, recall = precision_recall(self.reference, f, self.k)
        p = judges.probabilities(self.judge, images)
        return {"fd": fd, "precision": precision, "recall": recall, "score": classifier_score(p),
                "classes": classes_covered(p), "nn_ratio": nearest_neighbour_ratio(f, self.train, self.reference)}


# --- reference rows -----------------------------------------------------------------------------------------------


def _images(x) -> torch.Tensor:
    checks.check_grey_levels(x, "the images", n_pixels=784)
    return torch.as_tensor(x).float().reshape(len(x), 28, 28)


def with_noise(images, sigma: float, seed: int = 0) -> torch.Tensor:
    """Images plus Gaussian noise of standard deviation sigma, clipped to [0, 1]."""
    x = _images(images)
    noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(seed))
    return (x + sigma * noise).clamp(0, 1)


def blurred(images, sigma: float = 1.0) -> torch.Tensor:
    """Images convolved with a Gaussian of standard deviation sigma pixels (a 7 × 7 kernel, zero padding)."""
    x = _images(images)
    t = torch.arange(-3, 4, dtype=torch.float32)
    g = torch.exp(-t**2 / (2 * sigma**2))
    kernel = torch.outer(g, g) / g.sum() ** 2
    return F.conv2d(x[:, None], kernel[None, None], padding=3)[:, 0].clamp(0, 1)


def independent_pixels(images, n: int, seed: int = 0) -> torch.Tensor:
    """n images whose pixels are drawn independently, each from that pixel's values in `images`: the data's mean
    (and whole marginal) at every pixel, with no correlation between pixels."""
    x = _images(images).reshape(len(images), 784)
    rows = torch.randint(len(x), (n, 784), generator=torch.Generator().manual_seed(seed))
    return x.gather(0, rows).reshape(n, 28, 28)


def uniform_noise(n: int, seed: int = 0) -> torch.Tensor:
    """n images of independent uniform grey levels in [0, 1]."""
    return torch.rand(n, 28, 28, generator=torch.Generator().manual_seed(seed))


# --- a table of rows ----------------------------------------------------------------------------------------------


MEASURES = {"fd": "Fréchet distance", "precision": "precision", "recall": "recall", "score": "classifier score",
            "classes": "classes covered", "nn_ratio": "nearest-neighbour ratio"}


def measure_rows(yardstick: Yardstick, rows: dict, seeds=(0, 1, 2), keep: int = 16):
    """Measure each row, a function seed -> N grey-level images, once per seed. Returns (results, examples):
    results[name][measure] the list of values over the seeds, examples[name] the first `keep` images of the first
    seed (for a grid)."""
    results, examples = {}, {}
    for name, draw in rows.items():
        values = {}
        for seed in seeds:
            images = draw(seed)
            if name not in examples:
                examples[name] = torch.as_tensor(images)[:keep].detach().float().cpu().reshape(-1, 28, 28)
            for measure, value in yardstick.measure(images).items():
                values.setdefault(measure, []).append(value)
        results[name] = values
    return results, examples


def compare_rows(results: dict, row: str, other: str, measure: str = "fd") -> str:
    """One line comparing two rows of measure_rows' results on `measure`: their means, and "lower"/"higher" only
    where the gap exceeds twice the larger sd over the seeds (else "within the seeds' spread")."""
    for name in (row, other):
        if name not in results:
            raise ValueError(f"no row {name!r} in the results; the rows: {', '.join(results)}")
    a = torch.tensor(results[row][measure], dtype=torch.float64)
    b = torch.tensor(results[other][measure], dtype=torch.float64)
    spread = max(float(a.std()) if len(a) > 1 else 0.0, float(b.std()) if len(b) > 1 else 0.0)
    gap = float(a.mean() - b.mean())
    verdict = ("within the seeds' spread" if abs(gap) <= 2 * spread
               else "lower" if gap < 0 else "higher")
    return (f"{MEASURES[measure]}: {row} {float(a.mean()):.3g}, {other} {float(b.mean()):.3g}: "
            f"{row} {verdict}" + ("" if verdict.startswith("within") else f" by {abs(gap):.3g}"))


def nearest_neighbour_summary(results: dict, copied: str) -> str:
    """One line: the nearest-neighbour ratio of the row `copied` (training images copied: the ratio's floor, 0) beside
    the range of every other row's, each a mean over the seeds."""
    means = {name: sum(v["nn_ratio"]) / len(v["nn_ratio"]) for name, v in results.items()}
    others = [value for name, value in means.items() if name != copied]
    return (f"nearest-neighbour ratio: {means[copied]:.2f} for the copied training images, {min(others):.2f} to "
            f"{max(others):.2f} for every other row")


def format_table(results: dict, extra: dict | None = None, extra_name: str = "log-likelihood (nats)",
                 columns=tuple(MEASURES)) -> str:
    """The results of measure_rows as a text table: the Fréchet distance as mean ± sd over the seeds, the other
    measures as means; `columns` the measures to show, in MEASURES' order (a slide shows fewer); `extra[name]`, a
    string, in a last column (a log-likelihood, say)."""
    unknown = set(columns) - set(MEASURES)
    if unknown:
        raise ValueError(f"unknown columns {sorted(unknown)}: choose from {list(MEASURES)}")
    cells = {"precision": ("precision", 11, ".3f"), "recall": ("recall", 8, ".3f"), "score": ("score", 7, ".2f"),
             "classes": ("classes", 9, ".1f"), "nn_ratio": ("NN ratio", 10, ".2f")}  # title, width, format
    shown = [m for m in MEASURES if m in columns and m != "fd"]
    width = max(len(name) for name in results) + 2
    several = any(len(v["fd"]) > 1 for v in results.values())
    fd_title = "FD (mean ± sd)" if several else "FD"
    header = (f"{'':{width}s}" + (f"{fd_title:>16s} " if "fd" in columns else "")
              + "".join(f"{cells[m][0]:>{cells[m][1]}s}" for m in shown) + (f"  {extra_name}" if extra else ""))
    lines = [header, "-" * len(header)]
    for name, v in results.items():
        fd = torch.tensor(v["fd"], dtype=torch.float64)
        spread = f"± {float(fd.std()):<5.1f}" if len(fd) > 1 else " " * 7  # no sd from one seed
        mean = {m: sum(v[m]) / len(v[m]) for m in v}
        lines.append(f"{name:{width}s}" + (f"{float(fd.mean()):>9.1f} {spread}" if "fd" in columns else "")
                     + "".join(f"{mean[m]:>{cells[m][1]}{cells[m][2]}}" for m in shown)
                     + (f"  {extra.get(name, '')}" if extra else ""))
    return "\n".join(lines)
