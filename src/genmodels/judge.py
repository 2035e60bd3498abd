"""The judge: one small convolutional classifier that every model's samples are measured by.  Taught in 08_yardstick.

FID measures samples in the feature space of Inception, a network trained on ImageNet; for 28×28 grey images the
field uses a small digit classifier instead (the "Fréchet LeNet distance"). The course trains its own, once per data
set, on the profile's training images:

    x (1×28×28) → conv 5×5 stride 2, 32 → ReLU → conv 3×3 stride 2, 32 → ReLU                (28 → 14 → 7)
      → flatten (32·7·7) → linear 128 → ReLU  =  φ(x), the 128 features  → linear 10 = the logits of p(y|x).

φ(x), the penultimate layer, is the feature space of genmodels.measures; p(y|x) = softmax(logits) gives the
classifier score and the classes a set of samples covers. Training is cross-entropy with Adam through the one
training loop, and the checkpoint keeps the settings and the name of the data set, so that a judge of Fashion-MNIST is
never asked to judge digits.

On a CPU the judge trains on one thread. The notebooks that measure samples share one cached judge, and a run at
another thread count would train another one (genmodels.device says why): the lecture, trained at 2 threads, and
notebook 08, reading a judge that a test worker had cached at 1, once printed two accuracies for the same seed.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from . import checks, data, training
from .device import one_thread
from .paths import checkpoint_path

__all__ = ["Judge", "train_judge", "features", "probabilities", "accuracy", "check_same_dataset", "N_FEATURES"]

N_FEATURES = 128  # the width of the penultimate layer: the dimension of the feature space


class Judge(nn.Module):
    """The classifier above. `dataset` names the data set it was trained on (train_judge's checkpoint keeps the name
    among its settings, and refuses a judge trained on another)."""

    def __init__(self, n_classes: int = 10, n_features: int = N_FEATURES, dataset: str = ""):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 32, 5, stride=2, padding=2), nn.ReLU(),  # 28 → 14
            nn.Conv2d(32, 32, 3, stride=2, padding=1), nn.ReLU(),  # 14 → 7
            nn.Flatten(), nn.Linear(32 * 7 * 7, n_features), nn.ReLU())
        self.head = nn.Linear(n_features, n_classes)
        self.n_features, self.dataset = n_features, dataset

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """φ(x): grey levels (N, 1, 28, 28) → the penultimate layer's (N, n_features)."""
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The logits of p(y|x), (N, n_classes)."""
        return self.head(self.body(x))

    def extra_repr(self):
        return f"dataset={self.dataset!r}, n_features={self.n_features}"


def _as_input(images, device) -> torch.Tensor:
    """Grey levels in [0, 1] (checked), any layout with 784 pixels per image → (N, 1, 28, 28) float32 on `device`."""
    checks.check_grey_levels(images, "the images to judge", n_pixels=784)
    x = images if torch.is_tensor(images) else torch.from_numpy(images)
    return x.detach().float().reshape(len(x), 1, 28, 28).to(device)


def train_judge(dataset: data.Data, *, epochs: int = 5, batch_size: int = 128, lr: float = 2e-3, seed: int = 0,
                device="cpu", progress: str = "none", checkpoint=None, resume: bool = True) -> Judge:
    """The judge of `dataset` (a data.Data): trained on its training images and labels by cross-entropy with Adam,
    through genmodels.training.train, and cached: by default in _build/checkpoints/judge_<data set>_<n>.pt, with its
    settings (a cached judge trained otherwise is refused, and retrained with resume=False). Same seed, same judge on
    a CPU, whatever the process's thread count and whichever run wrote the cache: it trains on one thread, and the
    global random generators are left as they were, whether it trains or resumes.  Taught in 08_yardstick."""
    checks.check_grey_levels(dataset.x_train, "the judge's training images", n_pixels=784)
    if checkpoint is None:
        slug = dataset.name.split(" ")[0].lower()
        checkpoint = checkpoint_path(f"judge_{slug}_{len(dataset.x_train)}.pt")
    x = torch.as_tensor(dataset.x_train).float().reshape(len(dataset.x_train), 1, 28, 28)
    y = torch.as_tensor(dataset.y_train).long()
    gpu = [device] if torch.device(device).type == "cuda" else []
    # fork_rng: the initial weights from `seed`, and a resumed run's random states, leave the global generators alone
    with torch.random.fork_rng(devices=gpu), one_thread(device):
        torch.manual_seed(seed)
        judge = Judge(len(dataset.classes), dataset=dataset.name).to(device)
        optimizer = torch.optim.Adam(judge.parameters(), lr=lr)

        def loss_fn(batch):
            xb, yb = batch
            return F.cross_entropy(judge(xb), yb), {}

        training.train(judge, (x, y), epochs=epochs, batch_size=batch_size, loss_fn=loss_fn, optimizer=optimizer,
                       checkpoint=checkpoint, resume=resume, progress=progress, seed=seed, amp=False,
                       config={"dataset": dataset.name, "n_train": len(x), "n_features": judge.n_features,
                               "cpu_threads": 1})  # a judge cached before it trained on one thread is refused
    return judge.eval()


def check_same_dataset(judge: Judge, dataset_name: str) -> None:
    """A ValueError unless the judge was trained on the data set the images come from."""
    if dataset_name != judge.dataset:
        raise ValueError(f"this judge was trained on {judge.dataset}, but the images are measured against "
                         f"{dataset_name}: its features mean nothing there. Train a judge on the same data set: "
                         "judge.train_judge(dataset)")


def _in_batches(judge: Judge, images, batch_size: int, fn) -> torch.Tensor:
    """fn of the images, batch_size at a time on the judge's device, joined into one float64 tensor on the CPU."""
    x = _as_input(images, next(judge.parameters()).device)
    return torch.cat([fn(chunk).double().cpu() for chunk in x.split(batch_size)])


@torch.no_grad()
def features(judge: Judge, images, batch_size: int = 1000) -> torch.Tensor:
    """φ(x) of grey-level images, in batches: a float64 (N, n_features) tensor on the CPU."""
    return _in_batches(judge, images, batch_size, judge.features)


@torch.no_grad()
def probabilities(judge: Judge, images, batch_size: int = 1000) -> torch.Tensor:
    """p(y|x) of grey-level images, in batches: a float64 (N, n_classes) tensor on the CPU."""
    return _in_batches(judge, images, batch_size, lambda x: torch.softmax(judge(x).double(), -1))


def accuracy(judge: Judge, images, labels) -> float:
    """The fraction of images whose most probable class is their label."""
    predicted = probabilities(judge, images).argmax(-1)
    return float((predicted == torch.as_tensor(labels).long()).double().mean())
