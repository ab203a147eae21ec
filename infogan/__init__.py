"""InfoGAN (Chen et al., NeurIPS 2016) on PaddlePaddle's static graph.

CPU threads: Paddle's defaults (OMP_NUM_THREADS=1 per op, its multi-threaded executor running independent
ops side by side) measured fastest on 2 cores; OMP_NUM_THREADS=2, with or without
FLAGS_new_executor_serial_run=1, was 1.5 to 3 times slower per training step (see README, Performance).
"""

import os
import warnings

os.environ.setdefault("GLOG_minloglevel", "2")  # Paddle's C++ info lines ("New Executor is Running") off
# Paddle's import warns about a C++ extension build cache that this project never uses.
warnings.filterwarnings("ignore", message="No ccache found")


class InfoGANError(Exception):
    """A problem the user can fix; scripts print its message on one line and exit with `exit_code`."""

    exit_code = 2
