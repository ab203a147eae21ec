"""Latent traversals and random samples from the inference program, as arrays and as PNG grids."""

import json
import os

import numpy as np
import paddle

from infogan import InfoGANError
from infogan.config import TrainConfig
from infogan.latent import LatentSpec
from infogan.programs import build_generate
from infogan.runtime import executor, latest_checkpoint, load_state
from infogan.viz import save_grid


def generate(exe, generate_step, latent):
    return exe.run(generate_step.program, feed=latent, fetch_list=[generate_step.fetches["images"]])[0]


def traversal_latents(spec, code, steps, span, seed):
    """Rows: categorical value 0..K-1; columns: continuous code `code` from -span to span. The noise and the
    other continuous codes (0) are the same in every cell, so each row and column varies one thing only."""
    k = spec.cat.dim
    rng = np.random.default_rng(seed)
    z = np.repeat(spec.noise.sample_prior(rng, 1), k * steps, axis=0)
    c_cat = np.repeat(np.eye(k, dtype="float32"), steps, axis=0)
    c_cont = np.zeros((k * steps, spec.cont.dim), dtype="float32")
    c_cont[:, code] = np.tile(np.linspace(-span, span, steps, dtype="float32"), k)
    return {"z": z, "c_cat": c_cat, "c_cont": c_cont}


def write_grids(exe, generate_step, spec, folder, tag, steps=9, span=2.0, seed=0):
    """One traversal grid per continuous code and one grid of random samples; returns the paths written."""
    os.makedirs(folder, exist_ok=True)
    k = spec.cat.dim
    values = np.linspace(-span, span, steps)
    paths = []
    for code in range(spec.cont.dim):
        images = generate(exe, generate_step, traversal_latents(spec, code, steps, span, seed))
        path = os.path.join(folder, f"{tag}traversal_c{code + 1}.png")
        save_grid(
            images.reshape(k, steps, 28, 28),
            path,
            title=f"{tag.rstrip('_')} continuous code c{code + 1} from {-span:g} to {span:g}".strip(),
            row_labels=[str(i) for i in range(k)],
            col_labels=[f"{v:.1f}" for v in values],
            xlabel=f"c{code + 1}",
            ylabel="categorical code",
        )
        paths.append(path)
    random_latent = spec.sample(np.random.default_rng(seed), k * steps)
    path = os.path.join(folder, f"{tag}random.png")
    images = generate(exe, generate_step, random_latent).reshape(k, steps, 28, 28)
    save_grid(images, path, title=f"{tag.rstrip('_')} random samples from the prior".strip())
    return paths + [path]


def read_config(run_dir):
    path = os.path.join(run_dir, "config.json")
    if not os.path.isfile(path):
        raise InfoGANError(f"{run_dir} has no config.json: give a run directory written by scripts/train.py")
    try:
        with open(path) as f:
            return TrainConfig.from_dict(json.load(f)).validate()
    except (ValueError, TypeError) as e:
        raise InfoGANError(f"{path} is not a valid run config: {e}") from None


def sample_run(run_dir, out_dir=None, steps=9, span=2.0, seed=0, device="cpu"):
    """Loads the latest checkpoint of a run into the inference program and writes its grids."""
    if steps < 2 or steps > 100:
        raise InfoGANError(f"--steps must be a whole number from 2 to 100, not {steps}")
    if not 0 < span <= 100:
        raise InfoGANError(f"--range must be a number above 0 (the traversal goes from -range to range), not {span}")
    cfg = read_config(run_dir)
    checkpoint = latest_checkpoint(run_dir)
    spec = LatentSpec.from_config(cfg)
    exe = executor(device)
    startup = paddle.static.Program()
    generate_step = build_generate(spec, cfg, startup)
    exe.run(startup)
    load_state(checkpoint, generate_step.program)
    out_dir = out_dir or os.path.join(run_dir, "samples")
    return write_grids(exe, generate_step, spec, out_dir, "", steps, span, seed)
