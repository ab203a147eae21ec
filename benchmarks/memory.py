"""The memory of one process that trains, loads and scores several runs, as a notebook does: its resident
size after each call. Paddle keeps every scope made from Python until the process ends, tensors and all,
so a call that does not free its own grows the process by its networks and their Adam moments each time.

    python -m benchmarks.memory [--runs 4] [--iterations 2] [--data-dir DIR]    # 1 to 2 minutes

The runs train the defaults (on --data-dir, else the MNIST that train.py finds) into a temporary folder.
"""

import contextlib
import gc
import io
import os
import tempfile

from infogan import InfoGANError, cli


def resident_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def main(args):
    import infogan

    if args.runs < 2:
        raise InfoGANError("--runs must be at least 2: growth shows from one call to the next")
    with tempfile.TemporaryDirectory() as folder:
        runs = []
        for i in range(args.runs):
            run_dir = os.path.join(folder, f"run{i}")
            runs.append(infogan.train(run_dir=run_dir, data_dir=args.data_dir, iterations=args.iterations, seed=i))
            print(f"trained run {i + 1}: {resident_mb():6.0f} MB", flush=True)
        for i, run_dir in enumerate(runs):
            model = infogan.load(run_dir)
            model.generate(n=100, seed=0)
            del model
            gc.collect()
            print(f"loaded model {i + 1}: {resident_mb():6.0f} MB", flush=True)
        for i, run_dir in enumerate(runs):
            with contextlib.redirect_stdout(io.StringIO()):  # the metrics' table
                infogan.evaluate(run_dir, sample_quality=False)
            print(f"evaluated run {i + 1}: {resident_mb():6.0f} MB", flush=True)


if __name__ == "__main__":
    parser = cli.Parser(__doc__)
    parser.add_argument("--runs", type=int, default=4, help="runs to train, load and score (default 4)")
    parser.add_argument("--iterations", type=int, default=2, help="training steps of each run (default 2)")
    parser.add_argument("--data-dir", type=cli.path, help="the MNIST files (default: as train.py finds them)")
    cli.run(main, parser.parse_args())
