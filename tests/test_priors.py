"""Class-prior estimators and the prior-matching logit shift, on tiny arrays."""

import numpy as np
import numpydoc.validate as numpydoc_validate
import pytest
from scipy.special import expit

from sklearn_dallmi import priors
from sklearn_dallmi.priors import (
    elkan_noto_prior,
    em_prior_shift,
    geometric_mean_prior,
    observed_positive_rate,
    pooled_frequency_prior,
    prior_logit_shift,
    pu_class_prior,
    source_mean_prior,
    vpu_prior,
)

# A calibrated model trained at prior 0.5 that outputs 0.9 for 90% of the
# positives and 10% of the negatives: a share f of texts at 0.9 means a
# prior pi with 0.9 pi + 0.1 (1 - pi) = f.
THREE_IN_TEN = np.array([[0.9]] * 3 + [[0.1]] * 7)


def _mixture(n, prior, slope, seed):
    """Texts from x | y ~ N(+-1, 1) and the posterior a model trained at 0.5 gives.

    The calibrated posterior at prior 0.5 is sigmoid(2 x); ``slope`` other
    than 2 makes the model over- (larger) or under-confident.
    """
    rng = np.random.default_rng(seed)
    y = rng.random(n) < prior
    x = rng.normal(np.where(y, 1.0, -1.0), 1.0)
    return y, expit(slope * x)[:, None]


# ----------------------------------------------------------- simple bounds

def test_observed_positive_rate():
    Y = [[1, -1, 0], [-1, -1, 0], [1, 0, 0], [-1, 1, 0]]
    np.testing.assert_array_equal(observed_positive_rate(Y), [0.5, 0.25, 0.0])


def test_source_mean_prior_plugs_in_known_entries():
    proba = [[0.2, 0.9, 0.0], [0.4, 0.1, 1.0], [0.0, 1.0, 0.5]]
    Y = [[-1, -1, 1], [1, 0, -1], [-1, -1, -1]]
    np.testing.assert_allclose(source_mean_prior(proba, Y), [(0.2 + 1 + 0) / 3, 1.9 / 3, 2.5 / 3])
    np.testing.assert_allclose(source_mean_prior(proba), [0.2, 2 / 3, 0.5])


def test_source_mean_prior_rejects_non_probabilities():
    with pytest.raises(ValueError, match="probabilities"):
        source_mean_prior([[1.5]])
    with pytest.raises(ValueError, match="shape"):
        source_mean_prior([[0.5, 0.5]], [[1]])


# ------------------------------------------------------------------- EM

def test_em_hand_computed():
    np.testing.assert_allclose(em_prior_shift(THREE_IN_TEN, 0.5, eps=0), [0.25], atol=1e-6)


def test_em_probabilities_of_exactly_zero_and_one():
    proba = [[1.0], [0.0], [0.0], [0.0]]
    # Clipped to 0.999 / 0.001: 0.999 pi + 0.001 (1 - pi) = 1/4.
    np.testing.assert_allclose(em_prior_shift(proba, 0.5), [0.249 / 0.998], atol=1e-6)
    # Unclipped, the infinite ratios stay finite in the result.
    np.testing.assert_allclose(em_prior_shift(proba, 0.5, eps=0), [0.25], atol=1e-6)


def test_em_source_prior_of_zero_or_one():
    proba = np.array([[0.0, 1.0], [0.0, 1.0], [0.0, 1.0], [0.0, 1.0]])
    Y = [[1, 0], [-1, -1], [-1, -1], [-1, -1]]
    # No density ratio without source positives (negatives): the bounds.
    np.testing.assert_allclose(em_prior_shift(proba, [0.0, 1.0], Y), [0.25, 0.75])
    assert np.isfinite(em_prior_shift(proba, [0.0, 1.0], eps=0)).all()


def test_em_adds_the_observed_positives_back():
    proba = np.vstack([[[0.5]], [[0.5]], THREE_IN_TEN])
    Y = np.array([[1], [1]] + [[-1]] * 10)
    np.testing.assert_allclose(em_prior_shift(proba, 0.5, Y, eps=0), [(2 + 2.5) / 12],
                               atol=1e-6)


def test_em_stays_within_the_label_bounds():
    # The unknown entries look negative: the estimate is the observed rate.
    proba = [[0.01], [0.01], [0.01], [0.01]]
    Y = [[1], [-1], [-1], [0]]
    assert em_prior_shift(proba, 0.5, Y)[0] == pytest.approx(0.25)


def test_em_shrinkage_and_max_iter():
    # A Beta prior of 10**6 texts keeps theta at the source prior.
    assert em_prior_shift(THREE_IN_TEN, 0.5, shrinkage=1e6)[0] == pytest.approx(0.5, abs=1e-3)
    # No iteration: theta is the starting point, the source prior.
    assert em_prior_shift(THREE_IN_TEN, 0.4, max_iter=0)[0] == pytest.approx(0.4)


def test_em_recovers_the_prior_of_a_known_mixture():
    y, proba = _mixture(20_000, 0.2, slope=2.0, seed=0)
    assert em_prior_shift(proba, 0.5)[0] == pytest.approx(0.2, abs=0.01)
    # With 30% of the positives observed (SCAR), from the unknown entries.
    keep = y & (np.random.default_rng(1).random(y.size) < 0.3)
    Y = np.where(keep, 1, -1)[:, None]
    assert em_prior_shift(proba, 0.5, Y)[0] == pytest.approx(0.2, abs=0.01)


def test_em_temperature_undoes_overconfidence():
    # Logits three times too large: EM overshoots; temperature 3 repairs it.
    _, proba = _mixture(20_000, 0.2, slope=6.0, seed=2)
    assert em_prior_shift(proba, 0.5, eps=1e-9)[0] < 0.2 - 0.02 or \
        em_prior_shift(proba, 0.5, eps=1e-9)[0] > 0.2 + 0.02
    assert em_prior_shift(proba, 0.5, temperature=3.0, eps=1e-9)[0] == pytest.approx(
        0.2, abs=0.01)


def test_em_checks_its_arguments():
    with pytest.raises(ValueError, match="source_prior"):
        em_prior_shift(THREE_IN_TEN, np.nan)
    with pytest.raises(ValueError, match="temperature"):
        em_prior_shift(THREE_IN_TEN, 0.5, temperature=0)


# ------------------------------------------------------------ PU estimates

def test_vpu_prior_hand_computed():
    z = np.log([[4.0, 4.0], [1.0, 1.0], [1 / 4, 1 / 4], [1 / 9, 1 / 9]])  # .8 .5 .2 .1
    Y = [[1, 1], [-1, 0], [-1, -1], [-1, -1]]
    # s = max over positive and unknown rows = .8; known negatives count 0.
    np.testing.assert_allclose(vpu_prior(z, Y, quantile=1.0),
                               [(1 + 0.625 + 0.25 + 0.125) / 4, (1 + 0.25 + 0.125) / 4])
    # s from the observed positives only: the same here.
    np.testing.assert_allclose(vpu_prior(z, Y, quantile=1.0, reference="positives"),
                               vpu_prior(z, Y, quantile=1.0))
    # The median as the scale clips the top unknown at 1: (1 + 1 + .2/.35 + .1/.35) / 4.
    np.testing.assert_allclose(vpu_prior(z[:, :1], np.array(Y)[:, :1], quantile=0.5),
                               [(2 + 0.3 / 0.35) / 4])


def test_vpu_prior_label_without_positive_and_single_text():
    z = np.zeros((3, 1))
    assert vpu_prior(z, [[-1], [-1], [-1]])[0] == 0.0
    assert vpu_prior([[2.0]], [[1]])[0] == 1.0
    assert vpu_prior([[-2.0]], [[-1]])[0] == 0.0


def test_elkan_noto_separable_and_flat_scores():
    scores = np.array([[4.0, 0.0]] * 4 + [[-4.0, 0.0]] * 4)
    Y = np.array([[1, 1]] * 2 + [[-1, -1]] * 6)
    # Separable: g is about 1/2 on the top group, c = 1/2, pi = (2/8) / (1/2).
    # Flat: g = 2/8 everywhere, c = 1/4, pi = 1, the upper bound.
    np.testing.assert_allclose(elkan_noto_prior(scores, Y), [0.5, 1.0], atol=0.01)
    np.testing.assert_allclose(elkan_noto_prior(scores, Y, estimator="e3"), [0.5, 1.0],
                               atol=0.01)


def test_elkan_noto_edge_cases():
    scores = np.array([[1.0, 1.0], [0.0, 0.0], [-1.0, -1.0]])
    Y = [[1, -1], [1, -1], [1, 0]]
    # Every entry an observed positive: 1; no positive: 0.
    np.testing.assert_array_equal(elkan_noto_prior(scores, Y), [1.0, 0.0])


def test_pooled_frequency_prior():
    Y = [[1, -1, -1], [-1, 1, -1], [-1, -1, -1], [-1, -1, -1]]
    # c = (1/4 + 1/4) / (0.5 + 1.0 + 0.3) ignores the label without positive.
    np.testing.assert_allclose(pooled_frequency_prior(Y, [0.5, 1.0, 0.3]),
                               [0.75, 0.75, 0.0])
    # The shared frequency cannot exceed 1, and a prior of 0 everywhere is kept.
    np.testing.assert_allclose(pooled_frequency_prior(Y, [0.1, 0.1, 0.0]), [0.25, 0.25, 0.0])
    np.testing.assert_allclose(pooled_frequency_prior(Y, [0.0, 0.0, 0.0]), [0.25, 0.25, 0.0])


def test_pooled_frequency_prior_partial_pooling():
    Y = [[1, -1, -1], [-1, 1, -1], [-1, -1, -1], [-1, -1, -1]]
    prior = [0.5, 1.0, 0.3]
    # Halfway in log space between each prior and the pooled 0.75.
    np.testing.assert_allclose(pooled_frequency_prior(Y, prior, pooling=0.5),
                               [np.sqrt(0.5 * 0.75), np.sqrt(0.75), 0.0])
    # No pooling: the priors, within the bounds [observed rate, 1].
    np.testing.assert_allclose(pooled_frequency_prior(Y, [0.1, 1.0, 0.3], pooling=0),
                               [0.25, 1.0, 0.3])
    with pytest.raises(ValueError, match="pooling"):
        pooled_frequency_prior(Y, prior, pooling=1.5)


def test_geometric_mean_prior():
    np.testing.assert_allclose(geometric_mean_prior([0.1, 0.5, 1.0], [0.4, 0.0, 0.25]),
                               [0.2, 0.0, 0.5])
    with pytest.raises(ValueError):
        geometric_mean_prior()


# ------------------------------------------------------------- the shift

def test_shift_hand_computed():
    z = np.array([[3.0], [1.0], [0.0], [-2.0]])
    np.testing.assert_array_equal(prior_logit_shift(z, 0.5), [0.5])
    np.testing.assert_array_equal(prior_logit_shift(z, 0.3), [2.0])    # round(1.2) = 1
    np.testing.assert_array_equal(prior_logit_shift(z, 0.0), [4.0])    # above the max
    np.testing.assert_array_equal(prior_logit_shift(z, 1.0), [-3.0])   # below the min
    np.testing.assert_array_equal(prior_logit_shift(z, 0.0, margin=0.5), [3.5])


def test_shift_ties_move_to_the_nearer_end():
    z = np.array([[2.0], [1.0], [1.0], [1.0], [0.0]])
    # k = 2 falls inside the tie of 1.0 (ranks 2-4): 1 above it is nearer.
    np.testing.assert_array_equal(prior_logit_shift(z, 0.4), [1.5])
    # k = 3 is nearer to 4.
    np.testing.assert_array_equal(prior_logit_shift(z, 0.6), [0.5])
    # k = 2 in a tie of ranks 2-3 is as near to 1 as to 3: the smaller count.
    np.testing.assert_array_equal(prior_logit_shift([[2.0], [1.0], [1.0], [0.0]], 0.5), [1.5])


def test_shift_all_equal_logits_and_single_text():
    z = np.ones((4, 1))
    np.testing.assert_array_equal(prior_logit_shift(z, 0.5), [2.0])    # none, on a draw
    np.testing.assert_array_equal(prior_logit_shift(z, 0.75), [0.0])   # all
    np.testing.assert_array_equal(prior_logit_shift([[0.3]], 0.2), [1.3])
    np.testing.assert_array_equal(prior_logit_shift([[0.3]], 0.8), [-0.7])


def test_shift_marks_the_prior_share_and_keeps_order():
    z = np.random.default_rng(0).normal(size=(101, 3))
    prior = np.array([0.0, 0.137, 0.9])
    shift = prior_logit_shift(z, prior)
    np.testing.assert_array_equal((z - shift >= 0).sum(axis=0), [0, 14, 91])
    proba = expit(z - shift)
    for label in range(3):
        order = np.argsort(z[:, label])
        assert (np.diff(proba[order, label]) > 0).all()


def test_shift_adjacent_floats():
    z = np.array([[1.0], [np.nextafter(1.0, 0.0)]])
    shift = prior_logit_shift(z, 0.5)
    assert (z - shift >= 0).sum() == 1


def test_shift_rejects_bad_input():
    with pytest.raises(ValueError, match="prior"):
        prior_logit_shift([[0.0]], 1.5)
    with pytest.raises(ValueError, match="prior"):
        prior_logit_shift([[0.0]], np.nan)
    with pytest.raises(ValueError, match="finite"):
        prior_logit_shift([[-np.inf]], 0.5)
    with pytest.raises(ValueError, match="non-empty"):
        prior_logit_shift(np.zeros((0, 2)), 0.5)


def test_pu_class_prior_composes_vpu_source_mean_and_pooling():
    z = np.array([[2.0, 0.0], [1.0, 3.0], [-1.0, 1.0], [-2.0, -1.0]])
    Y = np.array([[1, -1], [-1, 1], [-1, -1], [-1, -1]])
    before = np.array([[0.9, 0.2], [0.6, 0.8], [0.2, 0.5], [0.1, 0.1]])
    vpu = vpu_prior(z, Y, quantile=0.9)
    np.testing.assert_allclose(pu_class_prior(z, Y, quantile=0.9, pooling=0.0), vpu)
    # Full pooling: prior = n_pos / (c n), c = sum n_pos / sum (n first).
    c = 2 / (4 * vpu.sum())
    np.testing.assert_allclose(pu_class_prior(z, Y, quantile=0.9, pooling=1.0), 1 / (c * 4))
    source_mean = np.where(Y == -1, before, Y == 1).mean(axis=0)  # marks count 1
    first = np.sqrt(source_mean * vpu)
    np.testing.assert_allclose(pu_class_prior(z, Y, before, quantile=0.9, pooling=0.0), first)


@pytest.mark.parametrize("name", priors.__all__)
def test_docstring(name):
    result = numpydoc_validate.validate(f"sklearn_dallmi.priors.{name}")
    errors = [(c, m) for c, m in result["errors"] if c not in {"ES01", "SA01", "RT02"}]
    assert not errors, errors
