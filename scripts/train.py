"""Train InfoGAN on Paddle's static graph: `python scripts/train.py` (MNIST, the defaults), or with
--dataset svhn|celeba|folder, --preset NAME and any setting below. `python scripts/train.py --help`."""

from infogan import cli


def main(args):
    import infogan

    return infogan.train(**vars(args))


if __name__ == "__main__":
    parser = cli.Parser(__doc__)
    cli.add_config_flags(parser)
    parser.add_argument("--run-dir", type=cli.path, help="where to write the run (default outputs/DATASET-TIME)")
    parser.add_argument(
        "--resume", metavar="RUN_DIR", type=cli.path, help="continue that run from its latest checkpoint"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing run in --run-dir")
    cli.run(main, parser.parse_args())
