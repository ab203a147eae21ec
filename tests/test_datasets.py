"""The SVHN and image-folder readers on tiny files made here: their layouts, splits, framing, cache and
their answers to bad input."""

import hashlib
import json
import os
import shutil
import subprocess
import tempfile

import numpy as np
import pytest
import scipy.io
from conftest import one_error_line, script
from PIL import Image

from infogan import InfoGANError, files
from infogan.config import TrainConfig
from infogan.data import images, load_dataset, load_validation, svhn
from infogan.files import cache_dir


def write_mat(path, n, seed=0, **overrides):
    rng = np.random.default_rng(seed)
    contents = {"X": rng.integers(0, 256, (32, 32, 3, n), dtype=np.uint8), "y": (np.arange(n) % 10 + 1).reshape(n, 1)}
    scipy.io.savemat(path, {k: v for k, v in (contents | overrides).items() if v is not None})
    return contents


def test_svhn_layout_labels_and_splits(tmp_path):
    contents = write_mat(str(tmp_path / "test_32x32.mat"), 40)
    x, y = svhn.read_mat(str(tmp_path / "test_32x32.mat"))
    assert x.shape == (40, 3, 32, 32) and x.dtype == np.uint8
    np.testing.assert_array_equal(x[5, 1], contents["X"][:, :, 1, 5])  # (H, W, C, N) -> (N, C, H, W)
    assert y[:10].tolist() == [1, 2, 3, 4, 5, 6, 7, 8, 9, 0]  # label 10 is the digit 0
    only_test = svhn.load(str(tmp_path), val_size=10)
    assert only_test.train_images.shape == (30, 3, 32, 32) and only_test.val_images.shape == (10, 3, 32, 32)
    assert only_test.validation == "10 of test_32x32.mat, held out" and only_test.val_size_used
    assert len(svhn.load(str(tmp_path)).val_images) == 4  # none given: a tenth, fewer than SVHN's own 1,000
    np.testing.assert_array_equal(only_test.val_images, svhn.load(str(tmp_path), val_size=10).val_images)
    write_mat(str(tmp_path / "train_32x32.mat"), 50, seed=1)
    both = svhn.load(str(tmp_path))
    assert both.train_images.shape == (50, 3, 32, 32) and both.validation == "the test split"
    assert not both.val_size_used
    write_mat(str(tmp_path / "extra_32x32.mat"), 20, seed=2)
    assert len(svhn.load(str(tmp_path)).train_images) == 70 and "extra_32x32.mat" in svhn.load(str(tmp_path)).source
    assert svhn.load_validation(str(tmp_path)).train_images is None


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"X": None}, "holds no X array"),
        ({"y": None}, "holds no y array"),
        ({"X": np.zeros((28, 28, 1, 4), np.uint8)}, r"expected uint8 \(32, 32, 3, N\)"),
        ({"X": np.zeros((32, 32, 3, 4), np.float32)}, "X is float32"),
        ({"y": np.zeros((3, 1))}, "has 4 images but 3 labels"),
        ({"y": np.full((4, 1), 11)}, "labels run from 11 to 11"),
    ],
)
def test_bad_svhn_files(tmp_path, overrides, message):
    path = str(tmp_path / "test_32x32.mat")
    write_mat(path, 4, **{"X": np.zeros((32, 32, 3, 4), np.uint8)} | overrides)
    with pytest.raises(InfoGANError, match=message):
        svhn.read_mat(path)


def test_svhn_folder_errors(tmp_path):
    with pytest.raises(InfoGANError, match="does not exist"):
        svhn.load(str(tmp_path / "nowhere"))
    with pytest.raises(InfoGANError, match="holds neither train_32x32.mat nor test_32x32.mat"):
        svhn.load(str(tmp_path))
    (tmp_path / "test_32x32.mat").write_bytes(b"not a MATLAB file at all")
    with pytest.raises(InfoGANError, match="cannot read .* as a MATLAB file"):
        svhn.load(str(tmp_path))
    with pytest.raises(InfoGANError, match="test_32x32.mat is a file, not a folder: give the folder that holds the"):
        svhn.load(str(tmp_path / "test_32x32.mat"))  # the file itself given for its folder


def test_svhn_downloads_into_its_cache_and_trains_on_what_is_there_when_a_file_fails(
    server, monkeypatch, tmp_path, capsys
):
    url, files = server
    for name, n in (("train_32x32.mat", 30), ("test_32x32.mat", 20)):
        write_mat(str(tmp_path / name), n)
        files[name] = (tmp_path / name).read_bytes()
    monkeypatch.setattr(svhn, "URL", url)
    monkeypatch.setattr(svhn, "MD5", {name: hashlib.md5(body).hexdigest() for name, body in files.items()})
    monkeypatch.setattr(svhn, "default_data_dir", lambda: str(tmp_path / "cache"))
    files["train_32x32.mat"] = b"not the official file"
    with pytest.raises(InfoGANError, match="no SVHN files in .* download failed .*train_32x32.mat arrived with MD5"):
        svhn.load()
    assert os.listdir(tmp_path / "cache") == []
    shutil.copy(tmp_path / "test_32x32.mat", tmp_path / "cache")  # as a user who put the offline subset there
    only_test = svhn.load()
    assert "holds only test_32x32.mat and the download failed" in capsys.readouterr().err
    assert len(only_test.train_images) + len(only_test.val_images) == 20 and "held out" in only_test.validation
    files["train_32x32.mat"] = (tmp_path / "train_32x32.mat").read_bytes()
    both = svhn.load()
    assert both.train_images.shape == (30, 3, 32, 32) and both.validation == "the test split"
    assert sorted(os.listdir(tmp_path / "cache")) == ["test_32x32.mat", "train_32x32.mat"]


def face(width, height, colour=True):
    """A test card: a bright square at the centre of a dark frame, with a mark at the top left."""
    array = np.zeros((height, width, 3), np.uint8)
    array[height // 2 - height // 8 : height // 2 + height // 8, width // 2 - width // 8 : width // 2 + width // 8] = (
        220
    )
    array[: height // 10, : width // 10, 0] = 255
    image = Image.fromarray(array)
    return image if colour else image.convert("L")


@pytest.fixture
def image_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache" / "infogan" / "images"


def test_every_cache_is_under_xdg_cache_home_or_else_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir("images") == str(tmp_path / "xdg" / "infogan" / "images")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    home_cache = str(tmp_path / "home" / ".cache" / "infogan" / "classifiers")
    monkeypatch.setenv("XDG_CACHE_HOME", "")  # empty counts as unset, as the XDG specification says
    assert cache_dir("classifiers") == home_cache
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert cache_dir("classifiers") == home_cache


@pytest.fixture
def homeless(tmp_path, monkeypatch):
    """No $XDG_CACHE_HOME, the temporary directory in tmp_path/tmp, and the once-a-process warning unsaid."""
    monkeypatch.delenv("XDG_CACHE_HOME")
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    files._temporary_cache.cache_clear()
    yield tmp_path / "tmp" / f"infogan-cache-{os.getuid()}"
    files._temporary_cache.cache_clear()


@pytest.mark.parametrize("home", ["no home", "a file"])
def test_caches_go_to_a_private_temporary_folder_where_the_home_cannot_hold_them(
    home, homeless, tmp_path, monkeypatch, capsys
):
    # "~" where $HOME is unset and the user id has no name (a container's --user 1234), which a join would
    # have made a folder named ~ in the current directory; or a home that cannot be written.
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", "~" if home == "no home" else str(tmp_path / "file"))
    (tmp_path / "file").write_text("")
    assert cache_dir("images") == str(homeless / "images")
    assert cache_dir("neighbours") == str(homeless / "neighbours")
    assert sorted(os.listdir(tmp_path)) == ["file", "tmp"]
    assert homeless.stat().st_mode & 0o777 == 0o700
    said = capsys.readouterr().err
    assert said.count("warning:") == 1 and str(homeless) in said and "XDG_CACHE_HOME" in said
    assert ("no home directory is known" if home == "no home" else "is not writable") in said


def test_a_temporary_cache_folder_that_is_a_link_or_open_to_others_is_passed_over(homeless, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", "~")
    elsewhere = tmp_path / "planted"
    elsewhere.mkdir()
    homeless.symlink_to(elsewhere)
    first = cache_dir("ops")
    assert not first.startswith((str(homeless), str(elsewhere))) and os.path.isdir(os.path.dirname(first))
    homeless.unlink()
    homeless.mkdir(mode=0o777)
    homeless.chmod(0o777)
    files._temporary_cache.cache_clear()
    second = cache_dir("ops")
    assert not second.startswith(str(homeless)) and os.path.dirname(second) != os.path.dirname(first)
    assert os.listdir(elsewhere) == []


def test_the_operators_build_is_given_a_home_where_none_is_known(tmp_path, monkeypatch):
    # setuptools reads ~/.pydistutils.cfg and fails outright where no home is known.
    from infogan.ops import batched_conv

    monkeypatch.setenv("HOME", "~")
    given = {}

    def run(command, **options):
        given.update(options)
        raise subprocess.CalledProcessError(2, command)

    monkeypatch.setattr(batched_conv.subprocess, "run", run)
    with pytest.raises(subprocess.CalledProcessError):
        batched_conv._compile(str(tmp_path), {"extra_cxx_cflags": [], "extra_ldflags": []})
    assert given["env"]["HOME"] == str(tmp_path)


def test_celeba_framing_is_the_same_at_full_and_half_size(tmp_path, image_cache):
    full, half = tmp_path / "full" / "img_align_celeba", tmp_path / "half" / "img_align_celeba"
    for folder, scale in ((full, 1), (half, 2)):
        folder.mkdir(parents=True)
        for i in range(3):
            face(178 // scale, 218 // scale).save(folder / f"{i:06d}.jpg", quality=95)
    a = images.load_folder(str(full), 32, 3, "celeba")
    b = images.load_folder(str(half), 32, 3, "celeba")
    assert a.shape == b.shape == (3, 3, 32, 32)
    assert np.abs(a.astype(int) - b.astype(int)).mean() < 6  # the same framing, up to JPEG and resampling
    assert images.crop_box(178, 218, "celeba") == pytest.approx((35.0, 55.0, 143.0, 163.0))


def test_a_folder_of_mixed_sizes_grey_and_colour_png_and_jpeg(tmp_path, image_cache):
    folder = tmp_path / "mine"
    (folder / "sub").mkdir(parents=True)
    face(40, 30).save(folder / "a.png")
    face(64, 64, colour=False).save(folder / "b.jpeg")
    face(50, 90).save(folder / "sub" / "c.JPG")
    (folder / "notes.txt").write_text("not an image")
    (folder / "sub" / "._c.JPG").write_bytes(b"\x00\x05\x16\x07 macOS's metadata, not an image")
    (folder / "__MACOSX" / "sub").mkdir(parents=True)
    (folder / "__MACOSX" / "sub" / "._c.JPG").write_bytes(b"\x00\x05\x16\x07")
    (folder / ".ipynb_checkpoints").mkdir()
    face(40, 30).save(folder / ".ipynb_checkpoints" / "a-checkpoint.png")  # a copy, not another image
    os.makedirs(tmp_path / "elsewhere")
    face(30, 30).save(tmp_path / "elsewhere" / "d.png")
    os.symlink(tmp_path / "elsewhere", folder / "linked")  # followed: its image is one of the folder's
    os.symlink(tmp_path / "elsewhere", folder / "sub" / "linked again")  # one folder read once
    os.symlink(folder, folder / "sub" / "loop")  # a link back up: not read forever
    assert [os.path.relpath(p, folder) for p in images.list_images(str(folder))] == [
        "a.png",
        "b.jpeg",
        os.path.join("linked", "d.png"),
        os.path.join("sub", "c.JPG"),
    ]
    os.remove(folder / "linked")
    os.remove(folder / "sub" / "linked again")
    grey = images.load_folder(str(folder), 16, 1, "folder")
    colour = images.load_folder(str(folder), 16, 3, "folder")
    assert grey.shape == (3, 1, 16, 16) and colour.shape == (3, 3, 16, 16)
    assert colour[:, :, 8, 8].min() > 150 and colour[:, :, 1, 1].max() < 60  # the centre square, the frame
    assert len(os.listdir(image_cache)) == 2  # one cached array per setting
    cfg = TrainConfig.from_flags({"dataset": "folder", "data_dir": str(folder), "image_size": 16, "val_size": 1})
    ds = load_dataset(cfg)
    assert ds.train_images.shape == (2, 3, 16, 16) and ds.val_labels is None and ds.val_images.shape == (1, 3, 16, 16)


def test_images_decode_as_they_are_shown(tmp_path):
    """16-bit grey, a camera's orientation tag, and transparent pixels hiding a colour: each decoded as a
    viewer shows it, not as Pillow's plain conversion leaves it (clipped white, sideways, the hidden colour)."""
    ramp = np.repeat(np.linspace(0, 65535, 16)[:, None], 16, axis=1).astype(np.uint16)  # black at the top
    Image.fromarray(ramp).save(tmp_path / "deep.png")
    grey = images.decode(str(tmp_path / "deep.png"), 16, 1, "folder")[0]
    np.testing.assert_allclose(grey.mean(axis=1), np.linspace(0, 255, 16), atol=2)

    stored = np.zeros((32, 64, 3), np.uint8)
    stored[:, :32] = 255  # the left half white, as stored; shown turned a quarter clockwise: the top half
    photo = Image.fromarray(stored)
    orientation = photo.getexif()
    orientation[0x0112] = 6
    photo.save(tmp_path / "photo.jpg", exif=orientation, quality=95)
    shown = images.decode(str(tmp_path / "photo.jpg"), 8, 1, "folder")[0]
    assert shown[:3].min() > 200 and shown[5:].max() < 50

    clear = np.zeros((16, 16, 4), np.uint8)
    clear[..., :3] = 255  # white hidden under alpha 0
    clear[6:10, 6:10] = [255, 0, 0, 255]
    clear[0, :] = [255, 255, 255, 128]  # half-transparent white
    Image.fromarray(clear, "RGBA").save(tmp_path / "sprite.png")
    Image.fromarray(clear, "RGBA").convert("P").save(tmp_path / "palette.png")
    for name in ("sprite.png", "palette.png"):
        rgb = images.decode(str(tmp_path / name), 16, 3, "folder")
        assert rgb[:, 12, 12].tolist() == [0, 0, 0] and rgb[:, 8, 8].tolist() == [255, 0, 0], name
    assert abs(int(images.decode(str(tmp_path / "sprite.png"), 16, 1, "folder")[0, 0, 8]) - 128) <= 1


def test_webp_bmp_and_tiff_images_are_read_as_the_same_png_is(tmp_path):
    for name in ("a.png", "b.webp", "c.bmp", "d.tif", "e.TIFF"):
        face(40, 30).save(tmp_path / name, **({"lossless": True} if name.endswith("webp") else {}))
    assert [os.path.basename(p) for p in images.list_images(str(tmp_path))] == [
        "a.png",
        "b.webp",
        "c.bmp",
        "d.tif",
        "e.TIFF",
    ]
    decoded = images.load_folder(str(tmp_path), 16, 3, "folder")
    assert all(np.array_equal(image, decoded[0]) for image in decoded[1:])


def test_a_large_jpeg_decodes_at_a_reduced_scale_and_looks_the_same(tmp_path, monkeypatch):
    from PIL import JpegImagePlugin

    rng = np.random.default_rng(0)
    smooth = np.linspace(0, 200, 1024)[None, :, None] + np.linspace(0, 50, 768)[:, None, None]
    Image.fromarray((smooth + rng.normal(0, 8, (768, 1024, 3))).clip(0, 255).astype(np.uint8)).save(tmp_path / "p.jpg")
    drafted, draft = [], JpegImagePlugin.JpegImageFile.draft
    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "draft", lambda im, *a: drafted.append(draft(im, *a)))
    reduced = images.decode(str(tmp_path / "p.jpg"), 16, 3, "folder").astype(int)
    assert drafted[0][1][2] == 1024 // 8  # 768 across the crop for 16: decoded at 1/8 scale
    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "draft", lambda *a: None)  # at full scale
    assert np.abs(images.decode(str(tmp_path / "p.jpg"), 16, 3, "folder").astype(int) - reduced).max() <= 2


def test_decoded_images_come_from_the_cache_until_the_folder_changes(tmp_path, image_cache, monkeypatch):
    folder = tmp_path / "mine"
    folder.mkdir()
    face(40, 40).save(folder / "a.png")
    first = images.load_folder(str(folder), 8, 3, "folder")
    monkeypatch.setattr(images, "decode_all", lambda *a: pytest.fail("decoded again"))
    np.testing.assert_array_equal(images.load_folder(str(folder), 8, 3, "folder"), first)
    face(60, 60).save(folder / "b.png")
    monkeypatch.undo()
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert images.load_folder(str(folder), 8, 3, "folder").shape == (2, 3, 8, 8)


def test_bad_folders(tmp_path, image_cache):
    with pytest.raises(InfoGANError, match="holds no PNG, JPEG, WebP, BMP or TIFF images"):
        images.load("folder", str(tmp_path), 32, 3, 10)
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    with pytest.raises(InfoGANError, match="cannot read image .*broken.jpg"):
        images.load("folder", str(tmp_path), 32, 3, 10)
    with pytest.raises(InfoGANError, match="--dataset folder needs --data-dir"):
        images.load("folder", None, 32, 3, 10)
    with pytest.raises(InfoGANError, match="--dataset celeba needs --data-dir"):
        images.load("celeba", None, 32, 3, 10)
    with pytest.raises(InfoGANError, match="does not exist"):
        images.load("celeba", str(tmp_path / "nowhere"), 32, 3, 10)
    (tmp_path / "broken.jpg").unlink()
    face(20, 20).save(tmp_path / "only.png")
    with pytest.raises(InfoGANError, match="--val-size 10 leaves nothing to train on"):
        images.load("folder", str(tmp_path), 32, 3, 10)
    with pytest.raises(InfoGANError, match=r"--val-size 1 leaves nothing .*default for this data.*at least two images"):
        images.load("folder", str(tmp_path), 32, 3, None)


def test_validation_of_an_unlabelled_dataset_has_no_labels(tmp_path, image_cache):
    for i in range(4):
        face(30 + i, 30).save(tmp_path / f"{i}.png")
    cfg = TrainConfig.from_flags({"dataset": "folder", "data_dir": str(tmp_path), "val_size": 1})
    assert load_validation(cfg).val_labels is None


def test_a_folder_labelled_by_its_subfolders(tmp_path, image_cache, monkeypatch):
    """--folder-labels: each image's label is the subfolder of the folder it lies in (at any depth below
    it), numbered in the names' sorted order, the same in the training and validation splits; data.json
    names them. Images outside a subfolder, or a single subfolder, are refused before any image decodes."""
    brightness = {"dogs": 30, "cats": 200, "emus": 120}
    for name, level in brightness.items():
        (tmp_path / name / "more").mkdir(parents=True)
        for i in range(3):
            Image.new("L", (10 + i, 10), level).save(tmp_path / name / f"{i}.png")
        Image.new("L", (10, 10), level).save(tmp_path / name / "more" / "deep.png")
    flags = {"dataset": "folder", "data_dir": str(tmp_path), "image_size": 16, "channels": 1, "val_size": 4}
    data = load_dataset(TrainConfig.from_flags(flags | {"folder_labels": True}))
    assert data.label_names == ["cats", "dogs", "emus"] and data.record()["label_names"] == ["cats", "dogs", "emus"]
    assert "labelled by their 3 subfolders" in data.source and len(data.val_labels) == 4
    for split_images, split_labels in ((data.train_images, data.train_labels), (data.val_images, data.val_labels)):
        levels = [brightness[data.label_names[label]] for label in split_labels]
        np.testing.assert_allclose(split_images.mean(axis=(1, 2, 3)), levels, atol=1)
    assert np.bincount(np.concatenate([data.train_labels, data.val_labels])).tolist() == [4, 4, 4]
    unlabelled = load_dataset(TrainConfig.from_flags(flags))
    assert unlabelled.val_labels is None and "label_names" not in unlabelled.record()
    np.testing.assert_array_equal(unlabelled.val_images, data.val_images)  # the same split either way

    monkeypatch.setattr(images, "decode_all", lambda *a: pytest.fail("decoded before the labels were checked"))
    Image.new("L", (10, 10)).save(tmp_path / "loose.png")
    with pytest.raises(InfoGANError, match=r"but .*loose.png lies in .* itself: move such images into a subfolder"):
        load_dataset(TrainConfig.from_flags(flags | {"folder_labels": True}))
    (tmp_path / "one" / "kind").mkdir(parents=True)
    Image.new("L", (10, 10)).save(tmp_path / "one" / "kind" / "a.png")
    with pytest.raises(InfoGANError, match=r"--folder-labels found one label in .*one \(its only subfolder, kind/\)"):
        load_dataset(TrainConfig.from_flags(flags | {"data_dir": str(tmp_path / "one"), "folder_labels": True}))
    with pytest.raises(InfoGANError, match="--folder-labels labels a folder's images by .*: it needs --dataset folder"):
        TrainConfig.from_flags({"dataset": "celeba", "folder_labels": True})


def test_a_run_on_a_labelled_folder_logs_and_scores_its_accuracy(tmp_path):
    data = tmp_path / "data"
    for label, level in (("bright", 200), ("dark", 30)):
        (data / label).mkdir(parents=True)
        for i in range(6):
            Image.new("L", (12, 12), level + i).save(data / label / f"{i}.png")
    run = str(tmp_path / "run")
    flags = ["--dataset", "folder", "--data-dir", str(data), "--preset", "faces3d", "--categorical", "2"]
    trained = script("train.py", *flags, "--folder-labels", "--run-dir", run, "--iterations", "2", "--batch-size", "4")
    assert trained.returncode == 0, trained.stderr
    with open(os.path.join(run, "log.jsonl")) as f:
        assert "accuracy" in json.loads(f.readlines()[-1])
    scored = script("evaluate.py", run, "--accuracy-only")
    assert scored.returncode == 0, scored.stderr
    assert "labels: 0 bright, 1 dark" in scored.stdout
    with open(os.path.join(run, "metrics.json")) as f:
        metrics = json.load(f)
    assert metrics["label_names"] == ["bright", "dark"] and metrics["images"] == 1  # a tenth of 12
    plain = str(tmp_path / "plain")
    assert script("train.py", *flags, "--run-dir", plain, "--iterations", "1", "--batch-size", "4").returncode == 0
    relabelled = script("train.py", "--resume", plain, "--folder-labels")
    one_error_line(relabelled, "--folder-labels cannot change when resuming")


def test_a_folder_that_changed_since_its_run_trained_is_told_on_resume_and_evaluation(tmp_path):
    """Images added to a run's folder (or another folder at its path) would resume it on other images and
    score it on another validation split: told, until --data-dir names the data to use."""
    data = tmp_path / "data"
    data.mkdir()
    for i in range(12):
        face(40 + i, 50, colour=False).save(data / f"{i}.png")
    run = str(tmp_path / "run")
    flags = ["--dataset", "folder", "--preset", "faces3d", "--data-dir", str(data), "--batch-size", "4"]
    trained = script("train.py", *flags, "--run-dir", run, "--iterations", "2", "--val-size", "4")
    assert trained.returncode == 0, trained.stderr
    for i in range(12, 16):
        face(40 + i, 50, colour=False).save(data / f"{i}.png")
    told = "the data found are not {}own: it trained on 8 images of folder from"
    one_error_line(script("train.py", "--resume", run, "--iterations", "3"), told.format("the run's "))
    one_error_line(script("evaluate.py", run), told.format(f"{run}'s "))
    assert script("evaluate.py", run, "--data-dir", str(data)).returncode == 0  # scored on them, as asked
    assert len(os.listdir(os.path.join(run, "checkpoints"))) == 1


@pytest.mark.slow
@pytest.mark.parametrize(
    "preset, shape, grids",
    [
        ("svhn", (3, 32, 32), ["traversal_cat1", "traversal_cat4", "traversal_cont4"]),
        ("celeba", (3, 32, 32), ["traversal_cat10"]),
        ("faces3d", (1, 32, 32), ["traversal_cont5"]),
        ("chairs3d", (1, 64, 64), ["traversal_cat3", "traversal_cont1"]),
    ],
)
def test_each_papers_architecture_trains_and_draws_end_to_end(tmp_path, preset, shape, grids):
    data = tmp_path / "data"
    data.mkdir()
    if preset == "svhn":
        write_mat(str(data / "test_32x32.mat"), 24)
        dataset = ["--dataset", "svhn"]
    else:
        for i in range(12):
            face(40 + i, 50, colour=shape[0] == 3).save(data / f"{i}.png")
        dataset = ["--dataset", "celeba" if preset == "celeba" else "folder", "--preset", preset]
    if preset == "chairs3d":  # its three codes with 4 values, not 20: grids of 64x64 images cost 30 ms an image
        dataset += ["--categorical", "4", "4", "4"]
    run = str(tmp_path / "run")
    args = [*dataset, "--data-dir", str(data), "--run-dir", run, "--iterations", "2", "--batch-size", "4"]
    trained = script("train.py", *args, "--val-size", "4", "--grid-every", "2", "--eval-every", "1")
    assert trained.returncode == 0, trained.stderr
    with open(os.path.join(run, "log.jsonl")) as f:
        logged = set(json.loads(f.readline()))
    assert ("L_I_cat" in logged, "L_I_cont" in logged) == (preset != "faces3d", preset != "celeba")  # its codes'
    if preset == "faces3d":  # continuous codes alone: their L_I shown while training; no categorical curves
        assert "L_I_cont=" in trained.stderr and "L_I_cat" not in trained.stderr
        one_error_line(script("plot_runs.py", run), "plot_runs compares the categorical codes' L_I and accuracy")
    sampled = script("sample.py", run, "--out", str(tmp_path / "samples"), "--steps", "3")
    assert sampled.returncode == 0, sampled.stderr
    drawn = sorted(n[:-4] for n in os.listdir(tmp_path / "samples"))
    assert set(grids) <= set(drawn) and "random" in drawn
    png = np.asarray(Image.open(tmp_path / "samples" / "random.png").convert("RGB")).astype(int)
    colourful = np.abs(png[..., 0] - png[..., 1]).max() > 0
    assert colourful == (shape[0] == 3)  # colour images drawn in colour, grey in grey
    evaluated = script("evaluate.py", run, "--accuracy-only")
    if preset == "svhn":  # labels: every categorical code scored against the digits
        assert evaluated.returncode == 0, evaluated.stderr
        assert [
            line.split(":")[0] for line in evaluated.stdout.splitlines() if line.startswith("categorical code")
        ] == [f"categorical code {i}" for i in (1, 2, 3, 4)]
    else:  # no labels: evaluate.py says so, and without --accuracy-only checks the samples' spread alone
        assert evaluated.returncode == 2 and "have no labels" in evaluated.stderr
        spread = script("evaluate.py", run)
        assert spread.returncode == 0 and "Q's codes are not scored" in spread.stderr, spread.stderr
        assert ("with --folder-labels has its subfolders'" in spread.stderr) == (preset != "celeba")
        with open(os.path.join(run, "metrics.json")) as f:
            metrics = json.load(f)
        assert 0 <= metrics["sample_spread"]["sample_spread"] <= 0.5 and "accuracy" not in metrics
        assert metrics["sample_spread"]["sample_spread_of_real_images"] > 0.01  # the test's faces differ
