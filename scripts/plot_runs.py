"""Overlay runs' categorical L_I curves (with the H(c) line) and accuracy curves as one figure (PNG, PDF or SVG).

python scripts/plot_runs.py outputs/infogan outputs/gan --labels InfoGAN GAN --out li_vs_gan.png
python scripts/plot_runs.py a_s0 a_s1 b_s0 b_s1 --labels A A B B   # runs under one label share a colour
"""

from infogan import cli


def main(args):
    from infogan.scoring import compare_runs

    print(compare_runs(args.runs, args.labels, args.out))


if __name__ == "__main__":
    parser = cli.Parser(__doc__)
    parser.add_argument("runs", nargs="+", type=cli.path, help="run directories written by scripts/train.py")
    parser.add_argument(
        "--labels",
        nargs="+",
        help="one legend label per run; runs given the same label share a colour (default: the folder names)",
    )
    parser.add_argument(
        "--out",
        type=cli.path,
        default="runs.png",
        help="the figure to write, its format by its name: .png, .pdf, .svg (default runs.png)",
    )
    cli.run(main, parser.parse_args())
