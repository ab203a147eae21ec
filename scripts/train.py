"""Train InfoGAN on Paddle's static graph: `python scripts/train.py` (MNIST, the defaults), or with
--dataset svhn|celeba|folder, --preset NAME and any setting below. `python scripts/train.py --help`."""

from infogan import InfoGANError, cli
from infogan.config import TrainConfig, resumed_config


def main(args):
    flags = vars(args)
    resume, run_dir, overwrite = flags.pop("resume", None), flags.pop("run_dir", None), flags.pop("overwrite", False)
    if resume:
        if run_dir or overwrite:
            raise InfoGANError("--resume continues a run in its own directory: drop --run-dir and --overwrite")
        cfg = resumed_config(resume, flags)  # a mistaken setting is told before Paddle's import (seconds)
        from infogan.train import resume_run

        return resume_run(resume, cfg)
    cfg = TrainConfig.from_flags(flags)  # likewise
    from infogan.train import new_run

    return new_run(cfg, run_dir, overwrite)


if __name__ == "__main__":
    parser = cli.Parser(__doc__)
    cli.add_config_flags(parser)
    parser.add_argument("--run-dir", type=cli.path, help="where to write the run (default outputs/DATASET-TIME)")
    parser.add_argument(
        "--resume", metavar="RUN_DIR", type=cli.path, help="continue that run from its latest checkpoint"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing run in --run-dir")
    cli.run(main, parser.parse_args())
