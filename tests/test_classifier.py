"""DALLMiClassifier end to end on the tiny encoder and the keyword task."""

import copy
import warnings

import joblib
import numpy as np
import pytest
import torch
from scipy.special import expit
from sklearn.metrics import average_precision_score, f1_score

from sklearn_dallmi import DALLMiClassifier
from sklearn_dallmi.metrics import macro_average_precision
from sklearn_dallmi.priors import (geometric_mean_prior, pooled_frequency_prior,
                                   prior_logit_shift, source_mean_prior, vpu_prior)
from sklearn_dallmi.net import TokenizedDataset
from sklearn_dallmi.text import tokenize

FAST = dict(max_epochs=1, batch_size=8, max_length=24, lr=1e-3, random_state=0)


@pytest.fixture
def small(keyword_task):
    """The first 48 training rows: enough for fast smoke-level fits."""
    tr = keyword_task.train
    return tr.texts[:48], tr.Y_true[:48], tr.Y_partial[:48]


@pytest.fixture(scope="module")
def fitted_pu(tiny_model_dir, keyword_task):
    tr = keyword_task.train
    clf = DALLMiClassifier(model=tiny_model_dir, **{**FAST, "max_epochs": 2})
    return clf.fit(tr.texts[:64], tr.Y_partial[:64])


def head_weights(clf):
    return clf.net_.module_.head.weight.detach().clone()


# --------------------------------------------------------------- learning


def test_learns_keyword_task_from_partial_labels(tiny_model_dir, keyword_task):
    tr, te = keyword_task.train, keyword_task.test
    # Half of each label's positives are marked, everything else is -1.
    assert set(np.unique(tr.Y_partial)) == {-1, 1}
    assert (tr.Y_partial == 1).sum() < (tr.Y_true == 1).sum()
    # A random encoder has no features worth probing: the head starts random
    # and the test is about what the loss learns.
    clf = DALLMiClassifier(model=tiny_model_dir, lr=1e-3, max_epochs=5, batch_size=16,
                           max_length=32, random_state=0, probe_C=None)
    clf.fit(tr.texts, tr.Y_partial)
    assert clf.pu_labels_.all()
    proba = clf.predict_proba(te.texts)
    # Chance is the prevalence (about 0.35); on TRUE labels of unseen texts:
    assert macro_average_precision(te.Y_true, proba) > 0.9
    for label in range(3):
        assert average_precision_score(te.Y_true[:, label], proba[:, label]) > 0.8
    # The calibrated decision (VPU's rule) beats predicting every label
    # (macro F1 about 0.53 here).
    assert f1_score(te.Y_true, clf.predict(te.texts), average="macro") > 0.6


def test_a_fresh_fit_starts_from_the_linear_probe(tiny_model_dir, small):
    # max_epochs=0: the head is the probe fitted on the frozen pooled vectors
    # of the training texts, the PU labels' unknowns read as negatives.
    from sklearn_dallmi.probe import fit_linear_probe

    texts, Y_true, Y_partial = small
    Y = Y_partial.copy()
    Y[:, 0] = Y_true[:, 0]  # one supervised label
    clf = DALLMiClassifier(model=tiny_model_dir, probe_C=0.5,
                           **{**FAST, "max_epochs": 0}).fit(texts, Y)
    ids = tokenize(clf.tokenizer_, texts, clf.max_length)
    features = clf.net_.features(TokenizedDataset(ids))
    weight, bias = fit_linear_probe(features, torch.from_numpy(Y), torch.tensor(clf.pu_labels_),
                                    C=0.5)
    head = clf.net_.module_.head
    torch.testing.assert_close(head.weight, weight, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(head.bias, bias, atol=1e-5, rtol=1e-4)
    random = DALLMiClassifier(model=tiny_model_dir, probe_C=None,
                              **{**FAST, "max_epochs": 0}).fit(texts, Y)
    assert not torch.allclose(random.net_.module_.head.weight, weight, atol=1e-3)


# ------------------------------------------------------------ label modes


def test_rows_of_all_unknown_are_accepted(tiny_model_dir, small):
    texts, _, Y = small
    Y = Y.copy()
    Y[::3] = -1  # every third row is an unlabelled text
    assert (Y == -1).all(axis=1).sum() >= 16
    clf = DALLMiClassifier(model=tiny_model_dir, **FAST).fit(texts, Y)
    proba = clf.predict_proba(texts)
    assert proba.shape == (48, 3) and np.isfinite(proba).all()
    assert clf.pu_labels_.tolist() == [True, True, True]


def test_fully_labelled_y_is_supervised(tiny_model_dir, small):
    texts, Y_true, _ = small
    clf = DALLMiClassifier(model=tiny_model_dir, **{**FAST, "max_epochs": 2})
    clf.fit(texts, Y_true)
    assert clf.pu_labels_.tolist() == [False, False, False]
    # A supervised label's prior is its positive rate, and predict marks that
    # share of the training texts (proportional thresholding).
    np.testing.assert_array_equal(clf.class_prior_, Y_true.mean(axis=0))
    np.testing.assert_array_equal(clf.predict(texts).sum(axis=0),
                                  np.floor(Y_true.mean(axis=0) * len(texts) + 0.5))
    hist = clf.history_
    # No PU label: no variational term, no MixUp; only BCE.
    assert hist[:, "train_variational"] == [0.0, 0.0]
    assert hist[:, "train_mixup"] == [0.0, 0.0]
    assert all(v > 0 for v in hist[:, "train_bce"])
    np.testing.assert_allclose(clf.predict_proba(texts), expit(clf.decision_function(texts)))


def test_mixed_supervised_and_pu_columns(tiny_model_dir, small):
    texts, Y_true, Y_partial = small
    Y = Y_true.copy()
    Y[:, 1] = Y_partial[:, 1]  # only label 1 is partially labelled
    clf = DALLMiClassifier(model=tiny_model_dir, **FAST).fit(texts, Y)
    assert clf.pu_labels_.tolist() == [False, True, False]
    assert clf.class_prior_[0] == Y_true[:, 0].mean() and clf.class_prior_[2] == Y_true[:, 2].mean()
    assert 0 < clf.class_prior_[1] < 1
    h = clf.history_[-1]
    assert h["train_variational"] != 0 and h["train_bce"] > 0


def test_label_without_positive_warns_and_predicts_zero(tiny_model_dir, small):
    texts, _, Y = small
    Y = Y.copy()
    Y[:, 2] = -1  # label 2: no observed positive
    clf = DALLMiClassifier(model=tiny_model_dir, **FAST)
    with pytest.warns(UserWarning, match=r"Labels \[2\] have no observed positive"):
        clf.fit(texts, Y)
    proba = clf.predict_proba(texts)
    assert np.all(proba[:, 2] == 0)
    assert np.all(clf.predict(texts)[:, 2] == 0)
    assert np.all(np.isneginf(clf.decision_function(texts)[:, 2]))
    # The other labels are still predicted.
    assert np.all(proba[:, :2] > 0)
    assert clf.n_positives_.tolist()[2] == 0


def test_label_with_only_known_negatives_warns(tiny_model_dir, small):
    texts, Y_true, _ = small
    Y = Y_true.copy()
    Y[:, 0] = 0
    with pytest.warns(UserWarning, match=r"\[0\]"):
        clf = DALLMiClassifier(model=tiny_model_dir, **FAST).fit(texts, Y)
    assert np.all(clf.predict(texts)[:, 0] == 0)


def test_no_warning_when_every_label_has_a_positive(tiny_model_dir, small):
    texts, _, Y = small
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*observed positive.*")
        DALLMiClassifier(model=tiny_model_dir, **FAST).fit(texts, Y)


# --------------------------------------------------------- continuing


def test_partial_fit_continues_from_the_fitted_model(tiny_model_dir, small):
    texts, _, Y = small
    clf = DALLMiClassifier(model=tiny_model_dir, **FAST).fit(texts, Y)
    assert clf.n_epochs_ == 1
    w1 = head_weights(clf)
    p1 = clf.predict_proba(texts)
    clf.partial_fit(texts, Y)
    assert clf.n_epochs_ == 2
    assert len(clf.history_) == 2
    assert not torch.equal(w1, head_weights(clf))
    p2 = clf.predict_proba(texts)
    # A fresh one-epoch fit with the same seed reproduces p1, not p2.
    fresh = DALLMiClassifier(model=tiny_model_dir, **FAST).fit(texts, Y)
    np.testing.assert_array_equal(fresh.predict_proba(texts), p1)
    assert np.abs(p2 - p1).max() > 1e-4
    clf.partial_fit(texts, Y)
    assert clf.n_epochs_ == 3


def test_continued_fit_keeps_scale_of_pu_label_without_new_positive(tiny_model_dir, small):
    texts, _, Y = small
    clf = DALLMiClassifier(model=tiny_model_dir, **FAST).fit(texts, Y)
    before = clf.proba_shift_.copy()
    assert (before[:2] != 0).all()
    Y2 = Y.copy()
    Y2[:, 1] = -1  # label 1 is still PU but has no positive in this call
    clf.partial_fit(texts, Y2)
    assert clf.proba_shift_[1] == before[1]
    assert clf.proba_shift_[0] != before[0]


def test_continued_fit_moves_the_network_to_the_requested_device(tiny_model_dir, small):
    texts, _, Y = small
    clf = DALLMiClassifier(model=tiny_model_dir, **FAST).fit(texts, Y)
    p = clf.predict_proba(texts)
    moments = set(clf.net_.optimizer_.state_dict()["state"])
    clf.set_params(device="cpu:0")  # another device than the fitted net's "cpu"
    clf.partial_fit(texts, Y)
    assert clf.net_.device == clf.device_ == "cpu:0"
    assert set(clf.net_.optimizer_.state_dict()["state"]) == moments  # moments kept
    assert np.abs(clf.predict_proba(texts) - p).max() > 1e-6


def test_partial_fit_on_unfitted_is_one_epoch_fit(tiny_model_dir, small):
    texts, _, Y = small
    a = DALLMiClassifier(model=tiny_model_dir, **{**FAST, "max_epochs": 4})
    a.partial_fit(texts, Y)  # trains one epoch, whatever max_epochs says
    b = DALLMiClassifier(model=tiny_model_dir, **FAST).fit(texts, Y)
    assert a.n_epochs_ == 1
    np.testing.assert_array_equal(a.predict_proba(texts), b.predict_proba(texts))


def test_partial_fit_two_stage_source_then_target(tiny_model_dir, small):
    texts, Y_true, Y_partial = small
    clf = DALLMiClassifier(model=tiny_model_dir, **FAST)
    clf.fit(texts[:24], Y_true[:24])  # "source": fully labelled
    assert not clf.pu_labels_.any()
    clf.partial_fit(texts[24:], Y_partial[24:])  # "target": partial labels
    assert clf.pu_labels_.all()
    assert np.all(clf.proba_shift_ != 0)
    np.testing.assert_array_equal(
        clf.n_positives_, (Y_true[:24] == 1).sum(0) + (Y_partial[24:] == 1).sum(0)
    )


def test_labels_turning_pu_start_from_a_probe_anchored_at_their_head(tiny_model_dir, small):
    from sklearn_dallmi.probe import fit_linear_probe

    texts, Y_true, Y_partial = small
    Y = Y_partial.copy()
    Y[:, 2] = Y_true[:, 2]  # label 2 stays supervised
    # Without the source's expansion the anchored probe is the only head.
    source = DALLMiClassifier(model=tiny_model_dir, source_curvature=False,
                              **FAST).fit(texts, Y_true)
    assert source.head_hessian_ is None
    head = source.net_.module_.head
    ids = tokenize(source.tokenizer_, texts, source.max_length)
    features = source.net_.features(TokenizedDataset(ids))
    pu = torch.tensor([True, True, False])
    # The source head is worth `anchor` known positives: C shrinks with few.
    n = (Y == 1).sum(axis=0)
    C = torch.from_numpy(source.probe_C * n / (n + source.anchor))
    weight, bias = fit_linear_probe(features, torch.from_numpy(Y), pu, C=C,
                                    anchor=(head.weight, head.bias))
    target = copy.deepcopy(source).set_params(warm_start=True, max_epochs=0).fit(texts, Y)
    new = target.net_.module_.head
    torch.testing.assert_close(new.weight[:2], weight[:2], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(new.weight[2], head.weight[2])  # not a new stage for it
    assert target.stage_head_ == "probe"
    # Continuing with the same modes is no new stage: the head is left alone.
    again = copy.deepcopy(target).fit(texts, Y)
    torch.testing.assert_close(again.net_.module_.head.weight, new.weight)


def test_a_fit_keeps_the_expansion_of_its_supervised_labels_loss(tiny_model_dir, small):
    from sklearn_dallmi.probe import logistic_expansion

    texts, Y_true, Y_partial = small
    Y = Y_true.copy()
    Y[:, 0] = Y_partial[:, 0]  # label 0 is PU: no expansion for it
    clf = DALLMiClassifier(model=tiny_model_dir, **FAST).fit(texts, Y)
    assert clf.stage_head_ is None  # a fresh fit
    head = clf.net_.module_.head
    # The trained network's features, in the texts' order.
    features = clf.net_.features(TokenizedDataset(tokenize(clf.tokenizer_, texts,
                                                           clf.max_length)))
    gradient, hessian = logistic_expansion(features, torch.from_numpy(Y), head.weight,
                                           head.bias, torch.tensor([False, True, True]))
    width = head.in_features + 1
    assert clf.head_gradient_.shape == (3, width) and clf.head_hessian_.shape == (3, width, width)
    assert clf.head_hessian_.dtype == np.float32
    np.testing.assert_allclose(clf.head_gradient_, gradient.numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(clf.head_hessian_, hessian.numpy(), rtol=1e-4, atol=1e-4)
    assert not clf.head_hessian_[0].any() and clf.head_hessian_[1:].any()
    # A call whose labels are all PU leaves none.
    assert clf.set_params(warm_start=True).fit(texts, Y_partial).head_hessian_ is None


def test_labels_turning_pu_start_from_the_head_cross_validation_chose(tiny_model_dir, small):
    from sklearn_dallmi.probe import fit_expanded_probe, fit_linear_probe

    texts, Y_true, Y_partial = small
    source = DALLMiClassifier(model=tiny_model_dir, **FAST).fit(texts, Y_true)
    head = source.net_.module_.head
    features = source.net_.features(TokenizedDataset(tokenize(source.tokenizer_, texts,
                                                              source.max_length)))
    pu, Y = torch.ones(3, dtype=torch.bool), torch.from_numpy(Y_partial)
    n = (Y_partial == 1).sum(axis=0)
    probe = fit_linear_probe(features, Y, pu, anchor=(head.weight, head.bias),
                             C=torch.from_numpy(source.probe_C * n / (n + source.anchor)))
    expanded = fit_expanded_probe(
        features, Y, pu, (torch.from_numpy(source.head_gradient_),
                          torch.from_numpy(source.head_hessian_)), (head.weight, head.bias))
    heads = {"probe": probe, "expanded": expanded,
             "average": tuple((a + b) / 2 for a, b in zip(probe, expanded))}
    target = copy.deepcopy(source).set_params(warm_start=True, max_epochs=0)
    target.fit(texts, Y_partial)
    assert target.stage_head_ in heads
    weight, bias = heads[target.stage_head_]
    new = target.net_.module_.head
    torch.testing.assert_close(new.weight, weight.float(), atol=1e-4, rtol=1e-3)
    torch.testing.assert_close(new.bias, bias.float(), atol=1e-4, rtol=1e-3)


@pytest.mark.parametrize("best", ["probe", "expanded", "average"])
def test_choose_head_takes_the_best_held_out_pu_auc(best):
    # Feature 0 ranks the observed positives first; feature 1 is noise.
    rng = np.random.default_rng(0)
    Y = np.full((60, 2), -1)
    Y[:20] = 1
    x = torch.tensor(np.c_[np.r_[np.ones(20), np.zeros(40)] + rng.normal(0, 0.3, 60),
                           rng.normal(size=60)])
    clean, noisy = [[1.0, 0.0]] * 2, [[0.0, 1.0]] * 2
    rows = {"probe": (clean, noisy), "expanded": (noisy, clean),
            # each alone carries the noise, their mean cancels it
            "average": ([[1.0, 3.0]] * 2, [[1.0, -3.0]] * 2)}[best]
    fits = {name: (lambda w: lambda f, y: (torch.tensor(w), torch.zeros(2)))(w)
            for name, w in zip(("probe", "expanded"), rows)}
    labels = np.array([True, True])
    assert DALLMiClassifier._choose_head(fits, x, Y, labels, seed=0) == best
    # Alone, or on too few texts to split, the probe.
    assert DALLMiClassifier._choose_head({"probe": fits["probe"]}, x, Y, labels, 0) == "probe"
    assert DALLMiClassifier._choose_head(fits, x[:9], Y[:9], labels, 0) == "probe"


def test_anchor_keeps_a_continued_fit_near_the_previous_model(tiny_model_dir, small):
    texts, Y_true, Y_partial = small
    source = DALLMiClassifier(model=tiny_model_dir, **FAST).fit(texts, Y_true)
    p_source = source.predict_proba(texts)
    moved = {}
    for anchor in (0.0, 1e4):
        clf = copy.deepcopy(source).set_params(anchor=anchor, lr=1e-2)
        clf.partial_fit(texts, Y_partial)
        history = clf.history_
        assert history[0, "train_anchor"] == 0  # a fresh fit has no previous model
        assert (history[-1, "train_anchor"] > 0) == (anchor > 0)
        n = (Y_partial == 1).sum(axis=0)
        np.testing.assert_allclose(clf.net_.criterion_.anchor_weights.numpy(),
                                   anchor / (anchor + n) if anchor else np.zeros(3), rtol=1e-6)
        unknown = Y_partial == -1
        phi = expit(clf.decision_function(texts) + clf.proba_shift_)  # the network's output
        moved[anchor] = np.abs(phi - p_source)[unknown].mean()
    assert moved[1e4] < moved[0.0]


def test_failed_partial_fit_leaves_model_untouched(tiny_model_dir, small, monkeypatch):
    from sklearn_dallmi.net import DALLMiNet

    texts, _, Y = small
    clf = DALLMiClassifier(model=tiny_model_dir, **FAST).fit(texts, Y)
    p = clf.predict_proba(texts)
    w = head_weights(clf)
    real_step = DALLMiNet.train_step
    calls = []

    def step_then_fail(self, batch, **kw):
        out = real_step(self, batch, **kw)  # the weights of the trained net move
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return out

    monkeypatch.setattr(DALLMiNet, "train_step", step_then_fail)
    with pytest.raises(KeyboardInterrupt):
        clf.partial_fit(texts, Y)
    monkeypatch.undo()
    assert len(calls) == 2
    assert clf.n_epochs_ == 1 and len(clf.history_) == 1
    assert torch.equal(head_weights(clf), w)
    np.testing.assert_array_equal(clf.predict_proba(texts), p)


def test_warm_start_continues(tiny_model_dir, small):
    texts, _, Y = small
    clf = DALLMiClassifier(model=tiny_model_dir, warm_start=True, **FAST).fit(texts, Y)
    w1 = head_weights(clf)
    p1 = clf.predict_proba(texts)
    clf.fit(texts, Y)
    assert clf.n_epochs_ == 2 and len(clf.history_) == 2
    assert not torch.equal(w1, head_weights(clf))
    assert np.abs(clf.predict_proba(texts) - p1).max() > 1e-4
    # Without warm_start, fit starts again from the encoder.
    clf.set_params(warm_start=False)
    clf.fit(texts, Y)
    assert clf.n_epochs_ == 1 and len(clf.history_) == 1
    np.testing.assert_array_equal(clf.predict_proba(texts), p1)


def test_continuing_uses_new_lr(tiny_model_dir, small):
    texts, _, Y = small
    clf = DALLMiClassifier(model=tiny_model_dir, **FAST).fit(texts, Y)
    clf.set_params(lr=1e-6)
    clf.partial_fit(texts, Y)
    lrs = {g["lr"] for g in clf.net_.optimizer_.param_groups}
    assert lrs == {1e-6}


# --------------------------------------------------------- reproducibility


def test_same_random_state_same_probabilities(tiny_model_dir, small):
    texts, _, Y = small
    a = DALLMiClassifier(model=tiny_model_dir, **FAST).fit(texts, Y).predict_proba(texts)
    b = DALLMiClassifier(model=tiny_model_dir, **FAST).fit(texts, Y).predict_proba(texts)
    c = DALLMiClassifier(model=tiny_model_dir, **{**FAST, "random_state": 1}).fit(
        texts, Y).predict_proba(texts)
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 1e-4


def test_fit_does_not_touch_global_torch_rng(tiny_model_dir, small):
    texts, _, Y = small
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    DALLMiClassifier(model=tiny_model_dir, **FAST).fit(texts, Y)
    torch.testing.assert_close(torch.rand(3), expected)


# ------------------------------------------------------------ predictions


def test_predict_proba_and_predict(fitted_pu, keyword_task):
    texts = keyword_task.test.texts[:30]
    proba = fitted_pu.predict_proba(texts)
    assert proba.shape == (30, 3) and proba.dtype == np.float64
    assert np.all((proba >= 0) & (proba <= 1))
    pred = fitted_pu.predict(texts)
    assert pred.shape == (30, 3)
    assert set(np.unique(pred)) <= {0, 1}
    np.testing.assert_array_equal(pred, (proba >= 0.5).astype(int))


def test_predict_uses_per_label_threshold(fitted_pu, keyword_task):
    texts = keyword_task.test.texts[:30]
    est = copy.deepcopy(fitted_pu)
    threshold = np.array([0.2, 0.5, 0.8])
    est.set_params(threshold=threshold)
    np.testing.assert_array_equal(
        est.predict(texts), (est.predict_proba(texts) >= threshold).astype(int)
    )


def test_predict_proba_is_strictly_increasing_in_decision_function(fitted_pu, keyword_task):
    texts = keyword_task.test.texts
    scores = fitted_pu.decision_function(texts)
    proba = fitted_pu.predict_proba(texts)
    assert scores.shape == proba.shape
    for label in range(3):
        order = np.argsort(scores[:, label], kind="stable")
        s, p = scores[order, label], proba[order, label]
        strictly = np.diff(s) > 0
        assert strictly.sum() > 10
        assert np.all(np.diff(p)[strictly] > 0)  # no ties created (no clipping)
        assert np.all(np.diff(p)[~strictly] == 0)
    np.testing.assert_allclose(proba, expit(scores), rtol=1e-12)


def test_predict_marks_the_estimated_prior_share_of_the_training_texts(fitted_pu,
                                                                        keyword_task):
    # The prior of each PU label, recomputed from the network's logits on
    # the training texts (decision_function + proba_shift_ gives them back):
    # VPU's estimate moved halfway toward one shared labelling frequency,
    # and predict_proba crosses 0.5 with that share of the texts above it.
    tr = keyword_task.train
    texts, Y = tr.texts[:64], tr.Y_partial[:64]
    z = fitted_pu.decision_function(texts) + fitted_pu.proba_shift_
    prior = pooled_frequency_prior(Y, vpu_prior(z, Y, quantile=0.99), pooling=0.5)
    np.testing.assert_allclose(fitted_pu.class_prior_, prior, rtol=1e-4)
    np.testing.assert_allclose(fitted_pu.proba_shift_, prior_logit_shift(z, prior), rtol=1e-4,
                               atol=1e-5)
    marked = fitted_pu.predict(texts).sum(axis=0)
    np.testing.assert_array_equal(marked, np.floor(prior * len(texts) + 0.5))


def test_a_continued_fit_starts_its_prior_from_the_previous_model(tiny_model_dir, small):
    texts, Y_true, Y_partial = small
    source = DALLMiClassifier(model=tiny_model_dir, **FAST).fit(texts, Y_true)
    np.testing.assert_allclose(source.class_prior_, Y_true.mean(axis=0))  # supervised
    p_source = expit(source.decision_function(texts) + source.proba_shift_)
    target = copy.deepcopy(source).partial_fit(texts, Y_partial)
    z = target.decision_function(texts) + target.proba_shift_
    first = geometric_mean_prior(source_mean_prior(p_source, Y_partial),
                                 vpu_prior(z, Y_partial, quantile=0.99))
    np.testing.assert_allclose(target.class_prior_,
                               pooled_frequency_prior(Y_partial, first, pooling=0.5), rtol=1e-4)


@pytest.mark.parametrize("q", [0.5, 1.0])
def test_scale_quantile_sets_the_scale_of_the_prior_estimate(tiny_model_dir, small, q):
    texts, Y_true, Y_partial = small
    Y = Y_partial.copy()
    Y[:, 0] = Y_true[:, 0]  # label 0 supervised: its positive rate, no shift
    clf = DALLMiClassifier(model=tiny_model_dir, scale_quantile=q, **FAST).fit(texts, Y)
    assert clf.class_prior_[0] == Y_true[:, 0].mean()
    z = clf.decision_function(texts) + clf.proba_shift_
    pu = [1, 2]
    expected = pooled_frequency_prior(Y[:, pu], vpu_prior(z[:, pu], Y[:, pu], quantile=q),
                                      pooling=0.5)
    np.testing.assert_allclose(clf.class_prior_[pu], expected, rtol=1e-4)


@pytest.mark.parametrize("pooling", [0.0, 1.0])
def test_frequency_pooling_sets_how_far_priors_move_to_one_labelling_frequency(
        tiny_model_dir, small, pooling):
    texts, Y_true, Y_partial = small
    clf = DALLMiClassifier(model=tiny_model_dir, frequency_pooling=pooling, **FAST)
    clf.fit(texts, Y_partial)
    z = clf.decision_function(texts) + clf.proba_shift_
    first = vpu_prior(z, Y_partial, quantile=0.99)
    expected = pooled_frequency_prior(Y_partial, first, pooling=pooling)
    np.testing.assert_allclose(clf.class_prior_, expected, rtol=1e-4)
    if pooling == 1.0:
        # One frequency: every label's prior is its marked count over c n.
        marked = (Y_partial == 1).sum(axis=0)
        ratio = marked / (clf.class_prior_ * len(texts))
        np.testing.assert_allclose(ratio, ratio[0], rtol=1e-6)


def test_inference_order_and_batching_do_not_change_outputs(fitted_pu, keyword_task):
    texts = keyword_task.test.texts[:40] + ["water " * 30, "x"]
    proba = fitted_pu.predict_proba(texts)
    reversed_proba = fitted_pu.predict_proba(texts[::-1])
    np.testing.assert_allclose(reversed_proba[::-1], proba, rtol=1e-5, atol=1e-6)
    single = np.vstack([fitted_pu.predict_proba([t]) for t in texts[:5]])
    np.testing.assert_allclose(single, proba[:5], rtol=1e-5, atol=1e-6)


def test_long_texts_are_truncated(tiny_model_dir):
    texts = [" ".join(["water"] * 400), " ".join(["road"] * 400), "fire", "hello"]
    clf = DALLMiClassifier(model=tiny_model_dir, **{**FAST, "max_length": 128})
    clf.fit(texts, [[1, -1], [-1, 1], [-1, -1], [-1, -1]])
    assert clf.predict_proba(texts).shape == (4, 2)


def test_max_epochs_zero_initialises_without_training(tiny_model_dir, small):
    texts, _, Y = small
    clf = DALLMiClassifier(model=tiny_model_dir, **{**FAST, "max_epochs": 0}).fit(texts, Y)
    assert clf.n_epochs_ == 0 and len(clf.history_) == 0
    assert clf.predict_proba(texts).shape == (48, 3)


# --------------------------------------------------------------- history


def test_history_has_loss_terms_per_epoch(fitted_pu):
    hist = fitted_pu.history_
    assert len(hist) == 2
    for row in hist:
        for key in ("train_loss", "train_variational", "train_mixup", "train_bce"):
            assert np.isfinite(row[key])
    # Only 1 / -1 in y: there is no known entry, hence no BCE.
    assert hist[:, "train_bce"] == [0.0, 0.0]


def test_mixup_is_recorded_when_on_and_absent_when_off(tiny_model_dir, small):
    texts, _, Y = small
    on = DALLMiClassifier(model=tiny_model_dir, **{**FAST, "mixup_weight": 0.3}).fit(texts, Y)
    assert on.history_[-1, "train_mixup"] > 0
    off = DALLMiClassifier(model=tiny_model_dir, **{**FAST, "mixup_weight": 0.0}).fit(texts, Y)
    assert off.history_[-1, "train_mixup"] == 0
    # train_loss is variational + lambda * mixup + bce, batch-averaged.
    h = on.history_[-1]
    assert h["train_loss"] == pytest.approx(
        h["train_variational"] + 0.3 * h["train_mixup"] + h["train_bce"], rel=1e-4, abs=1e-6
    )


def test_verbose_prints_an_epoch_table(tiny_model_dir, small, capsys):
    texts, _, Y = small
    capsys.readouterr()
    DALLMiClassifier(model=tiny_model_dir, **{**FAST, "max_epochs": 2}).fit(texts, Y)
    assert "train_mixup" not in capsys.readouterr().out  # verbose=0 is silent
    DALLMiClassifier(model=tiny_model_dir, verbose=1, **{**FAST, "max_epochs": 2}).fit(texts, Y)
    out = capsys.readouterr().out
    for column in ("epoch", "train_loss", "train_variational", "train_mixup", "train_bce"):
        assert column in out
    lines = [ln for ln in out.splitlines() if ln.strip()[:1].isdigit()]
    assert [ln.split()[0] for ln in lines] == ["1", "2"]


# ------------------------------------------------- the mixed forward itself


def _one_training_step(clf, texts, Y, seed=0):
    """Run one skorch train_step on the fitted net, recording the forward calls.

    Returns the batch, the module's calls ``(inputs, outputs)`` and the
    encoder's calls (keyword arguments).
    """
    net = clf.net_
    module = net.module_
    calls = {"module": [], "encoder": []}
    module_forward, encoder_forward = module.forward, module.encoder.forward

    def forward(**inputs):
        out = module_forward(**inputs)
        for tensor in out if isinstance(out, tuple) else (out,):
            if tensor.requires_grad:
                tensor.retain_grad()
        calls["module"].append((inputs, out))
        return out

    def encoder(*args, **kwargs):
        calls["encoder"].append(kwargs)
        return encoder_forward(*args, **kwargs)

    module.forward, module.encoder.forward = forward, encoder
    try:
        ids = tokenize(clf.tokenizer_, texts, clf.max_length)
        dataset = TokenizedDataset(ids, np.asarray(Y, dtype=np.float32))
        batch = next(iter(net.get_iterator(dataset, training=True)))
        net.history.new_epoch()
        net.history.new_batch()
        torch.manual_seed(seed)  # the same dropout for steps compared
        net.train_step(batch)
    finally:
        del module.forward, module.encoder.forward
    return batch, calls


def test_one_forward_per_step_carries_the_mixed_rows_with_gradient(tiny_model_dir, small):
    texts, _, Y = small
    clf = DALLMiClassifier(model=tiny_model_dir, **{**FAST, "max_epochs": 0,
                                                    "mixup_weight": 0.3}).fit(texts, Y)
    words = clf.net_.module_.encoder.get_input_embeddings().weight.detach().clone()
    (x, y), calls = _one_training_step(clf, texts, Y)
    # Exactly one module call and one encoder call over the batch and its
    # mixed rows together.
    assert len(calls["module"]) == 1 and len(calls["encoder"]) == 1
    inputs, (logits, mix_logits) = calls["module"][0]
    n = len(x["input_ids"])
    assert inputs["partner"] is x["partner"] and logits.shape == mix_logits.shape == (n, 3)
    encoded = calls["encoder"][0]
    assert encoded["input_ids"] is None and len(encoded["inputs_embeds"]) == 2 * n
    assert mix_logits.grad is not None and mix_logits.grad.abs().sum() > 0
    # The mixed rows are gamma * E(partner) + (1 - gamma) * E(row), on the
    # word embeddings, with the union of the two attention masks.
    with torch.no_grad():
        emb = words[x["input_ids"]]  # before the optimiser's step
        g, p = x["gamma"].view(-1, 1, 1), x["partner"]
        torch.testing.assert_close(encoded["inputs_embeds"][:n], emb)
        torch.testing.assert_close(encoded["inputs_embeds"][n:], g * emb[p] + (1 - g) * emb)
    mask = x["attention_mask"]
    torch.testing.assert_close(encoded["attention_mask"][n:], torch.maximum(mask[p], mask))
    # Each partner is an observed positive of a PU label of the batch.
    assert np.all(((y.numpy()[p.numpy()] == 1) & clf.pu_labels_).any(axis=1))


def test_mixup_gradient_reaches_the_main_logits(tiny_model_dir, small):
    # The target of the MixUp term is not detached: through the whole step,
    # the main logits' gradient changes with the MixUp weight.
    texts, _, Y = small
    clf = DALLMiClassifier(model=tiny_model_dir, **{**FAST, "max_epochs": 0,
                                                    "mixup_weight": 0.3}).fit(texts, Y)
    grads = []
    for weight in (0.3, 0.0):
        est = copy.deepcopy(clf)
        est.net_.criterion_.mixup_weight = weight
        _, calls = _one_training_step(est, texts, Y)
        grads.append(calls["module"][0][1][0].grad)
    assert not torch.allclose(grads[0], grads[1])


def test_published_objective_mixed_rows_get_no_gradient(tiny_model_dir, small):
    texts, _, Y = small
    clf = DALLMiClassifier(model=tiny_model_dir, **{**FAST, "max_epochs": 0,
                                                    "objective": "published"}).fit(texts, Y)
    (x, _), calls = _one_training_step(clf, texts, Y)
    assert "partner" in x
    _, (logits, mix_logits) = calls["module"][0]
    assert logits.grad.abs().sum() > 0
    assert mix_logits.grad is None or not mix_logits.grad.any()


def test_no_mixed_rows_when_mixup_weight_is_zero(tiny_model_dir, small):
    texts, _, Y = small
    clf = DALLMiClassifier(model=tiny_model_dir, **{**FAST, "max_epochs": 0,
                                                    "mixup_weight": 0.0}).fit(texts, Y)
    (x, _), calls = _one_training_step(clf, texts, Y)
    assert "partner" not in x
    assert len(calls["encoder"]) == 1
    assert len(calls["encoder"][0]["input_ids"]) == len(x["input_ids"])


def test_published_objective_fits(tiny_model_dir, small):
    texts, _, Y = small
    clf = DALLMiClassifier(model=tiny_model_dir, objective="published",
                           **{**FAST, "max_epochs": 2}).fit(texts, Y)
    proba = clf.predict_proba(texts)
    assert proba.shape == (48, 3) and np.isfinite(proba).all()
    assert clf.history_[-1, "train_mixup"] > 0
    assert np.isfinite(clf.history_[-1, "train_variational"])


# ---------------------------------------------------------- binary y


def test_one_dimensional_y_is_binary(tiny_model_dir, small):
    texts, Y_true, Y_partial = small
    for y in (Y_true[:, 0], Y_partial[:, 0]):
        clf = DALLMiClassifier(model=tiny_model_dir, **FAST).fit(texts, y)
        np.testing.assert_array_equal(clf.classes_, [0, 1])
        proba = clf.predict_proba(texts)
        assert proba.shape == (48, 2)
        np.testing.assert_allclose(proba.sum(axis=1), 1.0)
        pred = clf.predict(texts)
        assert pred.shape == (48,) and set(np.unique(pred)) <= {0, 1}
        np.testing.assert_array_equal(pred, (proba[:, 1] >= 0.5).astype(int))
        assert clf.decision_function(texts).shape == (48,)
        np.testing.assert_allclose(proba[:, 1], expit(clf.decision_function(texts)))


def test_two_dimensional_y_classes_layout(fitted_pu):
    assert len(fitted_pu.classes_) == 3
    for c in fitted_pu.classes_:
        np.testing.assert_array_equal(c, [0, 1])
    assert fitted_pu.n_labels_ == 3


# ------------------------------------------------------------ persistence


def test_joblib_round_trip(fitted_pu, keyword_task, tmp_path):
    texts = keyword_task.test.texts[:20]
    expected = fitted_pu.predict_proba(texts)
    path = tmp_path / "clf.joblib"
    joblib.dump(fitted_pu, path)
    loaded = joblib.load(path)
    np.testing.assert_array_equal(loaded.predict_proba(texts), expected)
    np.testing.assert_array_equal(loaded.proba_shift_, fitted_pu.proba_shift_)
    assert loaded.n_epochs_ == fitted_pu.n_epochs_
    # The loaded model can keep training.
    tr = keyword_task.train
    loaded.partial_fit(tr.texts[:16], tr.Y_partial[:16])
    assert loaded.n_epochs_ == fitted_pu.n_epochs_ + 1


def test_score_is_macro_ap_with_unknown_as_negative(fitted_pu, keyword_task):
    te = keyword_task.test
    proba = fitted_pu.predict_proba(te.texts)
    Y = np.where(te.Y_true == 1, 1, -1)
    Y[::2] = np.where(Y[::2] == 1, -1, Y[::2])  # hide some positives
    expected = np.mean([average_precision_score(Y[:, j] == 1, proba[:, j]) for j in range(3)])
    assert fitted_pu.score(te.texts, Y) == pytest.approx(expected)


def test_model_directory_not_needed_after_fit(tiny_model_dir, small, tmp_path):
    import shutil
    from pathlib import Path

    texts, _, Y = small
    model_dir = tmp_path / "encoder"
    shutil.copytree(tiny_model_dir, model_dir)
    clf = DALLMiClassifier(model=Path(model_dir), **FAST).fit(texts, Y)  # PathLike
    expected = clf.predict_proba(texts)
    joblib.dump(clf, tmp_path / "clf.joblib")
    shutil.rmtree(model_dir)
    loaded = joblib.load(tmp_path / "clf.joblib")
    np.testing.assert_array_equal(loaded.predict_proba(texts), expected)


def test_max_length_beyond_encoder_positions_is_rejected(tiny_model_dir):
    texts = [" ".join(["water"] * 300), "fire", "road", "hello"]
    clf = DALLMiClassifier(model=tiny_model_dir, **{**FAST, "max_length": 512})
    with pytest.raises(ValueError, match="max_length=512 exceeds the 128 positions"):
        clf.fit(texts, [[1, -1], [-1, 1], [-1, -1], [-1, 1]])
    assert not hasattr(clf, "net_")


def test_head_lr_sets_the_head_group_only(tiny_model_dir, small):
    texts, _, Y = small
    clf = DALLMiClassifier(model=tiny_model_dir, **{**FAST, "lr": 1e-4, "head_lr": 3e-3})
    clf.fit(texts, Y)
    head = {id(p) for p in clf.net_.module_.head.parameters()}
    rates = sorted((any(id(p) in head for p in g["params"]), g["lr"])
                   for g in clf.net_.optimizer_.param_groups)
    assert rates == [(False, 1e-4), (True, 3e-3)]
    n_params = sum(len(g["params"]) for g in clf.net_.optimizer_.param_groups)
    assert n_params == len(list(clf.net_.module_.parameters()))
    # A continued fit takes the current rates; head_lr=None means lr.
    clf.set_params(lr=2e-5, head_lr=None).partial_fit(texts, Y)
    assert {g["lr"] for g in clf.net_.optimizer_.param_groups} == {2e-5}


def test_frozen_layers_train_only_the_layers_above(tiny_model_dir, small):
    texts, _, Y = small
    clf = DALLMiClassifier(model=tiny_model_dir, frozen_layers=1, **{**FAST, "lr": 1e-2})
    before = {k: v.clone() for k, v in
              DALLMiClassifier(model=tiny_model_dir, **{**FAST, "max_epochs": 0}).fit(
                  texts, Y).net_.module_.encoder.state_dict().items()}
    clf.fit(texts, Y)
    after = clf.net_.module_.encoder.state_dict()
    for name, value in after.items():
        frozen = name.startswith(("embeddings.", "encoder.layer.0.", "pooler."))
        assert torch.equal(value, before[name]) == frozen, name
    # A continued fit follows the parameter: 0 trains everything again.
    clf.set_params(frozen_layers=0).partial_fit(texts, Y)
    assert not torch.equal(clf.net_.module_.encoder.embeddings.word_embeddings.weight,
                           before["embeddings.word_embeddings.weight"])
    with pytest.raises(ValueError, match="Cannot freeze 3 layers"):
        DALLMiClassifier(model=tiny_model_dir, frozen_layers=3, **FAST).fit(texts, Y)
