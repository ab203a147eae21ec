"""Export a trained run as Paddle inference models that run without this project:
`python scripts/export.py RUN_DIR [--out DIR]` writes the generator, the encoder (Q) and latent.json."""

from infogan import cli


def main(args):
    from infogan.export import export_run

    print(export_run(args.run_dir, args.out))


if __name__ == "__main__":
    parser = cli.Parser(__doc__)
    parser.add_argument("run_dir", type=cli.path, help="a run directory written by scripts/train.py")
    parser.add_argument(
        "--out", type=cli.path, help="the folder to write (default RUN_DIR/export; an older export there is replaced)"
    )
    cli.run(main, parser.parse_args())
