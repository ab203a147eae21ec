"""Time the training iteration (G+Q step + D step) against the alternatives. `python scripts/benchmark.py`.

Prints images/s, ms per iteration, achieved GFLOP/s and its share of the machine's fp32 matmul GFLOP/s, for
the project's settings at several batch sizes, then thread/executor alternatives, one Program holding every
op, and PyTorch eager on the same networks when torch is importable; with --layers, each convolution of the
networks alone (forward and both gradients), in Paddle and PyTorch.
"""

import argparse
import json

from _bootstrap import run_cli


def main():
    from infogan.benchmark import check_sizes, run_benchmark, table
    from infogan.files import write_text

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[32, 64, 128], help="default 32 64 128")
    p.add_argument("--steps", type=int, default=12, help="timed iterations per setting and round (default 12)")
    p.add_argument("--warmup", type=int, default=2, help="untimed iterations first (default 2)")
    p.add_argument("--rounds", type=int, default=1, help="times every setting is run, round-robin (default 1)")
    p.add_argument("--no-alternatives", action="store_true", help="time the project's settings only")
    p.add_argument("--no-torch", action="store_true", help="skip PyTorch even when it is importable")
    p.add_argument("--layers", action="store_true", help="also time each convolution alone, Paddle and PyTorch")
    p.add_argument("--json", metavar="PATH", help="also write the numbers as JSON")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    args = p.parse_args()
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
    run_cli(main)
