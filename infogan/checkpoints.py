"""Checkpoints: a run's complete training state at a step, and loading it into training or inference
programs.

    checkpoints/step_NNNNNNN/d_step.{pdparams,pdopt,json}    paddle.static.save of the D step: parameters
    checkpoints/step_NNNNNNN/gq_step.{pdparams,pdopt,json}   and Adam states; the G+Q step's hold G, D and Q
    checkpoints/step_NNNNNNN/ema.{pdparams,json}             with --ema: the weights' moving averages
    checkpoints/step_NNNNNNN/state.json                      {"step": N}

A checkpoint is written into a hidden folder beside it (.tmp-ID-step_NNNNNNN), synced to the disk and renamed
into place only when complete, so a listed checkpoint is always whole, whatever happens while it is written.
Its parameters are checked to be finite first: a saved checkpoint never holds a diverged model.
Paddle is imported where it is used: listing a run's checkpoints (scripts/summarize.py) needs none of it.
"""

import glob
import json
import os
import re
import warnings

import numpy as np

from infogan import InfoGANError
from infogan.files import reason, staged_dir

CHECKPOINT_RE = re.compile(r"step_(\d+)$")


def checkpoint_dirs(run_dir):
    """The run's complete checkpoints, oldest first (a write in progress is hidden and not listed)."""
    found = glob.glob(os.path.join(run_dir, "checkpoints", "step_*"))
    return sorted((p for p in found if CHECKPOINT_RE.search(p)), key=lambda p: int(CHECKPOINT_RE.search(p)[1]))


def latest(run_dir):
    found = checkpoint_dirs(run_dir)
    if not found:
        raise InfoGANError(f"{run_dir} holds no checkpoint (checkpoints/step_*): is it a training run directory?")
    return found[-1]


def step_of(checkpoint):
    return int(CHECKPOINT_RE.search(checkpoint)[1])


def non_finite_parameters(programs, scope=None):
    """Names of the training programs' parameters holding NaN or infinity."""
    import paddle

    scope = scope or paddle.static.global_scope()
    bad = []
    for name in sorted(_parameter_names(programs)):
        var = scope.find_var(name)
        if var is not None and not np.isfinite(np.array(var.get_tensor())).all():
            bad.append(name)
    return bad


def _parameter_names(programs):
    return {p.name for s in programs.saved.values() for p in s.program.global_block().all_parameters()}


def save(run_dir, programs, step, keep):
    """Both training programs' parameters and optimizer states, complete and on the disk, or nothing."""
    import paddle

    final = os.path.join(run_dir, "checkpoints", f"step_{step:07d}")
    try:
        with staged_dir(final, durable=True, sole_writer=True) as tmp:  # the run's lock holder
            for name, step_program in programs.saved.items():
                paddle.static.save(step_program.program, os.path.join(tmp, name))
            with open(os.path.join(tmp, "state.json"), "w") as f:
                json.dump({"step": step}, f)
    except OSError as e:
        kept = checkpoint_dirs(run_dir)
        last = f"{kept[-1]} is intact" if kept else "there is no earlier checkpoint"
        raise InfoGANError(f"cannot write the step-{step} checkpoint in {run_dir}: {reason(e)}; {last}") from None
    for old in checkpoint_dirs(run_dir)[:-keep]:
        _remove(old)
    return final


def _remove(checkpoint):
    import shutil

    shutil.rmtree(checkpoint, ignore_errors=True)


def _read_state(prefix, checkpoint):
    import paddle

    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="This list is not set")
            return paddle.static.load_program_state(prefix)
    except Exception as e:  # a missing, truncated or foreign file alike: the checkpoint is unusable
        message = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise InfoGANError(f"checkpoint {checkpoint} cannot be loaded: {message}") from None


def _check_fits(state, program, checkpoint, optimizer_state):
    """Every value the program needs is in `state`, with the program's shape."""
    for value in program.global_block().all_parameters():
        if value.name not in state:
            raise InfoGANError(
                f"checkpoint {checkpoint} does not fit this model (did config.json change?): it lacks {value.name}"
            )
        saved, wanted = tuple(state[value.name].shape), tuple(value.shape)
        if saved != wanted:
            raise InfoGANError(
                f"checkpoint {checkpoint} does not fit this model (did config.json change?): "
                f"{value.name} has shape {saved}, the model {wanted}"
            )
    if optimizer_state and not any("_moment1_" in name for name in state):
        raise InfoGANError(f"checkpoint {checkpoint} cannot be loaded: it holds no optimizer state")


def set_state(program, state):
    """Sets the program's parameters from `state`, which may also hold values the program does not use."""
    import paddle

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="This list is not set")
        paddle.static.set_program_state(program, state)


def load_training_state(checkpoint, programs):
    """Restores both training programs' parameters and Adam states; returns the checkpoint's step."""
    for name, step_program in programs.saved.items():
        state = _read_state(os.path.join(checkpoint, name), checkpoint)
        _check_fits(state, step_program.program, checkpoint, optimizer_state=name != "ema")
        set_state(step_program.program, state)
    try:
        with open(os.path.join(checkpoint, "state.json")) as f:
            return int(json.load(f)["step"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise InfoGANError(f"checkpoint {checkpoint} cannot be loaded: its state.json is unreadable ({e})") from None


def load_inference_state(checkpoint, program):
    """Sets the parameters (and BN statistics) an inference program uses from a checkpoint: the G+Q step's
    part holds every network's weights, the ema part their moving averages."""
    state = _read_state(os.path.join(checkpoint, "gq_step"), checkpoint)
    if os.path.exists(os.path.join(checkpoint, "ema.pdparams")):
        state |= _read_state(os.path.join(checkpoint, "ema"), checkpoint)
    _check_fits(state, program, checkpoint, optimizer_state=False)
    set_state(program, state)
