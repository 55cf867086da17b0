"""Scaling: streamed inference, proba_dtype, device and compile options."""

import contextlib
import copy
import pickle
import warnings

import numpy as np
import pytest
import torch

from skorch.exceptions import DeviceWarning

import sklearn_dallmi.classifier as classifier_module
from sklearn_dallmi import DALLMiClassifier
from sklearn_dallmi.net import LOSS_TERMS, TokenizedDataset, resolve_device
from sklearn_dallmi.text import tokenize

FAST = dict(max_epochs=1, batch_size=8, max_length=24, lr=1e-3, random_state=0)


@pytest.fixture(scope="module")
def fitted(tiny_model_dir, keyword_task):
    tr = keyword_task.train
    return DALLMiClassifier(model=tiny_model_dir, **FAST).fit(tr.texts[:48], tr.Y_partial[:48])


@pytest.fixture
def small_chunks(monkeypatch):
    """Chunks of 7 texts, so that a few dozen texts cross several chunks."""
    monkeypatch.setattr(classifier_module, "_PREDICT_CHUNK", 7)


# ------------------------------------------------------- streamed inference

@pytest.mark.parametrize("method", ["predict_proba", "decision_function", "predict"])
def test_generator_gives_the_same_result_as_a_list(fitted, keyword_task, small_chunks, method):
    texts = keyword_task.test.texts[:40]
    expected = getattr(fitted, method)(list(texts))
    got = getattr(fitted, method)(t for t in texts)  # no len(): per-chunk arrays
    assert got.dtype == expected.dtype
    np.testing.assert_array_equal(got, expected)


def test_chunking_does_not_change_outputs(fitted, keyword_task, monkeypatch):
    texts = keyword_task.test.texts[:40]
    whole = fitted.predict_proba(texts)  # one chunk
    monkeypatch.setattr(classifier_module, "_PREDICT_CHUNK", 3)
    # Other chunks make other length-sorted batches: other padded shapes, so
    # float32 sums in another order (differences of ~1e-8), not other values.
    np.testing.assert_allclose(fitted.predict_proba(texts), whole, atol=1e-6)
    np.testing.assert_allclose(fitted.predict_proba(iter(texts)), whole, atol=1e-6)


def test_bad_entry_deep_in_a_generator_names_its_global_index(fitted, small_chunks):
    def lines():
        for i in range(30):
            yield None if i == 17 else f"line {i} about water"

    with pytest.raises(ValueError, match=r"X\[17\] is NoneType \(None\), not a string"):
        fitted.predict_proba(lines())


def test_empty_generator_is_rejected(fitted):
    with pytest.raises(ValueError, match="X is empty"):
        fitted.predict(t for t in [])


def test_streaming_reads_the_input_lazily(fitted, small_chunks, monkeypatch):
    # The iterator is read one chunk at a time, not all at once.
    seen = []
    calls = []
    original = classifier_module.tokenize

    def spy(tokenizer, texts, max_length):
        calls.append((len(seen), len(texts)))
        return original(tokenizer, texts, max_length)

    monkeypatch.setattr(classifier_module, "tokenize", spy)

    def lines():
        for i in range(20):
            seen.append(i)
            yield f"text {i}"

    assert fitted.predict_proba(lines()).shape == (20, 3)
    # At the first tokenisation only the first chunk (7 texts) was read.
    assert calls[0] == (7, 7)
    assert [n for _, n in calls] == [7, 7, 6]


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_proba_dtype(fitted, keyword_task, dtype):
    texts = keyword_task.test.texts[:20]
    reference = fitted.predict_proba(texts)
    assert reference.dtype == np.float64
    fitted.set_params(proba_dtype=dtype)
    try:
        proba = fitted.predict_proba(texts)
        from_generator = fitted.predict_proba(t for t in texts)
        labels = fitted.predict(texts)
    finally:
        fitted.set_params(proba_dtype="float64")
    assert proba.dtype == np.dtype(dtype) and from_generator.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(from_generator, proba)
    np.testing.assert_allclose(proba, reference, atol=1e-3 if dtype == "float16" else 1e-7)
    # predict thresholds the float64 values, whatever proba_dtype is.
    np.testing.assert_array_equal(labels, (reference >= 0.5).astype(int))


def test_proba_dtype_binary(tiny_model_dir, keyword_task):
    tr = keyword_task.train
    clf = DALLMiClassifier(model=tiny_model_dir, proba_dtype="float16", **FAST)
    proba = clf.fit(tr.texts[:32], tr.Y_partial[:32, 0]).predict_proba(tr.texts[:5])
    assert proba.shape == (5, 2) and proba.dtype == np.float16


def test_invalid_proba_dtype_is_rejected(tiny_model_dir, keyword_task):
    tr = keyword_task.train
    clf = DALLMiClassifier(model=tiny_model_dir, proba_dtype="int8", **FAST)
    with pytest.raises(ValueError, match="proba_dtype"):
        clf.fit(tr.texts[:16], tr.Y_partial[:16])


# ------------------------------------------------------------ devices (mocked)

def test_one_device_policy(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == "cuda"
    assert resolve_device("cuda:1") == "cuda:1"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == "cpu"
    with pytest.warns(DeviceWarning, match="CUDA is not available: running on the CPU"):
        assert resolve_device("cuda") == "cpu"
    with pytest.raises(ValueError, match="not a torch device"):
        resolve_device("gpu-please")


def test_fit_on_missing_cuda_warns_and_trains_on_the_cpu(tiny_model_dir, keyword_task,
                                                         monkeypatch):
    tr = keyword_task.train
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    clf = DALLMiClassifier(model=tiny_model_dir, device="cuda", **FAST)
    with pytest.warns(DeviceWarning):
        clf.fit(tr.texts[:16], tr.Y_partial[:16])
    assert clf.device == "cuda" and clf.device_ == "cpu"


def test_net_autocast_is_bf16_cuda_on_cuda(fitted, monkeypatch):
    net = copy.deepcopy(fitted.net_)
    assert isinstance(net.autocast(), contextlib.nullcontext)  # on the CPU
    net.device = "cuda"  # only the attribute: nothing runs on it
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "CUDA is not available" when building it here
        ctx = net.autocast()
    assert isinstance(ctx, torch.autocast)
    assert ctx.device == "cuda" and ctx.fast_dtype == torch.bfloat16


@pytest.mark.parametrize("precision, device, expected", [
    ("auto", "cpu", None), ("auto", "cuda", "cuda"), ("bf16", "cpu", "cpu"),
    ("bf16", "cuda", "cuda"), ("float32", "cpu", None), ("float32", "cuda", None)])
def test_net_autocast_follows_precision(fitted, precision, device, expected):
    net = copy.deepcopy(fitted.net_)
    vars(net).update(precision=precision, device=device)  # nothing runs on it
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ctx = net.autocast()
    if expected is None:
        assert isinstance(ctx, contextlib.nullcontext)
    else:
        assert isinstance(ctx, torch.autocast)
        assert ctx.device == expected and ctx.fast_dtype == torch.bfloat16


def test_a_network_pickled_before_precision_existed_runs_as_auto(fitted):
    net = copy.deepcopy(fitted.net_)
    del vars(net)["precision"]
    assert isinstance(net.autocast(), contextlib.nullcontext)
    net.device = "cuda"  # "auto" is bf16 there, "float32" would not be
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert isinstance(net.autocast(), torch.autocast)


def test_bf16_on_the_cpu_trains_and_predicts_under_autocast(tiny_model_dir, keyword_task,
                                                             monkeypatch):
    tr = keyword_task.train
    seen = []
    forward = classifier_module.EncoderClassifier.forward

    def spy(module, *args, **kwargs):
        seen.append(torch.is_autocast_enabled("cpu") and
                    torch.get_autocast_dtype("cpu") == torch.bfloat16)
        return forward(module, *args, **kwargs)

    monkeypatch.setattr(classifier_module.EncoderClassifier, "forward", spy)
    clf = DALLMiClassifier(model=tiny_model_dir, precision="bf16", **FAST)
    clf.fit(tr.texts[:32], tr.Y_partial[:32])
    n_fit = len(seen)
    proba = clf.predict_proba(keyword_task.test.texts[:10])
    assert n_fit > 0 and len(seen) > n_fit and all(seen)
    assert proba.dtype == np.float64 and np.isfinite(proba).all()
    assert next(clf.net_.module_.parameters()).dtype == torch.float32
    # The same fit in float32 runs without autocast and gives other scores.
    seen.clear()
    ref = DALLMiClassifier(model=tiny_model_dir, precision="float32", **FAST)
    ref.fit(tr.texts[:32], tr.Y_partial[:32])
    assert seen and not any(seen)
    assert not np.allclose(ref.predict_proba(keyword_task.test.texts[:10]), proba, atol=1e-7)


def test_the_head_stays_float32_under_bf16_autocast(fitted, keyword_task):
    # bfloat16 logits (8 bits of mantissa) would tie scores and cost ranking.
    module = copy.deepcopy(fitted.net_.plain_module).eval()
    ids = tokenize(fitted.tokenizer_, keyword_task.test.texts[:6], 24)
    x = fitted.net_.get_iterator(TokenizedDataset(ids), training=False)
    batch = next(iter(x))[0]
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        logits = module(batch["input_ids"], batch["attention_mask"])
        pooled = module.pool(batch["input_ids"], batch["attention_mask"])
    with torch.inference_mode():
        expected = module.head(pooled.float())
    assert logits.dtype == torch.float32
    torch.testing.assert_close(logits, expected, rtol=1e-5, atol=1e-5)


class _HeadOutputs:
    """A forward hook (picklable, as a network copy needs) noting the head's outputs."""

    def __init__(self):
        self.seen = []

    def __call__(self, module, args, out):
        self.seen.append((torch.is_autocast_enabled("cpu"), out.dtype))


def test_a_continued_bf16_fit_computes_every_logit_in_float32(tiny_model_dir, keyword_task):
    # fit, then set_params(precision="bf16") and a continued fit on PU
    # labels: its probe pass, the previous model's probabilities, training
    # and prediction all go through the head.
    tr = keyword_task.train
    clf = DALLMiClassifier(model=tiny_model_dir, **FAST).fit(tr.texts[:32], tr.Y_true[:32])
    clf.net_.plain_module.head.register_forward_hook(_HeadOutputs())
    clf.set_params(precision="bf16", warm_start=True).partial_fit(tr.texts[32:64],
                                                                  tr.Y_partial[32:64])
    clf.predict_proba(keyword_task.test.texts[:8])
    # The continued fit trained a copy of the network, hook included.
    (hook,) = clf.net_.plain_module.head._forward_hooks.values()
    dtypes = hook.seen
    assert clf.net_.precision == "bf16" and len(dtypes) > 3
    assert {dtype for _, dtype in dtypes} == {torch.float32}
    assert not any(enabled for enabled, _ in dtypes)


def test_precision_set_after_the_fit_applies_to_prediction(fitted, keyword_task):
    clf = copy.deepcopy(fitted)
    texts = keyword_task.test.texts[:10]
    float32 = clf.predict_proba(texts)
    bf16 = clf.set_params(precision="bf16").predict_proba(texts)
    assert not np.allclose(bf16, float32, atol=1e-7)
    np.testing.assert_allclose(bf16, float32, atol=0.05)
    np.testing.assert_array_equal(clf.set_params(precision="auto").predict_proba(texts), float32)
    with pytest.raises(ValueError, match="precision='fp16'"):
        clf.set_params(precision="fp16").predict(texts)


def test_precision_is_validated(tiny_model_dir, keyword_task):
    tr = keyword_task.train
    with pytest.raises(ValueError, match="precision"):
        DALLMiClassifier(model=tiny_model_dir, precision="fp16", **FAST).fit(
            tr.texts[:16], tr.Y_partial[:16])


@pytest.mark.parametrize("precision, device, launcher, expected", [
    ("auto", "cpu", None, "no"), ("auto", "cuda", None, "bf16"), ("bf16", "cpu", None, "bf16"),
    ("float32", "cuda", None, "no"), ("auto", "cuda", "no", None), ("bf16", "cpu", "no", "bf16"),
    ("float32", "cuda", "bf16", "no")])
def test_a_launched_fit_asks_accelerate_for_the_same_precision(monkeypatch, precision, device,
                                                               launcher, expected):
    # "auto" leaves it to the launcher's setting when there is one (None);
    # an explicit precision wins over it.
    import accelerate

    made = {}
    monkeypatch.setattr(classifier_module, "_launched_distributed", lambda: True)
    monkeypatch.setattr(accelerate, "Accelerator", lambda **kw: made.update(kw) or "acc")
    monkeypatch.delenv("ACCELERATE_MIXED_PRECISION", raising=False)
    if launcher is not None:
        monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", launcher)
    assert DALLMiClassifier(precision=precision)._accelerator(device) == "acc"
    assert made["mixed_precision"] == expected


def test_batches_are_pinned_only_on_cuda(fitted, keyword_task):
    # The estimator asks skorch's data loaders for pinned memory on CUDA.
    assert fitted.net_.iterator_train__pin_memory is False
    assert fitted.net_.iterator_valid__pin_memory is False
    params = fitted._net_params("cuda")
    assert params["iterator_train__pin_memory"] is params["iterator_valid__pin_memory"] is True
    tr = keyword_task.train
    ids = tokenize(fitted.tokenizer_, tr.texts[:16], 24)
    net = copy.deepcopy(fitted.net_)
    vars(net).update(params)
    loader = net.get_iterator(TokenizedDataset(ids, tr.Y_partial[:16].astype(np.float32)),
                              training=True)
    assert isinstance(loader, torch.utils.data.DataLoader) and loader.pin_memory


def test_loss_terms_recorded_once_per_batch(fitted):
    for epoch in fitted.history_:
        for batch in epoch["batches"]:
            assert {"train_loss", "train_variational", "train_mixup", "train_bce"} <= set(batch)
            assert all(isinstance(batch[f"train_{t}"], float) for t in LOSS_TERMS)


# ---------------------------------------------------------------- compile

def test_compile_parameter_is_validated(tiny_model_dir, keyword_task):
    tr = keyword_task.train
    with pytest.raises(ValueError, match="compile"):
        DALLMiClassifier(model=tiny_model_dir, compile="yes", **FAST).fit(
            tr.texts[:16], tr.Y_partial[:16])


class _Compiled(torch.nn.Module):
    """Stands in for torch.compile's wrapper: records the forward calls."""

    def __init__(self, module, calls):
        super().__init__()
        self._orig_mod = module
        self.calls = calls

    def forward(self, *args, **inputs):
        self.calls.append(sorted(inputs))
        return self._orig_mod(*args, **inputs)


def test_compile_goes_through_skorch(tiny_model_dir, keyword_task, monkeypatch):
    # torch.compile is replaced by a spy (compiling takes too long for the
    # suite): skorch's compile option wraps the module, the one forward call
    # of a training step (mixed rows included) and predict go through the
    # wrapper, and the results equal the uncompiled ones.
    tr = keyword_task.train
    compiled, calls = [], []

    def fake_compile(module, **kwargs):
        compiled.append(module)
        return _Compiled(module, calls)

    monkeypatch.setattr(torch, "compile", fake_compile)
    clf = DALLMiClassifier(model=tiny_model_dir, compile=True, **FAST)
    clf.fit(tr.texts[:32], tr.Y_partial[:32])
    assert clf.net_.plain_module in compiled
    assert ["attention_mask", "gamma", "input_ids", "partner"] in calls
    n_calls = len(calls)
    proba = clf.predict_proba(tr.texts[:8])
    assert len(calls) > n_calls
    plain = DALLMiClassifier(model=tiny_model_dir, **FAST).fit(tr.texts[:32], tr.Y_partial[:32])
    np.testing.assert_array_equal(proba, plain.predict_proba(tr.texts[:8]))
    copied = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(copied.predict_proba(tr.texts[:8]), proba)


# ------------------------------------------------------------ speed command

def test_speed_reports_throughputs_and_cpu_fallback(tmp_path, monkeypatch, capsys):
    # The two measurements are stubbed (they need the real encoder and data):
    # this checks the device resolution, the printed lines and speed.json.
    import json

    from sklearn_dallmi.benchmark import speed

    seen = {}

    def fake_train(model, n_pairs, device, precision="auto"):
        seen.setdefault("train", []).append((device, precision))
        step = 0.25 if precision == "bf16" else 0.5
        return {"train_step_ratio": 2.1, "train_step_ratio_min": 1.9,
                "train_step_ratio_max": 2.3, "dallmi_step_seconds": step,
                "bce_step_seconds": 0.24, "train_texts_per_second": 16 / step,
                "train_batch_size": 16, "train_max_length": 64}

    def fake_infer(model, n_texts, device):
        seen["infer"] = device
        return {"predict_proba_texts_per_second": 300.0, "best_loop_texts_per_second": 150.0,
                "padded_loop_texts_per_second": 100.0, "onnx_int8_texts_per_second": 450.0,
                "sentence_transformers_texts_per_second": None,
                "speedup_vs_best_loop": 2.0, "speedup_vs_padded_loop": 3.0,
                "speedup_vs_sentence_transformers": None,
                "onnx_int8_speedup_vs_best_loop": 3.0, "onnx_int8_speedup_vs_padded_loop": 4.5,
                "onnx_int8_speedup_vs_sentence_transformers": None,
                "onnx_int8_speedup_vs_predict_proba": 1.5, "onnx_int8_build_seconds": 12.0,
                "bf16_texts_per_second": 600.0, "bf16_speedup_vs_predict_proba": 2.0,
                "inference_texts": 2000,
                "inference_batch_size": 64, "inference_max_length": 128, "inference_rounds": 3}

    monkeypatch.setattr(speed, "train_step_ratio", fake_train)
    monkeypatch.setattr(speed, "inference_throughput", fake_infer)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    speed.run_speed(str(tmp_path), device="auto")
    out = capsys.readouterr().out
    assert "no GPU: running on CPU" in out
    assert "32.0 texts/s" in out and "      300" in out
    assert "precision='bf16': 64.0 texts/s (2.00x)" in out and "      600" in out
    assert "range 1.90-2.30" in out and "2.00x" in out and "not installed" in out
    assert "450" in out and "3.00x" in out and "4.50x" in out and "built in 12.0 s" in out
    assert seen == {"train": [("cpu", "auto"), ("cpu", "bf16")], "infer": "cpu"}
    result = json.loads((tmp_path / "speed.json").read_text())
    for key in ("train_texts_per_second", "predict_proba_texts_per_second",
                "train_step_ratio", "speedup_vs_best_loop", "speedup_vs_padded_loop"):
        assert key in result
    assert result["device"] == "cpu" and result["bf16_train_speedup"] == 2.0
    speed.run_speed(str(tmp_path), device="cpu")
    assert "no GPU" not in capsys.readouterr().out
