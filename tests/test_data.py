"""The MNIST-format reader, the data sources in their order, the validation split and the batch order."""

import concurrent.futures
import gzip
import hashlib
import os
import socket
import time

import numpy as np
import pytest
from conftest import ROOT, idx_bytes, write_file, write_idx_dir

from infogan import InfoGANError
from infogan.data import mnist, neighbours
from infogan.data.dataset import batch_indices, batches, held_out, holding_out, stratified_held_out, to_input
from infogan.files import download


def test_reads_gz_and_raw(tmp_path):
    for gz in (True, False):
        folder = write_idx_dir(str(tmp_path / f"gz{gz}"), n_train=30, n_test=10, gz=gz)
        ds = mnist.load("mnist", folder)
        assert ds.train_images.shape == (30, 1, 28, 28) and ds.train_images.dtype == np.uint8
        assert ds.val_images.shape == (10, 1, 28, 28) and ds.validation == "the test split"
        np.testing.assert_array_equal(ds.train_labels, np.arange(30) % 10)


def test_pixel_values_survive(tmp_path):
    images = np.arange(2 * 28 * 28).reshape(2, 28, 28) % 256
    path = str(tmp_path / "x-idx3-ubyte")
    write_file(path, idx_bytes(images), gz=False)
    np.testing.assert_array_equal(mnist.read_idx(path), images)


def test_images_become_the_generators_value_range():
    images = np.array([0, 51, 255], np.uint8).reshape(3, 1, 1, 1)
    np.testing.assert_allclose(to_input(images, (0.0, 1.0)).ravel(), [0.0, 0.2, 1.0], atol=1e-7)
    np.testing.assert_allclose(to_input(images, (-1.0, 1.0)).ravel(), [-1.0, -0.6, 1.0], atol=1e-6)
    assert to_input(images, (-1.0, 1.0)).dtype == np.float32


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
        mnist.read_idx(path)


def test_corrupt_gzip_header_and_deflate_stream(tmp_path):
    path = str(tmp_path / "bad-idx3-ubyte.gz")
    with open(path, "wb") as f:
        f.write(b"\x1f\x8b not really gzip")
    with pytest.raises(InfoGANError, match="cannot read"):
        mnist.read_idx(path)
    good = gzip.compress(idx_bytes(np.zeros((50, 28, 28))))
    damaged = good[:20] + bytes(b ^ 0xFF for b in good[20:40]) + good[40:]  # a valid header, a broken stream
    with open(path, "wb") as f:
        f.write(damaged)
    with pytest.raises(InfoGANError, match="cannot read"):
        mnist.read_idx(path)


def test_count_shape_and_empty_mismatches(tmp_path):
    folder = write_idx_dir(str(tmp_path / "d"), n_train=20, n_test=10, gz=False)
    write_file(os.path.join(folder, "train-labels-idx1-ubyte"), idx_bytes(np.zeros(19)), gz=False)
    with pytest.raises(InfoGANError, match="20 images but .* 19 labels"):
        mnist.load("mnist", folder)
    write_file(os.path.join(folder, "train-images-idx3-ubyte"), idx_bytes(np.zeros((19, 32, 32))), gz=False)
    with pytest.raises(InfoGANError, match="expected 28x28"):
        mnist.load("mnist", folder)
    empty = write_idx_dir(str(tmp_path / "e"), n_train=20, n_test=0, gz=False)
    write_file(os.path.join(empty, "t10k-images-idx3-ubyte"), idx_bytes(np.zeros((0, 28, 28))), gz=False)
    write_file(os.path.join(empty, "t10k-labels-idx1-ubyte"), idx_bytes(np.zeros(0)), gz=False)
    with pytest.raises(InfoGANError, match="holds no images"):
        mnist.load("mnist", empty)


def test_missing_and_partial_dirs(tmp_path):
    with pytest.raises(InfoGANError, match="does not exist"):
        mnist.load("mnist", str(tmp_path / "nowhere"))
    folder = write_idx_dir(str(tmp_path / "d"), gz=True)
    os.remove(os.path.join(folder, "train-labels-idx1-ubyte.gz"))
    with pytest.raises(InfoGANError, match="lacks the training pair"):
        mnist.load("mnist", folder)


def test_a_folder_of_the_other_dataset_of_this_format_is_told(tmp_path, monkeypatch):
    """MNIST's and Fashion-MNIST's files share their names: --dataset mnist on Debian's Fashion-MNIST trained
    on clothes under the other name."""
    folder = write_idx_dir(str(tmp_path / "d"), gz=False)
    labels = mnist.read_split(folder, "train")[1]
    known = dict(
        mnist.TRAIN_LABELS_MD5, **{"fashion-mnist": hashlib.md5(labels.astype(np.uint8).tobytes()).hexdigest()}
    )
    monkeypatch.setattr(mnist, "TRAIN_LABELS_MD5", known)
    with pytest.raises(
        InfoGANError, match=r"holds fashion-mnist's training split \(its labels are theirs\), not mnist"
    ):
        mnist.load("mnist", folder)
    assert len(mnist.load("fashion-mnist", folder).train_images) == 64
    monkeypatch.undo()
    shared = os.path.join(os.path.dirname(ROOT), "shared", "datasets", "mnist")
    if os.path.isdir(shared):  # the real files: MNIST's training pair
        with pytest.raises(InfoGANError, match="holds mnist's training split .* give --dataset mnist, or a folder"):
            mnist.load("fashion-mnist", shared)


def test_a_train_only_folder_holds_out_a_fixed_validation_split(tmp_path):
    folder = write_idx_dir(str(tmp_path / "train_only"), n_train=300, n_test=0)
    first, again = mnist.load("mnist", folder, val_size=50), mnist.load("mnist", folder, val_size=50)
    assert first.train_images.shape == (250, 1, 28, 28) and first.val_images.shape == (50, 1, 28, 28)
    assert first.validation == "50 of the training split, held out"
    np.testing.assert_array_equal(first.val_images, again.val_images)  # the same split in every run
    train = {image.tobytes() for image in first.train_images}
    assert not any(image.tobytes() in train for image in first.val_images)
    with pytest.raises(InfoGANError, match=r"--val-size 300 leaves nothing to train on .*such as \d+$"):
        mnist.load("mnist", folder, val_size=300)


def test_val_size_sizes_only_a_split_held_out_of_training_images(tmp_path, offline):
    train_only = mnist.load("mnist", write_idx_dir(str(tmp_path / "train_only"), n_train=5010, n_test=0))
    assert len(train_only.val_images) == 501 and train_only.val_size_used  # a tenth: fewer than the data's own
    full = holding_out(np.zeros((60000, 1, 1, 1), np.uint8), None, None, "full MNIST", "the training split", 5000)
    assert len(full.val_images) == mnist.VAL_SIZE == 5000 and full.validation == "5000 of the training split, held out"
    with_test = mnist.load("mnist", write_idx_dir(str(tmp_path / "with_test"), n_train=30, n_test=10), val_size=7)
    assert len(with_test.val_images) == 10 and not with_test.val_size_used  # the test split, whatever is asked
    assert not mnist.load("mnist", val_size=7).val_size_used  # the offline sample's fixed 500


def test_held_out_splits_are_fixed_and_disjoint():
    train, val = held_out(1000, 100, "x")
    np.testing.assert_array_equal(val, held_out(1000, 100, "x")[1])
    assert len(np.intersect1d(train, val)) == 0 and len(train) + len(val) == 1000
    labels = np.repeat(np.arange(10), 500)
    picks = stratified_held_out(labels, 50)
    np.testing.assert_array_equal(picks, stratified_held_out(labels, 50))
    np.testing.assert_array_equal(np.bincount(labels[picks]), [50] * 10)


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """An empty Paddle cache whose download fails, as on a machine with no network."""
    monkeypatch.setattr(mnist, "default_data_dir", lambda name: str(tmp_path / "cache" / name))
    monkeypatch.setattr(mnist, "_download", lambda name: "no network")
    monkeypatch.setattr(mnist, "SYSTEM_DIRS", {})


def test_offline_fallback_is_loud(offline, capsys):
    ds = mnist.load("mnist")
    assert "WARNING" in capsys.readouterr().err
    assert ds.train_images.shape == (4500, 1, 28, 28) and ds.val_images.shape == (500, 1, 28, 28)
    np.testing.assert_array_equal(np.bincount(ds.val_labels), [50] * 10)
    assert ds.train_images.max() == 255
    train = {img.tobytes() for img in ds.train_images}
    assert not any(img.tobytes() in train for img in ds.val_images)


def test_offline_without_fallback_fails(offline):
    with pytest.raises(InfoGANError, match="download failed \\(no network\\).*--data-dir"):
        mnist.load("mnist", fallback=False)
    with pytest.raises(InfoGANError, match="no fashion-mnist files.*apt-get install dataset-fashion-mnist"):
        mnist.load("fashion-mnist")


def test_a_run_on_the_offline_sample_keeps_it_when_full_mnist_arrives_and_other_data_are_told(monkeypatch, tmp_path):
    """A run trained offline, resumed or evaluated once the full set is in the cache (network access came),
    trains and scores on its own 4,500 and 500 digits, not on others' (which mixed its training data and
    scored its accuracy on other digits than its log's); data unlike a run's record are named."""
    from infogan.config import TrainConfig
    from infogan.data import load_dataset, load_validation, unlike

    offline = mnist.offline_mnist()
    record = offline.record()
    write_idx_dir(str(tmp_path / "cache" / "mnist"), n_train=12)
    monkeypatch.setattr(mnist, "default_data_dir", lambda name: str(tmp_path / "cache" / name))
    cfg = TrainConfig.from_flags({})
    for own in (load_dataset(cfg, record), load_validation(cfg, record=record)):
        assert own.source == mnist.OFFLINE_SOURCE and unlike(record, own) is None
        np.testing.assert_array_equal(own.val_images, offline.val_images)
    found = load_dataset(cfg)  # a new run: the full set
    assert len(found.train_images) == 12 and found.validation == "the test split"
    why = unlike(record, found)
    assert why.startswith("it trained on 4500 images of mnist (offline sample") and "found now are 12 images" in why
    assert "validating on the test split" in unlike(record, load_validation(cfg), validation_only=True)
    assert unlike({"source": "an earlier version's, without the counts"}, found) is None


def test_cache_is_used_before_download(monkeypatch, tmp_path):
    write_idx_dir(str(tmp_path / "cache" / "mnist"), n_train=12)
    monkeypatch.setattr(mnist, "default_data_dir", lambda name: str(tmp_path / "cache" / name))
    monkeypatch.setattr(mnist, "_download", lambda name: pytest.fail("downloaded although cached"))
    assert len(mnist.load("mnist").train_images) == 12


def test_a_download_arrives_whole_and_checked_or_not_at_all(server, tmp_path):
    url, files = server
    files["x.gz"] = os.urandom(300_000)
    md5 = hashlib.md5(files["x.gz"]).hexdigest()
    target = tmp_path / "cache" / "x.gz"
    assert download(url + "x.gz", str(target), md5) is None and target.read_bytes() == files["x.gz"]
    target.unlink()
    for name, checksum, reason in [
        ("x.gz", "0" * 32, f"arrived with MD5 {md5}, not its own"),
        ("x.gz.cut", md5, "without sending complete message body (received 150000 bytes, expected 300000)"),
        ("missing.gz", md5, "404 Not Found"),
    ]:
        failure = download(url + name, str(target), checksum)
        assert reason in failure and url + name in failure
        assert os.listdir(tmp_path / "cache") == []  # neither the file nor its .part
    with socket.socket() as silent:  # a server that accepts and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        started = time.perf_counter()
        failure = download(f"http://127.0.0.1:{silent.getsockname()[1]}/x.gz", str(target), md5, timeout=1)
        assert "timed out" in failure and time.perf_counter() - started < 10


def test_downloads_of_one_file_side_by_side_each_arrive_whole(server, tmp_path):
    """Runs started together on a fresh machine (a sweep of seeds) download the same file at once."""
    url, files = server
    files["x.gz"] = os.urandom(300_000)
    target = str(tmp_path / "cache" / "x.gz")
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        failures = list(
            pool.map(lambda _: download(url + "x.gz.slow", target, hashlib.md5(files["x.gz"]).hexdigest()), range(3))
        )
    assert failures == [None, None, None]
    assert os.listdir(tmp_path / "cache") == ["x.gz"] and (tmp_path / "cache" / "x.gz").read_bytes() == files["x.gz"]


def test_mnist_downloads_into_its_cache(server, monkeypatch, tmp_path):
    url, files = server
    source = write_idx_dir(str(tmp_path / "official"), n_train=20, n_test=10, gz=True)
    md5s = {}
    for name in os.listdir(source):
        files[name] = (tmp_path / "official" / name).read_bytes()
        md5s[name.removesuffix(".gz")] = hashlib.md5(files[name]).hexdigest()
    monkeypatch.setattr(mnist, "DOWNLOADS", {"mnist": (url, md5s)})
    monkeypatch.setattr(mnist, "default_data_dir", lambda name: str(tmp_path / "cache" / name))
    monkeypatch.setattr(mnist, "SYSTEM_DIRS", {})
    files["t10k-labels-idx1-ubyte.gz"] = b"not the official file"  # one bad file: the rest is kept, it is not
    with pytest.raises(InfoGANError, match="download failed .*t10k-labels.* arrived with MD5"):
        mnist.load("mnist", fallback=False)
    assert len(os.listdir(tmp_path / "cache" / "mnist")) == 3
    files["t10k-labels-idx1-ubyte.gz"] = (tmp_path / "official" / "t10k-labels-idx1-ubyte.gz").read_bytes()
    ds = mnist.load("mnist", fallback=False)
    assert ds.train_images.shape == (20, 1, 28, 28) and ds.validation == "the test split"


def test_validation_alone_reads_only_the_test_pair(tmp_path):
    folder = write_idx_dir(str(tmp_path / "d"), n_train=30, n_test=10)
    os.remove(os.path.join(folder, "train-images-idx3-ubyte.gz"))  # what it must not need
    ds = mnist.load_validation("mnist", folder)
    assert ds.train_images is None and ds.val_images.shape == (10, 1, 28, 28)


def test_batches_shuffle_per_epoch_and_resume_exactly():
    straight = batch_indices(10, 3, seed=7, start_step=0)
    first_seven = [next(straight).tolist() for _ in range(7)]
    epoch0 = sorted(sum(first_seven[:3], []))
    assert len(set(epoch0)) == 9  # 3 batches of 3 from 10 images, one dropped, no repeats
    assert first_seven[:3] != first_seven[3:6]  # a new order each epoch
    resumed = batch_indices(10, 3, seed=7, start_step=4)
    assert [next(resumed).tolist() for _ in range(3)] == first_seven[4:7]
    other_seed = batch_indices(10, 3, seed=8, start_step=0)
    assert [next(other_seed).tolist() for _ in range(3)] != first_seven[:3]


def test_batches_bring_each_images_neighbours_in_the_value_range():
    images = (np.arange(10, dtype=np.uint8) * 25).reshape(10, 1, 1, 1)  # image i is the value 25 i
    table = np.stack([(np.arange(10) + 1) % 10, (np.arange(10) + 2) % 10], axis=1)  # i's neighbours: i+1, i+2
    order = batch_indices(10, 3, seed=7, start_step=2)
    real, near = next(batches(images, 3, 7, 2, (-1.0, 1.0), table))
    i = next(order)
    np.testing.assert_allclose(real[:, 0, 0, 0], 25 * i / 127.5 - 1, atol=1e-6)
    assert near.shape == (3, 2, 1, 1, 1) and near.dtype == np.float32
    np.testing.assert_allclose(near[:, :, 0, 0, 0], 25 * table[i] / 127.5 - 1, atol=1e-6)
    assert next(batches(images, 3, 7, 2, (0.0, 1.0)))[1] is None  # without a table, no neighbours


def test_nearest_neighbours_against_every_distance(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (300, 1, 4, 4), dtype=np.uint8)
    images[7] = images[3]  # a duplicate: at distance 0 from each other
    pixels = images.reshape(300, -1).astype(np.float64)
    distance = ((pixels[:, None] - pixels[None]) ** 2).sum(-1)
    np.fill_diagonal(distance, np.inf)  # never an image's own neighbour
    table = neighbours.nearest(images, 5)
    assert table.shape == (300, 5) and table.dtype == np.int32
    # The five smallest distances, nearest first (which of two images at one distance comes first is
    # left to float32 rounding).
    np.testing.assert_allclose(np.take_along_axis(distance, table, axis=1), np.sort(distance, axis=1)[:, :5], rtol=1e-4)
    assert (table != np.arange(300)[:, None]).all() and all(len(set(row)) == 5 for row in table)
    assert table[3, 0] == 7 and table[7, 0] == 3
    with pytest.raises(InfoGANError, match="--neighbours 300: choose from 1 to 299"):
        neighbours.nearest(images, 300)
    # Kept in the run directory and read from there: a resumed run pairs as the straight run did.
    kept = neighbours.run_table(str(tmp_path), images, 5)
    np.testing.assert_array_equal(kept, table)
    np.save(tmp_path / neighbours.FILE, table[::-1])
    np.testing.assert_array_equal(neighbours.run_table(str(tmp_path), images, 5), table[::-1])
    with pytest.raises(
        InfoGANError, match="holds 5 neighbours of 300 images, the run trains on 300 with --neighbours 4"
    ):
        neighbours.run_table(str(tmp_path), images, 4)
    (tmp_path / neighbours.FILE).write_bytes(b"cut short")
    with pytest.raises(InfoGANError, match="cannot read .*neighbours.npy .*: remove it to compute it again"):
        neighbours.run_table(str(tmp_path), images, 5)


def test_neighbour_tables_are_cached_by_the_images_and_k(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    images = np.random.default_rng(1).integers(0, 256, (40, 1, 3, 3), dtype=np.uint8)
    table = neighbours.run_table(None, images, 3)
    cached = neighbours.cache_path(images, 3)
    np.testing.assert_array_equal(np.load(cached), table)
    other = images.copy()
    other[0, 0, 0, 0] ^= 1
    assert len({cached, neighbours.cache_path(other, 3), neighbours.cache_path(images, 2)}) == 3

    def no_search(*args):
        raise AssertionError("searched again")

    monkeypatch.setattr(neighbours, "nearest", no_search)
    capsys.readouterr()
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    np.testing.assert_array_equal(neighbours.run_table(str(run_dir), images, 3), table)
    assert f"from {cached}" in capsys.readouterr().err
    np.testing.assert_array_equal(np.load(run_dir / neighbours.FILE), table)  # and kept for a resume
    # A damaged cache is searched again and rewritten; a cache that cannot be written is a warning.
    monkeypatch.undo()
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    with open(cached, "wb") as f:
        f.write(b"cut short")
    np.testing.assert_array_equal(neighbours.run_table(None, images, 3), table)
    np.testing.assert_array_equal(np.load(cached), table)
    (tmp_path / "a file").write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "a file"))
    np.testing.assert_array_equal(neighbours.run_table(None, images, 3), table)
    warning = capsys.readouterr().err
    assert "could not be written" in warning and "the next run finds the neighbours again" in warning


def test_batch_larger_than_data():
    with pytest.raises(InfoGANError, match="larger than the 10 training images"):
        next(batches(np.zeros((10, 1, 28, 28), np.uint8), 11, 0, 0, (0.0, 1.0)))


@pytest.mark.skipif(
    not os.path.isdir("/usr/share/datasets/fashion-mnist"), reason="dataset-fashion-mnist not installed"
)
def test_full_scale_fashion_mnist():
    ds = mnist.load("fashion-mnist", "/usr/share/datasets/fashion-mnist")
    assert ds.train_images.shape == (60000, 1, 28, 28) and ds.val_images.shape == (10000, 1, 28, 28)
    np.testing.assert_array_equal(np.bincount(ds.train_labels), [6000] * 10)
