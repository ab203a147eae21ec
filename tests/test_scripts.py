"""scripts/train.py, sample.py, evaluate.py and plot_runs.py end to end on tiny settings, and their
answers to bad input."""

import json
import os
import shlex
import sys

import numpy as np
import paddle
import pytest
from conftest import TINY, copy_run, idx_bytes, log_records, one_error_line, script, train, write_file, write_idx_dir

from infogan.config import TrainConfig, resumed_config
from infogan.data import mnist
from infogan.rundir import is_run

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def six_steps(tiny_mnist, tmp_path_factory):
    """The folder of a run of six steps, trained once for the tests that read it."""
    folder = tmp_path_factory.mktemp("six_steps")
    result = train(tiny_mnist, str(folder / "run"), "--iterations", "6")
    assert result.returncode == 0, result.stderr
    return folder


def test_train_then_sample(six_steps, tiny_mnist, tmp_path):
    run_dir = str(six_steps / "run")
    records = log_records(run_dir)
    assert [r["step"] for r in records] == [1, 2, 3, 4, 5, 6]
    assert set(records[0]) >= {"d_loss", "g_loss", "L_I_cat", "L_I_cont", "d_real", "d_fake", "images_per_s"}
    with open(os.path.join(run_dir, "config.json")) as f:
        assert json.load(f)["batch_size"] == 8
    with open(os.path.join(run_dir, "data.json")) as f:
        data = json.load(f)
    assert data["train_images"] == 64 and data["validation"] == "the test split" and tiny_mnist in data["source"]
    grids = sorted(os.listdir(os.path.join(run_dir, "grids")))
    assert {
        "step0000006_traversal_cat1.png",
        "step0000006_traversal_cont1.png",
        "step0000006_traversal_cont2.png",
    } <= set(grids)
    assert "step0000003_random.png" in grids
    assert os.path.getsize(os.path.join(run_dir, "curves.png")) > 10_000
    assert sorted(os.listdir(os.path.join(run_dir, "checkpoints"))) == ["step_0000003", "step_0000006"]
    assert sorted(os.listdir(six_steps)) == ["run"]  # no staging folder left beside it

    sampled = script("sample.py", run_dir, "--steps", "5", "--out", str(tmp_path / "samples"))
    assert sampled.returncode == 0, sampled.stderr
    expected = ["random.png", "traversal_cat1.png", "traversal_cont1.png", "traversal_cont2.png"]
    assert sorted(os.listdir(tmp_path / "samples")) == expected


def test_resume_continues_as_if_never_stopped(six_steps, tiny_run, tmp_path):
    straight, stopped = str(six_steps / "run"), copy_run(tiny_run, tmp_path / "stopped")  # 6 steps; 3
    config = os.path.join(stopped, "config.json")
    with open(config) as f:
        values = json.load(f)
    with open(config, "w") as f:  # as written before --val-size's default meant the data's own: it still resumes
        json.dump(dict(values, val_size=5000), f)
    resumed = script("train.py", "--resume", stopped, "--iterations", "6")
    assert resumed.returncode == 0, resumed.stderr
    a, b = log_records(straight), log_records(stopped)
    assert [r["step"] for r in b] == [1, 2, 3, 4, 5, 6]
    for ra, rb in zip(a, b, strict=True):
        for key in ("d_loss", "g_loss", "L_I_cat", "L_I_cont"):
            assert rb[key] == pytest.approx(ra[key], rel=1e-5, abs=1e-6), (ra["step"], key)
    # The weights' moving averages (what inference reads) continue exactly too.
    averages = [
        paddle.static.load_program_state(os.path.join(run, "checkpoints", "step_0000006", "ema"))
        for run in (straight, stopped)
    ]
    assert averages[0].keys() == averages[1].keys() and len(averages[0]) > 10
    for name, value in averages[0].items():
        np.testing.assert_allclose(averages[1][name], value, rtol=1e-5, atol=1e-6, err_msg=name)


def test_neighbour_views_train_and_resume_with_the_runs_own_table(tiny_mnist, tmp_path):
    from infogan.data import mnist
    from infogan.data.neighbours import nearest

    run_dir = str(tmp_path / "run")
    first = train(tiny_mnist, run_dir, "--iterations", "3", "--neighbours", "2")
    assert first.returncode == 0, first.stderr
    assert "neighbours: the 2 nearest of each of 64 training images" in first.stderr
    table = np.load(os.path.join(run_dir, "neighbours.npy"))
    np.testing.assert_array_equal(table, nearest(mnist.load("mnist", tiny_mnist).train_images, 2))
    resumed = script("train.py", "--resume", run_dir, "--iterations", "6")
    assert resumed.returncode == 0, resumed.stderr
    assert "neighbours:" not in resumed.stderr  # read from the run directory, not found again
    records = log_records(run_dir)
    assert [r["step"] for r in records] == [1, 2, 3, 4, 5, 6] and all("I_real" in r for r in records)
    with open(os.path.join(run_dir, "config.json")) as f:
        assert json.load(f)["neighbours"] == 2
    assert is_run(run_dir)  # its table is a run's own file: --overwrite may replace it


def test_resume_by_epochs_trains_to_them(tiny_run, tmp_path):
    run_dir = copy_run(tiny_run, tmp_path / "run")
    resumed = script("train.py", "--resume", run_dir, "--epochs", "1")  # 64 images, batch 8: 8 steps an epoch
    assert resumed.returncode == 0, resumed.stderr
    assert log_records(run_dir)[-1]["step"] == 8
    with open(os.path.join(run_dir, "config.json")) as f:
        config = json.load(f)
    assert (config["epochs"], config["iterations"]) == (1, None)
    one_error_line(script("train.py", "--resume", run_dir, "--iterations", "5"), f"{run_dir} has trained 8 steps")
    assert log_records(run_dir)[-1]["step"] == 8


def test_a_path_starting_with_a_tilde_is_in_the_home_folder(tiny_mnist, tmp_path):
    """The shell leaves ~ as it is after `=` and in quotes: taken literally, `--run-dir=~/run` made a folder
    named ~ in the current directory (and `rm -rf ~`, typed to clean it up, removes the home folder)."""
    home, cwd = tmp_path / "home", tmp_path / "cwd"
    os.makedirs(cwd)
    os.makedirs(home)
    os.symlink(tiny_mnist, home / "data")
    env = dict(os.environ, HOME=str(home))
    trained = script("train.py", "--run-dir=~/run", "--data-dir=~/data", *TINY, "--iterations", "3", env=env, cwd=cwd)
    assert trained.returncode == 0, trained.stderr
    sampled = script("sample.py", "~/run", "--out=~/grids", "--steps", "3", env=env, cwd=cwd)
    assert sampled.returncode == 0, sampled.stderr
    assert os.listdir(cwd) == [] and {"run", "grids"} <= set(os.listdir(home))
    with open(home / "run" / "config.json") as f:
        assert json.load(f)["data_dir"] == str(home / "data")


def test_commands_the_scripts_suggest_run_as_pasted_for_a_path_with_spaces(tiny_mnist, tmp_path):
    """A run directory with a space (or a quote) was named bare in "redraw with: python scripts/sample.py
    R" and "pass --resume R": pasted into a shell, those commands named another folder."""
    run_dir = str(tmp_path / "my runs" / "Bob's run")
    trained = train(tiny_mnist, run_dir, "--iterations", "3")
    assert trained.returncode == 0, trained.stderr
    redraw = shlex.split(trained.stderr.split("redraw with: ")[1].splitlines()[0])
    assert redraw[1:] == ["scripts/sample.py", run_dir]
    again = train(tiny_mnist, run_dir, "--iterations", "3")
    resume = shlex.split(again.stderr.split("pass --resume ")[1].split(" to continue it")[0])
    assert resume == [run_dir]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--batch-size", "0"], "--batch-size must be a whole number from 2"),
        (["--batch-size", "65"], "--batch-size 65 is larger than the 64 training images"),
        (["--iterations", "-5"], "--iterations must be a whole number"),
        (["--lr-d", "0"], "--lr-d must be a learning rate"),
        (["--lambda-cat", "-1"], "--lambda-cat must be a weight >= 0"),
        (["--views", "0"], "--views must be a whole number from 1 to 16"),
        (["--neighbours", "64"], "--neighbours 64: choose from 1 to 63, fewer than the 64 training images"),
        (["--dataset", "cifar"], "--dataset 'cifar' is not known"),
        (["--device", "tpu"], "--device 'tpu' is not known"),
        (["--device", "gpu"], "--device gpu: this PaddlePaddle build has no CUDA"),
        (["--categorical", "1"], "--categorical must be a whole number from 2"),
        (["--epochs", "0"], "--epochs must be a whole number from 1"),
        (["--lambda-cont", "nan"], "--lambda-cont must be a weight >= 0"),
        (["--li-warmup", "-1"], "--li-warmup must be a whole number from 0"),
        (["--arch", "resnet"], "--arch 'resnet' is not known"),
        (["--arch", "svhn"], "--arch svhn needs images whose side is a multiple of 16"),
        (["--batch-size", "x"], "argument --batch-size: invalid int value: 'x'"),
        (["--no-such-flag"], "unrecognized arguments: --no-such-flag"),
    ],
)
def test_bad_training_input_writes_nothing(tiny_mnist, tmp_path, args, message):
    run_dir = str(tmp_path / "run")
    result = train(tiny_mnist, run_dir, "--iterations", "2", *args)
    one_error_line(result, message)
    assert os.listdir(tmp_path) == []


def test_a_mistaken_setting_is_told_before_paddle_is_imported(tmp_path):
    """Paddle's import takes seconds; a typo in a setting should not wait for it. A `paddle` that cannot be
    imported stands in for it: the mistake is still told in one line."""
    (tmp_path / "paddle").mkdir()
    (tmp_path / "paddle" / "__init__.py").write_text("raise ImportError('paddle imported')\n")
    env = os.environ | {"PYTHONPATH": str(tmp_path)}
    one_error_line(script("train.py", "--views", "0", env=env), "--views must be a whole number from 1 to 16")
    assert "paddle imported" in script("train.py", "--views", "2", "--iterations", "1", env=env).stderr
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "config.json").write_text(TrainConfig().to_json())
    one_error_line(script("train.py", "--resume", str(run_dir), "--lr-g", "0.1", env=env), "--lr-g cannot change")
    for name in ("sample.py", "evaluate.py"):
        one_error_line(script(name, str(tmp_path / "missing"), env=env), f"{tmp_path / 'missing'} is not a directory")


def test_bad_data_dir_creates_nothing(tmp_path):
    run_dir = str(tmp_path / "run")
    one_error_line(script("train.py", "--data-dir", str(tmp_path / "none"), "--run-dir", run_dir), "--data-dir")
    assert not os.path.exists(run_dir)


def test_resume_refusals(tiny_run, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    one_error_line(script("train.py", "--resume", str(empty)), f"{empty} has no config.json")
    run_dir = copy_run(tiny_run, tmp_path / "run")
    one_error_line(script("train.py", "--resume", run_dir, "--lr-g", "0.1"), "--lr-g cannot change when resuming")
    one_error_line(script("train.py", "--resume", run_dir, "--run-dir", "x"), "--resume continues a run")
    no_checkpoint = tmp_path / "no_checkpoint"
    no_checkpoint.mkdir()
    (no_checkpoint / "config.json").write_text(open(os.path.join(run_dir, "config.json")).read())
    restarted = script("train.py", "--resume", str(no_checkpoint), "--iterations", "2")  # killed before step 1's
    assert restarted.returncode == 0 and "has no checkpoint yet: training starts again from step 0" in restarted.stderr
    assert [r["step"] for r in log_records(str(no_checkpoint))] == [1, 2]


def test_a_run_names_its_data_folder_whole_and_one_not_there_is_told(tiny_mnist, tiny_run, tmp_path):
    """A relative --data-dir is stored whole, so that evaluate.py and --resume find the images from any
    current folder; a run whose data folder is not there (moved, or named relatively by an earlier version)
    says to name it again."""
    relative = os.path.relpath(tiny_mnist)
    assert TrainConfig.from_flags({"data_dir": relative}).data_dir == tiny_mnist
    assert resumed_config(tiny_run, {"data_dir": relative, "iterations": 9}).data_dir == tiny_mnist
    run_dir = copy_run(tiny_run, tmp_path / "run")
    config = os.path.join(run_dir, "config.json")
    with open(config) as f:
        values = json.load(f)
    with open(config, "w") as f:
        json.dump(dict(values, data_dir="data/mnist"), f)
    gone = f"{run_dir} was trained on the images in data/mnist, which is not there now: pass --data-dir"
    one_error_line(script("train.py", "--resume", run_dir, "--iterations", "4"), gone)
    one_error_line(script("evaluate.py", run_dir), gone)
    resumed = script("train.py", "--resume", run_dir, "--iterations", "4", "--data-dir", relative, cwd=os.getcwd())
    assert resumed.returncode == 0, resumed.stderr
    with open(config) as f:
        assert json.load(f)["data_dir"] == tiny_mnist


def test_sample_and_evaluate_refusals(tmp_path):
    # A missing run directory: test_a_mistaken_setting_is_told_before_paddle_is_imported.
    one_error_line(script("sample.py", str(tmp_path), "--steps", "1"), "--steps must be")
    one_error_line(
        script("sample.py", str(tmp_path), "--range", "1e30"), "--range must be a number above 0 and at most 100"
    )
    one_error_line(script("sample.py", str(tmp_path), "--device", "tpu"), "argument --device: invalid choice")


def test_evaluate_and_plot_runs(tiny_mnist, tmp_path):
    runs = [str(tmp_path / "mlp"), str(tmp_path / "baseline")]
    assert train(tiny_mnist, runs[0], "--iterations", "4", "--arch", "mlp").returncode == 0
    assert train(tiny_mnist, runs[1], "--iterations", "4", "--gan-baseline", "--eval-every", "2").returncode == 0
    test_only = tmp_path / "test_only"
    test_only.mkdir()
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        os.link(os.path.join(tiny_mnist, name), test_only / name)
    result = script("evaluate.py", runs[1], "--data-dir", str(test_only))
    assert result.returncode == 0, result.stderr
    assert "accuracy" in result.stdout and "(20 images)" in result.stdout
    assert "note: samples not judged, which needs the training images" in result.stderr
    assert "among the run's own training images" not in result.stderr
    # A test split holding 5 of the run's training images: the score is told not to be of unseen ones alone.
    train_images, train_labels = mnist.read_split(tiny_mnist, "train")
    test_images, test_labels = mnist.read_split(tiny_mnist, "test")
    mixed = write_idx_dir(str(tmp_path / "mixed"), n_test=0, seed=1)  # the test pair, written below, is what counts
    for stem, array in (
        ("t10k-images-idx3-ubyte", np.concatenate([train_images[:5], test_images[5:]])[:, 0]),
        ("t10k-labels-idx1-ubyte", np.concatenate([train_labels[:5], test_labels[5:]])),
    ):
        write_file(os.path.join(mixed, stem), idx_bytes(array), gz=True)
    seen = script("evaluate.py", runs[1], "--data-dir", mixed, "--accuracy-only")
    assert f"note: 5 of the 20 validation images in {mixed} are among the run's own training images" in seen.stderr
    with open(os.path.join(runs[1], "metrics.json")) as f:
        assert json.load(f)["validation_images_trained_on"] == 5
    assert os.path.getsize(os.path.join(runs[1], "confusion.png")) > 10_000
    with open(os.path.join(runs[1], "metrics.json")) as f:
        metrics = json.load(f)
    assert metrics["images"] == 20 and 0 <= metrics["accuracy"] <= 1 and "the test split" in metrics["data"]
    own = script("evaluate.py", runs[1])  # the run's own --data-dir, not the default data: samples judged too
    assert own.returncode == 0 and tiny_mnist in own.stdout, own.stderr
    assert "warning" not in own.stderr.lower(), own.stderr  # Paddle's notes on unused values silenced
    with open(os.path.join(runs[1], "metrics.json")) as f:
        quality = json.load(f)["sample_quality"]
    assert 1 <= quality["classifier_score"] <= 10 and len(quality["code_purity"]) == 10
    assert quality["frechet_distance_even_labels_vs_real"] > 0 and "with even labels" in own.stdout
    assert quality["spread_within_labels"] > 0 and quality["spread_within_labels_of_real_images"] > 0
    assert "spread of the classifier's features within each label" in own.stdout
    assert len(quality["code_purity_by_sign"]) == 2  # one per continuous code
    assert all(split >= quality["mean_code_purity"] for split in quality["code_purity_by_sign"])
    assert "split by the sign of a continuous code: c1 " in own.stdout
    out = str(tmp_path / "cmp.png")
    result = script("plot_runs.py", *runs, "--labels", "MLP", "GAN", "--out", out)
    assert result.returncode == 0, result.stderr
    assert os.path.getsize(out) > 10_000
    one_error_line(script("plot_runs.py", *runs, "--labels", "one"), "--labels gives 1 labels for 2 runs")
    for name, magic in (("cmp.pdf", b"%PDF"), ("cmp.svg", b"<?xml")):  # for a paper: the format its name asks for
        assert script("plot_runs.py", *runs, "--out", str(tmp_path / name)).returncode == 0
        assert (tmp_path / name).read_bytes().startswith(magic)
    one_error_line(
        script("plot_runs.py", *runs, "--out", str(tmp_path / "cmp")), f"--out {tmp_path / 'cmp'}: end the file name in"
    )
    assert not (tmp_path / "cmp").exists()


def test_progress_written_to_a_file_is_whole_lines(monkeypatch):
    """A log file (nohup, a batch job) gets the bar as lines, the first and then one a minute, where a terminal
    gets tqdm's carriage-returned bar redrawn in place."""
    import io

    from infogan.progress import progress

    log = io.StringIO()
    monkeypatch.setattr(sys, "stderr", log)
    for _ in progress(range(500), desc="training"):
        pass
    lines = log.getvalue().split("\n")
    assert "\r" not in log.getvalue() and lines[-1] == ""
    assert lines[0].startswith("training:   0%") and all(line.startswith("training: 100%") for line in lines[1:-1])
    assert 2 <= len(lines) - 1 <= 3  # the start, the end (and the end again as the bar closes)
