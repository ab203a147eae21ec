"""Overlay runs' L_I curves (with the ln K line) and accuracy curves as one PNG.

python scripts/plot_runs.py outputs/infogan outputs/gan --labels InfoGAN GAN --out li_vs_gan.png
"""

import argparse

from _bootstrap import run_cli


def main():
    from infogan.runs import plot_run_dirs

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", help="run directories written by scripts/train.py")
    p.add_argument("--labels", nargs="+", help="one legend label per run (default: the folder names)")
    p.add_argument("--out", default="runs.png", help="the PNG to write (default runs.png)")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    args = p.parse_args()
    print(plot_run_dirs(args.runs, args.labels, args.out))


if __name__ == "__main__":
    run_cli(main)
