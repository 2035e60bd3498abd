"""MNIST and Fashion-MNIST from their IDX files: find, download, verify, read, binarise.  Taught in 00_data_and_setup.

A split (train or test) is present when both its image and label files are. They are looked for, in order, in
a directory passed by the caller, the directories listed in GENMODELS_DATA (each may hold `mnist/` and
`fashion-mnist/`), the repository's `data/` cache and Debian's `/usr/share/datasets/fashion-mnist`; failing that they
are downloaded from the official mirrors into the cache.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import os
import struct
import tempfile
import time
import urllib.error
import urllib.request
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .paths import DATA_CACHE
from .profiles import Profile, get_profile

__all__ = ["load_data", "Data", "load_split", "locate", "download", "read_idx", "parse_idx", "check_idx_file",
           "search_dirs", "load_digits_28x28", "IdxFile", "DataNotFoundError", "CorruptFileError", "binarize",
           "binarize_stochastic", "binarize_once", "binary_vectors", "BINARIZE_SEED", "CACHE_DIR", "DEBIAN_DIRS",
           "MIRRORS", "TIMEOUT_S", "NAMES", "CLASSES", "FILES"]

CACHE_DIR = DATA_CACHE
DEBIAN_DIRS = {"fashion-mnist": Path("/usr/share/datasets/fashion-mnist")}

MIRRORS = {  # https only: a file fetched in the clear could be altered on the way (the checksums below catch that)
    "mnist": [
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    ],
    # Zalando's official mirror (fashion-mnist.s3-website...) is http only; their GitHub repository serves the same
    # four files over https.
    "fashion-mnist": ["https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/"],
}
TIMEOUT_S = 10.0  # the wait for a data set's mirrors, all together: offline, nothing waits longer than this

NAMES = {"mnist": "MNIST", "fashion-mnist": "Fashion-MNIST", "digits": "scikit-learn digits (8x8, resized)"}
CLASSES = {
    "mnist": [str(i) for i in range(10)],
    "fashion-mnist": ["T-shirt", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Boot"],
}


@dataclass(frozen=True)
class IdxFile:
    """One IDX file, with what is known of its checksums (../shared/data/README.md)."""

    name: str  # file name without ".gz"
    count: int
    raw_sha256: tuple[str, ...] = ()  # SHA-256 of the decompressed bytes (any .gz wrapper, or none, verifies)
    gz_md5: tuple[str, ...] = ()  # MD5 of the original .gz as the mirrors serve it, where nothing better is known

    @property
    def is_images(self):
        return "images" in self.name

    @property
    def nbytes(self):
        return 16 + self.count * 28 * 28 if self.is_images else 8 + self.count


def _mnist_layout(train_images: dict, train_labels: dict, test_images: dict, test_labels: dict) -> dict:
    """A data set's splits in MNIST's layout, which Fashion-MNIST copies: the same four IDX files, 60,000 training and
    10,000 test images with their labels. Each argument holds that file's known checksums (IdxFile's keywords)."""
    return {
        "train": (IdxFile("train-images-idx3-ubyte", 60000, **train_images),
                  IdxFile("train-labels-idx1-ubyte", 60000, **train_labels)),
        "test": (IdxFile("t10k-images-idx3-ubyte", 10000, **test_images),
                 IdxFile("t10k-labels-idx1-ubyte", 10000, **test_labels)),
    }


# SHA-256 of the decompressed bytes, computed from ../shared/data/mnist and Debian's dataset-fashion-mnist, whose
# decompressed MD5s (../shared/data/README.md) show them to be the originals. MNIST's training images are on no
# machine here: for them only the widely published MD5 of the original .gz is known, so a recompressed copy of that
# one file can be checked by its header only.
FILES = {
    "mnist": _mnist_layout(
        train_images={"gz_md5": ("f68b3c2dcbeaaa9fbdd348bbdeb94873",)},
        train_labels={"raw_sha256": ("65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",)},
        test_images={"raw_sha256": ("0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",)},
        test_labels={"raw_sha256": ("ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",)},
    ),
    "fashion-mnist": _mnist_layout(
        train_images={"raw_sha256": ("c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",)},
        train_labels={"raw_sha256": ("bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",)},
        test_images={"raw_sha256": ("5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",)},
        test_labels={"raw_sha256": ("0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",)},
    ),
}


class DataNotFoundError(FileNotFoundError):
    """A dataset split could be neither found on disk nor downloaded."""


class CorruptFileError(ValueError):
    """An IDX file is truncated, not gzip, or has the wrong header."""


# --- reading and checking IDX files -------------------------------------------------------------------------------


def _read_bytes(path: Path, gz: bool) -> bytes:
    raw = path.read_bytes()
    if gz:
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as err:
            raise CorruptFileError(f"{path}: not a complete gzip file ({err})") from err
    return raw


def parse_idx(raw: bytes, source="IDX data") -> np.ndarray:
    """Decode IDX bytes (big-endian header: magic 0x0000080D, then one uint32 per dimension) into a uint8 array."""
    if len(raw) < 4:
        raise CorruptFileError(f"{source}: {len(raw)} bytes is too short for an IDX header")
    zero, dtype_code, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype_code != 0x08 or ndim not in (1, 3):
        raise CorruptFileError(f"{source}: not an unsigned-byte IDX file (magic {raw[:4].hex()})")
    header = 4 + 4 * ndim
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    expected = header + int(np.prod(shape))
    if len(raw) != expected:
        raise CorruptFileError(f"{source}: header says {shape}, i.e. {expected} bytes, but the file has {len(raw)}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def check_idx_file(path: Path, spec: IdxFile, gz: bool | None = None) -> bool:
    """Raise CorruptFileError unless `path` holds `spec`; return True if a checksum verified it, False if only the
    header could be checked (the rule of ../shared/data/README.md). `gz` defaults to the file's suffix."""
    gz = path.suffix == ".gz" if gz is None else gz
    if gz and spec.gz_md5 and hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest() in spec.gz_md5:
        return True
    raw = _read_bytes(path, gz)
    if hashlib.sha256(raw).hexdigest() in spec.raw_sha256:
        return True
    array = parse_idx(raw, source=str(path))
    expected = (spec.count, 28, 28) if spec.is_images else (spec.count,)
    if array.shape != expected:
        raise CorruptFileError(f"{path}: holds an array of shape {array.shape}, expected {expected}")
    return False


def read_idx(path) -> np.ndarray:
    """Read an IDX file, gzipped or not, into a uint8 array."""
    path = Path(path)
    return parse_idx(_read_bytes(path, path.suffix == ".gz"), source=str(path))


# --- finding and downloading --------------------------------------------------------------------------------------


def _find_file(directory: Path, spec: IdxFile) -> Path | None:
    for candidate in (directory / f"{spec.name}.gz", directory / spec.name):
        if candidate.is_file():
            return candidate
    return None


def search_dirs(dataset: str, data_dir=None) -> list[Path]:
    """The directories looked in for `dataset`, in order. A `data_dir` that does not exist is an error (a mistyped or
    relative path would otherwise be passed over in silence)."""
    dirs = []
    if data_dir is not None:
        if not Path(data_dir).expanduser().is_dir():
            raise FileNotFoundError(f"data_dir={str(data_dir)!r} {_resolved(data_dir)}: pass the "
                                    f"directory that holds {dataset}/ or the IDX files themselves, or leave data_dir "
                                    "out to use GENMODELS_DATA and the cache")
        data_dir = Path(data_dir).expanduser()
        dirs += [Path(data_dir) / dataset, Path(data_dir)]
    for entry in os.environ.get("GENMODELS_DATA", "").split(os.pathsep):
        if entry:
            dirs.append(Path(entry).expanduser() / dataset)
    dirs.append(CACHE_DIR / dataset)
    if dataset in DEBIAN_DIRS:
        dirs.append(DEBIAN_DIRS[dataset])
    return dirs


def download(url: str, dest: Path, spec: IdxFile, timeout: float = TIMEOUT_S, progress: bool = True) -> bool:
    """Fetch `url` into `dest` atomically (a temporary file, checked, then renamed); return whether a checksum
    verified it. A failed or corrupt download leaves nothing behind."""
    from tqdm.auto import tqdm

    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=dest.name, disable=not progress, leave=False) as bar:
                while chunk := response.read(1 << 16):
                    out.write(chunk)
                    bar.update(len(chunk))
            out.flush()
            os.fsync(out.fileno())
        verified = check_idx_file(tmp, spec, gz=dest.suffix == ".gz")
        os.replace(tmp, dest)
        return verified
    finally:
        tmp.unlink(missing_ok=True)


_unreachable: set[str] = set()  # mirrors that failed to answer in this process: not asked again


def _fetch(dataset: str, spec: IdxFile, timeout: float, progress: bool) -> Path:
    """The file from the first mirror that answers. `timeout` bounds the wait for all mirrors together: a mirror left
    unasked when it runs out counts as unreachable, so that offline a data set gives up within `timeout`."""
    dest = CACHE_DIR / dataset / f"{spec.name}.gz"
    errors = []
    deadline = time.monotonic() + timeout
    for mirror in MIRRORS[dataset]:
        if mirror in _unreachable:
            errors.append(f"{mirror}: unreachable earlier in this session")
            continue
        left = deadline - time.monotonic()
        if left <= 0:
            _unreachable.add(mirror)
            errors.append(f"{mirror}: not asked, the {timeout:g} s for downloads had run out")
            continue
        try:
            if not download(mirror + spec.name + ".gz", dest, spec, timeout=left, progress=progress):
                warnings.warn(f"{dest}: downloaded from {mirror}; header is right but the content could not be "
                              "verified by checksum", stacklevel=3)
            return dest
        except (urllib.error.URLError, http.client.HTTPException, OSError) as err:
            if not isinstance(err, urllib.error.HTTPError):
                _unreachable.add(mirror)
            errors.append(f"{mirror}: {getattr(err, 'reason', err)}")
        except CorruptFileError as err:
            errors.append(f"{mirror}: {err}")
    raise DataNotFoundError(f"could not download {spec.name}.gz: " + "; ".join(errors))


def locate(dataset: str, split: str, data_dir=None, download_missing=True, timeout=TIMEOUT_S, progress=True):
    """Paths of the (images, labels) files of a split, found on disk or downloaded into the cache."""
    if dataset not in FILES:
        raise ValueError(f"unknown dataset {dataset!r}; choose one of {sorted(FILES)}")
    if split not in ("train", "test"):
        raise ValueError(f"unknown split {split!r}; choose 'train' or 'test'")
    specs = FILES[dataset][split]
    for directory in search_dirs(dataset, data_dir):
        found = [_find_file(directory, spec) for spec in specs]
        if all(found) and all(_usable(path, spec) for path, spec in zip(found, specs, strict=True)):
            return tuple(found)
    if not download_missing:
        raise DataNotFoundError(_missing_message(dataset, split, data_dir))
    try:
        paths = []
        for spec in specs:
            found = _find_file(CACHE_DIR / dataset, spec)
            if found is None or not _usable(found, spec):
                found = _fetch(dataset, spec, timeout, progress)
            paths.append(found)
        return tuple(paths)
    except DataNotFoundError as err:
        raise DataNotFoundError(f"{_missing_message(dataset, split, data_dir)}\nDownload failed: {err}") from None


def _usable(path: Path, spec: IdxFile) -> bool:
    """Check a file on disk; a corrupt one in our own cache is deleted (so it is fetched again), elsewhere skipped."""
    try:
        if not check_idx_file(path, spec):
            warnings.warn(f"{path}: header is right but the content could not be verified by checksum", stacklevel=3)
        return True
    except CorruptFileError as err:
        if CACHE_DIR in path.parents:
            path.unlink()
            warnings.warn(f"removed a corrupt cached file, it will be downloaded again: {err}", stacklevel=3)
        else:
            warnings.warn(f"skipping a corrupt file: {err}", stacklevel=3)
        return False


def _resolved(path) -> str:
    path = Path(path).expanduser()
    where = "does not exist" if not path.exists() else "is not a directory"
    if path.is_absolute():
        return f"{path} {where}"
    return f"{where}; relative paths are taken from the current directory, {Path.cwd()}, so it means {path.resolve()}"


def _missing_message(dataset, split, data_dir):
    names = " and ".join(f"{spec.name}.gz" for spec in FILES[dataset][split])
    looked = "\n  ".join(str(d) for d in search_dirs(dataset, data_dir))
    absent = [entry for entry in os.environ.get("GENMODELS_DATA", "").split(os.pathsep)
              if entry and not Path(entry).expanduser().is_dir()]
    notes = "".join(f"\nThe GENMODELS_DATA entry {entry!r} {_resolved(entry)}." for entry in absent)
    return (
        f"{NAMES[dataset]} {split} split not found: need {names}.\n  Looked in:\n  {looked}{notes}\n"
        f"Put the files in {CACHE_DIR / dataset}, or set GENMODELS_DATA to a directory that holds {dataset}/ "
        f"(for example GENMODELS_DATA=~/datasets, holding mnist/t10k-images-idx3-ubyte.gz and the others)."
    )


# --- loading ------------------------------------------------------------------------------------------------------


def load_split(dataset="mnist", split="train", data_dir=None, download_missing=True, timeout=TIMEOUT_S, progress=True):
    """Images as float32 in [0, 1] of shape (N, 28, 28) and labels as int64, of one split of MNIST or Fashion-MNIST."""
    images_path, labels_path = locate(dataset, split, data_dir, download_missing, timeout, progress)
    images = read_idx(images_path).astype(np.float32) / 255.0
    labels = read_idx(labels_path).astype(np.int64)
    return images, labels


def load_digits_28x28():
    """scikit-learn's bundled 8x8 digits (1,797 images, values 0-16), resized to 28x28 in [0, 1] by bilinear
    interpolation and framed: the last-resort stand-in for MNIST when nothing can be downloaded."""
    import torch
    import torch.nn.functional as F
    from sklearn.datasets import load_digits

    digits = load_digits()
    small = torch.from_numpy(digits.images.astype(np.float32) / 16.0)[:, None]
    box = F.interpolate(small, size=(20, 20), mode="bilinear", align_corners=False)
    big = F.pad(box, (4, 4, 4, 4))[:, 0]  # a 20x20 digit in a blank 28x28 frame, as MNIST's are
    return big.clamp(0, 1).numpy(), digits.target.astype(np.int64)


@dataclass
class Data:
    """The images a notebook trains and evaluates on, and where they came from."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    classes: list[str]
    note: str = ""

    def __repr__(self):
        return (f"Data({self.name}: train {self.x_train.shape}, test {self.x_test.shape}, "
                f"{len(self.classes)} classes)")


def load_data(profile: Profile | str | None = None, data_dir=None, timeout=TIMEOUT_S, verbose=True) -> Data:
    """The data of a profile. quick: MNIST's test split only, the first 8,000 images to train and the last 2,000 to
    evaluate; never a fallback. full: MNIST (60,000 + 10,000); without MNIST's training split, Fashion-MNIST, else
    scikit-learn's digits resized to 28x28, with a one-line notice saying which."""
    profile = get_profile(profile)
    if profile.quick:
        try:
            x, y = load_split("mnist", "test", data_dir, timeout=timeout)
        except DataNotFoundError as err:
            raise DataNotFoundError(f"The quick profile needs MNIST's test split and never falls back. {err}") from None
        n = profile.n_train
        return Data("MNIST", x[:n], y[:n], x[-profile.n_test:], y[-profile.n_test:], CLASSES["mnist"],
                    note="quick profile: MNIST test split, first 8,000 to train, last 2,000 to evaluate")
    for dataset in ("mnist", "fashion-mnist"):
        try:
            x_train, y_train = load_split(dataset, "train", data_dir, timeout=timeout)
            x_test, y_test = load_split(dataset, "test", data_dir, timeout=timeout)
        except DataNotFoundError:
            continue
        data = Data(NAMES[dataset], x_train, y_train, x_test, y_test, CLASSES[dataset])
        if dataset != "mnist":
            data.note = f"MNIST's training split is neither on disk nor downloadable: using {NAMES[dataset]} instead."
        break
    else:
        x, y = load_digits_28x28()
        order = np.random.default_rng(0).permutation(len(x))
        train, test = order[:1500], order[1500:]
        data = Data(NAMES["digits"], x[train], y[train], x[test], y[test], CLASSES["mnist"],
                    note="neither MNIST nor Fashion-MNIST is on disk or downloadable: using scikit-learn's 8x8 "
                         "digits resized to 28x28 (1,500 train, 297 test).")
    if verbose and data.note:
        print(f"Note: {data.note}")
    return data


# --- binarisation -------------------------------------------------------------------------------------------------


BINARIZE_SEED = 0  # the one seed with which every notebook, test and benchmark binarises a fixed data set


def binarize_once(x):
    """The stochastic binarisation of a data set that stays fixed (a test set, data for a model without dynamic
    binarisation): binarize_stochastic with the course's one seed, so every notebook sees the same binary images."""
    return binarize_stochastic(x, seed=BINARIZE_SEED)


def binary_vectors(dataset: Data) -> tuple[np.ndarray, np.ndarray]:
    """(x_train, x_test) as an RBM sees them: each image flattened to a vector of 784 pixels and binarised once
    (binarize_once), so that every RBM, in either framework and from the command line, sees the same binary images.
    Taught in 01_rbm_pytorch."""
    return tuple(binarize_once(x.reshape(len(x), -1)) for x in (dataset.x_train, dataset.x_test))


def binarize(x, threshold=0.5):
    """Fixed binarisation: 1 where the grey level exceeds `threshold`, else 0 (same type as `x`)."""
    return (x > threshold).astype(np.float32) if isinstance(x, np.ndarray) else (x > threshold).to(x.dtype)


def binarize_stochastic(x, seed=None, generator=None):
    """Stochastic binarisation: each pixel is 1 with probability equal to its grey level. A fixed `seed` gives the
    same binary images every time on one kind of device (CPU and CUDA generators draw different numbers from the
    same seed; data.binarize_once binarises NumPy arrays, the same everywhere); a torch `generator` serves dynamic
    binarisation while training."""
    if isinstance(x, np.ndarray):
        rng = np.random.default_rng(seed)
        return (rng.random(x.shape, dtype=np.float32) < x).astype(np.float32)
    import torch

    if generator is None and seed is not None:
        generator = torch.Generator(device=x.device).manual_seed(seed)
    if generator is not None and generator.device.type != x.device.type:
        raise ValueError(f"the generator is on {generator.device} but the images are on {x.device}: make it with "
                         f"torch.Generator(device={x.device.type!r})")
    return (torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype) < x).to(x.dtype)
