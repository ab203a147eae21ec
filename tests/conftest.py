import gzip
import os
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def idx_bytes(array):
    """The IDX encoding of a uint8 array: magic 0x0000080N, big-endian dims, raw bytes."""
    array = np.asarray(array, dtype=np.uint8)
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.tobytes()


def write_idx_dir(folder, n_train=64, n_test=20, gz=True, seed=0):
    """Four tiny MNIST-format files of random digits with balanced labels."""
    rng = np.random.default_rng(seed)
    os.makedirs(folder, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, size=(n, 28, 28))
        labels = np.arange(n) % 10
        for stem, array in ((f"{prefix}-images-idx3-ubyte", images), (f"{prefix}-labels-idx1-ubyte", labels)):
            write_file(os.path.join(folder, stem), idx_bytes(array), gz)
    return folder


def write_file(path, payload, gz):
    if gz:
        with gzip.open(path + ".gz", "wb") as f:
            f.write(payload)
    else:
        with open(path, "wb") as f:
            f.write(payload)


@pytest.fixture(scope="session")
def tiny_mnist(tmp_path_factory):
    return write_idx_dir(str(tmp_path_factory.mktemp("tiny_mnist")))
