"""Data-parallel training with paddle.distributed.launch on the CPU (gloo): two ranks train as one
process on the whole batch, only rank 0 writes, and a rank's death or Ctrl-C stops every rank."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import ROOT, log_records, script

pytestmark = pytest.mark.slow

# Five steps of both Programs through the library, on the global batches, then every parameter saved.
WORKER = """
import sys
import numpy as np
from infogan.device import apply_thread_settings
apply_thread_settings()
import paddle
from infogan.config import TrainConfig
from infogan.data import batches
from infogan.trainer import Trainer

out, data_dir = sys.argv[1:3]
flags = {"arch": "mlp", "lambda_real": 0.0, "data_dir": data_dir, "batch_size": 8, "device": "cpu"}
cfg = TrainConfig.from_flags(flags)
trainer = Trainer(cfg)
real = batches(trainer.data.train_images, cfg.batch_size, cfg.seed, 0, trainer.value_range)
for step in range(5):
    trainer.step(step, next(real)[0])
scope = paddle.static.global_scope()
steps = trainer.programs.saved.values()
names = sorted({p.name for s in steps for p in s.program.global_block().all_parameters()})
values = {n: np.array(scope.find_var(n).get_tensor()) for n in names}
np.savez(f"{out}/params_{trainer.world.size}_{trainer.world.rank}.npz", **values)
"""


def launch(tmp_path, *args, background=False):
    cmd = [
        sys.executable,
        "-m",
        "paddle.distributed.launch",
        "--nproc_per_node",
        "2",
        "--log_dir",
        str(tmp_path / "log"),
        *args,
    ]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    if background:
        return subprocess.Popen(
            cmd, cwd=str(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
        )
    return subprocess.run(cmd, cwd=str(tmp_path), capture_output=True, text=True, env=env, timeout=300)


def test_two_ranks_with_different_shards_train_as_one_process_on_the_whole_batch(tiny_mnist, tmp_path):
    worker = tmp_path / "worker.py"
    worker.write_text(WORKER)
    alone = subprocess.run(
        [sys.executable, str(worker), str(tmp_path), tiny_mnist], capture_output=True, text=True, cwd=str(tmp_path)
    )
    assert alone.returncode == 0, alone.stderr
    two = launch(tmp_path, str(worker), str(tmp_path), tiny_mnist)
    assert two.returncode == 0, two.stdout + two.stderr
    one, rank0, rank1 = (np.load(tmp_path / f"params_{n}.npz") for n in ("1_0", "2_0", "2_1"))
    assert set(one.files) == set(rank0.files) and any(n.startswith("D_") for n in one.files)
    for name in one.files:
        np.testing.assert_array_equal(rank0[name], rank1[name], err_msg=name)  # the ranks stay identical
        # and train as one: Adam's step divides by sqrt(v), so the all-reduce's order of sums moves a few
        # weights by up to 1.4e-4 relative in five steps (measured); a sharding mistake moves all of them.
        np.testing.assert_allclose(rank0[name], one[name], rtol=1e-3, atol=1e-5, err_msg=name)


def test_only_rank_0_writes_and_the_run_resumes_with_another_number_of_ranks(tiny_mnist, tmp_path):
    run = str(tmp_path / "run")
    args = [
        "--data-dir",
        tiny_mnist,
        "--batch-size",
        "8",
        "--iterations",
        "4",
        "--checkpoint-every",
        "2",
        "--log-every",
        "1",
    ]
    done = launch(tmp_path, os.path.join(ROOT, "scripts", "train.py"), *args, "--run-dir", run)
    assert done.returncode == 0, done.stdout + done.stderr
    assert sorted(os.listdir(tmp_path)) == ["log", "run"]  # the launcher's own logs, and the run
    assert sorted(os.listdir(run)) == [
        ".lock",
        "checkpoints",
        "config.json",
        "curves.png",
        "data.json",
        "grids",
        "log.jsonl",
        "neighbours.npy",  # the defaults' neighbour table, kept by rank 0 alone
    ]
    records = log_records(run)
    assert [r["step"] for r in records] == [1, 2, 3, 4] and all(r["ranks"] == 2 for r in records)
    resumed = script("train.py", "--resume", run, "--iterations", "6")  # one process now
    assert resumed.returncode == 0, resumed.stderr
    assert [r["step"] for r in log_records(run)] == [1, 2, 3, 4, 5, 6] and "ranks" not in log_records(run)[-1]
    odd = launch(
        tmp_path,
        os.path.join(ROOT, "scripts", "train.py"),
        *args,
        "--batch-size",
        "9",
        "--run-dir",
        str(tmp_path / "odd"),
    )
    assert odd.returncode != 0 and "--batch-size 9 does not split evenly over 2 ranks" in odd.stdout + odd.stderr
    assert not os.path.exists(tmp_path / "odd")


def rank_pids(launcher_pid):
    """{rank: pid} of the launcher's worker processes."""
    found = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            environ = open(f"/proc/{pid}/environ", "rb").read().split(b"\0")
            status = open(f"/proc/{pid}/status").read()
        except OSError:
            continue
        parent = int(next(line.split()[1] for line in status.splitlines() if line.startswith("PPid:")))
        rank = next((e.split(b"=", 1)[1] for e in environ if e.startswith(b"PADDLE_TRAINER_ID=")), None)
        if parent == launcher_pid and rank is not None:
            found[int(rank)] = int(pid)
    return found


def wait_for(condition, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return
        time.sleep(0.1)
    pytest.fail("waited in vain")


@pytest.mark.parametrize("how", ["a rank dies", "ctrl-c on the launcher"])
def test_a_dying_rank_or_ctrl_c_stops_every_rank(tiny_mnist, tmp_path, how):
    run = str(tmp_path / "run")
    args = [
        "--data-dir",
        tiny_mnist,
        "--arch",
        "mlp",
        "--batch-size",
        "8",
        "--iterations",
        "100000",
        "--log-every",
        "1",
    ]
    launcher = launch(tmp_path, os.path.join(ROOT, "scripts", "train.py"), *args, "--run-dir", run, background=True)
    try:
        wait_for(lambda: os.path.exists(os.path.join(run, "log.jsonl")) and len(rank_pids(launcher.pid)) == 2)
        if how == "a rank dies":
            os.kill(rank_pids(launcher.pid)[1], signal.SIGKILL)
        else:
            launcher.send_signal(signal.SIGINT)
        launcher.communicate(timeout=120)
    finally:
        launcher.kill()
    assert launcher.returncode != 0
    assert not rank_pids(launcher.pid)  # no rank left behind
    if how == "a rank dies":  # rank 0's own log: the launcher's copy of it may be taken before its last line
        survivor = open(tmp_path / "log" / "workerlog.0").read()
        assert "error: rank 0 lost the other ranks" in survivor and "Traceback" not in survivor, survivor[-2000:]
    else:
        errors = [open(tmp_path / "log" / f"workerlog.{r}").read().strip().splitlines()[-1] for r in (0, 1)]
        assert errors[0] == errors[1] and "checkpoint and logs saved" in errors[0], errors  # the same step, both
        step = int(errors[0].split(" at step ")[1].split(":")[0])
        assert os.path.isdir(os.path.join(run, "checkpoints", f"step_{step:07d}"))
        resumed = script("train.py", "--resume", run, "--iterations", str(step + 2))
        assert resumed.returncode == 0, resumed.stderr
        with open(os.path.join(run, "config.json")) as f:
            assert json.load(f)["iterations"] == step + 2
