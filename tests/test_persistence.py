"""Safe persistence (save_pretrained / from_pretrained) and GPU -> CPU loading."""

import copy
import io
import json
import os
import warnings
from pathlib import Path
from unittest import mock

import joblib
import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose, assert_array_equal
from safetensors.torch import load_file
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from skorch.exceptions import DeviceWarning

from sklearn_dallmi import DALLMiClassifier, persistence
from sklearn_dallmi.persistence import FORMAT_VERSION

TEXTS = [
    "we need water and food", "the road is flooded", "thank you all",
    "fire near the school", "water please", "road blocked by trees",
    "nothing to report today", "fire and smoke everywhere", "clean water needed",
    "bridge and road damaged", "all fine here", "the fire spread fast",
]
# Label 0 and 2 are PU (they hold -1), label 1 is supervised.
Y = np.array([
    [1, 0, -1], [-1, 1, -1], [0, 0, 0], [-1, 0, 1], [1, 0, -1], [-1, 1, -1],
    [0, 0, 0], [-1, 0, 1], [-1, 0, -1], [-1, 1, -1], [0, 0, 0], [-1, 0, -1],
])
NEW_TEXTS = ["water for the village", "smoke on the road", "a quiet day"]



def save_pretrained(estimator, directory, **kwargs):
    return estimator.save_pretrained(directory, **kwargs)


def load_pretrained(directory, **kwargs):
    return DALLMiClassifier.from_pretrained(directory, **kwargs)


@pytest.fixture(scope="module")
def _tiny_dir(tiny_model_dir):
    """The tiny random BERT of ``conftest.py``."""
    return tiny_model_dir


def _fit(model_dir, y=Y, **params):
    params = {"max_epochs": 1, "batch_size": 4, "max_length": 16, "random_state": 0,
              "device": "cpu", **params}
    return DALLMiClassifier(model=model_dir, **params).fit(TEXTS, y)


@pytest.fixture(scope="module")
def _fitted(_tiny_dir):
    """A fitted multi-label estimator; tests that change it take a deepcopy."""
    return _fit(_tiny_dir)


def _head(estimator):
    return {k: v.detach().cpu().clone() for k, v in estimator.net_.module_.head.state_dict().items()}


def _assert_same_heads(a, b):
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def _assert_same_fitted(a, b):
    assert b.n_labels_ == a.n_labels_
    assert b._binary == a._binary
    assert b.n_epochs_ == a.n_epochs_
    for name in ("pu_labels_", "proba_shift_", "n_positives_"):
        assert getattr(b, name).dtype == getattr(a, name).dtype, name
        assert_array_equal(getattr(b, name), getattr(a, name))
    assert b.stage_head_ == a.stage_head_
    for name in ("head_gradient_", "head_hessian_"):
        if getattr(a, name) is None:
            assert getattr(b, name) is None, name
        else:
            assert getattr(b, name).dtype == getattr(a, name).dtype, name
            assert_array_equal(getattr(b, name), getattr(a, name))
    if a._binary:
        assert_array_equal(b.classes_, a.classes_)
    else:
        assert len(b.classes_) == len(a.classes_)
        for ca, cb in zip(a.classes_, b.classes_):
            assert cb.dtype == ca.dtype
            assert_array_equal(cb, ca)


# ----------------------------------------------------------------- round trip


def test_round_trip_predicts_identical_probabilities(_fitted, tmp_path):
    path = save_pretrained(_fitted, tmp_path / "saved")
    loaded = load_pretrained(path)

    assert_array_equal(loaded.predict_proba(TEXTS + NEW_TEXTS),
                       _fitted.predict_proba(TEXTS + NEW_TEXTS))
    assert_array_equal(loaded.decision_function(NEW_TEXTS), _fitted.decision_function(NEW_TEXTS))
    assert_array_equal(loaded.predict(NEW_TEXTS), _fitted.predict(NEW_TEXTS))
    _assert_same_fitted(_fitted, loaded)
    assert loaded.device_ == "cpu"
    assert loaded.net_.criterion_.pu_labels.tolist() == _fitted.pu_labels_.tolist()
    assert len(loaded.history_) == len(_fitted.history_)
    assert loaded.history_[-1, "train_loss"] == pytest.approx(_fitted.history_[-1, "train_loss"])

    # Every parameter comes back, except model, which is the saved directory.
    expected = {**_fitted.get_params(), "model": str(Path(path))}
    assert loaded.get_params() == expected
    assert clone(loaded).get_params()["model"] == str(Path(path))


def test_round_trip_of_a_continued_fit_keeps_its_stage_head(_tiny_dir, tmp_path):
    source = _fit(_tiny_dir, y=np.where(Y == -1, 0, Y))
    assert source.head_hessian_ is not None
    target = copy.deepcopy(source).set_params(warm_start=True).fit(TEXTS, Y)
    assert target.stage_head_ in ("probe", "expanded", "average")
    loaded = load_pretrained(save_pretrained(target, tmp_path / "target"))
    _assert_same_fitted(target, loaded)
    # Its supervised label (column 1) left an expansion; the next stage reads it.
    assert loaded.head_hessian_[1].any() and not loaded.head_hessian_[0].any()


def test_corrupted_expansion_is_refused(_fitted, tmp_path):
    from safetensors.torch import save_file

    path = Path(save_pretrained(_fitted, tmp_path / "bad"))
    tensors = load_file(str(path / "dallmi.safetensors"))
    tensors["fitted.head_hessian_"] = tensors["fitted.head_hessian_"][:, :3].contiguous()
    save_file(tensors, str(path / "dallmi.safetensors"))
    with pytest.raises(ValueError, match="corrupted: head_hessian_ has shape"):
        load_pretrained(path)


def test_round_trip_of_a_one_dimensional_y(_tiny_dir, tmp_path):
    y = Y[:, 1]
    est = _fit(_tiny_dir, y=y, threshold=0.4)
    loaded = load_pretrained(save_pretrained(est, tmp_path / "binary"))
    _assert_same_fitted(est, loaded)
    assert isinstance(loaded.classes_, np.ndarray)
    assert loaded.predict_proba(NEW_TEXTS).shape == (3, 2)
    assert_array_equal(loaded.predict_proba(NEW_TEXTS), est.predict_proba(NEW_TEXTS))
    assert_array_equal(loaded.predict(NEW_TEXTS), est.predict(NEW_TEXTS))


def test_array_threshold_and_pathlike_model_are_saved(_tiny_dir, tmp_path):
    est = _fit(Path(_tiny_dir), threshold=np.array([0.3, 0.5, 0.7]))
    path = save_pretrained(est, tmp_path / "thr")
    manifest = json.loads((Path(path) / "dallmi.json").read_text())
    assert manifest["params"]["model"] == _tiny_dir  # the original, as provenance
    loaded = load_pretrained(path)
    assert isinstance(loaded.threshold, np.ndarray)
    assert_array_equal(loaded.threshold, est.threshold)
    assert_array_equal(loaded.predict(NEW_TEXTS), est.predict(NEW_TEXTS))


def test_loading_leaves_the_global_torch_random_state_alone(_fitted, tmp_path):
    path = save_pretrained(_fitted, tmp_path / "rng")
    before = torch.random.get_rng_state()
    load_pretrained(path)
    assert torch.equal(torch.random.get_rng_state(), before)


# --------------------------------------------------------------- no pickle


_PICKLE_MAGIC = tuple(bytes([0x80, protocol]) for protocol in range(2, 6))


def test_directory_holds_no_pickle(_fitted, tmp_path):
    path = Path(save_pretrained(_fitted, tmp_path / "nopickle", include_optimizer=True))
    names = sorted(p.name for p in path.rglob("*") if p.is_file())
    assert {"config.json", "model.safetensors", "dallmi.safetensors", "history.json",
            "dallmi.json"} <= set(names)
    for name in names:
        assert not name.endswith((".pkl", ".pickle", ".joblib", ".bin", ".pt", ".pth")), name
        head = (path / name).read_bytes()[:2]
        assert head not in _PICKLE_MAGIC, f"{name} starts like a pickle"
        assert head != b"PK", f"{name} is a zip archive (torch.save format)"
    for name in names:
        if name.endswith(".json"):
            with open(path / name, encoding="utf-8") as f:
                json.load(f)
    with open(path / "dallmi.json", encoding="utf-8") as f:
        manifest = json.load(f)
    assert manifest["format_version"] == FORMAT_VERSION
    # Every parameter but those that hold code or live objects.
    assert set(manifest["params"]) == set(_fitted.get_params(deep=False)) - {
        "callbacks", "accelerator"}
    assert set(manifest["fitted"]) == {"n_labels_", "n_epochs_", "binary", "stage_head_"}
    # The tensors: the weights outside the encoder, the fitted arrays and
    # the optimizer's moments.
    tensors = set(load_file(str(path / "dallmi.safetensors")))
    assert {"module.head.weight", "module.head.bias", "fitted.pu_labels_",
            "fitted.proba_shift_", "fitted.n_positives_", "fitted.head_gradient_",
            "fitted.head_hessian_"} <= tensors
    assert all(t.startswith(("module.head.", "fitted.", "optimizer.")) for t in tensors)
    assert any(t.startswith("optimizer.") for t in tensors)


def test_save_and_load_never_pickle(_fitted, tmp_path):
    boom = mock.Mock(side_effect=AssertionError("pickle-based serialisation was used"))
    targets = ["pickle.load", "pickle.loads", "pickle.dump", "pickle.dumps",
               "pickle.Pickler", "pickle.Unpickler", "torch.load", "torch.save",
               "joblib.load", "joblib.dump"]
    patches = [mock.patch(t, boom) for t in targets]
    for p in patches:
        p.start()
    try:
        path = save_pretrained(_fitted, tmp_path / "guarded", include_optimizer=True)
        loaded = load_pretrained(path)
    finally:
        for p in patches:
            p.stop()
    assert boom.call_count == 0
    assert_array_equal(loaded.predict_proba(NEW_TEXTS), _fitted.predict_proba(NEW_TEXTS))


def test_load_passes_trust_remote_code_false(_fitted, tmp_path):
    from transformers import AutoModel, AutoTokenizer

    path = save_pretrained(_fitted, tmp_path / "remote")
    with mock.patch.object(AutoModel, "from_pretrained", wraps=AutoModel.from_pretrained) as m, \
            mock.patch.object(AutoTokenizer, "from_pretrained",
                              wraps=AutoTokenizer.from_pretrained) as t:
        load_pretrained(path)
    for call in (*m.call_args_list, *t.call_args_list):
        assert call.kwargs.get("trust_remote_code") is False


def test_non_jsonable_parameter_is_rejected_before_writing(_fitted, tmp_path):
    est = copy.deepcopy(_fitted)
    est.set_params(random_state=np.random.RandomState(0))
    with pytest.raises(ValueError, match="random_state"):
        save_pretrained(est, tmp_path / "bad")
    assert list(tmp_path.iterdir()) == []


def test_unfitted_estimator_is_rejected(tmp_path):
    with pytest.raises(NotFittedError):
        save_pretrained(DALLMiClassifier(), tmp_path / "unfitted")
    assert issubclass(NotFittedError, ValueError)


# ------------------------------------------------------- continuing training


def test_partial_fit_after_load_starts_a_fresh_optimizer(_fitted, tmp_path):
    loaded = load_pretrained(save_pretrained(_fitted, tmp_path / "pf"))
    assert loaded.net_.optimizer_.state_dict()["state"] == {}
    before = loaded.predict_proba(NEW_TEXTS)
    loaded.partial_fit(TEXTS, Y)
    assert loaded.n_epochs_ == _fitted.n_epochs_ + 1
    assert not np.allclose(loaded.predict_proba(NEW_TEXTS), before)
    assert len(loaded.history_) == len(_fitted.history_) + 1


def test_partial_fit_after_load_with_optimizer_continues_exactly(_fitted, tmp_path):
    original = copy.deepcopy(_fitted)
    loaded = load_pretrained(save_pretrained(original, tmp_path / "opt", include_optimizer=True))
    original.partial_fit(TEXTS, Y)
    loaded.partial_fit(TEXTS, Y)
    assert_array_equal(loaded.predict_proba(NEW_TEXTS), original.predict_proba(NEW_TEXTS))
    _assert_same_heads(_head(loaded), _head(original))


def test_resave_into_its_own_directory(_fitted, tmp_path):
    path = save_pretrained(_fitted, tmp_path / "own")
    loaded = load_pretrained(path)
    loaded.partial_fit(TEXTS, Y)
    assert save_pretrained(loaded, path) == path  # model= points at the replaced directory
    again = load_pretrained(path)
    assert_array_equal(again.predict_proba(NEW_TEXTS), loaded.predict_proba(NEW_TEXTS))
    assert [p.name for p in tmp_path.iterdir()] == ["own"]


# ------------------------------------------- a saved directory as model=


def test_saved_directory_serves_as_model_for_a_new_estimator(_fitted, tmp_path):
    path = save_pretrained(_fitted, tmp_path / "source")
    new = DALLMiClassifier(model=path, max_epochs=0, max_length=16, device="cpu",
                           random_state=1).fit(TEXTS, Y)
    saved = _fitted.net_.module_.encoder.state_dict()
    for key, value in new.net_.module_.encoder.state_dict().items():
        assert torch.equal(value, saved[key]), key


def test_a_save_is_told_from_a_plain_encoder(_fitted, _tiny_dir, tmp_path):
    path = save_pretrained(_fitted, tmp_path / "head")
    assert persistence.is_save(path) and not persistence.is_save(_tiny_dir)
    head = persistence.section(persistence.read_save(path)[2], "module")
    _assert_same_heads({k[len("head."):]: v for k, v in head.items()}, _head(_fitted))


def test_saved_head_is_not_reused_with_another_pooling(_fitted, tmp_path):
    path = save_pretrained(_fitted, tmp_path / "pooling")
    with pytest.warns(UserWarning, match="pooling='mean'.*pooling='cls'.*from scratch"):
        new = DALLMiClassifier(model=path, pooling="cls", max_epochs=0, max_length=16,
                               device="cpu", random_state=1).fit(TEXTS, Y)
    assert not torch.equal(_head(new)["weight"], _head(_fitted)["weight"])


def test_classifier_reuses_the_saved_head_when_labels_match(_fitted, tmp_path):
    path = tmp_path / "hook"
    _fitted.save_pretrained(path)
    new = DALLMiClassifier(model=str(path), max_epochs=0, max_length=16, device="cpu",
                           random_state=1).fit(TEXTS, Y)
    _assert_same_heads(_head(new), _head(_fitted))
    assert_allclose(new.decision_function(NEW_TEXTS) + new.proba_shift_,
                    _fitted.decision_function(NEW_TEXTS) + _fitted.proba_shift_, rtol=1e-6)

    with pytest.warns(UserWarning, match="head starts from scratch"):
        two = DALLMiClassifier(model=str(path), max_epochs=0, max_length=16,
                               device="cpu").fit(TEXTS, Y[:, :2])
    assert two.net_.module_.head.out_features == 2


def test_classifier_methods_round_trip(_fitted, tmp_path):
    _fitted.save_pretrained(tmp_path / "methods")
    loaded = DALLMiClassifier.from_pretrained(tmp_path / "methods")
    assert type(loaded) is DALLMiClassifier
    assert_array_equal(loaded.predict_proba(NEW_TEXTS), _fitted.predict_proba(NEW_TEXTS))


# ------------------------------------------------------------------ atomicity


def _hidden_siblings(parent):
    return [p.name for p in Path(parent).iterdir() if p.name.startswith(".")]


def test_interrupted_save_keeps_the_previous_save(_fitted, tmp_path, monkeypatch):
    path = save_pretrained(_fitted, tmp_path / "model")
    expected = _fitted.predict_proba(NEW_TEXTS)
    changed = copy.deepcopy(_fitted).partial_fit(TEXTS, Y)

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(persistence, "save_file", interrupt)
    with pytest.raises(KeyboardInterrupt):
        save_pretrained(changed, path)
    monkeypatch.undo()

    assert _hidden_siblings(tmp_path) == []
    loaded = load_pretrained(path)
    assert_array_equal(loaded.predict_proba(NEW_TEXTS), expected)
    assert loaded.n_epochs_ == _fitted.n_epochs_


def test_interrupted_first_save_leaves_nothing_that_loads(_fitted, tmp_path, monkeypatch):
    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(persistence, "save_file", interrupt)
    with pytest.raises(KeyboardInterrupt):
        save_pretrained(_fitted, tmp_path / "model")
    monkeypatch.undo()
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match="not a directory"):
        load_pretrained(tmp_path / "model")


def test_killed_save_leaves_a_directory_that_does_not_load(_fitted, tmp_path, monkeypatch):
    # A kill gives no chance to clean up: keep the temporary directory and
    # stop just before dallmi.json, which is the last file written.
    write_text = persistence._write_text

    def killed_at_manifest(path, text):
        if os.path.basename(path).startswith("dallmi.json"):
            raise KeyboardInterrupt
        write_text(path, text)

    monkeypatch.setattr(persistence, "_write_text", killed_at_manifest)
    monkeypatch.setattr(persistence, "_remove_tree", lambda path: None)
    with pytest.raises(KeyboardInterrupt):
        save_pretrained(_fitted, tmp_path / "model")
    monkeypatch.undo()

    leftovers = _hidden_siblings(tmp_path)
    assert len(leftovers) == 1 and leftovers[0].startswith(".model.tmp-")
    leftover = tmp_path / leftovers[0]
    assert (leftover / "model.safetensors").is_file()  # the encoder was written...
    with pytest.raises(ValueError, match="no dallmi.json"):  # ...but it does not load
        load_pretrained(leftover)
    assert not (tmp_path / "model").exists()


def test_failed_rename_rolls_back_to_the_previous_save(_fitted, tmp_path, monkeypatch):
    path = save_pretrained(_fitted, tmp_path / "model")
    expected = _fitted.predict_proba(NEW_TEXTS)
    real_replace = os.replace

    def failing_replace(src, dst):
        if ".tmp-" in os.fspath(src) and os.fspath(dst) == path:
            raise OSError("simulated failure while moving the new save into place")
        return real_replace(src, dst)

    monkeypatch.setattr(persistence.os, "replace", failing_replace)
    with pytest.raises(OSError, match="simulated"):
        save_pretrained(copy.deepcopy(_fitted).partial_fit(TEXTS, Y), path)
    monkeypatch.undo()

    assert _hidden_siblings(tmp_path) == []
    assert_array_equal(load_pretrained(path).predict_proba(NEW_TEXTS), expected)


def test_refuses_to_replace_what_is_not_a_save(_fitted, tmp_path):
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(ValueError, match="not a saved DALLMiClassifier"):
        save_pretrained(_fitted, foreign)
    assert (foreign / "notes.txt").read_text() == "keep me"

    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(ValueError, match="not a directory"):
        save_pretrained(_fitted, a_file)

    empty = tmp_path / "empty"
    empty.mkdir()
    load_pretrained(save_pretrained(_fitted, empty))


# ------------------------------------------------------------ bad directories


def test_load_rejects_what_is_not_a_complete_save(_fitted, _tiny_dir, tmp_path):
    with pytest.raises(ValueError, match="not a directory"):
        load_pretrained(tmp_path / "missing")
    with pytest.raises(ValueError, match="no dallmi.json"):
        load_pretrained(_tiny_dir)  # a plain encoder directory

    path = Path(save_pretrained(_fitted, tmp_path / "saved"))
    manifest = json.loads((path / "dallmi.json").read_text())

    (path / "dallmi.json").write_text(json.dumps({**manifest, "format_version": 999}))
    with pytest.raises(ValueError, match="format version 999"):
        load_pretrained(path)

    (path / "dallmi.json").write_text(json.dumps(manifest)[:-20])
    with pytest.raises(ValueError, match="cannot be read as JSON"):
        load_pretrained(path)

    (path / "dallmi.json").write_text(json.dumps(manifest))
    (path / "dallmi.safetensors").unlink()
    with pytest.raises(ValueError, match="dallmi.safetensors is missing"):
        load_pretrained(path)


def test_load_rejects_tampered_content(_fitted, tmp_path):
    from safetensors.torch import save_file

    path = Path(save_pretrained(_fitted, tmp_path / "saved"))
    manifest = json.loads((path / "dallmi.json").read_text())
    tensors = load_file(str(path / "dallmi.safetensors"))

    save_file({**tensors, "fitted.proba_shift_": torch.zeros(1, dtype=torch.float64)},
              str(path / "dallmi.safetensors"))
    with pytest.raises(ValueError, match="proba_shift_"):
        load_pretrained(path)

    save_file({k: v for k, v in tensors.items() if k != "module.head.bias"},
              str(path / "dallmi.safetensors"))
    with pytest.raises(ValueError, match="corrupted.*head.bias"):
        load_pretrained(path)

    save_file({**tensors, "module.head.weight": torch.zeros(5, 2)},
              str(path / "dallmi.safetensors"))
    with pytest.raises(ValueError, match="corrupted"):
        load_pretrained(path)

    (path / "dallmi.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(ValueError, match="cannot be read"):
        load_pretrained(path)
    save_file(tensors, str(path / "dallmi.safetensors"))

    bad = copy.deepcopy(manifest)
    bad["params"]["threshold"] = "x"
    (path / "dallmi.json").write_text(json.dumps(bad))
    with pytest.raises(ValueError, match="threshold"):
        load_pretrained(path)

    bad = copy.deepcopy(manifest)
    bad["params"]["no_such_param"] = 1
    (path / "dallmi.json").write_text(json.dumps(bad))
    with pytest.raises(ValueError, match="not accepted"):
        load_pretrained(path)


def test_save_of_an_earlier_version_takes_new_parameters_defaults(_fitted, tmp_path):
    path = Path(save_pretrained(_fitted, tmp_path / "saved"))
    manifest = json.loads((path / "dallmi.json").read_text())
    del manifest["params"]["frequency_pooling"]  # added after that version
    (path / "dallmi.json").write_text(json.dumps(manifest))
    loaded = load_pretrained(path)
    assert loaded.frequency_pooling == 0.5
    assert_allclose(loaded.class_prior_, _fitted.class_prior_)
    assert_array_equal(loaded.predict(NEW_TEXTS), _fitted.predict(NEW_TEXTS))


# ----------------------------------------------------------------- GPU -> CPU


def test_saved_cuda_device_loads_on_cpu_without_cuda(_fitted, tmp_path):
    est = copy.deepcopy(_fitted).set_params(device="cuda")
    path = save_pretrained(est, tmp_path / "cuda")
    assert json.loads((Path(path) / "dallmi.json").read_text())["params"]["device"] == "cuda"

    with mock.patch("torch.cuda.is_available", return_value=False):
        with pytest.warns(DeviceWarning, match="CUDA is not available"):
            loaded = load_pretrained(path)
        assert loaded.device_ == "cpu"
        assert loaded.device == "cuda"  # a parameter is never rewritten
        assert loaded.net_.device == "cpu"
        assert {p.device.type for p in loaded.net_.module_.parameters()} == {"cpu"}
        assert_array_equal(loaded.predict_proba(NEW_TEXTS), _fitted.predict_proba(NEW_TEXTS))
        with pytest.warns(DeviceWarning, match="CUDA is not available"):
            loaded.partial_fit(TEXTS, Y)
        assert loaded.device_ == "cpu"


def test_auto_device_and_device_override(_fitted, tmp_path):
    path = save_pretrained(copy.deepcopy(_fitted).set_params(device="auto"), tmp_path / "auto")
    with mock.patch("torch.cuda.is_available", return_value=False):
        with warnings.catch_warnings():
            warnings.simplefilter("error", DeviceWarning)
            loaded = load_pretrained(path)
    assert (loaded.device, loaded.device_) == ("auto", "cpu")
    assert load_pretrained(path, device="cpu").device == "cpu"
    with pytest.raises(ValueError, match="not a torch device"):
        load_pretrained(path, device="gpu-please")


def _dump_as_if_on_cuda(obj):
    """Pickle with every tensor storage tagged as living on ``cuda:0``.

    This is what a pickle written on a GPU machine holds; loading it needs a
    ``map_location`` on a machine without CUDA.
    """
    buffer = io.BytesIO()
    with mock.patch("torch.serialization.location_tag", lambda storage: "cuda:0"):
        joblib.dump(obj, buffer)
    return buffer.getvalue()


def test_fake_cuda_pickle_needs_a_device_map():
    # The harness itself: a CUDA-tagged tensor does not load on a CUDA-less
    # machine without a map, so the GPU -> CPU tests below are meaningful.
    blob = _dump_as_if_on_cuda(torch.arange(3.0))
    with mock.patch("torch.cuda.is_available", return_value=False):
        with pytest.raises(RuntimeError, match="CUDA"):
            joblib.load(io.BytesIO(blob))


def test_joblib_round_trip_of_a_gpu_model_on_a_cpu_machine(_fitted):
    est = copy.deepcopy(_fitted).set_params(device="auto")
    expected = est.predict_proba(NEW_TEXTS)
    # As if trained on a GPU (pinned loaders included); tensors tagged below.
    est.net_.device = "cuda"
    vars(est.net_).update(est._net_params("cuda"))
    assert est.net_.iterator_valid__pin_memory
    blob = _dump_as_if_on_cuda(est)
    with mock.patch("torch.cuda.is_available", return_value=False):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            loaded = joblib.load(io.BytesIO(blob))
        assert any(issubclass(w.category, DeviceWarning) for w in caught)
        assert torch.device(loaded.net_.device) == torch.device("cpu")
        assert loaded.device_ == "cpu"
        assert {p.device.type for p in loaded.net_.module_.parameters()} == {"cpu"}
        assert not loaded.net_.iterator_train__pin_memory
        assert not loaded.net_.iterator_valid__pin_memory
        with warnings.catch_warnings():
            warnings.filterwarnings("error", message=".*pin_memory")
            assert_array_equal(loaded.predict_proba(NEW_TEXTS), expected)
        loaded.partial_fit(TEXTS, Y)


def test_joblib_round_trip_on_cpu(_fitted):
    blob = io.BytesIO()
    joblib.dump(_fitted, blob)
    blob.seek(0)
    loaded = joblib.load(blob)
    assert_array_equal(loaded.predict_proba(NEW_TEXTS), _fitted.predict_proba(NEW_TEXTS))


def test_joblib_pickle_of_an_earlier_version_takes_new_parameters_defaults(_fitted):
    est = copy.deepcopy(_fitted)
    del est.inference  # a parameter added after the version that pickled it
    blob = io.BytesIO()
    joblib.dump(est, blob)
    blob.seek(0)
    loaded = joblib.load(blob)
    assert loaded.inference == "torch"
    assert clone(loaded).get_params() == clone(_fitted).get_params()
    assert_array_equal(loaded.predict_proba(NEW_TEXTS), _fitted.predict_proba(NEW_TEXTS))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_real_cuda_model_loads_on_cpu(_tiny_dir, tmp_path):
    est = _fit(_tiny_dir, device="cuda")
    assert est.net_.module_.head.weight.device.type == "cuda"
    expected = est.predict_proba(NEW_TEXTS)  # bf16 autocast on CUDA
    path = save_pretrained(est, tmp_path / "gpu", include_optimizer=True)
    with mock.patch("torch.cuda.is_available", return_value=False):
        with pytest.warns(DeviceWarning):
            loaded = load_pretrained(path)
        assert loaded.device_ == "cpu"
        assert {p.device.type for p in loaded.net_.module_.parameters()} == {"cpu"}
        assert_allclose(loaded.predict_proba(NEW_TEXTS), expected, atol=2e-2)
        loaded.partial_fit(TEXTS, Y)

        blob = io.BytesIO()
        joblib.dump(est, blob)
        blob.seek(0)
        with pytest.warns(DeviceWarning):
            unpickled = joblib.load(blob)
        assert torch.device(unpickled.net_.device) == torch.device("cpu")
        assert_allclose(unpickled.predict_proba(NEW_TEXTS), expected, atol=2e-2)


def test_joblib_model_whose_device_param_is_cuda_keeps_training_on_cpu(_fitted):
    est = copy.deepcopy(_fitted)
    est.net_.device = "cuda"
    est.device = "cuda"  # the user asked for CUDA explicitly on the GPU machine
    blob = _dump_as_if_on_cuda(est)
    with mock.patch("torch.cuda.is_available", return_value=False):
        with pytest.warns(DeviceWarning):
            loaded = joblib.load(io.BytesIO(blob))
        assert loaded.device == "cuda" and loaded.device_ == "cpu"
        # The one device policy: warn and run on the CPU.
        with pytest.warns(DeviceWarning, match="running on the CPU"):
            loaded.partial_fit(TEXTS, Y)
        assert loaded.n_epochs_ == _fitted.n_epochs_ + 1 and loaded.device_ == "cpu"
