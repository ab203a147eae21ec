"""How long one image of a folder takes to decode (infogan.data.images.decode), at the reduced scale a
large JPEG decodes at and at full scale, side by side: a photo the size of a phone camera's, to the sides a
run trains on.

    python -m benchmarks.decode [--width 4032] [--height 3024] [--repeats 15]

A synthetic JPEG (a smooth gradient with noise, quality 90) is written to a temporary folder and decoded
each way in turn. Prints, for each side, the median milliseconds of each way, their ratio, and the largest
difference between their pixels (0 to 255).
"""

import statistics
import tempfile
import time
from contextlib import contextmanager

import numpy as np

from infogan import InfoGANError, cli


@contextmanager
def full_scale():
    """JPEGs decoded at full scale within the block: Pillow's draft, which picks the reduced scale, off."""
    from PIL import JpegImagePlugin

    draft = JpegImagePlugin.JpegImageFile.draft
    JpegImagePlugin.JpegImageFile.draft = lambda *args: None
    try:
        yield
    finally:
        JpegImagePlugin.JpegImageFile.draft = draft


def main(args):
    from PIL import Image

    from infogan.data.images import decode

    if min(args.width, args.height) < 64 or args.repeats < 1:
        raise InfoGANError("--width and --height must be at least 64 and --repeats at least 1")
    rng = np.random.default_rng(0)
    gradient = np.linspace(0, 200, args.width)[None, :, None] + np.linspace(0, 50, args.height)[:, None, None]
    photo = (gradient + rng.normal(0, 8, (args.height, args.width, 3))).clip(0, 255).astype(np.uint8)
    with tempfile.TemporaryDirectory() as folder:
        path = f"{folder}/photo.jpg"
        Image.fromarray(photo).save(path, quality=90)
        for side in (32, 64):
            times = {"reduced": [], "full": []}
            for _ in range(args.repeats):
                for way in times:
                    started = time.perf_counter()
                    if way == "full":
                        with full_scale():
                            full = decode(path, side, 3, "folder")
                    else:
                        reduced = decode(path, side, 3, "folder")
                    times[way].append(1e3 * (time.perf_counter() - started))
            fast, slow = statistics.median(times["reduced"]), statistics.median(times["full"])
            difference = int(np.abs(full.astype(int) - reduced.astype(int)).max())
            print(
                f"{args.width}x{args.height} to {side}x{side}: reduced {fast:.1f} ms, full {slow:.1f} ms (medians of "
                f"{args.repeats}), {slow / fast:.1f}x; largest pixel difference {difference}"
            )


if __name__ == "__main__":
    parser = cli.Parser(__doc__)
    parser.add_argument("--width", type=int, default=4032, help="the photo's width (default 4032)")
    parser.add_argument("--height", type=int, default=3024, help="the photo's height (default 3024)")
    parser.add_argument("--repeats", type=int, default=15, help="decodes each way for each side (default 15)")
    cli.run(main, parser.parse_args())
