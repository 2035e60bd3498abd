"""The judge: trained in the quick profile it reads MNIST's held-out digits, the same seed gives the same network at
any thread count and from a checkpoint another run wrote, the lecture and notebook 08 print one judge, and its
checkpoint refuses another data set."""

import contextlib
import dataclasses
import json
import re

import pytest
import torch
from conftest import REPO, mnist_test_dir

from genmodels import data, judge

QUICK_ACCURACY = 0.95  # 5 epochs on the quick profile's 8,000 images reach 97.6 % on the other 2,000 (seed 0)


@pytest.fixture(scope="module")
def quick_data():
    mnist_test_dir()  # skips (or fails on CI) without the MNIST test files
    return data.load_data("quick")


def small(dataset, n=1000):
    return dataclasses.replace(dataset, x_train=dataset.x_train[:n], y_train=dataset.y_train[:n])


@contextlib.contextmanager
def threads(n):
    """torch's thread count n inside the block (a test worker of `make test` has 1, a notebook on 2 cores 2)."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def assert_same_weights(a, b):
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(x, y), name


def test_judge_trained_in_the_quick_profile_reads_held_out_digits(quick_data, tmp_path):
    referee = judge.train_judge(quick_data, checkpoint=tmp_path / "judge.pt")
    assert judge.accuracy(referee, quick_data.x_test, quick_data.y_test) >= QUICK_ACCURACY
    features = judge.features(referee, quick_data.x_test[:10])
    assert features.shape == (10, judge.N_FEATURES) and features.dtype == torch.float64
    p = judge.probabilities(referee, quick_data.x_test[:10])
    with torch.no_grad():
        logits = referee(torch.as_tensor(quick_data.x_test[:10]).reshape(10, 1, 28, 28)).double()
    shift = p.log() - logits  # p(y|x) = softmax(logits): log p - logits is -log Σ exp(logits), one value per row
    assert torch.allclose(shift, shift[:, :1].expand(-1, 10), rtol=0, atol=1e-9)  # float64 rounding of log and exp


def test_the_same_seed_gives_the_same_judge_at_any_thread_count(quick_data, tmp_path):
    """Trained by a process with 2 threads and by one with 1 (a notebook on 2 cores and a test worker of `make test`):
    bit for bit the same weights; another seed, other weights."""
    with threads(2):
        first = judge.train_judge(small(quick_data), epochs=1, seed=3, checkpoint=tmp_path / "a.pt")
    with threads(1):
        second = judge.train_judge(small(quick_data), epochs=1, seed=3, checkpoint=tmp_path / "b.pt")
    other = judge.train_judge(small(quick_data), epochs=1, seed=4, checkpoint=tmp_path / "c.pt")
    assert_same_weights(first, second)
    assert not torch.equal(first.head.weight, other.head.weight)


def test_a_judge_resumed_from_another_runs_checkpoint_is_the_judge_trained_at_once(quick_data, tmp_path):
    """One run (2 threads) caches the judge after epoch 1, another (1 thread) resumes it to epoch 2: the judge a run
    trains in one go, whichever of the notebooks sharing the cache got there first."""
    with threads(2):
        judge.train_judge(small(quick_data), epochs=1, checkpoint=tmp_path / "shared.pt")
    with threads(1):
        resumed = judge.train_judge(small(quick_data), epochs=2, checkpoint=tmp_path / "shared.pt")
    assert_same_weights(resumed, judge.train_judge(small(quick_data), epochs=2, checkpoint=tmp_path / "alone.pt"))


def test_reading_a_cached_judge_leaves_the_global_generator_as_it_was(quick_data, tmp_path):
    """The checkpoint holds the writer's random state; a notebook that reads the judge draws on as if it had trained
    it (its later draws do not depend on who wrote the cache)."""
    torch.manual_seed(1)
    judge.train_judge(small(quick_data), epochs=1, checkpoint=tmp_path / "judge.pt")
    torch.manual_seed(2)
    before = torch.get_rng_state()
    judge.train_judge(small(quick_data), epochs=1, checkpoint=tmp_path / "judge.pt")
    assert torch.equal(torch.get_rng_state(), before)


def printed(notebook: str) -> str:
    """Everything a committed notebook's cells printed, as one text."""
    cells = json.loads((REPO / notebook).read_text())["cells"]
    return "\n".join("".join(output.get("text", "")) for cell in cells for output in cell.get("outputs", []))


def test_the_lecture_and_notebook_08_print_one_judge_and_one_floor():
    """Same seed, same data, same judge: the committed outputs of the lecture and of 08 (quick profile) print the same
    test accuracy (08 to two decimals, the lecture to one) and the same floor row, N = 1,000 training images per
    seed against the same 1,000 test images (FD mean ± sd, precision, recall, score: the columns both show)."""
    lecture, yardstick = printed("week13/week13.ipynb"), printed("notebooks/08_yardstick.ipynb")
    accuracy = re.search(r"judge: ([\d.]+)% test accuracy", lecture).group(1)
    accuracy_08 = re.search(r"the judge's test accuracy on MNIST: ([\d.]+)%", yardstick).group(1)
    assert accuracy == f"{float(accuracy_08):.1f}"
    floor, floor_08 = (re.search(r"^training images \(floor\) +(.+)$", text, re.M).group(1).split()
                       for text in (lecture, yardstick))
    assert floor == floor_08[:len(floor)] and len(floor) == 6  # FD, ±, sd, precision, recall, score


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


# Notebook 08's model rows, which must cover at least MIN_CLASSES classes in the committed quick-profile table. A row
# may be listed in EXEMPT only with its measured figure and the reason (an issue that reported its target missed).
MODEL_ROWS = ("RBM p(v|h)", "EBM from noise", "EBM replay buffer", "MLP VAE means", "MLP VAE binary", "conv VAE means")
MIN_CLASSES = 8
EXEMPT: dict[str, str] = {}


def classes_by_row(table: str) -> dict[str, float]:
    """The "classes" column of measures.format_table's text: the fifth number after the FD's mean ± sd."""
    lines = table.splitlines()
    start = next(i for i, line in enumerate(lines) if "FD (mean ± sd)" in line)
    header, body = lines[start], lines[start + 2:]
    rows = {}
    for line in body[:next((i for i, line in enumerate(body) if not line.strip() or line.startswith("N = ")),
                           len(body))]:  # the table ends at its footnote, "N = 1,000 per row, ..."
        name = next((row for row in MODEL_ROWS if line.startswith(row + " ")), None)
        if name is not None:
            fields = line[len(name):].split()  # FD, ±, sd, precision, recall, score, classes, NN ratio, ...
            rows[name] = float(fields[6])
    assert "classes" in header and len(rows) == len(MODEL_ROWS), f"08's table lacks rows: {sorted(rows)}"
    return rows


def test_every_model_row_of_notebook_08_covers_most_classes():
    """No model figure committed untrained: each model row of 08's quick table has samples the judge puts in at least
    eight classes."""
    classes = classes_by_row(printed("notebooks/08_yardstick.ipynb"))
    few = {row: n for row, n in classes.items() if n < MIN_CLASSES and row not in EXEMPT}
    assert not few, (f"notebook 08's committed table: rows covering fewer than {MIN_CLASSES} classes: {few}; train "
                     "the model longer in its quick profile (genmodels.runs) and re-execute its notebook and 08")


def test_the_guard_reads_the_classes_column():
    table = ("                   FD (mean ± sd)   precision  recall  score  classes  NN ratio\n" + "-" * 80 + "\n"
             + "".join(f"{row:20s} 114.2 ± 3.9   0.661   0.362   7.61   {c:.1f}   0.91\n"
                       for row, c in zip(MODEL_ROWS, (9, 9.3, 10, 6, 6, 2), strict=True))
             + "N = 1,000 per row\nconv VAE means   FD at N = [500, 2000]\n")
    assert classes_by_row(table) == dict(zip(MODEL_ROWS, (9, 9.3, 10, 6, 6, 2), strict=True))
