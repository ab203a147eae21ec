"""Latent traversals and random samples from the generate program, as arrays and as PNG grids.

traversal_cat{i}.png   categorical code i: columns its values, rows different noise and other codes
                       (the paper's SVHN and CelebA figures)
traversal_cont{j}.png  continuous code j from -span to span: rows the first categorical code's values
                       (noise fixed, as the paper's MNIST figures), or different noise where it has none
random.png             samples from the prior
"""

import os

import numpy as np

from infogan.figures import save_grid
from infogan.files import folder_identity, make_dirs

ROWS = 10  # rows of different noise in a grid
MAX_ROW_VALUES = 20  # a continuous grid's rows are the first code's values when it has at most this many


def generate(exe, generate_step, latent):
    return exe.run(generate_step.program, feed=latent, fetch_list=[generate_step.fetches["images"]])[0]


def categorical_traversal(spec, code, rows=ROWS, seed=0):
    """Latents [rows x K]: row r holds one draw of the noise and the other codes; column k sets code `code`
    to value k."""
    k = spec.cat[code].dim
    base = spec.sample(np.random.default_rng(seed), rows)
    latent = {name: np.repeat(value, k, axis=0) for name, value in base.items()}
    start = sum(c.dim for c in spec.cat[:code])
    latent["c_cat"][:, start : start + k] = np.tile(np.eye(k, dtype="float32"), (rows, 1))
    return latent, (rows, k)


def continuous_traversal(spec, code, steps=9, span=2.0, seed=0):
    """Latents [rows x steps]: column s sets continuous code `code` to the s-th of `steps` values from -span
    to span, the other continuous codes 0. Rows: the first categorical code's values with the noise and
    the other codes fixed (so each row and column varies one thing only), or, where there is no such code,
    different noise."""
    rng = np.random.default_rng(seed)
    if spec.cat and spec.cat[0].dim <= MAX_ROW_VALUES:
        k = spec.cat[0].dim
        base = {name: np.repeat(value, k, axis=0) for name, value in spec.sample(rng, 1).items()}
        base["c_cat"][:, :k] = np.eye(k, dtype="float32")
    else:
        base = spec.sample(rng, ROWS)
    rows = len(base["z"])
    latent = {name: np.repeat(value, steps, axis=0) for name, value in base.items()}
    latent["c_cont"][:] = 0.0
    latent["c_cont"][:, code] = np.tile(np.linspace(-span, span, steps, dtype="float32"), rows)
    return latent, (rows, steps)


def to_unit(images, value_range):
    low, high = value_range
    return (images - low) / (high - low)


def write_grids(exe, generate_step, spec, value_range, folder, tag="", steps=9, span=2.0, seed=0):
    """Every traversal grid and a grid of random samples; returns the paths written."""
    make_dirs(folder)
    title = tag.rstrip("_")
    paths = []

    def draw(latent, shape, name, **labels):
        images = to_unit(generate(exe, generate_step, latent), value_range)
        path = os.path.join(folder, f"{tag}{name}.png")
        save_grid(images.reshape(*shape, *images.shape[1:]), path, **labels)
        paths.append(path)

    for i, code in enumerate(spec.cat):
        latent, shape = categorical_traversal(spec, i, seed=seed)
        draw(
            latent,
            shape,
            f"traversal_cat{i + 1}",
            title=f"{title} categorical code {i + 1}: one column per value".strip(),
            col_labels=[str(v) for v in range(code.dim)],
            xlabel=f"value of categorical code {i + 1}",
            ylabel="noise and other codes",
        )
    for j in range(spec.cont_dim):
        latent, shape = continuous_traversal(spec, j, steps, span, seed)
        by_category = spec.cat and spec.cat[0].dim <= MAX_ROW_VALUES
        draw(
            latent,
            shape,
            f"traversal_cont{j + 1}",
            title=f"{title} continuous code {j + 1} from {-span:g} to {span:g}".strip(),
            row_labels=[str(r) for r in range(shape[0])] if by_category else None,
            col_labels=[f"{v:.1f}" for v in np.linspace(-span, span, steps)],
            xlabel=f"continuous code {j + 1}",
            ylabel="categorical code 1" if by_category else "noise and other codes",
        )
    random = spec.sample(np.random.default_rng(seed), ROWS * steps)
    draw(random, (ROWS, steps), "random", title=f"{title} random samples from the prior".strip())
    return paths


def sample_run(run_dir, out_dir=None, steps=9, span=2.0, seed=0, device="cpu"):
    """Loads the latest checkpoint of a run into the generate program and writes its grids."""
    from infogan import InfoGANError
    from infogan.config import read_config

    if not 0 <= seed < 2**32:
        raise InfoGANError(f"--seed must be a whole number from 0 to {2**32 - 1}, not {seed}")
    if not 2 <= steps <= 100:
        raise InfoGANError(f"--steps must be a whole number from 2 to 100, not {steps}")
    if not 0 < span <= 100:
        raise InfoGANError(
            f"--range must be a number above 0 and at most 100 (the traversal goes from -range to range), not {span}"
        )
    cfg = read_config(run_dir)
    drawn = folder_identity(run_dir)
    # Paddle's import takes seconds: only once the arguments and the run directory have passed.
    from infogan.checkpoints import latest, load_inference_state
    from infogan.device import executor
    from infogan.latent import LatentSpec
    from infogan.nets import NetSpec
    from infogan.programs import build_inference
    from infogan.rundir import OUT_HINT, check_unreplaced, note_if_training

    checkpoint = latest(run_dir)
    note_if_training(run_dir, checkpoint)
    spec = LatentSpec.from_config(cfg)
    exe = executor(device)
    startup, generate_step, _ = build_inference(cfg, spec)
    exe.run(startup)
    load_inference_state(checkpoint, generate_step.program)
    value_range = NetSpec.from_config(cfg, spec).value_range
    if not out_dir:
        check_unreplaced(run_dir, drawn, "its grids were drawn")
    folder = out_dir or os.path.join(run_dir, "samples")
    try:
        make_dirs(folder)
    except InfoGANError as e:  # someone else's run, read-only to this user
        raise InfoGANError(f"{e}{'' if out_dir else OUT_HINT}") from None
    return write_grids(exe, generate_step, spec, value_range, folder, "", steps, span, seed)
