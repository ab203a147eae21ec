"""A run's settings: one dataclass whose fields carry their command-line help, the presets, validation
with one-line messages, and the run's config.json.

Every setting is a field of TrainConfig; scripts/train.py builds its flags from these fields (infogan.cli),
so a default or a help text lives here and nowhere else. A value is chosen, in increasing precedence, by
the field's default, the preset (--preset, else the dataset's own: PRESET_OF_DATASET), and the flags given.
"""

import dataclasses
import difflib
import json
import math
import os
from dataclasses import dataclass, field

from infogan import InfoGANError

DATASETS = ("mnist", "fashion-mnist", "svhn", "celeba", "folder")
# Each network's image side must be a multiple of this: its stride-2 layers halve the side that many times
# (2, 4, 3; the MLP has none).
ARCH_SIDE_MULTIPLE = {"mnist": 4, "svhn": 16, "chairs": 8, "mlp": 1}
ARCHS = tuple(ARCH_SIDE_MULTIPLE)
DEVICES = ("auto", "cpu", "gpu")
CONT_STD = ("fixed", "learned")
Q_STEPS = ("g", "d", "both")
INITS = ("paddle", "normal")
BIAS_INITS = ("zero", "uniform")
LR_DECAYS = ("none", "cosine")
DEFAULT_ITERATIONS = 3000
FIXED_SHAPES = {"mnist": (1, 28), "fashion-mnist": (1, 28), "svhn": (3, 32)}  # (channels, side) of their images

# The recipe the SVHN and CelebA experiments share: the paper's 32x32 colour networks (tables 2-3),
# trained as measured in docs/results.md.
_COLOUR_32 = {
    "arch": "svhn",
    "lambda_real": 0.0,
    "init": "normal",
    "bias_init": "uniform",  # else D starts blind to contrast and G collapses (docs/results.md)
    "lr_g": 2e-4,  # DCGAN's rate for G and Q: at the paper's 1e-3, seed 1 of each collapsed (docs/results.md)
    "iterations": 5000,  # digits and faces take shape by 2,500; docs/results.md shows 5,000
}

# Settings the paper's appendix C gives for each experiment, and the InfoGAN authors' MNIST recipe
# (openai/InfoGAN launchers/run_mnist_exp.py and infogan_trainer.py; docs/results.md lists each choice
# with its line). A preset never names the dataset: `--preset svhn` suits any 32x32 colour images.
PRESETS = {
    "mnist": {},  # the project's defaults: the paper's MNIST networks and codes, the clustering term on
    # The defaults at three times their length, D as fast as G, both rates decayed along half a cosine: the
    # samples closest to real digits measured (docs/results.md, "Each digit paired with its nearest", its
    # 9,000-step cosine table), for about three times the defaults' wall time.
    "mnist-long": {"lr_d": 1e-3, "iterations": 9000, "lr_decay": "cosine"},
    "paper": {
        "batch_size": 128,
        "iterations": 5000,  # 50 epochs of 100 updates
        "lr_d": 2e-4,
        "lr_g": 1e-3,
        "beta1": 0.5,
        "q_step": "d",  # Q's variables live in D's scope: the D step's loss subtracts L_I; G's step only G
        "fresh_fakes": True,  # each step samples its own z and draws its own fakes
        "lambda_cat": 1.0,
        "lambda_cont": 1.0,
        "cont_std": "fixed",
        "leak": 0.01,  # leaky_rectify's default leakiness, which their networks use
        "init": "normal",  # N(0, 0.02) weights, BN scale N(1, 0.02)
        "li_warmup": 0,
        "lambda_real": 0.0,
        "ema": 0.0,  # samples from the trained weights themselves
    },
    "svhn": {  # appendix C.2, table 2: 4 x Cat(10), 4 continuous, 124 noise
        **_COLOUR_32,
        "noise_dim": 124,
        "categorical": [10, 10, 10, 10],
        "continuous": 4,
    },
    "celeba": {  # appendix C.3, table 3: 10 x Cat(10), 128 noise
        **_COLOUR_32,
        "noise_dim": 128,
        "categorical": [10] * 10,
        "continuous": 0,
    },
    "faces3d": {  # appendix C.4, table 5: 5 continuous, 128 noise; 32x32 grey
        "arch": "mnist",
        "noise_dim": 128,
        "categorical": [],
        "continuous": 5,
        "image_size": 32,
        "channels": 1,
        "lambda_real": 0.0,
    },
    "chairs3d": {  # appendix C.5, table 4: 3 x Cat(20), 1 continuous, 128 noise; 64x64 grey
        "arch": "chairs",
        "noise_dim": 128,
        "categorical": [20, 20, 20],
        "continuous": 1,
        "image_size": 64,
        "channels": 1,
        "lambda_real": 0.0,
    },
}
PRESET_OF_DATASET = {"mnist": "mnist", "fashion-mnist": "mnist", "svhn": "svhn", "celeba": "celeba", "folder": "svhn"}


REQUIRED = object()  # a setting every config.json holds


def setting(default, help, resumable=False, choices=None, metavar=None, absent_means=REQUIRED, path=False):
    """A TrainConfig field with its command-line help; `resumable` settings may change on --resume;
    `absent_means`: for a setting added later, its value in a config.json written before it existed (what
    that version did), so that older runs still load; `path`: a file or folder (~ expanded)."""
    meta = {
        "help": help,
        "resumable": resumable,
        "choices": choices,
        "metavar": metavar,
        "absent": absent_means,
        "path": path,
    }
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class TrainConfig:
    # data
    dataset: str = setting(
        "mnist", "mnist, fashion-mnist, svhn, celeba or folder (any folder of images)", choices=DATASETS
    )
    data_dir: str | None = setting(
        None,
        "the dataset's folder (default: its cache under ~/.cache/paddle/dataset, downloaded)",
        resumable=True,
        path=True,
    )
    no_fallback: bool = setting(False, "fail instead of using the 5,000-digit MNIST sample", resumable=True)
    image_size: int | None = setting(None, "celeba and folder: side of the square training images (default 32)")
    channels: int | None = setting(None, "folder: 1 (grey) or 3 (colour, default)")
    val_size: int | None = setting(
        None,
        "images held out of the training images for validation where the data has no test split "
        "(default: 5,000 of MNIST's, 1,000 of SVHN's or a folder's, or a tenth where that is fewer)",
    )
    folder_labels: bool = setting(
        False,
        "folder: label each image by the subfolder it lies in (DIR/LABEL/...), as torchvision's ImageFolder "
        "does: validation accuracy, evaluate.py's scores and its judge then read them; training never does",
        absent_means=False,
    )
    # model
    preset: str | None = setting(None, "settings of an experiment, under the flags given", choices=tuple(PRESETS))
    arch: str = setting(
        "mnist", "the paper's networks: mnist (table 1), svhn (tables 2-3), chairs (table 4); or mlp", choices=ARCHS
    )
    noise_dim: int = setting(62, "size of the incompressible noise z")
    categorical: list[int] = setting(
        [10], "values of each categorical code, e.g. 10 10 10 10 for four codes", metavar="K"
    )
    continuous: int = setting(2, "number of continuous codes, each Unif(-1, 1)")
    cont_std: str = setting("fixed", "Q's std for the continuous codes: fixed (1) or learned", choices=CONT_STD)
    leak: float = setting(0.1, "slope of D's leaky ReLUs for negative inputs")
    init: str = setting(
        "paddle", "weights: paddle (its layers' defaults) or normal (N(0, 0.02), as the authors)", choices=INITS
    )
    bias_init: str = setting(
        "zero", "biases: zero, or uniform in +-1/sqrt(fan-in) as PyTorch's layers", choices=BIAS_INITS
    )
    spectral_norm: bool = setting(False, "D's weights divided by their largest singular value (Miyato et al.)")
    # objective
    lambda_cat: float = setting(1.0, "weight of each categorical code's L_I term")
    lambda_cont: float = setting(1.0, "weight of each continuous code's L_I term")
    q_step: str = setting(
        "g",
        "steps that train Q on L_I: g (the G+Q step), d (the D step, with D's trunk; the authors'), both",
        choices=Q_STEPS,
    )
    lambda_real: float = setting(
        3.0, "weight of the clustering term: I(c; c') of Q's categories for real images and views"
    )
    lambda_real_fade: list[int] | None = setting(
        None,
        "START END: the clustering term's weight falls linearly from --lambda-real at step START to 0 at END",
        metavar="STEP",
        absent_means=None,
    )
    r1: float = setting(
        0.0,
        "weight gamma of D's R1 penalty, gamma/2 E||grad_x D(x)||^2 over real images (Mescheder et al.; 0: none)",
        absent_means=0.0,
    )
    views: int = setting(2, "augmented views of each real image in the clustering term")
    neighbours: int = setting(
        3,
        "the clustering term's last view of each real image drawn from one of its N nearest training images "
        "(in pixels) instead of from the image itself (0: none; without the term, 0 unless given)",
        metavar="N",
        absent_means=0,
    )
    li_views: bool = setting(
        False,
        "Q reads the categorical codes from a changed copy of each of G's samples (turned, scaled, slanted, "
        "shifted, bolder, as the clustering term's views): L_I then bounds I(c; T(G(z, c))) <= I(c; G(z, c))",
        absent_means=False,
    )
    li_warmup: int = setting(500, "iterations over which L_I's pull on G grows from none to all")
    li_delay: int = setting(0, "iterations before L_I pulls on G at all")
    gan_baseline: bool = setting(False, "a plain GAN: L_I trains Q only, never G (the paper's figure 1)")
    fresh_fakes: bool = setting(False, "the D step draws fakes of its own instead of the G+Q step's (the authors')")
    # optimisation
    batch_size: int = setting(64, "images per step")
    iterations: int | None = setting(
        None, f"training steps (default {DEFAULT_ITERATIONS}); overrides --epochs", resumable=True
    )
    epochs: int | None = setting(None, "passes over the training images", resumable=True)
    lr_d: float = setting(2e-4, "D's Adam learning rate")
    lr_g: float = setting(1e-3, "G's (and Q's) Adam learning rate")
    beta1: float = setting(0.5, "Adam's beta1")
    lr_decay: str = setting(
        "none", "learning rates over the run: none (constant) or cosine (half a cosine down to 0)", choices=LR_DECAYS
    )
    ema: float = setting(
        0.999,
        "decay of the weights' moving average that grids, evaluation, export and the API use (0: the weights); "
        "shorter early on: at 0.999, about the last ninth of the steps so far, up to step 9,000",
    )
    seed: int = setting(0, "the same seed, settings and thread counts repeat a run exactly")
    # running
    device: str = setting("auto", "auto (a GPU when there is one), cpu or gpu", resumable=True, choices=DEVICES)
    log_every: int = setting(10, "steps between records in log.jsonl", resumable=True)
    grid_every: int = setting(500, "steps between latent-traversal grids", resumable=True)
    eval_every: int = setting(100, "steps between validation-accuracy checks", resumable=True)
    checkpoint_every: int = setting(500, "steps between checkpoints", resumable=True)
    keep_checkpoints: int = setting(3, "how many recent checkpoints to keep", resumable=True)

    def validate(self):
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.metadata["choices"] and value is not None:
                _choice(flag(f.name), value, f.metadata["choices"])
        _int_range("--batch-size", self.batch_size, 2, 4096)
        _int_range("--noise-dim", self.noise_dim, 1, 10_000)
        if not isinstance(self.categorical, list) or len(self.categorical) > 100:
            raise InfoGANError(f"--categorical must be up to 100 whole numbers, not {self.categorical!r}")
        for k in self.categorical:
            _int_range("--categorical", k, 2, 1000)
        _int_range("--continuous", self.continuous, 0, 100)
        if not self.categorical and not self.continuous:
            raise InfoGANError("--categorical and --continuous give no code at all: InfoGAN needs at least one")
        _int_range("--seed", self.seed, 0, 2**32 - 1)
        _int_range("--views", self.views, 1, 16)
        _int_range("--neighbours", self.neighbours, 0, 100)
        if self.val_size is not None:
            _int_range("--val-size", self.val_size, 1, 10**7)
        for name in ("li_delay", "li_warmup"):
            _int_range(flag(name), getattr(self, name), 0, 10**9)
        for name in ("log_every", "grid_every", "eval_every", "checkpoint_every", "keep_checkpoints"):
            _int_range(flag(name), getattr(self, name), 1, 10**9)
        if self.epochs is not None:
            _int_range("--epochs", self.epochs, 1, 100_000)
        if self.iterations is not None:
            _int_range("--iterations", self.iterations, 1, 10**9)
        for name in ("lr_d", "lr_g"):
            _float_range(flag(name), getattr(self, name), 0.0, 1.0, "a learning rate such as 2e-4")
        _float_range("--beta1", self.beta1, -1e-12, 1.0, "Adam's beta1, in [0, 1)")
        _float_range("--ema", self.ema, -1e-12, 1.0, "a decay in [0, 1), such as 0.999 (0: no average)")
        _float_range("--leak", self.leak, -1e-12, 1.0, "a slope in [0, 1)")
        for name in ("lambda_cat", "lambda_cont", "lambda_real", "r1"):
            _float_range(flag(name), getattr(self, name), -1e-12, 1000.0, "a weight >= 0 (0 turns its term off)")
        self._validate_image_shape()
        if self.folder_labels and self.dataset != "folder":
            raise InfoGANError(
                f"--folder-labels labels a folder's images by their subfolders: it needs --dataset folder, "
                f"not {self.dataset} (whose labels, if any, come with it)"
            )
        if self.lambda_real_fade is not None:
            fade = self.lambda_real_fade
            two_steps = InfoGANError(f"--lambda-real-fade takes two steps START < END, such as 1500 2500, not {fade!r}")
            if not isinstance(fade, list) or len(fade) != 2:
                raise two_steps
            for step in fade:
                _int_range("--lambda-real-fade", step, 0, 10**9)
            if fade[0] >= fade[1]:
                raise two_steps
            if not self.lambda_real:
                raise InfoGANError("--lambda-real-fade fades the clustering term: it needs --lambda-real > 0")
        if self.neighbours and not self.lambda_real:
            raise InfoGANError(
                f"--neighbours {self.neighbours} pairs views in the clustering term, which --lambda-real 0 turns off: "
                "set --neighbours 0"
            )
        if self.lambda_real and not self.categorical:
            raise InfoGANError("--lambda-real needs a categorical code to cluster real images by: set --lambda-real 0")
        if self.li_views and not self.categorical:
            raise InfoGANError("--li-views changes what Q reads the categorical codes from: it needs --categorical")
        if self.li_views and self.q_step == "d":
            raise InfoGANError(
                "--li-views shows the views to Q in the G+Q step, where --q-step d leaves Q: use g or both"
            )
        if self.gan_baseline and self.q_step != "g":
            raise InfoGANError(
                f"--gan-baseline trains a plain GAN's D: it cannot be combined with --q-step {self.q_step}"
            )
        if self.gan_baseline and 0 in (self.lambda_cat, self.lambda_cont):
            raise InfoGANError("--gan-baseline needs --lambda-cat and --lambda-cont > 0: they weight Q's own training")
        return self

    def _validate_image_shape(self):
        if self.dataset in FIXED_SHAPES:
            fixed = FIXED_SHAPES[self.dataset]
            for name, value, own in (("channels", self.channels, fixed[0]), ("image_size", self.image_size, fixed[1])):
                if value is not None and value != own:
                    raise InfoGANError(
                        f"{flag(name)} {value}: {self.dataset} images have {name.replace('_', ' ')} {own}"
                    )
        if self.image_size is not None:
            _int_range("--image-size", self.image_size, 8, 1024)
        if self.channels is not None and self.channels not in (1, 3):
            raise InfoGANError(f"--channels must be 1 (grey) or 3 (colour), not {self.channels!r}")
        if self.dataset == "celeba" and self.channels not in (None, 3):
            raise InfoGANError("--channels: celeba images are colour (3)")
        side, multiple = self.image_shape[1], ARCH_SIDE_MULTIPLE[self.arch]
        if side % multiple:
            fix = "another --arch" if self.dataset in FIXED_SHAPES else "--image-size or another --arch"
            raise InfoGANError(
                f"--arch {self.arch} needs images whose side is a multiple of {multiple}, "
                f"not {side}x{side} ({self.dataset}'s): choose {fix}"
            )

    @property
    def image_shape(self):
        """(channels, height, width) of the training images."""
        if self.dataset in FIXED_SHAPES:
            channels, side = FIXED_SHAPES[self.dataset]
            return (channels, side, side)
        side = self.image_size or 32
        return (self.channels or 3, side, side)

    def lr_factor(self, step, total):
        """The share of the set learning rates that step `step` of `total` trains with."""
        if self.lr_decay == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * step / total))
        return 1.0

    def total_iterations(self, n_train):
        """How many steps the run trains: --iterations, else --epochs passes over n_train images."""
        if self.iterations is not None:
            return self.iterations
        if self.epochs is not None:
            return self.epochs * (n_train // self.batch_size)
        return DEFAULT_ITERATIONS

    def to_json(self):
        values = dataclasses.asdict(self)
        if values["iterations"] is None and values["epochs"] is None:
            values["iterations"] = DEFAULT_ITERATIONS  # spelled out: a later default must not change the run
        return json.dumps(values, indent=2, sort_keys=True)

    @classmethod
    def from_flags(cls, flags):
        """The settings for the flags given (a dict of field values): the preset's values under them."""
        _check_known(flags)
        preset = flags.get("preset")
        if preset is not None and preset not in PRESETS:
            _choice("--preset", preset, tuple(PRESETS))
        dataset = flags.get("dataset", cls.dataset)
        if dataset not in PRESET_OF_DATASET:
            _choice("--dataset", dataset, DATASETS)
        values = PRESETS[preset or PRESET_OF_DATASET[dataset]] | _absolute_data_dir(flags)
        if "epochs" in flags and "iterations" not in flags:
            values["iterations"] = None  # --epochs given: a preset's iteration count must not override it
        if not values.get("lambda_real", cls.lambda_real) and "neighbours" not in flags:
            values["neighbours"] = 0  # the neighbour views are the clustering term's: without it, none
        try:
            return cls(**values).validate()
        except InfoGANError as e:
            own = PRESET_OF_DATASET[dataset]
            if preset in (None, own) or not _fits(cls, flags | {"preset": own}):
                raise
            # The preset's networks or image shape, not the flags the user typed, do not fit this data.
            raise InfoGANError(
                f"{e} (as --preset {preset} sets it, for other images than {dataset}'s: "
                "give their --dataset and --data-dir)"
            ) from None

    @classmethod
    def from_dict(cls, values, source):
        """A config written by to_json; `source` names it in errors."""
        fields = dataclasses.fields(cls)
        names = [f.name for f in fields]
        unknown = sorted(set(values) - set(names))
        if unknown:
            raise InfoGANError(f"{source} has unknown settings {unknown}: written by a newer version of this project?")
        values = {f.name: f.metadata["absent"] for f in fields if f.metadata["absent"] is not REQUIRED} | values
        missing = [name for name in names if name not in values]
        if missing:
            raise InfoGANError(
                f"{source} lacks the settings {missing}: written by an older version of this project; "
                "add them with the values that run used"
            )
        try:
            return cls(**values).validate()
        except InfoGANError as e:
            raise InfoGANError(f"{source}: {e}") from None


def _check_known(flags):
    """Refuses a setting TrainConfig lacks (infogan.train's keywords; the scripts' parser knows its flags)."""
    names = [f.name for f in dataclasses.fields(TrainConfig)]
    unknown = sorted(set(flags) - set(names))
    if unknown:
        near = {name: difflib.get_close_matches(name, names, 2) for name in unknown}
        hints = "".join(f"; for {name}, {' or '.join(near[name])}?" for name in unknown if near[name])
        raise InfoGANError(
            f"unknown settings {unknown}{hints} (the settings are scripts/train.py's flags, _ for -: its --help)"
        )


def _fits(cls, flags):
    try:
        cls.from_flags(flags)
    except InfoGANError:
        return False
    return True


def resumable(name):
    return TrainConfig.__dataclass_fields__[name].metadata["resumable"]


def flag(name):
    return "--" + name.replace("_", "-")


def read_config(run_dir):
    """The TrainConfig of a run directory, from its config.json."""
    path = os.path.join(run_dir, "config.json")
    if not os.path.isdir(run_dir):
        raise InfoGANError(f"{run_dir} is not a directory: give a run directory written by scripts/train.py")
    if not os.path.isfile(path):
        from infogan.export import DESCRIPTION

        if os.path.isfile(os.path.join(run_dir, DESCRIPTION)):
            raise InfoGANError(
                f"{run_dir} is an export (scripts/export.py), not a run directory: scripts/explore.py and "
                "infogan.load read it; give this command the run it was exported from"
            )
        raise InfoGANError(f"{run_dir} has no config.json: give a run directory written by scripts/train.py")
    try:
        with open(path) as f:
            values = json.load(f)
    except (OSError, ValueError) as e:
        raise InfoGANError(f"{path} cannot be read as a run config: {e}") from None
    if not isinstance(values, dict):
        raise InfoGANError(f"{path} is not a run config (not a JSON object)")
    return TrainConfig.from_dict(values, path)


def resumed_config(run_dir, flags):
    """The settings a resume of run_dir trains with: its config.json, with `flags` changing only resumable
    settings."""
    _check_known(flags)
    cfg = read_config(run_dir)
    for key, value in flags.items():
        if not resumable(key) and getattr(cfg, key) != value:
            raise InfoGANError(
                f"{flag(key)} cannot change when resuming: {run_dir}/config.json says {getattr(cfg, key)!r}"
            )
    if "data_dir" not in flags:
        check_data_dir(run_dir, cfg)
    flags = _absolute_data_dir(flags)
    if "epochs" in flags and "iterations" not in flags:
        flags = dict(flags, iterations=None)  # --epochs given: it decides the length now
    return dataclasses.replace(cfg, **flags).validate()


def check_data_dir(run_dir, cfg):
    """Refuses a run whose config.json names a data folder that is not there now: moved, on another machine,
    or a relative path (as written before they were stored whole) from another current folder."""
    if cfg.data_dir and not os.path.isdir(cfg.data_dir):
        raise InfoGANError(
            f"{run_dir} was trained on the images in {cfg.data_dir}, which is not there now: "
            "pass --data-dir with where they are"
        )


def _absolute_data_dir(flags):
    """A --data-dir as a whole path, so that the run's config.json names it from any current folder."""
    return dict(flags, data_dir=os.path.abspath(flags["data_dir"])) if flags.get("data_dir") else flags


def _choice(flag_name, value, choices):
    if value not in choices:
        raise InfoGANError(f"{flag_name} {value!r} is not known: choose one of {', '.join(choices)}")


def _int_range(flag_name, value, low, high):
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InfoGANError(f"{flag_name} must be a whole number from {low} to {high}, not {value!r}")


def _float_range(flag_name, value, low, high, what):
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or not low < value < high
    ):
        raise InfoGANError(f"{flag_name} must be {what}, not {value!r}")
