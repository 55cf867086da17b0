"""Metrics for multi-label scores, aware of the ``-1`` (unknown) convention.

With partial labels, an unknown entry is counted as a negative. Under the
SCAR assumption this scales each label's average precision down by about
the share of its positives that is marked, the same factor for every model,
so it still ranks models in expectation; it is not the AP on fully labelled
data. Labels without a positive are left out of the macro averages.
"""

import numpy as np
from sklearn.metrics import average_precision_score, make_scorer

__all__ = [
    "macro_average_precision",
    "binarized_average_precision",
    "macro_average_precision_scorer",
]


def _as_2d(y_true, scores):
    y = np.asarray(y_true)
    s = np.asarray(scores, dtype=float)
    if y.ndim == 1:
        y = y[:, None]
    if s.ndim == 1:
        s = s[:, None]
    if y.shape != s.shape:
        raise ValueError(f"y_true has shape {y.shape} but the scores have shape {s.shape}.")
    return (y == 1).astype(int), s


def macro_average_precision(y_true, scores, *, return_per_label=False):
    """Mean over labels of the average precision of continuous scores.

    Parameters
    ----------
    y_true : array-like of shape (n_samples, n_labels) or (n_samples,)
        Labels in ``{1, 0, -1}``; ``-1`` counts as negative.
    scores : array-like of the same shape
        Continuous scores, such as ``predict_proba``.
    return_per_label : bool, default=False
        Also return the AP of each label (NaN where a label has no positive).

    Returns
    -------
    score : float
        Macro AP over labels with at least one positive; NaN if there is none.
    per_label : numpy.ndarray of shape (n_labels,)
        Only when ``return_per_label`` is true.

    Examples
    --------
    >>> from sklearn_dallmi.metrics import macro_average_precision
    >>> macro_average_precision([[1, 0], [0, -1], [1, 1]], [[.9, .1], [.2, .3], [.8, .7]])
    1.0
    """
    y, s = _as_2d(y_true, scores)
    per_label = np.full(y.shape[1], np.nan)
    for label in np.flatnonzero(y.any(axis=0)):
        per_label[label] = average_precision_score(y[:, label], s[:, label])
    valid = ~np.isnan(per_label)
    score = float(per_label[valid].mean()) if valid.any() else float("nan")
    return (score, per_label) if return_per_label else score


def binarized_average_precision(y_true, scores, threshold=0.5):
    """The DALLMi paper's metric: macro AP of *thresholded* predictions.

    Kept for comparability with published numbers only. Rounding the scores
    throws the ranking away, so a model that never predicts a rare label
    scores that label's prevalence rather than zero (see "Why thresholded
    average precision misleads" in the user guide). Prefer
    :func:`macro_average_precision`.

    Parameters
    ----------
    y_true : array-like of shape (n_samples, n_labels)
        Labels in ``{1, 0, -1}``; ``-1`` counts as negative.
    scores : array-like of the same shape
        Probabilities.
    threshold : float, default=0.5
        Scores at or above it are predicted positive.

    Returns
    -------
    score : float
        Macro average precision of the 0/1 predictions over labels with at
        least one positive; NaN if there is none.
    """
    return macro_average_precision(y_true, np.asarray(scores) >= threshold)


def _proba_macro_ap(y_true, proba):
    return macro_average_precision(y_true, proba)


macro_average_precision_scorer = make_scorer(_proba_macro_ap, response_method="predict_proba")
"""Scorer for ``GridSearchCV(scoring=...)``: macro AP of ``predict_proba``."""
