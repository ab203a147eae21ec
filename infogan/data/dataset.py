"""A dataset as the trainer sees it, its fixed validation split, and the shuffled batches it trains on."""

import os
from dataclasses import dataclass

import numpy as np

from infogan import InfoGANError

HELD_OUT_SEED = 20161205  # fixed forever: held-out images must never enter training, in any run


@dataclass
class Dataset:
    """Images as uint8 [N, C, H, W] (0..255), labels as int64 [N] or None where the data has none; the
    validation split likewise; `source` says where the images came from, `validation` what was held out."""

    train_images: np.ndarray | None
    train_labels: np.ndarray | None
    val_images: np.ndarray
    val_labels: np.ndarray | None
    source: str
    validation: str
    val_size_used: bool = False  # the validation split is --val-size images held out of the training images
    label_names: list[str] | None = None  # what each label number stands for, where the data names them

    def record(self):
        """What a run directory keeps of its data (data.json)."""
        return {
            "source": self.source,
            "train_images": None if self.train_images is None else len(self.train_images),
            "validation_images": len(self.val_images),
            "validation": self.validation,
            "image_shape": list(self.val_images.shape[1:]),
            "labels": self.val_labels is not None,
        } | ({"label_names": self.label_names} if self.label_names else {})


def check_folder(data_dir, holding):
    """Refuses a --data-dir that is not a folder, saying what the folder should hold."""
    if not os.path.isdir(data_dir):
        what = "is a file, not a folder" if os.path.exists(data_dir) else "does not exist"
        raise InfoGANError(f"--data-dir {data_dir} {what}: give the folder {holding}")


def held_out(n, size, what):
    """(train, validation) index arrays, sorted: `size` of n images chosen by a fixed seed."""
    if size >= n:
        fix = f"pass a smaller --val-size, such as {max(1, n // 10)}" if n > 1 else "give at least two images"
        raise InfoGANError(f"--val-size {size} leaves nothing to train on ({what}: {n} images in all); {fix}")
    order = np.random.default_rng(HELD_OUT_SEED).permutation(n)
    return np.sort(order[size:]), np.sort(order[:size])


def holding_out(images, labels, size, source, part, default_size):
    """A Dataset of `images` (and `labels`, or None) whose validation split is `size` of them (--val-size;
    None: `default_size`, the data's own, or a tenth of them where that is fewer), chosen by the fixed seed;
    `part` names what they were held out of."""
    what = "the size given"
    if size is None:  # the data's own, but at most a tenth: a small folder of one's own keeps most to train on
        size, what = max(1, min(default_size, len(images) // 10)), "the default for this data"
    train, val = held_out(len(images), size, what)
    labelled = labels is not None
    return Dataset(
        images[train],
        labels[train] if labelled else None,
        images[val],
        labels[val] if labelled else None,
        source,
        f"{len(val)} of {part}, held out",
        val_size_used=True,
    )


def stratified_held_out(labels, per_class):
    """`per_class` indices of each class, chosen by the fixed seed, sorted."""
    rng = np.random.default_rng(HELD_OUT_SEED)
    picks = [rng.choice(np.flatnonzero(labels == k), per_class, replace=False) for k in np.unique(labels)]
    return np.sort(np.concatenate(picks))


def to_input(images, value_range):
    """uint8 images -> float32 in the generator's value range, (0, 1) or (-1, 1)."""
    if value_range == (0.0, 1.0):
        return images.astype(np.float32) / 255.0
    low, high = value_range
    return images.astype(np.float32) * np.float32((high - low) / 255.0) + np.float32(low)


def batches(images, batch_size, seed, start_step, value_range, neighbours=None):
    """Endless shuffled batches of the uint8 `images` from step `start_step` on (batch_indices), as training
    feeds them: (the batch in the value range, and with a neighbour table [N, K] (--neighbours) the K nearest
    of each image [batch, K, C, H, W], else None)."""
    for indices in batch_indices(len(images), batch_size, seed, start_step):
        near = None if neighbours is None else to_input(images[neighbours[indices]], value_range)
        yield to_input(images[indices], value_range), near


def batch_indices(n, batch_size, seed, start_step):
    """Endless shuffled batches of indices into n images from step `start_step` on; epoch e is ordered by a
    generator seeded (seed, e), so a resumed run sees exactly the batches it would have seen. The last
    partial batch is dropped."""
    per_epoch = n // batch_size
    if per_epoch == 0:
        raise InfoGANError(f"--batch-size {batch_size} is larger than the {n} training images")
    epoch, index = divmod(start_step, per_epoch)
    while True:
        order = np.random.default_rng([seed, epoch]).permutation(n)
        for i in range(index, per_epoch):
            yield order[i * batch_size : (i + 1) * batch_size]
        epoch, index = epoch + 1, 0
