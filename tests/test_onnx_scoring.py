"""``inference="onnx-int8"``: the int8 ONNX Runtime scoring path."""

import copy
import pickle
import sys

import joblib
import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

from sklearn_dallmi import DALLMiClassifier, onnx_scoring
from sklearn_dallmi.onnx_scoring import OnnxInt8Scorer
from sklearn_dallmi.text import pad_batch, tokenize

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")


@pytest.fixture(scope="module")
def fitted(tiny_model_dir, keyword_task):
    clf = DALLMiClassifier(tiny_model_dir, max_epochs=1, batch_size=8, max_length=24,
                           random_state=0, device="cpu")
    return clf.fit(keyword_task.train.texts, keyword_task.train.Y_partial)


@pytest.fixture(scope="module")
def fast(fitted):
    clf = copy.deepcopy(fitted).set_params(inference="onnx-int8")
    clf.predict_proba(["warm up the export"])
    return clf


def test_scores_follow_the_float_model(fitted, fast, keyword_task):
    texts = keyword_task.test.texts
    exact, quick = fitted.decision_function(texts), fast.decision_function(texts)
    assert quick.shape == exact.shape == (len(texts), 3)
    # int8 weights move the scores a little but keep their order.
    assert np.abs(quick - exact).max() < 0.1 * np.ptp(exact)
    for label in range(3):
        assert spearmanr(quick[:, label], exact[:, label]).statistic > 0.99


def test_outputs_stay_in_input_order_with_padding(fitted, fast):
    # Lengths that differ, so that batches are sorted and padded.
    texts = ["water", "road " * 20, "fire and water on the road", "the", "water " * 7]
    exact, quick = fitted.predict_proba(texts), fast.predict_proba(texts)
    assert np.abs(quick - exact).max() < 0.05
    # Activations are quantised per batch: a text scored alone moves a little.
    alone = np.vstack([fast.predict_proba([t]) for t in texts])
    np.testing.assert_allclose(alone, quick, atol=0.02)
    np.testing.assert_array_equal(fast.predict_proba(texts), quick)


@pytest.mark.parametrize("vnni", [True, False])
def test_weights_keep_seven_bits_on_a_cpu_without_vnni(fitted, monkeypatch, vnni):
    ort, quantize, quant_type = onnx_scoring._import_onnxruntime()
    reduced = []

    def recording(*args, **kwargs):
        reduced.append(kwargs["reduce_range"])
        return quantize(*args, **kwargs)

    monkeypatch.setattr(onnx_scoring, "_import_onnxruntime", lambda: (ort, recording, quant_type))
    monkeypatch.setattr(onnx_scoring, "_cpu_has_vnni", lambda: vnni)
    copy.deepcopy(fitted).set_params(inference="onnx-int8").predict_proba(["water"])
    assert reduced == [not vnni]


def test_predict_and_score_use_the_fast_path(fast, keyword_task, monkeypatch):
    test = keyword_task.test
    labels = fast.predict(test.texts)
    assert labels.shape == (len(test.texts), 3) and set(np.unique(labels)) <= {0, 1}
    assert 0 < fast.score(test.texts, test.Y_true) <= 1
    monkeypatch.setattr(torch.nn.Module, "__call__",
                        lambda *a, **k: pytest.fail("the torch module ran"))
    fast.predict_proba(test.texts[:5])


def test_session_built_once_rebuilt_after_a_fit_and_switched_off(fitted, keyword_task,
                                                                    monkeypatch):
    clf = copy.deepcopy(fitted)
    built = []
    real = OnnxInt8Scorer.__init__

    def counting(self, *args, **kwargs):
        built.append(1)
        real(self, *args, **kwargs)

    monkeypatch.setattr(OnnxInt8Scorer, "__init__", counting)
    texts = keyword_task.test.texts[:10]
    exact = clf.predict_proba(texts)
    before = clf.set_params(inference="onnx-int8").predict_proba(texts)
    np.testing.assert_array_equal(clf.set_params(inference="torch").predict_proba(texts), exact)
    np.testing.assert_array_equal(clf.set_params(inference="onnx-int8").predict_proba(texts),
                                  before)
    assert len(built) == 1
    clf.partial_fit(keyword_task.train.texts[:40], keyword_task.train.Y_partial[:40])
    after = clf.predict_proba(texts)
    assert len(built) == 2
    assert not np.allclose(after, before)
    np.testing.assert_allclose(after, clf.set_params(inference="torch").predict_proba(texts),
                               atol=0.05)


def test_persistence_keeps_the_choice_but_not_the_session(fast, tmp_path, keyword_task):
    texts = keyword_task.test.texts[:10]
    expected = fast.predict_proba(texts)
    assert b"onnxruntime" not in pickle.dumps(fast)
    copy.deepcopy(fast)
    assert "_onnx_scorer" in vars(fast)  # the original keeps its session
    joblib.dump(fast, tmp_path / "m.joblib")
    loaded = joblib.load(tmp_path / "m.joblib")
    assert loaded.inference == "onnx-int8" and "_onnx_scorer" not in vars(loaded)
    np.testing.assert_allclose(loaded.predict_proba(texts), expected, atol=1e-6)
    fast.save_pretrained(tmp_path / "save")
    assert not list((tmp_path / "save").rglob("*.onnx"))
    assert DALLMiClassifier.from_pretrained(tmp_path / "save").inference == "onnx-int8"


def test_export_leaves_the_module_as_it_was_and_uses_torch_threads(fitted):
    # A bf16 module stands in for one on a GPU under autocast: the export
    # works from a float32 CPU copy and the original keeps its dtype and mode.
    module = copy.deepcopy(fitted.net_.plain_module).to(torch.bfloat16).train()
    ids = tokenize(fitted.tokenizer_, ["water on the road", "fire"], 16)
    example, _ = pad_batch([(i, None) for i in ids], fitted.tokenizer_.pad_token_id)
    scorer = OnnxInt8Scorer(module, example)
    assert next(module.parameters()).dtype == torch.bfloat16 and module.training
    assert scorer.session.get_session_options().intra_op_num_threads == torch.get_num_threads()
    logits = scorer.logits([(example, None)])
    assert logits.shape == (2, 3) and logits.dtype == np.float32
    assert scorer.logits([]).shape == (0, 3)


def test_building_leaves_the_root_logger_unconfigured(fitted, monkeypatch):
    import logging

    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [])
    level = root.level
    ids = tokenize(fitted.tokenizer_, ["water on the road", "fire"], 16)
    example, _ = pad_batch([(i, None) for i in ids], fitted.tokenizer_.pad_token_id)
    OnnxInt8Scorer(fitted.net_.plain_module, example)
    assert root.handlers == [] and root.level == level


def test_missing_onnxruntime_is_reported_with_the_extra(fitted, monkeypatch):
    clf = copy.deepcopy(fitted).set_params(inference="onnx-int8")
    for package in ("onnxruntime", "onnxscript"):
        with monkeypatch.context() as m:
            m.setitem(sys.modules, package, None)
            with pytest.raises(ImportError, match=r"sklearn-dallmi\[onnx\].*inference='torch'"):
                clf.predict_proba(["water"])


def test_unknown_inference_is_a_value_error(fitted, keyword_task):
    clf = copy.deepcopy(fitted).set_params(inference="int4")
    with pytest.raises(ValueError, match="inference='int4'"):
        clf.predict_proba(["water"])
    with pytest.raises(ValueError, match="inference"):
        clf.fit(keyword_task.train.texts[:20], keyword_task.train.Y_partial[:20])
