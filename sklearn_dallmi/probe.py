"""Linear probes: the head fitted on frozen encoder features before fine-tuning.

A randomly initialised head fine-tuned with little data distorts the
pretrained features (Kumar et al., "Fine-Tuning can Distort Pretrained
Features and Underperform Out-of-Distribution", ICLR 2022); fitting the head
on frozen features first, then fine-tuning everything (LP-FT), avoids it.
The probe is one logistic regression per label, all labels in one convex
problem solved by L-BFGS, with scikit-learn's objective for
``LogisticRegression(C=C, class_weight="balanced")``, and optionally an
anchor: the penalty pulls the weights toward given ones instead of zero
(L2-SP), so that a head adapted on few target positives stays near the
source head where the data say little.
"""

import torch
import torch.nn.functional as F

__all__ = ["fit_linear_probe"]


def fit_linear_probe(features, y, pu_labels, C=10.0, anchor=None, max_iter=200,
                     class_weight="balanced"):
    """Fit one logistic regression per label on fixed features, class-balanced by default.

    For label ``l`` it minimises ``0.5 * ||w_l - a_l||^2 + C * sum_i s_il *
    BCE(w_l . x_i + b_l, t_il)``, where ``a_l`` is the anchor's weight row
    (zero without an anchor), the intercept is not penalised, and ``s_il``
    balances the two classes as scikit-learn's ``class_weight="balanced"``
    does. The entries used are the known ones (``0`` or ``1``) for a
    supervised label and every entry for a PU label, whose unknowns are
    read as negatives: under SCAR the positive-versus-unlabelled classifier
    ranks texts as the positive-versus-negative one would. A label without
    both classes among its entries keeps the anchor (or zero).

    The balanced weights multiply the odds the fit estimates by
    ``n_neg / n_pos``; the returned intercept undoes it (adds
    ``log(n_pos / n_neg)``, the prior correction of King and Zeng, 2001), so
    that ``sigmoid(w . x + b)`` estimates the probability at the training
    prior while the direction ``w`` comes from the balanced fit.

    Parameters
    ----------
    features : torch.Tensor of shape (n_rows, n_features)
        Frozen features, such as the pooled encoder outputs.
    y : torch.Tensor of shape (n_rows, n_labels)
        Labels in ``{1, 0, -1}``.
    pu_labels : torch.Tensor of shape (n_labels,), dtype bool
        Which labels are trained in PU mode.
    C : float or torch.Tensor of shape (n_labels,), default=10.0
        Inverse regularisation strength, as in scikit-learn; a tensor gives
        each label its own.
    anchor : tuple of torch.Tensor or None, default=None
        ``(weight, bias)`` of shapes ``(n_labels, n_features)`` and
        ``(n_labels,)``: the weights are pulled toward ``weight`` and the
        fit starts from it and from ``bias``.
    max_iter : int, default=200
        Iterations of L-BFGS.
    class_weight : {"balanced", None}, default="balanced"
        None weighs every used entry 1 (scikit-learn's
        ``class_weight=None``); the intercept then needs no correction.

    Returns
    -------
    weight : torch.Tensor of shape (n_labels, n_features)
        The coefficients, in the dtype and on the device of ``features``.
    bias : torch.Tensor of shape (n_labels,)
        The intercepts, likewise.
    """
    if class_weight not in ("balanced", None):
        raise ValueError(f"class_weight must be 'balanced' or None, got {class_weight!r}.")
    x = features.double()
    y = y.to(x.device)
    C = torch.as_tensor(C, dtype=x.dtype, device=x.device)
    n_labels = y.shape[1]
    if anchor is None:
        center = x.new_zeros(n_labels, x.shape[1])
        bias0 = x.new_zeros(n_labels)
    else:
        center, bias0 = anchor[0].detach().double(), anchor[1].detach().double()
    used = (y != -1) | pu_labels.to(x.device)
    target = (y == 1) & used
    n_pos, n_neg = (target.sum(0)).double(), (used & ~target).sum(0).double()
    fitted = (n_pos > 0) & (n_neg > 0)
    total = n_pos + n_neg
    scale = (used & fitted).to(x.dtype)
    if class_weight == "balanced":
        scale = scale * torch.where(target, total / (2 * n_pos.clamp(min=1)),
                                    total / (2 * n_neg.clamp(min=1)))
    weight = center.clone().requires_grad_(True)
    bias = bias0.clone().requires_grad_(True)
    optimizer = torch.optim.LBFGS([weight, bias], max_iter=max_iter, tolerance_grad=1e-9,
                                  tolerance_change=1e-12, line_search_fn="strong_wolfe")

    def objective():
        optimizer.zero_grad()
        loss = F.binary_cross_entropy_with_logits(x @ weight.T + bias, target.double(),
                                                  weight=scale * C, reduction="sum")
        loss = loss + 0.5 * (((weight - center) ** 2).sum(1) * fitted).sum()
        loss.backward()
        return loss

    optimizer.step(objective)
    keep = fitted.unsqueeze(1)
    weight = torch.where(keep, weight.detach(), center)
    correction = (torch.log(n_pos.clamp(min=1) / n_neg.clamp(min=1))
                  if class_weight == "balanced" else 0)
    bias = torch.where(fitted, bias.detach() + correction, bias0)
    return weight.to(features.dtype), bias.to(features.dtype)
