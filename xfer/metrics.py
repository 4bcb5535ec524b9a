"""Classification metrics from predicted probabilities: AUC, accuracy, sensitivity/specificity, per-class PRF."""
from __future__ import annotations

import numpy as np
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support, roc_auc_score


def _auc_one_vs_rest(labels: np.ndarray, scores: np.ndarray) -> float:
    if len(np.unique(labels)) < 2:
        return float("nan")  # AUC is undefined when one class is absent
    return float(roc_auc_score(labels, scores))


def classification_metrics(labels: np.ndarray, probs: np.ndarray, classes: tuple[str, ...],
                           positive: int, prefix: str) -> dict[str, float]:
    """AUC (macro and per class, one-vs-rest), accuracy, and the positive class's sensitivity/specificity."""
    labels = np.asarray(labels)
    preds = probs.argmax(1)
    per_class = {c: _auc_one_vs_rest(labels == k, probs[:, k]) for k, c in enumerate(classes)}
    out = {f"{prefix}auc_{c}": v for c, v in per_class.items()}
    defined = [v for v in per_class.values() if not np.isnan(v)]
    out[f"{prefix}auc"] = float(np.mean(defined)) if len(classes) > 2 and defined else per_class[classes[positive]]
    out[f"{prefix}accuracy"] = float((preds == labels).mean()) if len(labels) else float("nan")
    is_pos, said_pos = labels == positive, preds == positive
    out[f"{prefix}sensitivity"] = float((said_pos & is_pos).sum() / max(is_pos.sum(), 1))
    out[f"{prefix}specificity"] = float((~said_pos & ~is_pos).sum() / max((~is_pos).sum(), 1))
    return out


def multilabel_metrics(targets: np.ndarray, probs: np.ndarray, classes: tuple[str, ...],
                       prefix: str) -> dict[str, float]:
    """Per-class AUC over the images whose label is known (not NaN), their macro mean, and the accuracy of
    probability > 0.5 over all known labels."""
    known = ~np.isnan(targets)
    out = {f"{prefix}auc_{c}": _auc_one_vs_rest(targets[known[:, k], k] == 1, probs[known[:, k], k])
           for k, c in enumerate(classes)}
    defined = [v for v in out.values() if not np.isnan(v)]
    out[f"{prefix}auc"] = float(np.mean(defined)) if defined else float("nan")
    out[f"{prefix}accuracy"] = float(((probs > 0.5) == (targets == 1))[known].mean()) if known.any() else float("nan")
    return out


def per_class_report(labels: np.ndarray, probs: np.ndarray, classes: tuple[str, ...],
                     prefix: str = "test_") -> tuple[dict[str, float], list[list[int]]]:
    """Per-class precision/recall/F1 and the confusion matrix (rows: true class)."""
    preds = probs.argmax(1)
    ks = list(range(len(classes)))
    precision, recall, f1, _ = precision_recall_fscore_support(labels, preds, labels=ks, zero_division=0)
    out: dict[str, float] = {}
    for k, c in enumerate(classes):
        out[f"{prefix}precision_{c}"] = float(precision[k])
        out[f"{prefix}recall_{c}"] = float(recall[k])
        out[f"{prefix}f1_{c}"] = float(f1[k])
    return out, confusion_matrix(labels, preds, labels=ks).tolist()
