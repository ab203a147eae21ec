"""InfoGAN (Chen et al., NeurIPS 2016) on PaddlePaddle's static graph.

Importing the package does nothing else: no environment variable, warning filter or Paddle import.
"""

from contextlib import contextmanager


class InfoGANError(Exception):
    """A problem the user can fix; scripts print its message on one line and exit with `exit_code`."""

    exit_code = 2


def train(run_dir=None, resume=None, overwrite=False, **settings):
    """Trains a run as scripts/train.py does, its settings named as TrainConfig's fields (the script's flags
    with _ for -), and returns its run directory (for `load`):

        infogan.train(data_dir="data/mnist", lr_d=1e-3, iterations=6000)   # a new run, in outputs/DATASET-TIME
        infogan.train(resume=run, iterations=9000)                         # that run, trained further

    `run_dir` and `overwrite` as --run-dir and --overwrite. A mistake raises InfoGANError before anything is
    written; a stop (Ctrl-C, a notebook's interrupt) saves a checkpoint and raises it too. Paddle's set-up
    as in `load`."""
    with _paddle_set_up():
        from infogan.config import TrainConfig, resumed_config

        if resume:
            if run_dir or overwrite:
                raise InfoGANError("--resume continues a run in its own directory: drop --run-dir and --overwrite")
            cfg = resumed_config(resume, settings)  # a mistaken setting is told before Paddle's import (seconds)
        else:
            cfg = TrainConfig.from_flags(settings)  # likewise
        from infogan.api import own_static_scope
        from infogan.trainer import new_run, resume_run

        with own_static_scope():
            return resume_run(resume, cfg) if resume else new_run(cfg, run_dir, overwrite)


def evaluate(run_dir, data_dir=None, device="cpu", sample_quality=True):
    """Scores a run's latest checkpoint as scripts/evaluate.py does (each categorical code's accuracy and NMI on
    the validation images, the samples' quality): prints the table, writes RUN/metrics.json and confusion.png,
    and returns the metrics as metrics.json holds them. `data_dir` scores other images (--data-dir);
    `sample_quality=False` skips the samples' judging (--accuracy-only)."""
    with _paddle_set_up():
        from infogan.files import folder_identity
        from infogan.scoring import save_metrics, score_run, table

        scored = folder_identity(run_dir)
        metrics = score_run(run_dir, data_dir, device, quality=sample_quality)
        print(table(metrics), flush=True)  # before the files: a run folder that cannot be written still shows them
        save_metrics(run_dir, metrics, scored)
        return metrics


def load(path, device="cpu"):
    """A trained model from a run directory or an exported folder: see infogan.api. Where Paddle is not yet
    imported, this sets the scripts' thread settings (infogan.device; any the environment has stay) before
    it is: G and Q then run 1.4 times faster, and Paddle's log lines stay off."""
    with _paddle_set_up():
        from infogan.api import load as load_model

        return load_model(path, device)


@contextmanager
def _paddle_set_up():
    """The scripts' thread settings where Paddle is not yet imported (it reads them at its import), and its
    warnings filtered inside."""
    import sys
    import warnings

    from infogan.device import apply_thread_settings, ignore_paddle_warnings

    if "paddle" not in sys.modules:
        apply_thread_settings()
    with warnings.catch_warnings():
        ignore_paddle_warnings()
        yield
