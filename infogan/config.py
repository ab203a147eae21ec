"""A run's configuration: defaults, validation with one-line messages, and its config.json."""

import dataclasses
import json
import math
from dataclasses import dataclass

from infogan import InfoGANError

DATASETS = ("mnist", "fashion-mnist")
DEVICES = ("auto", "cpu", "gpu")
CONT_STD = ("fixed", "learned")
ARCHS = ("paper", "mlp")
DEFAULT_ITERATIONS = 3000
# A config.json with neither iterations nor epochs was written when the default was 2,000 iterations: it
# trained, and resumes, to those. Newer ones spell the count out (to_json).
ITERATIONS_BEFORE_THEIR_TIME = 2000
# What a run's config.json lacks when it was written before a setting existed: how that run trained.
BEFORE_THEIR_TIME = {"li_warmup": 0, "lambda_real": 0.0, "views": 1}


@dataclass
class TrainConfig:
    dataset: str = "mnist"
    arch: str = "paper"
    data_dir: str | None = None
    no_fallback: bool = False
    device: str = "auto"
    batch_size: int = 64
    epochs: int | None = None
    iterations: int | None = None
    seed: int = 0
    noise_dim: int = 62
    categories: int = 10
    continuous: int = 2
    cont_std: str = "fixed"
    lambda_cat: float = 1.0
    lambda_cont: float = 1.0
    lr_d: float = 2e-4
    lr_g: float = 1e-3
    beta1: float = 0.5
    q_in_d_step: bool = False
    lambda_real: float = 3.0
    views: int = 2
    gan_baseline: bool = False
    li_delay: int = 0
    li_warmup: int = 500
    log_every: int = 10
    grid_every: int = 500
    eval_every: int = 200
    checkpoint_every: int = 500
    keep_checkpoints: int = 3

    def validate(self):
        _choice("--dataset", self.dataset, DATASETS)
        _choice("--device", self.device, DEVICES)
        _choice("--arch", self.arch, ARCHS)
        _choice("--cont-std", self.cont_std, CONT_STD)
        _int_range("--batch-size", self.batch_size, 2, 4096)
        _int_range("--noise-dim", self.noise_dim, 1, 10_000)
        _int_range("--categories", self.categories, 2, 1000)
        _int_range("--continuous", self.continuous, 1, 100)
        _int_range("--seed", self.seed, 0, 2**32 - 1)
        _int_range("--views", self.views, 1, 16)
        _int_range("--li-delay", self.li_delay, 0, 10**9)
        _int_range("--li-warmup", self.li_warmup, 0, 10**9)
        for flag in ("log_every", "grid_every", "eval_every", "checkpoint_every", "keep_checkpoints"):
            _int_range("--" + flag.replace("_", "-"), getattr(self, flag), 1, 10**9)
        if self.epochs is not None:
            _int_range("--epochs", self.epochs, 1, 100_000)
        if self.iterations is not None:
            _int_range("--iterations", self.iterations, 1, 10**9)
        for flag, value in (("--lr-d", self.lr_d), ("--lr-g", self.lr_g)):
            _float_range(flag, value, 0.0, 1.0, "a learning rate such as 2e-4")
        _float_range("--beta1", self.beta1, -1e-12, 1.0, "Adam's beta1, in [0, 1)")
        for flag, value in (
            ("--lambda-cat", self.lambda_cat),
            ("--lambda-cont", self.lambda_cont),
            ("--lambda-real", self.lambda_real),
        ):
            _float_range(flag, value, -1e-12, 1000.0, "a weight >= 0 (0 turns its term off)")
        if self.gan_baseline and self.q_in_d_step:
            raise InfoGANError("--gan-baseline trains a plain GAN's D: it cannot be combined with --q-in-d-step")
        if self.gan_baseline and 0 in (self.lambda_cat, self.lambda_cont):
            raise InfoGANError("--gan-baseline needs --lambda-cat and --lambda-cont > 0: they weight Q's own training")
        return self

    def to_json(self):
        values = dataclasses.asdict(self)
        if _no_length(values):
            values["iterations"] = DEFAULT_ITERATIONS
        return json.dumps(values, indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, values):
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise InfoGANError(f"config.json has unknown keys {unknown}: written by a newer version?")
        values = BEFORE_THEIR_TIME | values
        if _no_length(values):
            values["iterations"] = ITERATIONS_BEFORE_THEIR_TIME
        return cls(**values)


def _no_length(values):
    """Neither --iterations nor --epochs was given: the default iteration count decides how long to train."""
    return values.get("iterations") is None and values.get("epochs") is None


def _choice(flag, value, choices):
    if value not in choices:
        raise InfoGANError(f"{flag} {value!r} is not known: choose one of {', '.join(choices)}")


def _int_range(flag, value, low, high):
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InfoGANError(f"{flag} must be a whole number from {low} to {high}, not {value!r}")


def _float_range(flag, value, low, high, what):
    if not isinstance(value, (int, float)) or not math.isfinite(value) or not low < value < high:
        raise InfoGANError(f"{flag} must be {what}, not {value!r}")
