"""Writing outputs so that an interruption never leaves a half-written file behind."""

import os
import shutil
import uuid
from contextlib import contextmanager


@contextmanager
def atomic_path(path):
    """Yields a temporary path beside `path`; renames it to `path` only if the block succeeds."""
    folder, name = os.path.split(os.path.abspath(path))
    # Not mkstemp: its file is private (0600); a name of our own gets the usual permissions of the umask.
    tmp = os.path.join(folder, f".tmp-{uuid.uuid4().hex}-{name}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_text(path, text):
    with atomic_path(path) as tmp, open(tmp, "w") as f:
        f.write(text)


def replace_dir(tmp_dir, final_dir):
    """Moves a finished directory into place, replacing any older one of the same name."""
    if os.path.exists(final_dir):
        old = final_dir + ".old"
        shutil.rmtree(old, ignore_errors=True)
        os.rename(final_dir, old)
        os.rename(tmp_dir, final_dir)
        shutil.rmtree(old)
    else:
        os.rename(tmp_dir, final_dir)
