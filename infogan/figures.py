"""Figures, PNG unless a file name asks for another format: image grids with labelled rows and columns,
training curves, confusion matrices.

matplotlib is imported when a figure is drawn, with its file-only backend, so importing this module
changes nothing.
"""

import os

import numpy as np

from infogan.files import atomic_path

CELL_INCHES = 0.55


def _pyplot():
    import logging

    import matplotlib

    # Paddle's import sets the root logger to INFO with a handler of its own: matplotlib's INFO line on a
    # machine's first figure ("generated new fontManager") would land in the middle of the progress bar.
    logging.getLogger("matplotlib").setLevel(logging.WARNING)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def tile(images, pad=1):
    """[R, C, ch, H, W] images in [0, 1] -> one [R*(H+pad)-pad, C*(W+pad)-pad, ch] array, white between."""
    rows, cols, channels, h, w = images.shape
    canvas = np.ones((rows * (h + pad) - pad, cols * (w + pad) - pad, channels), dtype=np.float32)
    for r in range(rows):
        for c in range(cols):
            canvas[r * (h + pad) : r * (h + pad) + h, c * (w + pad) : c * (w + pad) + w] = images[r, c].transpose(
                1, 2, 0
            )
    return canvas


def save_grid(images, path, title, row_labels=None, col_labels=None, xlabel=None, ylabel=None):
    """Draws [R, C, ch, H, W] images in [0, 1] as one labelled grid and writes it to `path` as PNG. Grey
    images are drawn dark on white (1 - value), as digits on paper; colour images as they are."""
    rows, cols, channels, h, w = images.shape
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(cols * CELL_INCHES + 1.2, rows * CELL_INCHES + 1.0))
    canvas = tile(np.clip(images, 0.0, 1.0))
    if channels == 1:
        ax.imshow(1.0 - canvas[..., 0], cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    else:
        ax.imshow(canvas, interpolation="nearest")
    centres = lambda n, size: [i * (size + 1) + size / 2 - 0.5 for i in range(n)]  # noqa: E731
    ax.set_yticks(centres(rows, h), row_labels if row_labels is not None else [""] * rows)
    ax.set_xticks(centres(cols, w), col_labels if col_labels is not None else [""] * cols)
    ax.tick_params(length=0, labelsize=7)
    ax.set_xlabel(xlabel or "")
    ax.set_ylabel(ylabel or "")
    ax.set_title(title, fontsize=9)
    for spine in ax.spines.values():
        spine.set_visible(False)
    _save(fig, path)


def plot_curves(records, path, cat_entropy):
    """Losses, D's outputs, the L_I terms (and the clustering term) and validation accuracy against the
    step, from the run's log."""
    plt = _pyplot()
    steps = [r["step"] for r in records]
    fig, axes = plt.subplots(1, 4, figsize=(20, 4))
    for key in ("d_loss", "g_loss"):
        axes[0].plot(steps, [r[key] for r in records], label=key)
    axes[0].set_title("GAN losses")
    for key in ("d_real", "d_fake"):
        axes[1].plot(steps, [r[key] for r in records], label=key)
    axes[1].set_title("D(x) on real and fake batches")
    axes[1].set_ylim(0, 1)
    for key, label in (("L_I_cat", "L_I categorical"), ("L_I_cont", "L_I continuous")):
        if key in records[-1]:
            axes[2].plot(steps, [r[key] for r in records], label=label)
    if "I_real" in records[-1]:
        axes[2].plot(steps, [r["I_real"] for r in records], label="I(c; c') on real images (clustering term)")
    if cat_entropy:
        axes[2].axhline(cat_entropy, color="gray", ls="--", lw=1, label=f"H(c_cat) = {cat_entropy:.3f}")
    axes[2].set_title("L_I (nats; log Q(c|x) + H(c))")
    evaluated = [r for r in records if "accuracy" in r]
    axes[3].plot([r["step"] for r in evaluated], [r["accuracy"] for r in evaluated], "o-", label="accuracy")
    axes[3].set_ylim(0, 1)
    axes[3].set_title("Q's unsupervised accuracy, validation images")
    for ax in axes:
        ax.set_xlabel("iteration")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    _save(fig, path)


def file_format(path):
    """The format `path`'s extension names where matplotlib writes it (png, pdf, svg, jpg, ...), else None."""
    from matplotlib.backend_bases import FigureCanvasBase

    extension = os.path.splitext(path)[1][1:].lower()
    return extension if extension in FigureCanvasBase.get_supported_filetypes() else None


def _save(fig, path):
    """Writes the figure in the format its file name asks for (PNG where it names none)."""
    plt = _pyplot()
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=file_format(path) or "png", dpi=100)
    finally:
        plt.close(fig)


def plot_confusion(counts, category_to_label, acc, path, title="Unsupervised classification by Q"):
    """counts[category, label], rows ordered by the label each category was mapped to."""
    plt = _pyplot()
    order = sorted(range(len(counts)), key=lambda c: category_to_label.get(c, len(counts)))
    fig, ax = plt.subplots(figsize=(7, 6))
    shown = counts[order]
    ax.imshow(shown, cmap="Blues")
    for (i, j), n in np.ndenumerate(shown):
        ax.text(j, i, str(n), ha="center", va="center", fontsize=7, color="white" if n > shown.max() / 2 else "black")
    ax.set_yticks(range(len(order)), [f"c={c} -> {category_to_label.get(c, '-')}" for c in order], fontsize=8)
    ax.set_xticks(range(counts.shape[1]), range(counts.shape[1]))
    ax.set_xlabel("true label")
    ax.set_ylabel("Q's category -> mapped label")
    ax.set_title(f"{title}: accuracy {acc:.1%}")
    fig.tight_layout()
    _save(fig, path)


def plot_runs(runs, path, cat_entropy):
    """Overlays several runs' categorical L_I (and validation accuracy, where logged) against the step.
    Runs under one label (seeds of one recipe) share a colour and a legend entry."""
    plt = _pyplot()
    fig, (ax_li, ax_acc) = plt.subplots(1, 2, figsize=(13, 4.5))
    colours = {}
    for label, records in runs:
        first = label not in colours
        style = {"color": colours.setdefault(label, f"C{len(colours) % 10}"), "label": label if first else None}
        ax_li.plot([r["step"] for r in records], [r["L_I_cat"] for r in records], lw=1, **style)
        evaluated = [r for r in records if "accuracy" in r]
        ax_acc.plot([r["step"] for r in evaluated], [r["accuracy"] for r in evaluated], "o-", ms=3, **style)
    ax_li.axhline(cat_entropy, color="gray", ls="--", lw=1, label=f"H(c) = {cat_entropy:.3f} nats")
    ax_li.set_title("categorical L_I = E[log Q(c|x)] + H(c), nats")
    ax_acc.set_title("Q's unsupervised accuracy on validation images")
    ax_acc.set_ylim(0, 1)
    for ax in (ax_li, ax_acc):
        ax.set_xlabel("iteration")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    _save(fig, path)
