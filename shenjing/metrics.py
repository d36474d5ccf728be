"""Classification metrics on label arrays, with scikit-learn's names (seed 004 imports
`accuracy_score` and `classification_report`; seed 003 evaluates by accuracy, recall, F1).

NumPy only, so evaluating a model needs no second framework.
"""

from __future__ import annotations

import numpy as np

__all__ = ["accuracy_score", "confusion_matrix", "precision_recall_fscore_support",
           "scores_from_counts",
           "precision_score", "recall_score", "f1_score", "classification_report"]


def _labels(y) -> np.ndarray:
    arr = np.asarray(y.numpy() if hasattr(y, "data") and not isinstance(y, np.ndarray) else y)
    if arr.ndim != 1:
        raise ValueError(f"expected a 1-D array of class labels, got shape {arr.shape}")
    return arr


def _pair(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    t, p = _labels(y_true), _labels(y_pred)
    if t.shape != p.shape:
        raise ValueError(f"y_true has {t.shape[0]} labels but y_pred has {p.shape[0]}")
    return t, p


def accuracy_score(y_true, y_pred) -> np.float64:
    """Fraction of predictions equal to the true label (a NumPy scalar, as sklearn's)."""
    t, p = _pair(y_true, y_pred)
    return np.float64(np.mean(t == p)) if t.size else np.float64(0.0)


def confusion_matrix(y_true, y_pred, labels=None) -> np.ndarray:
    """Counts C[i, j] of samples with true label labels[i] predicted as labels[j]."""
    t, p = _pair(y_true, y_pred)
    labels = np.unique(np.concatenate([t, p])) if labels is None else np.asarray(labels)
    index = {v: i for i, v in enumerate(labels.tolist())}
    out = np.zeros((len(labels), len(labels)), dtype=np.int64)
    for a, b in zip(t.tolist(), p.tolist()):
        if a in index and b in index:
            out[index[a], index[b]] += 1
    return out


def scores_from_counts(tp, fp, fn, beta: float = 1.0) -> tuple:
    """Precision, recall and F-beta from (weighted) true-positive, false-positive and
    false-negative counts, elementwise, 0 where a ratio is undefined. One implementation for
    the functions here and the streaming Keras metrics (keras.metrics.Precision, Recall,
    FBetaScore)."""
    tp, fp, fn = (np.asarray(c, dtype=np.float64) for c in (tp, fp, fn))
    b2 = float(beta) ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(tp + fp > 0, tp / (tp + fp), 0.0)
        recall = np.where(tp + fn > 0, tp / (tp + fn), 0.0)
        denom = b2 * precision + recall
        fbeta = np.where(denom > 0, (1 + b2) * precision * recall / denom, 0.0)
    return precision, recall, fbeta


def precision_recall_fscore_support(y_true, y_pred, labels=None):
    """Per-class precision, recall, F1 and support (0 where a ratio is undefined)."""
    t, p = _pair(y_true, y_pred)
    labels = np.unique(np.concatenate([t, p])) if labels is None else np.asarray(labels)
    cm = confusion_matrix(t, p, labels)
    tp = np.diag(cm).astype(np.float64)
    predicted, support = cm.sum(0), cm.sum(1)
    precision, recall, f1 = scores_from_counts(tp, predicted - tp, support - tp)
    return precision, recall, f1, support


def _averaged(index: int, y_true, y_pred, average: str):
    values = precision_recall_fscore_support(y_true, y_pred)
    per_class, support = values[index], values[3]
    if average is None:
        return per_class
    if average == "macro":
        return float(per_class.mean())
    if average == "weighted":
        return float((per_class * support).sum() / max(support.sum(), 1))
    if average == "binary":
        labels = np.unique(np.concatenate([_labels(y_true), _labels(y_pred)]))
        pos = np.nonzero(labels == 1)[0]
        return float(per_class[pos[0]]) if pos.size else 0.0
    raise ValueError(f"average must be 'binary', 'macro', 'weighted' or None, got {average!r}")


def precision_score(y_true, y_pred, average: str = "binary"):
    return _averaged(0, y_true, y_pred, average)


def recall_score(y_true, y_pred, average: str = "binary"):
    return _averaged(1, y_true, y_pred, average)


def f1_score(y_true, y_pred, average: str = "binary"):
    return _averaged(2, y_true, y_pred, average)


def classification_report(y_true, y_pred, target_names=None, digits: int = 2) -> str:
    """A text table of per-class precision, recall, F1 and support, plus averages."""
    t, p = _pair(y_true, y_pred)
    labels = np.unique(np.concatenate([t, p]))
    names = [str(n) for n in (target_names if target_names is not None else labels)]
    if len(names) != len(labels):
        raise ValueError(f"target_names has {len(names)} names for {len(labels)} classes")
    prec, rec, f1, sup = precision_recall_fscore_support(t, p, labels)
    width = max(12, *(len(n) for n in names))
    head = f"{'':>{width}} {'precision':>9} {'recall':>9} {'f1-score':>9} {'support':>9}\n\n"
    row = "{:>{w}} {:>9.{d}f} {:>9.{d}f} {:>9.{d}f} {:>9}\n"
    body = "".join(row.format(n, a, b, c, int(s), w=width, d=digits)
                   for n, a, b, c, s in zip(names, prec, rec, f1, sup))
    total = int(sup.sum())
    acc = accuracy_score(t, p)
    body += "\n" + f"{'accuracy':>{width}} {'':>9} {'':>9} {acc:>9.{digits}f} {total:>9}\n"
    for name, w in (("macro avg", np.ones_like(prec)), ("weighted avg", sup)):
        w = w / max(w.sum(), 1)
        body += row.format(name, (prec * w).sum(), (rec * w).sum(), (f1 * w).sum(), total,
                           w=width, d=digits)
    return head + body
