"""A run directory: what it holds, who may write it, and how a new one replaces an old one.

    config.json   every setting of the run               data.json   where its images came from
    log.jsonl     one JSON record per logged step        curves.png  the log, drawn
    grids/        latent traversals during training      checkpoints/step_NNNNNNN/  the training state
    neighbours.npy  each training image's nearest, for the default neighbour views (infogan.data.neighbours)
    samples/, metrics.json, confusion.png                written by scripts/sample.py and evaluate.py
    export/       the inference models of scripts/export.py
    .lock         held (flock) by the process training the run; the kernel releases it on any exit

Only a trainer writes a run, and only one at a time: it holds the lock, and a second trainer, resume or
overwrite is refused with the holder's process id. A new run is written into a staging folder beside its
final place and moved there only once it has passed every start-up check and done its start-up work (the
neighbour table), so a mistake or a stop at start-up leaves nothing behind, and --overwrite removes the
old run only after the new one is in place.
"""

import errno
import fcntl
import json
import os
import re
import shlex
import shutil
import sys

from infogan import InfoGANError
from infogan.data import neighbours
from infogan.files import abandoned, append_line, folder_identity, followed, fsync_dir, fsync_file, write_text

OWN_NAMES = {
    "config.json",
    "data.json",
    "log.jsonl",
    "curves.png",
    "grids",
    "checkpoints",
    neighbours.FILE,
    "samples",
    "metrics.json",
    "confusion.png",
    "export",
    ".lock",
}
LOCK = ".lock"
STAGING = re.compile(r"\..+\.new-\d+$")  # a new run being staged: .NAME.new-PID (NewRun)


class RunLock:
    """An exclusive flock on a run's .lock file, naming the holder's process id inside it."""

    def __init__(self, run_dir):
        self.path = os.path.join(run_dir, LOCK)
        self.fd = None

    def acquire(self, what):
        try:
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise InfoGANError(f"cannot lock {self.path}: {e.strerror}") from None
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self.fd)
            self.fd = None
            pid = holder(os.path.dirname(self.path)) or "unknown"
            raise InfoGANError(
                f"{what} {os.path.dirname(self.path)} is in use by process {pid}, which is training it: "
                "wait for it to finish or stop it first"
            ) from None
        except OSError as e:  # a file system without locks (an NFS mount without its lock service): train on
            print(
                f"warning: {self.path} cannot be locked ({e.strerror}): nothing stops a second trainer of this run",
                file=sys.stderr,
            )
        os.ftruncate(self.fd, 0)
        os.write(self.fd, f"{os.getpid()}\n".encode())
        return self

    def release(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def holder(run_dir):
    """The process id training the run, or None when nobody holds its lock."""
    path = os.path.join(run_dir, LOCK)
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    except BlockingIOError:
        text = os.pread(fd, 32, 0).decode(errors="replace").strip()
        return int(text) if text.isdigit() else "unknown"
    except OSError:  # no locks on this file system: nobody can be seen holding it
        return None
    finally:
        os.close(fd)


OUT_HINT = ": pass --out with a folder you can write"  # sample.py and export.py on a run this user cannot write


def check_unreplaced(run_dir, identity, what):
    """Refuses to write into `run_dir` where another folder stands at its path than when `what` began
    (`identity`: files.folder_identity then): an --overwrite or a move meanwhile, whose new run must not get
    results of the old one."""
    if folder_identity(run_dir) != identity:
        raise InfoGANError(
            f"{run_dir} was replaced or moved while {what} (by --overwrite?): nothing was written there; "
            "run the command again"
        )


def note_if_training(run_dir, checkpoint):
    """Says so on stderr when a trainer holds the run: readers then see its latest complete checkpoint."""
    pid = holder(run_dir)
    if pid:
        print(
            f"note: {run_dir} is being trained (process {pid}); reading its latest complete checkpoint, "
            f"{os.path.basename(checkpoint)}",
            file=sys.stderr,
        )


def is_run(path):
    """Whether `path` is recognisably a run of this project: a config.json that is a JSON object with a
    run's keys, and nothing but a run's own files and folders (and hidden temporary files)."""
    config = os.path.join(path, "config.json")
    try:
        with open(config) as f:
            values = json.load(f)
    except (OSError, ValueError):
        return False
    if not isinstance(values, dict) or not {"dataset", "seed", "batch_size"} <= set(values):
        return False
    return all(name in OWN_NAMES or name.startswith(".tmp-") for name in os.listdir(path))


def _contains(outer, inner):
    outer, inner = os.path.realpath(outer), os.path.realpath(inner)
    return inner == outer or inner.startswith(outer.rstrip(os.sep) + os.sep)


def check_new_run_dir(run_dir, overwrite, data_dir=None, numbered=False):
    """Refuses, before anything is written, a --run-dir that cannot take a new run (`numbered`: a default
    name, which takes the next free one if it is taken)."""
    # (The data folder itself as --run-dir is refused below: a folder that is not a run, or that holds the data.)
    if data_dir and _contains(data_dir, run_dir) and not _contains(run_dir, data_dir):
        raise InfoGANError(
            f"the run directory {run_dir} is inside the data folder {data_dir}: pass a --run-dir outside it (a "
            "folder's images are read recursively, and its grids would become training images)"
        )
    if numbered:
        return
    if os.path.exists(run_dir) and not os.path.isdir(run_dir):
        raise InfoGANError(f"--run-dir {run_dir} is a file, not a folder: give a folder for the run")
    taken = os.path.isdir(run_dir) and os.listdir(run_dir)
    if not taken:
        return
    if not overwrite:
        raise InfoGANError(
            f"run directory {run_dir} already exists: pass --resume {shlex.quote(run_dir)} to continue it, "
            "--overwrite to replace it, or another --run-dir"
        )
    protected = {
        "the current directory": os.getcwd(),
        "your home directory": os.path.expanduser("~"),
        "this project's checkout": os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    }
    if data_dir:
        protected["the data directory"] = data_dir
    for what, path in protected.items():
        if _contains(run_dir, path):
            raise InfoGANError(f"--overwrite refuses {run_dir}: it is or holds {what}")
    if os.path.isdir(os.path.join(run_dir, ".git")) or not is_run(run_dir):
        raise InfoGANError(
            f"--overwrite refuses {run_dir}: it is not a run of this project (it holds files that are not a "
            "run's); remove it yourself or choose another --run-dir"
        )
    who = holder(run_dir)
    if who:
        raise InfoGANError(f"run directory {run_dir} is in use by process {who}, which is training it")


class NewRun:
    """A run directory being created: staged beside its final place, moved there by `publish`. `numbered`:
    the name is the default one, not the user's: where it is taken, the run takes NAME-2, NAME-3, ...
    (runs started in the same second)."""

    def __init__(self, run_dir, numbered=False):
        self.final = followed(os.path.normpath(run_dir))  # a link: the run is staged and put where it points
        self.numbered = numbered
        parent, name = os.path.split(os.path.abspath(self.final))
        self.staging = os.path.join(parent, f".{name}.new-{os.getpid()}")
        self.lock = None
        try:
            os.makedirs(parent, exist_ok=True)
            _remove_abandoned(parent)
            os.makedirs(os.path.join(self.staging, "checkpoints"))
        except OSError as e:
            raise InfoGANError(f"cannot create run directory {run_dir}: {e.strerror}") from None
        self.lock = RunLock(self.staging).acquire("run directory")

    def publish(self, overwrite=False, data_dir=None):
        """Moves the staged run into place and returns where. What took the place while the run started up
        is never lost: a folder with files there is refused (`numbered`: the next free name is taken) or,
        with `overwrite`, checked again as at the start and replaced, and only then removed. Any failure
        removes the staged run."""
        try:
            if overwrite and os.path.isdir(self.final) and os.listdir(self.final):
                check_new_run_dir(self.final, overwrite, data_dir)
                self._replace()
            else:
                self._move_into_place()
        except BaseException:
            self.discard()
            raise
        fsync_dir(os.path.dirname(os.path.abspath(self.final)))
        return self.final

    def _move_into_place(self):
        names = [self.final] + [f"{self.final}-{i}" for i in range(2, 1000)] if self.numbered else [self.final]
        for name in names:
            try:
                os.rename(self.staging, name)  # atomic; replaces nothing or an empty folder, never one with files
            except OSError as e:
                if e.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR):
                    raise InfoGANError(f"cannot put the new run in place at {name}: {e.strerror}") from None
                continue
            self.final = name
            return
        raise InfoGANError(
            f"run directory {self.final} was created by another process while this run started: nothing was "
            "replaced; pass another --run-dir (or --overwrite to replace it)"
        )

    def _replace(self):
        old = f"{self.staging}.old"
        old_lock = RunLock(self.final).acquire("run directory")
        try:
            os.rename(self.final, old)
            try:
                os.rename(self.staging, self.final)
            except OSError:
                os.rename(old, self.final)
                raise
        except OSError as e:
            raise InfoGANError(f"cannot put the new run in place at {self.final}: {e.strerror}") from None
        finally:
            old_lock.release()
        shutil.rmtree(old, ignore_errors=True)

    def discard(self):
        if self.lock:
            self.lock.release()
        shutil.rmtree(self.staging, ignore_errors=True)


def _remove_abandoned(parent):
    """The staging folders of new runs in `parent` (.NAME.new-PID, of any NAME) that were left by a kill at
    start-up: a run's own files only, and a lock nobody holds (files.abandoned)."""
    for entry in filter(STAGING.match, os.listdir(parent)):
        path = os.path.join(parent, entry)
        try:
            own = all(name in OWN_NAMES or name.startswith(".tmp-") for name in os.listdir(path))
        except OSError:  # not a folder, or gone meanwhile
            continue
        if own and abandoned(path, lock=os.path.join(path, LOCK)):
            shutil.rmtree(path, ignore_errors=True)


class Log:
    """log.jsonl: one JSON record per logged step."""

    def __init__(self, run_dir):
        self.path = os.path.join(run_dir, "log.jsonl")

    def append(self, record):
        append_line(self.path, json.dumps(record))

    def sync(self):
        if os.path.exists(self.path):
            fsync_file(self.path)

    def read(self, warn=None):
        """The records, in order. A damaged line is skipped and reported through `warn` (never erasing the
        records after it); a last line cut short by a kill (no newline at its end) is dropped silently."""
        if not os.path.exists(self.path):
            return []
        with open(self.path, "rb") as f:
            raw = f.read()
        lines = raw.split(b"\n")
        cut_short = lines[-1]  # b"" when the file ends with a newline
        records = []
        for number, line in enumerate(lines[:-1], start=1):
            try:
                record = json.loads(line)
                if not isinstance(record, dict) or not isinstance(record.get("step"), int):
                    raise ValueError("not a step record")
                records.append(record)
            except ValueError:
                if warn:
                    warn(f"{self.path} line {number} is damaged and was skipped: {line[:60]!r}")
        if cut_short and warn:
            warn(f"{self.path} ends in a line cut short (a kill mid-write), dropped: {cut_short[:60]!r}")
        return records

    def rewrite(self, records):
        write_text(self.path, "".join(json.dumps(r) + "\n" for r in records), durable=True)


def read_log(run_dir):
    """The records of a finished or running run's log, for plots."""
    log = Log(run_dir)
    if not os.path.isfile(log.path):
        raise InfoGANError(f"{run_dir} has no log.jsonl: give run directories written by scripts/train.py")
    records = log.read()
    if not records:
        raise InfoGANError(f"{log.path} holds no step record yet")
    return records
