"""DeLong's AUC as a sum of per-image influences (fast midrank version), and its variance over patients."""
from __future__ import annotations

import numpy as np
from scipy.stats import rankdata


def placements(positive: np.ndarray, negative: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """(AUC, V10, V01): each positive's share of negatives scored below it, each negative's share of positives
    scored above it (ties count ½), in O(n log n) from midranks (Sun & Xu 2014)."""
    m, n = len(positive), len(negative)
    ranks = rankdata(np.concatenate([positive, negative]))
    v10 = (ranks[:m] - rankdata(positive)) / n
    v01 = 1.0 - (ranks[m:] - rankdata(negative)) / m
    return float(v10.mean()), v10, v01


def auc_influence(labels: np.ndarray, probs: np.ndarray, positive: int) -> tuple[float, np.ndarray]:
    """The AUC a trial reports (the positive class's; the macro one-vs-rest mean for > 2 classes) and each
    image's influence L, so that AUC − E[AUC] ≈ Σ L (DeLong's structural components, centred and scaled)."""
    labels = np.asarray(labels)
    probs = np.asarray(probs, dtype=float)
    present = [k for k in range(probs.shape[1]) if 0 < (labels == k).sum() < len(labels)]
    classes = [positive] if probs.shape[1] <= 2 else present
    if not classes or not 0 < (labels == classes[0]).sum() < len(labels):
        return float("nan"), np.full(len(labels), np.nan)
    influence, aucs = np.zeros(len(labels)), []
    for k in classes:
        is_pos = labels == k
        auc, v10, v01 = placements(probs[is_pos, k], probs[~is_pos, k])
        influence[is_pos] += (v10 - auc) / is_pos.sum() / len(classes)
        influence[~is_pos] += (v01 - auc) / (~is_pos).sum() / len(classes)
        aucs.append(auc)
    return float(np.mean(aucs)), influence


def influence_variance(influence: np.ndarray, strata: np.ndarray, patients: np.ndarray) -> float:
    """Variance of Σ influence when patients are resampled within strata (their class):
    Σ_h n_h/(n_h − 1) Σ_p∈h (L_p − mean_h L)², L_p summed over a patient's images. For one image per patient
    and two classes this is DeLong's S10/m + S01/n."""
    total = 0.0
    for stratum in np.unique(strata):
        in_stratum = strata == stratum
        _, which = np.unique(patients[in_stratum], return_inverse=True)
        per_patient = np.bincount(which, weights=influence[in_stratum])
        k = len(per_patient)
        if k > 1:
            total += k / (k - 1) * ((per_patient - per_patient.mean()) ** 2).sum()
    return float(total)
