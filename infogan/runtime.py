"""Static mode, the execution place, and checkpoints of a run's programs."""

import glob
import json
import os
import re
import shutil
import warnings

import paddle

from infogan import InfoGANError
from infogan.files import replace_dir

CHECKPOINT_RE = re.compile(r"step_(\d+)$")


def executor(device):
    """An Executor on the place `device` names (auto: the GPU when there is one)."""
    paddle.enable_static()
    where = place(device)
    # The layers choose their kernels by the current device (infogan.batched_conv: CPU-only operators).
    paddle.set_device("gpu:0" if isinstance(where, paddle.CUDAPlace) else "cpu")
    return paddle.static.Executor(where)


def place(device):
    has_gpu = paddle.is_compiled_with_cuda() and paddle.device.cuda.device_count() > 0
    if device == "gpu" and not paddle.is_compiled_with_cuda():
        raise InfoGANError(
            "--device gpu: this PaddlePaddle build has no CUDA support; install paddlepaddle-gpu or use --device cpu"
        )
    if device == "gpu" and not has_gpu:
        raise InfoGANError(
            "--device gpu: no CUDA device is visible (check nvidia-smi and CUDA_VISIBLE_DEVICES) or use --device cpu"
        )
    if device == "gpu" or (device == "auto" and has_gpu):
        return paddle.CUDAPlace(0)
    return paddle.CPUPlace()


def checkpoint_dirs(run_dir):
    """The run's complete checkpoints, oldest first (a write in progress ends in .tmp and is not listed)."""
    found = glob.glob(os.path.join(run_dir, "checkpoints", "step_*"))
    return sorted((p for p in found if CHECKPOINT_RE.search(p)), key=lambda p: int(CHECKPOINT_RE.search(p)[1]))


def save_checkpoint(run_dir, programs, step, keep):
    """Both training programs' parameters and optimizer states, written to a temporary folder then renamed."""
    final = os.path.join(run_dir, "checkpoints", f"step_{step:07d}")
    tmp = final + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    for name, step_program in (("d_step", programs.d_step), ("gq_step", programs.gq_step)):
        paddle.static.save(step_program.program, os.path.join(tmp, name))
    with open(os.path.join(tmp, "state.json"), "w") as f:
        json.dump({"step": step}, f)
    replace_dir(tmp, final)
    for old in checkpoint_dirs(run_dir)[:-keep]:
        shutil.rmtree(old)
    return final


def latest_checkpoint(run_dir):
    found = checkpoint_dirs(run_dir)
    if not found:
        raise InfoGANError(f"{run_dir} holds no checkpoint (checkpoints/step_*): is it a training run directory?")
    return found[-1]


def load_training_state(checkpoint, programs, exe):
    """Restores both training programs from a checkpoint; returns its step."""
    try:
        for name, step_program in (("d_step", programs.d_step), ("gq_step", programs.gq_step)):
            paddle.static.load(step_program.program, os.path.join(checkpoint, name), exe)
        with open(os.path.join(checkpoint, "state.json")) as f:
            return int(json.load(f)["step"])
    except Exception as e:  # whatever fails while reading it, the checkpoint is unusable
        raise InfoGANError(f"checkpoint {checkpoint} cannot be loaded: {str(e).splitlines()[0]}") from None


def load_state(checkpoint, program):
    """Sets the parameters (and BN statistics) an inference program uses from a checkpoint of the G+Q step,
    which holds every network's parameters."""
    prefix = os.path.join(checkpoint, "gq_step")
    try:
        state = paddle.static.load_program_state(prefix)
        with warnings.catch_warnings():  # the checkpoint also holds what this program does not use: fine
            warnings.filterwarnings("ignore", message="This list is not set")
            paddle.static.set_program_state(program, state)
    except Exception as e:  # a missing, corrupt or foreign checkpoint alike
        raise InfoGANError(
            f"checkpoint {checkpoint} does not fit this model (did config.json change?): {str(e).splitlines()[0]}"
        ) from None
