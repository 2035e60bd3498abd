"""The judge: trained in the quick profile it reads MNIST's held-out digits, the same seed gives the same network, and
its checkpoint refuses another data set."""

import dataclasses

import pytest
import torch
from conftest import mnist_test_dir

from genmodels import data, judge

QUICK_ACCURACY = 0.95  # 5 epochs on the quick profile's 8,000 images reach 97.7 % on the other 2,000 (seed 0)


@pytest.fixture(scope="module")
def quick_data():
    mnist_test_dir()  # skips (or fails on CI) without the MNIST test files
    return data.load_data("quick")


def small(dataset, n=1000):
    return dataclasses.replace(dataset, x_train=dataset.x_train[:n], y_train=dataset.y_train[:n])


def test_judge_trained_in_the_quick_profile_reads_held_out_digits(quick_data, tmp_path):
    referee = judge.train_judge(quick_data, checkpoint=tmp_path / "judge.pt")
    assert judge.accuracy(referee, quick_data.x_test, quick_data.y_test) >= QUICK_ACCURACY
    features = judge.features(referee, quick_data.x_test[:10])
    assert features.shape == (10, judge.N_FEATURES) and features.dtype == torch.float64
    p = judge.probabilities(referee, quick_data.x_test[:10])
    assert torch.allclose(p.sum(1), torch.ones(10, dtype=torch.float64))


def test_the_same_seed_gives_the_same_judge(quick_data, tmp_path):
    first = judge.train_judge(small(quick_data), epochs=1, seed=3, checkpoint=tmp_path / "a.pt")
    second = judge.train_judge(small(quick_data), epochs=1, seed=3, checkpoint=tmp_path / "b.pt")
    other = judge.train_judge(small(quick_data), epochs=1, seed=4, checkpoint=tmp_path / "c.pt")
    for (name, a), b in zip(first.state_dict().items(), second.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    assert not torch.equal(first.head.weight, other.head.weight)


def test_a_cached_judge_is_reused_and_one_of_another_data_set_is_refused(quick_data, tmp_path):
    path = tmp_path / "judge.pt"
    trained = judge.train_judge(small(quick_data), epochs=1, checkpoint=path)
    cached = judge.train_judge(small(quick_data), epochs=1, checkpoint=path)
    assert torch.equal(trained.head.weight, cached.head.weight)
    renamed = dataclasses.replace(small(quick_data), name="Fashion-MNIST")
    with pytest.raises(ValueError, match="other settings.*dataset: 'MNIST' in the checkpoint, 'Fashion-MNIST' now"):
        judge.train_judge(renamed, epochs=1, checkpoint=path)


def test_judging_images_of_another_data_set_is_refused():
    with pytest.raises(ValueError, match="trained on MNIST, but the images are measured against Fashion-MNIST"):
        judge.check_same_dataset(judge.Judge(dataset="MNIST"), "Fashion-MNIST")
