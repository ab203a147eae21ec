"""The datasets a run can train on, each read by its own module, all returned as a data.Dataset:
mnist and fashion-mnist (data.mnist), svhn (data.svhn), celeba and any folder of images (data.images)."""

import json
import os

from infogan.data.dataset import Dataset, batch_indices, batches, to_input

__all__ = [
    "RECORD",
    "Dataset",
    "batch_indices",
    "batches",
    "load_dataset",
    "load_validation",
    "run_record",
    "to_input",
    "unlike",
]


RECORD = "data.json"  # in a run directory: what it trained and validated on (Dataset.record)


def load_dataset(cfg, record=None):
    """The training and validation images the settings name (dataset, data_dir, no_fallback, val_size...);
    for a run trained on the offline MNIST sample (its data.json `record`), that sample again."""
    return _load(cfg, cfg.data_dir, record, validation_only=False)


def load_validation(cfg, data_dir=None, record=None):
    """The validation split of the run's data, or of `data_dir` when given; reads no more than it must."""
    return _load(cfg, data_dir or cfg.data_dir, record, validation_only=True)


def run_record(run_dir):
    """A run directory's data.json, or None where it has none."""
    try:
        with open(os.path.join(run_dir, RECORD)) as f:
            record = json.load(f)
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def unlike(record, data, validation_only=False):
    """How the data found now differ from what the run's data.json `record` says it trained and validated on
    (the numbers of images, what was held out, their shape; not where they were, which may move), or None."""
    now = data.record()
    keys = ["validation_images", "validation", "image_shape"] + ([] if validation_only else ["train_images"])
    if all(record.get(key, now[key]) == now[key] for key in keys):
        return None
    return (
        f"it trained on {record.get('train_images')} images of {record.get('source')}, validating on "
        f"{record.get('validation')}; the data found now are {now['train_images'] or 'the validation'} images of "
        f"{now['source']}, validating on {now['validation']}"
    )


def _load(cfg, data_dir, record, validation_only):
    from infogan.data import images, mnist, svhn

    if cfg.dataset == "mnist" and data_dir is None and record and record.get("source") == mnist.OFFLINE_SOURCE:
        return mnist.offline_mnist()  # though full MNIST is in the cache now: the run's own digits
    if cfg.dataset in ("mnist", "fashion-mnist"):
        read = mnist.load_validation if validation_only else mnist.load
        return read(cfg.dataset, data_dir, not cfg.no_fallback, cfg.val_size)
    if cfg.dataset == "svhn":
        return (svhn.load_validation if validation_only else svhn.load)(data_dir, cfg.val_size)
    channels, side, _ = cfg.image_shape
    return images.load(cfg.dataset, data_dir, side, channels, cfg.val_size, cfg.folder_labels)
