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


def balanced_batches(positives, batch_size, positive_fraction, rng, cycle=None):
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


class LabelBalancedSampler:
    """Iterate over label-balanced batches, epoch after epoch.

    Each call to ``iter`` yields one epoch; the random state and the label
    cycle carry over between epochs.

    Parameters
    ----------
    positives : numpy.ndarray of shape (n_rows, n_labels), dtype bool
        Observed positives.
    batch_size : int
        Rows per batch, positives included.
    positive_fraction : float
        Share of each batch drawn label-balanced, in ``[0, 1)``.
    random_state : int, numpy.random.Generator or None
        Seeds the generator that draws the batches.
    rank : int, default=0
        This process's rank in data-parallel training.
    world_size : int, default=1
        Number of processes. With ``world_size > 1``, every process draws the
        same epoch of batches (same ``random_state``) and keeps batches
        ``i`` with ``i % world_size == rank``; the last
        ``n_batches % world_size`` batches of the epoch are left out, so that
        the shards are disjoint and every process takes as many steps.
    """

    def __init__(self, positives, batch_size, positive_fraction, random_state=None,
                 rank=0, world_size=1):
        if not 0 <= rank < world_size:
            raise ValueError(f"rank must lie in [0, world_size={world_size}), got {rank}.")
        self.positives = np.asarray(positives, dtype=bool)
        self.batch_size = batch_size
        self.positive_fraction = positive_fraction
        self.rng = np.random.default_rng(random_state)
        self.rank = rank
        self.world_size = world_size
        self._cycle = []

    def __iter__(self):
        batches, self._cycle = balanced_batches(
            self.positives, self.batch_size, self.positive_fraction, self.rng, self._cycle
        )
        if self.world_size > 1:
            kept = len(batches) - len(batches) % self.world_size
            batches = batches[self.rank:kept:self.world_size]
        return iter(batches)

    def n_batches_per_epoch(self):
        """Count the batches of one epoch over all processes, before sharding.

        Returns
        -------
        n_batches : int
            Number of batches of the whole epoch.
        """
        k = n_positive_slots(self.batch_size, self.positive_fraction)
        n_uniform = self.batch_size - (k if self.positives.any() else 0)
        return math.ceil(self.positives.shape[0] / n_uniform)

    def __len__(self):
        return self.n_batches_per_epoch() // self.world_size
