"""Reading finished runs back: their logs, for plots that compare runs."""

import json
import os

from infogan import InfoGANError
from infogan.sampling import read_config
from infogan.viz import plot_runs


def read_records(path):
    """The records of a log.jsonl, up to a last line cut short by a kill (nothing after it was written)."""
    records = []
    with open(path) as f:
        for line in f:
            try:
                records.append(json.loads(line))
            except ValueError:
                break
    return records


def read_log(run_dir):
    path = os.path.join(run_dir, "log.jsonl")
    if not os.path.isfile(path):
        raise InfoGANError(f"{run_dir} has no log.jsonl: give run directories written by scripts/train.py")
    records = read_records(path)
    if not records:
        raise InfoGANError(f"{path} is empty: the run logged no step yet")
    return records


def plot_run_dirs(run_dirs, labels, out):
    labels = labels or [os.path.basename(os.path.normpath(d)) for d in run_dirs]
    if len(labels) != len(run_dirs):
        raise InfoGANError(f"--labels gives {len(labels)} labels for {len(run_dirs)} runs: give one per run")
    categories = {read_config(d).categories for d in run_dirs}
    if len(categories) != 1:
        raise InfoGANError(
            f"the runs have different numbers of categories {sorted(categories)}: compare like with like"
        )
    plot_runs([(label, read_log(d)) for label, d in zip(labels, run_dirs, strict=True)], out, categories.pop())
    return out
