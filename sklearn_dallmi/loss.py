"""The DALLMi criterion: variational PU loss, MixUp consistency and BCE.

Every function here is pure torch on already computed logits, so the
mathematics can be tested without an encoder. The label matrix follows the
package convention: ``1`` observed positive, ``0`` known negative, ``-1``
unknown.
"""

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "observed_positives",
    "variational_loss",
    "mixup_loss",
    "known_entries_bce",
    "published_norm_loss",
    "anchor_loss",
    "draw_mixup_partners",
    "DALLMiLoss",
]

def _masked_mean(values, mask):
    """Mean of ``values`` where ``mask`` is true; zero (in the graph) if nowhere.

    No data-dependent branch or boolean indexing: on CUDA nothing waits
    for the device.
    """
    mask = mask.to(values.dtype)
    return (values * mask).sum() / mask.sum().clamp(min=1.0)


def observed_positives(y, pu_labels):
    """The entries that the variational loss takes as observed positives.

    ``y = 1`` on a PU label, except in *labelled rows*: rows without an
    unknown entry that hold a known negative (``0``) on some PU label, such
    as the source rows of one fit on source and target rows. Those rows were
    labelled for every label, so their positives are not a sample of the
    positives among the unknown entries; they are known entries, trained
    with binary cross-entropy like the rows' zeros. (Counted as observed
    positives, they let the variational loss tell the domains apart instead
    of the classes.) The ``0`` is what tells such a row from a marked one:
    a partially labelled row whose PU entries are all ``1`` has no ``-1``
    either. So with a single PU label (or a 1-D ``y``) no row is labelled
    in this sense, and every ``1`` is an observed positive.

    Parameters
    ----------
    y : torch.Tensor or numpy.ndarray of shape (n_rows, n_labels)
        Labels in ``{1, 0, -1}``.
    pu_labels : torch.Tensor or numpy.ndarray of shape (n_labels,), dtype bool
        Which labels are trained in PU mode; of the same kind as ``y``.

    Returns
    -------
    mask : torch.Tensor or numpy.ndarray of shape (n_rows, n_labels), dtype bool
        Of the kind of ``y``.
    """
    labelled = ~(y == -1).any(1) & ((y == 0) & pu_labels).any(1)
    return (y == 1) & pu_labels & ~labelled[:, None]


def variational_loss(logits, y, pu_labels):
    """Variational PU loss (VPU) averaged over the PU labels of a batch.

    For each PU label ``l`` with at least one observed positive in the batch,
    ``logsumexp_{i in A_l} log sigmoid(z_il) - log |A_l| - mean_{i in P_l}
    log sigmoid(z_il)``, where ``P_l`` are the label's observed positives
    (:func:`observed_positives`) and ``A_l`` those and the rows with ``y =
    -1``. Labels without an observed positive in the batch are skipped.

    Parameters
    ----------
    logits : torch.Tensor of shape (n_rows, n_labels)
        Raw scores ``z``.
    y : torch.Tensor of shape (n_rows, n_labels)
        Labels in ``{1, 0, -1}``.
    pu_labels : torch.Tensor of shape (n_labels,), dtype bool
        Which labels are trained in PU mode.

    Returns
    -------
    loss : torch.Tensor
        A scalar; zero (with a gradient path) when no PU label has an
        observed positive in the batch.
    """
    log_phi = F.logsigmoid(logits)
    pos = observed_positives(y, pu_labels)
    anchor = pos | ((y == -1) & pu_labels)
    n_pos = pos.sum(0)
    # The most negative finite float, not -inf: a label without anchors
    # stays finite, so that multiplying it by zero below gives zero.
    lowest = torch.finfo(log_phi.dtype).min
    log_mean_all = torch.logsumexp(
        log_phi.masked_fill(~anchor, lowest), dim=0
    ) - torch.log(anchor.sum(0).clamp(min=1).to(log_phi.dtype))
    mean_log_pos = (log_phi * pos).sum(0) / n_pos.clamp(min=1)
    return _masked_mean(log_mean_all - mean_log_pos, n_pos > 0)


def mixup_loss(mix_logits, main_logits, y, partner, gamma, pu_labels):
    """MixUp consistency term of VPU, for every PU label at once.

    Row ``u`` of the batch was mixed with its partner ``p = partner[u]`` as
    ``gamma[u] * E(p) + (1 - gamma[u]) * E(u)``. For every PU label ``k`` on
    which ``p`` is an observed positive, the target is
    ``log(gamma + (1 - gamma) * sigmoid(z_k(u)))`` and the penalty is its
    squared distance to ``log sigmoid(z_k(mix))``.

    Parameters
    ----------
    mix_logits : torch.Tensor of shape (n_rows, n_labels)
        Logits of the mixed inputs.
    main_logits : torch.Tensor of shape (n_rows, n_labels)
        Logits of the unmixed batch; the target is not detached.
    y : torch.Tensor of shape (n_rows, n_labels)
        Labels of the unmixed batch in ``{1, 0, -1}``.
    partner : torch.Tensor of shape (n_rows,), dtype long
        Index in the batch of each row's positive partner.
    gamma : torch.Tensor of shape (n_rows,)
        Mixing weight of the partner, in ``[0, 1]``: the same value that
        mixed the embeddings (the log-space target is finite at 0 and 1).
    pu_labels : torch.Tensor of shape (n_labels,), dtype bool
        Which labels are trained in PU mode.

    Returns
    -------
    loss : torch.Tensor
        Mean squared log difference over the masked entries (zero when there
        is none).
    """
    mask = observed_positives(y, pu_labels)[partner]
    g = gamma.to(main_logits.dtype).unsqueeze(1)
    target = torch.logaddexp(torch.log(g), torch.log1p(-g) + F.logsigmoid(main_logits))
    diff = (target - F.logsigmoid(mix_logits)) ** 2
    return _masked_mean(diff, mask)


def known_entries_bce(logits, y, pu_labels):
    """Binary cross-entropy over the entries whose label is known.

    These are all entries of supervised labels and, for PU labels, the
    known negatives (``y = 0``) and the positives of labelled rows (see
    :func:`observed_positives`). Observed positives of PU labels belong to
    the variational term instead.

    Parameters
    ----------
    logits : torch.Tensor of shape (n_rows, n_labels)
        Raw scores ``z``.
    y : torch.Tensor of shape (n_rows, n_labels)
        Labels in ``{1, 0, -1}``.
    pu_labels : torch.Tensor of shape (n_labels,), dtype bool
        Which labels are trained in PU mode.

    Returns
    -------
    loss : torch.Tensor
        Mean BCE over the selected entries (zero when there is none).
    """
    mask = (y == 0) | ((y == 1) & ~observed_positives(y, pu_labels))
    target = (y == 1).to(logits.dtype)
    bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    return _masked_mean(bce, mask)


def published_norm_loss(logits, y, pu_labels):
    """The authors' published "norm" objective, kept as an ablation anchor.

    Per PU label, ``mean_i sigmoid(z_il) - ||sigmoid(z_{P_l})||_2`` summed
    over labels, where the mean runs over every row of the batch (as in the
    authors' script) and ``P_l`` are the observed positives. It is not
    scale-invariant and uses an L2 norm rather than a mean; see
    ``REFERENCE.md`` section 2, item 4.

    Parameters
    ----------
    logits : torch.Tensor of shape (n_rows, n_labels)
        Raw scores ``z``.
    y : torch.Tensor of shape (n_rows, n_labels)
        Labels in ``{1, 0, -1}``.
    pu_labels : torch.Tensor of shape (n_labels,), dtype bool
        Which labels are trained in PU mode.

    Returns
    -------
    loss : torch.Tensor
        A scalar, summed over the PU labels.
    """
    phi = torch.sigmoid(logits)
    pos = observed_positives(y, pu_labels).to(phi.dtype)
    norm_pos = torch.sqrt(((phi * pos) ** 2).sum(0) + 1e-12) * (pos.sum(0) > 0)
    return ((phi.mean(0) - norm_pos) * pu_labels).sum()


def anchor_loss(logits, y, anchor, weights):
    """Distillation toward a previous model on the unknown entries.

    ``sum w_l * BCE(z_il, q_il) / n`` over the entries with ``y = -1`` of
    the labels with ``w_l > 0``, where ``q`` are the previous model's
    probabilities and ``n`` the number of those entries: it keeps what the
    previous (source) model predicted where the labels say nothing, as far
    as the weights say.

    Parameters
    ----------
    logits : torch.Tensor of shape (n_rows, n_labels)
        Raw scores ``z``.
    y : torch.Tensor of shape (n_rows, n_labels)
        Labels in ``{1, 0, -1}``.
    anchor : torch.Tensor of shape (n_rows, n_labels)
        The previous model's probabilities ``q``, in ``[0, 1]``.
    weights : torch.Tensor of shape (n_labels,)
        Weight ``w_l`` of each label, non-negative.

    Returns
    -------
    loss : torch.Tensor
        A scalar (zero, in the graph, when there is no such entry).
    """
    bce = F.binary_cross_entropy_with_logits(logits, anchor.to(logits.dtype), reduction="none")
    mask = ((y == -1) & (weights > 0)).to(logits.dtype)
    return (bce * weights * mask).sum() / mask.sum().clamp(min=1.0)


def draw_mixup_partners(y, pu_labels, alpha, rng):
    """Draw a positive partner and a mixing weight for every row of a batch.

    Each row draws, uniformly, a PU label that has an observed positive in
    the batch, then one of that label's positives, and ``gamma ~ Beta(alpha,
    alpha)``.

    Parameters
    ----------
    y : numpy.ndarray of shape (n_rows, n_labels)
        Labels in ``{1, 0, -1}``.
    pu_labels : numpy.ndarray of shape (n_labels,), dtype bool
        Which labels are trained in PU mode.
    alpha : float
        Beta distribution parameter, > 0.
    rng : numpy.random.Generator
        Source of randomness.

    Returns
    -------
    partner : numpy.ndarray of shape (n_rows,) or None
        Batch index of each row's partner; None when no PU label has an
        observed positive in the batch (no MixUp for this batch).
    gamma : numpy.ndarray of shape (n_rows,) or None
        Mixing weight of each row's partner; None with ``partner``.
    """
    pos = observed_positives(y, pu_labels)
    labels = np.flatnonzero(pos.any(axis=0))
    if labels.size == 0:
        return None, None
    n = y.shape[0]
    chosen = labels[rng.integers(0, labels.size, size=n)]
    partner = np.empty(n, dtype=np.int64)
    for label in np.unique(chosen):
        rows = np.flatnonzero(chosen == label)
        candidates = np.flatnonzero(pos[:, label])
        partner[rows] = candidates[rng.integers(0, candidates.size, size=rows.size)]
    gamma = rng.beta(alpha, alpha, size=n)
    return partner, gamma


class DALLMiLoss(torch.nn.Module):
    """The full DALLMi training objective as a skorch criterion.

    ``total = variational + mixup_weight * mixup + known-entry BCE + anchor``,
    or with ``objective="published"`` the authors' norm loss with a MixUp
    term that carries no gradient (and the same BCE and anchor). The anchor
    term is there only when the batch carries the previous model's
    probabilities, weighted per label by ``anchor_weights``.

    Parameters
    ----------
    n_labels : int
        Number of labels.
    mixup_weight : float, default=0.1
        Weight ``lambda`` of the MixUp term.
    objective : {"dallmi", "published"}, default="dallmi"
        Which objective to compute.
    """

    def __init__(self, n_labels, mixup_weight=0.1, objective="dallmi"):
        super().__init__()
        self.mixup_weight = mixup_weight
        self.objective = objective
        self.register_buffer("pu_labels", torch.zeros(n_labels, dtype=torch.bool))
        self.register_buffer("anchor_weights", torch.zeros(n_labels))

    def set_pu_labels(self, pu_labels):
        """Set which labels are trained in PU mode (decided once per fit).

        Parameters
        ----------
        pu_labels : array-like of shape (n_labels,), dtype bool
            True for the labels trained in PU mode.
        """
        self.pu_labels.copy_(torch.as_tensor(np.asarray(pu_labels), dtype=torch.bool))

    def forward(self, logits, y, mix_logits=None, partner=None, gamma=None, anchor=None):
        """Compute the loss and its terms.

        Parameters
        ----------
        logits : torch.Tensor of shape (n_rows, n_labels)
            Logits of the batch.
        y : torch.Tensor of shape (n_rows, n_labels)
            Labels in ``{1, 0, -1}``.
        mix_logits : torch.Tensor of shape (n_rows, n_labels) or None, default=None
            Logits of the mixed inputs; None computes no MixUp term.
        partner : torch.Tensor of shape (n_rows,) or None, default=None
            Index in the batch of each row's MixUp partner.
        gamma : torch.Tensor of shape (n_rows,) or None, default=None
            Mixing weight of each row's partner.
        anchor : torch.Tensor of shape (n_rows, n_labels) or None, default=None
            A previous model's probabilities; None computes no anchor term.

        Returns
        -------
        total : torch.Tensor
            The scalar to minimise.
        terms : dict of str to torch.Tensor
            ``variational``, ``mixup``, ``bce`` and ``anchor``, detached.
        """
        logits = logits.float()
        pu = self.pu_labels
        bce = known_entries_bce(logits, y, pu)
        if mix_logits is not None:
            mix = mixup_loss(mix_logits.float(), logits, y, partner, gamma, pu)
        else:
            mix = logits.new_zeros(())
        kept = logits.new_zeros(()) if anchor is None else anchor_loss(
            logits, y, anchor, self.anchor_weights)
        if self.objective == "published":
            main = published_norm_loss(logits, y, pu)
            total = main + self.mixup_weight * mix.detach() + bce + kept
        else:
            main = variational_loss(logits, y, pu)
            total = main + self.mixup_weight * mix + bce + kept
        terms = {"variational": main.detach(), "mixup": mix.detach(), "bce": bce.detach(),
                 "anchor": kept.detach()}
        return total, terms

