"""Input checks that name the problem and where it is."""

import itertools
import numbers
from collections.abc import Iterable

import numpy as np
import scipy.sparse as sp

__all__ = ["text_chunks", "check_texts", "check_labels", "check_threshold"]


def text_chunks(X, chunk_size, name="X"):
    """Yield ``(start, texts)`` chunks of an iterable of texts, checked.

    Only ``chunk_size`` texts are held at a time, so a generator over a file
    of any size is streamed. Errors name the global index of a bad entry.
    Accepts a list, a tuple, a 1-D array, a pandas Series or any other
    iterable of strings (consumed once).
    """
    if isinstance(X, (str, bytes)):
        raise ValueError(
            f"{name} must be a sequence of texts, got a single string; wrap it in a list."
        )
    if hasattr(X, "ndim") and getattr(X, "ndim") != 1:
        raise ValueError(
            f"{name} must be one-dimensional (one text per sample), got shape "
            f"{getattr(X, 'shape', None)}; select the text column, e.g. df['text']."
        )
    if isinstance(X, dict) or not isinstance(X, Iterable):
        raise ValueError(f"{name} must be a sequence of texts, got {type(X).__name__}.")
    # Arrays and Series are already in memory: tolist() gives plain str
    # (numpy) and pandas' own missing-value objects.
    iterator = iter(X.tolist() if hasattr(X, "tolist") else X)
    start = 0
    while chunk := list(itertools.islice(iterator, chunk_size)):
        for i, text in enumerate(chunk):
            if not isinstance(text, str):
                raise ValueError(
                    f"{name}[{start + i}] is {type(text).__name__} ({text!r:.40}), "
                    "not a string."
                )
        yield start, chunk
        start += len(chunk)
    if start == 0:
        raise ValueError(f"{name} is empty: at least one text is required.")


def check_texts(X, name="X"):
    """Return the texts as a list of str, or raise a ``ValueError``."""
    return [text for _, chunk in text_chunks(X, 1 << 16, name) for text in chunk]


def check_labels(y, n_samples, name="y"):
    """Return the label matrix as int8 ``(n_samples, n_labels)``.

    Returns
    -------
    Y : numpy.ndarray of shape (n_samples, n_labels), dtype int8
    binary : bool
        True when ``y`` was one-dimensional.
    """
    if y is None:
        raise ValueError(f"{name} is required: a label matrix with values in {{1, 0, -1}}.")
    if sp.issparse(y):
        y = y.toarray()
    try:
        Y = np.asarray(y)
    except ValueError as exc:
        raise ValueError(f"{name} is not a rectangular array: {exc}") from exc
    if Y.dtype == object:
        try:
            Y = Y.astype(float)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{name} must be numeric with values in {{1, 0, -1}}.") from exc
    if Y.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be numeric with values in {{1, 0, -1}}, got dtype {Y.dtype}.")
    binary = Y.ndim == 1
    if binary:
        Y = Y[:, None]
    if Y.ndim != 2:
        raise ValueError(
            f"{name} must have shape (n_samples, n_labels) or (n_samples,), got {Y.shape}."
        )
    if Y.shape[0] != n_samples:
        raise ValueError(f"X has {n_samples} texts but {name} has {Y.shape[0]} rows.")
    if Y.shape[1] == 0:
        raise ValueError(f"{name} has no label column.")
    if Y.dtype.kind == "f":
        bad = np.argwhere(np.isnan(Y))
        if bad.size:
            row, col = bad[0]
            raise ValueError(f"{name} contains NaN (first at row {row}, column {col}).")
    bad = np.argwhere(~np.isin(Y, (-1, 0, 1)))
    if bad.size:
        row, col = bad[0]
        raise ValueError(
            f"{name} must hold only 1 (positive), 0 (negative) and -1 (unknown); "
            f"found {Y[row, col].item()!r} at row {row}, column {col} "
            f"({len(bad)} invalid entries in all)."
        )
    return Y.astype(np.int8), binary


def check_threshold(threshold, n_labels):
    """Return the decision threshold as an array of shape ``(n_labels,)``."""
    if isinstance(threshold, numbers.Real):
        values = np.full(n_labels, float(threshold))
    else:
        values = np.asarray(threshold, dtype=float).ravel()
        if values.shape != (n_labels,):
            raise ValueError(
                f"threshold has {values.size} values but the model has {n_labels} labels."
            )
    if np.any((values < 0) | (values > 1)) or np.isnan(values).any():
        raise ValueError("threshold values must lie in [0, 1].")
    return values
