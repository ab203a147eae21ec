"""The MNIST-format reader, the data sources in their order, and the batch order."""

import os

import numpy as np
import pytest
from conftest import idx_bytes, write_file, write_idx_dir

from infogan import InfoGANError, data


def test_reads_gz_and_raw(tmp_path):
    for gz in (True, False):
        folder = write_idx_dir(str(tmp_path / f"gz{gz}"), n_train=30, n_test=10, gz=gz)
        ds = data.load_dataset("mnist", folder)
        assert ds.train_images.shape == (30, 1, 28, 28) and ds.train_images.dtype == np.float32
        assert ds.test_images.shape == (10, 1, 28, 28)
        assert 0.0 <= ds.train_images.min() and ds.train_images.max() <= 1.0
        np.testing.assert_array_equal(ds.train_labels, np.arange(30) % 10)


def test_pixel_values_survive(tmp_path):
    images = np.arange(2 * 28 * 28).reshape(2, 28, 28) % 256
    path = str(tmp_path / "x-idx3-ubyte")
    write_file(path, idx_bytes(images), gz=False)
    np.testing.assert_array_equal(data.read_idx(path), images)


@pytest.mark.parametrize(
    "payload, message",
    [
        (b"", "wrong magic"),
        (b"\x00\x00\x09\x03" + b"\x00" * 12, "wrong magic"),
        (b"GIF89a-not-idx", "wrong magic"),
        (bytes([0, 0, 8, 3, 0, 0]), "header is incomplete"),
        (idx_bytes(np.zeros((3, 28, 28)))[:-5], "truncated"),
    ],
)
def test_bad_idx_files(tmp_path, payload, message):
    path = str(tmp_path / "bad-idx3-ubyte")
    write_file(path, payload, gz=False)
    with pytest.raises(InfoGANError, match=message):
        data.read_idx(path)


def test_corrupt_gzip(tmp_path):
    path = str(tmp_path / "bad-idx3-ubyte.gz")
    with open(path, "wb") as f:
        f.write(b"\x1f\x8b not really gzip")
    with pytest.raises(InfoGANError, match="cannot read"):
        data.read_idx(path)


def test_count_and_shape_mismatches(tmp_path):
    folder = write_idx_dir(str(tmp_path / "d"), n_train=20, n_test=10, gz=False)
    write_file(os.path.join(folder, "train-labels-idx1-ubyte"), idx_bytes(np.zeros(19)), gz=False)
    with pytest.raises(InfoGANError, match="20 images but .* 19 labels"):
        data.load_dataset("mnist", folder)
    write_file(os.path.join(folder, "train-images-idx3-ubyte"), idx_bytes(np.zeros((19, 32, 32))), gz=False)
    with pytest.raises(InfoGANError, match="expected 28x28"):
        data.load_dataset("mnist", folder)


def test_missing_and_partial_dirs(tmp_path):
    with pytest.raises(InfoGANError, match="does not exist"):
        data.load_dataset("mnist", str(tmp_path / "nowhere"))
    folder = write_idx_dir(str(tmp_path / "d"), gz=True)
    os.remove(os.path.join(folder, "t10k-labels-idx1-ubyte.gz"))
    with pytest.raises(InfoGANError, match="lacks t10k-labels-idx1-ubyte"):
        data.load_dataset("mnist", folder)


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """An empty Paddle cache whose download fails, as on a machine with no network."""
    monkeypatch.setattr(data, "default_data_dir", lambda name: str(tmp_path / "cache" / name))
    monkeypatch.setattr(data, "_download", lambda name: "no network")
    monkeypatch.setattr(data, "SYSTEM_DIRS", {})


def test_offline_fallback_is_loud(offline, capsys):
    ds = data.load_dataset("mnist")
    assert "WARNING" in capsys.readouterr().err
    assert ds.train_images.shape == (4500, 1, 28, 28) and ds.test_images.shape == (500, 1, 28, 28)
    np.testing.assert_array_equal(np.bincount(ds.test_labels), [50] * 10)
    assert ds.train_images.max() == 1.0


def test_offline_without_fallback_fails(offline):
    with pytest.raises(InfoGANError, match="download failed \\(no network\\).*--data-dir"):
        data.load_dataset("mnist", fallback=False)
    with pytest.raises(InfoGANError, match="no fashion-mnist files"):
        data.load_dataset("fashion-mnist")


def test_cache_is_used_before_download(monkeypatch, tmp_path):
    write_idx_dir(str(tmp_path / "cache" / "mnist"), n_train=12)
    monkeypatch.setattr(data, "default_data_dir", lambda name: str(tmp_path / "cache" / name))
    monkeypatch.setattr(data, "_download", lambda name: pytest.fail("downloaded although cached"))
    assert len(data.load_dataset("mnist").train_images) == 12


def test_held_out_split_is_fixed_and_disjoint():
    labels = np.repeat(np.arange(10), 500)
    first, second = data.held_out_indices(labels), data.held_out_indices(labels)
    np.testing.assert_array_equal(first, second)
    np.testing.assert_array_equal(np.bincount(labels[first]), [50] * 10)
    assert len(np.unique(first)) == 500


def test_offline_split_has_no_overlap(offline):
    ds = data.load_dataset("mnist")
    train = {img.tobytes() for img in ds.train_images}
    assert not any(img.tobytes() in train for img in ds.test_images)


def test_batches_shuffle_per_epoch_and_resume_exactly():
    images = np.arange(10, dtype=np.float32).reshape(10, 1, 1, 1)
    straight = data.batches(images, 3, seed=7, start_step=0)
    first_seven = [next(straight)[:, 0, 0, 0].tolist() for _ in range(7)]
    epoch0 = sorted(sum(first_seven[:3], []))
    assert len(set(epoch0)) == 9  # 3 batches of 3 from 10 images, one dropped, no repeats
    assert first_seven[:3] != first_seven[3:6]  # a new order each epoch
    resumed = data.batches(images, 3, seed=7, start_step=4)
    assert [next(resumed)[:, 0, 0, 0].tolist() for _ in range(3)] == first_seven[4:7]
    other_seed = data.batches(images, 3, seed=8, start_step=0)
    assert [next(other_seed)[:, 0, 0, 0].tolist() for _ in range(3)] != first_seven[:3]


def test_batch_larger_than_data():
    with pytest.raises(InfoGANError, match="larger than the 10 training images"):
        next(data.batches(np.zeros((10, 1, 28, 28)), 11, 0, 0))


def test_augmented_views_are_the_same_digits_moved():
    images = np.zeros((3, 1, 28, 28), np.float32)
    images[:, 0, 10:18, 12:16] = 1.0
    still = {"max_degrees": 0, "scale": (1, 1), "max_shift": 0, "max_shear": 0}
    unchanged = data.augment(images, np.random.default_rng(0), **still, thicken=0)
    np.testing.assert_allclose(unchanged, images, atol=1e-6)
    bold = data.augment(images, np.random.default_rng(0), **still, thicken=1)
    assert (bold >= images).all() and bold.sum() > 1.4 * images.sum()  # one pixel wider and taller
    views = data.augment(images, np.random.default_rng(0))
    assert views.shape == images.shape and views.dtype == np.float32
    assert not np.allclose(views, images) and 0.0 <= views.min() and views.max() <= 1.0
    assert 0.5 * images.sum() < views.sum() < 2.5 * images.sum()  # moved, resized, made bolder, not lost
    np.testing.assert_array_equal(views, data.augment(images, np.random.default_rng(0)))


def test_shear_slants_an_upright_stroke_both_ways():
    bar = np.zeros((1, 1, 28, 28), np.float32)
    bar[0, 0, 4:24, 13:15] = 1.0
    only_shear = {"max_degrees": 0, "scale": (1, 1), "max_shift": 0, "max_shear": 0.3, "thicken": 0}
    views = data.augment(bar, np.random.default_rng(0), 16, **only_shear)[:, 0]
    columns = np.arange(28)

    def centre(rows):  # the stroke's mean column over those rows
        return (rows * columns).sum(axis=(1, 2)) / rows.sum(axis=(1, 2))

    lean = centre(views[:, 4:10]) - centre(views[:, 18:24])  # top minus bottom: > 0 leans right
    assert lean.min() < -1.0 and lean.max() > 1.0  # up to 0.3 * 14 = 4.2 columns either way
    np.testing.assert_allclose(views.sum(axis=(1, 2)), bar.sum(), rtol=0.05)  # slanted, not lost


def test_several_views_come_copy_after_copy_each_drawn_anew():
    images = np.random.default_rng(1).random((4, 1, 28, 28), dtype=np.float32)
    still = {"max_degrees": 0, "scale": (1, 1), "max_shift": 0, "max_shear": 0, "thicken": 0}
    np.testing.assert_allclose(
        data.augment(images, np.random.default_rng(0), 3, **still), np.tile(images, (3, 1, 1, 1)), atol=1e-6
    )
    first, second = np.split(data.augment(images, np.random.default_rng(0), 2), 2)
    assert not np.allclose(first, second)  # two views of one image differ


@pytest.mark.skipif(
    not os.path.isdir("/usr/share/datasets/fashion-mnist"), reason="dataset-fashion-mnist not installed"
)
def test_full_scale_fashion_mnist():
    ds = data.load_dataset("fashion-mnist", "/usr/share/datasets/fashion-mnist")
    assert ds.train_images.shape == (60000, 1, 28, 28) and ds.test_images.shape == (10000, 1, 28, 28)
    np.testing.assert_array_equal(np.bincount(ds.train_labels), [6000] * 10)
