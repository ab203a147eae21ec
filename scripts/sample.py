"""Draw latent-traversal grids and random samples from a trained run. `python scripts/sample.py RUN_DIR`."""

import argparse

from _bootstrap import run_cli


def main():
    from infogan.sampling import sample_run

    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("run_dir", help="a run directory written by scripts/train.py")
    p.add_argument("--steps", type=int, default=9, help="columns of each traversal (default 9)")
    p.add_argument("--range", type=float, default=2.0, dest="span", help="traverse from -RANGE to RANGE (default 2)")
    p.add_argument("--seed", type=int, default=0, help="seed of the fixed noise (default 0)")
    p.add_argument("--out", help="output folder (default RUN_DIR/samples)")
    p.add_argument("--device", default="cpu", help="cpu (default), gpu or auto")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    args = p.parse_args()
    paths = sample_run(args.run_dir, args.out, args.steps, args.span, args.seed, args.device)
    print("\n".join(paths))


if __name__ == "__main__":
    run_cli(main)
