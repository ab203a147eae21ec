"""Training: the G+Q step and the D step run alternately on one Executor, with the log, grids, checkpoints,
resume and signals. A run directory's layout and its guarantees are infogan.rundir's.

Everything random in a step is drawn from generators seeded by (seed, step), and each epoch's order by
(seed, epoch), so a run resumed from a checkpoint continues exactly as the same run straight through would.
"""

import json
import math
import os
import shlex
import signal
import sys
import threading
import time
from contextlib import contextmanager
from datetime import datetime

import numpy as np

from infogan import InfoGANError, checkpoints
from infogan.data import RECORD, run_record
from infogan.data.neighbours import run_table
from infogan.device import stop_signal
from infogan.distributed import ALONE, broadcast_parameters, check_batch, connect, world
from infogan.files import folder_identity, write_text
from infogan.latent import LatentSpec
from infogan.objective import clustering_views, li_to_g, real_weight, sample_views
from infogan.rundir import Log, NewRun, RunLock, check_new_run_dir

LOG_KEYS = ("d_loss", "g_loss", "L_I_cat", "L_I_cont", "d_real", "d_fake", "accuracy")
GQ_STATS = ("li_cat", "li_cont", "g_loss")
D_STATS = ("d_loss", "d_real", "d_fake", "info_real", "r1")  # info_real: only with --lambda-real; r1: --r1
VALIDATION_IMAGES = 2000  # validation images scored during training; scripts/evaluate.py scores them all
EMA_EVERY = 4  # steps between updates of the weights' moving averages, each with the decay to the 4th


def new_run(cfg, run_dir=None, overwrite=False):
    """Trains a new run with the settings `cfg` (TrainConfig.from_flags); returns its directory. Nothing
    is written before every start-up check has passed."""
    numbered = run_dir is None  # the default name: where it is taken, NAME-2, NAME-3, ...
    run_dir = run_dir or os.path.join("outputs", f"{cfg.dataset}-{datetime.now():%Y%m%d-%H%M%S}")
    if not world().main:  # another rank of a data-parallel launch: rank 0 checks and writes the run directory
        Trainer(cfg, new=True).run(run_dir, start_from=None)
        return run_dir
    check_new_run_dir(run_dir, overwrite, cfg.data_dir, numbered)
    staged = None
    try:
        trainer = Trainer(cfg, new=True)
        staged = NewRun(run_dir, numbered)
        write_text(os.path.join(staged.staging, "config.json"), cfg.to_json() + "\n", durable=True)
        write_text(os.path.join(staged.staging, RECORD), json.dumps(trainer.data.record(), indent=2) + "\n")
        if cfg.neighbours:  # the longest start-up work (full MNIST: 44 s), done before the run is in place
            run_table(staged.staging, trainer.data.train_images, cfg.neighbours)
    except BaseException as e:
        if staged:
            staged.discard()
        if isinstance(e, KeyboardInterrupt):
            raise Interrupted(stop_signal(e), "before training began: no run directory was written") from None
        raise
    try:
        run_dir = staged.publish(overwrite, cfg.data_dir)
        trainer.run(run_dir, start_from=None)
    finally:
        staged.lock.release()
    return run_dir


def resume_run(run_dir, cfg):
    """Continues a run from its latest checkpoint with the settings `cfg` (infogan.config.resumed_config)."""
    lock = RunLock(run_dir).acquire("run directory") if world().main else None
    try:
        _resume(run_dir, cfg)
    finally:
        if lock:
            lock.release()
    return run_dir


def _resume(run_dir, cfg):
    try:
        trainer, step = _resumed_trainer(run_dir, cfg)
    except KeyboardInterrupt as e:
        raise Interrupted(stop_signal(e), f"before training resumed: {run_dir} keeps its checkpoints") from None
    trainer.run(run_dir, start_from=step)


def _resumed_trainer(run_dir, cfg):
    """The Trainer of a resume, loaded from the run's latest checkpoint, and the step it starts from."""
    found = checkpoints.checkpoint_dirs(run_dir)
    trainer = Trainer(cfg, record=run_record(run_dir))
    step = checkpoints.step_of(found[-1]) if found else 0
    total = cfg.total_iterations(len(trainer.data.train_images))
    if total <= step:
        raise InfoGANError(
            f"{run_dir} has trained {step} steps and its settings stop at {total}: "
            f"raise --iterations (or --epochs) above {step} to train further"
        )
    if found:
        trainer.load(found[-1])
    elif trainer.world.main:  # stopped before its first checkpoint: nothing is lost by starting over
        _warn(f"{run_dir} has no checkpoint yet: training starts again from step 0")
    if trainer.world.main:
        write_text(os.path.join(run_dir, "config.json"), cfg.to_json() + "\n", durable=True)
    return trainer, step


class TrainingStep:
    """One training iteration: the G+Q step, then the D step on its fakes (or on fakes of its own). With
    several ranks, everything random is drawn for the global batch and each rank takes its shard, so that
    N ranks see what one process would."""

    def __init__(self, cfg, spec, programs, exe, value_range, world=ALONE, total=None):
        from infogan.programs import learning_rates

        self.cfg, self.spec, self.programs, self.exe, self.value_range = cfg, spec, programs, exe, value_range
        self.world, self.total = world, total
        self.rates = [(name, cfg.lr_d) for name in learning_rates(programs.d_step.program)]
        self.rates += [(name, cfg.lr_g) for name in learning_rates(programs.gq_step.program)]

    def _schedule(self, step):
        """The learning rates of step `step`, where they decay (--lr-decay)."""
        import paddle

        factor = self.cfg.lr_factor(step, self.total)
        scope = paddle.static.global_scope()
        for name, rate in self.rates:
            scope.find_var(name).get_tensor().set(np.array(rate * factor, "float32"), self.exe.place)

    def _shard(self, latent):
        return {k: self.world.shard(v) for k, v in latent.items()} if self.world.size > 1 else latent

    def __call__(self, step, real, fetch_stats=True, stop=False, neighbours=None):
        """Runs step `step` on the global real batch `real` (float, in the value range), and with --neighbours
        `neighbours`, the nearest training images of each. Returns the step's statistics as floats, or None when
        not `fetch_stats` (then only the fake batch is fetched); with several ranks, `stop` is this rank's
        wish to stop, and stats["stop"] how many ranks wished it."""
        cfg, gq, d, world = self.cfg, self.programs.gq_step, self.programs.d_step, self.world
        n = len(real)
        if cfg.lr_decay != "none":
            self._schedule(step)
        latent = self._shard(self.spec.sample(np.random.default_rng([cfg.seed, 1, step]), n))
        gq_keys = GQ_STATS if fetch_stats else ()
        gq_fetch = [gq.fetches["fake"]] + [gq.fetches[k] for k in gq_keys]
        gq_feed = dict(latent, li_to_g=np.full([1], li_to_g(cfg, step), "float32"))
        if cfg.li_views:
            views_feed = sample_views(np.random.default_rng([cfg.seed, 4, step]), n, real.shape[-1])
            gq_feed.update(self._shard(views_feed))
        # The fake batch stays a Paddle tensor (on the GPU, where there is one) on its way into the D step.
        fake, *gq_stats = self.exe.run(gq.program, feed=gq_feed, fetch_list=gq_fetch, return_numpy=False)
        d_feed = {"real": world.shard(real) if world.size > 1 else real}
        if cfg.fresh_fakes:
            d_feed.update(self._shard(self.spec.sample(np.random.default_rng([cfg.seed, 3, step]), n)))
        else:
            d_feed["fake"] = fake
            if cfg.q_step != "g":
                d_feed.update({k: v for k, v in latent.items() if k != "z"})
        views = clustering_views(cfg, real, np.random.default_rng([cfg.seed, 2, step]), self.value_range, neighbours)
        if views is not None:
            d_feed["real_aug"] = world.shard_views(views, n) if world.size > 1 else views
            d_feed["lambda_real"] = np.full([1], real_weight(cfg, step), "float32")
        d_keys = [k for k in D_STATS if k in d.fetches] if fetch_stats else []
        if world.size > 1:
            d_feed["stop"] = np.full([1], float(stop), "float32")
            d_keys.append("stop")
        d_stats = self.exe.run(d.program, feed=d_feed, fetch_list=[d.fetches[k] for k in d_keys])
        if self.programs.ema and step % EMA_EVERY == 0:
            # A memory of about the last ninth of the run while the weights still move fast: a longer one (the
            # last half, up to 1,000 steps) drew worse samples (docs/results.md, "Sample quality").
            updates = step // EMA_EVERY
            decay = min(cfg.ema**EMA_EVERY, (1 + updates) / (10 + updates))
            self.exe.run(self.programs.ema.program, feed={"ema_decay": np.full([1], decay, "float32")})
        if not fetch_stats:
            return {"stop": float(d_stats[-1])} if world.size > 1 else None
        values = [np.array(v) for v in gq_stats] + d_stats
        stats = {k: float(np.asarray(v).ravel()[0]) for k, v in zip(gq_keys + tuple(d_keys), values, strict=True)}
        stats["fake images"] = float(np.abs(np.array(fake)).max())  # NaN or inf in G shows here first
        return stats


class StopSignals:
    """Within the block, SIGINT, SIGTERM and SIGHUP only set `received`: the loop finishes its step, saves, stops.
    SIGHUP is a terminal that closed (an ssh connection that dropped): what went to it goes to /dev/null from
    then on, as writing to it would fail the run. Under nohup (SIGHUP ignored) the run trains on."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

    def __enter__(self):
        self.received, self.previous = None, {}
        if threading.current_thread() is not threading.main_thread():
            # Python handles signals in the main thread alone: a run trained in another thread (a notebook's
            # background job) trains to its end or the process's, its checkpoints as --checkpoint-every says.
            return self
        self.terminal = [fd for fd in (1, 2) if os.isatty(fd)]  # a hung-up terminal no longer says it is one
        self.nohup = signal.getsignal(signal.SIGHUP) == signal.SIG_IGN
        self.previous = {s: signal.signal(s, self._handle) for s in self.SIGNALS}
        return self

    def _handle(self, signum, frame):
        if signum == signal.SIGHUP:
            devnull = os.open(os.devnull, os.O_WRONLY)
            for fd in self.terminal:
                os.dup2(devnull, fd)
            os.close(devnull)
            if self.nohup:
                return
        self.received = signum

    def __exit__(self, *exc):
        for s, handler in self.previous.items():
            signal.signal(s, handler)

    @contextmanager
    def deferred(self, when=True):
        """The signals held back while the block runs (delivered after it): among ranks, a signal landing
        in a collective's socket read would fail the all-reduce on every rank."""
        if not when:
            yield
            return
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, self.SIGNALS)
        try:
            yield
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)


class Interrupted(InfoGANError):
    """A stop by SIGINT, SIGTERM or SIGHUP, told with what it left behind."""

    def __init__(self, signum, what):
        self.exit_code = 128 + signum
        super().__init__(f"{signal.Signals(signum).name} {what}")


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
    """A run's data, programs and executor, ready to train: building one performs every start-up check.
    `new`: a new run's, which also refuses a --val-size the data ignores (a resumed run's config.json,
    written before the setting meant "the data's own", holds 5000 whatever the data, and must still load);
    `record`: a resumed run's data.json, which the data found must match."""

    def __init__(self, cfg, compute=None, new=False, record=None):
        import paddle

        from infogan.data import load_dataset, neighbours, unlike
        from infogan.device import executor
        from infogan.nets import NetSpec
        from infogan.programs import build_train_programs

        self.cfg = cfg
        self.world = world()
        check_batch(self.world, cfg.batch_size)
        self.spec = LatentSpec.from_config(cfg)
        self.value_range = NetSpec.from_config(cfg, self.spec).value_range
        self.exe = executor(cfg.device)
        connect(self.world, gpu=not isinstance(self.exe.place, paddle.CPUPlace))
        self.data = load_dataset(cfg, record)
        if self.world.main:
            print(f"data: {self.data.source}; validation: {self.data.validation}", file=sys.stderr)
        if record and (why := unlike(record, self.data)):
            raise InfoGANError(f"the data found are not the run's own: {why}; pass --data-dir with the run's data")
        if new and cfg.val_size is not None and not self.data.val_size_used:
            raise InfoGANError(
                f"--val-size {cfg.val_size} does not apply to {self.data.source}: it validates on "
                f"{self.data.validation}; drop --val-size (it sizes the part held out where the data has no test split)"
            )
        shape = tuple(self.data.train_images.shape[1:])
        if shape != cfg.image_shape:
            raise InfoGANError(f"the training images are {shape}, the settings expect {cfg.image_shape}")
        if len(self.data.train_images) < cfg.batch_size:
            raise InfoGANError(
                f"--batch-size {cfg.batch_size} is larger than the {len(self.data.train_images)} training images"
            )
        if cfg.neighbours:  # the table itself is found in run(), where the run directory that keeps it is known
            neighbours.check(cfg.neighbours, len(self.data.train_images))
        paddle.seed(cfg.seed)
        self.programs = build_train_programs(cfg, self.spec, compute, self.world)
        self.exe.run(self.programs.startup)
        broadcast_parameters(self.programs, self.exe, self.world)
        total = cfg.total_iterations(len(self.data.train_images))
        self.step = TrainingStep(cfg, self.spec, self.programs, self.exe, self.value_range, self.world, total)
        self.started = time.perf_counter()

    def load(self, checkpoint):
        return checkpoints.load_training_state(checkpoint, self.programs)

    def run(self, run_dir, start_from):
        from infogan.data import batches

        cfg, main = self.cfg, self.world.main
        self.run_dir = run_dir
        self.run_dir_identity = folder_identity(run_dir) if main else None  # other ranks write nothing there
        self.log = Log(run_dir)
        start = start_from or 0
        total = cfg.total_iterations(len(self.data.train_images))
        records = [r for r in self.log.read(warn=_warn if main else None) if r["step"] <= start]
        if start_from is not None and main:
            self.log.rewrite(records)  # records after the checkpoint belong to steps trained again
        if main:
            ranks = f" ({self.world.size} ranks, {cfg.batch_size // self.world.size} images each)"
            print(f"run directory: {run_dir}{ranks if self.world.size > 1 else ''}", file=sys.stderr)
        images = self.data.train_images
        table = run_table(run_dir if main else None, images, cfg.neighbours) if cfg.neighbours else None
        real_batches = batches(images, cfg.batch_size, cfg.seed, start, self.value_range, table)
        progress = _progress(start, total, disable=not main)
        meter = Meter(start, cfg.batch_size)
        # Wall time of the run's training so far, over every session of it (resumes included).
        self.started = time.perf_counter() - (records[-1].get("elapsed_s", 0.0) if records else 0.0)
        with StopSignals() as signals:
            for step in progress:
                with meter.timing(), signals.deferred(self.world.size > 1), self._lost_ranks(step):
                    real, near = next(real_batches)
                    stats = self.step(step, real, stop=bool(signals.received), neighbours=near)
                # Among ranks, only the summed flags decide, so that every rank stops after the same step.
                stopping = stats.pop("stop") > 0 if self.world.size > 1 else signals.received
                self._check_finite(step + 1, stats)
                if main:
                    self._check_run_dir(step + 1)
                    if self._due(step, cfg.eval_every, total) and self.data.val_labels is not None:
                        stats.update(self.validation_accuracy())
                    if "accuracy" in stats or self._due(step, cfg.log_every, total):
                        records.append(self._record(step + 1, stats, meter.images_per_s(step + 1)))
                        li = "L_I_cat" if "L_I_cat" in records[-1] else "L_I_cont"
                        progress.set_postfix({li: f"{records[-1][li]:.3f}"}, refresh=False)
                    if self._due(step, cfg.grid_every, total):
                        self.write_grids(step + 1, records)
                    if self._due(step, cfg.checkpoint_every, total) or stopping:
                        self.save(step + 1)
                if stopping:
                    progress.close()
                    raise Interrupted(
                        signals.received or signal.SIGTERM,
                        f"at step {step + 1}: checkpoint and logs saved; resume with: "
                        f"python scripts/train.py --resume {shlex.quote(run_dir)}",
                    )
        progress.close()
        if main:
            self._finish(records, progress.format_dict["elapsed"])

    @contextmanager
    def _lost_ranks(self, step):
        """Among ranks, a collective that fails means another rank is gone: say so, once, not a C++ trace."""
        try:
            yield
        except RuntimeError as e:
            if self.world.size == 1:
                raise
            reason = str(e).strip() or "no reason given"
            raise InfoGANError(
                f"rank {self.world.rank} lost the other ranks in step {step + 1} ({reason}): "
                "one of them stopped or failed; its own log under the launcher's --log_dir says why"
            ) from None

    def _check_run_dir(self, step):
        """A run directory moved or deleted while training stops the run: writing on would start a second,
        partial run (no config.json) at the old path."""
        if folder_identity(self.run_dir) != self.run_dir_identity:
            raise InfoGANError(
                f"{self.run_dir} was moved or deleted while training: stopped at step {step}, writing nothing more "
                "(a moved run continues from its last checkpoint with --resume ITS_NEW_PATH)"
            )

    def _check_finite(self, step, stats):
        bad = [k for k, v in stats.items() if not math.isfinite(v)]
        if bad:
            self._diverged(step, f"{', '.join(bad)} became {stats[bad[0]]}")

    def _diverged(self, step, what):
        kept = checkpoints.checkpoint_dirs(self.run_dir)
        last = f"the last good checkpoint is {kept[-1]}" if kept else "no checkpoint was written yet"
        raise InfoGANError(
            f"training diverged at step {step}: {what}; {last}. Lower --lr-d/--lr-g or the lambdas, or change --seed"
        )

    def save(self, step):
        bad = checkpoints.non_finite_parameters(self.programs)
        if bad:
            self._diverged(step, f"parameters {', '.join(bad[:3])} hold NaN or infinity")
        self.log.sync()  # the log's records up to this step are on the disk before the checkpoint counts
        checkpoints.save(self.run_dir, self.programs, step, self.cfg.keep_checkpoints)

    def validation_accuracy(self):
        """Q's unsupervised accuracy on (at most VALIDATION_IMAGES of) the validation images: the best of the
        categorical codes', and each code's where there are several."""
        from infogan.data import to_input
        from infogan.metrics import accuracy
        from infogan.scoring import categorise

        images = to_input(self.data.val_images[:VALIDATION_IMAGES], self.value_range)
        labels = self.data.val_labels[:VALIDATION_IMAGES]
        per_code = [
            accuracy(pred, labels, code.dim, int(labels.max()) + 1)[0]
            for pred, code in zip(
                categorise(self.exe, self.programs.encode, self.spec, images), self.spec.cat, strict=True
            )
        ]
        if not per_code:
            return {}
        result = {"accuracy": max(per_code)}
        if len(per_code) > 1:
            result["accuracy_per_code"] = per_code
        return result

    def _record(self, step, stats, images_per_s):
        h_cat, h_cont = self.spec.entropies()
        record = {
            "step": step,
            "d_loss": stats["d_loss"],
            "g_loss": stats["g_loss"],
            **({"L_I_cat": stats["li_cat"] + h_cat} if self.spec.cat else {}),  # the L_I terms of the run's codes
            **({"L_I_cont": stats["li_cont"] + h_cont} if self.spec.cont_dim else {}),
            "d_real": stats["d_real"],
            "d_fake": stats["d_fake"],
            "images_per_s": images_per_s,
            "elapsed_s": time.perf_counter() - self.started,
        }
        if self.world.size > 1:
            record["ranks"] = self.world.size
        if "info_real" in stats:  # the clustering term, where the D step has one
            record["I_real"] = stats["info_real"]
        if "r1" in stats:  # E||grad_x D(x)||^2 over real images, with --r1
            record["r1"] = stats["r1"]
        for key in ("accuracy", "accuracy_per_code"):
            if key in stats:
                record[key] = stats[key]
        self.log.append(record)
        return record

    def write_grids(self, step, records):
        from infogan.figures import plot_curves
        from infogan.grids import write_grids

        folder = os.path.join(self.run_dir, "grids")
        write_grids(
            self.exe,
            self.programs.generate,
            self.spec,
            self.value_range,
            folder,
            f"step{step:07d}_",
            seed=self.cfg.seed,
        )
        if records:
            plot_curves(records, os.path.join(self.run_dir, "curves.png"), self.spec.entropies()[0])

    def _finish(self, records, seconds):
        final = records[-1] if records else {}
        summary = ", ".join(f"{k} {final[k]:.3f}" for k in LOG_KEYS if k in final)
        print(f"done in {seconds / 60:.1f} min: {self.run_dir} ({summary})", file=sys.stderr)
        print(
            f"grids: {os.path.join(self.run_dir, 'grids')}; "
            f"redraw with: python scripts/sample.py {shlex.quote(self.run_dir)}",
            file=sys.stderr,
        )

    @staticmethod
    def _due(step, every, total):
        return (step + 1) % every == 0 or step + 1 == total


def _progress(start, total, disable=False):
    from infogan.progress import progress

    return progress(range(start, total), initial=start, total=total, desc="training", unit="it", disable=disable)


def _warn(message):
    print(f"warning: {message}", file=sys.stderr)
