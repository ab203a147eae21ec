"""Training: the D step and the G+Q step run alternately on one Executor, with logs, grids and checkpoints.

A run directory holds config.json, log.jsonl (one JSON record per logged step), curves.png, grids/ and
checkpoints/. Everything random in a step is drawn from generators seeded by (seed, step) or (seed, epoch),
so a run resumed from a checkpoint continues exactly as the same run straight through would have.
"""

import dataclasses
import json
import math
import os
import shutil
import signal
import sys
import time
from contextlib import contextmanager
from datetime import datetime

import numpy as np
import paddle
from tqdm import tqdm

from infogan import InfoGANError
from infogan.config import DEFAULT_ITERATIONS, TrainConfig
from infogan.data import augment, batches, load_dataset
from infogan.evaluation import categorise
from infogan.files import write_text
from infogan.latent import LatentSpec
from infogan.metrics import accuracy
from infogan.programs import build_train_programs
from infogan.runs import read_records
from infogan.runtime import checkpoint_dirs, executor, latest_checkpoint, load_training_state, save_checkpoint
from infogan.sampling import read_config, write_grids
from infogan.viz import plot_curves

RESUMABLE = {"iterations", "epochs", "device", "data_dir", "no_fallback"}  # what --resume may change
LOG_KEYS = ("d_loss", "g_loss", "L_I_cat", "L_I_cont", "d_real", "d_fake", "accuracy")
GQ_STATS = ("fake", "li_cat", "li_cont", "g_loss")
D_STATS = ("d_loss", "d_real", "d_fake", "info_real")  # info_real: only with --lambda-real
EVAL_IMAGES = 2000  # held-out images scored during training; scripts/evaluate.py scores the whole split


def total_iterations(cfg, n_train):
    if cfg.iterations is not None:
        return cfg.iterations
    if cfg.epochs is not None:
        return cfg.epochs * (n_train // cfg.batch_size)
    return DEFAULT_ITERATIONS


def new_run(options, run_dir=None, overwrite=False):
    """Trains a new run with the given TrainConfig fields (the rest default); returns its directory."""
    cfg = TrainConfig(**options).validate()
    run_dir = run_dir or os.path.join("outputs", f"{cfg.dataset}-{datetime.now():%Y%m%d-%H%M%S}")
    taken = os.path.exists(run_dir) and os.listdir(run_dir)
    if taken and not overwrite:
        raise InfoGANError(
            f"run directory {run_dir} already exists: pass --resume {run_dir} to continue it, "
            "--overwrite to replace it, or another --run-dir"
        )
    trainer = Trainer(cfg, run_dir)  # checks the device and loads the data before anything is written
    if taken:
        shutil.rmtree(run_dir)
    _make_run_dir(run_dir)
    write_text(os.path.join(run_dir, "config.json"), cfg.to_json() + "\n")
    trainer.run(start_from=None)
    return run_dir


def resume_run(run_dir, options):
    """Continues a run from its latest checkpoint; `options` may change only RESUMABLE fields."""
    cfg = read_config(run_dir)
    for key, value in options.items():
        if key not in RESUMABLE and getattr(cfg, key) != value:
            flag = "--" + key.replace("_", "-")
            raise InfoGANError(f"{flag} cannot change when resuming: {run_dir}/config.json says {getattr(cfg, key)!r}")
    cfg = dataclasses.replace(cfg, **options).validate()
    checkpoint = latest_checkpoint(run_dir)
    trainer = Trainer(cfg, run_dir)
    write_text(os.path.join(run_dir, "config.json"), cfg.to_json() + "\n")
    trainer.run(start_from=checkpoint)
    return run_dir


def _make_run_dir(run_dir):
    try:
        os.makedirs(os.path.join(run_dir, "checkpoints"), exist_ok=True)
    except OSError as e:
        raise InfoGANError(f"cannot create run directory {run_dir}: {e.strerror}") from None


def li_to_g(cfg, step):
    """The share of L_I's gradient that reaches G at `step`: none in a plain GAN (--gan-baseline) nor over
    the first --li-delay steps, then a share growing linearly over --li-warmup steps, then all of it."""
    ramp = step - cfg.li_delay
    if cfg.gan_baseline or ramp < 0:
        return 0.0
    return min(1.0, ramp / cfg.li_warmup) if cfg.li_warmup else 1.0


def gq_feed(latent, share):
    """The G+Q step's feed: the latent codes and the share of L_I's gradient that reaches G."""
    return dict(latent, li_to_g=np.full([1], share, "float32"))


def clustering_views(cfg, real, rng):
    """The clustering term's feed `real_aug`: --views augmented views of each real image, or None without
    the term (--lambda-real 0)."""
    return augment(real, rng, cfg.views) if cfg.lambda_real else None


def alternate(exe, programs, latent, real, q_in_d_step, fetch_stats=True, li_to_g=1.0, real_aug=None):
    """One G+Q step, then one D step on the G+Q step's fake batch. Returns the step's statistics as floats,
    or None when not `fetch_stats` (then nothing is fetched but the fake batch). `li_to_g` is the share of
    L_I's gradient that reaches G; `real_aug`, augmented views of `real` (clustering_views), feeds the
    clustering term."""
    gq, d = programs.gq_step, programs.d_step
    d_keys = [k for k in D_STATS if k in d.fetches] if fetch_stats else []
    gq_keys = GQ_STATS if fetch_stats else GQ_STATS[:1]
    # The fake batch stays a Paddle tensor (on the GPU, where there is one) on its way into the D step.
    gq_fetch = [gq.fetches[k] for k in gq_keys]
    fake, *gq_stats = exe.run(gq.program, feed=gq_feed(latent, li_to_g), fetch_list=gq_fetch, return_numpy=False)
    d_feed = {"real": real, "fake": fake}
    if q_in_d_step:
        d_feed.update(c_cat=latent["c_cat"], c_cont=latent["c_cont"])
    if real_aug is not None:
        d_feed["real_aug"] = real_aug
    d_stats = exe.run(d.program, feed=d_feed, fetch_list=[d.fetches[k] for k in d_keys])
    if fetch_stats:
        values = [np.array(v) for v in gq_stats] + d_stats
        return {k: float(v) for k, v in zip(GQ_STATS[1:] + tuple(d_keys), values, strict=True)}
    return None


class StopSignals:
    """Within the block, SIGINT and SIGTERM only set `received`: the loop finishes its step, saves, stops."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __enter__(self):
        self.received = None
        self.previous = {s: signal.signal(s, self._handle) for s in self.SIGNALS}
        return self

    def _handle(self, signum, frame):
        self.received = signum

    def __exit__(self, *exc):
        for s, handler in self.previous.items():
            signal.signal(s, handler)


class Interrupted(InfoGANError):
    def __init__(self, signum, step, run_dir):
        self.exit_code = 128 + signum
        name = signal.Signals(signum).name
        super().__init__(
            f"{name} at step {step}: checkpoint and logs saved; resume with: python scripts/train.py --resume {run_dir}"
        )


class Meter:
    """Training throughput, timing only the steps (not grids, checkpoints or evaluation)."""

    def __init__(self, step, batch_size):
        self.batch_size = batch_size
        self.last_step = step
        self.seconds = 0.0

    @contextmanager
    def timing(self):
        started = time.perf_counter()
        yield
        self.seconds += time.perf_counter() - started

    def images_per_s(self, step):
        rate = (step - self.last_step) * self.batch_size / max(self.seconds, 1e-9)
        self.last_step, self.seconds = step, 0.0
        return rate


class Trainer:
    def __init__(self, cfg, run_dir):
        self.cfg = cfg
        self.run_dir = run_dir
        self.spec = LatentSpec.from_config(cfg)
        self.exe = executor(cfg.device)
        self.data = load_dataset(cfg.dataset, cfg.data_dir, fallback=not cfg.no_fallback)
        paddle.seed(cfg.seed)
        self.programs = build_train_programs(self.spec, cfg)
        self.exe.run(self.programs.startup)
        self.log_path = os.path.join(run_dir, "log.jsonl")

    def run(self, start_from):
        cfg = self.cfg
        start = 0 if start_from is None else load_training_state(start_from, self.programs, self.exe)
        total = total_iterations(cfg, len(self.data.train_images))
        records = self._read_log(until=start)
        print(f"data: {self.data.source}\nrun directory: {self.run_dir}", file=sys.stderr)
        real_batches = batches(self.data.train_images, cfg.batch_size, cfg.seed, start)
        progress = tqdm(range(start, total), initial=start, total=total, desc="training", unit="it", file=sys.stderr)
        meter = Meter(start, cfg.batch_size)
        with StopSignals() as signals:
            for step in progress:
                with meter.timing():
                    stats = self.train_step(step, next(real_batches))
                self._check_finite(step + 1, stats)
                if self._due(step, cfg.eval_every, total):
                    stats["accuracy"] = self.held_out_accuracy()
                if "accuracy" in stats or self._due(step, cfg.log_every, total):
                    records.append(self._record(step + 1, stats, meter.images_per_s(step + 1)))
                    progress.set_postfix(L_I_cat=f"{records[-1]['L_I_cat']:.3f}", refresh=False)
                if self._due(step, cfg.grid_every, total):
                    self.write_grids(step + 1, records)
                if self._due(step, cfg.checkpoint_every, total) or signals.received:
                    self.save(step + 1)
                if signals.received:
                    progress.close()
                    raise Interrupted(signals.received, step + 1, self.run_dir)
        progress.close()
        self._finish(records, progress.format_dict["elapsed"])

    def train_step(self, step, real):
        latent = self.spec.sample(np.random.default_rng([self.cfg.seed, 1, step]), self.cfg.batch_size)
        share = li_to_g(self.cfg, step)
        real_aug = clustering_views(self.cfg, real, np.random.default_rng([self.cfg.seed, 2, step]))
        return alternate(self.exe, self.programs, latent, real, self.cfg.q_in_d_step, li_to_g=share, real_aug=real_aug)

    def _check_finite(self, step, stats):
        bad = [k for k, v in stats.items() if not math.isfinite(v)]
        if bad:
            kept = checkpoint_dirs(self.run_dir)
            last = f"the last good checkpoint is {kept[-1]}" if kept else "no checkpoint was written yet"
            raise InfoGANError(
                f"training diverged at step {step}: {', '.join(bad)} became {stats[bad[0]]}; {last}. "
                "Lower --lr-d/--lr-g or the lambdas, or change --seed"
            )

    def save(self, step):
        try:
            save_checkpoint(self.run_dir, self.programs, step, self.cfg.keep_checkpoints)
        except OSError as e:
            kept = checkpoint_dirs(self.run_dir)
            last = f"{kept[-1]} is intact" if kept else "there is no earlier checkpoint"
            raise InfoGANError(
                f"cannot write the step-{step} checkpoint in {self.run_dir}: {e.strerror}; {last}"
            ) from None

    def held_out_accuracy(self):
        """Q's unsupervised accuracy on (at most EVAL_IMAGES of) the held-out images."""
        images, labels = self.data.test_images[:EVAL_IMAGES], self.data.test_labels[:EVAL_IMAGES]
        pred = categorise(self.exe, self.programs.encode, images)
        return accuracy(pred, labels, self.spec.cat.dim, int(labels.max()) + 1)[0]

    def _record(self, step, stats, images_per_s):
        record = {
            "step": step,
            "d_loss": stats["d_loss"],
            "g_loss": stats["g_loss"],
            "L_I_cat": stats["li_cat"] + self.spec.cat.entropy(),
            "L_I_cont": stats["li_cont"] + self.spec.cont.entropy(),
            "d_real": stats["d_real"],
            "d_fake": stats["d_fake"],
            "images_per_s": images_per_s,
        }
        if "info_real" in stats:  # the clustering term, where the D step has one
            record["I_real"] = stats["info_real"]
        if "accuracy" in stats:
            record["accuracy"] = stats["accuracy"]
        with open(self.log_path, "a") as f:
            f.write(json.dumps(record) + "\n")
        return record

    def _read_log(self, until):
        """The log records up to step `until`; later ones (written after the checkpoint resumed) are dropped."""
        if not os.path.exists(self.log_path):
            return []
        records = [r for r in read_records(self.log_path) if r["step"] <= until]
        write_text(self.log_path, "".join(json.dumps(r) + "\n" for r in records))
        return records

    def write_grids(self, step, records):
        folder = os.path.join(self.run_dir, "grids")
        write_grids(self.exe, self.programs.generate, self.spec, folder, f"step{step:07d}_", seed=self.cfg.seed)
        if records:
            plot_curves(records, os.path.join(self.run_dir, "curves.png"), self.spec.cat.dim)

    def _finish(self, records, seconds):
        final = records[-1] if records else {}
        summary = ", ".join(f"{k} {final[k]:.3f}" for k in LOG_KEYS if k in final)
        print(f"done in {seconds / 60:.1f} min: {self.run_dir} ({summary})", file=sys.stderr)
        print(
            f"grids: {os.path.join(self.run_dir, 'grids')}; redraw with: python scripts/sample.py {self.run_dir}",
            file=sys.stderr,
        )

    @staticmethod
    def _due(step, every, total):
        return (step + 1) % every == 0 or step + 1 == total
