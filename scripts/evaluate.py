"""Score a run's Q on labelled images it never saw labels for: `python scripts/evaluate.py RUN_DIR`.

Each categorical code's unsupervised accuracy (Hungarian mapping) and NMI on the run's validation
images, per-label accuracy and the confusion matrix; the samples' quality as a classifier trained on the
labelled training images judges it (classifier score, Frechet distance, code purity); the first step that
reached 95%. For images without labels (CelebA, folders not trained with --folder-labels), the samples'
pixel spread alone, which tells a G that collapsed to one image from a varied one. Writes
RUN_DIR/metrics.json and confusion.png."""

from infogan import cli


def main(args):
    import infogan

    infogan.evaluate(args.run_dir, args.data_dir, args.device, sample_quality=not args.accuracy_only)


if __name__ == "__main__":
    parser = cli.Parser(__doc__)
    parser.add_argument("run_dir", type=cli.path, help="a run directory written by scripts/train.py")
    parser.add_argument(
        "--data-dir", type=cli.path, help="score another copy of the data (for MNIST, the test pair alone is enough)"
    )
    cli.add_device_flag(parser)
    parser.add_argument(
        "--accuracy-only", action="store_true", help="skip the samples' quality (which reads the training images too)"
    )
    cli.run(main, parser.parse_args())
