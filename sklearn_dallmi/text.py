"""Tokenisation once per fit, per-batch padding, length order for inference."""

import numpy as np
import torch
from torch.utils.data import default_collate

__all__ = ["tokenize", "pad_batch", "length_order"]

_TOKENIZE_CHUNK = 2048


def tokenize(tokenizer, texts, max_length):
    """Tokenise texts without padding.

    Parameters
    ----------
    tokenizer : transformers.PreTrainedTokenizerBase
    texts : sequence of str
    max_length : int
        Longer texts are truncated (special tokens included).

    Returns
    -------
    ids : list of numpy.ndarray of int32
        One array of token ids per text.
    """
    ids = []
    for start in range(0, len(texts), _TOKENIZE_CHUNK):
        chunk = list(texts[start:start + _TOKENIZE_CHUNK])
        encoded = tokenizer(
            chunk, truncation=True, max_length=max_length, padding=False,
            return_attention_mask=False, return_token_type_ids=False,
        )["input_ids"]
        ids.extend(np.asarray(row, dtype=np.int32) for row in encoded)
    return ids


def pad_batch(items, pad_id):
    """Collate ``(token ids, labels)`` items, padding to the longest in the batch.

    The ``collate_fn`` of the network's data loaders (bind ``pad_id`` with
    :func:`functools.partial`).

    Parameters
    ----------
    items : list of tuple
        ``(ids, y)`` per row: a 1-D array of token ids, and the row's targets
        (an array, a dict of arrays, or None).
    pad_id : int
        The tokenizer's padding id.

    Returns
    -------
    x : dict
        ``input_ids`` and ``attention_mask``, both ``torch.long`` of shape
        ``(len(items), longest)``.
    y : torch.Tensor, dict of torch.Tensor or None
        The targets stacked by torch's ``default_collate``.
    """
    seqs = [ids for ids, _ in items]
    width = max(len(s) for s in seqs)
    input_ids = np.full((len(seqs), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(seqs), width), dtype=np.int64)
    for i, seq in enumerate(seqs):
        input_ids[i, :len(seq)] = seq
        mask[i, :len(seq)] = 1
    x = {"input_ids": torch.from_numpy(input_ids), "attention_mask": torch.from_numpy(mask)}
    y = None if items[0][1] is None else default_collate([y for _, y in items])
    return x, y


def length_order(ids):
    """Order of the texts, longest first, for batches of similar lengths.

    Longest first, so that a memory problem shows in the first batch rather
    than the last.

    Parameters
    ----------
    ids : list of numpy.ndarray

    Returns
    -------
    order : numpy.ndarray of int
    """
    lengths = np.fromiter((len(s) for s in ids), dtype=np.int64, count=len(ids))
    return np.argsort(-lengths, kind="stable")
