"""Bad input is a ValueError that says what is wrong and where.

Everything goes through ``DALLMiClassifier(model=tiny_model_dir).fit`` (or
``predict``), not only through the private helpers.
"""

import copy

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import NotFittedError
from sklearn.utils._param_validation import InvalidParameterError

from sklearn_dallmi import DALLMiClassifier
from sklearn_dallmi._validation import check_labels, check_texts, check_threshold

TEXTS = ["need water now", "the road is blocked", "fire in the house", "thank you all"]
Y_OK = [[1, -1], [-1, 1], [0, -1], [-1, -1]]


@pytest.fixture
def clf(tiny_model_dir):
    return DALLMiClassifier(model=tiny_model_dir, max_epochs=1, batch_size=4,
                            max_length=16, random_state=0)


@pytest.fixture(scope="module")
def fitted(tiny_model_dir):
    return DALLMiClassifier(
        model=tiny_model_dir, max_epochs=1, batch_size=4, max_length=16, random_state=0
    ).fit(TEXTS, Y_OK)


# ---------------------------------------------------------------- labels


def test_value_outside_label_set_names_row_and_column(clf):
    y = [[1, -1], [-1, 1], [0, 2], [-1, -1]]
    with pytest.raises(ValueError, match=r"1 \(positive\), 0 \(negative\) and -1 .*"
                                         r"at row 2, column 1"):
        clf.fit(TEXTS, y)


def test_value_outside_label_set_message_shows_plain_value(clf):
    y = [[1, -1], [-1, 1], [0, 2], [-1, -1]]
    with pytest.raises(ValueError, match=r"found 2 at row 2, column 1"):
        clf.fit(TEXTS, y)


def test_first_of_several_invalid_values_is_reported(clf):
    y = np.array(Y_OK)
    y[1, 0] = 5
    y[3, 1] = -2
    with pytest.raises(ValueError, match=r"row 1, column 0.*2 invalid entries"):
        clf.fit(TEXTS, y)


def test_float_value_outside_label_set(clf):
    y = np.array(Y_OK, dtype=float)
    y[0, 1] = 0.5
    with pytest.raises(ValueError, match=r"0\.5\)? at row 0, column 1"):
        clf.fit(TEXTS, y)


def test_nan_in_labels_names_position(clf):
    y = np.array(Y_OK, dtype=float)
    y[3, 0] = np.nan
    with pytest.raises(ValueError, match=r"NaN.*row 3, column 0"):
        clf.fit(TEXTS, y)


def test_none_in_label_dataframe_is_nan(clf):
    y = pd.DataFrame({"a": [1, None, 0, -1], "b": [-1, 1, -1, -1]}, dtype=object)
    with pytest.raises(ValueError, match=r"NaN.*row 1, column 0"):
        clf.fit(TEXTS, y)


def test_labels_of_wrong_ndim(clf):
    y = np.zeros((4, 2, 1), dtype=int)
    with pytest.raises(ValueError, match=r"shape \(n_samples, n_labels\).*\(4, 2, 1\)"):
        clf.fit(TEXTS, y)


def test_labels_without_column(clf):
    with pytest.raises(ValueError, match="no label column"):
        clf.fit(TEXTS, np.zeros((4, 0), dtype=int))


def test_length_mismatch(clf):
    with pytest.raises(ValueError, match=r"X has 4 texts but y has 3 rows"):
        clf.fit(TEXTS, Y_OK[:3])


def test_missing_y(clf):
    with pytest.raises(ValueError, match="y is required"):
        clf.fit(TEXTS, None)


def test_non_numeric_labels(clf):
    with pytest.raises(ValueError, match="numeric"):
        clf.fit(TEXTS, [["a", "b"]] * 4)


def test_ragged_labels(clf):
    with pytest.raises(ValueError, match="rectangular|numeric"):
        clf.fit(TEXTS, [[1, 0], [1], [0, 0], [1, 1]])


# ----------------------------------------------------------------- texts


def test_non_string_entry_names_index(clf):
    X = ["a text", "another", 3, "last"]
    with pytest.raises(ValueError, match=r"X\[2\] is int"):
        clf.fit(X, Y_OK)


def test_none_entry_names_index(clf):
    X = np.array(["a text", None, "x", "y"], dtype=object)
    with pytest.raises(ValueError, match=r"X\[1\] is NoneType"):
        clf.fit(X, Y_OK)


def test_empty_texts(clf):
    with pytest.raises(ValueError, match="X is empty"):
        clf.fit([], np.zeros((0, 2), dtype=int))


def test_single_string(clf):
    with pytest.raises(ValueError, match="single string"):
        clf.fit("need water now", [[1, 0]])


@pytest.mark.parametrize(
    "X",
    [np.array([[t] for t in TEXTS]), pd.DataFrame({"text": TEXTS})],
    ids=["2d-array", "dataframe"],
)
def test_two_dimensional_texts(clf, X):
    with pytest.raises(ValueError, match=r"one-dimensional.*\(4, 1\)"):
        clf.fit(X, Y_OK)


def test_list_of_lists_is_rejected(clf):
    with pytest.raises(ValueError, match=r"X\[0\] is list"):
        clf.fit([[t] for t in TEXTS], Y_OK)


def test_not_iterable_texts(clf):
    with pytest.raises(ValueError, match="sequence of texts"):
        clf.fit(42, Y_OK)


def test_predict_validates_texts_too(fitted):
    with pytest.raises(ValueError, match="single string"):
        fitted.predict("need water")
    with pytest.raises(ValueError, match=r"X\[1\] is float"):
        fitted.predict_proba(["ok", 1.5])


def test_accepted_text_containers(fitted):
    # list, tuple, 1-D array, pandas Series (non-default index), generator
    expected = fitted.predict_proba(TEXTS)
    for X in (tuple(TEXTS), np.array(TEXTS), pd.Series(TEXTS, index=[9, 7, 5, 3]),
              (t for t in TEXTS)):
        np.testing.assert_allclose(fitted.predict_proba(X), expected, rtol=1e-6)


# ------------------------------------------------------------- threshold


def test_predict_with_threshold_of_wrong_length(fitted):
    est = copy.deepcopy(fitted)  # leave the module fixture untouched
    est.set_params(threshold=[0.5, 0.5, 0.5])
    with pytest.raises(ValueError, match=r"threshold has 3 values but the model has 2 labels"):
        est.predict(TEXTS)
    est.set_params(threshold=[0.0, 1.0])  # the right length works, per label
    pred = est.predict(TEXTS)
    assert pred[:, 0].tolist() == [1, 1, 1, 1]


def test_threshold_helper():
    np.testing.assert_array_equal(check_threshold(0.3, 3), [0.3, 0.3, 0.3])
    np.testing.assert_array_equal(check_threshold([0.1, 0.9], 2), [0.1, 0.9])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        check_threshold([0.1, 1.5], 2)


# ---------------------------------------------------------------- params


@pytest.mark.parametrize(
    "params",
    [
        {"lr": -1e-3},
        {"lr": 0.0},
        {"mixup_alpha": 0.0},
        {"mixup_alpha": -0.3},
        {"positive_fraction": 1.0},
        {"positive_fraction": -0.1},
        {"batch_size": 1},
        {"mixup_weight": -0.1},
        {"objective": "norm"},
        {"pooling": "max"},
        {"scale_quantile": 0.0},
        {"frequency_pooling": 1.5},
        {"frequency_pooling": -0.1},
        {"threshold": 1.5},
    ],
)
def test_invalid_params_raise_invalid_parameter_error(tiny_model_dir, params):
    clf = DALLMiClassifier(model=tiny_model_dir, **params)
    name = next(iter(params))
    with pytest.raises(InvalidParameterError, match=f"'{name}' parameter"):
        clf.fit(TEXTS, Y_OK)
    assert issubclass(InvalidParameterError, ValueError)


def test_invalid_params_also_checked_by_partial_fit(tiny_model_dir):
    with pytest.raises(InvalidParameterError, match="'lr' parameter"):
        DALLMiClassifier(model=tiny_model_dir, lr=-1.0).partial_fit(TEXTS, Y_OK)


def test_missing_model_directory(tmp_path):
    with pytest.raises(ValueError, match="no such directory"):
        DALLMiClassifier(model=tmp_path / "nope").fit(TEXTS, Y_OK)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no config.json"):
        DALLMiClassifier(model=str(tmp_path / "empty")).fit(TEXTS, Y_OK)


@pytest.mark.parametrize("method", ["predict", "predict_proba", "decision_function", "score"])
def test_not_fitted(tiny_model_dir, method):
    clf = DALLMiClassifier(model=tiny_model_dir)
    args = (TEXTS, Y_OK) if method == "score" else (TEXTS,)
    with pytest.raises(NotFittedError):
        getattr(clf, method)(*args)


def test_partial_fit_with_other_number_of_labels(fitted):
    est = copy.deepcopy(fitted)
    with pytest.raises(ValueError, match=r"y has 3 label columns, but the fitted model has 2"):
        est.partial_fit(TEXTS, np.full((4, 3), -1))
    with pytest.raises(ValueError, match=r"1-D y"):
        est.partial_fit(TEXTS, [1, 0, -1, -1])


def test_warm_start_fit_with_other_number_of_labels(tiny_model_dir):
    clf = DALLMiClassifier(model=tiny_model_dir, max_epochs=1, batch_size=4,
                           max_length=16, warm_start=True).fit(TEXTS, Y_OK)
    with pytest.raises(ValueError, match="label columns"):
        clf.fit(TEXTS, np.full((4, 3), -1))


def test_score_rejects_sample_weight(fitted):
    with pytest.raises(ValueError, match="sample_weight"):
        fitted.score(TEXTS, Y_OK, sample_weight=np.ones(4))


# ------------------------------------------------------ helpers directly


def test_check_labels_returns_int8_and_binary_flag():
    Y, binary = check_labels([1, 0, -1], 3)
    assert binary and Y.shape == (3, 1) and Y.dtype == np.int8
    Y, binary = check_labels([[1.0, -1.0]], 1)
    assert not binary and Y.tolist() == [[1, -1]]


def test_check_texts_returns_list_of_str():
    assert check_texts(np.array(["a", "b"])) == ["a", "b"]
    assert all(type(t) is str for t in check_texts(np.array(["a", "b"])))
