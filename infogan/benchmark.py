"""How fast one training iteration (a G+Q step, then a D step) runs, and against what.

Every configuration is timed in a worker process of its own, because Paddle reads its thread and executor
flags once, at import. The parent starts the workers round-robin, `rounds` times over, so each setting is
measured beside the others while the machine's load drifts; a setting's number is the median of all its
timed iterations. The parent imports neither Paddle nor PyTorch.

FLOPs are counted analytically: 2 per multiply-add of every FC, convolution and transposed convolution, in
the forward pass and in each backward product (the gradient of the input, where one is needed, and of the
weights, where they train); elementwise, batch-norm and optimizer work is left out, so achieved GFLOP/s is
a lower bound on what the machine does.
"""

import json
import os
import signal
import statistics
import subprocess
import sys
from dataclasses import dataclass, field

from infogan import THREAD_ENV, InfoGANError

NOISE, CATEGORIES, CONTINUOUS = 62, 10, 2
LATENT = NOISE + CATEGORIES + CONTINUOUS
MATMUL_N = 1024


def _fc(n_in, n_out):
    return 2 * n_in * n_out


def _conv(c_in, c_out, out_hw, kernel=4):
    return 2 * c_in * c_out * kernel * kernel * out_hw * out_hw


# (layer, forward FLOPs per image) of the paper's MNIST networks, input side first. A transposed convolution
# costs what the convolution it transposes costs, so it is counted at its input's spatial size.
GENERATOR = [
    ("fc1", _fc(LATENT, 1024)),
    ("fc2", _fc(1024, 6272)),
    ("deconv1", _conv(128, 64, 7)),
    ("deconv2", _conv(64, 1, 14)),
]
TRUNK = [("conv1", _conv(1, 64, 14)), ("conv2", _conv(64, 128, 7)), ("fc3", _fc(6272, 1024))]
D_HEAD = [("out", _fc(1024, 1))]
Q_HEAD = [("fc1", _fc(1024, 128)), ("out", _fc(128, CATEGORIES + CONTINUOUS))]
# The convolutions as --layers times them one by one: (layer, operation, input shape, weight shape).
CONVOLUTIONS = [
    ("conv1", "conv", (1, 28, 28), (64, 1, 4, 4)),
    ("conv2", "conv", (64, 14, 14), (128, 64, 4, 4)),
    ("deconv1", "deconv", (128, 7, 7), (128, 64, 4, 4)),
    ("deconv2", "deconv", (64, 14, 14), (64, 1, 4, 4)),
]


def _backward(layers, weights, first_input_grad):
    """FLOPs of a backward pass: weight gradients where `weights`, input gradients for every layer but
    the first unless `first_input_grad` (its input is data)."""
    input_grads = sum(f for i, (_, f) in enumerate(layers) if i > 0 or first_input_grad)
    return input_grads + (sum(f for _, f in layers) if weights else 0)


def layer_flops_per_image(layer):
    """A convolution's forward, input-gradient and weight-gradient products: three times its forward."""
    return 3 * dict(TRUNK + GENERATOR)[layer]


def flops_per_image():
    """Analytic FLOPs per image of one training iteration, by step."""
    forward = lambda layers: sum(f for _, f in layers)  # noqa: E731
    gq = (
        forward(GENERATOR + TRUNK + D_HEAD + Q_HEAD)
        + _backward(GENERATOR, weights=True, first_input_grad=False)
        + _backward(TRUNK + D_HEAD, weights=False, first_input_grad=True)
        + _backward(Q_HEAD, weights=True, first_input_grad=True)
    )
    d = 2 * (forward(TRUNK + D_HEAD) + _backward(TRUNK + D_HEAD, weights=True, first_input_grad=False))
    return {"gq_step": gq, "d_step": d, "iteration": gq + d}


@dataclass
class Setting:
    """One configuration to time: what runs (`kind`), at which batch, under which environment."""

    name: str
    kind: str  # a function of infogan.bench_workers: paddle, paddle-one-program, reader, torch, matmul,
    # paddle-layer, torch-layer
    batch: int = 64
    env: dict = field(default_factory=dict)
    options: dict = field(default_factory=dict)


def settings(batch_sizes, alternatives, torch_too, layers=False):
    """What to time: the project's settings (infogan.THREAD_ENV) at each batch size, the machine's matmul,
    at batch 64 each alternative a user might pick, and with `layers` each convolution on its own. An env
    value of None removes that variable."""
    cores = str(os.cpu_count() or 1)
    main = [Setting(f"project defaults, batch {b}", "paddle", b) for b in batch_sizes]
    main += [Setting(f"data reader + latent sampling, batch {b}", "reader", b) for b in batch_sizes]
    found = [Setting("matmul", "matmul", env={"OMP_NUM_THREADS": cores, "OPENBLAS_NUM_THREADS": cores})]
    if alternatives:
        serial, parallel = {"FLAGS_new_executor_serial_run": "1"}, {"FLAGS_new_executor_serial_run": "0"}
        unset = {name: None for name in THREAD_ENV}
        found += [
            Setting("Paddle's defaults (no flags set)", "paddle", env={"INFOGAN_THREAD_ENV": "0"} | unset),
            Setting("1 thread, serial executor", "paddle", env={"MKL_NUM_THREADS": "1"} | serial),
            Setting("1 thread, parallel executor", "paddle", env={"MKL_NUM_THREADS": "1"} | parallel),
            Setting(f"{cores} threads, parallel executor", "paddle", env=parallel),
            Setting("1 OpenMP thread", "paddle", env={"OMP_NUM_THREADS": "1"}),
            # Not "unset": infogan's import would set PASSIVE again (a value in the environment wins).
            Setting("idle OpenMP threads spin (ACTIVE)", "paddle", env={"OMP_WAIT_POLICY": "ACTIVE"}),
            Setting("oneDNN on", "paddle", env={"FLAGS_use_onednn": "1", "FLAGS_use_mkldnn": "1"}),
            Setting("Adam, one op per parameter", "paddle", options={"adam_per_parameter": True}),
            Setting("D's real and fake batches in two passes", "paddle", options={"separate_d_passes": True}),
            Setting("convolution biases added by broadcasting", "paddle", options={"broadcast_bias": True}),
            Setting("Paddle's own kernels for every convolution", "paddle", env={"INFOGAN_BATCHED_CONV": "0"}),
            Setting("no losses fetched (fake batch only)", "paddle", options={"no_stats": True}),
            Setting("clustering term on (FLOPs uncounted)", "paddle", options={"clustering_term": True}),
            Setting("one Program holding every op", "paddle-one-program"),
        ]
        if "MKL_DEBUG_CPU_TYPE" in THREAD_ENV:
            own_dispatch = unset | {k: v for k, v in THREAD_ENV.items() if k != "MKL_DEBUG_CPU_TYPE"}
            found.append(Setting("MKL's own CPU dispatch", "paddle", env={"INFOGAN_THREAD_ENV": "0"} | own_dispatch))
    if torch_too:
        threads = int(os.environ.get("MKL_NUM_THREADS", cores))
        found += [
            Setting(f"PyTorch eager, {threads} threads, batch {b}", "torch", b, options={"threads": threads})
            for b in batch_sizes
        ]
    if layers:
        libraries = [("Paddle", "paddle-layer", {}), ("batched", "paddle-layer", {"batched": True})]
        libraries += [("PyTorch", "torch-layer", {})] if torch_too else []
        for layer, *_ in CONVOLUTIONS:
            found += [
                Setting(
                    f"{layer} forward+backward, {library}",
                    kind,
                    options={"layer": layer, "threads": int(cores)} | extra,
                )
                for library, kind, extra in libraries
            ]
    return main + found


def run_benchmark(
    batch_sizes=(32, 64, 128), steps=12, warmup=2, rounds=1, alternatives=True, torch_too=None, layers=False
):
    """Times every setting `rounds` times, round-robin, in worker processes; returns the results."""
    if torch_too is None:
        torch_too = _importable("torch")
    todo = settings(batch_sizes, alternatives, torch_too, layers)
    timings = {s.name: [] for s in todo}
    failures = {}
    for r in range(rounds):
        # Each round starts elsewhere in the list: a setting's place in the order moved its rate by up to
        # 5% (the same step, timed first and later in one round), so over rounds each takes several places.
        shift = r * len(todo) // rounds
        for s in todo[shift:] + todo[:shift]:
            if s.name in failures:
                continue
            out = _run_worker(s, steps, warmup)
            if "error" in out:
                failures[s.name] = out["error"]
            else:
                timings[s.name] += out["values"]
    return _summarise(todo, timings, failures)


def _importable(module):
    import importlib.util

    return importlib.util.find_spec(module) is not None


def _run_worker(setting, steps, warmup):
    env = {k: v for k, v in dict(os.environ, **setting.env).items() if v is not None}
    job = json.dumps({**setting.__dict__, "steps": steps, "warmup": warmup})
    cmd = [sys.executable, "-m", "infogan.benchmark", job]
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=root, timeout=600)
    if done.returncode < 0:  # a crash inside a library: its last words are a C++ stack, not a reason
        return {"error": f"crashed ({signal.Signals(-done.returncode).name})"}
    if done.returncode != 0:
        lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
        return {"error": lines[-1][:200] if lines else f"exit status {done.returncode}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def _summarise(todo, timings, failures):
    """One row a setting: medians, and what follows from them. A reader row's share is of the project's
    step at its batch size; a training row's, of the machine's matmul GFLOP/s."""
    flops = flops_per_image()["iteration"]
    median = {name: statistics.median(values) for name, values in timings.items() if values}
    matmul = median.get("matmul")
    rows = []
    for s in todo:
        row = {"setting": s.name, "kind": s.kind, "batch": s.batch}
        if s.name in failures:
            row["error"] = failures[s.name]
        elif s.kind == "reader":
            step = median.get(f"project defaults, batch {s.batch}")
            row.update(ms_per_iteration=1e3 * median[s.name], share_of_step=median[s.name] / step if step else None)
        elif s.kind.endswith("-layer"):
            seconds = median[s.name]
            gflops = layer_flops_per_image(s.options["layer"]) * s.batch / seconds / 1e9
            row.update(layer=s.options["layer"], ms_per_iteration=1e3 * seconds, gflops=gflops)
        elif s.kind != "matmul":
            gflops = flops * s.batch / median[s.name] / 1e9
            row.update(ms_per_iteration=1e3 * median[s.name], images_per_s=s.batch / median[s.name], gflops=gflops)
            row["fraction_of_matmul"] = gflops / matmul if matmul else None
        if s.kind != "matmul":
            rows.append(row)
    return {"flops_per_image": flops_per_image(), "matmul_gflops": matmul, "rows": rows}


def table(results):
    """The results as text, one row a setting; `vs best` is a row's images/s over the fastest Paddle
    setting's at its batch size, or for a single convolution the fastest library's time over its own."""
    f = results["flops_per_image"]
    lines = [
        f"analytic FLOPs per image: G+Q step {f['gq_step'] / 1e6:.1f} M, D step {f['d_step'] / 1e6:.1f} M, "
        f"iteration {f['iteration'] / 1e6:.1f} M",
        f"fp32 matmul, {MATMUL_N}x{MATMUL_N}, best of numpy and Paddle: {results['matmul_gflops'] or 0:.1f} GFLOP/s",
        "",
        f"{'setting':<44} {'batch':>5} {'images/s':>9} {'ms/it':>8} {'GFLOP/s':>8} {'of matmul':>9} {'vs best':>8}",
    ]
    best, fastest_layer = {}, {}
    for row in results["rows"]:
        if "error" in row:
            continue
        if row["kind"].endswith("-layer"):
            fastest_layer[row["layer"]] = min(fastest_layer.get(row["layer"], 1e99), row["ms_per_iteration"])
        elif row["kind"].startswith("paddle"):
            best[row["batch"]] = max(best.get(row["batch"], 0), row["images_per_s"])
    for row in results["rows"]:
        head = f"{row['setting']:<44} {row['batch']:>5}"
        if "error" in row:
            lines.append(f"{head}  fails: {row['error']}")
        elif row["kind"].endswith("-layer"):
            ratio = fastest_layer[row["layer"]] / row["ms_per_iteration"]
            lines.append(f"{head} {'':>9} {row['ms_per_iteration']:>8.1f} {row['gflops']:>8.1f} {'':>9} {ratio:>7.2f}x")
        elif row["kind"] == "reader":
            share = f"{row['share_of_step']:.1%} of a step" if row["share_of_step"] else ""
            lines.append(f"{head} {'':>9} {row['ms_per_iteration']:>8.2f}   {share}")
        else:
            share = f"{row['fraction_of_matmul']:.0%}" if row["fraction_of_matmul"] else "-"
            lines.append(
                f"{head} {row['images_per_s']:>9.1f} {row['ms_per_iteration']:>8.1f} {row['gflops']:>8.1f} "
                f"{share:>9} {row['images_per_s'] / best[row['batch']]:>7.2f}x"
            )
    return "\n".join(lines)


def check_sizes(batch_sizes, steps, warmup, rounds):
    if not batch_sizes or any(b < 2 or b > 4096 for b in batch_sizes):
        raise InfoGANError(f"--batch-sizes must be whole numbers from 2 to 4096, not {batch_sizes}")
    for flag, value, low in (("--steps", steps, 3), ("--warmup", warmup, 0), ("--rounds", rounds, 1)):
        if not low <= value <= 10_000:
            raise InfoGANError(f"{flag} must be a whole number from {low} to 10000, not {value}")


def _worker(job):
    from infogan import bench_workers

    made = getattr(bench_workers, job["kind"].replace("-", "_"))(job)
    values = made if job["kind"] == "matmul" else bench_workers.seconds(made, job["steps"], job["warmup"])
    print(json.dumps({"values": values}))


if __name__ == "__main__":
    _worker(json.loads(sys.argv[1]))
