"""Nothing lost: interruption, kill -9, divergence, failed writes, corrupt checkpoints, incompatible runs."""

import errno
import json
import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import ROOT
from test_scripts import TINY, log_records, script, train

from infogan import InfoGANError
from infogan.config import TrainConfig
from infogan.trainer import Trainer


def start_training(tiny_mnist, run_dir, *args):
    cmd = [sys.executable, os.path.join(ROOT, "scripts", "train.py"), "--data-dir", tiny_mnist, *TINY, *args]
    return subprocess.Popen(
        cmd + ["--run-dir", run_dir], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def wait_for_log(run_dir, timeout=120):
    path = os.path.join(run_dir, "log.jsonl")
    deadline = time.time() + timeout
    while time.time() < deadline:
        if os.path.exists(path) and os.path.getsize(path) > 0:
            return
        time.sleep(0.05)
    pytest.fail("training never logged a step")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_signal_saves_and_resume_finishes(tiny_mnist, tmp_path, signum):
    run_dir = str(tmp_path / "run")
    proc = start_training(tiny_mnist, run_dir, "--iterations", "10000", "--checkpoint-every", "10000")
    wait_for_log(run_dir)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signum
    assert "checkpoint and logs saved; resume with: python scripts/train.py --resume" in err
    step = len(log_records(run_dir))
    assert os.listdir(os.path.join(run_dir, "checkpoints")) == [f"step_{step:07d}"]
    resumed = script("train.py", "--resume", run_dir, "--iterations", str(step + 2))
    assert resumed.returncode == 0, resumed.stderr
    assert [r["step"] for r in log_records(run_dir)] == list(range(1, step + 3))


def test_kill_9_at_random_moments_never_loses_the_last_checkpoint(tiny_mnist, tmp_path):
    run_dir, total = str(tmp_path / "run"), 40
    rng = random.Random(0)
    args = ["--iterations", str(total), "--checkpoint-every", "1", "--keep-checkpoints", "2"]
    proc = start_training(tiny_mnist, run_dir, *args)
    for _ in range(3):
        wait_for_log(run_dir)
        time.sleep(rng.uniform(0.0, 1.5))
        proc.kill()
        proc.wait()
        proc = subprocess.Popen(
            [sys.executable, os.path.join(ROOT, "scripts", "train.py"), "--resume", run_dir],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert [r["step"] for r in log_records(run_dir)] == list(range(1, total + 1))
    assert not [n for n in os.listdir(os.path.join(run_dir, "checkpoints")) if not n.startswith("step_")]


def tiny_trainer(tiny_mnist, run_dir, **options):
    os.makedirs(os.path.join(run_dir, "checkpoints"))
    cfg = TrainConfig(data_dir=tiny_mnist, batch_size=8, iterations=6, device="cpu", **options).validate()
    return Trainer(cfg, run_dir)


def test_divergence_stops_at_the_first_bad_step_and_keeps_the_checkpoint(tiny_mnist, tmp_path, monkeypatch):
    run_dir = str(tmp_path / "run")
    trainer = tiny_trainer(tiny_mnist, run_dir, checkpoint_every=2)
    real_step = trainer.train_step

    def step_going_bad(step, real):
        stats = real_step(step, real)
        return dict(stats, g_loss=float("nan")) if step == 2 else stats

    monkeypatch.setattr(trainer, "train_step", step_going_bad)
    with pytest.raises(
        InfoGANError, match=r"diverged at step 3: g_loss became nan; the last good checkpoint .*step_0000002"
    ):
        trainer.run(start_from=None)
    assert os.listdir(os.path.join(run_dir, "checkpoints")) == ["step_0000002"]


def test_disk_full_keeps_the_previous_checkpoint(tiny_mnist, tmp_path, monkeypatch):
    run_dir = str(tmp_path / "run")
    trainer = tiny_trainer(tiny_mnist, run_dir, checkpoint_every=2)
    import paddle

    real_save, calls = paddle.static.save, []

    def save_until_full(program, prefix, *args, **kwargs):
        calls.append(prefix)
        if len(calls) > 2:  # the second checkpoint's first file
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_save(program, prefix, *args, **kwargs)

    monkeypatch.setattr(paddle.static, "save", save_until_full)
    with pytest.raises(InfoGANError, match="step-4 checkpoint .*No space left on device; .*step_0000002 is intact"):
        trainer.run(start_from=None)
    checkpoints = os.listdir(os.path.join(run_dir, "checkpoints"))
    assert "step_0000002" in checkpoints and "step_0000004" not in checkpoints


def test_corrupt_checkpoint_is_reported(tiny_mnist, tmp_path):
    run_dir = str(tmp_path / "run")
    assert train(tiny_mnist, run_dir, "--iterations", "3").returncode == 0
    params = os.path.join(run_dir, "checkpoints", "step_0000003", "d_step.pdparams")
    with open(params, "r+b") as f:
        f.truncate(100)
    result = script("train.py", "--resume", run_dir, "--iterations", "6")
    assert result.returncode == 2 and "step_0000003 cannot be loaded" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "name, change, output",
    [
        ("sample.py", {"noise_dim": 30}, os.path.join("samples", "random.png")),
        ("evaluate.py", {"categories": 12}, "metrics.json"),
    ],
)
def test_sample_and_evaluate_on_incompatible_run(tiny_mnist, tmp_path, name, change, output):
    run_dir = str(tmp_path / "run")
    assert train(tiny_mnist, run_dir, "--iterations", "3").returncode == 0
    config = os.path.join(run_dir, "config.json")
    with open(config) as f:
        values = json.load(f)
    with open(config, "w") as f:
        json.dump(dict(values, **change), f)
    data = ["--data-dir", tiny_mnist] if name == "evaluate.py" else []
    result = script(name, run_dir, *data)
    assert result.returncode == 2 and "does not fit this model" in result.stderr, result.stderr
    assert not os.path.exists(os.path.join(run_dir, output))


def test_unwritable_run_dir(tiny_mnist, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("a file, not a folder")
    result = train(tiny_mnist, str(blocker / "run"), "--iterations", "1")
    assert result.returncode == 2 and "cannot create run directory" in result.stderr


def test_half_written_log_line_is_dropped_on_resume(tiny_mnist, tmp_path):
    run_dir = str(tmp_path / "run")
    assert train(tiny_mnist, run_dir, "--iterations", "3").returncode == 0
    with open(os.path.join(run_dir, "log.jsonl"), "a") as f:
        f.write('{"step": 4, "d_lo')
    assert script("train.py", "--resume", run_dir, "--iterations", "5").returncode == 0
    assert [r["step"] for r in log_records(run_dir)] == [1, 2, 3, 4, 5]
    assert np.isfinite([r["d_loss"] for r in log_records(run_dir)]).all()


def test_atomic_writes_leave_nothing_half_written_and_are_readable(tmp_path):
    from infogan.files import atomic_path, write_text

    path = tmp_path / "config.json"
    write_text(str(path), "old")
    with pytest.raises(RuntimeError), atomic_path(str(path)) as tmp:
        with open(tmp, "w") as f:
            f.write("half")
        raise RuntimeError("killed mid-write")
    assert path.read_text() == "old" and os.listdir(tmp_path) == ["config.json"]
    umask = os.umask(0o022)
    try:
        write_text(str(tmp_path / "new.json"), "{}")
    finally:
        os.umask(umask)
    assert (os.stat(tmp_path / "new.json").st_mode & 0o777) == 0o644


def test_a_run_from_before_the_3000_iteration_default_resumes_to_its_2000():
    written_before = json.loads(TrainConfig().to_json()) | {"iterations": None}
    assert TrainConfig.from_dict(written_before).iterations == 2000
    assert TrainConfig.from_dict(written_before | {"epochs": 3}).iterations is None  # epochs decided then
    assert json.loads(TrainConfig().to_json())["iterations"] == 3000  # new runs spell the default out
    assert json.loads(TrainConfig(epochs=3).to_json())["iterations"] is None


@pytest.mark.parametrize("setting, then, now", [("li_warmup", 0, 500), ("lambda_real", 0.0, 3.0), ("views", 1, 2)])
def test_a_run_from_before_a_setting_resumes_as_it_trained(setting, then, now):
    written_before = json.loads(TrainConfig(**{setting: then}).to_json())
    del written_before[setting]  # config.json of a run made before the setting existed
    assert getattr(TrainConfig.from_dict(written_before), setting) == then
    assert getattr(TrainConfig.from_dict(json.loads(TrainConfig().to_json())), setting) == now
