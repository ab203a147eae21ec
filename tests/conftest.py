"""Helpers the tests share: tiny datasets written on the fly, the scripts run as a user runs them, and a
harness around the training Programs."""

import gzip
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
import time

import numpy as np

if "PYTEST_XDIST_WORKER" in os.environ:
    # One worker per core already keeps every core busy: each Paddle process, the worker's and the scripts'
    # it starts, on one thread, not two per process fighting over two cores (the suite: 581 s against
    # 602-628 s on a 2-core CPU without AVX-512). Set before Paddle is imported, which reads them once.
    os.environ.setdefault("MKL_NUM_THREADS", "1")
    os.environ.setdefault("OMP_NUM_THREADS", "1")

import paddle  # noqa: E402
import pytest  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Tiny training settings for the scripts end to end: every step logged, grids and checkpoints every 3.
TINY = ["--batch-size", "8", "--log-every", "1", "--grid-every", "3", "--checkpoint-every", "3"]
BATCH = 8


def idx_bytes(array):
    """The IDX encoding of a uint8 array: magic 0x0000080N, big-endian dims, raw bytes."""
    array = np.asarray(array, dtype=np.uint8)
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.tobytes()


def write_file(path, payload, gz):
    if gz:
        with gzip.open(path + ".gz", "wb") as f:
            f.write(payload)
    else:
        with open(path, "wb") as f:
            f.write(payload)


def write_idx_dir(folder, n_train=64, n_test=20, gz=True, seed=0):
    """MNIST-format files of random digits with balanced labels; n_test=0 writes the training pair only."""
    rng = np.random.default_rng(seed)
    os.makedirs(folder, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        if not n:
            continue
        images = rng.integers(0, 256, size=(n, 28, 28))
        labels = np.arange(n) % 10
        for stem, array in ((f"{prefix}-images-idx3-ubyte", images), (f"{prefix}-labels-idx1-ubyte", labels)):
            write_file(os.path.join(folder, stem), idx_bytes(array), gz)
    return folder


@pytest.fixture(scope="session", autouse=True)
def cache_home(tmp_path_factory):
    """One cache folder for the suite, in place of the user's ~/.cache: the compiled operators, decoded
    images and judging classifiers of the tests' tiny data are built once a session, and a user's cache
    neither changes what the tests see nor gains the tests' files. Tests that need an empty cache set
    their own. Its path holds a space, as a home folder's may: the operators' build must not trip on it."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache home")))
        yield


@pytest.fixture(scope="session")
def tiny_mnist(tmp_path_factory):
    return write_idx_dir(str(tmp_path_factory.mktemp("tiny_mnist")))


def script(name, *args, env=None, cwd=ROOT, timeout=300):
    """Runs scripts/NAME (or a module with -m, for names without .py) as a user would."""
    cmd = (
        [sys.executable, os.path.join(ROOT, "scripts", name), *args]
        if name.endswith(".py")
        else [sys.executable, "-m", name, *args]
    )
    return subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, env=env, timeout=timeout)


def train(data_dir, run_dir, *args):
    return script("train.py", "--data-dir", data_dir, "--run-dir", run_dir, *TINY, *args)


def log_records(run_dir):
    with open(os.path.join(run_dir, "log.jsonl")) as f:
        return [json.loads(line) for line in f]


def one_error_line(result, message):
    """The script failed with exit status 2 and one `error: MESSAGE...` line, no traceback."""
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: " + message), result.stderr


class Setup:
    """A run's training Programs on a fresh scope and executor, initialised from seed 0, with a fixed
    real batch and latent batch to step them with."""

    def __init__(self, cfg=None, compute=None):
        from infogan.config import TrainConfig
        from infogan.device import owned_scope
        from infogan.latent import LatentSpec
        from infogan.nets import NetSpec
        from infogan.programs import build_train_programs
        from infogan.trainer import TrainingStep

        paddle.enable_static()
        # Step 0 of a warm-up would keep L_I from G; without moving averages, inference reads the weights.
        self.cfg = cfg or TrainConfig(li_warmup=0, ema=0.0)
        self.spec = LatentSpec.from_config(self.cfg)
        self.value_range = NetSpec.from_config(self.cfg, self.spec).value_range
        self.scope = owned_scope(self)  # freed with the Setup: a test file's Setups held 9.5 GB otherwise
        self.exe = paddle.static.Executor(paddle.CPUPlace())
        paddle.seed(0)
        self.programs = build_train_programs(self.cfg, self.spec, compute)
        with paddle.static.scope_guard(self.scope):
            self.exe.run(self.programs.startup)
        rng = np.random.default_rng(0)
        self.real = rng.random((BATCH, *self.cfg.image_shape), dtype=np.float32)
        self.latent = self.spec.sample(rng, BATCH)
        self.step = TrainingStep(self.cfg, self.spec, self.programs, self.exe, self.value_range)

    def names(self):
        blocks = (s.program.global_block() for s in (self.programs.d_step, self.programs.gq_step))
        return sorted({p.name for block in blocks for p in block.all_parameters()})

    def values(self):
        return {n: np.array(self.scope.find_var(n).get_tensor()) for n in self.names()}

    def set_values(self, values):
        for name, value in values.items():
            self.scope.find_var(name).get_tensor().set(value, paddle.CPUPlace())

    def run(self, step, feed, names):
        with paddle.static.scope_guard(self.scope):
            return self.exe.run(step.program, feed=feed, fetch_list=[step.fetches[n] for n in names])

    def gq_step(self, step=0, views=None, fetch=("fake", "g_loss", "li_cat")):
        """One G+Q step; with --li-views, the fakes moved as `views` (objective.sample_views) says."""
        from infogan.objective import li_to_g, sample_views

        feed = dict(self.latent, li_to_g=np.full([1], li_to_g(self.cfg, step), "float32"))
        if self.cfg.li_views:
            feed.update(views or sample_views(np.random.default_rng(1), BATCH, self.real.shape[-1]))
        return self.run(self.programs.gq_step, feed, list(fetch))

    def d_step(self, fake, fetch=("d_loss",), step=0):
        from infogan.objective import clustering_views, real_weight

        feed = {"real": self.real, "fake": fake}
        if self.cfg.q_step != "g":
            feed.update({k: v for k, v in self.latent.items() if k != "z"})
        near = self.real[:, None] if self.cfg.neighbours else None  # each image its own neighbour
        views = clustering_views(self.cfg, self.real, np.random.default_rng(1), neighbours=near)
        if views is not None:
            feed["real_aug"] = views
            feed["lambda_real"] = np.full([1], real_weight(self.cfg, step), "float32")
        return self.run(self.programs.d_step, feed, list(fetch))

    def generate(self, latent=None):
        from infogan.grids import generate

        with paddle.static.scope_guard(self.scope):
            return generate(self.exe, self.programs.generate, latent or self.latent)


def changed(before, after):
    return {n for n in before if not np.array_equal(before[n], after[n])}


def trainable(names, prefix):
    return {n for n in names if n.startswith(prefix) and not n.endswith(("_mean", "_variance"))}


def running_stats(names):
    return {n for n in names if n.endswith(("_mean", "_variance"))}


@pytest.fixture(scope="session")
def tiny_run(tiny_mnist, tmp_path_factory):
    """A run of a few steps on the tiny MNIST files: enough for its checkpoint to export, load, serve and
    resume. Tests that change a run change a copy of it (copy_run)."""
    run_dir = str(tmp_path_factory.mktemp("tiny_run") / "run")
    result = train(tiny_mnist, run_dir, "--iterations", "3")
    assert result.returncode == 0, result.stderr
    return run_dir


def copy_run(run_dir, dest):
    """A copy of a trained run, as it was left, for a test to change: copying takes a fraction of a second
    where training one in a new process takes ten or more."""
    shutil.copytree(run_dir, dest)
    return str(dest)


@pytest.fixture
def server():
    """A local HTTP server: GET /NAME answers with FILES[NAME], or with its first half under a full
    Content-Length (a connection cut short) when NAME ends in .cut, or in ten parts a tenth of a second
    apart when it ends in .slow, or 404."""
    files = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            name = self.path.lstrip("/")
            body = files.get(name.removesuffix(".cut").removesuffix(".slow"))
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if name.endswith(".slow"):
                for i in range(10):
                    self.wfile.write(body[i * len(body) // 10 : (i + 1) * len(body) // 10])
                    self.wfile.flush()
                    time.sleep(0.1)
                return
            self.wfile.write(body[: len(body) // 2] if name.endswith(".cut") else body)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/", files
    httpd.shutdown()


def aged(path, seconds=120):
    """`path`, its times set `seconds` back: a staging folder quiet that long, as a killed writer leaves it."""
    then = time.time() - seconds
    os.utime(path, (then, then))
    return path
