"""Writing files so that a write either completes or leaves the previous state: nothing half-written is
ever left behind, a failure (disk full, read-only, no permission) is one line naming what and why, and a
`durable` write is on the disk (fsync of the file and of its folder) before it counts as done."""

import errno
import fcntl
import functools
import os
import re
import shutil
import stat
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager, suppress

import numpy as np

from infogan import InfoGANError


def reason(error):
    """An OSError as words: 'No space left on device', 'Read-only file system', 'Permission denied'."""
    return error.strerror or str(error)


def write_error(path, error):
    return InfoGANError(f"cannot write {path}: {reason(error)}")


@contextmanager
def atomic_path(path, durable=False):
    """Yields a temporary path beside `path`; renames it to `path` only if the block succeeds. An OSError
    inside the block or in the rename becomes a one-line InfoGANError; the temporary file is removed."""
    folder, name = os.path.split(os.path.abspath(path))
    # Not mkstemp: its file is private (0600); a name of our own gets the usual permissions of the umask.
    tmp = os.path.join(folder, f".tmp-{uuid.uuid4().hex}-{name}")
    try:
        yield tmp
        if durable:
            fsync_file(tmp)
        os.replace(tmp, path)
        if durable:
            fsync_dir(folder)
    except OSError as e:
        raise write_error(path, e) from None
    finally:
        if os.path.lexists(tmp):
            os.remove(tmp)


def folder_identity(folder):
    """(device, inode) of `folder`, or None where there is none: a folder replaced or moved away since shows
    another identity at its path."""
    try:
        info = os.stat(folder)
    except OSError:
        return None
    return info.st_dev, info.st_ino


def followed(path):
    """`path`, or where it is a link (to a folder on a scratch disk), the path it names: a rename there would
    replace the link itself, and cannot cross to the other file system."""
    return os.path.realpath(path) if os.path.islink(path) else path


def known_home():
    """The home directory, or None where neither $HOME nor the user database names one (a container run under a
    user id of its own): os.path.expanduser then returns "~" itself, which joined to a path makes a folder named
    ~ wherever one stands."""
    home = os.path.expanduser("~")
    return home if os.path.isabs(home) else None


def cache_dir(name):
    """This project's cache folder NAME: under $XDG_CACHE_HOME/infogan, or ~/.cache/infogan without it, or
    where the home directory is not known or not writable (a container run under a user id of its own: HOME
    unset or /), under a private folder in the temporary directory."""
    if xdg := os.environ.get("XDG_CACHE_HOME"):
        return os.path.join(xdg, "infogan", name)
    home = known_home()
    usable = False
    if home:
        root = os.path.join(home, ".cache", "infogan")
        with suppress(OSError):
            os.makedirs(root, exist_ok=True)
        usable = os.access(root, os.W_OK)
    return os.path.join(root if usable else _temporary_cache(home), name)


@functools.cache
def _temporary_cache(home):
    """A cache folder in the temporary directory that this user alone owns and writes, said once a process.
    One there already that is not (a link, another user's, open to others) is passed over for a new one: a
    cache holds a compiled library that runs are about to load."""
    root = os.path.join(tempfile.gettempdir(), f"infogan-cache-{os.getuid()}")
    try:
        os.makedirs(root, mode=0o700, exist_ok=True)
        found = os.lstat(root)
        private = stat.S_ISDIR(found.st_mode) and found.st_uid == os.getuid() and not found.st_mode & 0o077
    except OSError:
        private = False
    if not private:
        root = tempfile.mkdtemp(prefix="infogan-cache-")
    why = f"the home directory {home} is not writable" if home else "no home directory is known"
    print(
        f"warning: {why}: caches go to {root}{'' if private else ' for this run alone'}; "
        "set XDG_CACHE_HOME to a folder of yours to keep them there",
        file=sys.stderr,
    )
    return root


def save_array(path, array):
    """np.save to `path`, whole or not at all (atomic_path)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.save(f, array)


def load_cache(path, shape, dtype):
    """A cached array, or None where there is none, or it is damaged or not of this shape and dtype (then the
    caller makes it again and saves it over)."""
    try:
        array = np.load(path)
    except (OSError, ValueError):
        return None
    return array if array.shape == shape and array.dtype == dtype else None


def save_cache(path, array, lost):
    """Writes a cached array. A cache is a convenience: failing to write it is a warning saying what the next
    run does again (`lost`), not an error."""
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        save_array(path, array)
    except (OSError, InfoGANError) as e:
        print(f"warning: {path} could not be written ({e}): the next run {lost}", file=sys.stderr)


def make_dirs(path):
    """os.makedirs(path, exist_ok=True), with a failure as one line."""
    try:
        os.makedirs(path, exist_ok=True)
    except FileExistsError:
        raise InfoGANError(f"cannot create {path}: it is a file, not a folder") from None
    except OSError as e:
        raise InfoGANError(f"cannot create {path}: {reason(e)}") from None


def write_text(path, text, durable=False):
    with atomic_path(path, durable) as tmp, open(tmp, "w") as f:
        f.write(text)


def append_line(path, line):
    """Appends one line; on failure the file is cut back to what it held, and the error is one line."""
    try:
        size = os.path.getsize(path) if os.path.exists(path) else 0
        with open(path, "a") as f:
            try:
                f.write(line + "\n")
                f.flush()
            except OSError:
                f.truncate(size)
                raise
    except OSError as e:
        raise write_error(path, e) from None


def fsync_file(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path):
    """Syncs a folder's entries (a rename into it). Some network and FUSE file systems cannot sync a folder
    (EINVAL): there, the files it holds were synced, and nothing more can be asked of it."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    except OSError as e:
        if e.errno not in (errno.EINVAL, errno.ENOTSUP):
            raise
    finally:
        os.close(fd)


def fsync_tree(path):
    """Every file under `path`, then every folder, deepest first."""
    for folder, _, names in os.walk(path, topdown=False):
        for name in names:
            fsync_file(os.path.join(folder, name))
        fsync_dir(folder)


STAGED = re.compile(r"\.tmp-[0-9a-f]{32}-")  # a staged_dir's folder: .tmp-ID-NAME


@contextmanager
def staging(final, quiet_for=60):
    """Yields a new hidden folder beside `final` (.tmp-ID-NAME) to fill, locked while the block runs and removed
    after it with whatever is left there. What killed writers left beside it (of any name) is removed first, once
    nobody holds its lock and it has been quiet for `quiet_for` seconds."""
    parent, name = os.path.split(final)
    os.makedirs(parent, exist_ok=True)
    for entry in os.listdir(parent):
        if STAGED.match(entry) and abandoned(os.path.join(parent, entry), quiet_for=quiet_for):
            shutil.rmtree(os.path.join(parent, entry), ignore_errors=True)
    tmp = os.path.join(parent, f".tmp-{uuid.uuid4().hex}-{name}")
    os.makedirs(tmp)
    lock = os.open(tmp, os.O_RDONLY)
    try:
        with suppress(OSError):  # a file system without locks: then nobody can take the folder for abandoned
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        yield tmp
    finally:
        os.close(lock)
        shutil.rmtree(tmp, ignore_errors=True)


@contextmanager
def staged_dir(final, durable=False, sole_writer=False):
    """Yields a new folder beside `final` to fill; when the block succeeds it replaces `final` (an older one of
    that name is removed only after), else it is removed with whatever it holds. Each call fills a `staging`
    folder of its own: writers of one `final` side by side never touch each other's (the last to finish wins,
    whole), and what a killed writer left is removed by the next writer there (`sole_writer`: the caller is the
    only one writing beside `final`, so without waiting for it to be quiet).
    A `final` that is a link is followed: its folder is replaced, the link kept."""
    final = followed(os.path.abspath(final))
    with staging(final, quiet_for=0 if sole_writer else 60) as tmp:
        yield tmp
        if durable:
            fsync_tree(tmp)
        _put_in_place(tmp, final)
        if durable:
            fsync_dir(os.path.dirname(final))


def _put_in_place(tmp, final):
    """Renames the folder `tmp` to `final`; a `final` there is first moved aside, and removed once `tmp` is in
    its place (or moved back). Another writer's folder put there in between is replaced in turn."""
    parent, name = os.path.split(os.path.abspath(final))
    for _ in range(100):
        old = os.path.join(parent, f".tmp-{uuid.uuid4().hex}-{name}")
        try:
            os.rename(final, old)
        except FileNotFoundError:
            old = None
        try:
            os.rename(tmp, final)
        except OSError as e:
            if old:
                with suppress(OSError):  # another writer's is there now: the older one is left for removal
                    os.rename(old, final)
            if e.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise
            continue
        if old:
            shutil.rmtree(old, ignore_errors=True)
        return
    raise OSError(errno.EBUSY, f"{final} was replaced by other writers 100 times over")


def abandoned(folder, lock=None, quiet_for=60):
    """Whether the staging folder `folder` was left by a writer that is gone: nobody holds a lock on it (on
    `lock`, a file of it, where given) and it has not changed for `quiet_for` seconds (a writer that has just made
    its folder takes the lock next). False where locks cannot be taken: nothing tells a live writer then."""
    try:
        if time.time() - os.stat(folder).st_mtime < quiet_for:
            return False
        fd = os.open(lock or folder, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def download(url, path, md5, timeout=60):
    """`url` into `path`, whole and matching `md5` or not at all: the bytes go to PATH.part-ID, which is renamed
    once complete and checked and removed otherwise, since a broken file at `path` would pass for the data
    (ID: a name of its own, for runs started together that download the same file side by side);
    a server that does not answer fails after `timeout` seconds. httpx (Paddle's own dependency) brings its
    certificates rather than relying on the system's. Returns why it failed, or None."""
    import hashlib

    import httpx

    from infogan.progress import progress

    print(f"downloading {url}", file=sys.stderr)
    part = f"{path}.part-{uuid.uuid4().hex[:12]}"
    digest = hashlib.md5()
    try:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with httpx.stream("GET", url, timeout=timeout, follow_redirects=True) as response:
            response.raise_for_status()
            size = int(response.headers.get("Content-Length") or 0) or None
            with (
                open(part, "wb") as f,
                progress(total=size, unit="B", unit_scale=True, desc=os.path.basename(path)) as bar,
            ):
                # The file as served, not decoded; a body cut short raises (httpx checks Content-Length).
                for chunk in response.iter_raw(1 << 20):
                    f.write(chunk)
                    digest.update(chunk)
                    bar.update(len(chunk))
        if digest.hexdigest() != md5:
            return f"{url} arrived with MD5 {digest.hexdigest()}, not its own {md5}"
        os.replace(part, path)
    except (OSError, httpx.HTTPError) as e:  # the network's (refused, timed out, cut short, 404) or the disk's
        return f"{url}: {str(e).splitlines()[0] if str(e).strip() else type(e).__name__}"
    finally:
        if os.path.exists(part):
            os.remove(part)
    return None


def download_all(files):
    """Each (url, path, md5) of `files` in turn, as `download` does; stops at the first that fails and returns
    why, or None."""
    for url, path, md5 in files:
        failure = download(url, path, md5)
        if failure:
            return failure
    return None
