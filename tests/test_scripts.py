"""scripts/train.py and scripts/sample.py end to end on tiny settings, and their answers to bad input."""

import json
import os
import subprocess
import sys

import pytest
from conftest import ROOT

TINY = ["--batch-size", "8", "--log-every", "1", "--grid-every", "3", "--checkpoint-every", "3"]


def script(name, *args, env=None):
    cmd = [sys.executable, os.path.join(ROOT, "scripts", name), *args]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)


def train(tiny_mnist, run_dir, *args):
    return script("train.py", "--data-dir", tiny_mnist, "--run-dir", run_dir, *TINY, *args)


def log_records(run_dir):
    with open(os.path.join(run_dir, "log.jsonl")) as f:
        return [json.loads(line) for line in f]


def test_train_then_sample(tiny_mnist, tmp_path):
    run_dir = str(tmp_path / "run")
    result = train(tiny_mnist, run_dir, "--iterations", "6")
    assert result.returncode == 0, result.stderr
    records = log_records(run_dir)
    assert [r["step"] for r in records] == [1, 2, 3, 4, 5, 6]
    assert set(records[0]) >= {"d_loss", "g_loss", "L_I_cat", "L_I_cont", "d_real", "d_fake", "images_per_s"}
    with open(os.path.join(run_dir, "config.json")) as f:
        assert json.load(f)["batch_size"] == 8
    grids = sorted(os.listdir(os.path.join(run_dir, "grids")))
    assert "step0000006_traversal_c1.png" in grids and "step0000006_traversal_c2.png" in grids
    assert "step0000003_random.png" in grids
    assert os.path.getsize(os.path.join(run_dir, "curves.png")) > 10_000
    assert sorted(os.listdir(os.path.join(run_dir, "checkpoints"))) == ["step_0000003", "step_0000006"]

    sampled = script("sample.py", run_dir, "--steps", "5", "--out", str(tmp_path / "samples"))
    assert sampled.returncode == 0, sampled.stderr
    assert sorted(os.listdir(tmp_path / "samples")) == ["random.png", "traversal_c1.png", "traversal_c2.png"]


def test_resume_continues_as_if_never_stopped(tiny_mnist, tmp_path):
    straight, stopped = str(tmp_path / "straight"), str(tmp_path / "stopped")
    assert train(tiny_mnist, straight, "--iterations", "6").returncode == 0
    assert train(tiny_mnist, stopped, "--iterations", "3").returncode == 0
    resumed = script("train.py", "--resume", stopped, "--iterations", "6")
    assert resumed.returncode == 0, resumed.stderr
    a, b = log_records(straight), log_records(stopped)
    assert [r["step"] for r in b] == [1, 2, 3, 4, 5, 6]
    for ra, rb in zip(a, b, strict=True):
        for key in ("d_loss", "g_loss", "L_I_cat", "L_I_cont"):
            assert rb[key] == pytest.approx(ra[key], rel=1e-5, abs=1e-6), (ra["step"], key)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--batch-size", "0"], "--batch-size must be a whole number from 2"),
        (["--iterations", "-5"], "--iterations must be a whole number"),
        (["--lr-d", "0"], "--lr-d must be a learning rate"),
        (["--lambda-cat", "-1"], "--lambda-cat must be a weight >= 0"),
        (["--lambda-real", "-0.5"], "--lambda-real must be a weight >= 0"),
        (["--views", "0"], "--views must be a whole number from 1 to 16"),
        (["--dataset", "cifar"], "--dataset 'cifar' is not known"),
        (["--device", "tpu"], "--device 'tpu' is not known"),
        (["--device", "gpu"], "--device gpu: this PaddlePaddle build has no CUDA"),
        (["--categories", "1"], "--categories must be a whole number from 2"),
        (["--epochs", "0"], "--epochs must be a whole number from 1"),
        (["--lambda-cont", "nan"], "--lambda-cont must be a weight >= 0"),
        (["--li-warmup", "-1"], "--li-warmup must be a whole number from 0"),
        (["--li-delay", "-5"], "--li-delay must be a whole number from 0"),
        (["--arch", "resnet"], "--arch 'resnet' is not known"),
    ],
)
def test_bad_training_input(tiny_mnist, tmp_path, args, message):
    run_dir = str(tmp_path / "run")
    result = train(tiny_mnist, run_dir, "--iterations", "2", *args)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("error: " + message), result.stderr
    assert "Traceback" not in result.stderr
    assert not os.path.exists(run_dir)


def test_bad_data_dir_creates_nothing(tmp_path):
    run_dir = str(tmp_path / "run")
    result = script("train.py", "--data-dir", str(tmp_path / "none"), "--run-dir", run_dir)
    assert result.returncode == 2 and "does not exist" in result.stderr
    assert not os.path.exists(run_dir)


def test_existing_run_dir_is_refused_then_overwritten(tiny_mnist, tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "precious.txt").write_text("keep me")
    refused = train(tiny_mnist, str(run_dir), "--iterations", "1")
    assert refused.returncode == 2 and "already exists" in refused.stderr
    assert (run_dir / "precious.txt").read_text() == "keep me"
    replaced = train(tiny_mnist, str(run_dir), "--iterations", "1", "--overwrite")
    assert replaced.returncode == 0, replaced.stderr
    assert not (run_dir / "precious.txt").exists()


def test_resume_refusals(tiny_mnist, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    result = script("train.py", "--resume", str(empty))
    assert result.returncode == 2 and "has no config.json" in result.stderr
    run_dir = str(tmp_path / "run")
    assert train(tiny_mnist, run_dir, "--iterations", "3").returncode == 0
    changed = script("train.py", "--resume", run_dir, "--lr-g", "0.1")
    assert changed.returncode == 2 and "--lr-g cannot change when resuming" in changed.stderr
    no_checkpoint = tmp_path / "no_checkpoint"
    no_checkpoint.mkdir()
    (no_checkpoint / "config.json").write_text(open(os.path.join(run_dir, "config.json")).read())
    result = script("train.py", "--resume", str(no_checkpoint))
    assert result.returncode == 2 and "holds no checkpoint" in result.stderr
    assert os.listdir(no_checkpoint) == ["config.json"]


def test_sample_and_evaluate_refusals(tmp_path):
    for name in ("sample.py", "evaluate.py"):
        result = script(name, str(tmp_path / "missing"))
        assert result.returncode == 2 and "has no config.json" in result.stderr
    result = script("sample.py", str(tmp_path), "--steps", "1")
    assert result.returncode == 2 and "--steps must be" in result.stderr
