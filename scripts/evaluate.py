"""Unsupervised accuracy of a run's Q on labelled digits. `python scripts/evaluate.py RUN_DIR`."""

import argparse

from _bootstrap import run_cli


def main():
    from infogan.evaluation import evaluate_run, table

    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("run_dir", help="a run directory written by scripts/train.py")
    p.add_argument("--data-dir", help="folder with IDX files; the test pair alone is enough (default: the run's data)")
    p.add_argument("--device", default="cpu", help="cpu (default), gpu or auto")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    args = p.parse_args()
    print(table(evaluate_run(args.run_dir, args.data_dir, args.device)))


if __name__ == "__main__":
    run_cli(main)
