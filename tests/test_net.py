"""The skorch network: skorch's own paths work, and what a skorch user passes in."""

import numpy as np
import pytest
import torch
from skorch.callbacks import Checkpoint, EarlyStopping

from sklearn_dallmi import DALLMiClassifier
from sklearn_dallmi.metrics import macro_average_precision
from sklearn_dallmi.net import TokenizedDataset, balanced_positives, label_balanced_loader
from sklearn_dallmi.text import tokenize

FAST = dict(max_epochs=1, batch_size=8, max_length=24, lr=1e-3, random_state=0)


@pytest.fixture(scope="module")
def fitted(tiny_model_dir, keyword_task):
    tr = keyword_task.train
    return DALLMiClassifier(model=tiny_model_dir, **FAST).fit(tr.texts[:48], tr.Y_partial[:48])


def test_skorch_forward_predict_and_get_loss_work(fitted, keyword_task):
    te = keyword_task.test
    net = fitted.net_
    ids = tokenize(fitted.tokenizer_, te.texts[:20], fitted.max_length)
    dataset = TokenizedDataset(ids, np.where(te.Y_true[:20] == 1, 1, -1).astype(np.float32))
    # skorch's forward and predict give the logits, in the order of X.
    expected = fitted.decision_function(te.texts[:20]) + fitted.proba_shift_
    np.testing.assert_allclose(net.forward(dataset).numpy(), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(net.predict(dataset), expected, rtol=1e-5, atol=1e-5)
    # get_loss on a validation batch (from skorch's iterator_valid).
    x, y = next(iter(net.get_iterator(dataset, training=False)))
    assert "partner" not in x
    loss = net.get_loss(net.infer(x), y, X=x, training=False)
    assert loss.ndim == 0 and torch.isfinite(loss)


def test_balanced_slots_draw_the_observed_positives_of_pu_labels():
    # Labels 0 and 1 are PU, label 2 supervised. Rows 0 and 1 are labelled
    # (no -1, a 0 on a PU label): their PU positives get no balanced slot.
    # Row 2 has no -1 but no 0 on a PU label either: it counts as marked.
    y = np.array([[1, 0, 1], [0, 1, 0], [1, 1, 0],
                  [1, -1, 1], [-1, 1, 0], [-1, -1, 1]], dtype=np.float32)
    pu = np.array([True, True, False])
    expected = np.array([[0, 0, 1], [0, 0, 0], [1, 1, 0],
                         [1, 0, 1], [0, 1, 0], [0, 0, 1]], dtype=bool)
    np.testing.assert_array_equal(balanced_positives(y, pu), expected)
    np.testing.assert_array_equal(balanced_positives(y), y == 1)
    loader = label_balanced_loader(TokenizedDataset([np.arange(3)] * 6, y), 4, 0.5,
                                   random_state=0, pu_labels=pu)
    np.testing.assert_array_equal(loader.batch_sampler.positives, expected)


def test_validation_fraction_records_validation_loss_and_score(tiny_model_dir, keyword_task):
    tr = keyword_task.train
    clf = DALLMiClassifier(model=tiny_model_dir, validation_fraction=0.25,
                           **{**FAST, "max_epochs": 2})
    clf.fit(tr.texts[:64], tr.Y_partial[:64])
    for row in clf.history_:
        assert np.isfinite(row["valid_loss"]) and 0 <= row["valid_macro_ap"] <= 1
        assert row["valid_batch_count"] == 1  # 16 rows, inference batches of 16
        # 48 training rows: 8 batches of 6 uniform rows (+ 2 balanced).
        assert row["train_batch_count"] == 8
    without = DALLMiClassifier(model=tiny_model_dir, **FAST).fit(tr.texts[:64], tr.Y_partial[:64])
    assert "valid_loss" not in without.history_[-1]
    assert "valid_macro_ap" not in without.history_[-1]


def test_valid_macro_ap_is_the_score_of_the_held_out_rows(tiny_model_dir, keyword_task):
    # With one epoch and no dropout the network at the end of the epoch is
    # the fitted one, so the validation score recorded by the callback equals
    # score() on the held-out rows, with -1 counted as negative.
    tr = keyword_task.train
    texts, Y = tr.texts[:40], tr.Y_partial[:40]
    clf = DALLMiClassifier(model=tiny_model_dir, validation_fraction=0.5, dropout=0.0,
                           **FAST).fit(texts, Y)
    rows = clf._split(len(texts), clf._seed(0))[1]
    held_out = [texts[i] for i in rows]
    logits = clf.decision_function(held_out)
    assert clf.history_[-1, "valid_macro_ap"] == pytest.approx(
        macro_average_precision(Y[rows], logits), abs=1e-6)


def test_early_stopping_callback_stops_and_keeps_the_model(tiny_model_dir, keyword_task):
    tr = keyword_task.train
    # A relative threshold no epoch can reach: stops after patience epochs.
    stop = EarlyStopping(monitor="valid_macro_ap", lower_is_better=False, patience=2,
                         threshold=100.0)
    clf = DALLMiClassifier(model=tiny_model_dir, validation_fraction=0.25, callbacks=[stop],
                           **{**FAST, "max_epochs": 6})
    clf.fit(tr.texts[:48], tr.Y_partial[:48])
    assert clf.n_epochs_ == len(clf.history_) == 3
    assert clf.predict_proba(tr.texts[:4]).shape == (4, 3)


def test_checkpoint_callback_writes_the_best_params(tiny_model_dir, keyword_task, tmp_path):
    tr = keyword_task.train
    checkpoint = Checkpoint(monitor="valid_macro_ap_best", dirname=str(tmp_path),
                            f_optimizer=None, f_criterion=None, f_history="history.json")
    clf = DALLMiClassifier(model=tiny_model_dir, validation_fraction=0.25,
                           callbacks=[checkpoint], **{**FAST, "max_epochs": 2})
    clf.fit(tr.texts[:48], tr.Y_partial[:48])
    assert (tmp_path / "params.pt").is_file() and (tmp_path / "history.json").is_file()
    assert any(row["event_cp"] for row in clf.history_)


def test_linear_schedule_warms_up_then_decays_every_group(tiny_model_dir, keyword_task):
    tr = keyword_task.train
    clf = DALLMiClassifier(model=tiny_model_dir, lr_schedule="linear", warmup_fraction=0.25,
                           head_lr=1e-2, **{**FAST, "max_epochs": 2, "lr": 1e-3})
    clf.fit(tr.texts[:48], tr.Y_partial[:48])
    # event_lr is the first (head) group's rate at each step: 16 steps, 4 up.
    lrs = [b["event_lr"] for epoch in clf.history_ for b in epoch["batches"]]
    assert len(lrs) == 16
    assert lrs[0] == 0 and lrs[4] == pytest.approx(1e-2)
    assert np.all(np.diff(lrs[:5]) > 0) and np.all(np.diff(lrs[4:]) < 0)
    head, encoder = clf.net_.optimizer_.param_groups
    assert head["initial_lr"] == 1e-2 and encoder["initial_lr"] == 1e-3
    assert head["lr"] == encoder["lr"] == 0  # decayed to 0 at the last step
    # A continued fit schedules from the rates set now, not the last ones.
    clf.set_params(head_lr=2e-2).partial_fit(tr.texts[:48], tr.Y_partial[:48])
    lrs = [b["event_lr"] for b in clf.history_[-1]["batches"]]
    assert max(lrs) == pytest.approx(2e-2)


def test_constant_schedule_is_the_plain_rate(fitted):
    lrs = {g["lr"] for g in fitted.net_.optimizer_.param_groups}
    assert lrs == {1e-3}
    assert "event_lr" not in fitted.history_[-1]["batches"][0]


def test_gradient_accumulation_through_an_accelerator(tiny_model_dir, keyword_task):
    accelerate = pytest.importorskip("accelerate")
    tr = keyword_task.train
    accelerator = accelerate.Accelerator(cpu=True, gradient_accumulation_steps=2)
    clf = DALLMiClassifier(model=tiny_model_dir, accelerator=accelerator, **FAST)
    clf.fit(tr.texts[:48], tr.Y_partial[:48])
    n_batches = len(clf.history_[-1]["batches"])
    assert n_batches == 8
    steps = {int(s["step"]) for s in clf.net_.optimizer_.state_dict()["state"].values()}
    assert steps == {n_batches // 2}  # one optimiser step per two batches
    # Unwrapped after training: a plain optimizer, no accelerator kept.
    assert type(clf.net_.optimizer_) is torch.optim.AdamW
    assert clf.net_.accelerator is None
    assert clf.predict_proba(tr.texts[:4]).shape == (4, 3)
