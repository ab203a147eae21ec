"""Lets `python scripts/X.py` import the infogan package from the checkout, and turns user errors into one line."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run_cli(main):
    """Calls main(); an InfoGANError becomes `error: ...` on stderr and its exit status (--debug: traceback)."""
    from infogan import InfoGANError

    try:
        main()
    except InfoGANError as e:
        if "--debug" in sys.argv:
            raise
        print(f"error: {e}", file=sys.stderr)
        sys.exit(e.exit_code)
