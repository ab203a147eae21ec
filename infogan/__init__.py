"""InfoGAN (Chen et al., NeurIPS 2016) on PaddlePaddle's static graph.

THREAD_ENV is the CPU thread and executor setting that scripts/benchmark.py measured fastest (README,
Performance). Paddle reads these variables once, at import, so they are set here, before any import of
Paddle; a value already in the environment wins, so a user can still choose another, and
INFOGAN_THREAD_ENV=0 sets none of them.
"""

import os
import warnings


def _thread_env():
    # OMP_NUM_THREADS is left unset, so GNU OpenMP (Paddle's own kernels, infogan.batched_conv's unfolding)
    # takes every core, without the warning Paddle prints at import when the variable is set above 1.
    env = {
        "MKL_NUM_THREADS": str(os.cpu_count() or 1),  # the matrix products: every core
        "OMP_WAIT_POLICY": "PASSIVE",  # idle OpenMP threads sleep: spinning, they slowed MKL's products 2x
        "FLAGS_new_executor_serial_run": "1",  # one executor thread; MKL's threads do the parallel work
    }
    if _cpu_vendor() == "AuthenticAMD":
        env["MKL_DEBUG_CPU_TYPE"] = "5"  # Paddle's MKL takes a slow generic path on AMD unless told AVX2
    return env


def _cpu_vendor():
    try:
        with open("/proc/cpuinfo") as f:
            return next((line.split(":")[1].strip() for line in f if line.startswith("vendor_id")), None)
    except OSError:
        return None


THREAD_ENV = _thread_env()
if os.environ.get("INFOGAN_THREAD_ENV") != "0":  # 0: leave Paddle's own defaults (scripts/benchmark.py)
    for _name, _value in THREAD_ENV.items():
        os.environ.setdefault(_name, _value)
os.environ.setdefault("GLOG_minloglevel", "2")  # Paddle's C++ info lines ("New Executor is Running") off
# Paddle's import warns about a C++ extension build cache that this project never uses; its BatchNorm
# layers, built in training mode, announce that they track running statistics; building under PIR, it
# notes that a Value has no place: all three are noise to a user.
for _message in (
    "No ccache found",
    "When training, we now always track global mean and variance",
    "Tensor do not have 'place' interface",
):
    warnings.filterwarnings("ignore", message=_message)


class InfoGANError(Exception):
    """A problem the user can fix; scripts print its message on one line and exit with `exit_code`."""

    exit_code = 2
