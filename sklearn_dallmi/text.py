"""Tokenisation once per fit, per-batch padding, length-sorted inference."""

import numpy as np
import torch

__all__ = ["tokenize", "collate", "length_sorted_batches"]

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


def collate(ids, rows, pad_id):
    """Pad the selected token sequences to the longest among them.

    Parameters
    ----------
    ids : list of numpy.ndarray
        Token ids of every text.
    rows : sequence of int
        Which texts form the batch.
    pad_id : int
        The tokenizer's padding id.

    Returns
    -------
    batch : dict
        ``input_ids`` and ``attention_mask``, both ``torch.long`` of shape
        ``(len(rows), longest)``.
    """
    seqs = [ids[i] for i in rows]
    width = max(len(s) for s in seqs)
    input_ids = np.full((len(seqs), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(seqs), width), dtype=np.int64)
    for i, seq in enumerate(seqs):
        input_ids[i, :len(seq)] = seq
        mask[i, :len(seq)] = 1
    return {"input_ids": torch.from_numpy(input_ids), "attention_mask": torch.from_numpy(mask)}


def length_sorted_batches(ids, batch_size):
    """Batches of similar lengths for inference.

    Parameters
    ----------
    ids : list of numpy.ndarray
    batch_size : int

    Returns
    -------
    batches : list of numpy.ndarray
        Row indices, longest texts first, so that a memory problem shows in
        the first batch rather than the last.
    """
    lengths = np.fromiter((len(s) for s in ids), dtype=np.int64, count=len(ids))
    order = np.argsort(-lengths, kind="stable")
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
