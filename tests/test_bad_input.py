"""What a user gets for unusual or wrong input, as one table.

Every case goes through the public estimator (``fit``, ``partial_fit``,
``predict_proba``, ``predict``) on a tiny random BERT saved to disk. A case
either works the way a user would expect (its ``check`` asserts the output)
or raises the expected error type with a message that names the problem
(``match``).
"""

import copy
import dataclasses
import warnings
from typing import Callable, Optional

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from sklearn.exceptions import NotFittedError
from sklearn.utils._param_validation import InvalidParameterError

from sklearn_dallmi import DALLMiClassifier
from sklearn_dallmi.text import tokenize

TEXTS = ["need water now", "the road is blocked", "fire in the house", "thank you all"]
Y_OK = np.array([[1, -1], [-1, 1], [0, -1], [-1, -1]])
NEW = ["water please", "blocked road", "hello"]
PARAMS = dict(max_epochs=1, batch_size=4, max_length=16, random_state=0, device="cpu")


@pytest.fixture(scope="module")
def _bad_input_model(tiny_model_dir):
    """The tiny random BERT of ``conftest.py``."""
    return tiny_model_dir


class Context:
    """What a case may use: the model directory and fitted references."""

    def __init__(self, model_dir, tmp_path):
        self.model_dir = model_dir
        self.tmp_path = tmp_path

    def make(self, **params):
        return DALLMiClassifier(**{"model": self.model_dir, **PARAMS, **params})

    def fitted(self):
        """A fresh copy of the estimator fitted on (TEXTS, Y_OK)."""
        return copy.deepcopy(_reference(self.model_dir))

    def reference_proba(self, texts=NEW):
        return _reference(self.model_dir).predict_proba(list(texts))


_REFERENCES = {}


def _reference(model_dir):
    if model_dir not in _REFERENCES:
        _REFERENCES[model_dir] = DALLMiClassifier(model=model_dir, **PARAMS).fit(TEXTS, Y_OK)
    return _REFERENCES[model_dir]


@dataclasses.dataclass
class Case:
    run: Callable  # (ctx) -> result
    check: Optional[Callable] = None  # (result, ctx) -> None, for cases that work
    raises: Optional[type] = None
    match: Optional[str] = None


def proba_ok(shape):
    def check(proba, ctx):
        assert isinstance(proba, np.ndarray)
        assert proba.shape == shape
        assert np.isfinite(proba).all()
        assert ((proba >= 0) & (proba <= 1)).all()
    return check


def same_as_reference(texts=NEW):
    """The result is the reference model's predict_proba on ``texts``, bit for bit."""
    def check(proba, ctx):
        np.testing.assert_array_equal(proba, ctx.reference_proba(texts))
    return check


def fitted_like_reference(clf, ctx):
    """``clf`` was fitted on the same data as the reference: same probabilities."""
    assert clf.n_epochs_ == 1
    np.testing.assert_array_equal(clf.predict_proba(NEW), ctx.reference_proba())


def labels_ok(shape):
    def check(labels, ctx):
        assert labels.shape == shape
        assert set(np.unique(labels)) <= {0, 1}
    return check


def _df():
    return pd.DataFrame({"text": TEXTS, "source": ["a", "b", "c", "d"]})


def _series():
    # A non-default, unsorted index: texts must be taken by position.
    return pd.Series(TEXTS, index=[10, 3, 7, 0], name="text")


def _fit_then(method, *args):
    def run(ctx):
        clf = ctx.fitted()
        return getattr(clf, method)(*args)
    return run


def _empty_texts_check(proba, ctx):
    assert proba.shape == (3, 2) and np.isfinite(proba).all()
    # "", " " and "\t\n" all tokenise to [CLS] [SEP] only: identical rows.
    ids = tokenize(_reference(ctx.model_dir).tokenizer_, ["", "   ", "\t\n "], 16)
    assert [len(i) for i in ids] == [2, 2, 2]
    # Equal up to float rounding: a row's position in a batch can change the
    # last bit of a matrix product.
    np.testing.assert_allclose(proba, np.broadcast_to(proba[0], proba.shape), rtol=1e-6)


LONG = "water " * 5000


def _long_check(proba, ctx):
    assert proba.shape == (2, 2) and np.isfinite(proba).all()
    # Truncated to max_length=16 tokens: the same as a text that long (up to
    # float rounding, as the two rows sit at different places in the batch).
    ids = tokenize(_reference(ctx.model_dir).tokenizer_, [LONG, "water " * 20], 16)
    assert [len(i) for i in ids] == [16, 16]
    np.testing.assert_allclose(proba[0], proba[1], rtol=1e-6)


def _unicode_check(proba, ctx):
    assert proba.shape == (5, 2) and np.isfinite(proba).all()
    assert ((proba >= 0) & (proba <= 1)).all()


def _bool_fit(ctx):
    y = np.array([[True, False], [False, True], [False, False], [True, True]])
    clf = ctx.make().fit(TEXTS, y)
    ref = ctx.make().fit(TEXTS, y.astype(int))
    return clf, ref


def _bool_check(result, ctx):
    clf, ref = result
    assert not clf.pu_labels_.any()  # no -1: both labels supervised
    np.testing.assert_array_equal(clf.n_positives_, [2, 2])
    np.testing.assert_array_equal(clf.predict_proba(NEW), ref.predict_proba(NEW))


def _partial_fit_y(y):
    def run(ctx):
        return ctx.fitted().partial_fit(TEXTS, y)
    return run


def _l1_2d_check(clf, ctx):
    assert clf.predict_proba(NEW).shape == (3, 1)
    assert clf.predict(NEW).shape == (3, 1)
    assert len(clf.classes_) == 1 and list(clf.classes_[0]) == [0, 1]


def _l1_1d_check(clf, ctx):
    proba = clf.predict_proba(NEW)
    assert proba.shape == (3, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    pred = clf.predict(NEW)
    assert pred.shape == (3,) and set(pred) <= {0, 1}
    np.testing.assert_array_equal(pred, (proba[:, 1] >= 0.5).astype(int))
    assert list(clf.classes_) == [0, 1]


def _many_labels_fit(ctx):
    rng = np.random.default_rng(0)
    y = rng.choice([-1, 0], size=(6, 500))
    y[np.arange(500) % 6, np.arange(500)] = 1  # every label has a positive
    return ctx.make().fit(TEXTS + ["more water", "fire again"], y)


def _many_labels_check(clf, ctx):
    assert clf.n_labels_ == 500 and clf.pu_labels_.shape == (500,)
    proba = clf.predict_proba(NEW)
    assert proba.shape == (3, 500) and np.isfinite(proba).all()
    assert clf.predict(NEW).shape == (3, 500)


def _not_an_encoder(ctx):
    d = ctx.tmp_path / "notes"
    d.mkdir()
    (d / "readme.txt").write_text("not a model")
    return ctx.make(model=str(d)).fit(TEXTS, Y_OK)


def _empty_config(ctx):
    d = ctx.tmp_path / "broken_model"
    d.mkdir()
    (d / "config.json").write_text("{}")
    return ctx.make(model=str(d)).fit(TEXTS, Y_OK)


def _model_is_a_file(ctx):
    f = ctx.tmp_path / "weights.txt"
    f.write_text("x")
    return ctx.make(model=str(f)).fit(TEXTS, Y_OK)


def _threshold_wrong_length(ctx):
    clf = ctx.fitted().set_params(threshold=[0.5, 0.5, 0.5])
    # predict_proba does not need the threshold and still works.
    assert clf.predict_proba(NEW).shape == (3, 2)
    return clf.predict(NEW)


def _warm_start_wrong_labels(ctx):
    clf = ctx.fitted().set_params(warm_start=True)
    return clf.fit(TEXTS, np.ones((4, 3), dtype=int))


CASES = {
    # ------------------------------------------------------------- X: containers
    "fit/pandas_series": Case(
        lambda ctx: ctx.make().fit(_series(), Y_OK), fitted_like_reference),
    "fit/dataframe_column": Case(
        lambda ctx: ctx.make().fit(_df()["text"], Y_OK), fitted_like_reference),
    "partial_fit/pandas_series": Case(
        lambda ctx: ctx.make().partial_fit(_series(), Y_OK), fitted_like_reference),
    "predict_proba/pandas_series": Case(
        _fit_then("predict_proba", pd.Series(NEW, index=[5, 1, 9])), same_as_reference()),
    "predict_proba/dataframe_column": Case(
        _fit_then("predict_proba", pd.DataFrame({"text": NEW, "n": [1, 2, 3]})["text"]),
        same_as_reference()),
    "predict_proba/pandas_string_dtype": Case(
        _fit_then("predict_proba", pd.Series(NEW, dtype="string")), same_as_reference()),
    "fit/dataframe_two_columns": Case(
        lambda ctx: ctx.make().fit(_df(), Y_OK), raises=ValueError,
        match=r"X must be one-dimensional.*shape \(4, 2\).*df\['text'\]"),
    "partial_fit/dataframe_two_columns": Case(
        lambda ctx: ctx.make().partial_fit(_df(), Y_OK), raises=ValueError,
        match=r"X must be one-dimensional.*shape \(4, 2\)"),
    "predict/dataframe_two_columns": Case(
        _fit_then("predict", _df()), raises=ValueError,
        match=r"X must be one-dimensional.*shape \(4, 2\)"),
    "predict_proba/dataframe_one_column": Case(
        _fit_then("predict_proba", _df()[["text"]]), raises=ValueError,
        match=r"X must be one-dimensional.*shape \(4, 1\).*df\['text'\]"),
    "fit/numpy_object_array": Case(
        lambda ctx: ctx.make().fit(np.array(TEXTS, dtype=object), Y_OK),
        fitted_like_reference),
    "predict_proba/numpy_object_array": Case(
        _fit_then("predict_proba", np.array(NEW, dtype=object)), same_as_reference()),
    "predict/numpy_str_array": Case(
        _fit_then("predict", np.array(NEW)), labels_ok((3, 2))),
    "fit/generator": Case(
        lambda ctx: ctx.make().fit((t for t in TEXTS), Y_OK), fitted_like_reference),
    "predict_proba/generator": Case(
        _fit_then("predict_proba", (t for t in NEW)), same_as_reference()),
    "fit/single_string": Case(
        lambda ctx: ctx.make().fit("need water now", [1]), raises=ValueError,
        match="single string; wrap it in a list"),
    "predict_proba/empty_list": Case(
        _fit_then("predict_proba", []), raises=ValueError, match="X is empty"),
    # ------------------------------------------------------------- X: entries
    "fit/none_entry": Case(
        lambda ctx: ctx.make().fit(TEXTS[:2] + [None] + TEXTS[3:], Y_OK), raises=ValueError,
        match=r"X\[2\] is NoneType \(None\), not a string"),
    "partial_fit/float_nan_entry": Case(
        lambda ctx: ctx.make().partial_fit(TEXTS[:3] + [float("nan")], Y_OK),
        raises=ValueError, match=r"X\[3\] is float \(nan\), not a string"),
    "predict_proba/none_entry": Case(
        _fit_then("predict_proba", ["ok", None]), raises=ValueError,
        match=r"X\[1\] is NoneType"),
    "predict/pandas_missing_value": Case(
        _fit_then("predict", pd.Series(["ok", None, "fine"], dtype="string")),
        raises=ValueError, match=r"X\[1\] is NAType"),
    "predict_proba/float_entry": Case(
        _fit_then("predict_proba", ["ok", 3.5]), raises=ValueError,
        match=r"X\[1\] is float \(3\.5\)"),
    "fit/bytes_entry": Case(
        lambda ctx: ctx.make().fit([b"need water"] + TEXTS[1:], Y_OK), raises=ValueError,
        match=r"X\[0\] is bytes"),
    "fit+predict_proba/empty_and_whitespace": Case(
        lambda ctx: ctx.make().fit(["", "   ", "\t\n", "water"], Y_OK)
        .predict_proba(["", "   ", "\t\n "]),
        _empty_texts_check),
    "fit+predict_proba/very_long_texts": Case(
        lambda ctx: ctx.make().fit([LONG, "road " * 3000, "fire", "x"], Y_OK)
        .predict_proba([LONG, "water " * 20]),
        _long_check),
    "fit+predict_proba/non_ascii_and_emoji": Case(
        lambda ctx: ctx.make().fit(["naïve café 🚒🔥", "日本語のテキスト", "ÄÖÜ ß straße",
                                    "🙂🙂🙂"], Y_OK)
        .predict_proba(["🔥", "Ωμέγα", "مرحبا", "\u200b", "e\u0301"]),
        _unicode_check),
    "fit/max_length_beyond_encoder_positions": Case(
        lambda ctx: ctx.make(max_length=256).fit(["water " * 300] * 4, Y_OK),
        raises=ValueError, match=r"max_length=256 exceeds the 128 positions of the encoder"),
    "fit/max_length_at_encoder_positions": Case(
        lambda ctx: ctx.make(max_length=128).fit(["water " * 300] * 4, Y_OK)
        .predict_proba(["fire " * 500]),
        proba_ok((1, 2))),
    # ------------------------------------------------------------- y
    "fit/y_list_of_lists": Case(
        lambda ctx: ctx.make().fit(TEXTS, Y_OK.tolist()), fitted_like_reference),
    "fit/y_scipy_sparse_matrix": Case(
        lambda ctx: ctx.make().fit(TEXTS, sp.csr_matrix(Y_OK)), fitted_like_reference),
    "partial_fit/y_scipy_sparse_array": Case(
        lambda ctx: ctx.make().partial_fit(TEXTS, sp.csr_array(Y_OK)), fitted_like_reference),
    "fit/y_dataframe": Case(
        lambda ctx: ctx.make().fit(TEXTS, pd.DataFrame(Y_OK, columns=["a", "b"])),
        fitted_like_reference),
    "fit/y_float_values": Case(
        lambda ctx: ctx.make().fit(TEXTS, Y_OK.astype(float)), fitted_like_reference),
    "fit/y_boolean_read_as_1_0": Case(_bool_fit, _bool_check),
    "fit/y_value_2": Case(
        lambda ctx: ctx.make().fit(TEXTS, np.where(Y_OK == 0, 2, Y_OK)), raises=ValueError,
        match=r"only 1 \(positive\), 0 \(negative\) and -1 \(unknown\); "
              r"found 2 at row 2, column 0"),
    "partial_fit/y_value_0.5": Case(
        lambda ctx: ctx.make().partial_fit(TEXTS, [[1, -1], [-1, 1], [0, 0.5], [-1, -1]]),
        raises=ValueError, match=r"row 2, column 1"),
    "fit/y_nan": Case(
        lambda ctx: ctx.make().fit(TEXTS, np.where(Y_OK == 0, np.nan, Y_OK)),
        raises=ValueError, match=r"y contains NaN \(first at row 2, column 0\)"),
    "fit/y_none_entry": Case(
        lambda ctx: ctx.make().fit(TEXTS, [[1, -1], [-1, None], [0, -1], [-1, -1]]),
        raises=ValueError, match=r"NaN \(first at row 1, column 1\)"),
    "fit/y_strings": Case(
        lambda ctx: ctx.make().fit(TEXTS, [["1", "0"]] * 4), raises=ValueError,
        match=r"y must be numeric"),
    "fit/y_ragged": Case(
        lambda ctx: ctx.make().fit(TEXTS, [[1, -1], [1], [0, -1], [-1, -1]]),
        raises=ValueError, match=r"y is not a rectangular array"),
    "fit/y_too_few_rows": Case(
        lambda ctx: ctx.make().fit(TEXTS, Y_OK[:3]), raises=ValueError,
        match=r"X has 4 texts but y has 3 rows"),
    "partial_fit/wrong_number_of_labels": Case(
        _partial_fit_y(np.ones((4, 3), dtype=int)), raises=ValueError,
        match=r"y has 3 label columns, but the fitted model has 2 label columns"),
    "partial_fit/1d_y_on_2_label_model": Case(
        _partial_fit_y([1, 0, 1, -1]), raises=ValueError,
        match=r"1-D y, but the fitted model has 2 label columns"),
    "fit/warm_start_wrong_number_of_labels": Case(
        _warm_start_wrong_labels, raises=ValueError,
        match=r"y has 3 label columns, but the fitted model has 2 label columns"),
    # ------------------------------------------------------------- fitted state
    "predict/before_fit": Case(
        lambda ctx: ctx.make().predict(NEW), raises=NotFittedError, match="not fitted yet"),
    "predict_proba/before_fit": Case(
        lambda ctx: ctx.make().predict_proba(NEW), raises=NotFittedError,
        match="not fitted yet"),
    "predict/threshold_wrong_length": Case(
        _threshold_wrong_length, raises=ValueError,
        match=r"threshold has 3 values but the model has 2 labels"),
    "predict/threshold_per_label": Case(
        lambda ctx: ctx.fitted().set_params(threshold=[0.0, 1.0]).predict(NEW),
        lambda labels, ctx: np.testing.assert_array_equal(
            labels, np.column_stack([np.ones(3, int), (ctx.reference_proba()[:, 1] >= 1.0)]))),
    # ------------------------------------------------------------- model
    "fit/model_path_missing": Case(
        lambda ctx: ctx.make(model=str(ctx.tmp_path / "no" / "such" / "dir")).fit(TEXTS, Y_OK),
        raises=ValueError, match=r"model=.*no.such.dir'?: no such directory"),
    "fit/model_pathlib_missing": Case(
        lambda ctx: ctx.make(model=ctx.tmp_path / "missing").fit(TEXTS, Y_OK),
        raises=ValueError, match=r"missing'?: no such directory"),
    "fit/model_relative_path_missing": Case(
        lambda ctx: ctx.make(model="./no_such_encoder_dir").fit(TEXTS, Y_OK),
        raises=ValueError, match=r"no_such_encoder_dir'?: no such directory"),
    "fit/model_dir_not_an_encoder": Case(
        _not_an_encoder, raises=ValueError,
        match=r"notes'? is not a Hugging Face encoder directory: it has no config\.json"),
    "fit/model_is_a_file": Case(
        _model_is_a_file, raises=ValueError, match=r"weights\.txt'? is not a Hugging Face"),
    "fit/model_dir_with_empty_config": Case(
        _empty_config, raises=ValueError, match=r"broken_model"),
    # ------------------------------------------------------------- parameters
    "fit/negative_lr": Case(
        lambda ctx: ctx.make(lr=-1e-4).fit(TEXTS, Y_OK), raises=InvalidParameterError,
        match=r"'lr' parameter .* range \(0\.0, inf\)"),
    "partial_fit/zero_lr": Case(
        lambda ctx: ctx.make(lr=0).partial_fit(TEXTS, Y_OK), raises=InvalidParameterError,
        match=r"'lr' parameter"),
    "fit/mixup_alpha_zero": Case(
        lambda ctx: ctx.make(mixup_alpha=0).fit(TEXTS, Y_OK), raises=InvalidParameterError,
        match=r"'mixup_alpha' parameter"),
    "fit/mixup_alpha_negative": Case(
        lambda ctx: ctx.make(mixup_alpha=-0.3).fit(TEXTS, Y_OK), raises=InvalidParameterError,
        match=r"'mixup_alpha' parameter"),
    "fit/positive_fraction_one": Case(
        lambda ctx: ctx.make(positive_fraction=1.0).fit(TEXTS, Y_OK),
        raises=InvalidParameterError, match=r"'positive_fraction' parameter .*\[0\.0, 1\.0\)"),
    "partial_fit/positive_fraction_negative": Case(
        lambda ctx: ctx.make(positive_fraction=-0.1).partial_fit(TEXTS, Y_OK),
        raises=InvalidParameterError, match=r"'positive_fraction' parameter"),
    "fit/batch_size_one": Case(
        lambda ctx: ctx.make(batch_size=1).fit(TEXTS, Y_OK), raises=InvalidParameterError,
        match=r"'batch_size' parameter .* range \[2, inf\)"),
    "fit/threshold_above_one": Case(
        lambda ctx: ctx.make(threshold=1.5).fit(TEXTS, Y_OK), raises=InvalidParameterError,
        match=r"'threshold' parameter"),
    # ------------------------------------------------------------- sizes
    "fit/fewer_texts_than_batch_size": Case(
        lambda ctx: ctx.make(batch_size=32).fit(TEXTS, Y_OK).predict_proba(NEW),
        proba_ok((3, 2))),
    "fit/single_text": Case(
        lambda ctx: ctx.make().fit(["need water"], [[1, 1]]).predict_proba(["water", "x"]),
        proba_ok((2, 2))),
    "partial_fit/single_text": Case(
        lambda ctx: ctx.fitted().partial_fit(["more water"], [[1, -1]]).predict(NEW),
        labels_ok((3, 2))),
    "fit/one_label_as_column": Case(
        lambda ctx: ctx.make().fit(TEXTS, Y_OK[:, :1]), _l1_2d_check),
    "fit/one_label_as_1d_y": Case(
        lambda ctx: ctx.make().fit(TEXTS, Y_OK[:, 0]), _l1_1d_check),
    "fit/500_labels_few_texts": Case(_many_labels_fit, _many_labels_check),
}


def test_table_covers_every_method():
    methods = {case_id.split("/")[0] for case_id in CASES}
    assert {"fit", "partial_fit", "predict_proba", "predict"} <= methods
    assert len(CASES) >= 25


@pytest.mark.parametrize("case_id", list(CASES))
def test_bad_input(case_id, _bad_input_model, tmp_path):
    case = CASES[case_id]
    ctx = Context(_bad_input_model, tmp_path)
    with warnings.catch_warnings():
        # A label without an observed positive warns; that is not the point here.
        warnings.filterwarnings("ignore", message=r"Labels \[.*\] have no observed positive")
        if case.raises is not None:
            assert issubclass(case.raises, Exception)
            with pytest.raises(case.raises, match=case.match):
                case.run(ctx)
            if issubclass(case.raises, InvalidParameterError):
                assert issubclass(case.raises, ValueError)
        else:
            result = case.run(ctx)
            case.check(result, ctx)

