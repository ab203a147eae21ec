"""Where programs run: the thread settings of the CPU, the Executor on the place a run asks for, scopes whose
tensors are freed, and how the process takes SIGTERM (as Ctrl-C, also after Paddle's import, which installs
its own handler).

Paddle reads its thread and executor settings once, when it is imported, so `apply_thread_settings` must
run before `import paddle`: the scripts call it first thing (infogan.cli). A variable already set in the
environment wins, so a user can choose another value; INFOGAN_THREAD_ENV=0 sets none of them.
docs/performance.md measures each choice.
"""

import os
import signal
import threading
import warnings
import weakref
from contextlib import contextmanager

from infogan import InfoGANError
from infogan.config import DEVICES


def thread_settings():
    """The CPU thread and executor settings measured fastest on the project's machines. Ranks of a
    data-parallel launch on one machine share its cores (its launcher sets OMP_NUM_THREADS=1 itself)."""
    cores = max(1, (os.cpu_count() or 1) // int(os.environ.get("PADDLE_LOCAL_SIZE", "1")))
    settings = {
        # OMP_NUM_THREADS is left unset: GNU OpenMP (Paddle's own kernels, the batched convolutions'
        # unfolding) then takes every core, without the warning Paddle prints when it is set above 1.
        "MKL_NUM_THREADS": str(cores),  # the matrix products: every core (of this rank's share)
        "OMP_WAIT_POLICY": "PASSIVE",  # idle OpenMP threads sleep: spinning, they take the cores from MKL
        "FLAGS_new_executor_serial_run": "1",  # one executor thread; MKL's threads do the parallel work
        "GLOG_minloglevel": "2",  # Paddle's C++ info lines ("New Executor is Running") off
    }
    if _cpu_vendor() == "AuthenticAMD":
        settings["MKL_DEBUG_CPU_TYPE"] = "5"  # Paddle's MKL takes a slow generic path on AMD unless told AVX2
    return settings


# Paddle's warnings that say nothing to a user of this project (its C++ operators build without ccache).
PADDLE_WARNINGS = ("No ccache found", "Tensor do not have 'place' interface")


def ignore_paddle_warnings():
    """Filters out PADDLE_WARNINGS: for the process (the scripts), or inside warnings.catch_warnings()."""
    for message in PADDLE_WARNINGS:
        warnings.filterwarnings("ignore", message=message)


def apply_thread_settings(environ=os.environ):
    """Sets thread_settings() where the environment does not already say otherwise; call before Paddle."""
    if environ.get("INFOGAN_THREAD_ENV") == "0":
        return
    for name, value in thread_settings().items():
        environ.setdefault(name, value)


@contextmanager
def threads(n):
    """Paddle's CPU kernels (MKL's and OpenMP's) on `n` threads inside, on the environment's MKL_NUM_THREADS
    (else every core) after. The thread count sets the order of a product's sums, so it is part of a
    computation's result: what must come out the same everywhere runs inside threads(1)."""
    from paddle.base import core

    core.set_num_threads(n)
    try:
        yield
    finally:
        core.set_num_threads(int(os.environ.get("MKL_NUM_THREADS") or os.cpu_count() or 1))


def _cpu_vendor():
    try:
        with open("/proc/cpuinfo") as f:
            return next((line.split(":")[1].strip() for line in f if line.startswith("vendor_id")), None)
    except OSError:
        return None


def executor(device):
    """An Executor on the place `device` names (auto: the GPU when there is one), in static mode."""
    import paddle

    paddle.enable_static()
    where = place(device)
    # The layers choose their kernels by the current device (infogan.ops.batched_conv: CPU-only operators).
    paddle.set_device(f"gpu:{where.get_device_id()}" if isinstance(where, paddle.CUDAPlace) else "cpu")
    return paddle.static.Executor(where)


def owned_scope(owner):
    """A new Paddle scope whose tensors are freed when `owner` is collected (free_scope)."""
    import paddle

    scope = paddle.static.Scope()
    weakref.finalize(owner, free_scope, scope)
    return scope


def free_scope(scope):
    """Frees a Paddle scope's tensors. Paddle keeps every scope made from Python (paddle.static.Scope()) in a
    pool until the process ends, tensors and all, whatever still refers to it (an MNIST training's: 250 MB):
    emptying it is what frees them (docs/performance.md, "Memory")."""
    scope.drop_kids()
    scope.erase(scope.local_var_names())


def place(device):
    import paddle

    if device not in DEVICES:  # the scripts' choices refuse it first; the API (infogan.load) does here
        raise InfoGANError(f"device must be one of {', '.join(DEVICES)}, not {device!r}")
    python_sigterm_again()
    if device == "gpu" and not paddle.is_compiled_with_cuda():
        raise InfoGANError(
            "--device gpu: this PaddlePaddle build has no CUDA support; install paddlepaddle-gpu or use --device cpu"
        )
    has_gpu = paddle.is_compiled_with_cuda() and paddle.device.cuda.device_count() > 0
    if device == "gpu" and not has_gpu:
        raise InfoGANError(
            "--device gpu: no CUDA device is visible (check nvidia-smi and CUDA_VISIBLE_DEVICES) or use --device cpu"
        )
    if device == "gpu" or (device == "auto" and has_gpu):
        return paddle.CUDAPlace(int(os.environ.get("FLAGS_selected_gpus", "0").split(",")[0]))
    return paddle.CPUPlace()


class Terminated(KeyboardInterrupt):
    """SIGTERM (a batch system's time limit, `kill`), raised as Ctrl-C raises KeyboardInterrupt, so that
    both leave the same way: through the clean-up on the way out (a new run's staging folder removed)."""


def _terminate(signum, frame):
    raise Terminated


def raise_on_sigterm():
    """From here on (the scripts: infogan.cli), SIGTERM raises Terminated; python_sigterm_again keeps it so
    past Paddle's import."""
    signal.signal(signal.SIGTERM, _terminate)


def stop_signal(stop):
    """The signal behind a KeyboardInterrupt: SIGTERM for a Terminated, else SIGINT."""
    return signal.SIGTERM if isinstance(stop, Terminated) else signal.SIGINT


def python_sigterm_again():
    """Paddle's import puts a C++ SIGTERM handler (a "FatalError" report, then the process ends with no
    clean-up) in place of the one Python had set: where a script had set its own (raise_on_sigterm), set it
    again."""
    handler = signal.getsignal(signal.SIGTERM)
    if callable(handler) and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, handler)
