"""A Markdown table of several evaluated runs, with the mean +- standard deviation over them:
`python scripts/summarize.py RUN1 RUN2 ...` (run scripts/evaluate.py on each first)."""

from infogan import cli


def main(args):
    from infogan.scoring import summarize_runs

    print(summarize_runs(args.runs))


if __name__ == "__main__":
    parser = cli.Parser(__doc__)
    parser.add_argument("runs", nargs="+", type=cli.path, help="run directories with a metrics.json")
    cli.run(main, parser.parse_args())
