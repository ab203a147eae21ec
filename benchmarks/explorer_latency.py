"""How long the latent explorer takes to answer, as a browser would ask it: one image, and one sweep.

    python -m benchmarks.explorer_latency PATH [--requests 200]

PATH is a run directory or an exported folder. The server runs in this process on a free port; requests
come one after another over HTTP from a client thread, each with new random codes. Prints the median and
95th-percentile times, in milliseconds, of the whole request (server work and HTTP on loopback).
"""

import statistics
import time
import urllib.request

import numpy as np

from infogan import InfoGANError, cli


def timed(url):
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=30) as response:
        response.read()
    return 1e3 * (time.perf_counter() - started)


def main(args):
    import infogan
    from infogan.explorer import serve_in_background

    if args.requests < 10:
        raise InfoGANError("--requests must be at least 10")
    model = infogan.load(args.path)
    server = serve_in_background(model)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    rng = np.random.default_rng(0)
    try:
        for kind in ("image", "sweep"):
            times = []
            for i in range(args.requests):
                cat = ",".join(str(rng.integers(code.dim)) for code in model.spec.cat)
                cont = ",".join(f"{v:.2f}" for v in rng.uniform(-2, 2, model.spec.cont_dim))
                query = "&".join(
                    p for p in (f"cat={cat}" if cat else "", f"cont={cont}" if cont else "", f"seed={i}") if p
                )
                code = f"&code={model.codes[0]}" if kind == "sweep" else ""
                times.append(timed(f"{base}/api/{kind}?{query}{code}"))
            times = times[5:]  # the first requests warm the caches
            p95 = float(np.percentile(times, 95))
            median = statistics.median(times)
            print(f"{kind:<6} {median:6.1f} ms median, {p95:6.1f} ms 95th percentile ({len(times)} requests)")
    finally:
        server.shutdown()


if __name__ == "__main__":
    parser = cli.Parser(__doc__)
    parser.add_argument("path", help="a run directory or an exported folder")
    parser.add_argument("--requests", type=int, default=200, help="requests of each kind (default 200)")
    cli.run(main, parser.parse_args())
