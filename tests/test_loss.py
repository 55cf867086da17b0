"""The DALLMi criterion pinned to hand-computed values on tiny tensors.

Expected numbers are computed here from the formulas (math / numpy, float64),
never by calling the function under test.
"""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from sklearn_dallmi.loss import (
    DALLMiLoss,
    anchor_loss,
    draw_mixup_partners,
    known_entries_bce,
    mixup_loss,
    observed_positives,
    published_norm_loss,
    variational_loss,
)


# ----------------------------------------------------------------- helpers


def log_sigmoid(z):
    """Stable float64 log(sigmoid(z)) = -log(1 + exp(-z))."""
    return -np.logaddexp(0.0, -np.asarray(z, dtype=np.float64))


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-np.asarray(z, dtype=np.float64)))


def t(a, dtype=torch.float32, grad=False):
    out = torch.tensor(np.asarray(a), dtype=dtype)
    return out.requires_grad_(grad) if grad else out


def mask(a):
    return torch.tensor(a, dtype=torch.bool)


def vpu_label(z, y):
    """VPU loss of one label column: log mean_A sigmoid - mean_P log sigmoid."""
    z = np.asarray(z, dtype=np.float64)
    y = np.asarray(y)
    anchor = y != 0
    pos = y == 1
    ls = log_sigmoid(z)
    # log(mean(exp(ls))) computed stably in float64.
    m = ls[anchor].max()
    log_mean = m + math.log(np.exp(ls[anchor] - m).sum()) - math.log(anchor.sum())
    return log_mean - ls[pos].mean()


Z = np.array(
    [
        [0.5, -1.0, 2.0],
        [-0.3, 1.5, 0.0],
        [1.2, 0.4, -2.0],
        [-1.7, -0.2, 0.7],
        [0.9, 2.2, -0.6],
    ]
)
Y = np.array(
    [
        [1, -1, 0],
        [-1, 1, 1],
        [0, -1, 0],
        [-1, 1, -1],
        [1, 0, -1],
    ]
)


# -------------------------------------------------------- observed_positives


def test_observed_positives_leave_out_labelled_rows():
    # Labels 0 and 1 are PU, label 2 supervised. Row 0 has no -1 and a 0 on
    # PU label 1: a labelled (source) row. Row 2 likewise, without a
    # positive. Row 3 has no -1 but its only 0 is on the supervised label:
    # nothing says it was labelled for the PU labels. Rows 1 and 4 have a -1.
    y = np.array([[1, 0, 1], [1, -1, 0], [0, 0, 0], [1, 1, 0], [-1, 1, 0]])
    pu = np.array([True, True, False])
    expected = [(1, 0), (3, 0), (3, 1), (4, 1)]
    got = observed_positives(y, pu)
    assert got.dtype == bool
    assert sorted(map(tuple, np.argwhere(got))) == expected
    got_t = observed_positives(t(y), mask(pu))
    assert got_t.dtype == torch.bool
    assert sorted(map(tuple, torch.nonzero(got_t).tolist())) == expected


def test_observed_positives_without_labelled_rows_are_the_pu_ones():
    # Every row has a -1: each 1 of a PU label is an observed positive.
    pu = np.array([True, False, True])
    assert np.array_equal(observed_positives(Y, pu), (Y == 1) & pu)


# ---------------------------------------------------------- variational_loss


def test_variational_loss_matches_hand_formula_single_label():
    z = np.array([[0.3], [-1.2], [2.0], [0.0]])
    y = np.array([[1], [-1], [-1], [0]])
    # A = rows 0,1,2 ; P = row 0 ; the known negative (row 3) is excluded.
    s = sigmoid(z[:3, 0])
    expected = math.log(s.mean()) - math.log(sigmoid(0.3))
    got = variational_loss(t(z), t(y), mask([True]))
    assert got.item() == pytest.approx(expected, rel=1e-5)


def test_variational_loss_averages_over_pu_labels():
    pu = [True, True, True]
    expected = np.mean([vpu_label(Z[:, j], Y[:, j]) for j in range(3)])
    got = variational_loss(t(Z), t(Y), mask(pu))
    assert got.item() == pytest.approx(expected, rel=1e-5)


def test_variational_loss_ignores_supervised_labels():
    # Label 1 is supervised: only labels 0 and 2 enter the average.
    expected = np.mean([vpu_label(Z[:, 0], Y[:, 0]), vpu_label(Z[:, 2], Y[:, 2])])
    got = variational_loss(t(Z), t(Y), mask([True, False, True]))
    assert got.item() == pytest.approx(expected, rel=1e-5)


def test_variational_loss_skips_pu_label_without_positive_in_batch():
    y = Y.copy()
    y[:, 2] = np.where(y[:, 2] == 1, -1, y[:, 2])  # label 2: no positive left
    assert not (y[:, 2] == 1).any()
    expected = np.mean([vpu_label(Z[:, 0], y[:, 0]), vpu_label(Z[:, 1], y[:, 1])])
    got = variational_loss(t(Z), t(y), mask([True, True, True]))
    assert got.item() == pytest.approx(expected, rel=1e-5)


def test_variational_loss_no_positive_at_all_is_zero_with_gradient_path():
    z = t(Z, grad=True)
    y = np.where(Y == 1, -1, Y)
    got = variational_loss(z, t(y), mask([True, True, True]))
    assert got.item() == 0.0
    got.backward()
    assert z.grad is not None
    assert torch.all(z.grad == 0)


def test_variational_loss_all_unknown_rows_enter_the_anchor_set():
    z = np.array([[1.0, 0.2], [-0.5, -0.5], [0.3, 1.1], [2.0, -2.0]])
    y = np.array([[1, 1], [-1, -1], [-1, -1], [-1, -1]])  # rows 1-3 all -1
    expected = np.mean([vpu_label(z[:, j], y[:, j]) for j in range(2)])
    got = variational_loss(t(z), t(y), mask([True, True]))
    assert got.item() == pytest.approx(expected, rel=1e-5)
    # Sanity of the hand formula: with all rows unknown but one, the loss
    # is log(mean sigmoid over 4 rows) - log sigmoid of the positive.
    s = sigmoid(z[:, 0])
    assert vpu_label(z[:, 0], y[:, 0]) == pytest.approx(
        math.log(s.mean()) - math.log(s[0])
    )


def test_variational_loss_leaves_labelled_rows_out():
    # Rows 0 and 1 are labelled (no -1, a 0 on a PU label): out of P and A.
    # Label 0: P = {2}, A = {2, 3, 4}; label 1: P = {3}, A = {2, 3, 4}.
    z = np.array([[2.0, -1.0], [-0.5, 1.5], [0.3, 0.8], [-1.1, 0.4], [0.7, -0.2]])
    y = np.array([[1, 0], [0, 1], [1, -1], [-1, 1], [-1, -1]])
    partial = y[2:]
    expected = np.mean([vpu_label(z[2:, j], partial[:, j]) for j in range(2)])
    got = variational_loss(t(z), t(y), mask([True, True]))
    assert got.item() == pytest.approx(expected, rel=1e-5)
    # The labelled rows' positives go to the cross-entropy, with their zeros.
    expected_bce = bce_hand(z[:2], y[:2].astype(float)).mean()
    assert known_entries_bce(t(z), t(y), mask([True, True])).item() == pytest.approx(
        expected_bce, rel=1e-5)


def test_variational_loss_ignores_known_negatives():
    # Raising the logit of a known negative changes nothing.
    z2 = Z.copy()
    z2[2, 0] += 5.0  # Y[2, 0] == 0
    a = variational_loss(t(Z), t(Y), mask([True, True, True]))
    b = variational_loss(t(z2), t(Y), mask([True, True, True]))
    assert a.item() == pytest.approx(b.item(), abs=1e-7)


@pytest.mark.parametrize("big", [100.0, 1e4])
def test_variational_loss_extreme_logits_finite_value_and_gradient(big):
    z = np.array([[big, -big], [-big, big], [big, big], [-big, -big]])
    y = np.array([[1, 1], [-1, 1], [-1, -1], [1, -1]])
    zt = t(z, grad=True)
    got = variational_loss(zt, t(y), mask([True, True]))
    assert torch.isfinite(got)
    expected = np.mean([vpu_label(z[:, j], y[:, j]) for j in range(2)])
    assert got.item() == pytest.approx(expected, rel=1e-5, abs=1e-3)
    got.backward()
    assert torch.isfinite(zt.grad).all()


def test_variational_loss_gradient_matches_finite_differences():
    zt = torch.tensor(Z, dtype=torch.float64, requires_grad=True)
    yt = torch.tensor(Y, dtype=torch.float64)
    assert torch.autograd.gradcheck(
        lambda z: variational_loss(z, yt, mask([True, True, True])), (zt,)
    )


# --------------------------------------------------------------- mixup_loss


def mixup_hand(mix, main, y, partner, gamma, pu):
    mix = np.asarray(mix, dtype=np.float64)
    main = np.asarray(main, dtype=np.float64)
    g = np.asarray(gamma, dtype=np.float64)[:, None]
    target = np.log(g + (1 - g) * sigmoid(main))
    diff = (target - log_sigmoid(mix)) ** 2
    m = (y[partner] == 1) & np.asarray(pu)[None, :]
    return diff[m].mean()


MIX = np.array(
    [
        [0.1, 0.8, -0.4],
        [1.3, -0.6, 0.2],
        [-0.9, 0.0, 1.1],
        [0.4, 0.3, -1.5],
        [2.0, -1.0, 0.5],
    ]
)
PARTNER = np.array([0, 1, 4, 1, 3])
GAMMA = np.array([0.2, 0.7, 0.5, 0.95, 0.05])


def test_mixup_loss_matches_hand_formula():
    pu = [True, True, True]
    expected = mixup_hand(MIX, Z, Y, PARTNER, GAMMA, pu)
    got = mixup_loss(t(MIX), t(Z), t(Y), torch.tensor(PARTNER), t(GAMMA), mask(pu))
    assert got.item() == pytest.approx(expected, rel=1e-5)


def test_mixup_loss_only_counts_pu_labels_where_partner_is_positive():
    pu = [True, False, True]
    # Hand mask: partner rows 0,1,4,1,3 ; Y[partner] == 1 on PU labels 0 and 2.
    y_p = Y[PARTNER]
    m = (y_p == 1) & np.array(pu)
    # By hand: partners 0,1,4,1,3 are positives of PU labels at (row, label)
    # (0,0), (1,2), (2,0), (3,2); row 4's partner (3) is positive only on
    # the supervised label 1.
    assert sorted(map(tuple, np.argwhere(m))) == [(0, 0), (1, 2), (2, 0), (3, 2)]
    expected = mixup_hand(MIX, Z, Y, PARTNER, GAMMA, pu)
    got = mixup_loss(t(MIX), t(Z), t(Y), torch.tensor(PARTNER), t(GAMMA), mask(pu))
    assert got.item() == pytest.approx(expected, rel=1e-5)
    # Changing an entry outside the mask (label 1 is supervised) changes nothing.
    mix2 = MIX.copy()
    mix2[:, 1] += 3.0
    got2 = mixup_loss(t(mix2), t(Z), t(Y), torch.tensor(PARTNER), t(GAMMA), mask(pu))
    assert got2.item() == pytest.approx(got.item(), abs=1e-7)


def test_mixup_loss_skips_partners_from_labelled_rows():
    # Row 0 is labelled (no -1, a 0 on PU label 1): as a partner it gives no
    # entry; row 2's partner (row 1) is an observed positive of label 0.
    y = np.array([[1, 0], [1, -1], [-1, -1]])
    main = np.array([[0.2, -0.4], [1.0, 0.5], [-0.3, 0.1]])
    mix = np.array([[0.7, 0.0], [0.4, -1.0], [0.9, 0.6]])
    partner = np.array([0, 0, 1])
    gamma = np.array([0.3, 0.6, 0.25])
    g = 0.25
    expected = (math.log(g + (1 - g) * sigmoid(-0.3)) - log_sigmoid(0.9)) ** 2
    got = mixup_loss(t(mix), t(main), t(y), torch.tensor(partner), t(gamma),
                     mask([True, True]))
    assert got.item() == pytest.approx(expected, rel=1e-5)


def test_mixup_loss_single_entry_by_hand():
    # One row, one label: partner is itself (an observed positive).
    zmix, zu, g = 0.4, -0.7, 0.3
    expected = (math.log(g + (1 - g) * sigmoid(zu)) - math.log(sigmoid(zmix))) ** 2
    got = mixup_loss(
        t([[zmix]]), t([[zu]]), t([[1]]), torch.tensor([0]), t([g]), mask([True])
    )
    assert got.item() == pytest.approx(expected, rel=1e-5)


def test_mixup_loss_has_gradient_wrt_mix_and_main_logits():
    mix = t(MIX, grad=True)
    main = t(Z, grad=True)
    got = mixup_loss(mix, main, t(Y), torch.tensor(PARTNER), t(GAMMA), mask([True] * 3))
    got.backward()
    assert mix.grad is not None and main.grad is not None
    assert mix.grad.abs().sum() > 0
    # The target is not detached: the unmixed logits receive gradient.
    assert main.grad.abs().sum() > 0
    # d/d z_mix of (target - log sig(z_mix))^2 for one masked entry, by hand:
    # -2 (target - log sig) * (1 - sig(z_mix)) / n_masked.
    m = (Y[PARTNER] == 1)
    g = GAMMA[:, None]
    target = np.log(g + (1 - g) * sigmoid(Z))
    hand = -2 * (target - log_sigmoid(MIX)) * (1 - sigmoid(MIX)) * m / m.sum()
    np.testing.assert_allclose(mix.grad.numpy(), hand, rtol=1e-4, atol=1e-7)


def test_mixup_loss_uses_the_gamma_that_mixed_the_embeddings():
    # VPU's target log(gamma + (1 - gamma) sigmoid(z)) with the gamma of the
    # mix, unclamped: at z = -20 and gamma = 1e-8 the target is log(1.2e-8),
    # not log(1e-6 + ...) as a clamp to [1e-6, 1 - 1e-6] would make it.
    zmix, zu, g = 0.0, -20.0, 1e-8
    target = math.log(g + (1 - g) * sigmoid(zu))
    expected = (target - math.log(sigmoid(zmix))) ** 2
    got = mixup_loss(t([[zmix]]), t([[zu]]), t([[1]]), torch.tensor([0]), t([g]), mask([True]))
    assert expected == pytest.approx(307.66, abs=0.01)  # the clamp gave 172.14
    assert got.item() == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("gamma_value", [0.0, 1.0])
def test_mixup_loss_gamma_at_the_bounds_is_finite(gamma_value):
    mix = t(MIX, grad=True)
    main = t(Z, grad=True)
    gamma = t(np.full(5, gamma_value))
    got = mixup_loss(mix, main, t(Y), torch.tensor(PARTNER), gamma, mask([True] * 3))
    assert torch.isfinite(got)
    got.backward()
    assert torch.isfinite(mix.grad).all() and torch.isfinite(main.grad).all()
    # The limits of the formula (gamma is kept an epsilon inside [0, 1]):
    m = (Y[PARTNER] == 1)
    if gamma_value == 0.0:
        expected = ((log_sigmoid(Z) - log_sigmoid(MIX)) ** 2)[m].mean()
    else:
        expected = (log_sigmoid(MIX) ** 2)[m].mean()
    assert got.item() == pytest.approx(expected, rel=1e-3, abs=1e-4)


def test_mixup_loss_extreme_logits_finite():
    mix = t([[1e4, -1e4], [-1e4, 1e4]], grad=True)
    main = t([[-1e4, 1e4], [1e4, -1e4]], grad=True)
    y = t([[1, 1], [1, -1]])
    got = mixup_loss(mix, main, y, torch.tensor([1, 0]), t([0.5, 0.5]), mask([True, True]))
    assert torch.isfinite(got)
    got.backward()
    assert torch.isfinite(mix.grad).all() and torch.isfinite(main.grad).all()


def test_mixup_loss_without_masked_entry_is_zero():
    y = np.where(Y == 1, -1, Y)
    y[0, 1] = 1  # the only positive, on a supervised label
    mix = t(MIX, grad=True)
    got = mixup_loss(mix, t(Z), t(y), torch.tensor([0] * 5), t(GAMMA), mask([True, False, True]))
    assert got.item() == 0.0
    got.backward()
    assert torch.all(mix.grad == 0)


# -------------------------------------------------------- known_entries_bce


def bce_hand(z, target):
    z = np.asarray(z, dtype=np.float64)
    return -(target * log_sigmoid(z) + (1 - target) * log_sigmoid(-z))


def test_known_entries_bce_matches_hand_formula():
    pu = np.array([True, False, True])
    # Known entries: every entry of supervised label 1 that is not -1, and
    # the zeros of PU labels 0 and 2. Observed positives of PU labels and
    # unknowns are left out.
    sel = (Y == 0) | ((Y == 1) & ~pu)
    expected = bce_hand(Z, (Y == 1).astype(float))[sel].mean()
    got = known_entries_bce(t(Z), t(Y), mask(pu))
    assert got.item() == pytest.approx(expected, rel=1e-5)
    # By hand, the selected entries are:
    assert sorted(map(tuple, np.argwhere(sel))) == [
        (0, 2), (1, 1), (2, 0), (2, 2), (3, 1), (4, 1),
    ]


def test_known_entries_bce_nothing_known_is_zero():
    y = np.full((3, 2), -1)
    z = t(np.ones((3, 2)), grad=True)
    got = known_entries_bce(z, t(y), mask([True, True]))
    assert got.item() == 0.0
    got.backward()
    assert torch.all(z.grad == 0)


# --------------------------------------------------------- published_norm_loss


def norm_hand(z, y, pu):
    phi = sigmoid(z)
    total = 0.0
    for label in np.flatnonzero(pu):
        pos = y[:, label] == 1
        # The authors' script averages over every row of the batch.
        mean_all = phi[:, label].mean()
        norm_p = math.sqrt((phi[pos, label] ** 2).sum()) if pos.any() else 0.0
        total += mean_all - norm_p
    return total


def test_published_norm_loss_matches_hand_formula():
    pu = np.array([True, False, True])
    got = published_norm_loss(t(Z), t(Y), mask(pu))
    assert got.item() == pytest.approx(norm_hand(Z, Y, pu), rel=1e-5)


# --------------------------------------------------------------- DALLMiLoss


def test_dallmi_loss_fully_labelled_is_plain_bce():
    rng = np.random.default_rng(0)
    z = torch.tensor(rng.normal(scale=3, size=(9, 4)), dtype=torch.float32)
    y = torch.tensor(rng.integers(0, 2, size=(9, 4)), dtype=torch.float32)
    crit = DALLMiLoss(4, mixup_weight=0.3)
    assert not crit.pu_labels.any()
    total, terms = crit(z, y)
    expected = F.binary_cross_entropy_with_logits(z, y)
    # Tight tolerance rather than bit equality: the same quantity, reduced as
    # sum / count instead of mean.
    torch.testing.assert_close(total, expected, rtol=1e-6, atol=0)
    assert terms["variational"].item() == 0.0
    assert terms["mixup"].item() == 0.0
    # Also by hand in float64.
    assert total.item() == pytest.approx(bce_hand(z.numpy(), y.numpy()).mean(), rel=1e-5)


def test_dallmi_loss_total_is_sum_of_hand_terms():
    lam = 0.25
    pu = np.array([True, False, True])
    crit = DALLMiLoss(3, mixup_weight=lam)
    crit.set_pu_labels(pu)
    total, terms = crit(t(Z), t(Y), t(MIX), torch.tensor(PARTNER), t(GAMMA))
    var = np.mean([vpu_label(Z[:, 0], Y[:, 0]), vpu_label(Z[:, 2], Y[:, 2])])
    mix = mixup_hand(MIX, Z, Y, PARTNER, GAMMA, pu)
    sel = (Y == 0) | ((Y == 1) & ~pu)
    bce = bce_hand(Z, (Y == 1).astype(float))[sel].mean()
    assert terms["variational"].item() == pytest.approx(var, rel=1e-5)
    assert terms["mixup"].item() == pytest.approx(mix, rel=1e-5)
    assert terms["bce"].item() == pytest.approx(bce, rel=1e-5)
    assert total.item() == pytest.approx(var + lam * mix + bce, rel=1e-5)
    for value in terms.values():
        assert not value.requires_grad


def test_dallmi_loss_mixup_term_carries_gradient():
    crit = DALLMiLoss(3, mixup_weight=0.1)
    crit.set_pu_labels([True, True, True])
    mix = t(MIX, grad=True)
    total, _ = crit(t(Z, grad=True), t(Y), mix, torch.tensor(PARTNER), t(GAMMA))
    (g,) = torch.autograd.grad(total, mix)
    assert g.abs().sum() > 0


def test_dallmi_loss_published_objective():
    lam = 0.5
    pu = np.array([True, True, True])
    crit = DALLMiLoss(3, mixup_weight=lam, objective="published")
    crit.set_pu_labels(pu)
    mix = t(MIX, grad=True)
    main = t(Z, grad=True)
    total, terms = crit(main, t(Y), mix, torch.tensor(PARTNER), t(GAMMA))
    norm = norm_hand(Z, Y, pu)
    mixv = mixup_hand(MIX, Z, Y, PARTNER, GAMMA, pu)
    bce = bce_hand(Z, (Y == 1).astype(float))[Y == 0].mean()
    assert terms["variational"].item() == pytest.approx(norm, rel=1e-5)
    assert terms["mixup"].item() == pytest.approx(mixv, rel=1e-5)
    assert total.item() == pytest.approx(norm + lam * mixv + bce, rel=1e-5)
    g_mix, g_main = torch.autograd.grad(total, (mix, main), allow_unused=True)
    # The published code adds MixUp with .item(): no gradient reaches it.
    assert g_mix is None or torch.all(g_mix == 0)
    # The main objective does carry gradient.
    assert g_main is not None and g_main.abs().sum() > 0


def test_dallmi_loss_set_pu_labels():
    crit = DALLMiLoss(3)
    crit.set_pu_labels(np.array([True, False, True]))
    assert crit.pu_labels.tolist() == [True, False, True]
    assert crit.pu_labels.dtype == torch.bool


# ------------------------------------------------------- draw_mixup_partners


def test_draw_mixup_partners_are_observed_positives_of_pu_labels():
    # Label 0 is supervised with a positive at row 0; label 1 is PU with
    # positives at rows 2 and 3: only rows 2 and 3 may be partners.
    y = np.array([[1, -1], [0, -1], [0, 1], [-1, 1], [0, -1], [1, 0]])
    pu = np.array([False, True])
    partner, gamma = draw_mixup_partners(y, pu, 0.3, np.random.default_rng(0))
    assert partner.shape == (6,) and gamma.shape == (6,)
    assert set(partner.tolist()) <= {2, 3}
    assert np.all((gamma >= 0) & (gamma <= 1))


def test_draw_mixup_partners_skip_labelled_rows():
    # Rows 0 and 1 are labelled (no -1, a 0 on a PU label): only row 2's
    # positive is an observed one.
    y = np.array([[1, 0], [0, 1], [1, -1], [-1, -1]])
    partner, _ = draw_mixup_partners(y, np.array([True, True]), 0.3,
                                     np.random.default_rng(0))
    assert set(partner.tolist()) == {2}


def test_draw_mixup_partners_each_partner_positive_for_some_pu_label():
    rng = np.random.default_rng(1)
    y = rng.choice([-1, 0, 1], size=(20, 5), p=[0.5, 0.3, 0.2])
    pu = np.array([True, True, False, True, False])
    partner, _ = draw_mixup_partners(y, pu, 0.3, np.random.default_rng(2))
    assert partner.dtype.kind == "i"
    assert np.all(((y[partner] == 1) & pu).any(axis=1))


def test_draw_mixup_partners_none_without_pu_positive():
    y = np.array([[1, -1], [0, -1], [1, 0]])  # the PU label has no positive
    partner, gamma = draw_mixup_partners(y, np.array([False, True]), 0.3,
                                         np.random.default_rng(0))
    assert partner is None and gamma is None


def test_draw_mixup_partners_reproducible_with_same_seed():
    rng = np.random.default_rng(3)
    y = rng.choice([-1, 0, 1], size=(16, 4))
    pu = np.array([True, True, True, True])
    a = draw_mixup_partners(y, pu, 0.3, np.random.default_rng(42))
    b = draw_mixup_partners(y, pu, 0.3, np.random.default_rng(42))
    c = draw_mixup_partners(y, pu, 0.3, np.random.default_rng(43))
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[1], c[1])


def test_draw_mixup_partners_label_uniform_and_beta_gamma():
    # Label 0 has one positive (row 0), label 1 has ten (rows 1-10): labels
    # are drawn uniformly, so row 0 is the partner of about half the rows.
    n = 4000
    y = np.full((n, 2), -1)
    y[0, 0] = 1
    y[1:11, 1] = 1
    alpha = 0.3
    partner, gamma = draw_mixup_partners(y, np.array([True, True]), alpha,
                                         np.random.default_rng(0))
    share = np.mean(partner == 0)
    assert 0.45 < share < 0.55
    assert set(np.unique(partner[partner != 0]).tolist()) <= set(range(1, 11))
    # Beta(a, a): mean 1/2, variance 1 / (4 (2a + 1)).
    assert gamma.mean() == pytest.approx(0.5, abs=0.03)
    assert gamma.var() == pytest.approx(1 / (4 * (2 * alpha + 1)), rel=0.08)


# ------------------------------------------------------------------- anchor


def test_anchor_loss_matches_hand_formula():
    z = np.array([[0.5, -1.0], [2.0, 0.0], [-3.0, 1.5]])
    y = np.array([[-1, 1], [1, -1], [-1, -1]])
    q = np.array([[0.2, 0.9], [0.7, 0.4], [0.1, 0.6]])
    w = np.array([0.5, 2.0])

    def bce(zz, qq):
        return -(qq * math.log(sigmoid(zz)) + (1 - qq) * math.log(1 - sigmoid(zz)))

    # Unknown entries only: (0, 0), (2, 0) with weight 0.5; (1, 1), (2, 1) with 2.
    expected = (0.5 * (bce(0.5, 0.2) + bce(-3.0, 0.1)) + 2 * (bce(0.0, 0.4) + bce(1.5, 0.6))) / 4
    assert anchor_loss(t(z), t(y), t(q), t(w)).item() == pytest.approx(expected, rel=1e-5)
    # A label of weight 0 leaves the entries and the count.
    w0 = np.array([0.0, 2.0])
    expected0 = 2 * (bce(0.0, 0.4) + bce(1.5, 0.6)) / 2
    assert anchor_loss(t(z), t(y), t(q), t(w0)).item() == pytest.approx(expected0, rel=1e-5)


def test_anchor_loss_without_unknown_entry_is_zero_with_gradient_path():
    z = t([[0.3, -0.2]], grad=True)
    loss = anchor_loss(z, t([[1, 0]]), t([[0.5, 0.5]]), t([1.0, 1.0]))
    assert loss.item() == 0.0
    loss.backward()
    assert z.grad is not None


def test_dallmi_loss_adds_the_anchor_term_only_when_given():
    z, y = t([[0.5, -1.0], [2.0, 0.0]], grad=True), t([[-1, 1], [1, -1]])
    criterion = DALLMiLoss(2, mixup_weight=0.0)
    criterion.set_pu_labels([True, True])
    criterion.anchor_weights.copy_(torch.tensor([1.0, 1.0]))
    plain, terms = criterion(z, y)
    assert terms["anchor"].item() == 0.0
    q = t([[0.3, 0.5], [0.5, 0.8]])
    anchored, terms = criterion(z, y, anchor=q)
    expected = anchor_loss(z, y, q, criterion.anchor_weights).item()
    assert terms["anchor"].item() == pytest.approx(expected)
    assert anchored.item() == pytest.approx(plain.item() + expected, rel=1e-6)
