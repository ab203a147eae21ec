"""How well Q's categorical code classifies digits it never saw labels for: accuracy, NMI, confusion."""

import json
import os

import numpy as np
import paddle

from infogan.data import load_test_split
from infogan.files import write_text
from infogan.latent import LatentSpec
from infogan.metrics import accuracy, contingency, nmi
from infogan.programs import build_encode
from infogan.runtime import executor, latest_checkpoint, load_state
from infogan.sampling import read_config
from infogan.viz import plot_confusion

BATCH = 500


def categorise(exe, encode_step, images):
    """Q's most probable category for each image, in batches through the encode program."""
    fetch = [encode_step.fetches["cat_probs"]]
    probs = [
        exe.run(encode_step.program, feed={"images": images[i : i + BATCH]}, fetch_list=fetch)[0]
        for i in range(0, len(images), BATCH)
    ]
    return np.concatenate(probs).argmax(axis=1)


def score(pred, labels, categories):
    """Accuracy under the best category -> label mapping, NMI, per-label accuracy and the confusion matrix."""
    n_labels = int(labels.max()) + 1
    acc, mapping = accuracy(pred, labels, categories, n_labels)
    mapped = np.array([mapping.get(int(p), -1) for p in pred])
    per_label = {int(k): float(np.mean(mapped[labels == k] == k)) for k in range(n_labels)}
    return {
        "accuracy": float(acc),
        "nmi": nmi(pred, labels),
        "per_label_accuracy": per_label,
        "category_to_label": {int(c): int(lab) for c, lab in mapping.items()},
        "confusion": contingency(pred, labels, categories, n_labels).tolist(),
        "images": int(len(labels)),
    }


def evaluate_run(run_dir, data_dir=None, device="cpu"):
    """Scores a run's latest checkpoint; writes metrics.json and confusion.png into the run directory."""
    cfg = read_config(run_dir)
    checkpoint = latest_checkpoint(run_dir)
    images, labels, source = load_test_split(cfg.dataset, data_dir)
    spec = LatentSpec.from_config(cfg)
    exe = executor(device)
    startup = paddle.static.Program()
    encode_step = build_encode(spec, cfg, startup)
    exe.run(startup)
    load_state(checkpoint, encode_step.program)
    metrics = score(categorise(exe, encode_step, images), labels, spec.cat.dim)
    metrics.update(checkpoint=os.path.basename(checkpoint), data=source)
    write_text(os.path.join(run_dir, "metrics.json"), json.dumps(metrics, indent=2) + "\n")
    plot_confusion(
        np.array(metrics["confusion"]),
        metrics["category_to_label"],
        metrics["accuracy"],
        os.path.join(run_dir, "confusion.png"),
    )
    return metrics


def table(metrics):
    """A short text table of the metrics, for the terminal."""
    lines = [
        f"data: {metrics['data']}",
        f"checkpoint: {metrics['checkpoint']}",
        f"accuracy {metrics['accuracy']:.4f}   NMI {metrics['nmi']:.4f}   ({metrics['images']} images)",
        "label     " + " ".join(f"{k:>5}" for k in metrics["per_label_accuracy"]),
        "accuracy  " + " ".join(f"{v:5.3f}" for v in metrics["per_label_accuracy"].values()),
    ]
    return "\n".join(lines)
