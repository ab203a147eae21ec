"""Use a trained model from Python: `model = infogan.load(PATH)`, where PATH is a run directory (its latest
checkpoint) or a folder written by scripts/export.py.

    model = infogan.load("outputs/mnist-20261130-120000")
    images = model.generate(categorical=[3], continuous=[0.5, -1.0], seed=0)   # [1, C, H, W] in [0, 1]
    probs = model.encode(images)["categorical"][0]                             # Q's guess of the code
    grid = model.traverse("cont1", steps=9)                                    # [H, W] (grey) in [0, 1]

Each model keeps its parameters in a Paddle scope (or predictor) of its own, so several can be loaded in
one process; calls leave Paddle's global mode as they found it, and are safe from several threads.
"""

import contextlib
import json
import os
import threading

import numpy as np

from infogan import InfoGANError
from infogan.export import DESCRIPTION
from infogan.latent import LatentSpec

AGAIN = "export the run again (python scripts/export.py RUN --out FOLDER)"
RANGE_SLACK = 1e-3  # images in [0, 1] may come a rounding error outside it
BATCH = 500  # images per run of G or Q: memory stays that of 500 whatever N (20,000 at once took 7 GB)


def load(path, device="cpu"):
    """A trained model from a run directory or an exported folder (a leading ~ is your home)."""
    path = os.path.expanduser(path)
    if os.path.isfile(os.path.join(path, DESCRIPTION)):
        return Model(_ExportedBackend(path), path)
    return Model(_RunBackend(path, device), path)


@contextlib.contextmanager
def static_mode():
    """Paddle's static mode within the block, in this thread only, and whatever mode it was in afterwards.
    (paddle.enable_static() does nothing in a thread other than the first: Paddle keeps the mode per
    thread, and only this guard sets it there.)"""
    from paddle.base.framework import _dygraph_guard

    with _dygraph_guard(None):
        yield


@contextlib.contextmanager
def own_static_scope():
    """static_mode, and a Paddle scope of its own as the global one: the caller's mode and global scope are
    theirs again afterwards (infogan.train in a notebook), and the tensors made inside are freed."""
    import paddle

    from infogan.device import free_scope

    scope = paddle.static.Scope()
    try:
        with static_mode(), paddle.static.scope_guard(scope):
            yield
    finally:
        free_scope(scope)


class Model:
    """A trained InfoGAN: its latent spec, and G and Q as functions of numpy arrays."""

    def __init__(self, backend, path):
        self.backend, self.path = backend, path
        self.spec = backend.spec
        self.image_shape = tuple(backend.image_shape)
        self.value_range = tuple(backend.value_range)
        self._lock = threading.Lock()

    @property
    def codes(self):
        """The names of the codes, as traverse() and the explorer call them: cat1.., cont1.."""
        return [f"cat{i + 1}" for i in range(len(self.spec.cat))] + [f"cont{j + 1}" for j in range(self.spec.cont_dim)]

    def latent(self, categorical=None, continuous=None, noise=None, seed=None, n=None):
        """The generator's inputs: what is given, and the rest drawn from the prior (seeded by `seed`).
        `categorical`: one value per categorical code (or an array [N, codes] of values);
        `continuous`: one value per continuous code (or [N, codes]); `noise`: [noise_dim] or [N, noise_dim]."""
        given = {
            what: self._numbers(x, what)
            for what, x in (("categorical", categorical), ("continuous", continuous), ("noise", noise))
            if x is not None
        }
        if n is not None:
            _check_whole(n, "n", 1)
        _check_whole(seed, "seed", 0, none_too=True)
        n = n or max([len(x) for x in given.values()], default=1)
        drawn = self.spec.sample(np.random.default_rng(seed), n)
        if noise is not None:
            drawn["z"] = self._rows(given["noise"], n, self.spec.noise.dim, "noise").astype("float32")
        if categorical is not None:
            values = self._rows(given["categorical"], n, len(self.spec.cat), "categorical")
            if (values != np.round(values)).any():
                raise InfoGANError(f"categorical values must be whole numbers, not {values.tolist()}")
            values = values.astype(int)
            blocks = []
            for i, code in enumerate(self.spec.cat):
                if values[:, i].min() < 0 or values[:, i].max() >= code.dim:
                    raise InfoGANError(
                        f"categorical code {i + 1} takes values 0 to {code.dim - 1}, not {values[:, i].tolist()}"
                    )
                blocks.append(np.eye(code.dim, dtype="float32")[values[:, i]])
            drawn["c_cat"] = np.concatenate(blocks, axis=1)
        if continuous is not None:
            drawn["c_cont"] = self._rows(given["continuous"], n, self.spec.cont_dim, "continuous").astype("float32")
        return drawn

    @staticmethod
    def _numbers(values, what):
        """`values` as a finite float64 array [rows, columns], at least one row."""
        try:
            array = np.atleast_2d(np.asarray(values, dtype="float64"))
        except (ValueError, TypeError):
            raise InfoGANError(f"{what} must be numbers, not {values!r:.100}") from None
        if array.ndim != 2 or len(array) == 0:
            raise InfoGANError(f"{what} must be one value per code, or one row of them per image: not {array.shape}")
        if not np.isfinite(array).all():
            raise InfoGANError(f"{what} values must be finite numbers")
        return array

    @staticmethod
    def _rows(array, n, width, what):
        if array.shape[1] != width:
            raise InfoGANError(f"{what} needs {width} value(s) per image, not {array.shape[1]}")
        if len(array) not in (1, n):
            raise InfoGANError(f"{what} gives {len(array)} rows for {n} images")
        return np.repeat(array, n, axis=0) if len(array) == 1 else array

    def generate(self, categorical=None, continuous=None, noise=None, seed=None, n=None):
        """Images [N, C, H, W] in [0, 1] for the codes given (the rest from the prior)."""
        return self._generate(self.latent(categorical, continuous, noise, seed, n))

    def _generate(self, latent):
        images = self._in_batches(self.backend.generate, latent)
        low, high = self.value_range
        return np.clip((images - low) / (high - low), 0.0, 1.0).astype("float32")

    def _in_batches(self, run, feed):
        """run(feed) on BATCH rows at a time; its outputs (an array, or a dict of them) joined."""
        n = len(next(iter(feed.values())))
        with self._lock:
            parts = [run({name: value[i : i + BATCH] for name, value in feed.items()}) for i in range(0, n, BATCH)]
        if isinstance(parts[0], dict):
            return {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}
        return np.concatenate(parts)

    def encode(self, images):
        """Q's predictions for images [N, C, H, W] (or [N, H, W] when grey) in [0, 1]: the probabilities of
        each categorical code's values, and the continuous codes' means."""
        try:
            images = np.asarray(images, dtype="float32")
        except (ValueError, TypeError):
            raise InfoGANError(f"images must be an array of numbers, not {type(images).__name__}") from None
        if images.ndim == 3 and self.image_shape[0] == 1:
            images = images[:, None]
        if images.shape[1:] != self.image_shape or len(images) == 0:
            channels, side = self.image_shape[0], self.image_shape[1:]
            last = images.ndim == 4 and images.shape[1:] == (*side, channels)  # as Pillow and matplotlib hold them
            raise InfoGANError(
                f"images must be [N, {', '.join(map(str, self.image_shape))}], not {list(images.shape)}"
                + (": channels first, as images.transpose(0, 3, 1, 2) puts them" if last else "")
            )
        if not np.isfinite(images).all():
            raise InfoGANError("images must be finite numbers: they hold NaN or infinity")
        if images.min() < -RANGE_SLACK or images.max() > 1 + RANGE_SLACK:
            hint = ": divide 8-bit images by 255" if images.max() <= 255 and images.min() >= 0 else ""
            raise InfoGANError(f"images must be in [0, 1], not [{images.min():g}, {images.max():g}]{hint}")
        low, high = self.value_range
        out = self._in_batches(
            lambda feed: self.backend.encode(feed["images"]), {"images": images * (high - low) + low}
        )
        blocks = np.cumsum([code.dim for code in self.spec.cat])[:-1]
        categorical = np.split(out["cat_probs"], blocks, axis=1) if self.spec.cat else []
        return {"categorical": categorical, "continuous": out.get("cont_mean")}

    def sweep(self, code, steps=9, span=2.0, categorical=None, continuous=None, noise=None, seed=None):
        """Images [steps or K, C, H, W] along one code (`cat2`, `cont1`, ...), the others as given."""
        kind, index = self._code(code)
        if kind == "cont":
            _check_whole(steps, "steps", 2)
            if not (isinstance(span, (int, float, np.number)) and 0 < span < np.inf):
                raise InfoGANError(f"span must be a finite number above 0, not {span!r}")
        base = self.latent(categorical, continuous, noise, seed)
        if kind == "cat":
            k = self.spec.cat[index].dim
            latent = {name: np.repeat(value, k, axis=0) for name, value in base.items()}
            start = sum(c.dim for c in self.spec.cat[:index])
            latent["c_cat"][:, start : start + k] = np.eye(k, dtype="float32")
        else:
            latent = {name: np.repeat(value, steps, axis=0) for name, value in base.items()}
            latent["c_cont"][:, index] = np.linspace(-span, span, steps, dtype="float32")
        return self._generate(latent)

    def traverse(self, code, steps=9, span=2.0, rows=5, seed=0):
        """A grid [H', W', 3] in [0, 1], or [H', W'] for grey images (as Pillow, imageio and plt.imsave take
        them): each row sweeps `code` from a different draw of everything else."""
        from infogan.figures import tile

        _check_whole(rows, "rows", 1)
        _check_whole(seed, "seed", 0)
        rng = np.random.default_rng(seed)
        strips = [self.sweep(code, steps, span, seed=int(rng.integers(2**31))) for _ in range(rows)]
        grid = tile(np.stack(strips))
        return grid[..., 0] if grid.shape[-1] == 1 else grid

    def _code(self, code):
        for kind, count in (("cat", len(self.spec.cat)), ("cont", self.spec.cont_dim)):
            if isinstance(code, str) and code.startswith(kind) and code[len(kind) :].isdigit():
                index = int(code[len(kind) :]) - 1
                if 0 <= index < count:
                    return kind, index
        raise InfoGANError(f"unknown code {code!r}: this model has {', '.join(self.codes) or 'no codes'}")


def _check_whole(value, name, low, none_too=False):
    """Refuses a `value` that is not a whole number >= low (nor None, where `none_too`)."""
    if value is None and none_too:
        return
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise InfoGANError(
            f"{name} must be a whole number from {low} up{' (or None)' if none_too else ''}, not {value!r}"
        )


class _RunBackend:
    """A run directory: its inference Programs, built in a scope of their own, with its latest checkpoint."""

    def __init__(self, run_dir, device):
        import paddle

        from infogan.checkpoints import latest, load_inference_state
        from infogan.config import read_config
        from infogan.device import owned_scope, place
        from infogan.nets import NetSpec
        from infogan.programs import build_inference

        cfg = read_config(run_dir)
        self.spec = LatentSpec.from_config(cfg)
        self.image_shape = cfg.image_shape
        self.value_range = NetSpec.from_config(cfg, self.spec).value_range
        checkpoint = latest(run_dir)
        with static_mode():
            self.scope = owned_scope(self)
            self.exe = paddle.static.Executor(place(device))
            startup, self.generate_step, self.encode_step = build_inference(cfg, self.spec)
            with paddle.static.scope_guard(self.scope):
                self.exe.run(startup)
                load_inference_state(checkpoint, self.generate_step.program)
                load_inference_state(checkpoint, self.encode_step.program)

    def _run(self, step, feed, names):
        import paddle

        with static_mode(), paddle.static.scope_guard(self.scope):
            values = self.exe.run(step.program, feed=feed, fetch_list=[step.fetches[n] for n in names])
        return dict(zip(names, values, strict=True))

    def generate(self, latent):
        return self._run(self.generate_step, latent, ["images"])["images"]

    def encode(self, images):
        return self._run(self.encode_step, {"images": images}, list(self.encode_step.fetches))


class _ExportedBackend:
    """A folder written by scripts/export.py, run by Paddle Inference predictors."""

    def __init__(self, folder):
        path = os.path.join(folder, DESCRIPTION)
        try:
            with open(path) as f:
                self.description = d = json.load(f)
            self.spec = LatentSpec(d["noise"]["dim"], [c["values"] for c in d["categorical"]], d["continuous"]["count"])
            self.image_shape = d["image"]["shape"]
            self.value_range = d["image"]["value_range"]
            models = d["generator"], d["encoder"]
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise InfoGANError(f"{path} cannot be read ({type(e).__name__}: {e}): {AGAIN}") from None
        self.generator, self.encoder = (_predictor(folder, model) for model in models)

    def generate(self, latent):
        return _predict(self.generator, self.description["generator"], latent)["images"]

    def encode(self, images):
        return _predict(self.encoder, self.description["encoder"], {"images": images})


def _predictor(folder, model):
    import paddle.inference as inference

    from infogan.device import python_sigterm_again

    python_sigterm_again()
    files = [os.path.join(folder, model[key]) for key in ("model", "params")]
    if missing := [path for path in files if not os.path.isfile(path)]:
        raise InfoGANError(f"{missing[0]} is missing: {AGAIN}")
    config = inference.Config(*files)
    config.disable_glog_info()
    config.disable_gpu()
    config.disable_onednn()  # its conv + bias + leaky-ReLU fusion crashes on the encoder (Paddle 3.3.1)
    try:
        return inference.create_predictor(config)
    except Exception as e:  # Paddle reports a damaged file as one of several kinds (RuntimeError, OSError, ...)
        raise InfoGANError(
            f"{files[1]} (or {files[0]}) is damaged ({str(e).strip().splitlines()[0]}): {AGAIN}"
        ) from None


def _predict(predictor, model, feed):
    for name in predictor.get_input_names():
        handle = predictor.get_input_handle(name)
        handle.reshape(feed[name].shape)
        handle.copy_from_cpu(np.ascontiguousarray(feed[name], dtype="float32"))
    predictor.run()
    names = predictor.get_output_names()
    return {role: predictor.get_output_handle(names[i]).copy_to_cpu() for i, role in enumerate(model["outputs"])}
