"""The networks' convolutions on the CPU, each pass one matrix product over the whole batch
(batched_conv.cc says why): Paddle C++ operators with their gradients, built with the machine's C++
compiler at first use and cached; later runs load the cached library directly, in well under a second.

`ops()` gives the built module, or None where the layers must use Paddle's own kernels: on a GPU (the
operators run on the CPU only), or when the build fails (no C++ compiler): then with a one-line warning,
once, since training still works, only slower.
"""

import contextlib
import functools
import hashlib
import json
import os
import subprocess
import sys

import paddle

from infogan import InfoGANError
from infogan.files import cache_dir, known_home, write_text

SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "batched_conv.cc")
NAME = "infogan_batched_conv"


def ops():
    if not paddle.get_device().startswith("cpu"):
        return None
    return _built()


def conv2d(x, weight, stride, padding):
    return ops().batched_conv2d(x, weight, stride, padding, *_wanted_gradients(x, weight))


def conv2d_transpose(x, weight, stride, padding):
    return ops().batched_conv2d_transpose(x, weight, stride, padding, *_wanted_gradients(x, weight))


def _wanted_gradients(x, weight):
    """Whether the weight's and the input's gradients are needed: not for D's weights in the G+Q step, nor
    for the fed images of the D step; the operators skip those products."""
    return not weight.stop_gradient, not x.stop_gradient


@functools.cache
def _built():
    build_dir = cache_dir(f"batched_conv-paddle{paddle.__version__}")
    libs = os.path.join(os.path.dirname(paddle.__file__), "libs")  # Paddle's own MKL: cblas_sgemm
    flags = {
        "extra_cxx_cflags": ["-O3", "-fopenmp"],
        "extra_ldflags": ["-fopenmp", f"-L{libs}", "-l:libmklml_intel.so", f"-Wl,-rpath,{libs}"],
    }
    stamp_path = os.path.join(build_dir, "built.json")
    try:
        import fcntl  # POSIX only: elsewhere the ImportError falls back to Paddle's kernels, as a failed build

        os.makedirs(build_dir, exist_ok=True)
        # One build at a time (two runs started together share the cache); Paddle's build chatter, which
        # its build process writes to the terminal, kept in a file and shown only if the build fails.
        with open(os.path.join(build_dir, "lock"), "w") as lock, _output_to(os.path.join(build_dir, "build.log")):
            with contextlib.suppress(OSError):  # no locks on this file system (NFS without them): build unlocked
                fcntl.flock(lock, fcntl.LOCK_EX)
            stamp = _stamp(flags)
            if _read(stamp_path) == stamp:
                with contextlib.suppress(Exception):  # a library gone or unloadable is built again below
                    return _load_built(os.path.join(build_dir, NAME))
            module = _compile(build_dir, flags)
            with contextlib.suppress(InfoGANError):  # unwritten, the next run builds again
                write_text(stamp_path, json.dumps(stamp))
            return module
    except Exception as e:  # the compiler's, setuptools' and the loader's errors have no common type
        reason = _first_error(os.path.join(build_dir, "build.log")) or (str(e).strip() or type(e).__name__)[:200]
        print(f"warning: batched CPU convolutions not built ({reason}): Paddle's own, slower kernels", file=sys.stderr)
        return None


SETUP = """from paddle.utils.cpp_extension import BuildExtension, CppExtension, setup

setup(
    name={name!r},
    ext_modules=[
        CppExtension(sources=[{source!r}], extra_compile_args={{"cxx": {cflags!r}}}, extra_link_args={ldflags!r})
    ],
    cmdclass={{"build_ext": BuildExtension.with_options(output_dir={output!r}, no_python_abi_suffix=True)}},
)
"""


def _compile(build_dir, flags):
    """Builds the library into build_dir/NAME and loads it, as Paddle's cpp_extension.load does, but runs its
    setup script without load's shell command (`cd DIR && PYTHON SETUP build`, unquoted), which a space in
    the cache's or the interpreter's path breaks (a home folder named "Jane Doe")."""
    script = os.path.join(build_dir, f"{NAME}_setup.py")
    write_text(
        script,
        SETUP.format(
            name=NAME,
            source=SOURCE,
            cflags=flags["extra_cxx_cflags"],
            ldflags=flags["extra_ldflags"],
            output=os.path.join(build_dir, NAME),
        ),
    )
    # setuptools reads ~/.pydistutils.cfg, and fails where no home is known (HOME unset, a user id with no name).
    env = None if known_home() else dict(os.environ, HOME=build_dir)
    subprocess.run([sys.executable, script, "build"], cwd=build_dir, check=True, env=env)
    return _load_built(os.path.join(build_dir, NAME))


def _stamp(flags):
    """What the cached library was built from. A build starts a Python process that imports Paddle and asks
    setuptools whether to rebuild (3 seconds on a 2-core machine, every run); a library built from this
    source's bytes with these flags against this Paddle is loaded without asking."""
    with open(SOURCE, "rb") as f:
        source = hashlib.sha256(f.read()).hexdigest()
    return {"source_sha256": source, "flags": flags, "paddle": paddle.__file__, "python": sys.version}


def _read(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _load_built(module_dir):
    """The built library's operators registered and its Python module imported, as Paddle's `load` ends."""
    from paddle.utils.cpp_extension.extension_utils import _import_module_from_library

    return _import_module_from_library(NAME, module_dir)


@contextlib.contextmanager
def _output_to(path):
    """Standard output and error, of this process and of those it starts, into the file `path`."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with open(path, "w") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            for fd, copy in zip((1, 2), saved, strict=True):
                os.dup2(copy, fd)
                os.close(copy)


def _first_error(log_path):
    """The build log's first line that reports an error, if there is a log and such a line."""
    try:
        with open(log_path) as f:
            return next((line.strip()[:200] for line in f if "error" in line.lower()), None)
    except OSError:
        return None
