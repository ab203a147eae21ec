"""Nothing lost: interruption, kill -9, divergence, full disks, concurrent trainers, --overwrite of what is
not a run, damaged logs and checkpoints, incompatible runs."""

import argparse
import builtins
import datetime
import errno
import fcntl
import json
import os
import random
import re
import runpy
import select
import shutil
import signal
import stat
import subprocess
import sys
import termios
import time
from pathlib import Path

import numpy as np
import paddle
import pytest
from conftest import ROOT, TINY, aged, copy_run, log_records, one_error_line, script, train, write_idx_dir

from infogan import InfoGANError, checkpoints, cli
from infogan.config import TrainConfig, resumed_config
from infogan.device import Terminated
from infogan.rundir import Log, holder
from infogan.trainer import Trainer, new_run, resume_run

pytestmark = pytest.mark.slow


def start_training(data_dir, *args, **popen):
    """train.py in a process of its own, with Ctrl-C's default action even where the suite ignores SIGINT (a
    background job of a non-interactive shell does, and Python then leaves it ignored until training's loop);
    `popen`: Popen's arguments in place of these."""
    cmd = [sys.executable, os.path.join(ROOT, "scripts", "train.py"), "--data-dir", data_dir, *TINY, *args]
    options = {
        "cwd": ROOT,
        "stdout": subprocess.PIPE,
        "stderr": subprocess.PIPE,
        "text": True,
        "preexec_fn": lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    }
    return subprocess.Popen(cmd, **options | popen)


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
    proc = start_training(tiny_mnist, "--iterations", "10000", "--checkpoint-every", "10000", "--run-dir", run_dir)
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


@pytest.mark.parametrize("nohup", [False, True])
def test_a_terminal_that_hangs_up_stops_the_run_as_ctrl_c_does_unless_under_nohup(tiny_mnist, tmp_path, nohup):
    """An ssh connection that drops hangs up the run's terminal: the kernel sends SIGHUP, whose default action
    ends the run at once, losing every step since the last checkpoint (all of them before the first). The run
    saves and stops instead, as on Ctrl-C; under nohup it trains on."""
    run_dir = str(tmp_path / "run")
    try:
        master, terminal = os.openpty()
    except OSError as e:  # a container without /dev/pts
        pytest.skip(f"no pseudo-terminal here: {e}")

    def logged_in():  # a session whose controlling terminal is `terminal`, as sshd gives a login shell
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGHUP, signal.SIG_IGN if nohup else signal.SIG_DFL)

    args = ["--iterations", "10000", "--checkpoint-every", "10000", "--run-dir", run_dir]
    proc = start_training(tiny_mnist, *args, stdin=terminal, stdout=terminal, stderr=terminal, preexec_fn=logged_in)
    os.close(terminal)
    log = os.path.join(run_dir, "log.jsonl")
    deadline = time.time() + 120
    while not (os.path.exists(log) and os.path.getsize(log)) and time.time() < deadline:
        if select.select([master], [], [], 0.05)[0]:
            os.read(master, 1 << 16)  # what the run shows on its terminal, read as the terminal would
    os.close(master)
    if nohup:
        steps = len(log_records(run_dir))
        time.sleep(3)
        assert proc.poll() is None and len(log_records(run_dir)) > steps  # training on
        proc.send_signal(signal.SIGINT)
    proc.wait(timeout=120)
    assert proc.returncode == 128 + (signal.SIGINT if nohup else signal.SIGHUP)
    step = len(log_records(run_dir))
    assert os.listdir(os.path.join(run_dir, "checkpoints")) == [f"step_{step:07d}"]
    resumed = script("train.py", "--resume", run_dir, "--iterations", str(step + 1))
    assert resumed.returncode == 0, resumed.stderr


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_at_start_up_leaves_no_run_and_is_one_line(tmp_path, signum):
    """Stopped while it finds the neighbour table (start-up's longest work: 44 s for full MNIST), a new run
    leaves no run directory and no staging folder; by SIGTERM too, which Paddle's import would otherwise
    answer with a C++ "FatalError" report and no clean-up."""
    data = write_idx_dir(str(tmp_path / "data"), n_train=20000, seed=signum)
    runs = tmp_path / "runs"
    proc = start_training(data, "--iterations", "5", "--neighbours", "3", "--run-dir", str(runs / "run"))
    for line in proc.stderr:
        if line.startswith("neighbours: the 3 nearest"):
            break
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signum, err
    assert "Traceback" not in err and "FatalError" not in err, err
    name = signal.Signals(signum).name
    assert err.strip().splitlines()[-1] == f"error: {name} before training began: no run directory was written"
    assert os.listdir(runs) == []


@pytest.mark.parametrize("stop, signum", [(KeyboardInterrupt, signal.SIGINT), (Terminated, signal.SIGTERM)])
def test_a_stop_outside_training_is_one_line_and_its_exit_status(capsys, monkeypatch, stop, signum):
    def main(args):
        raise stop

    monkeypatch.setenv("INFOGAN_THREAD_ENV", "0")
    previous = signal.getsignal(signal.SIGTERM)
    try:
        with pytest.raises(SystemExit) as exit_:
            cli.run(main, argparse.Namespace())
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert exit_.value.code == 128 + signum
    assert capsys.readouterr().err == f"error: stopped by {signal.Signals(signum).name}\n"


def test_on_windows_a_script_says_where_it_runs_in_one_line(capsys, monkeypatch):
    monkeypatch.setattr(cli.os, "name", "nt")
    with pytest.raises(SystemExit) as exit_:
        cli.run(lambda args: pytest.fail("main ran"), argparse.Namespace())
    assert exit_.value.code == 2
    assert (
        capsys.readouterr().err
        == "error: this project needs a POSIX system (Linux, macOS); on Windows, run it under WSL\n"
    )


def test_kill_9_at_random_moments_never_loses_the_last_checkpoint(tiny_mnist, tmp_path):
    run_dir, total = str(tmp_path / "run"), 12
    rng = random.Random(0)
    args = ["--iterations", str(total), "--checkpoint-every", "1", "--keep-checkpoints", "2"]
    proc = start_training(tiny_mnist, *args, "--run-dir", run_dir)
    for _ in range(2):
        wait_for_log(run_dir)
        time.sleep(rng.uniform(0.0, 1.5))
        proc.kill()
        proc.wait()
        cmd = [sys.executable, os.path.join(ROOT, "scripts", "train.py"), "--resume", run_dir]
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert [r["step"] for r in log_records(run_dir)] == list(range(1, total + 1))
    names = os.listdir(os.path.join(run_dir, "checkpoints"))
    assert len(names) == 2 and all(checkpoints.CHECKPOINT_RE.fullmatch(n) for n in names), names


def test_a_second_trainer_on_a_run_in_training_is_refused_with_the_holders_pid(tiny_mnist, tmp_path):
    run_dir = str(tmp_path / "run")
    first = start_training(tiny_mnist, "--iterations", "10000", "--checkpoint-every", "2", "--run-dir", run_dir)
    try:
        wait_for_log(run_dir)
        while not checkpoints.checkpoint_dirs(run_dir):
            time.sleep(0.05)
        config = open(os.path.join(run_dir, "config.json")).read()
        one_error_line(
            script("train.py", "--resume", run_dir), f"run directory {run_dir} is in use by process {first.pid}"
        )
        overwrite = train(tiny_mnist, run_dir, "--iterations", "2", "--overwrite")
        one_error_line(overwrite, f"run directory {run_dir} is in use by process {first.pid}")
        assert open(os.path.join(run_dir, "config.json")).read() == config
        sampled = script("sample.py", run_dir, "--out", str(tmp_path / "samples"))
        assert sampled.returncode == 0 and f"is being trained (process {first.pid})" in sampled.stderr, sampled.stderr
    finally:
        first.send_signal(signal.SIGINT)
        first.communicate(timeout=120)
    assert script("train.py", "--resume", run_dir, "--iterations", str(len(log_records(run_dir)) + 1)).returncode == 0


def test_a_run_directory_taken_while_a_run_starts_up_is_kept(tiny_mnist, tiny_run, tmp_path, monkeypatch):
    """Between the start-up checks and the new run's move into place (the data, the programs, the neighbour
    table: a minute for full MNIST) another process may take the name, as runs started together in the
    same second take the same default name: what it put there is never replaced without --overwrite."""
    import infogan.trainer

    monkeypatch.chdir(tmp_path)
    flags = {"data_dir": tiny_mnist, "iterations": 1, "batch_size": 8, "grid_every": 1}
    started = Trainer.__init__
    appears = {}

    def another_process_takes_the_name(self, *args, **kwargs):
        started(self, *args, **kwargs)
        appears["write"]()

    monkeypatch.setattr(Trainer, "__init__", another_process_takes_the_name)

    appears["write"] = lambda: copy_run(tiny_run, tmp_path / "run")
    with pytest.raises(InfoGANError, match="run directory run was created by another process while this run started"):
        new_run(TrainConfig.from_flags(flags), "run")
    assert sorted(os.listdir("run")) == sorted(os.listdir(tiny_run))
    assert open("run/config.json").read() == open(os.path.join(tiny_run, "config.json")).read()

    class Now:  # every run's default name from the same second
        @staticmethod
        def now():
            return datetime.datetime(2026, 1, 2, 3, 4, 5)

    monkeypatch.setattr(infogan.trainer, "datetime", Now)
    appears["write"] = lambda: copy_run(tiny_run, tmp_path / "outputs" / "mnist-20260102-030405")
    assert new_run(TrainConfig.from_flags(flags)) == "outputs/mnist-20260102-030405-2"
    appears["write"] = lambda: None
    assert new_run(TrainConfig.from_flags(flags)) == "outputs/mnist-20260102-030405-3"
    assert len(log_records("outputs/mnist-20260102-030405")) == 3  # tiny_run's, untouched
    assert all(len(log_records(f"outputs/mnist-20260102-030405-{i}")) == 1 for i in (2, 3))

    def users_files():
        shutil.rmtree("run")
        os.makedirs("run")
        open("run/thesis.tex", "w").close()

    appears["write"] = users_files
    with pytest.raises(InfoGANError, match="--overwrite refuses run: it is not a run of this project"):
        new_run(TrainConfig.from_flags(flags), "run", overwrite=True)
    assert os.listdir("run") == ["thesis.tex"]
    assert sorted(os.listdir(tmp_path)) == ["outputs", "run"]  # and no staging folder left behind
    assert sorted(os.listdir("outputs")) == [f"mnist-20260102-030405{s}" for s in ("", "-2", "-3")]


def test_a_run_directory_that_is_a_link_trains_where_it_points(tiny_mnist, tiny_run, tmp_path):
    """A --run-dir linked to a folder on another disk (a cluster's scratch): the run is written there, the link
    kept, whether the folder is empty or holds a run that --overwrite replaces."""
    flags = {"data_dir": tiny_mnist, "iterations": 1, "batch_size": 8}
    scratch = tmp_path / "scratch"
    (scratch / "empty").mkdir(parents=True)
    os.symlink(scratch / "empty", tmp_path / "run")
    assert new_run(TrainConfig.from_flags(flags), str(tmp_path / "run") + "/") == str(scratch / "empty")
    assert os.path.islink(tmp_path / "run") and len(log_records(str(tmp_path / "run"))) == 1
    copy_run(tiny_run, scratch / "old")
    os.symlink(scratch / "old", tmp_path / "old")
    new_run(TrainConfig.from_flags(dict(flags, seed=5)), str(tmp_path / "old"), overwrite=True)
    assert os.path.islink(tmp_path / "old") and json.load(open(scratch / "old" / "config.json"))["seed"] == 5
    assert sorted(os.listdir(tmp_path)) == ["old", "run", "scratch"] and sorted(os.listdir(scratch)) == ["empty", "old"]


def test_a_file_system_without_locks_trains_and_resumes_with_a_warning(tiny_mnist, tmp_path, monkeypatch, capsys):
    """flock fails with ENOLCK on an NFS mount without its lock service: training goes on, and says that
    nothing then stops a second trainer."""

    def no_locks(fd, operation):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_locks)
    flags = {"data_dir": tiny_mnist, "iterations": 1, "batch_size": 8}
    run_dir = new_run(TrainConfig.from_flags(flags), str(tmp_path / "run"))
    resume_run(run_dir, resumed_config(run_dir, {"iterations": 2}))
    assert [r["step"] for r in log_records(run_dir)] == [1, 2] and holder(run_dir) is None
    warning = "cannot be locked (No locks available): nothing stops a second trainer of this run"
    assert capsys.readouterr().err.count(warning) == 2  # the new run's and the resumed run's


def test_overwrite_replaces_only_a_run_and_only_once_the_new_one_started(tiny_mnist, tiny_run, tmp_path):
    thesis = tmp_path / "thesis"
    thesis.mkdir()
    (thesis / "chapter1.tex").write_text("years of work")
    one_error_line(train(tiny_mnist, str(thesis), "--iterations", "1", "--overwrite"), f"--overwrite refuses {thesis}")
    assert (thesis / "chapter1.tex").read_text() == "years of work"
    one_error_line(
        train(tiny_mnist, tiny_mnist, "--iterations", "1", "--overwrite"), f"--overwrite refuses {tiny_mnist}"
    )
    cwd_run = script("train.py", "--data-dir", tiny_mnist, "--run-dir", ".", "--overwrite", cwd=str(thesis))
    one_error_line(cwd_run, "--overwrite refuses .: it is or holds the current directory")
    one_error_line(train(tiny_mnist, ROOT, "--iterations", "1", "--overwrite"), f"--overwrite refuses {ROOT}")
    assert os.path.isdir(os.path.join(ROOT, "infogan"))

    run_dir = copy_run(tiny_run, tmp_path / "run")
    before = sorted(os.listdir(run_dir))
    failed = train(tiny_mnist, run_dir, "--iterations", "3", "--overwrite", "--batch-size", "1000")
    one_error_line(failed, "--batch-size 1000 is larger than the 64 training images")
    assert sorted(os.listdir(run_dir)) == before and checkpoints.checkpoint_dirs(run_dir)  # the old run intact
    assert train(tiny_mnist, run_dir, "--iterations", "2", "--overwrite", "--seed", "5").returncode == 0
    assert json.load(open(os.path.join(run_dir, "config.json")))["seed"] == 5
    assert [r["step"] for r in log_records(run_dir)] == [1, 2]
    assert sorted(os.listdir(tmp_path)) == ["run", "thesis"]  # nothing staged left beside it


def test_run_dir_that_is_a_file_or_unwritable(tiny_mnist, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("a file, not a folder")
    one_error_line(train(tiny_mnist, str(blocker), "--iterations", "1"), f"--run-dir {blocker} is a file")
    one_error_line(train(tiny_mnist, str(blocker / "run"), "--iterations", "1"), "cannot create run directory")
    assert blocker.read_text() == "a file, not a folder"


def tiny_cfg(data_dir, **options):
    return TrainConfig(data_dir=data_dir, batch_size=8, iterations=6, device="cpu", **options).validate()


def tiny_trainer(data_dir, run_dir, **options):
    os.makedirs(os.path.join(run_dir, "checkpoints"))
    trainer = Trainer(tiny_cfg(data_dir, **options))
    trainer.run_dir, trainer.log = run_dir, Log(run_dir)
    return trainer


def test_divergence_in_a_loss_stops_at_the_first_bad_step_and_keeps_the_checkpoint(tiny_mnist, tmp_path, monkeypatch):
    run_dir = str(tmp_path / "run")
    trainer = tiny_trainer(tiny_mnist, run_dir, checkpoint_every=2)
    real_step = trainer.step

    def step_going_bad(step, real, **options):
        stats = real_step(step, real, **options)
        return dict(stats, g_loss=float("nan")) if step == 2 else stats

    monkeypatch.setattr(trainer, "step", step_going_bad)
    with pytest.raises(
        InfoGANError, match=r"diverged at step 3: g_loss became nan; the last good checkpoint .*step_0000002"
    ):
        trainer.run(run_dir, start_from=None)
    assert os.listdir(os.path.join(run_dir, "checkpoints")) == ["step_0000002"]


@pytest.mark.parametrize("network", ["D_fc3.w", "G_fc1.w"])
def test_nan_weights_never_reach_a_checkpoint(tiny_mnist, tmp_path, monkeypatch, network):
    run_dir = str(tmp_path / "run")
    trainer = tiny_trainer(tiny_mnist, run_dir, checkpoint_every=2)
    real_step = trainer.step

    def poisoning(step, real, **options):
        if step == 2:  # a NaN in one weight, as a bad update leaves it; ReLUs may hide it from the losses
            tensor = paddle.static.global_scope().find_var(network).get_tensor()
            value = np.array(tensor)
            value.flat[0] = np.nan
            tensor.set(value, paddle.CPUPlace())
        return real_step(step, real, **options)

    monkeypatch.setattr(trainer, "step", poisoning)
    with pytest.raises(
        InfoGANError, match=r"training diverged at step [34]: .*the last good checkpoint is .*step_0000002"
    ):
        trainer.run(run_dir, start_from=None)
    assert os.listdir(os.path.join(run_dir, "checkpoints")) == ["step_0000002"]
    state = paddle.static.load_program_state(os.path.join(run_dir, "checkpoints", "step_0000002", "gq_step"))
    assert all(np.isfinite(v).all() for v in state.values())


class DiskFull:
    """builtins.open, with every file opened for writing whose name contains `fragment` failing to write
    (ENOSPC) after `allowed` bytes, as on a full disk."""

    def __init__(self, monkeypatch, fragment, allowed=0):
        real_open = builtins.open

        def opening(file, mode="r", *args, **kwargs):
            f = real_open(file, mode, *args, **kwargs)
            if fragment in str(file) and any(c in mode for c in "wa"):
                return Filling(f, allowed)
            return f

        monkeypatch.setattr(builtins, "open", opening)


class Filling:
    def __init__(self, f, allowed):
        self.f, self.left = f, allowed

    def write(self, data):
        if len(data) > self.left:
            self.f.write(data[: self.left])
            self.left = 0
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.left -= len(data)
        return self.f.write(data)

    def __getattr__(self, name):
        return getattr(self.f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.f.close()


def leftovers(folder):
    return [os.path.join(d, n) for d, dirs, names in os.walk(folder) for n in names + dirs if ".tmp" in n]


def test_a_full_disk_at_a_checkpoint_keeps_the_previous_one_and_leaves_no_partial_files(
    tiny_mnist, tmp_path, monkeypatch
):
    run_dir = str(tmp_path / "run")
    trainer = tiny_trainer(tiny_mnist, run_dir, checkpoint_every=2)
    real_save, folders = paddle.static.save, []

    def save_until_full(program, prefix, *args, **kwargs):
        folders.append(os.path.dirname(prefix))
        if folders[-1] != folders[0]:  # the second checkpoint's first file: half written, then the disk is full
            with open(prefix + ".pdparams", "wb") as f:
                f.write(b"\0" * 1000)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_save(program, prefix, *args, **kwargs)

    monkeypatch.setattr(paddle.static, "save", save_until_full)
    with pytest.raises(InfoGANError, match="step-4 checkpoint .*No space left on device; .*step_0000002 is intact"):
        trainer.run(run_dir, start_from=None)
    assert os.listdir(os.path.join(run_dir, "checkpoints")) == ["step_0000002"]
    assert not leftovers(run_dir)


@pytest.mark.parametrize("replaced", [False, True])
def test_a_run_directory_moved_while_training_stops_the_run_and_nothing_is_written_at_its_old_path(
    tiny_mnist, tmp_path, monkeypatch, replaced
):
    run_dir, moved = str(tmp_path / "run"), str(tmp_path / "moved")
    trainer = tiny_trainer(tiny_mnist, run_dir, checkpoint_every=2)
    real_step = trainer.step

    def step_then_move(step, real, **options):
        stats = real_step(step, real, **options)
        if step == 2:  # after the step-2 checkpoint, before step 3's grids and checkpoint
            shutil.move(run_dir, moved)
            if replaced:  # a new folder of the same name: still not the run's
                os.makedirs(run_dir)
        return stats

    monkeypatch.setattr(trainer, "step", step_then_move)
    with pytest.raises(InfoGANError, match=r"run was moved or deleted while training: stopped at step 3, .*--resume"):
        trainer.run(run_dir, start_from=None)
    assert os.listdir(run_dir) == [] if replaced else not os.path.exists(run_dir)
    assert os.listdir(os.path.join(moved, "checkpoints")) == ["step_0000002"]


@pytest.mark.parametrize("fragment", ["_random.png", "curves.png"])
def test_a_full_disk_while_drawing_is_one_line_and_leaves_nothing_half_written(
    tiny_mnist, tmp_path, monkeypatch, fragment
):
    run_dir = str(tmp_path / "run")
    trainer = tiny_trainer(tiny_mnist, run_dir)
    DiskFull(monkeypatch, fragment, allowed=100)
    with pytest.raises(InfoGANError, match="cannot write .*: No space left on device"):
        trainer.write_grids(
            1, [{"step": 1, "d_loss": 1, "g_loss": 1, "L_I_cat": 0, "L_I_cont": 0, "d_real": 0.5, "d_fake": 0.5}]
        )
    assert not leftovers(run_dir)


def test_a_full_disk_while_logging_keeps_the_log_whole(tiny_mnist, tmp_path, monkeypatch):
    run_dir = str(tmp_path / "run")
    trainer = tiny_trainer(tiny_mnist, run_dir)
    stats = {"d_loss": 1.0, "g_loss": 1.0, "li_cat": 0.0, "li_cont": 0.0, "d_real": 0.5, "d_fake": 0.5}
    trainer._record(1, stats, 10.0)
    DiskFull(monkeypatch, "log.jsonl", allowed=20)
    with pytest.raises(InfoGANError, match="cannot write .*log.jsonl: No space left on device"):
        trainer._record(2, stats, 10.0)
    assert [r["step"] for r in log_records(run_dir)] == [1]  # the half line was cut back off


def test_a_full_disk_on_resume_keeps_config_json_and_for_metrics_and_samples_is_one_line(
    tiny_run, tmp_path, monkeypatch, capsys
):
    from infogan.grids import sample_run

    run_dir = copy_run(tiny_run, tmp_path / "run")
    config = open(os.path.join(run_dir, "config.json")).read()
    with monkeypatch.context() as m:
        DiskFull(m, "config.json")
        with pytest.raises(InfoGANError, match="cannot write .*config.json: No space left on device"):
            resume_run(run_dir, resumed_config(run_dir, {"iterations": 6}))
    assert open(os.path.join(run_dir, "config.json")).read() == config
    evaluate = runpy.run_path(os.path.join(ROOT, "scripts", "evaluate.py"))["main"]
    flags = argparse.Namespace(run_dir=run_dir, data_dir=None, device="cpu", accuracy_only=True)  # the judge: no write
    capsys.readouterr()
    with monkeypatch.context() as m, pytest.raises(SystemExit) as stop:
        DiskFull(m, "metrics.json")
        cli.run(evaluate, flags)
    out, err = capsys.readouterr()
    assert stop.value.code == 2 and "accuracy" in out, out  # what was measured is shown, then why it was not saved
    assert err.strip().splitlines()[-1].startswith("error: cannot write") and "metrics.json: No space left" in err
    with monkeypatch.context() as m:
        DiskFull(m, ".png", allowed=50)
        with pytest.raises(InfoGANError, match="cannot write .*png: No space left on device"):
            sample_run(run_dir)
    assert not leftovers(run_dir) and not os.path.exists(os.path.join(run_dir, "metrics.json"))


def test_a_run_that_cannot_be_written_is_sampled_and_exported_with_out(tiny_run, tmp_path, monkeypatch):
    """Another user's run (or a read-only mount): the refusal says how to draw and export it all the same."""
    from infogan.export import export_run
    from infogan.grids import sample_run

    run_dir = copy_run(tiny_run, tmp_path / "run")
    real_makedirs = os.makedirs

    def read_only(path, *args, **kwargs):
        if str(path).startswith(run_dir) and not os.path.isdir(path):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS))
        return real_makedirs(path, *args, **kwargs)

    monkeypatch.setattr(os, "makedirs", read_only)
    with pytest.raises(InfoGANError, match="cannot create .*samples: Read-only file system: pass --out with a folder"):
        sample_run(run_dir)
    with pytest.raises(InfoGANError, match="cannot write .*export: Read-only file system: pass --out with a folder"):
        export_run(run_dir)
    assert len(sample_run(run_dir, str(tmp_path / "grids"))) == len(os.listdir(tmp_path / "grids"))
    assert "latent.json" in os.listdir(export_run(run_dir, str(tmp_path / "export")))
    monkeypatch.undo()
    with pytest.raises(InfoGANError, match="cannot create .*config.json: it is a file, not a folder"):
        sample_run(run_dir, os.path.join(run_dir, "config.json"))
    assert sorted(os.listdir(run_dir)) == sorted(os.listdir(tiny_run))


def test_results_of_a_run_replaced_meanwhile_never_land_in_the_new_one(tiny_mnist, tiny_run, tmp_path, monkeypatch):
    """evaluate.py and sample.py take minutes; an --overwrite of the run meanwhile puts a new run at its path,
    which must not get the old run's metrics, grids or export (metrics.json then mixed the old checkpoint's accuracy
    with the new run's log)."""
    from infogan import checkpoints as checkpoints_module
    from infogan.export import export_run
    from infogan.files import folder_identity
    from infogan.grids import sample_run
    from infogan.scoring import save_metrics, score_run

    run_dir = copy_run(tiny_run, tmp_path / "run")

    def overwrite():
        flags = {"data_dir": tiny_mnist, "iterations": 1, "batch_size": 8, "seed": 7}
        new_run(TrainConfig.from_flags(flags), run_dir, overwrite=True)

    scored = folder_identity(run_dir)
    metrics = score_run(run_dir, quality=False)
    overwrite()
    with pytest.raises(InfoGANError, match="was replaced or moved while it was evaluated .*nothing was written"):
        save_metrics(run_dir, metrics, scored)
    loading = checkpoints_module.load_inference_state
    monkeypatch.setattr(checkpoints_module, "load_inference_state", lambda *a: (loading(*a), overwrite()))
    with pytest.raises(InfoGANError, match="was replaced or moved while its grids were drawn"):
        sample_run(run_dir)
    with pytest.raises(InfoGANError, match="was replaced or moved while it was exported"):
        export_run(run_dir)
    assert json.load(open(os.path.join(run_dir, "config.json")))["seed"] == 7
    assert not {"metrics.json", "confusion.png", "samples", "export"} & set(os.listdir(run_dir))


def test_start_up_mistakes_write_nothing_in_process(tiny_mnist, tmp_path):
    empty = tmp_path / "empty_data"
    empty.mkdir()
    with pytest.raises(InfoGANError):
        new_run(TrainConfig.from_flags({"data_dir": str(empty)}), str(tmp_path / "run"))
    with pytest.raises(InfoGANError, match="--val-size 10 does not apply to .*the test split; drop --val-size"):
        new_run(TrainConfig.from_flags({"data_dir": tiny_mnist, "val_size": 10}), str(tmp_path / "run"))
    assert sorted(os.listdir(tmp_path)) == ["empty_data"]


def test_a_run_directory_inside_the_data_folder_is_refused(tmp_path, monkeypatch):
    """A folder's images are read recursively: a run's grids inside it would be the next run's images."""
    data = tmp_path / "photos"
    data.mkdir()
    flags = {"dataset": "folder", "data_dir": str(data), "image_size": 32}
    with pytest.raises(InfoGANError, match=f"the run directory {data}/runs/a is inside the data folder {data}: "):
        new_run(TrainConfig.from_flags(flags), str(data / "runs" / "a"))
    monkeypatch.chdir(data)  # the default run directory, outputs/..., lands in it too
    with pytest.raises(InfoGANError, match="the run directory outputs/folder-.* is inside the data folder"):
        new_run(TrainConfig.from_flags(flags | {"data_dir": "."}))
    assert os.listdir(data) == []


def test_corrupt_and_unfitting_checkpoints_are_reported(tiny_run, tmp_path):
    run_dir = copy_run(tiny_run, tmp_path / "run")
    config_path = os.path.join(run_dir, "config.json")
    values = json.load(open(config_path))
    json.dump(dict(values, noise_dim=30), open(config_path, "w"))
    unfitting = script("train.py", "--resume", run_dir, "--iterations", "6")
    one_error_line(unfitting, "checkpoint")
    assert "does not fit this model" in unfitting.stderr
    json.dump(values, open(config_path, "w"))
    params = os.path.join(run_dir, "checkpoints", "step_0000003", "d_step.pdparams")
    with open(params, "r+b") as f:
        f.truncate(100)
    truncated = script("train.py", "--resume", run_dir, "--iterations", "6")
    one_error_line(truncated, "checkpoint")
    assert "step_0000003 cannot be loaded" in truncated.stderr


@pytest.mark.parametrize(
    "name, change, output",
    [
        ("sample.py", {"noise_dim": 30}, os.path.join("samples", "random.png")),
        ("evaluate.py", {"categorical": [12]}, "metrics.json"),
    ],
)
def test_sample_and_evaluate_on_incompatible_run(tiny_run, tmp_path, name, change, output):
    run_dir = copy_run(tiny_run, tmp_path / "run")
    config = os.path.join(run_dir, "config.json")
    with open(config) as f:
        values = json.load(f)
    with open(config, "w") as f:
        json.dump(dict(values, **change), f)
    refused = script(name, run_dir)
    one_error_line(refused, "checkpoint")
    assert "does not fit this model" in refused.stderr
    assert not os.path.exists(os.path.join(run_dir, output))


def test_damaged_log_lines_are_reported_and_valid_records_kept_on_resume(tiny_run, tmp_path):
    run_dir = copy_run(tiny_run, tmp_path / "run")
    path = os.path.join(run_dir, "log.jsonl")
    lines = open(path).read().splitlines()
    with open(path, "w") as f:
        f.write("\n".join(["{not json", *lines]) + '\n{"step": 4, "d_lo')  # damage at the top, a cut at the end
    resumed = script("train.py", "--resume", run_dir, "--iterations", "5")
    assert resumed.returncode == 0, resumed.stderr
    assert "line 1 is damaged and was skipped" in resumed.stderr and "cut short" in resumed.stderr
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
        write_text(str(tmp_path / "new.json"), "{}", durable=True)
    finally:
        os.umask(umask)
    assert (os.stat(tmp_path / "new.json").st_mode & 0o777) == 0o644


def test_folders_staged_side_by_side_each_arrive_whole_and_a_killed_writers_is_removed(tmp_path):
    """Two exports of one run at once (scripts/export.py twice) each fill a folder of their own, and the last to
    finish is what stays, whole. A staging folder nobody holds (its writer was killed) is removed by the next
    writer there; one still being filled, or just made (its writer takes its lock next), is not."""
    from infogan.files import staged_dir

    final = str(tmp_path / "export")
    first, second = staged_dir(final), staged_dir(final)
    folders = [first.__enter__(), second.__enter__()]
    for folder, text in zip(folders, "ab", strict=True):
        for name in ("generator.json", "encoder.json"):
            with open(os.path.join(folder, name), "w") as f:
                f.write(text)
    second.__exit__(None, None, None)
    first.__exit__(None, None, None)
    assert {name: open(os.path.join(final, name)).read() for name in os.listdir(final)} == {
        "generator.json": "a",
        "encoder.json": "a",
    }
    assert os.listdir(tmp_path) == ["export"]

    killed = tmp_path / f".tmp-{'0' * 32}-export"
    killed.mkdir()
    (killed / "generator.json").write_text("half")
    aged(killed)
    just_made = tmp_path / f".tmp-{'1' * 32}-export"
    just_made.mkdir()
    filling = tmp_path / f".tmp-{'2' * 32}-export"
    filling.mkdir()
    aged(filling)
    users = tmp_path / ".tmp-notes"
    users.mkdir()
    aged(users)
    lock = os.open(filling, os.O_RDONLY)
    fcntl.flock(lock, fcntl.LOCK_EX)
    with staged_dir(final):
        pass
    assert sorted(os.listdir(tmp_path)) == sorted(["export", just_made.name, filling.name, users.name])
    os.close(lock)
    with staged_dir(final, sole_writer=True):  # a checkpoint's writer: no other writer can be starting
        pass
    assert sorted(os.listdir(tmp_path)) == sorted(["export", users.name])

    os.symlink(final, tmp_path / "link")  # --out LINK: the folder it names is replaced, the link kept
    with staged_dir(str(tmp_path / "link") + "/") as folder:
        (Path(folder) / "latent.json").write_text("{}")
    assert os.path.islink(tmp_path / "link") and os.listdir(final) == ["latent.json"]


def test_staging_folders_of_runs_killed_at_start_up_are_removed_by_the_next_new_run(tmp_path, monkeypatch):
    """A kill -9 while a run starts up (its neighbour table takes a minute on full MNIST) leaves its hidden
    staging folder, whose default name no later run shares: the next new run beside it removes it, and keeps
    another run's that is starting up (it holds its lock) and anything not a run's."""
    from infogan.rundir import NewRun

    monkeypatch.chdir(tmp_path)

    def staging(name, *files):
        path = tmp_path / "outputs" / name
        (path / "checkpoints").mkdir(parents=True)
        for file in files:
            (path / file).write_text("")
        return aged(path)

    staging(".mnist-20260102-030405.new-4242", "config.json", "neighbours.npy", ".lock")
    starting = staging(".mnist-20260102-030406.new-4343", "config.json", ".lock")
    not_locked_yet = staging(".mnist-20260102-030407.new-4444")
    users = staging(".notes.new-1", "thesis.tex", ".lock")
    lock = os.open(starting / ".lock", os.O_RDWR)
    fcntl.flock(lock, fcntl.LOCK_EX)
    try:
        NewRun("outputs/mnist-20260102-030408", numbered=True).discard()
    finally:
        os.close(lock)
    assert sorted(os.listdir("outputs")) == sorted([starting.name, not_locked_yet.name, users.name])


def test_checkpoints_config_and_log_are_synced_to_the_disk(tiny_mnist, tmp_path, monkeypatch):
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(os.readlink(f"/proc/self/fd/{fd}")), real_fsync(fd))[1])
    run_dir = str(tmp_path / "run")
    new_run(
        TrainConfig.from_flags({"data_dir": tiny_mnist, "batch_size": 8, "iterations": 2, "checkpoint_every": 2}),
        run_dir,
    )
    for name in ("config.json", "log.jsonl", "d_step.pdparams", "gq_step.pdopt", "state.json", "/checkpoints"):
        assert any(p.endswith(name) for p in synced), name
    assert any(re.search(r"/\.tmp-[0-9a-f]{32}-step_0000002$", p) for p in synced)  # the folder, before its rename
    assert os.path.realpath(tmp_path) in synced  # the run's own name, once moved into place

    def no_folder_sync(fd):  # a network or FUSE mount that cannot sync a folder
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", no_folder_sync)
    resume_run(run_dir, resumed_config(run_dir, {"iterations": 4}))
    assert checkpoints.checkpoint_dirs(run_dir)[-1].endswith("step_0000004")
