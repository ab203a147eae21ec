"""Data-parallel training on one machine: one process against two ranks of paddle.distributed.launch,
with the machine's cores split between them, and the communication's share of a step.

    python -m benchmarks.data_parallel [--steps 20] [--rounds 3] [--json PATH]

For each configuration (the MNIST defaults, and the SVHN preset's 32x32 colour networks), at the same
global batch, it times: one process with every core; two ranks with half the cores each (rank 0's time
per step, which waits for rank 1 at every all-reduce); and the two ranks' all-reduce alone, of a buffer
as large as one iteration's gradients. Settings alternate round by round; each number is a median.
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile

from infogan import InfoGANError, cli

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = {"MNIST defaults": {}, "SVHN preset (32x32 colour)": {"dataset": "svhn"}}


def run(job, ranks):
    """The worker's timings, from one process or from rank 0 of `ranks` launched ones."""
    worker = [os.path.join(ROOT, "benchmarks", "workers.py"), json.dumps(job)]
    if ranks == 1:
        done = subprocess.run([sys.executable, *worker], capture_output=True, text=True, cwd=ROOT, timeout=900)
        output = done.stdout
    else:
        with tempfile.TemporaryDirectory() as logs:
            launch = [
                sys.executable,
                "-m",
                "paddle.distributed.launch",
                "--nproc_per_node",
                str(ranks),
                "--log_dir",
                logs,
            ]
            done = subprocess.run([*launch, *worker], capture_output=True, text=True, cwd=ROOT, timeout=900)
            output = (
                open(os.path.join(logs, "workerlog.0")).read()
                if os.path.exists(os.path.join(logs, "workerlog.0"))
                else ""
            )
    lines = [line for line in output.splitlines() if line.startswith('{"values"')]
    if done.returncode != 0 or not lines:
        raise InfoGANError(f"the worker failed ({ranks} rank(s)): {(done.stderr or output).strip().splitlines()[-1:]}")
    return json.loads(lines[-1])["values"]


def measure(steps, warmup, rounds, batch):
    timings = {}
    for r in range(rounds):
        for name, config in CONFIGS.items():
            order = [("one process", 1, "train"), ("two ranks", 2, "train"), ("all-reduce alone", 2, "all_reduce")]
            for label, ranks, kind in order if r % 2 == 0 else order[::-1]:
                job = {"kind": kind, "batch": batch, "config": config, "compute": {}, "steps": steps, "warmup": warmup}
                timings.setdefault((name, label), []).extend(run(job, ranks))
    return {key: statistics.median(values) for key, values in timings.items()}


def table(medians, batch):
    from benchmarks.flops import gradient_floats, iteration_flops
    from infogan.config import TrainConfig

    lines = [
        f"global batch {batch}; ms per iteration (median); two ranks: {batch // 2} images each, half the cores each",
        f"{'configuration':<28} {'one process':>12} {'two ranks':>10} {'speed-up':>9} {'all-reduce':>11} "
        f"{'its share':>10} {'MB/iteration':>13} {'MFLOP/image':>12}",
    ]
    rows = []
    for name, config in CONFIGS.items():
        cfg = TrainConfig.from_flags(config)
        one, two, comm = (1e3 * medians[(name, label)] for label in ("one process", "two ranks", "all-reduce alone"))
        megabytes = 4 * gradient_floats(cfg) / 1e6
        mflops = iteration_flops(cfg)["iteration"] / 1e6
        rows.append(
            {
                "configuration": name,
                "one_process_ms": one,
                "two_ranks_ms": two,
                "all_reduce_ms": comm,
                "megabytes": megabytes,
                "mflop_per_image": mflops,
            }
        )
        times = f"{one:>12.1f} {two:>10.1f} {one / two:>8.2f}x {comm:>11.1f} {comm / two:>10.0%}"
        lines.append(f"{name:<28} {times} {megabytes:>13.1f} {mflops:>12.1f}")
    return "\n".join(lines), rows


def main(args):
    from infogan.files import write_text

    if args.steps < 3 or args.rounds < 1 or args.batch_size < 2 or args.batch_size % 2:
        raise InfoGANError("--steps must be at least 3, --rounds at least 1, --batch-size even")
    medians = measure(args.steps, 2, args.rounds, args.batch_size)
    text, rows = table(medians, args.batch_size)
    print(text)
    if args.json:
        write_text(args.json, json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    parser = cli.Parser(__doc__)
    parser.add_argument("--steps", type=int, default=20, help="timed iterations per setting and round (default 20)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds, each setting once per round (default 3)")
    parser.add_argument("--batch-size", type=int, default=64, help="the global batch (default 64)")
    parser.add_argument("--json", metavar="PATH", help="also write the numbers as JSON")
    cli.run(main, parser.parse_args())
