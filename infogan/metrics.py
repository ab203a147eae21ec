"""Unsupervised classification metrics: Q's categorical code against labels it never saw."""

import numpy as np
from scipy.optimize import linear_sum_assignment


def contingency(pred, labels, n_pred, n_labels):
    """counts[i, j]: how many images of label j fell into category i."""
    counts = np.zeros((n_pred, n_labels), dtype=np.int64)
    np.add.at(counts, (pred, labels), 1)
    return counts


def best_mapping(counts):
    """The one-to-one category -> label assignment that classifies the most images (Hungarian)."""
    rows, cols = linear_sum_assignment(counts, maximize=True)
    return dict(zip(rows.tolist(), cols.tolist(), strict=True))


def accuracy(pred, labels, n_pred, n_labels=10):
    """Accuracy under the best one-to-one mapping; unmapped categories count as wrong."""
    counts = contingency(pred, labels, n_pred, n_labels)
    mapping = best_mapping(counts)
    return sum(counts[i, j] for i, j in mapping.items()) / len(labels), mapping


def nmi(pred, labels):
    """Normalised mutual information, I(pred; labels) / mean(H(pred), H(labels)), in [0, 1]."""
    counts = contingency(pred, labels, pred.max() + 1, labels.max() + 1).astype(np.float64)
    joint = counts / counts.sum()
    p_pred, p_label = joint.sum(axis=1), joint.sum(axis=0)
    nz = joint > 0
    mutual = np.sum(joint[nz] * np.log(joint[nz] / np.outer(p_pred, p_label)[nz]))
    entropies = [-np.sum(p[p > 0] * np.log(p[p > 0])) for p in (p_pred, p_label)]
    mean_entropy = np.mean(entropies)
    return float(mutual / mean_entropy) if mean_entropy > 0 else 1.0
