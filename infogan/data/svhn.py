"""SVHN's cropped digits (Netzer et al., 2011) in the official `.mat` layout: X uint8 (32, 32, 3, N), y (N, 1)
with labels 1..10, 10 meaning the digit 0.

Where the files come from: --data-dir, else the cache ~/.cache/paddle/dataset/svhn, where the official
files are downloaded from ufldl.stanford.edu and checked against their MD5 when missing and the network
allows. Training uses train_32x32.mat (and extra_32x32.mat when it is there too), validation
test_32x32.mat; a folder with test_32x32.mat alone (the offline subset) trains on it, holding out a fixed
part for validation.
"""

import os
import sys

import numpy as np
import scipy.io

from infogan import InfoGANError
from infogan.data.dataset import Dataset, check_folder, holding_out
from infogan.files import download_all

URL = "http://ufldl.stanford.edu/housenumbers/"
MD5 = {
    "train_32x32.mat": "e26dedcc434d2e4c54c9b2d4a06d8373",
    "test_32x32.mat": "eb5a983be6a315427106f1b164d9cef3",
    "extra_32x32.mat": "a93ce644f1a588dc4d68dda5feec44a7",
}
TRAIN, TEST, EXTRA = "train_32x32.mat", "test_32x32.mat", "extra_32x32.mat"
VAL_SIZE = 1000  # held out where there is no test split beside the training files, unless --val-size


def default_data_dir():
    from paddle.dataset.common import DATA_HOME

    return os.path.join(DATA_HOME, "svhn")


def read_mat(path):
    """(images uint8 [N, 3, 32, 32], labels int64 [N] in 0..9) from one official .mat file."""
    try:
        contents = scipy.io.loadmat(path)
    except Exception as e:  # scipy's readers fail on a foreign or truncated file in many ways alike
        reason = str(e).splitlines()[0] if str(e).strip() else type(e).__name__
        raise InfoGANError(f"cannot read {path} as a MATLAB file: {reason}") from None
    for key in ("X", "y"):
        if key not in contents:
            raise InfoGANError(f"{path} holds no {key} array: is it an SVHN cropped-digits file (*_32x32.mat)?")
    images, labels = contents["X"], np.asarray(contents["y"]).reshape(-1)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[:3] != (32, 32, 3):
        raise InfoGANError(f"{path}: X is {images.dtype} {images.shape}, expected uint8 (32, 32, 3, N)")
    if len(labels) != images.shape[3]:
        raise InfoGANError(f"{path} has {images.shape[3]} images but {len(labels)} labels")
    if len(labels) == 0:
        raise InfoGANError(f"{path} holds no images")
    if labels.min() < 1 or labels.max() > 10:
        raise InfoGANError(f"{path}: labels run from {labels.min()} to {labels.max()}, expected 1 to 10")
    return np.ascontiguousarray(images.transpose(3, 2, 0, 1)), (labels % 10).astype(np.int64)


def _download(folder, names):
    """The official files into the cache, checked by MD5; returns the reason it failed, or None."""
    paths = {name: os.path.join(folder, name) for name in names}
    return download_all((URL + name, path, MD5[name]) for name, path in paths.items() if not os.path.isfile(path))


def _folder(data_dir):
    if data_dir is not None:
        check_folder(data_dir, "that holds the SVHN .mat files")
        if not any(os.path.isfile(os.path.join(data_dir, n)) for n in (TRAIN, TEST)):
            raise InfoGANError(f"--data-dir {data_dir} holds neither {TRAIN} nor {TEST}")
        return data_dir
    cache = default_data_dir()
    failure = _download(cache, (TRAIN, TEST))
    if failure is None:
        return cache
    how = f"put {TRAIN} and {TEST} there (or pass --data-dir), or run once with network access"
    there = [name for name in (TRAIN, TEST) if os.path.isfile(os.path.join(cache, name))]
    if not there:
        raise InfoGANError(f"no SVHN files in {cache} and the download failed ({failure}): {how}")
    print(
        f"WARNING: {cache} holds only {there[0]} and the download failed ({failure}).\n"
        f"WARNING: using {there[0]} alone, which validates on part of it held out. For the official split, {how}.",
        file=sys.stderr,
    )
    return cache


def load(data_dir=None, val_size=None):
    folder = _folder(data_dir)
    has = {name: os.path.isfile(os.path.join(folder, name)) for name in (TRAIN, TEST, EXTRA)}
    if not has[TRAIN]:
        images, labels = read_mat(os.path.join(folder, TEST))
        return holding_out(images, labels, val_size, f"svhn from {folder} ({TEST} only)", TEST, VAL_SIZE)
    parts = [read_mat(os.path.join(folder, name)) for name in (TRAIN, EXTRA) if has[name]]
    images, labels = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    source = f"svhn from {folder} ({' + '.join(name for name in (TRAIN, EXTRA) if has[name])})"
    if not has[TEST]:
        return holding_out(images, labels, val_size, source, "the training files", VAL_SIZE)
    val_images, val_labels = read_mat(os.path.join(folder, TEST))
    return Dataset(images, labels, val_images, val_labels, source, "the test split")


def load_validation(data_dir=None, val_size=None):
    """The validation split alone: test_32x32.mat where there is a training file beside it."""
    folder = _folder(data_dir)
    if os.path.isfile(os.path.join(folder, TRAIN)) and os.path.isfile(os.path.join(folder, TEST)):
        images, labels = read_mat(os.path.join(folder, TEST))
        return Dataset(None, None, images, labels, f"svhn from {folder}", "the test split")
    return load(data_dir, val_size)
