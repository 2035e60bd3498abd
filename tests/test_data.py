"""genmodels.data: reading, finding, downloading (loopback only), verifying, profiles' data and fallbacks."""

import os
import re
import shutil
import socket
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import REPO, fake_split, mnist_test_dir, write_idx

from genmodels import data


def test_read_idx_gzipped_and_plain_agree(tmp_path):
    array = np.random.default_rng(0).integers(0, 256, (5, 28, 28))
    gz = data.read_idx(write_idx(tmp_path / "a.gz", array))
    plain = data.read_idx(write_idx(tmp_path / "a", array, gz=False))
    assert gz.dtype == np.uint8 and np.array_equal(gz, array) and np.array_equal(plain, array)


def test_real_mnist_test_split_is_verified_and_scaled_to_unit_interval():
    directory = mnist_test_dir()
    for spec in data.FILES["mnist"]["test"]:
        assert data.check_idx_file(directory / f"{spec.name}.gz", spec) is True  # decompressed md5 matches
    x, y = data.load_split("mnist", "test", data_dir=directory, download_missing=False)
    assert x.shape == (10000, 28, 28) and x.dtype == np.float32 and y.dtype == np.int64
    assert x.min() == 0.0 and x.max() == 1.0
    assert set(np.unique(y)) == set(range(10))


@pytest.mark.parametrize(
    "raw, message",
    [
        (b"\x00\x00\x08", "too short"),
        (b"\x12\x34\x08\x03" + bytes(12), "not an unsigned-byte IDX"),
        (b"\x00\x00\x08\x01\x00\x00\x00\x0a" + bytes(5), r"says \(10,\), i.e. 18 bytes, but the file has 13"),
    ],
)
def test_parse_idx_rejects_bad_headers_with_a_clear_message(raw, message):
    with pytest.raises(data.CorruptFileError, match=message):
        data.parse_idx(raw)


def test_truncated_gzip_is_reported_corrupt(tmp_path):
    path = write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.zeros(10000))
    path.write_bytes(path.read_bytes()[:-20])
    with pytest.raises(data.CorruptFileError, match="not a complete gzip file"):
        data.check_idx_file(path, data.FILES["mnist"]["test"][1])


def test_header_only_check_rejects_a_wrong_count(tmp_path):
    path = write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.zeros(99))
    with pytest.raises(data.CorruptFileError, match=r"shape \(99,\), expected \(10000,\)"):
        data.check_idx_file(path, data.FILES["mnist"]["test"][1])


def test_fixed_binarisation_thresholds_numpy_and_torch():
    x = np.array([0.0, 0.3, 0.5, 0.51, 1.0], dtype=np.float32)
    assert data.binarize(x).tolist() == [0, 0, 0, 1, 1]
    assert data.binarize(torch.from_numpy(x), threshold=0.25).tolist() == [0, 1, 1, 1, 1]


def test_stochastic_binarisation_is_repeatable_with_a_seed_and_unbiased():
    x = np.full((200, 28, 28), 0.3, dtype=np.float32)
    a, b, c = data.binarize_stochastic(x, seed=1), data.binarize_stochastic(x, seed=1), data.binarize_stochastic(x, 2)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert set(np.unique(a)) == {0.0, 1.0}
    # mean of 156,800 Bernoulli(0.3): standard error 0.0012; 5 standard errors
    assert abs(a.mean() - 0.3) < 5 * np.sqrt(0.3 * 0.7 / a.size)
    t = data.binarize_stochastic(torch.from_numpy(x), seed=1)
    assert torch.equal(t, data.binarize_stochastic(torch.from_numpy(x), seed=1))
    assert abs(t.mean().item() - 0.3) < 5 * np.sqrt(0.3 * 0.7 / t.numel())


def test_binary_vectors_flatten_each_split_and_binarise_it_once_with_the_course_seed():
    rng = np.random.default_rng(3)
    dataset = data.Data("grey", rng.random((30, 28, 28), dtype=np.float32), np.zeros(30), rng.random((7, 28, 28),
                        dtype=np.float32), np.zeros(7), ["0"])
    x_train, x_test = data.binary_vectors(dataset)
    assert x_train.shape == (30, 784) and x_test.shape == (7, 784)
    assert np.array_equal(x_train, data.binarize_once(dataset.x_train).reshape(30, 784))
    assert np.array_equal(x_test, data.binarize_stochastic(dataset.x_test.reshape(7, 784), seed=data.BINARIZE_SEED))
    assert set(np.unique(x_train)) == {0.0, 1.0}


def _label_of_first(directory):
    return int(data.read_idx(directory / "t10k-labels-idx1-ubyte.gz")[0])


def test_search_order_caller_then_env_then_cache_then_debian(isolated_data, tmp_path, monkeypatch):
    dirs = {name: fake_split(tmp_path / name / "fashion-mnist", "test", seed=seed)
            for seed, name in enumerate(["caller", "env_b", "cache", "debian"])}
    fake_split(tmp_path / "env_a" / "fashion-mnist", "test", seed=9)
    dirs["env_a"] = tmp_path / "env_a" / "fashion-mnist"
    shutil.move(dirs["cache"], isolated_data / "fashion-mnist")
    dirs["cache"] = isolated_data / "fashion-mnist"
    monkeypatch.setattr(data, "DEBIAN_DIRS", {"fashion-mnist": dirs["debian"]})
    monkeypatch.setenv("GENMODELS_DATA", os.pathsep.join([str(tmp_path / "env_a"), str(tmp_path / "env_b")]))
    warnings.simplefilter("ignore")  # synthetic files cannot be verified by checksum

    def found(**kwargs):
        return data.locate("fashion-mnist", "test", download_missing=False, **kwargs)[0].parent

    assert found(data_dir=tmp_path / "caller") == dirs["caller"]
    assert found() == dirs["env_a"]
    shutil.rmtree(dirs["env_a"])
    assert found() == dirs["env_b"]
    monkeypatch.delenv("GENMODELS_DATA")
    assert found() == dirs["cache"]
    shutil.rmtree(dirs["cache"])
    assert found() == dirs["debian"]


def test_a_split_needs_both_its_files(isolated_data, tmp_path):
    directory = fake_split(tmp_path / "fashion-mnist", "test")
    (directory / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(data.DataNotFoundError, match="t10k-labels-idx1-ubyte.gz"):
        data.locate("fashion-mnist", "test", data_dir=tmp_path, download_missing=False)


@pytest.fixture
def mnist_mirror(isolated_data, file_server, monkeypatch):
    """The real MNIST test files served from loopback, the one mirror data.MIRRORS lists for mnist (in place of
    isolated_data's closed port); gives (the served folder, the list of requested paths)."""
    root, url, requests = file_server
    for spec in data.FILES["mnist"]["test"]:
        shutil.copy(mnist_test_dir() / f"{spec.name}.gz", root / f"{spec.name}.gz")
    monkeypatch.setattr(data, "MIRRORS", {"mnist": [url]})
    return root, requests


def test_download_from_loopback_mirror_is_verified_and_cached(isolated_data, mnist_mirror):
    _, requests = mnist_mirror
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # verified by checksum: no "could not be verified" warning
        x, y = data.load_split("mnist", "test", progress=False)
    assert x.shape == (10000, 28, 28) and len(y) == 10000
    assert sorted(requests) == ["/t10k-images-idx3-ubyte.gz", "/t10k-labels-idx1-ubyte.gz"]
    assert sorted(p.name for p in (isolated_data / "mnist").iterdir()) == [
        "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]  # no temporary files left
    data.load_split("mnist", "test", progress=False)
    assert len(requests) == 2  # the second load reads the cache


def test_unverifiable_download_is_accepted_with_a_warning(isolated_data, file_server, monkeypatch):
    root, url, _ = file_server
    fake_split(root, "test")
    monkeypatch.setattr(data, "MIRRORS", {"fashion-mnist": [url]})
    with pytest.warns(UserWarning, match="could not be verified"):
        data.load_split("fashion-mnist", "test", progress=False)


def test_corrupt_download_is_rejected_and_nothing_is_written(isolated_data, mnist_mirror):
    root, _ = mnist_mirror
    images = root / "t10k-images-idx3-ubyte.gz"
    images.write_bytes(images.read_bytes()[: len(images.read_bytes()) // 2])
    with pytest.raises(data.DataNotFoundError, match="not a complete gzip file"):
        data.load_split("mnist", "test", progress=False)
    assert not (isolated_data / "mnist" / "t10k-images-idx3-ubyte.gz").exists()
    assert [p.name for p in (isolated_data / "mnist").iterdir() if p.name.startswith(".")] == []


def test_corrupt_cached_file_is_fetched_again(isolated_data, mnist_mirror):
    root, requests = mnist_mirror
    cached = isolated_data / "mnist"
    cached.mkdir(parents=True)
    for spec in data.FILES["mnist"]["test"]:
        shutil.copy(root / f"{spec.name}.gz", cached / f"{spec.name}.gz")
    truncated = cached / "t10k-images-idx3-ubyte.gz"
    truncated.write_bytes(truncated.read_bytes()[:1000])
    with pytest.warns(UserWarning, match="removed a corrupt cached file"):
        x, _ = data.load_split("mnist", "test", progress=False)
    assert requests == ["/t10k-images-idx3-ubyte.gz"] and x.shape == (10000, 28, 28)


@pytest.mark.filterwarnings("ignore:.*could not be verified")
def test_corrupt_file_outside_the_cache_is_skipped_not_deleted(isolated_data, tmp_path):
    directory = fake_split(tmp_path / "mine" / "fashion-mnist", "test")
    labels = directory / "t10k-labels-idx1-ubyte.gz"
    labels.write_bytes(b"garbage")
    with pytest.warns(UserWarning, match="skipping a corrupt file"), pytest.raises(data.DataNotFoundError):
        data.locate("fashion-mnist", "test", data_dir=tmp_path / "mine")
    assert labels.read_bytes() == b"garbage"


def test_interrupted_transfer_leaves_no_partial_file(isolated_data, monkeypatch):
    """A server that promises 1 MB, sends 100 bytes and hangs up."""
    server = socket.create_server(("127.0.0.1", 0))

    def serve():
        for _ in range(2):
            conn, _ = server.accept()
            conn.recv(4096)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n" + bytes(100))
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    monkeypatch.setattr(data, "MIRRORS", {"mnist": [f"http://127.0.0.1:{server.getsockname()[1]}/"]})
    with pytest.raises(data.DataNotFoundError):
        data.load_split("mnist", "test", progress=False, timeout=2)
    server.close()
    assert list((isolated_data / "mnist").iterdir()) == []


def test_closed_port_fails_at_once_and_says_where_to_put_the_files(isolated_data):
    start = time.perf_counter()
    with pytest.raises(data.DataNotFoundError) as info:
        data.load_split("mnist", "test", progress=False)
    assert time.perf_counter() - start < 5
    message = str(info.value)
    assert "GENMODELS_DATA" in message and str(isolated_data / "mnist") in message and "refused" in message


@pytest.fixture
def silent_mirrors():
    """silent_mirrors(n): n loopback URLs whose servers accept connections and never answer (offline as a captive
    portal or a dead proxy leaves a download)."""
    servers, held = [], []

    def make(n: int) -> list[str]:
        for _ in range(n):
            server = socket.create_server(("127.0.0.1", 0))
            threading.Thread(target=lambda s=server: held.extend(s.accept() for _ in range(3)), daemon=True).start()
            servers.append(server)
        return [f"http://127.0.0.1:{s.getsockname()[1]}/" for s in servers[-n:]]

    yield make
    for server in servers:
        server.close()


def test_a_silent_server_times_out_and_is_not_asked_twice(isolated_data, monkeypatch, silent_mirrors):
    """A loopback listener that accepts connections and never answers: the read timeout gives up."""
    monkeypatch.setattr(data, "MIRRORS", {"mnist": silent_mirrors(1)})
    start = time.perf_counter()
    with pytest.raises(data.DataNotFoundError, match="timed out"):
        data.load_split("mnist", "test", progress=False, timeout=0.5)
    assert time.perf_counter() - start < 3  # one timeout, not one per file


def test_two_silent_mirrors_share_one_timeout(isolated_data, monkeypatch, silent_mirrors):
    """The README's promise, offline a data set gives up within the timeout, holds with every mirror silent: the
    second mirror gets what the first left of the time (here nothing), not a timeout of its own."""
    monkeypatch.setattr(data, "MIRRORS", {"mnist": silent_mirrors(2)})
    start = time.perf_counter()
    with pytest.raises(data.DataNotFoundError, match="had run out"):
        data.load_split("mnist", "test", progress=False, timeout=2)
    assert time.perf_counter() - start < 3.5  # one 2 s timeout in all; each mirror its own would be 4 s and more


def test_offline_the_full_profile_waits_one_timeout_per_data_set(isolated_data, monkeypatch, silent_mirrors):
    """The README: offline, the full profile (MNIST, then Fashion-MNIST, then the bundled digits) waits about twice
    the timeout, one for each data set's mirrors, and not again for their test splits."""
    monkeypatch.setattr(data, "MIRRORS", {"mnist": silent_mirrors(2), "fashion-mnist": silent_mirrors(2)})
    monkeypatch.setattr(data, "load_digits_28x28", lambda: (np.zeros((1797, 28, 28)), np.zeros(1797)))  # not timed
    start = time.perf_counter()
    assert data.load_data("full", timeout=1, verbose=False).name.startswith("scikit-learn digits")
    assert time.perf_counter() - start < 3.5  # 2 × 1 s; a timeout per mirror would be 4 s, one per file 8 s


def test_the_readme_states_the_offline_wait_of_data_timeout_s():
    readme = " ".join((REPO / "README.md").read_text().split())
    waits = re.search(r"gives up within about (\d+) s \(`genmodels.data.TIMEOUT_S`\).*? within about (\d+) s", readme)
    assert waits and [float(w) for w in waits.groups()] == [data.TIMEOUT_S, 2 * data.TIMEOUT_S], waits


def test_quick_profile_never_falls_back(isolated_data):
    with pytest.raises(data.DataNotFoundError, match="(?s)quick profile needs MNIST.s test split.*GENMODELS_DATA"):
        data.load_data("quick")


def test_quick_profile_trains_on_the_first_8000_and_evaluates_on_the_last_2000(isolated_data, monkeypatch):
    monkeypatch.setenv("GENMODELS_DATA", str(mnist_test_dir().parent))
    d = data.load_data("quick", verbose=False)
    x, y = data.load_split("mnist", "test")
    assert d.name == "MNIST" and d.x_train.shape == (8000, 28, 28) and d.x_test.shape == (2000, 28, 28)
    assert np.array_equal(d.x_train, x[:8000]) and np.array_equal(d.y_test, y[8000:])


def full_profile_finding_only(name, data_dir, monkeypatch):
    """load_data("full") when GENMODELS_DATA holds one data set, `name`: synthetic training and test splits."""
    fake_split(data_dir / name, "train", seed=1)
    fake_split(data_dir / name, "test", seed=2)
    monkeypatch.setenv("GENMODELS_DATA", str(data_dir))
    with pytest.warns(UserWarning):  # synthetic files: header checked, content not verifiable
        return data.load_data("full")


def test_full_profile_uses_mnist_when_its_training_split_is_present(isolated_data, tmp_path, monkeypatch, capsys):
    d = full_profile_finding_only("mnist", tmp_path, monkeypatch)
    assert d.name == "MNIST" and d.x_train.shape == (60000, 28, 28) and d.note == ""
    assert capsys.readouterr().out == ""


def test_full_profile_falls_back_to_fashion_mnist_with_a_one_line_notice(isolated_data, tmp_path, monkeypatch, capsys):
    d = full_profile_finding_only("fashion-mnist", tmp_path, monkeypatch)
    assert d.name == "Fashion-MNIST" and d.x_train.shape == (60000, 28, 28) and d.classes[0] == "T-shirt"
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "using Fashion-MNIST" in out


def test_full_profile_falls_back_to_sklearn_digits_last(isolated_data, capsys):
    d = data.load_data("full")
    assert d.name.startswith("scikit-learn digits")
    assert d.x_train.shape == (1500, 28, 28) and d.x_test.shape == (297, 28, 28)
    assert d.x_train.dtype == np.float32 and 0 <= d.x_train.min() and d.x_train.max() <= 1
    assert d.x_train[:, :4].max() == 0 and d.x_train[:, :, -4:].max() == 0  # blank frame, like MNIST
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "8x8 digits" in out


def test_unknown_dataset_or_split_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown dataset 'cifar'"):
        data.locate("cifar", "train")
    with pytest.raises(ValueError, match="unknown split 'validation'"):
        data.locate("mnist", "validation")


DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")


def test_shipped_mirrors_are_https():
    urls = [url for mirrors in data.MIRRORS.values() for url in mirrors]
    assert urls and all(url.startswith("https://") for url in urls), urls
    assert data.MIRRORS["fashion-mnist"] == [
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/"]


def test_every_file_has_a_sha256_of_its_decompressed_bytes_except_mnist_training_images():
    for dataset, splits in data.FILES.items():
        for specs in splits.values():
            for spec in specs:
                if (dataset, spec.name) == ("mnist", "train-images-idx3-ubyte"):  # on no machine here: the .gz md5
                    assert spec.raw_sha256 == () and spec.gz_md5 == ("f68b3c2dcbeaaa9fbdd348bbdeb94873",)
                else:
                    assert len(spec.raw_sha256) == 1 and len(spec.raw_sha256[0]) == 64 and spec.gz_md5 == ()


def test_real_mnist_verifies_in_any_gzip_wrapper_and_one_changed_byte_does_not(tmp_path):
    import gzip

    spec = data.FILES["mnist"]["test"][1]
    raw = gzip.decompress((mnist_test_dir() / f"{spec.name}.gz").read_bytes())
    rewrapped = tmp_path / f"{spec.name}.gz"
    rewrapped.write_bytes(gzip.compress(raw, compresslevel=1))
    assert data.check_idx_file(rewrapped, spec) is True
    (tmp_path / spec.name).write_bytes(raw)
    assert data.check_idx_file(tmp_path / spec.name, spec) is True  # decompressed, no .gz at all
    changed = bytearray(raw)
    changed[100] = (changed[100] + 1) % 10  # still a valid label file, with one label changed
    rewrapped.write_bytes(gzip.compress(bytes(changed)))
    assert data.check_idx_file(rewrapped, spec) is False  # header only: not verified


@pytest.mark.skipif(not DEBIAN_FASHION.is_dir(), reason="needs Debian's dataset-fashion-mnist")
def test_debian_fashion_mnist_is_verified_by_sha256():
    for split in ("train", "test"):
        for spec in data.FILES["fashion-mnist"][split]:
            assert data.check_idx_file(DEBIAN_FASHION / f"{spec.name}.gz", spec) is True


def test_a_data_dir_that_does_not_exist_is_a_clear_error(isolated_data, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"data_dir='shared/data' does not exist; relative paths are taken from "
                       rf"the current directory, {tmp_path}, so it means {tmp_path}/shared/data"):
        data.load_split("mnist", "test", data_dir="shared/data", progress=False)


def test_a_genmodels_data_entry_that_does_not_exist_is_named(isolated_data, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GENMODELS_DATA", "../shared/data")
    with pytest.raises(data.DataNotFoundError, match=r"The GENMODELS_DATA entry '../shared/data' does not exist; "
                       r"relative paths are taken from the current directory"):
        data.load_split("mnist", "test", progress=False)
