"""Class priors of partially labelled texts, and the decisions they imply.

A PU label's network output ``Phi = sigmoid(z)`` is proportional to the
posterior, not equal to it, so its decision threshold must come from
elsewhere. The functions here estimate, per label, the share ``pi`` of
positives among the texts of a fit, from what the fit can see:

- the partial labels ``Y`` (``1`` observed positive, ``0`` known negative,
  ``-1`` unknown); the observed positives alone give the lower bound
  :func:`observed_positive_rate`;
- in the two-stage flow, the source model's probabilities on these texts
  and the positive rate of the source labels (:func:`source_mean_prior`,
  :func:`em_prior_shift`);
- the adapted network's logits on these texts (:func:`vpu_prior`,
  :func:`elkan_noto_prior`).

:func:`prior_logit_shift` turns priors into the per-label logit shift that
makes ``predict`` mark about ``pi`` of the texts positive.

All functions take and return numpy arrays; rows are texts, columns labels.

Measured on the benchmark's tuning pairs (``docs/benchmark/prior_probe.py``):
the estimate that served ``predict`` best, and stayed close when labels
were marked unevenly, is the geometric mean of the source model's mean
probability and :func:`vpu_prior`, moved halfway to a labelling frequency
shared by the labels: :func:`pu_class_prior`, ``DALLMiClassifier``'s
estimate (its ``frequency_pooling`` is the ``pooling`` there, default
0.5; without a source model, VPU's estimate alone is pooled). EM prior shift on the source model fails under the
domains' covariate shift: most target texts look more positive to the
source model than its source prior, which puts the likelihood's maximum at
1 for many labels.
"""

import numpy as np
from scipy.special import expit, logit

__all__ = [
    "observed_positive_rate",
    "source_mean_prior",
    "em_prior_shift",
    "vpu_prior",
    "elkan_noto_prior",
    "pooled_frequency_prior",
    "geometric_mean_prior",
    "pu_class_prior",
    "prior_logit_shift",
]


def _scores(values, name, *, probability=False):
    values = np.asarray(values, dtype=float)
    if values.ndim == 1:
        values = values[:, None]
    if values.ndim != 2 or values.shape[0] == 0:
        raise ValueError(f"{name} must be a non-empty 2-D array (n_texts, n_labels), "
                         f"got shape {values.shape}.")
    if probability:
        if np.isnan(values).any() or (values < 0).any() or (values > 1).any():
            raise ValueError(f"{name} must hold probabilities in [0, 1].")
    elif not np.isfinite(values).all():
        raise ValueError(f"{name} must be finite.")
    return values


def _labels(Y, shape):
    if Y is None:
        return np.full(shape, -1, dtype=np.int8)
    Y = np.asarray(Y)
    if Y.ndim == 1:
        Y = Y[:, None]
    if Y.shape != shape:
        raise ValueError(f"Y has shape {Y.shape} but the scores have shape {shape}.")
    if not np.isin(Y, (-1, 0, 1)).all():
        raise ValueError("Y must hold only 1, 0 and -1.")
    return Y


def _per_label(values, n_labels, name):
    values = np.broadcast_to(np.asarray(values, dtype=float), (n_labels,))
    if np.isnan(values).any() or (values < 0).any() or (values > 1).any():
        raise ValueError(f"{name} must hold one value in [0, 1] per label.")
    return values


def _bounds(Y):
    """Per label: observed positives / n, and 1 - known negatives / n."""
    return (Y == 1).mean(axis=0), 1 - (Y == 0).mean(axis=0)


def observed_positive_rate(Y):
    """Share of texts that are observed positives: a lower bound of the prior.

    Parameters
    ----------
    Y : array-like of shape (n_texts, n_labels)
        Partial labels: ``1`` observed positive, ``0`` known negative, ``-1``
        unknown.

    Returns
    -------
    rate : numpy.ndarray of shape (n_labels,)
        ``(Y == 1).mean(axis=0)``.

    Examples
    --------
    >>> observed_positive_rate([[1, -1], [-1, -1], [1, 0], [-1, 1]])
    array([0.5 , 0.25])
    """
    Y = np.asarray(Y)
    return _bounds(_labels(Y, Y.shape if Y.ndim == 2 else (len(Y), 1)))[0]


def source_mean_prior(proba, Y=None):
    """Mean probability of the source model on the target texts.

    Known entries of ``Y`` replace the model's probability (``1`` for an
    observed positive, ``0`` for a known negative), so the estimate never
    falls below the observed positive rate.

    Parameters
    ----------
    proba : array-like of shape (n_texts, n_labels)
        The source model's probabilities on the target texts.
    Y : array-like of shape (n_texts, n_labels) or None, default=None
        Partial labels of the target texts (``1``, ``0``, ``-1``); None
        treats every entry as unknown.

    Returns
    -------
    prior : numpy.ndarray of shape (n_labels,)
        Estimated share of positives per label.

    Examples
    --------
    >>> source_mean_prior([[0.2, 0.9], [0.4, 0.1]], [[-1, -1], [1, -1]])
    array([0.6, 0.5])
    """
    proba = _scores(proba, "proba", probability=True)
    Y = _labels(Y, proba.shape)
    return np.where(Y == -1, proba, Y == 1).mean(axis=0)


def em_prior_shift(proba, source_prior, Y=None, *, temperature=1.0, eps=1e-3,
                   shrinkage=0.0, max_iter=1000, tol=1e-8):
    """Prior of the target texts by EM on the source model's probabilities.

    The expectation-maximisation of Saerens, Latinne and Decaestecker
    (2002): under label shift, the source posterior ``p`` and the source
    prior ``pi_s`` give each text's density ratio
    ``r = p / (1 - p) * (1 - pi_s) / pi_s``, and the target's share of
    positives ``theta`` is the maximum-likelihood weight of the mixture,
    reached by iterating ``w = theta r / (theta r + 1 - theta)``,
    ``theta = mean(w)`` from ``theta = pi_s``.

    With partial labels, EM runs on the unknown entries only and the
    observed positives are added back, ``pi = (n_pos + n_unknown theta) /
    n``: the unknown entries are the mixture whose weight is free (it
    depends on the unknown share of positives kept), and the estimate
    cannot fall below the observed positive rate.

    Parameters
    ----------
    proba : array-like of shape (n_texts, n_labels)
        The source model's probabilities on the target texts.
    source_prior : float or array-like of shape (n_labels,)
        Positive rate of each label in the source model's training labels.
        A label with a source prior of 0 or 1 gives the source model no
        density ratio to work with: its estimate is the observed positive
        rate (0) or one minus the known-negative rate (1).
    Y : array-like of shape (n_texts, n_labels) or None, default=None
        Partial labels of the target texts; None treats every entry as
        unknown (the plain method).
    temperature : float, default=1.0
        Divides the log density ratio ``log r``; above 1 it softens an
        overconfident source model, whose extreme ratios otherwise drive
        the estimate to a bound.
    eps : float, default=1e-3
        Probabilities and the source prior are clipped to
        ``[eps, 1 - eps]``, so that a probability of exactly 0 or 1 does
        not make a ratio infinite.
    shrinkage : float, default=0.0
        Weight, in texts, of a Beta prior on ``theta`` centred on the
        source prior (maximum a posteriori EM); 0 is maximum likelihood.
    max_iter : int, default=1000
        Maximum number of EM iterations.
    tol : float, default=1e-8
        Stop when no label's ``theta`` moves by more than ``tol``.

    Returns
    -------
    prior : numpy.ndarray of shape (n_labels,)
        Estimated share of positives per label.

    Notes
    -----
    The log-likelihood is concave in ``theta``, so EM cannot oscillate: it
    increases the likelihood at every step towards the unique maximum in
    ``[0, 1]``. What goes wrong with a fine-tuned network is that maximum:
    overconfident probabilities put it at (or near) 0 or 1, where EM also
    converges slowly. Clipping, ``temperature`` and ``shrinkage`` address
    the cause, ``max_iter`` bounds the cost.

    References
    ----------
    .. [1] Saerens, Latinne, Decaestecker. "Adjusting the outputs of a
       classifier to new a priori probabilities: a simple procedure."
       Neural Computation 14(1), 2002.

    Examples
    --------
    A calibrated model trained at a prior of 0.5 gives 0.9 to 90% of the
    positives and 10% of the negatives; 3 texts in 10 at 0.9 mean that a
    quarter are positive (0.9 pi + 0.1 (1 - pi) = 0.3):

    >>> p = [[0.9]] * 3 + [[0.1]] * 7
    >>> em_prior_shift(p, 0.5, eps=1e-6).round(3)
    array([0.25])
    """
    proba = _scores(proba, "proba", probability=True)
    n_texts, n_labels = proba.shape
    source_prior = _per_label(source_prior, n_labels, "source_prior")
    Y = _labels(Y, proba.shape)
    if temperature <= 0 or not 0 <= eps < 0.5 or shrinkage < 0:
        raise ValueError("temperature must be positive, eps in [0, 0.5), shrinkage >= 0.")
    unknown = Y == -1
    n_unknown = unknown.sum(axis=0)
    pi_s = np.clip(source_prior, eps, 1 - eps)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_ratio = (logit(np.clip(proba, eps, 1 - eps)) - logit(pi_s)) / temperature
    # An exact 0 or 1 survives only with eps=0; its ratio then decides its
    # own side whatever theta is.
    log_ratio = np.nan_to_num(log_ratio, nan=0.0)
    theta = pi_s.copy()
    tiny = 1e-12
    for _ in range(max_iter):
        w = expit(logit(np.clip(theta, tiny, 1 - tiny)) + log_ratio)
        new = ((w * unknown).sum(axis=0) + shrinkage * pi_s) / np.maximum(
            n_unknown + shrinkage, tiny)
        done = np.max(np.abs(new - theta)) <= tol
        theta = new
        if done:
            break
    lower, upper = _bounds(Y)
    prior = lower + n_unknown * theta / n_texts
    prior = np.where(source_prior <= 0, lower, prior)
    prior = np.where(source_prior >= 1, upper, prior)
    return np.clip(prior, lower, upper)


def vpu_prior(logits, Y, *, quantile=0.99, reference="anchor"):
    """Prior from the adapted network alone, by VPU's normalisation.

    VPU's output ``Phi`` is proportional to the posterior, with the scale
    ``s`` at the texts the network is surest of (posterior near 1), so
    ``min(Phi / s, 1)`` estimates the posterior and its mean the prior.
    Observed positives count 1, known negatives 0, unknown entries
    ``min(Phi / s, 1)``.

    Parameters
    ----------
    logits : array-like of shape (n_texts, n_labels)
        The network's logits ``z`` (``Phi = sigmoid(z)``) on the texts of
        the fit, after training.
    Y : array-like of shape (n_texts, n_labels)
        Partial labels of these texts.
    quantile : float, default=0.99
        ``s`` is this quantile of ``Phi`` over the reference rows (VPU:
        the maximum, 1.0).
    reference : {"anchor", "positives"}, default="anchor"
        Rows the quantile is taken over: ``"anchor"`` the positive and
        unknown entries (as the classifier's ``scale_quantile``),
        ``"positives"`` the observed positives only.

    Returns
    -------
    prior : numpy.ndarray of shape (n_labels,)
        Estimated share of positives per label; the observed positive rate
        (0) for a label without an observed positive.

    Examples
    --------
    >>> z = np.log([[4.0], [1.0], [1 / 4], [1 / 9]])  # Phi .8, .5, .2, .1
    >>> vpu_prior(z, [[1], [-1], [-1], [-1]], quantile=1.0)  # (1 + .625 + .25 + .125) / 4
    array([0.5])
    """
    logits = _scores(logits, "logits")
    Y = _labels(Y, logits.shape)
    if not 0 < quantile <= 1 or reference not in ("anchor", "positives"):
        raise ValueError("quantile must lie in (0, 1], reference be 'anchor' or 'positives'.")
    phi = expit(logits)
    lower, upper = _bounds(Y)
    prior = lower.copy()
    for label in np.flatnonzero(lower > 0):
        y = Y[:, label]
        rows = y == 1 if reference == "positives" else y != 0
        s = max(np.quantile(phi[rows, label], quantile), 1e-12)
        prior[label] += np.minimum(phi[y == -1, label] / s, 1).sum() / len(y)
    return np.clip(prior, lower, upper)


def _logistic_1d(x, s, ridge=1e-3, n_iter=50):
    """Coefficients (a, b) of ``P(s=1 | x) = sigmoid(a x + b)`` by Newton."""
    X = np.column_stack([x, np.ones_like(x)])
    beta = np.array([0.0, logit(np.clip(s.mean(), 1e-6, 1 - 1e-6))])
    penalty = np.diag([ridge, 0.0])
    for _ in range(n_iter):
        g = expit(X @ beta)
        grad = X.T @ (s - g) - penalty @ beta
        hess = (X * (g * (1 - g))[:, None]).T @ X + penalty + 1e-12 * np.eye(2)
        step = np.linalg.solve(hess, grad)
        beta += step
        if np.abs(step).max() < 1e-10:
            break
    return beta


def elkan_noto_prior(scores, Y, *, estimator="e1"):
    """Prior from a positive-versus-unknown classifier (Elkan and Noto 2008).

    Per label, a one-dimensional logistic regression ``g(x) = P(observed |
    score)`` is fitted on the positive and unknown entries; under SCAR
    ``g = c P(y = 1 | x)``, and the labelling frequency ``c`` is estimated
    as the mean (``e1``) or maximum (``e3``) of ``g`` over the observed
    positives, so ``pi = n_pos / (c n)``.

    Parameters
    ----------
    scores : array-like of shape (n_texts, n_labels)
        One score per text and label, higher for positives: the source
        model's logits on the target texts (which never saw their labels,
        so ``g`` is fitted out of sample) or the adapted network's.
    Y : array-like of shape (n_texts, n_labels)
        Partial labels of the texts.
    estimator : {"e1", "e3"}, default="e1"
        How ``c`` is read from ``g``.

    Returns
    -------
    prior : numpy.ndarray of shape (n_labels,)
        Estimated share of positives per label, within the bounds the labels
        give; the observed positive rate (0) for a label without an observed
        positive.

    Notes
    -----
    The estimate of ``c`` is only as good as the score separates the
    positives: with an uninformative score ``g`` is flat, ``c`` falls to the
    observed share of the unknown entries and the prior rises to its upper
    bound.

    References
    ----------
    .. [1] Elkan, Noto. "Learning classifiers from only positive and
       unlabeled data." KDD 2008.

    Examples
    --------
    >>> scores = [[4.0], [4.0], [4.0], [4.0], [-4.0], [-4.0], [-4.0], [-4.0]]
    >>> Y = [[1], [1], [-1], [-1], [-1], [-1], [-1], [-1]]
    >>> elkan_noto_prior(scores, Y).round(2)
    array([0.5])
    """
    scores = _scores(scores, "scores")
    Y = _labels(Y, scores.shape)
    if estimator not in ("e1", "e3"):
        raise ValueError("estimator must be 'e1' or 'e3'.")
    lower, upper = _bounds(Y)
    prior = lower.copy()
    for label in np.flatnonzero(lower > 0):
        rows = Y[:, label] != 0
        x, s = scores[rows, label], (Y[rows, label] == 1).astype(float)
        if s.all():
            continue
        spread = x.std()
        x = (x - x.mean()) / (spread if spread > 0 else 1.0)
        g = expit(np.column_stack([x, np.ones_like(x)]) @ _logistic_1d(x, s))
        c = g[s == 1].mean() if estimator == "e1" else g.max()
        prior[label] = lower[label] / max(c, 1e-12)
    return np.clip(prior, lower, upper)


def pooled_frequency_prior(Y, prior, *, pooling=1.0):
    """Estimate priors from the observed positives and one labelling frequency.

    Under SCAR with the same share ``c`` of positives observed for every
    label, ``n_pos_l / n = c pi_l``. A first prior per label (``prior``,
    e.g. the geometric mean of :func:`source_mean_prior` and
    :func:`vpu_prior`) pooled over the labels gives
    ``c = sum_l n_pos_l / sum_l n prior_l``, dominated by the frequent
    labels, and then ``pi_l = n_pos_l / (c n)``. With ``pooling`` below 1,
    each label moves only that far, in log space, from its first prior
    towards this estimate: ``prior_l ** (1 - pooling) * pi_l ** pooling``.

    Parameters
    ----------
    Y : array-like of shape (n_texts, n_labels)
        Partial labels of the texts.
    prior : array-like of shape (n_labels,)
        A first estimate of each label's prior.
    pooling : float in [0, 1], default=1.0
        1 trusts the shared frequency fully, 0 returns ``prior`` (within
        the bounds the labels give).

    Returns
    -------
    prior : numpy.ndarray of shape (n_labels,)
        Estimated share of positives per label, within the bounds the labels
        give.

    Notes
    -----
    The shared frequency is an assumption about how the labels were
    collected. It holds in the benchmark, which keeps the same share of
    every label's positives, and fails when annotators mark some labels
    more thoroughly than others: a label marked ``k`` times more
    thoroughly than the average gets a prior ``k ** pooling`` times too
    large.

    Examples
    --------
    >>> Y = [[1, -1], [-1, 1], [-1, -1], [-1, -1]]
    >>> pooled_frequency_prior(Y, [0.5, 1.0])  # c = (1 + 1) / (4 * 1.5)
    array([0.75, 0.75])
    >>> pooled_frequency_prior(Y, [0.5, 1.0], pooling=0.5).round(3)
    array([0.612, 0.866])
    """
    Y = np.asarray(Y)
    Y = _labels(Y, Y.shape if Y.ndim == 2 else (len(Y), 1))
    prior = _per_label(prior, Y.shape[1], "prior")
    if not 0 <= pooling <= 1:
        raise ValueError(f"pooling must lie in [0, 1], got {pooling}.")
    lower, upper = _bounds(Y)
    used = (lower > 0) & (prior > 0)
    if not used.any() or pooling == 0:
        return np.clip(prior, lower, upper)
    c = min(lower[used].sum() / prior[used].sum(), 1.0)
    pooled = lower / c
    if pooling < 1:
        with np.errstate(divide="ignore"):
            mixed = np.exp((1 - pooling) * np.log(prior) + pooling * np.log(pooled))
        # A first prior of 0 has no log to interpolate: the pooled value alone.
        pooled = np.where(prior > 0, mixed, pooled)
    return np.clip(pooled, lower, upper)


def geometric_mean_prior(*priors):
    """Geometric mean of several prior estimates, label by label.

    Parameters
    ----------
    *priors : array-like of shape (n_labels,)
        Estimates in ``[0, 1]``.

    Returns
    -------
    prior : numpy.ndarray of shape (n_labels,)
        Their geometric mean (0 where one of them is 0).

    Examples
    --------
    >>> geometric_mean_prior([0.1, 0.5], [0.4, 0.0])
    array([0.2, 0. ])
    """
    if not priors:
        raise ValueError("geometric_mean_prior needs at least one estimate.")
    stacked = np.vstack([_per_label(p, np.size(p), "each prior") for p in priors])
    with np.errstate(divide="ignore"):
        return np.exp(np.log(stacked).mean(axis=0))


def pu_class_prior(logits, Y, previous_proba=None, *, quantile=0.99, pooling=0.5):
    """Estimate the class priors of PU labels as ``DALLMiClassifier`` does.

    :func:`vpu_prior` on the network's logits, in a continued fit its
    :func:`geometric_mean_prior` with the previous model's
    :func:`source_mean_prior` on the same texts, then moved ``pooling`` of
    the way toward one labelling frequency shared by the labels
    (:func:`pooled_frequency_prior`).

    Parameters
    ----------
    logits : array-like of shape (n_texts, n_labels)
        The network's logits on the texts of the fit.
    Y : array-like of shape (n_texts, n_labels)
        Their partial labels; each label needs an observed positive.
    previous_proba : array-like of shape (n_texts, n_labels), default=None
        The previous model's probabilities on the same texts (a continued
        fit), or None.
    quantile : float in (0, 1], default=0.99
        :func:`vpu_prior`'s scale quantile (the classifier's
        ``scale_quantile``).
    pooling : float in [0, 1], default=0.5
        The classifier's ``frequency_pooling``.

    Returns
    -------
    prior : numpy.ndarray of shape (n_labels,)
        Estimated share of positives per label.

    Examples
    --------
    >>> z = [[2.0, 0.0], [1.0, 3.0], [-1.0, 1.0], [-2.0, -1.0]]
    >>> Y = [[1, -1], [-1, 1], [-1, -1], [-1, -1]]
    >>> vpu_prior(z, Y).round(3)
    array([0.569, 0.646])
    >>> pu_class_prior(z, Y).round(3)  # halfway to one shared frequency
    array([0.588, 0.627])
    """
    estimate = vpu_prior(logits, Y, quantile=quantile)
    if previous_proba is not None:
        estimate = geometric_mean_prior(source_mean_prior(previous_proba, Y), estimate)
    return pooled_frequency_prior(Y, estimate, pooling=pooling)


def prior_logit_shift(logits, prior, *, margin=1.0):
    """Per-label logit shift that makes a share ``prior`` of the texts positive.

    For label ``l`` with ``n`` texts, ``k = round(prior_l n)`` of them should
    have ``z - shift_l >= 0``. The shift is the midpoint between the
    ``k``-th and ``(k + 1)``-th largest distinct logits, so that exactly
    ``k`` texts lie above it and ``sigmoid(z - shift)`` stays a strictly
    increasing map. When the ``k``-th and ``(k + 1)``-th logits tie, the
    count moves to the nearer end of the tied group (the smaller count on
    a draw). With ``k = 0`` (or ``n``) the shift lies ``margin`` above the
    largest (below the smallest) logit.

    Parameters
    ----------
    logits : array-like of shape (n_texts, n_labels)
        The network's logits on the texts of the fit.
    prior : float or array-like of shape (n_labels,)
        Share of positives wanted per label, in ``[0, 1]``.
    margin : float, default=1.0
        Distance, in logits, between the shift and the extreme logit when
        no text (or every text) should be positive.

    Returns
    -------
    shift : numpy.ndarray of shape (n_labels,)
        To subtract from the logits before the sigmoid.

    Examples
    --------
    >>> z = [[3.0], [1.0], [0.0], [-2.0]]
    >>> prior_logit_shift(z, 0.5)
    array([0.5])
    >>> prior_logit_shift(z, 0.0)
    array([4.])
    """
    logits = _scores(logits, "logits")
    n_texts, n_labels = logits.shape
    prior = _per_label(prior, n_labels, "prior")
    if not margin > 0:
        raise ValueError(f"margin must be positive, got {margin}.")
    ordered = -np.sort(-logits, axis=0)
    shift = np.empty(n_labels)
    for label in range(n_labels):
        z = ordered[:, label]
        k = int(np.floor(prior[label] * n_texts + 0.5))
        if 0 < k < n_texts and z[k - 1] == z[k]:
            above = np.count_nonzero(z > z[k])
            at_or_above = np.count_nonzero(z >= z[k])
            k = above if k - above <= at_or_above - k else at_or_above
        if k == 0:
            shift[label] = z[0] + margin
        elif k == n_texts:
            shift[label] = z[-1] - margin
        else:
            mid = z[k] + (z[k - 1] - z[k]) / 2
            # Two adjacent floats have no float between them.
            shift[label] = mid if mid > z[k] else np.nextafter(z[k], np.inf)
    return shift
