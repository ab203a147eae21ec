"""Turn a trained model's codes in the browser: `python scripts/explore.py RUN_DIR` (or an exported folder)
serves a page at http://127.0.0.1:8000/ with a selector per categorical code, a slider per continuous code
and a button for new noise. Ctrl-C stops it."""

from infogan import InfoGANError, cli


def main(args):
    import infogan
    from infogan.explorer import serve, url

    if not 0 <= args.port <= 65535:
        raise InfoGANError(f"--port must be a whole number from 0 to 65535, not {args.port}")
    model = infogan.load(args.path)
    server = serve(model, args.host, args.port)
    print(f"serving {args.path} at {url(server)} (Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("stopped")
    finally:
        server.server_close()


if __name__ == "__main__":
    parser = cli.Parser(__doc__)
    parser.add_argument(
        "path", type=cli.path, help="a run directory written by scripts/train.py, or a folder of scripts/export.py"
    )
    parser.add_argument("--port", type=int, default=8000, help="default 8000; 0 picks a free port")
    parser.add_argument(
        "--host", default="127.0.0.1", help="default 127.0.0.1 (this machine only); 0.0.0.0 or :: for all its networks"
    )
    cli.run(main, parser.parse_args())
