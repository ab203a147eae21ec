"""Scoring a run: how well each of Q's categorical codes classifies labelled images it never saw labels for
(accuracy under the best one-to-one mapping, NMI, per-label accuracy, the confusion matrix)."""

import dataclasses
import json
import os
import shlex
import sys

import numpy as np

from infogan import InfoGANError
from infogan.config import check_data_dir, read_config
from infogan.files import write_text
from infogan.metrics import accuracy, contingency, nmi

BATCH = 500


def categorise(exe, encode_step, spec, images):
    """Q's most probable value of each categorical code for each image: one array per code."""
    if not spec.cat:
        return []
    fetch = [encode_step.fetches["cat_probs"]]
    probs = np.concatenate(
        [
            exe.run(encode_step.program, feed={"images": images[i : i + BATCH]}, fetch_list=fetch)[0]
            for i in range(0, len(images), BATCH)
        ]
    )
    blocks = np.split(probs, np.cumsum([code.dim for code in spec.cat])[:-1], axis=1)
    return [block.argmax(axis=1) for block in blocks]


def seen_in_training(run_dir, cfg, images):
    """How many of `images` the run trained on, where its own data are read quietly (the offline MNIST
    sample, or a --data-dir it named that is still there); else None."""
    from infogan.data import load_dataset, mnist, run_record, unlike

    record = run_record(run_dir)
    if not record or not (cfg.data_dir or record.get("source") == mnist.OFFLINE_SOURCE):
        return None
    try:
        own = load_dataset(cfg, record)
    except InfoGANError:
        return None
    if unlike(record, own):
        return None
    trained = {image.tobytes() for image in own.train_images}
    return sum(image.tobytes() in trained for image in images)


def score(pred, labels, categories):
    """Accuracy under the best category -> label mapping, NMI, per-label accuracy and the confusion matrix."""
    n_labels = int(labels.max()) + 1
    acc, mapping = accuracy(pred, labels, categories, n_labels)
    mapped = np.array([mapping.get(int(p), -1) for p in pred])
    per_label = {int(k): float(np.mean(mapped[labels == k] == k)) for k in range(n_labels) if np.any(labels == k)}
    return {
        "accuracy": float(acc),
        "nmi": nmi(pred, labels),
        "per_label_accuracy": per_label,
        "category_to_label": {int(c): int(lab) for c, lab in mapping.items()},
        "confusion": contingency(pred, labels, categories, n_labels).tolist(),
        "images": int(len(labels)),
    }


def score_run(run_dir, data_dir=None, device="cpu", quality=True):
    """Scores a run's latest checkpoint on its validation images: each categorical code's accuracy and NMI,
    and with `quality`, its samples' quality (infogan.quality; this reads the training images too); returns
    the metrics (save_metrics writes them)."""
    cfg = read_config(run_dir)
    if not data_dir:
        check_data_dir(run_dir, cfg)
    # Paddle's import takes seconds: only once the run directory has passed.
    from infogan.api import own_static_scope

    with own_static_scope():
        return _score(run_dir, cfg, data_dir, device, quality)


def _score(run_dir, cfg, data_dir, device, quality):
    from infogan.checkpoints import latest, load_inference_state
    from infogan.data import load_dataset, load_validation, run_record, to_input, unlike
    from infogan.device import executor
    from infogan.latent import LatentSpec
    from infogan.nets import NetSpec
    from infogan.programs import build_inference
    from infogan.rundir import note_if_training

    checkpoint = latest(run_dir)
    note_if_training(run_dir, checkpoint)
    spec = LatentSpec.from_config(cfg)
    exe = executor(device)  # before the data, whose first decoding (CelebA's) can take minutes: --device is told first
    record = None if data_dir else run_record(run_dir)  # a --data-dir given scores those images, as asked
    data = None
    if quality:
        try:
            data = load_dataset(dataclasses.replace(cfg, data_dir=data_dir or cfg.data_dir), record)
        except InfoGANError as e:  # the validation images alone (a test split by itself) still give accuracy
            print(f"note: samples not judged, which needs the training images ({e})", file=sys.stderr)
            quality = False
    data = data or load_validation(cfg, data_dir, record)
    if record and (why := unlike(record, data, validation_only=data.train_images is None)):
        raise InfoGANError(
            f"the data found are not {run_dir}'s own: {why}; pass --data-dir with the run's data (or with others "
            "to score it on them)"
        )
    labelled = data.val_labels is not None
    unlabelled = f"{cfg.dataset} images have no labels" + (
        " (a run trained with --folder-labels has its subfolders')" if cfg.dataset == "folder" else ""
    )
    if not labelled and not quality:
        raise InfoGANError(
            f"{unlabelled}, so there is no accuracy to score: drop --accuracy-only for the samples' spread, and "
            "draw the run's grids with scripts/sample.py"
        )
    if tuple(data.val_images.shape[1:]) != cfg.image_shape:
        raise InfoGANError(f"the images in {data.source} are {data.val_images.shape[1:]}, the run's {cfg.image_shape}")
    startup, generate_step, encode_step = build_inference(cfg, spec)
    exe.run(startup)
    load_inference_state(checkpoint, encode_step.program)
    load_inference_state(checkpoint, generate_step.program)
    value_range = NetSpec.from_config(cfg, spec).value_range
    metrics = {"checkpoint": os.path.basename(checkpoint), "data": f"{data.source}; validation: {data.validation}"}
    if data.label_names:
        metrics["label_names"] = data.label_names
    if data_dir and labelled and (seen := seen_in_training(run_dir, cfg, data.val_images)):
        metrics["validation_images_trained_on"] = seen
        print(
            f"note: {seen} of the {len(data.val_images)} validation images in {data_dir} are among the run's own "
            "training images: its scores are not of unseen images alone",
            file=sys.stderr,
        )
    if not labelled:
        print(
            f"note: {unlabelled}: Q's codes are not scored; judge them by the run's grids (scripts/sample.py)",
            file=sys.stderr,
        )
    if spec.cat and labelled:
        images = to_input(data.val_images, value_range)
        predictions = categorise(exe, encode_step, spec, images)
        codes = [score(pred, data.val_labels, code.dim) for pred, code in zip(predictions, spec.cat, strict=True)]
        best = max(range(len(codes)), key=lambda i: codes[i]["accuracy"])
        metrics.update(codes[best], best_code=best + 1, codes=codes if len(codes) > 1 else None)
    if quality:
        from infogan.quality import sample_quality, sample_spread

        metrics["sample_spread"] = sample_spread(exe, generate_step, spec, data.val_images, value_range, cfg.seed)
        if labelled:
            metrics["sample_quality"] = sample_quality(exe, generate_step, spec, data, value_range, cfg.seed)
    metrics["training"] = training_summary(run_dir)
    return metrics


def save_metrics(run_dir, metrics, identity):
    """metrics.json and, for labelled images, confusion.png (of the best code) into the run directory, if it
    is the folder that was scored (`identity`: files.folder_identity before score_run)."""
    from infogan.rundir import check_unreplaced

    check_unreplaced(run_dir, identity, "it was evaluated")
    write_text(os.path.join(run_dir, "metrics.json"), json.dumps(metrics, indent=2) + "\n")
    if "confusion" in metrics:
        from infogan.figures import plot_confusion

        plot_confusion(
            np.array(metrics["confusion"]),
            metrics["category_to_label"],
            metrics["accuracy"],
            os.path.join(run_dir, "confusion.png"),
            title=f"Unsupervised classification by Q's categorical code {metrics['best_code']}",
        )


def training_summary(run_dir, target=0.95, last=200):
    """From the run's log: the first step whose validation accuracy reached `target` and the training
    minutes it took, and L_I's mean over the last `last` steps."""
    from infogan.rundir import Log

    records = Log(run_dir).read()
    if not records:
        return {}
    reached = next((r for r in records if r.get("accuracy", 0) >= target), None)
    tail = [r for r in records if r["step"] > records[-1]["step"] - last]
    return {
        "steps": records[-1]["step"],
        f"first_step_at_{target:g}": reached["step"] if reached else None,
        f"minutes_to_{target:g}": round(reached["elapsed_s"] / 60, 2) if reached and "elapsed_s" in reached else None,
        "minutes": round(records[-1]["elapsed_s"] / 60, 2) if "elapsed_s" in records[-1] else None,
    } | {f"{key}_last": float(np.mean([r[key] for r in tail])) for key in ("L_I_cat", "L_I_cont") if key in tail[-1]}


def table(metrics):
    """A short text table of the metrics, for the terminal."""
    lines = [f"data: {metrics['data']}", f"checkpoint: {metrics['checkpoint']}"]
    if "accuracy" in metrics:
        for i, code in enumerate(metrics["codes"] or [metrics]):
            name = f"categorical code {i + 1}: " if metrics["codes"] else ""
            lines.append(f"{name}accuracy {code['accuracy']:.4f}   NMI {code['nmi']:.4f}   ({code['images']} images)")
        lines += [
            f"per label (categorical code {metrics['best_code']}):",
            "label     " + " ".join(f"{k:>5}" for k in metrics["per_label_accuracy"]),
            "accuracy  " + " ".join(f"{v:5.3f}" for v in metrics["per_label_accuracy"].values()),
        ]
        if "label_names" in metrics:
            lines.append("labels: " + ", ".join(f"{i} {name}" for i, name in enumerate(metrics["label_names"])))
    quality = metrics.get("sample_quality")
    if quality:
        lines.append(
            f"samples: classifier score {quality['classifier_score']:.2f} (real images "
            f"{quality['classifier_score_of_real_images']:.2f}), Frechet distance {quality['frechet_distance']:.2f} "
            f"(real vs real {quality['frechet_distance_real_vs_real']:.2f}, "
            f"with even labels {quality['frechet_distance_even_labels_vs_real']:.2f}); judged by a classifier "
            f"{quality['classifier_validation_accuracy']:.2%} right on the validation images"
        )
        if "spread_within_labels" in quality:
            lines.append(
                f"samples: spread of the classifier's features within each label {quality['spread_within_labels']:.1f} "
                f"(real images {quality['spread_within_labels_of_real_images']:.1f}; below it, G draws each label "
                "more alike than the real images are)"
            )
        if "code_purity" in quality:
            lines.append(
                f"code purity {quality['mean_code_purity']:.3f} (per value: "
                + " ".join(f"{p:.2f}" for p in quality["code_purity"])
                + f"), labels covered: {len(quality['labels_covered'])}"
            )
        if "code_purity_by_sign" in quality:
            lines.append(
                "code purity with each value split by the sign of a continuous code: "
                + ", ".join(f"c{j + 1} {p:.3f}" for j, p in enumerate(quality["code_purity_by_sign"]))
                + " (if far above the purity, that code's sign picks the label)"
            )
    spread = metrics.get("sample_spread")
    if spread:
        lines.append(
            f"samples: pixel spread {spread['sample_spread']:.3f} (real images "
            f"{spread['sample_spread_of_real_images']:.3f}; a G collapsed to one image gives about 0)"
        )
    reached = metrics["training"].get("first_step_at_0.95")
    if reached:
        lines.append(
            f"first reached 95% validation accuracy at step {reached} ({metrics['training']['minutes_to_0.95']} min)"
        )
    return "\n".join(lines)


def compare_runs(run_dirs, labels, out):
    """Overlays the runs' categorical L_I and accuracy curves as one figure, in the format `out` names."""
    from infogan.figures import file_format, plot_runs
    from infogan.latent import LatentSpec
    from infogan.rundir import read_log

    if file_format(out) is None:
        raise InfoGANError(f"--out {out}: end the file name in .png, .pdf or .svg, the format to write")
    labels = labels or [os.path.basename(os.path.normpath(d)) for d in run_dirs]
    if len(labels) != len(run_dirs):
        raise InfoGANError(f"--labels gives {len(labels)} labels for {len(run_dirs)} runs: give one per run")
    specs = [LatentSpec.from_config(read_config(d)) for d in run_dirs]
    if not all(spec.cat for spec in specs):
        raise InfoGANError(
            "plot_runs compares the categorical codes' L_I and accuracy: some runs have no categorical code "
            "(each run's own curves.png draws its continuous L_I)"
        )
    entropies = {spec.entropies()[0] for spec in specs}
    if len(entropies) != 1:
        raise InfoGANError("the runs have different categorical codes: compare like with like")
    plot_runs([(label, read_log(d)) for label, d in zip(labels, run_dirs, strict=True)], out, entropies.pop())
    return out


SUMMARY = (
    ("accuracy", lambda m: m.get("accuracy"), "{:.1%}"),
    ("NMI", lambda m: m.get("nmi"), "{:.3f}"),
    ("worst label", lambda m: min(m["per_label_accuracy"].values()) if "per_label_accuracy" in m else None, "{:.1%}"),
    ("L_I cat.", lambda m: m["training"].get("L_I_cat_last"), "{:.3f}"),
    ("classifier score", lambda m: m.get("sample_quality", {}).get("classifier_score"), "{:.2f}"),
    ("Frechet distance", lambda m: m.get("sample_quality", {}).get("frechet_distance"), "{:.1f}"),
    ("spread within labels / real", lambda m: _spread_ratio(m.get("sample_quality", {})), "{:.2f}"),
    ("code purity", lambda m: m.get("sample_quality", {}).get("mean_code_purity"), "{:.3f}"),
    ("pixel spread", lambda m: m.get("sample_spread", {}).get("sample_spread"), "{:.3f}"),
    ("first step at 95%", lambda m: m["training"].get("first_step_at_0.95"), "{:.0f}"),
    ("minutes", lambda m: m["training"].get("minutes"), "{:.1f}"),
)


def _spread_ratio(quality):
    if "spread_within_labels" not in quality:  # metrics.json of an earlier version
        return None
    return quality["spread_within_labels"] / quality["spread_within_labels_of_real_images"]


def summarize_runs(run_dirs):
    """A Markdown table of the runs' metrics.json (scripts/evaluate.py writes them): a row per run, then
    the mean +- standard deviation over the runs of every column they all have. Columns no run has are
    left out (runs without labels have no accuracy)."""
    from infogan.checkpoints import checkpoint_dirs

    rows, seen = [], {}
    for run_dir in run_dirs:
        real = os.path.realpath(run_dir)
        if real in seen:
            also = "" if seen[real] == run_dir else f" (as {seen[real]} too)"
            raise InfoGANError(f"{run_dir} is given twice{also}: each run counts once in the mean")
        seen[real] = run_dir
        path = os.path.join(run_dir, "metrics.json")
        if not os.path.isfile(path):
            raise InfoGANError(
                f"{run_dir} has no metrics.json: run python scripts/evaluate.py {shlex.quote(run_dir)} first"
            )
        try:
            with open(path) as f:
                metrics = json.load(f)
            trained = [os.path.basename(c) for c in checkpoint_dirs(run_dir)]
            if trained and metrics["checkpoint"] != trained[-1]:
                raise InfoGANError(
                    f"{path} scores {metrics['checkpoint']}, but the run has trained on to {trained[-1]}: "
                    f"run python scripts/evaluate.py {shlex.quote(run_dir)} again"
                )
            rows.append((os.path.basename(os.path.normpath(run_dir)), [get(metrics) for _, get, _ in SUMMARY]))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
            raise InfoGANError(
                f"{path} cannot be read ({type(e).__name__}: {e}): "
                f"run python scripts/evaluate.py {shlex.quote(run_dir)} again"
            ) from None
    kept = [i for i in range(len(SUMMARY)) if any(values[i] is not None for _, values in rows)]
    columns = [SUMMARY[i] for i in kept]
    rows = [(name, [values[i] for i in kept]) for name, values in rows]
    lines = ["| run | " + " | ".join(name for name, _, _ in columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for name, values in rows:
        cells = ["" if v is None else fmt.format(v) for v, (_, _, fmt) in zip(values, columns, strict=True)]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    means = []
    for i, (_, _, fmt) in enumerate(columns):
        column = [values[i] for _, values in rows]
        if any(v is None for v in column):
            means.append("")
        else:
            spread = fmt.format(float(np.std(column, ddof=1))) if len(column) > 1 else "0"
            means.append(f"{fmt.format(float(np.mean(column)))} +- {spread}")
    lines.append(f"| mean +- std ({len(rows)}) | " + " | ".join(means) + " |")
    return "\n".join(lines)
