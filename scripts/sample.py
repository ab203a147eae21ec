"""Draw latent-traversal grids and random samples from a trained run: `python scripts/sample.py RUN_DIR`.

One grid per categorical code (a column per value) and per continuous code (from -RANGE to RANGE), and
one of random samples, written to RUN_DIR/samples/ (or --out)."""

from infogan import cli


def main(args):
    from infogan.grids import sample_run

    print("\n".join(sample_run(args.run_dir, args.out, args.steps, args.span, args.seed, args.device)))


if __name__ == "__main__":
    parser = cli.Parser(__doc__)
    parser.add_argument("run_dir", type=cli.path, help="a run directory written by scripts/train.py")
    parser.add_argument("--steps", type=int, default=9, help="columns of each continuous traversal (default 9)")
    parser.add_argument(
        "--range", type=float, default=2.0, dest="span", help="traverse from -RANGE to RANGE (default 2)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the noise drawn for the grids (default 0)")
    parser.add_argument("--out", type=cli.path, help="output folder (default RUN_DIR/samples)")
    cli.add_device_flag(parser)
    cli.run(main, parser.parse_args())
