"""The linear probe against scikit-learn's logistic regression, and its anchor."""

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression

from sklearn_dallmi.probe import fit_linear_probe


@pytest.fixture
def problem():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 5))
    w = rng.normal(size=(3, 5))
    Y = (x @ w.T + rng.normal(size=(120, 3)) > 0.8).astype(int)
    return x, Y


def _sklearn(x, y, C):
    """sklearn's balanced fit, its intercept moved back to the training prior."""
    model = LogisticRegression(C=C, class_weight="balanced", tol=1e-10, max_iter=10_000)
    model.fit(x, y)
    return model.coef_[0], model.intercept_[0] + np.log(y.sum() / (len(y) - y.sum()))


@pytest.mark.parametrize("C", [0.1, 10.0])
def test_supervised_labels_match_sklearn(problem, C):
    x, Y = problem
    weight, bias = fit_linear_probe(torch.tensor(x), torch.tensor(Y), torch.zeros(3, dtype=bool),
                                    C=C)
    for label in range(3):
        coef, intercept = _sklearn(x, Y[:, label], C)
        np.testing.assert_allclose(weight[label].numpy(), coef, rtol=1e-4, atol=1e-5)
        assert bias[label].item() == pytest.approx(intercept, rel=1e-4, abs=1e-5)


def test_unweighted_probe_matches_sklearn_without_class_weight(problem):
    x, Y = problem
    weight, bias = fit_linear_probe(torch.tensor(x), torch.tensor(Y), torch.zeros(3, dtype=bool),
                                    C=1.0, class_weight=None)
    for label in range(3):
        model = LogisticRegression(C=1.0, tol=1e-10, max_iter=10_000).fit(x, Y[:, label])
        np.testing.assert_allclose(weight[label].numpy(), model.coef_[0], rtol=1e-4, atol=1e-5)
        assert bias[label].item() == pytest.approx(model.intercept_[0], rel=1e-4, abs=1e-5)
    with pytest.raises(ValueError, match="class_weight"):
        fit_linear_probe(torch.tensor(x), torch.tensor(Y), torch.zeros(3, dtype=bool),
                         class_weight="auto")


def test_pu_label_reads_unknown_as_negative_and_supervised_skips_it(problem):
    x, Y = problem
    partial = np.where(Y == 1, 1, -1)
    partial[::2] = -1  # hide half of every label's positives
    pu = torch.tensor([True, False, True])
    supervised = np.where(partial == 1, 1, 0)
    supervised[5:40, 1] = -1  # label 1 is supervised: its unknowns are left out
    y = partial.copy()
    y[:, 1] = supervised[:, 1]
    weight, bias = fit_linear_probe(torch.tensor(x), torch.tensor(y), pu, C=1.0)
    for label in (0, 2):  # positives against everything else
        coef, intercept = _sklearn(x, (partial[:, label] == 1).astype(int), 1.0)
        np.testing.assert_allclose(weight[label].numpy(), coef, rtol=1e-4, atol=1e-5)
    known = y[:, 1] != -1
    coef, intercept = _sklearn(x[known], y[known, 1], 1.0)
    np.testing.assert_allclose(weight[1].numpy(), coef, rtol=1e-4, atol=1e-5)
    assert bias[1].item() == pytest.approx(intercept, rel=1e-4, abs=1e-5)


def test_intercept_gives_probabilities_at_the_training_prior():
    # On a one-feature problem the corrected probe's mean probability is
    # close to the positive rate, while the balanced one's is near 1/2.
    rng = np.random.default_rng(1)
    y = (rng.random(4000) < 0.1).astype(int)
    x = (rng.normal(size=4000) + 1.5 * y)[:, None]
    weight, bias = fit_linear_probe(torch.tensor(x), torch.tensor(y[:, None]),
                                    torch.zeros(1, dtype=bool), C=10.0)
    p = torch.sigmoid(torch.tensor(x) @ weight.T + bias).numpy()
    assert abs(p.mean() - y.mean()) < 0.02


def test_anchor_pulls_toward_the_given_weights(problem):
    x, Y = problem
    xt, yt = torch.tensor(x), torch.tensor(Y)
    pu = torch.zeros(3, dtype=bool)
    free = fit_linear_probe(xt, yt, pu, C=1.0)
    anchor = (torch.full((3, 5), 3.0, dtype=torch.float64), torch.zeros(3, dtype=torch.float64))
    anchored = fit_linear_probe(xt, yt, pu, C=1.0, anchor=anchor)
    assert (anchored[0] - anchor[0]).norm() < (free[0] - anchor[0]).norm()
    # With a vanishing C the data do not count: the anchor is the answer.
    tight = fit_linear_probe(xt, yt, pu, C=1e-9, anchor=anchor)
    torch.testing.assert_close(tight[0], anchor[0], atol=1e-5, rtol=0)


def test_per_label_C_is_each_label_fitted_with_its_own(problem):
    x, Y = problem
    xt, yt, pu = torch.tensor(x), torch.tensor(Y), torch.zeros(3, dtype=bool)
    anchor = (torch.full((3, 5), 0.5, dtype=torch.float64), torch.zeros(3, dtype=torch.float64))
    C = torch.tensor([0.01, 1.0, 100.0], dtype=torch.float64)
    weight, bias = fit_linear_probe(xt, yt, pu, C=C, anchor=anchor)
    for label, c in enumerate(C.tolist()):
        w, b = fit_linear_probe(xt, yt, pu, C=c, anchor=anchor)
        torch.testing.assert_close(weight[label], w[label], atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(bias[label], b[label], atol=1e-5, rtol=1e-4)
    # One label thrice: the smaller its C, the nearer it stays to the anchor.
    same = yt[:, :1].repeat(1, 3)
    weight, _ = fit_linear_probe(xt, same, pu, C=C, anchor=anchor)
    distance = (weight - anchor[0]).norm(dim=1)
    assert distance[0] < distance[1] < distance[2]


def test_label_without_both_classes_keeps_the_anchor_or_zero(problem):
    x, Y = problem
    y = torch.tensor(Y)
    y[:, 0] = 0  # no positive
    y[:, 1] = -1  # PU label without a positive
    pu = torch.tensor([False, True, False])
    weight, bias = fit_linear_probe(torch.tensor(x).float(), y, pu)
    assert weight.dtype == torch.float32
    assert torch.all(weight[:2] == 0) and torch.all(bias[:2] == 0)
    assert torch.any(weight[2] != 0)
    anchor = (torch.ones(3, 5), torch.full((3,), -2.0))
    weight, bias = fit_linear_probe(torch.tensor(x).float(), y, pu, anchor=anchor)
    assert torch.all(weight[:2] == 1) and torch.all(bias[:2] == -2)


# ----------------------------------------------------- the earlier texts' expansion


def test_expansion_is_the_gradient_and_hessian_of_the_known_entries_loss(problem):
    from sklearn_dallmi.probe import logistic_expansion

    x, Y = problem
    Y = Y.copy()
    Y[:30, 1] = -1  # unknown entries are left out of the loss
    x = torch.tensor(x)
    weight, bias = torch.randn(3, 5, dtype=torch.float64), torch.randn(3, dtype=torch.float64)
    gradient, hessian = logistic_expansion(x, torch.tensor(Y), weight, bias,
                                           torch.tensor([True, True, False]))
    for label in (0, 1):
        known = Y[:, label] != -1
        rows, target = x[known], torch.tensor(Y[known, label] == 1).double()

        def loss(theta, rows=rows, target=target):
            return torch.nn.functional.binary_cross_entropy_with_logits(
                rows @ theta[:-1] + theta[-1], target, reduction="sum")

        theta = torch.cat([weight[label], bias[label:label + 1]])
        torch.testing.assert_close(gradient[label], torch.func.grad(loss)(theta))
        torch.testing.assert_close(hessian[label], torch.func.hessian(loss)(theta))
    assert not gradient[2].any() and not hessian[2].any()  # not among `labels`


def test_expanded_probe_keeps_the_joint_optimum_where_it_stands(problem):
    """At the optimum of one regression on rows A and B together, the
    expansion of A's loss taken there makes the same point optimal on B."""
    from sklearn_dallmi.probe import fit_expanded_probe, fit_linear_probe, logistic_expansion

    x, Y = (torch.tensor(a) for a in problem)
    supervised = torch.zeros(3, dtype=torch.bool)
    joint = fit_linear_probe(x, Y, supervised, C=1.0, class_weight=None, max_iter=500)
    a, b = slice(0, 70), slice(70, None)
    expansion = logistic_expansion(x[a], Y[a], *joint, ~supervised)
    weight, bias = fit_expanded_probe(x[b], Y[b], supervised, expansion, joint)
    torch.testing.assert_close(weight, joint[0], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(bias, joint[1], atol=1e-5, rtol=1e-4)
    # Away from it, the fit moves: toward B's own regression without A.
    alone = fit_linear_probe(x[b], Y[b], supervised, C=1.0, class_weight=None)
    zero = tuple(torch.zeros_like(t) for t in expansion)
    free, _ = fit_expanded_probe(x[b], Y[b], supervised, zero, joint)
    torch.testing.assert_close(free, alone[0], atol=1e-4, rtol=1e-3)


def test_expanded_probe_reads_pu_unknowns_as_negatives_and_skips_one_class_labels(problem):
    from sklearn_dallmi.probe import fit_expanded_probe

    x, Y = problem
    x = torch.tensor(x)
    Y_pu = np.where(Y == 1, 1, -1)
    Y_pu[:, 2] = -1  # no observed positive: keeps the center
    zero = (torch.zeros(3, 6, dtype=torch.float64), torch.zeros(3, 6, 6, dtype=torch.float64))
    center = (torch.ones(3, 5, dtype=torch.float64), torch.full((3,), 0.5, dtype=torch.float64))
    pu = torch.tensor([True, True, True])
    w_pu, b_pu = fit_expanded_probe(x, torch.tensor(Y_pu), pu, zero, center)
    w_0, b_0 = fit_expanded_probe(x, torch.tensor(np.maximum(Y_pu, 0)), pu, zero, center)
    torch.testing.assert_close(w_pu[:2], w_0[:2])
    torch.testing.assert_close(w_pu[2], center[0][2])
    assert b_pu[2].item() == 0.5


def test_pu_roc_auc_by_hand():
    from sklearn_dallmi.probe import pu_roc_auc

    y = np.array([[1, 1, -1], [-1, -1, -1], [-1, 1, 0], [1, -1, -1]])
    scores = np.array([[0.9, 0.2, 0.1], [0.1, 0.5, 0.3], [0.8, 0.4, 0.2], [0.3, 0.9, 0.0]])
    # Label 0: positives 0.9 and 0.3 against 0.1 and 0.8: 3 of 4 pairs in order.
    # Label 1: positives 0.2 and 0.4 against 0.5 and 0.9: none. Label 2 has no positive.
    assert pu_roc_auc(y, scores, np.array([True, False, True])) == 0.75
    assert pu_roc_auc(y, scores, np.array([True, True, True])) == pytest.approx(0.375)
    assert np.isnan(pu_roc_auc(y, scores, np.array([False, False, True])))
