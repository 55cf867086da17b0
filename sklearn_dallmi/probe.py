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

A new stage can also keep what the previous stage's texts said without
the texts: :func:`logistic_expansion` is the second-order expansion of
their loss at the fitted head, :func:`fit_expanded_probe` adds it to the
new texts' regression, and :func:`pu_roc_auc` scores candidate heads on
partially labelled texts (cross-validation picks among them).
"""

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import roc_auc_score

__all__ = ["fit_linear_probe", "logistic_expansion", "fit_expanded_probe", "pu_roc_auc"]


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


def _with_intercept(features):
    return F.pad(features.double(), (0, 1), value=1.0)


def logistic_expansion(features, y, weight, bias, labels):
    """Gradient and Hessian of each label's logistic loss at a head.

    For label ``l`` in ``labels``, the loss is ``sum_i BCE(w_l . x_i + b_l,
    y_il)`` over its known entries (``y_il != -1``), unweighted and without
    penalty; its expansion around ``theta_l = (w_l, b_l)`` stands in for
    those texts in a later fit (:func:`fit_expanded_probe`). Other labels
    get zeros.

    Parameters
    ----------
    features : torch.Tensor of shape (n_rows, n_features)
        The rows' frozen features.
    y : torch.Tensor of shape (n_rows, n_labels)
        Labels in ``{1, 0, -1}``.
    weight : torch.Tensor of shape (n_labels, n_features)
        The head's weights the loss is expanded around.
    bias : torch.Tensor of shape (n_labels,)
        The head's intercepts.
    labels : torch.Tensor of shape (n_labels,), dtype bool
        The labels to expand; the others get zeros.

    Returns
    -------
    gradient : torch.Tensor of shape (n_labels, n_features + 1)
        In float64; the last column is the intercept's.
    hessian : torch.Tensor of shape (n_labels, n_features + 1, n_features + 1)
        In float64.
    """
    x = _with_intercept(features)
    y = y.to(x.device)
    theta = torch.cat([weight.detach().double(), bias.detach().double()[:, None]], 1)
    p = torch.sigmoid(x @ theta.T)
    known = ((y != -1) & labels.to(x.device)).double()
    gradient = ((p - (y == 1).double()) * known).T @ x
    hessian = (x.T.unsqueeze(0) * (p * (1 - p) * known).T.unsqueeze(1)) @ x
    return gradient, hessian


def fit_expanded_probe(features, y, pu_labels, expansion, center, C=1.0, max_iter=200):
    """Logistic regressions on new rows plus the expansion of earlier rows' loss.

    For label ``l`` it minimises ``0.5 * ||w_l||^2 + C * sum_i BCE(w_l . x_i
    + b_l, t_il) + g_l . (theta_l - c_l) + 0.5 * (theta_l - c_l)' H_l
    (theta_l - c_l)``, where ``theta_l = (w_l, b_l)``, ``c_l`` is the head
    the expansion ``(g, H)`` was taken at (:func:`logistic_expansion`), and
    the entries used are as in :func:`fit_linear_probe` (a PU label's
    unknowns read as negatives), unweighted. With ``C=1`` this is the
    quadratic approximation of one regression on the earlier rows and the
    new ones together. A label without both classes among its entries
    keeps ``c_l``.

    Parameters
    ----------
    features : torch.Tensor of shape (n_rows, n_features)
        The new rows' frozen features.
    y : torch.Tensor of shape (n_rows, n_labels)
        Labels in ``{1, 0, -1}``.
    pu_labels : torch.Tensor of shape (n_labels,), dtype bool
        Labels whose unknowns are read as negatives.
    expansion : tuple of torch.Tensor
        ``(gradient, hessian)`` as :func:`logistic_expansion` returns.
    center : tuple of torch.Tensor
        ``(weight, bias)``: the head the expansion was taken at.
    C : float, default=1.0
        Inverse regularisation strength of the new rows' term.
    max_iter : int, default=200
        Iterations of L-BFGS.

    Returns
    -------
    weight : torch.Tensor of shape (n_labels, n_features)
        In the dtype and on the device of ``features``.
    bias : torch.Tensor of shape (n_labels,)
        The intercepts, likewise.
    """
    x = _with_intercept(features)
    y = y.to(x.device)
    gradient, hessian = (t.to(x.device, torch.float64) for t in expansion)
    start = torch.cat([center[0].detach().double(), center[1].detach().double()[:, None]],
                      1).to(x.device)
    used = (y != -1) | pu_labels.to(x.device)
    target = (y == 1) & used
    fitted = target.any(0) & (used & ~target).any(0)
    scale = (used & fitted).double() * C
    theta = start.clone().requires_grad_(True)
    optimizer = torch.optim.LBFGS([theta], max_iter=max_iter, tolerance_grad=1e-9,
                                  tolerance_change=1e-12, line_search_fn="strong_wolfe")

    def objective():
        optimizer.zero_grad()
        loss = F.binary_cross_entropy_with_logits(x @ theta.T, target.double(), weight=scale,
                                                  reduction="sum")
        step = (theta - start) * fitted.unsqueeze(1)
        loss = loss + 0.5 * ((theta[:, :-1] ** 2).sum(1) * fitted).sum()
        loss = loss + (gradient * step).sum() + 0.5 * (step.unsqueeze(1) @ hessian
                                                        @ step.unsqueeze(2)).sum()
        loss.backward()
        return loss

    optimizer.step(objective)
    theta = torch.where(fitted.unsqueeze(1), theta.detach(), start)
    return theta[:, :-1].to(features.dtype), theta[:, -1].to(features.dtype)


def pu_roc_auc(y, scores, labels):
    """Macro ROC AUC of the observed positives against every other entry.

    Under SCAR the unknowns hold positives at the labels' rate, and the AUC
    of observed positives against unknowns is an increasing linear function
    of the AUC of positives against negatives: it ranks scores without a
    labelled negative.

    Parameters
    ----------
    y : numpy.ndarray of shape (n_rows, n_labels)
        Labels in ``{1, 0, -1}``.
    scores : numpy.ndarray of shape (n_rows, n_labels)
        Any increasing scores of the labels (logits or probabilities).
    labels : numpy.ndarray of shape (n_labels,), dtype bool
        The labels averaged over; those without an observed positive or
        without another entry are left out.

    Returns
    -------
    auc : float
        NaN when no label qualifies.
    """
    positive = y == 1
    counts = positive.sum(axis=0)
    columns = np.flatnonzero(labels & (counts > 0) & (counts < len(y)))
    if not columns.size:
        return float("nan")
    return float(np.mean([roc_auc_score(positive[:, j], scores[:, j]) for j in columns]))
