"""DALLMiClassifier in scikit-learn's machinery: clone, Pipeline, search, CV,
scorers, and the estimator checks that apply to a text estimator."""

import warnings

import joblib
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    f1_score,
    get_scorer,
    roc_auc_score,
)
from sklearn.model_selection import (
    GridSearchCV,
    KFold,
    cross_val_predict,
    cross_val_score,
)
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.utils import estimator_checks as ec
from sklearn.utils.validation import check_is_fitted

from sklearn_dallmi import DALLMiClassifier
from sklearn_dallmi.metrics import macro_average_precision, macro_average_precision_scorer

FAST = dict(max_epochs=1, batch_size=8, max_length=24, lr=1e-3, random_state=0)


def lowercase(texts):
    return [t.lower() for t in texts]


@pytest.fixture
def data(keyword_task):
    tr = keyword_task.train
    return tr.texts[:40], tr.Y_true[:40], tr.Y_partial[:40]


# ------------------------------------------------------------------ params


def test_clone_and_params_round_trip(tiny_model_dir):
    clf = DALLMiClassifier(model=tiny_model_dir, mixup_weight=0.2, threshold=[0.3, 0.6],
                           random_state=3, warm_start=True)
    params = clf.get_params()
    assert params["mixup_weight"] == 0.2 and params["model"] == tiny_model_dir
    c = clone(clf)
    assert c is not clf
    assert c.get_params().keys() == params.keys()
    for key, value in params.items():
        np.testing.assert_equal(c.get_params()[key], value)
    assert c.set_params(lr=1e-2, objective="published") is c
    assert c.lr == 1e-2 and c.objective == "published"
    assert clf.lr == DALLMiClassifier().lr  # the original is untouched
    with pytest.raises(ValueError, match="Invalid parameter"):
        c.set_params(not_a_param=1)


def test_clone_of_fitted_is_unfitted(tiny_model_dir, data):
    texts, _, Y = data
    clf = DALLMiClassifier(model=tiny_model_dir, **FAST).fit(texts, Y)
    c = clone(clf)
    with pytest.raises(NotFittedError):
        c.predict(texts)
    assert not hasattr(c, "net_")


# ------------------------------------------------------------- pipelines


def test_pipeline_with_text_transformer(tiny_model_dir, data):
    texts, _, Y = data
    shouted = [t.upper() for t in texts]
    pipe = Pipeline([
        ("lower", FunctionTransformer(lowercase)),
        ("clf", DALLMiClassifier(model=tiny_model_dir, **FAST)),
    ])
    pipe.fit(shouted, Y)
    proba = pipe.predict_proba(shouted)
    assert proba.shape == (40, 3)
    assert pipe.predict(shouted).shape == (40, 3)
    # Same as fitting the classifier on the lowercased texts directly (the
    # tokenizer is uncased, so this is also the same as on `texts`).
    direct = DALLMiClassifier(model=tiny_model_dir, **FAST).fit(texts, Y)
    np.testing.assert_allclose(proba, direct.predict_proba(texts), rtol=1e-6)
    assert np.isfinite(pipe.score(shouted, Y))


def test_grid_search_with_unknown_labels(tiny_model_dir, data):
    texts, _, Y = data
    assert (Y == -1).any()
    search = GridSearchCV(
        DALLMiClassifier(model=tiny_model_dir, **FAST),
        {"mixup_weight": [0.0, 0.3]},
        cv=KFold(2, shuffle=True, random_state=0),
        error_score="raise",
    )
    search.fit(texts, Y)
    scores = search.cv_results_["mean_test_score"]
    assert scores.shape == (2,) and np.all(np.isfinite(scores))
    assert np.all((scores > 0) & (scores <= 1))
    assert search.best_params_["mixup_weight"] in (0.0, 0.3)
    assert search.predict_proba(texts).shape == (40, 3)
    # The default score is estimator.score: macro AP with -1 read as 0.
    est = search.best_estimator_
    assert est.score(texts, Y) == pytest.approx(
        macro_average_precision(np.where(Y == 1, 1, 0), est.predict_proba(texts))
    )


def test_macro_average_precision_scorer_in_grid_search(tiny_model_dir, data):
    texts, _, Y = data
    search = GridSearchCV(
        DALLMiClassifier(model=tiny_model_dir, **FAST),
        {"positive_fraction": [0.0, 0.25]},
        cv=KFold(2),
        scoring=macro_average_precision_scorer,
        error_score="raise",
    ).fit(texts, Y)
    assert np.all(np.isfinite(search.cv_results_["mean_test_score"]))
    # On a fitted model, the scorer equals the metric on predict_proba.
    est = search.best_estimator_
    assert macro_average_precision_scorer(est, texts, Y) == pytest.approx(
        macro_average_precision(Y, est.predict_proba(texts))
    )


def test_cross_val_score_default_scoring(tiny_model_dir, data):
    texts, _, Y = data
    scores = cross_val_score(DALLMiClassifier(model=tiny_model_dir, **FAST), texts, Y,
                             cv=KFold(2), error_score="raise")
    assert scores.shape == (2,) and np.all(np.isfinite(scores))


def test_cross_val_predict_predict(tiny_model_dir, data):
    texts, Y_true, _ = data
    pred = cross_val_predict(DALLMiClassifier(model=tiny_model_dir, **FAST), texts, Y_true,
                             cv=KFold(2))
    assert pred.shape == (40, 3) and set(np.unique(pred)) <= {0, 1}


def test_cross_val_predict_proba_binary(tiny_model_dir, data):
    texts, Y_true, _ = data
    proba = cross_val_predict(DALLMiClassifier(model=tiny_model_dir, **FAST), texts,
                              Y_true[:, 0], cv=KFold(2), method="predict_proba")
    assert proba.shape == (40, 2)


def test_cross_val_predict_proba_multilabel(tiny_model_dir, data):
    texts, Y_true, _ = data
    proba = cross_val_predict(DALLMiClassifier(model=tiny_model_dir, **FAST), texts,
                              Y_true, cv=KFold(2), method="predict_proba")
    assert proba.shape == (40, 3)


class _RecordingClassifier(DALLMiClassifier):
    """Records the label values each fit receives."""

    seen = []

    def fit(self, X, y, **fit_params):
        _RecordingClassifier.seen.append(np.unique(np.asarray(y)).tolist())
        return super().fit(X, y, **fit_params)


def test_cross_val_predict_proba_label_encodes_partial_labels(tiny_model_dir, data):
    # The pitfall the evaluation page warns about: for predict_proba,
    # scikit-learn label-encodes every column of y before fitting, so -1
    # stops meaning "unknown". method="predict" passes y through unchanged.
    texts, _, Y_partial = data
    assert set(np.unique(Y_partial[:, 0])) == {-1, 1}
    _RecordingClassifier.seen = []
    cross_val_predict(_RecordingClassifier(model=tiny_model_dir, **FAST), texts,
                      Y_partial[:, :1], cv=KFold(2), method="predict_proba")
    assert _RecordingClassifier.seen == [[0, 1], [0, 1]]  # unknown silently read as 0
    Y_three = Y_partial[:, :1].copy()
    Y_three[:5] = 0  # a column with 1, 0 and -1 becomes 2, 1 and 0
    with pytest.raises(ValueError, match="found 2"):
        cross_val_predict(DALLMiClassifier(model=tiny_model_dir, **FAST), texts, Y_three,
                          cv=KFold(2), method="predict_proba")
    _RecordingClassifier.seen = []
    cross_val_predict(_RecordingClassifier(model=tiny_model_dir, **FAST), texts,
                      Y_partial[:, :1], cv=KFold(2), method="predict")
    assert _RecordingClassifier.seen == [[-1, 1], [-1, 1]]


# ---------------------------------------------------------------- scorers


def _fit_for_scoring(tiny_model_dir, texts, y):
    return DALLMiClassifier(model=tiny_model_dir, **{**FAST, "max_epochs": 2}).fit(texts, y)


@pytest.mark.parametrize("n_labels", [1, 2, 3])
def test_sklearn_scorers_multilabel_layout(tiny_model_dir, data, n_labels):
    texts, Y_true, _ = data
    y = Y_true[:, :n_labels]  # fully labelled, shape (n, L); L = 1 is (n, 1)
    clf = _fit_for_scoring(tiny_model_dir, texts, y)
    proba = clf.predict_proba(texts)
    pred = clf.predict(texts)
    assert proba.shape == (40, n_labels)
    # Expected values: the per-label metrics on the probability columns,
    # macro-averaged by hand (not through the scorer's response handling).
    ap = np.mean([average_precision_score(y[:, j], proba[:, j]) for j in range(n_labels)])
    auc = np.mean([roc_auc_score(y[:, j], proba[:, j]) for j in range(n_labels)])
    assert get_scorer("average_precision")(clf, texts, y) == pytest.approx(ap)
    assert get_scorer("roc_auc")(clf, texts, y) == pytest.approx(auc)
    f1 = np.mean([f1_score(y[:, j], pred[:, j], zero_division=0) for j in range(n_labels)])
    if n_labels > 1:
        assert get_scorer("f1_macro")(clf, texts, y) == pytest.approx(f1)
    assert get_scorer("accuracy")(clf, texts, y) == pytest.approx(accuracy_score(y, pred))


def test_sklearn_scorers_binary_1d(tiny_model_dir, data):
    texts, Y_true, _ = data
    y = Y_true[:, 0]
    clf = _fit_for_scoring(tiny_model_dir, texts, y)
    p1 = clf.predict_proba(texts)[:, 1]
    assert get_scorer("average_precision")(clf, texts, y) == pytest.approx(
        average_precision_score(y, p1))
    assert get_scorer("roc_auc")(clf, texts, y) == pytest.approx(roc_auc_score(y, p1))
    assert get_scorer("f1")(clf, texts, y) == pytest.approx(f1_score(y, clf.predict(texts)))
    assert get_scorer("neg_log_loss")(clf, texts, y) < 0
    # decision_function and predict_proba rank identically for roc_auc.
    assert roc_auc_score(y, clf.decision_function(texts)) == pytest.approx(roc_auc_score(y, p1))


# ------------------------------------------------ scikit-learn common checks
#
# sklearn 1.9's check_estimator / parametrize_with_checks run nothing for an
# estimator whose tags say input_tags.two_d_array=False (_yield_all_checks
# warns "Can't test estimator ..." and returns): every generated check feeds
# numeric 2-D arrays (make_blobs, random uniforms, sparse matrices, NaN/inf
# arrays, memmaps, n_features_in_ checks). So the checks below are picked by
# hand. Applicable as they are, because they never call fit:
#   check_estimator_cloneable, check_estimator_repr, check_estimator_tags_renamed,
#   check_valid_tag_types, check_no_attributes_set_in_init, check_mixin_order,
#   check_do_not_raise_errors_in_init_or_set_params,
#   check_parameters_default_constructible, check_get_params_invariance,
#   check_set_params.
# Not applicable as they are (they fit on numeric X): check_fit_score_takes_y,
# check_estimators_overwrite_params, check_dont_overwrite_parameters,
# check_estimators_fit_returns_self, check_readonly_memmap_input,
# check_estimators_unfitted, check_n_features_in_after_fitting,
# check_positive_only_tag_during_fit and all legacy checks (dtypes, sparse,
# NaN/inf, complex data, pickling, subset/order invariance, fit2d/fit1d,
# n_features_in, idempotence, classifier checks). Their intent is tested below
# with texts instead: fit returns self, fit changes no parameter and adds
# only trailing-underscore attributes, unfitted methods raise NotFittedError,
# check_is_fitted, idempotent refit, pickling, subset and order invariance,
# a single-sample fit. There is no n_features_in_ for texts.

APPLICABLE_CHECKS = [
    ec.check_estimator_cloneable,
    ec.check_estimator_repr,
    ec.check_estimator_tags_renamed,
    ec.check_valid_tag_types,
    ec.check_no_attributes_set_in_init,
    ec.check_mixin_order,
    ec.check_do_not_raise_errors_in_init_or_set_params,
    ec.check_parameters_default_constructible,
    ec.check_get_params_invariance,
    ec.check_set_params,
]


@pytest.mark.parametrize("check", APPLICABLE_CHECKS, ids=lambda c: c.__name__)
def test_sklearn_api_check(check, tiny_model_dir):
    with warnings.catch_warnings():
        # check_set_params recommends (by a warning) to delay validation; fine.
        warnings.simplefilter("ignore", UserWarning)
        check("DALLMiClassifier", DALLMiClassifier(model=tiny_model_dir))


def test_tags():
    tags = DALLMiClassifier().__sklearn_tags__()
    assert tags.input_tags.string and not tags.input_tags.two_d_array
    assert tags.classifier_tags.multi_label
    assert tags.target_tags.multi_output
    assert tags.estimator_type == "classifier"


def test_fit_returns_self_keeps_params_and_adds_only_fitted_attributes(tiny_model_dir, data):
    texts, _, Y = data
    clf = DALLMiClassifier(model=tiny_model_dir, threshold=np.array([0.4, 0.5, 0.6]), **FAST)
    params_hash = {k: joblib.hash(v) for k, v in clf.get_params().items()}
    before = dict(vars(clf))
    assert clf.fit(texts, Y) is clf
    assert {k: joblib.hash(v) for k, v in clf.get_params().items()} == params_hash
    for key, value in vars(clf).items():
        if key in before:
            assert value is before[key], f"fit replaced parameter {key}"
        else:
            assert key.endswith("_") or key.startswith("_"), f"fit added public {key}"
    for attr in ("classes_", "n_labels_", "pu_labels_", "proba_shift_", "n_positives_",
                 "n_epochs_", "net_", "tokenizer_", "device_", "history_"):
        assert hasattr(clf, attr), attr
    assert clf.device_ == "cpu"


def test_check_is_fitted(tiny_model_dir, data):
    texts, _, Y = data
    clf = DALLMiClassifier(model=tiny_model_dir, **FAST)
    with pytest.raises(NotFittedError):
        check_is_fitted(clf)
    assert not hasattr(clf, "history_")
    clf.fit(texts, Y)
    check_is_fitted(clf)


def test_refit_is_idempotent(tiny_model_dir, data):
    texts, _, Y = data
    clf = DALLMiClassifier(model=tiny_model_dir, **FAST)
    a = clf.fit(texts, Y).predict_proba(texts)
    b = clf.fit(texts, Y).predict_proba(texts)
    np.testing.assert_array_equal(a, b)
    assert clf.n_epochs_ == 1


def test_single_sample_fit(tiny_model_dir):
    clf = DALLMiClassifier(model=tiny_model_dir, **FAST)
    clf.fit(["water everywhere"], [[1, 1]])
    assert clf.pu_labels_.tolist() == [False, False]
    assert clf.predict_proba(["water", "fire"]).shape == (2, 2)
    with pytest.warns(UserWarning, match=r"Labels \[1\]"):
        clf.fit(["water everywhere"], [[1, -1]])  # label 1: PU, no positive
    assert clf.pu_labels_.tolist() == [False, True]
    assert clf.predict(["water"])[0, 1] == 0


def test_methods_subset_and_order_invariance(tiny_model_dir, data):
    texts, _, Y = data
    clf = DALLMiClassifier(model=tiny_model_dir, **FAST).fit(texts, Y)
    full = clf.decision_function(texts)
    perm = np.random.default_rng(0).permutation(len(texts))
    np.testing.assert_allclose(clf.decision_function([texts[i] for i in perm]), full[perm],
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(clf.decision_function(texts[:7]), full[:7], rtol=1e-5,
                               atol=1e-6)
