"""An error or an interrupt during training loses nothing.

``fit`` / ``partial_fit`` train a deep copy of the fitted network and assign
the fitted attributes only at the end, so:

- a failed ``partial_fit`` or ``warm_start`` ``fit`` leaves the previous
  fitted state exactly as it was (weights, optimizer moments, history,
  label modes, random generator, probabilities, ``n_epochs_``);
- a failed first ``fit`` leaves the estimator clearly unfitted;
- a ``KeyboardInterrupt`` propagates to the caller (skorch's own
  ``partial_fit`` would swallow it);
- retrying after the failure gives what a run without the failure gives.

Failures are injected by monkeypatching ``DALLMiNet.train_step_single`` to
raise on its second call (mid-epoch), or ``DALLMiClassifier._decision_rule``
(after training, just before the fitted attributes are assigned).
"""

import copy

import numpy as np
import pytest
import torch
from sklearn.exceptions import NotFittedError

from sklearn_dallmi import DALLMiClassifier
from sklearn_dallmi.net import DALLMiNet
from sklearn_dallmi.sampling import LabelBalancedSampler

WORDS = "water fire road food help the a of in is on now please all".split()


def _texts(n, seed):
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, size=rng.integers(3, 8))) for _ in range(n)]


TEXTS = _texts(12, 0)
NEW = _texts(5, 1)
# Source-like labels: fully labelled (supervised).
Y_SOURCE = np.array([[1, 0], [0, 1], [0, 0], [1, 1]] * 3)
# Target-like labels: partial (PU on both labels).
Y_TARGET = np.array([[1, -1], [-1, 1], [-1, -1], [-1, -1]] * 3)
PARAMS = dict(max_epochs=1, batch_size=4, max_length=16, random_state=0, device="cpu")


class Boom(Exception):
    """The injected failure."""


@pytest.fixture(scope="module")
def _nothing_lost_model(tiny_model_dir):
    """The tiny random BERT of ``conftest.py``."""
    return tiny_model_dir


@pytest.fixture(scope="module")
def _source_fitted(_nothing_lost_model):
    return DALLMiClassifier(model=_nothing_lost_model, **PARAMS).fit(TEXTS, Y_SOURCE)


class _Injector:
    """Monkeypatches one hook to raise ``exc`` on its ``on_call``-th call."""

    def __init__(self, monkeypatch, where, exc, on_call=2):
        self.calls = 0
        self.exc = exc
        if where == "train_step":
            original = DALLMiNet.train_step_single

            def hook(net, *args, **kwargs):
                self.calls += 1
                if self.calls == on_call:
                    raise self.exc("injected")
                return original(net, *args, **kwargs)

            monkeypatch.setattr(DALLMiNet, "train_step_single", hook)
        elif where == "proba_shift":
            def hook(clf, *args, **kwargs):
                self.calls += 1
                raise self.exc("injected")

            monkeypatch.setattr(DALLMiClassifier, "_decision_rule", hook)
        else:  # pragma: no cover
            raise ValueError(where)
        self.where = where


def _snapshot(clf):
    """Everything fitted, copied, so that later in-place changes show."""
    net = clf.net_
    return {
        "attrs": {k: copy.deepcopy(v) for k, v in vars(clf).items()
                  if k.endswith("_") and k != "net_" and k != "tokenizer_"},
        "net": net,
        "tokenizer": clf.tokenizer_,
        "module": {k: v.detach().clone() for k, v in net.module_.state_dict().items()},
        "optimizer": copy.deepcopy(net.optimizer_.state_dict()),
        "criterion_pu": net.criterion_.pu_labels.clone(),
        "history": copy.deepcopy(list(net.history)),
        "rng": copy.deepcopy(net.iterator_train__collate_fn.rng.bit_generator.state),
        "net_params": {k: copy.deepcopy(getattr(net, k)) for k in
                       ("lr", "batch_size", "max_epochs", "iterator_train__random_state",
                        "iterator_train__positive_fraction", "criterion__mixup_weight")},
        "callbacks": [cb for _, cb in net.callbacks_],
        "callback_state": _callback_state(net),
        "proba": clf.predict_proba(NEW),
    }


def _callback_state(net):
    """The plain-valued attributes of every skorch callback of the net."""
    return {
        (name, key): value
        for name, cb in net.callbacks_
        for key, value in vars(cb).items()
        if isinstance(value, (bool, int, float, str, type(None)))
    }


def _assert_same_as(clf, snap):
    net = clf.net_
    assert net is snap["net"]
    assert clf.tokenizer_ is snap["tokenizer"]
    now = {k: v for k, v in vars(clf).items()
           if k.endswith("_") and k != "net_" and k != "tokenizer_"}
    assert now.keys() == snap["attrs"].keys()
    for k, v in snap["attrs"].items():
        if isinstance(v, np.ndarray):
            np.testing.assert_array_equal(now[k], v, err_msg=k)
        elif isinstance(v, list):
            assert len(now[k]) == len(v)
            for a, b in zip(now[k], v):
                np.testing.assert_array_equal(a, b, err_msg=k)
        else:
            assert now[k] == v, k
    state = net.module_.state_dict()
    assert state.keys() == snap["module"].keys()
    for k, v in snap["module"].items():
        assert torch.equal(state[k], v), k
    opt = net.optimizer_.state_dict()
    assert opt["param_groups"] == snap["optimizer"]["param_groups"]
    assert opt["state"].keys() == snap["optimizer"]["state"].keys()
    for i, entry in snap["optimizer"]["state"].items():
        for key, value in entry.items():
            if torch.is_tensor(value):
                assert torch.equal(opt["state"][i][key], value), (i, key)
            else:
                assert opt["state"][i][key] == value, (i, key)
    assert torch.equal(net.criterion_.pu_labels, snap["criterion_pu"])
    assert list(net.history) == snap["history"]
    assert net.iterator_train__collate_fn.rng.bit_generator.state == snap["rng"]
    for k, v in snap["net_params"].items():
        assert getattr(net, k) == v, k
    assert [cb for _, cb in net.callbacks_] == snap["callbacks"]
    assert _callback_state(net) == snap["callback_state"]
    np.testing.assert_array_equal(clf.predict_proba(NEW), snap["proba"])


CONTINUE_WAYS = ["partial_fit", "warm_start_fit"]
FAILURES = [("train_step", Boom), ("train_step", KeyboardInterrupt),
            ("proba_shift", Boom), ("proba_shift", KeyboardInterrupt)]


def _continue(clf, way, y=Y_TARGET):
    if way == "partial_fit":
        return clf.partial_fit(TEXTS, y)
    return clf.set_params(warm_start=True, max_epochs=2).fit(TEXTS, y)


@pytest.mark.parametrize("way", CONTINUE_WAYS)
@pytest.mark.parametrize("where,exc", FAILURES, ids=lambda v: getattr(v, "__name__", v))
def test_failed_continuation_keeps_the_fitted_state(_source_fitted, way, where, exc,
                                                    monkeypatch):
    clf = copy.deepcopy(_source_fitted)
    # A different lr and label modes in the failing call, so that anything
    # applied to the fitted net in place would show.
    clf.set_params(lr=1e-2)
    twin = copy.deepcopy(clf)
    snap = _snapshot(clf)
    torch_rng = torch.get_rng_state()
    injector = _Injector(monkeypatch, where, exc)

    with pytest.raises(exc, match="injected"):
        _continue(clf, way)

    assert injector.calls == (2 if where == "train_step" else 1)
    assert torch.equal(torch.get_rng_state(), torch_rng)
    assert clf.n_epochs_ == 1
    _assert_same_as(clf, snap)

    # Retrying without the failure gives what a run that never failed gives.
    monkeypatch.undo()
    _continue(clf, way)
    _continue(twin, way)
    assert clf.n_epochs_ == twin.n_epochs_ > 1
    np.testing.assert_array_equal(clf.predict_proba(NEW), twin.predict_proba(NEW))
    assert not np.array_equal(clf.predict_proba(NEW), snap["proba"])  # it did train


@pytest.mark.parametrize("entry", ["fit", "partial_fit"])
@pytest.mark.parametrize("where,exc", FAILURES, ids=lambda v: getattr(v, "__name__", v))
@pytest.mark.parametrize("verbose", [0, 2])
def test_failed_first_fit_leaves_the_estimator_unfitted(_nothing_lost_model, entry, where,
                                                        exc, verbose, monkeypatch, capsys):
    clf = DALLMiClassifier(model=_nothing_lost_model, **{**PARAMS, "verbose": verbose})
    params_before = clf.get_params()
    torch_rng = torch.get_rng_state()
    injector = _Injector(monkeypatch, where, exc)

    with pytest.raises(exc, match="injected"):
        getattr(clf, entry)(TEXTS, Y_TARGET)

    assert injector.calls >= 1
    assert torch.equal(torch.get_rng_state(), torch_rng)
    assert not hasattr(clf, "net_")
    fitted = [k for k in vars(clf) if k.endswith("_") and not k.startswith("_")]
    assert fitted == [], fitted
    assert not hasattr(clf, "_binary")
    assert clf.get_params() == params_before
    with pytest.raises(NotFittedError):
        clf.predict_proba(NEW)
    with pytest.raises(NotFittedError):
        clf.predict(NEW)
    with pytest.raises(NotFittedError):
        clf.history_

    # A retry learns exactly what a fresh estimator learns.
    monkeypatch.undo()
    getattr(clf, entry)(TEXTS, Y_TARGET)
    fresh = DALLMiClassifier(model=_nothing_lost_model, **{**PARAMS, "verbose": verbose})
    getattr(fresh, entry)(TEXTS, Y_TARGET)
    capsys.readouterr()
    np.testing.assert_array_equal(clf.predict_proba(NEW), fresh.predict_proba(NEW))
    assert clf.n_epochs_ == fresh.n_epochs_ == 1


def test_keyboard_interrupt_is_not_swallowed_mid_epoch(_source_fitted, monkeypatch):
    """skorch's NeuralNet.partial_fit catches KeyboardInterrupt; we must not."""
    clf = copy.deepcopy(_source_fitted)
    injector = _Injector(monkeypatch, "train_step", KeyboardInterrupt, on_call=1)
    reached_end = []
    monkeypatch.setattr(DALLMiNet, "on_train_end", lambda net, *a, **k: reached_end.append(1),
                        raising=False)
    with pytest.raises(KeyboardInterrupt):
        clf.partial_fit(TEXTS, Y_TARGET)
    assert injector.calls == 1
    assert reached_end == []
    assert clf.n_epochs_ == 1


def test_failure_in_the_second_epoch_of_warm_start_keeps_everything(_source_fitted,
                                                                      monkeypatch):
    """The first epoch of the failing call completed: still nothing is kept."""
    clf = copy.deepcopy(_source_fitted)
    snap = _snapshot(clf)
    n_batches = len(LabelBalancedSampler(Y_TARGET == 1, PARAMS["batch_size"], 0.25))
    assert n_batches >= 2
    injector = _Injector(monkeypatch, "train_step", Boom, on_call=n_batches + 1)
    with pytest.raises(Boom):
        clf.set_params(warm_start=True, max_epochs=3).fit(TEXTS, Y_TARGET)
    assert injector.calls == n_batches + 1
    _assert_same_as(clf, snap)

