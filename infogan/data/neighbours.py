"""Each training image's nearest training images in pixel space, for the clustering term's neighbour
views (--neighbours): a crossed 7's nearest digits are mostly 7s, plain ones among them, so pairing an
image with a neighbour ties the styles of a digit together where no augmentation turns one into another
(docs/results.md). The table is kept in the run's directory (neighbours.npy), so a resumed run pairs as
the straight run would have, and in ~/.cache/infogan/neighbours/, keyed by the images' bytes and k, so
that the next run on the same images skips finding it (MNIST's 55,000: 44 s at two threads)."""

import hashlib
import os
import sys
import time

import numpy as np

from infogan import InfoGANError
from infogan.files import cache_dir, load_cache, save_array, save_cache

FILE = "neighbours.npy"
BLOCK = 512  # rows of the distance matrix at a time: 512 x 55,000 distances and their order take 340 MB


def check(k, n):
    """Refuses k neighbours among n images where there are not as many others."""
    if not 1 <= k < n:
        raise InfoGANError(f"--neighbours {k}: choose from 1 to {n - 1}, fewer than the {n} training images")


def nearest(images, k):
    """int32 [N, k]: for each of the uint8 [N, C, H, W] images, the indices of the k others nearest in
    Euclidean distance over pixels, nearest first. O(N^2 x pixels): MNIST's 55,000 take
    100 s on one core."""
    n = len(images)
    check(k, n)
    flat = images.reshape(n, -1).astype(np.float32) / 255.0
    norms = np.einsum("ij,ij->i", flat, flat)
    table = np.empty((n, k), np.int32)
    for start in range(0, n, BLOCK):
        rows = slice(start, min(n, start + BLOCK))
        dist = norms[rows, None] - 2.0 * flat[rows] @ flat.T + norms[None, :]
        dist[np.arange(rows.stop - start), np.arange(start, rows.stop)] = np.inf  # an image is not its own neighbour
        candidates = np.argpartition(dist, k - 1, axis=1)[:, :k]
        # Sorted by distance, then by index: the same table whatever order argpartition left them in.
        order = np.lexsort((candidates, np.take_along_axis(dist, candidates, axis=1)), axis=1)
        table[rows] = np.take_along_axis(candidates, order, axis=1)
    return table


def run_table(run_dir, images, k):
    """The run's neighbour table: read from run_dir/neighbours.npy, else from the cache, else computed; kept in
    both (run_dir None: not kept in a run directory)."""
    path = run_dir and os.path.join(run_dir, FILE)
    if path and os.path.isfile(path):
        try:
            table = np.load(path)
        except (OSError, ValueError) as e:
            raise InfoGANError(f"cannot read {path} ({e}): remove it to compute it again") from None
        if table.shape != (len(images), k):
            raise InfoGANError(
                f"{path} holds {table.shape[1]} neighbours of {table.shape[0]} images, the run trains on "
                f"{len(images)} with --neighbours {k}: remove the file to compute it again"
            )
        return table
    cached = cache_path(images, k)
    table = load_cache(cached, (len(images), k), np.int32)
    if table is not None:
        print(f"neighbours: the {k} nearest of each of {len(images)} training images, from {cached}", file=sys.stderr)
    else:
        started = time.perf_counter()
        print(f"neighbours: the {k} nearest of each of {len(images)} training images (pixels)...", file=sys.stderr)
        table = nearest(images, k)
        print(f"neighbours: found in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        save_cache(cached, table, "finds the neighbours again")
    if path:
        save_array(path, table)
    return table


def cache_path(images, k):
    """Where the table of these images (their shape and bytes) and k is cached."""
    digest = hashlib.sha1(repr((images.shape, str(images.dtype), k)).encode())
    digest.update(np.ascontiguousarray(images).data)
    return os.path.join(cache_dir(FILE.removesuffix(".npy")), digest.hexdigest() + ".npy")
