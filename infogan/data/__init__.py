"""The datasets a run can train on, each read by its own module, all returned as a data.Dataset:
mnist and fashion-mnist (data.mnist), svhn (data.svhn), celeba and any folder of images (data.images)."""

from infogan.data.dataset import Dataset, batch_indices, batches, to_input

__all__ = ["Dataset", "batch_indices", "batches", "load_dataset", "load_validation", "to_input"]


def load_dataset(cfg):
    """The training and validation images the settings name (dataset, data_dir, no_fallback, val_size...)."""
    return _load(cfg, cfg.data_dir, validation_only=False)


def load_validation(cfg, data_dir=None):
    """The validation split of the run's data, or of `data_dir` when given; reads no more than it must."""
    return _load(cfg, data_dir or cfg.data_dir, validation_only=True)


def _load(cfg, data_dir, validation_only):
    from infogan.data import images, mnist, svhn

    if cfg.dataset in ("mnist", "fashion-mnist"):
        read = mnist.load_validation if validation_only else mnist.load
        return read(cfg.dataset, data_dir, not cfg.no_fallback, cfg.val_size)
    if cfg.dataset == "svhn":
        return (svhn.load_validation if validation_only else svhn.load)(data_dir, cfg.val_size)
    channels, side, _ = cfg.image_shape
    return images.load(cfg.dataset, data_dir, side, channels, cfg.val_size)
