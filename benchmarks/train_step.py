"""How fast one training iteration (a G+Q step, then a D step) runs, and against what.

    python -m benchmarks.train_step [--batch-sizes 32 64 128] [--rounds 3] [--layers] [--json PATH]

Prints images/s, ms per iteration, achieved GFLOP/s and its share of the machine's fp32 matmul GFLOP/s for
the training defaults at several batch sizes, the paper's step (--lambda-real 0), the data reader's share
of a step, then at batch 64 each alternative a user might pick, PyTorch eager on the same networks when
torch is importable, and with --layers each convolution alone (forward and both gradients).

Every configuration is timed in a worker process of its own (benchmarks.workers), because Paddle reads
its thread and executor settings once, at import. The parent starts the workers round-robin, `rounds`
times over, each round starting elsewhere in the list, so each setting is measured beside the others
while the machine's load drifts; a setting's number is the median of all its timed iterations. The
parent imports Paddle only once every worker is done, to count the FLOPs of the networks themselves
(benchmarks.flops).
"""

import json
import math
import os
import signal
import statistics
import subprocess
import sys
from dataclasses import dataclass, field

from infogan import InfoGANError, cli
from infogan.device import thread_settings

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAPER = {"lambda_real": 0.0}  # the paper's objective: the step the PyTorch twin runs
SVHN = {"dataset": "svhn"}  # the SVHN preset: the paper's 32x32 colour networks


@dataclass
class Setting:
    """One configuration to time: what runs (`kind`, a function of benchmarks.workers), at which batch,
    with which settings (`config`, TrainConfig flags), compute options and environment (None unsets)."""

    name: str
    kind: str
    batch: int = 64
    config: dict = field(default_factory=dict)
    compute: dict = field(default_factory=dict)
    env: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)

    @property
    def baseline(self):
        """The row this one is compared with: the project's own step for its settings and batch."""
        if self.config == SVHN:
            return f"SVHN preset (32x32 colour), batch {self.batch}"
        paper = self.config.get("lambda_real") == 0.0
        return f"{'the paper' if paper else 'training defaults'}, batch {self.batch}"


def settings(batch_sizes, alternatives, torch_too, layers=False):
    cores = str(os.cpu_count() or 1)
    if alternatives and 64 not in batch_sizes:
        batch_sizes = sorted({*batch_sizes, 64})  # the alternatives' baseline
    rows = [Setting(f"training defaults, batch {b}", "train", b) for b in batch_sizes]
    rows += [Setting(f"the paper, batch {b}", "train", b, PAPER) for b in batch_sizes]
    rows += [Setting(f"data reader + latent codes + views, batch {b}", "reader", b) for b in batch_sizes]
    single = 64 if 64 in batch_sizes else batch_sizes[0]  # the batch of the rows timed at one batch size
    rows += [
        Setting(f"SVHN preset (32x32 colour), batch {single}", "train", single, SVHN),
        Setting(f"data reader + latent codes, SVHN preset, batch {single}", "reader", single, SVHN),
    ]
    rows += [Setting("matmul", "matmul", env={"OMP_NUM_THREADS": cores, "OPENBLAS_NUM_THREADS": cores})]
    if alternatives:
        serial, parallel = {"FLAGS_new_executor_serial_run": "1"}, {"FLAGS_new_executor_serial_run": "0"}
        unset = {name: None for name in thread_settings()}
        rows += [
            Setting("Paddle's defaults (no flags set)", "train", env={"INFOGAN_THREAD_ENV": "0"} | unset),
            Setting("1 thread, serial executor", "train", env={"MKL_NUM_THREADS": "1"} | serial),
            Setting("1 thread, parallel executor", "train", env={"MKL_NUM_THREADS": "1"} | parallel),
            Setting(f"{cores} threads, parallel executor", "train", env=parallel),
            Setting("1 OpenMP thread", "train", env={"OMP_NUM_THREADS": "1"}),
            Setting("idle OpenMP threads spin (ACTIVE)", "train", env={"OMP_WAIT_POLICY": "ACTIVE"}),
            Setting("oneDNN on", "train", env={"FLAGS_use_onednn": "1", "FLAGS_use_mkldnn": "1"}),
            Setting("Adam, one op per parameter", "train", compute={"multi_tensor_adam": False}),
            Setting("D's batches in separate passes", "train", compute={"stacked_d": False}),
            Setting("convolution biases added by broadcasting", "train", compute={"expanded_bias": False}),
            Setting("Paddle's own kernels for every convolution", "train", compute={"batched_conv": False}),
            Setting("SVHN preset, Paddle's own kernels", "train", config=SVHN, compute={"batched_conv": False}),
            Setting("no losses fetched (fake batch only)", "train", extra={"no_stats": True}),
            Setting("one Program holding every op (the paper)", "one_program", config=PAPER),
            Setting("the paper with --r1 10", "train", config=PAPER | {"r1": 10.0}),
            Setting("the paper with --li-views", "train", config=PAPER | {"li_views": True}),
        ]
        if "MKL_DEBUG_CPU_TYPE" in thread_settings():
            own = unset | {k: v for k, v in thread_settings().items() if k != "MKL_DEBUG_CPU_TYPE"}
            rows.append(Setting("MKL's own CPU dispatch", "train", env={"INFOGAN_THREAD_ENV": "0"} | own))
    if torch_too:
        threads = int(os.environ.get("MKL_NUM_THREADS", cores))
        rows += [
            Setting(
                f"PyTorch eager (the paper), {threads} threads, batch {b}",
                "torch",
                b,
                PAPER,
                extra={"threads": threads},
            )
            for b in batch_sizes
        ]
    if layers:
        from benchmarks.workers import CONVOLUTIONS

        kinds = [("Paddle", "layer", {}), ("batched", "layer", {"batched": True})]
        kinds += [("PyTorch", "torch_layer", {})] if torch_too else []
        rows += [
            Setting(
                f"{name} forward+backward, {library}",
                kind,
                single,
                extra={"layer": name, "threads": int(cores)} | extra,
            )
            for name, *_ in CONVOLUTIONS
            for library, kind, extra in kinds
        ]
    return rows


def run_benchmark(
    batch_sizes=(32, 64, 128), steps=12, warmup=2, rounds=1, alternatives=True, torch_too=None, layers=False
):
    """Times every setting `rounds` times, round-robin, in worker processes; returns the results."""
    if torch_too is None:
        import importlib.util

        torch_too = importlib.util.find_spec("torch") is not None
    todo = settings(batch_sizes, alternatives, torch_too, layers)
    timings = {s.name: [] for s in todo}
    failures = {}
    for r in range(rounds):
        # A setting's place in the order moves its rate by a few percent: over rounds each takes several places.
        shift = r * len(todo) // rounds
        for s in todo[shift:] + todo[:shift]:
            if s.name in failures:
                continue
            out = run_worker(s, steps, warmup)
            if "error" in out:
                failures[s.name] = out["error"]
            else:
                timings[s.name] += out["values"]
    return summarise(todo, timings, failures)


def run_worker(setting, steps, warmup):
    env = {k: v for k, v in dict(os.environ, **setting.env).items() if v is not None}
    job = {"kind": setting.kind, "batch": setting.batch, "config": setting.config, "compute": setting.compute}
    job |= setting.extra | {"steps": steps, "warmup": warmup}
    cmd = [sys.executable, "-m", "benchmarks.workers", json.dumps(job)]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=900)
    if done.returncode < 0:  # a crash inside a library: its last words are a C++ stack, not a reason
        return {"error": f"crashed ({signal.Signals(-done.returncode).name})"}
    if done.returncode != 0:
        lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
        return {"error": lines[-1][:200] if lines else f"exit status {done.returncode}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def summarise(todo, timings, failures):
    """One row a setting: medians, and what follows from them. A reader row's share is of the defaults'
    step at its batch size; a training row's GFLOP/s share is of the machine's matmul."""
    from benchmarks.flops import iteration_flops
    from benchmarks.workers import CONVOLUTIONS
    from infogan.config import TrainConfig

    median = {name: statistics.median(values) for name, values in timings.items() if values}
    matmul = median.get("matmul")
    flops = {}
    rows = []
    for s in todo:
        row = {"setting": s.name, "kind": s.kind, "batch": s.batch}
        if s.name in failures:
            row["error"] = failures[s.name]
        elif s.kind == "reader":
            step = median.get(s.baseline)
            row.update(ms_per_iteration=1e3 * median[s.name], share_of_step=median[s.name] / step if step else None)
        elif s.kind in ("layer", "torch_layer"):
            _, operation, shape, weight = next(c for c in CONVOLUTIONS if c[0] == s.extra["layer"])
            positions = shape[1] * shape[2] // (4 if operation == "conv" else 1)  # a deconv: at its input's
            per_image = 3 * 2 * math.prod(weight) * positions  # forward, input and weight gradients
            seconds = median[s.name]
            row.update(
                layer=s.extra["layer"], ms_per_iteration=1e3 * seconds, gflops=per_image * s.batch / seconds / 1e9
            )
        elif s.kind != "matmul":
            key = json.dumps(s.config, sort_keys=True)
            if key not in flops:
                flops[key] = iteration_flops(TrainConfig.from_flags(s.config))["iteration"]
            seconds = median[s.name]
            gflops = flops[key] * s.batch / seconds / 1e9
            row.update(ms_per_iteration=1e3 * seconds, images_per_s=s.batch / seconds, gflops=gflops)
            row["fraction_of_matmul"] = gflops / matmul if matmul else None
            if s.baseline in median:
                row["vs_baseline"] = median[s.baseline] / seconds
        if s.kind != "matmul":
            rows.append(row)
    defaults = iteration_flops(TrainConfig())
    paper = iteration_flops(TrainConfig.from_flags(PAPER))
    return {"flops_per_image": {"defaults": defaults, "paper": paper}, "matmul_gflops": matmul, "rows": rows}


def table(results):
    """The results as text; `vs own` is a row's images/s over the project's own step's (the training
    defaults', or the paper's for the rows of the paper's objective) at its batch size, or for a single
    convolution the fastest library's time over its own."""
    lines = [
        f"analytic MFLOPs per image, {name}: G+Q step {v['gq_step'] / 1e6:.1f}, D step {v['d_step'] / 1e6:.1f}, "
        f"iteration {v['iteration'] / 1e6:.1f}"
        for name, v in results["flops_per_image"].items()
    ]
    lines += [
        f"fp32 matmul, 1024x1024, best of numpy and Paddle: {results['matmul_gflops'] or 0:.1f} GFLOP/s",
        "",
        f"{'setting':<52} {'batch':>5} {'images/s':>9} {'ms/it':>8} {'GFLOP/s':>8} {'of matmul':>9} {'vs own':>8}",
    ]
    fastest_layer = {}
    for row in results["rows"]:
        if "layer" in row:
            fastest_layer[row["layer"]] = min(fastest_layer.get(row["layer"], 1e99), row["ms_per_iteration"])
    for row in results["rows"]:
        head = f"{row['setting']:<52} {row['batch']:>5}"
        if "error" in row:
            lines.append(f"{head}  fails: {row['error']}")
        elif "layer" in row:
            ratio = fastest_layer[row["layer"]] / row["ms_per_iteration"]
            lines.append(f"{head} {'':>9} {row['ms_per_iteration']:>8.1f} {row['gflops']:>8.1f} {'':>9} {ratio:>7.2f}x")
        elif row["kind"] == "reader":
            share = f"{row['share_of_step']:.1%} of a step" if row["share_of_step"] else ""
            lines.append(f"{head} {'':>9} {row['ms_per_iteration']:>8.2f}   {share}")
        else:
            share = f"{row['fraction_of_matmul']:.0%}" if row["fraction_of_matmul"] else "-"
            vs = f"{row['vs_baseline']:>7.2f}x" if "vs_baseline" in row else ""
            rates = f"{row['images_per_s']:>9.1f} {row['ms_per_iteration']:>8.1f} {row['gflops']:>8.1f}"
            lines.append(f"{head} {rates} {share:>9} {vs}")
    return "\n".join(lines)


def check_sizes(batch_sizes, steps, warmup, rounds):
    if not batch_sizes or any(b < 2 or b > 4096 for b in batch_sizes):
        raise InfoGANError(f"--batch-sizes must be whole numbers from 2 to 4096, not {batch_sizes}")
    for name, value, low in (("--steps", steps, 3), ("--warmup", warmup, 0), ("--rounds", rounds, 1)):
        if not low <= value <= 10_000:
            raise InfoGANError(f"{name} must be a whole number from {low} to 10000, not {value}")


def main(args):
    from infogan.files import write_text

    check_sizes(args.batch_sizes, args.steps, args.warmup, args.rounds)
    results = run_benchmark(
        args.batch_sizes,
        args.steps,
        args.warmup,
        args.rounds,
        not args.no_alternatives,
        False if args.no_torch else None,
        args.layers,
    )
    print(table(results))
    if args.json:
        write_text(args.json, json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    parser = cli.Parser(__doc__)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[32, 64, 128], help="default 32 64 128")
    parser.add_argument("--steps", type=int, default=12, help="timed iterations per setting and round (default 12)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed iterations first (default 2)")
    parser.add_argument("--rounds", type=int, default=1, help="times every setting is run, round-robin (default 1)")
    parser.add_argument(
        "--no-alternatives", action="store_true", help="time the defaults, the paper's step and the reader only"
    )
    parser.add_argument("--no-torch", action="store_true", help="skip PyTorch even when it is importable")
    parser.add_argument("--layers", action="store_true", help="also time each convolution alone, Paddle and PyTorch")
    parser.add_argument("--json", metavar="PATH", help="also write the numbers as JSON")
    cli.run(main, parser.parse_args())
