"""Train InfoGAN on MNIST (or Fashion-MNIST) on Paddle's static graph. `python scripts/train.py --help`."""

import argparse

from _bootstrap import run_cli


def parse_args():
    # Defaults live in infogan.config.TrainConfig; only the flags given are passed on (SUPPRESS).
    p = argparse.ArgumentParser(description=__doc__, argument_default=argparse.SUPPRESS)
    p.add_argument("--dataset", help="mnist (default) or fashion-mnist")
    p.add_argument("--arch", help="paper (the paper's conv nets, default) or mlp (the article's 2-layer MLPs)")
    p.add_argument("--data-dir", help="folder with the four IDX files (default: Paddle's cache, downloaded)")
    p.add_argument("--no-fallback", action="store_true", help="fail instead of using the 5,000-digit sample")
    p.add_argument("--device", help="auto (default), cpu or gpu")
    p.add_argument("--batch-size", type=int, help="default 64")
    p.add_argument("--epochs", type=int, help="passes over the training set")
    p.add_argument("--iterations", type=int, help="training steps; overrides --epochs (default 3000)")
    p.add_argument("--seed", type=int, help="default 0; the same seed repeats a run")
    p.add_argument("--noise-dim", type=int, help="size of the noise z (default 62)")
    p.add_argument("--categories", type=int, help="values of the categorical code (default 10)")
    p.add_argument("--continuous", type=int, help="number of continuous codes (default 2)")
    p.add_argument("--cont-std", help="fixed (std 1, default) or learned: Q's std for continuous codes")
    p.add_argument("--lambda-cat", type=float, help="weight of the categorical L_I (default 1)")
    p.add_argument("--lambda-cont", type=float, help="weight of the continuous L_I (default 1)")
    p.add_argument("--lr-d", type=float, help="D's Adam learning rate (default 2e-4)")
    p.add_argument("--lr-g", type=float, help="G's and Q's Adam learning rate (default 1e-3)")
    p.add_argument("--beta1", type=float, help="Adam's beta1 (default 0.5)")
    p.add_argument(
        "--lambda-real", type=float, help="weight of I(c; c') of Q's categories for real images and augmented views"
    )
    p.add_argument("--views", type=int, help="augmented views of each real image for the clustering term (default 2)")
    p.add_argument("--q-in-d-step", action="store_true", help="D's step also trains its trunk and Q on L_I")
    p.add_argument("--gan-baseline", action="store_true", help="plain GAN: L_I trains Q only, not G (paper fig. 1)")
    p.add_argument("--li-delay", type=int, help="iterations before L_I pulls on G at all (default 0)")
    p.add_argument("--li-warmup", type=int, help="iterations for L_I's pull on G to grow from 0 to all (default 500)")
    p.add_argument("--log-every", type=int, help="steps between log records (default 10)")
    p.add_argument("--grid-every", type=int, help="steps between traversal grids (default 500)")
    p.add_argument("--eval-every", type=int, help="steps between held-out accuracy checks (default 200)")
    p.add_argument("--checkpoint-every", type=int, help="steps between checkpoints (default 500)")
    p.add_argument("--keep-checkpoints", type=int, help="how many recent checkpoints to keep (default 3)")
    p.add_argument("--run-dir", help="where to write the run (default outputs/DATASET-TIME)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue that run from its latest checkpoint")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --run-dir")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    return vars(p.parse_args())


def main():
    from infogan.trainer import new_run, resume_run

    options = parse_args()
    options.pop("debug", None)
    resume, run_dir, overwrite = (
        options.pop("resume", None),
        options.pop("run_dir", None),
        options.pop("overwrite", False),
    )
    if resume:
        resume_run(resume, options)
    else:
        new_run(options, run_dir, overwrite)


if __name__ == "__main__":
    run_cli(main)
