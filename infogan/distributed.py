"""Data-parallel training across processes, as `python -m paddle.distributed.launch --nproc_per_node N
scripts/train.py ...` starts it: N ranks, each training on its shard of every global batch.

Each training Program averages its gradients across ranks inside the graph, in one all-reduce: every
gradient is flattened into one buffer (with the step's stop flags behind them), summed across ranks, and
split back. The communicator is gloo on the CPU and NCCL on GPUs (one device per rank), created once
from the launcher's environment. Paddle's own static-graph route (fleet's distributed optimizer) does not
build under PIR, so the Programs do it themselves: optimizer.backward, the all-reduce, apply_gradients.
Only rank 0 writes the run directory; every rank starts from rank 0's parameters.
"""

import hashlib
import os
from dataclasses import dataclass

import numpy as np

from infogan import InfoGANError


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1

    @property
    def main(self):
        """Whether this process writes the run directory and reports."""
        return self.rank == 0

    def shard(self, rows):
        """This rank's part of a global batch (numpy, first axis), in rank order."""
        n = len(rows) // self.size
        return rows[self.rank * n : (self.rank + 1) * n]

    def shard_views(self, views, batch):
        """This rank's part of `views` augmented copies of a global batch, stacked copy after copy."""
        copies = np.split(views, len(views) // batch)
        return np.concatenate([self.shard(copy) for copy in copies])


ALONE = World()  # one process, no launcher


def world():
    """The launcher's ranks, from its environment; one process alone is World(0, 1)."""
    size = int(os.environ.get("PADDLE_TRAINERS_NUM", "1"))
    return World(int(os.environ.get("PADDLE_TRAINER_ID", "0")), size)


_connected = set()


def connect(w, gpu):
    """The communicator of the ranks, once per process: NCCL among GPUs, gloo among CPU processes."""
    if w.size == 1 or w in _connected:
        return
    from paddle.base import core

    try:
        store = core.create_or_get_global_tcp_store()  # at PADDLE_MASTER, which the launcher sets
        if gpu:  # as paddle.distributed.collective._init_parallel_env does for NCCL
            endpoints = os.environ.get("PADDLE_TRAINER_ENDPOINTS", "").replace(",", "") + "ring_id:0"
            core.CommContextManager.set_device_id(int(os.environ.get("FLAGS_selected_gpus", "0").split(",")[0]))
            key = hashlib.md5(endpoints.encode()).hexdigest()
            core.CommContextManager.create_nccl_comm_context(store, "0", w.rank, w.size, key)
        else:
            core.CommContextManager.create_gloo_comm_context(store, "0", w.rank, w.size)
    except Exception as e:  # the store or the ranks cannot be reached: nothing trains without them
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise InfoGANError(f"rank {w.rank} cannot reach the other {w.size - 1} rank(s): {reason}") from None
    _connected.add(w)


def check_batch(w, batch_size):
    if batch_size % w.size:
        raise InfoGANError(
            f"--batch-size {batch_size} does not split evenly over {w.size} ranks: choose a multiple of {w.size}"
        )


def average_gradients(params_grads, w, flags=None):
    """The gradients summed across ranks and divided by their number, in one all-reduce; with `flags`
    (a [k] value), the flags summed across ranks too. Returns (params_grads, summed flags or None)."""
    import paddle

    grads = [paddle.flatten(g) for _, g in params_grads]
    sizes = [int(np.prod(p.shape)) for p, _ in params_grads]
    buffer = paddle.concat(grads + ([flags] if flags is not None else []))
    paddle.distributed.all_reduce(buffer)
    parts = paddle.split(buffer, sizes + ([flags.shape[0]] if flags is not None else []))
    averaged = [(p, paddle.reshape(part / w.size, p.shape)) for (p, _), part in zip(params_grads, parts, strict=False)]
    return averaged, (parts[-1] if flags is not None else None)


def broadcast_parameters(programs, exe, w):
    """Every rank takes rank 0's parameters (and batch-norm statistics), so they start identical."""
    if w.size == 1:
        return
    import paddle

    names = sorted({p.name for s in programs.saved.values() for p in s.program.global_block().all_parameters()})
    program = paddle.static.Program()
    with paddle.static.program_guard(program, paddle.static.Program()):
        scope = paddle.static.global_scope()
        for name in names:
            value = np.array(scope.find_var(name).get_tensor())
            tensor = paddle.static.create_parameter(list(value.shape), "float32", name=name)
            paddle.distributed.broadcast(tensor, src=0)
    exe.run(program)
