"""What the scripts share: argument parsers whose mistakes are one line, the training flags built from
TrainConfig's fields, and `run`, which applies the thread settings before Paddle is imported and turns a
user's mistake (InfoGANError) or a stop (Ctrl-C, SIGTERM) into one `error:` line and an exit status."""

import argparse
import dataclasses
import os
import sys
import types
import typing

from infogan import InfoGANError
from infogan.config import DEVICES, TrainConfig, flag
from infogan.device import apply_thread_settings, ignore_paddle_warnings, raise_on_sigterm, stop_signal


class Parser(argparse.ArgumentParser):
    """argparse, with its errors as one line and a hint to --help instead of the whole usage."""

    def __init__(self, doc, **kwargs):
        super().__init__(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter, **kwargs)
        self.add_argument("--debug", action="store_true", help="show tracebacks")

    def error(self, message):
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def path(text):
    """A path argument with a leading ~ expanded, as the shell does not after `=` (`--run-dir=~/runs/a`) or
    in quotes: taken literally, it made a folder named ~ in the current directory."""
    return os.path.expanduser(text)


def add_config_flags(parser):
    """One flag per TrainConfig field, with its help and default; only the flags given reach the result."""
    defaults = TrainConfig()
    for f in dataclasses.fields(TrainConfig):
        meta, default = f.metadata, getattr(defaults, f.name)
        shown = " ".join(map(str, default)) if isinstance(default, list) else default
        help_text = meta["help"] + (f" (default {shown})" if default is not None and default is not False else "")
        kind = path if meta["path"] else _base_type(f.type)
        options = {"help": help_text, "default": argparse.SUPPRESS}
        if kind is bool:
            parser.add_argument(flag(f.name), action="store_true", **options)
            continue
        if kind is list:
            options.update(nargs="*", type=int)
        else:
            options["type"] = kind
        if meta["choices"]:
            options["metavar"] = "{" + ",".join(meta["choices"]) + "}"
        elif meta["metavar"]:
            options["metavar"] = meta["metavar"]
        parser.add_argument(flag(f.name), **options)


def add_device_flag(parser):
    """--device for the scripts that read a trained run (sample.py, evaluate.py)."""
    parser.add_argument(
        "--device", default="cpu", choices=DEVICES, help="auto (a GPU when there is one), cpu or gpu (default cpu)"
    )


def _base_type(annotation):
    """int for `int | None`, list for `list[int]`, and so on."""
    if isinstance(annotation, types.UnionType):
        annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
    return typing.get_origin(annotation) or annotation


def run(main, args):
    """Calls main(args) with the thread settings applied and Paddle's import noise silenced; an
    InfoGANError becomes `error: ...` on stderr and its exit status, and a stop by Ctrl-C or SIGTERM
    (outside training's loop, which saves first) `error: stopped by SIGINT` and 128 + the signal's number
    (--debug: the traceback)."""
    if os.name != "posix":
        # Run directories rest on POSIX: flock, fsync of folders, signals held back among ranks.
        print("error: this project needs a POSIX system (Linux, macOS); on Windows, run it under WSL", file=sys.stderr)
        sys.exit(2)
    apply_thread_settings()
    raise_on_sigterm()
    ignore_paddle_warnings()
    debug = vars(args).pop("debug", False)
    try:
        return main(args)
    except InfoGANError as e:
        if debug:
            raise
        print(f"error: {e}", file=sys.stderr)
        sys.exit(e.exit_code)
    except KeyboardInterrupt as e:
        if debug:
            raise
        signum = stop_signal(e)
        print(f"error: stopped by {signum.name}", file=sys.stderr)
        sys.exit(128 + signum)
