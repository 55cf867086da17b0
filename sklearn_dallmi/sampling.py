"""Label-balanced batches.

A batch of size ``B`` holds ``k = ceil(rho * B)`` rows drawn as positives,
cycling through the labels in a shuffled order (one random observed positive
of each label in turn), and ``B - k`` rows drawn uniformly without
replacement, so that every row is visited once per epoch. The label cycle
carries over from batch to batch and from epoch to epoch, so every label gets
its turn within ``ceil(L / k)`` batches.
"""

import math

import numpy as np
import torch

__all__ = ["n_positive_slots", "balanced_batches", "LabelBalancedSampler"]


def n_positive_slots(batch_size, positive_fraction):
    """Number of label-balanced slots ``ceil(rho * B)`` in a batch of ``B``.

    Parameters
    ----------
    batch_size : int
        Batch size ``B`` (at least 2 when ``positive_fraction > 0``).
    positive_fraction : float
        Share ``rho`` in ``[0, 1)``.

    Returns
    -------
    k : int
        Between 0 and ``batch_size - 1``: at least one slot is always drawn
        uniformly.
    """
    if positive_fraction <= 0:
        return 0
    return min(math.ceil(positive_fraction * batch_size), batch_size - 1)


def balanced_batches(positives, batch_size, positive_fraction, rng, cycle=None, order=None):
    """One epoch of label-balanced batches.

    Parameters
    ----------
    positives : numpy.ndarray of shape (n_rows, n_labels), dtype bool
        Observed positives.
    batch_size : int
        Rows per batch, positives included.
    positive_fraction : float
        Share of each batch drawn label-balanced, in ``[0, 1)``.
    rng : numpy.random.Generator
        Source of randomness.
    cycle : list of int or None
        Labels still waiting for their turn from a previous call; the cycle
        continues from there.
    order : numpy.ndarray of shape (n_rows,) or None
        The order in which the uniform part visits the rows (a permutation);
        None draws one from ``rng``.

    Returns
    -------
    batches : list of numpy.ndarray
        Row indices of each batch: the uniform rows first, then the
        label-balanced ones.
    cycle : list of int
        The labels still waiting, to pass to the next call.
    """
    n_rows = positives.shape[0]
    k = n_positive_slots(batch_size, positive_fraction)
    with_pos = np.flatnonzero(positives.any(axis=0))
    if with_pos.size == 0:
        k = 0
    if order is None:
        order = rng.permutation(n_rows)
    n_uniform = batch_size - k
    cycle = list(cycle or [])
    members = [np.flatnonzero(positives[:, label]) for label in range(positives.shape[1])]
    batches = []
    for start in range(0, n_rows, n_uniform):
        uniform = order[start:start + n_uniform]
        drawn = np.empty(k, dtype=np.int64)
        for slot in range(k):
            if not cycle:
                cycle = rng.permutation(with_pos).tolist()
            rows = members[cycle.pop(0)]
            drawn[slot] = rows[rng.integers(rows.size)]
        batches.append(np.concatenate([uniform, drawn]))
    return batches, cycle


class LabelBalancedSampler(torch.utils.data.Sampler):
    """Batch sampler of label-balanced batches, epoch after epoch.

    Pass it to a :class:`torch.utils.data.DataLoader` as ``batch_sampler``.
    Each call to ``iter`` yields one epoch; the random state and the label
    cycle carry over between epochs. The uniform part of the batches is a
    :class:`torch.utils.data.RandomSampler` (``self.sampler``) whose
    ``generator`` also seeds the positive draws, so that Accelerate, which
    synchronises that generator across processes at the start of each epoch
    and deals batch ``i`` to process ``i % n_processes``, gives every process
    its share of one sequence of batches.

    Parameters
    ----------
    positives : numpy.ndarray of shape (n_rows, n_labels), dtype bool
        Observed positives.
    batch_size : int
        Rows per batch, positives included.
    positive_fraction : float
        Share of each batch drawn label-balanced, in ``[0, 1)``.
    random_state : int or None, default=None
        Seeds the generator; None draws a seed from torch's global generator.
    """

    def __init__(self, positives, batch_size, positive_fraction, random_state=None):
        self.positives = np.asarray(positives, dtype=bool)
        self.batch_size = batch_size
        self.positive_fraction = positive_fraction
        self.drop_last = False
        if random_state is None:
            random_state = int(torch.randint(2**62, ()))
        generator = torch.Generator().manual_seed(int(random_state))
        self.sampler = torch.utils.data.RandomSampler(range(len(self.positives)),
                                                      generator=generator)
        self._cycle = []

    def __iter__(self):
        order = np.fromiter(self.sampler, dtype=np.int64, count=len(self.positives))
        rng = np.random.default_rng(int(torch.randint(2**62, (), generator=self.sampler.generator)))
        batches, self._cycle = balanced_batches(
            self.positives, self.batch_size, self.positive_fraction, rng, self._cycle, order
        )
        return iter([batch.tolist() for batch in batches])

    def __len__(self):
        k = n_positive_slots(self.batch_size, self.positive_fraction)
        n_uniform = self.batch_size - (k if self.positives.any() else 0)
        return math.ceil(self.positives.shape[0] / n_uniform)
