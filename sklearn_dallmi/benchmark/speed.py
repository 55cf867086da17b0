"""The speed protocol (``REFERENCE.md`` section 6).

- ``train_step_ratio``: median time of one DALLMi training step (main and
  mixed forward, backward, optimiser step) over the median time of one plain
  BCE step of the same module, on the same batch and device.
- ``inference_speedup``: texts per second of ``predict_proba`` over those of
  a straightforward loop with the same encoder (every batch padded to
  ``max_length``, texts in input order).
- ``train_texts_per_second``: training throughput, the batch size over the
  median DALLMi step time (batches of ``max_length`` tokens, so a bound from
  below for shorter texts).
- ``inference_texts_per_second``: texts per second of ``predict_proba``.
"""

import json
import os
import platform
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F

from ..classifier import DALLMiClassifier
from ..datasets import hide_positives, load_disaster_messages
from ..text import collate, tokenize


def _median_seconds(step, n_steps, n_warmup):
    for _ in range(n_warmup):
        step()
    times = []
    for _ in range(n_steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _ready_estimator(model, batch_size, max_length, device, n_labels, texts):
    # max_epochs=0 builds the network without training (speed does not
    # depend on the weights); all-positive labels keep every output live.
    clf = DALLMiClassifier(
        model, batch_size=batch_size, max_length=max_length, max_epochs=0,
        device=device, random_state=0,
    )
    return clf.fit(texts[:2], np.ones((2, n_labels), dtype=int))


def train_step_ratio(model=None, batch_size=16, max_length=64, n_steps=20, n_warmup=3,
                     device="cpu"):
    """Median DALLMi step time over median plain BCE step time.

    Returns
    -------
    result : dict
        ``train_step_ratio``, ``dallmi_step_seconds``, ``bce_step_seconds``,
        ``train_texts_per_second`` (batch size over the DALLMi step time).
    """
    data = load_disaster_messages()
    texts = data.texts[data.genre == "news"]
    Y = data.Y[data.genre == "news"]
    clf = _ready_estimator(model, batch_size, max_length, device, Y.shape[1], texts)
    ids = tokenize(clf.tokenizer_, texts[:2000], max_length)
    full = [i for i, seq in enumerate(ids) if len(seq) == max_length]
    Y_partial = hide_positives(Y[:2000], 0.1, random_state=0)
    rows = [i for i in full if (Y_partial[i] == 1).any()][:batch_size // 4]
    rows += [i for i in full if i not in rows][:batch_size - len(rows)]
    batch = (collate(ids, rows, clf.net_.pad_id), torch.from_numpy(Y_partial[rows].astype(np.float32)))
    net = clf.net_
    net.criterion_.set_pu_labels(np.ones(Y.shape[1], dtype=bool))
    net.history.new_epoch()

    def dallmi_step():
        net.history.new_batch()
        net.train_step(batch)

    dallmi = _median_seconds(dallmi_step, n_steps, n_warmup)

    module, optimizer = net.module_, net.optimizer_
    x = {k: v.to(net.device) for k, v in batch[0].items()}
    target = torch.from_numpy(Y[rows].astype(np.float32)).to(net.device)

    def bce_step():
        module.train()
        optimizer.zero_grad()
        with net.autocast():
            logits = module(**x)
        F.binary_cross_entropy_with_logits(logits.float(), target).backward()
        optimizer.step()

    bce = _median_seconds(bce_step, n_steps, n_warmup)
    return {
        "train_step_ratio": dallmi / bce,
        "dallmi_step_seconds": dallmi,
        "bce_step_seconds": bce,
        "train_texts_per_second": batch_size / dallmi,
        "train_batch_size": batch_size,
        "train_max_length": max_length,
    }


def inference_speedup(model=None, n_texts=2000, batch_size=32, max_length=128, device="cpu"):
    """Texts/s of ``predict_proba`` over a straightforward loop.

    Returns
    -------
    result : dict
        ``inference_speedup``, ``predict_proba_texts_per_second`` (also as
        ``inference_texts_per_second``), ``naive_texts_per_second``.
    """
    data = load_disaster_messages()
    texts = data.texts[:n_texts].tolist()
    clf = _ready_estimator(model, batch_size, max_length, device, data.Y.shape[1], texts)
    start = time.perf_counter()
    ours = clf.predict_proba(texts)
    ours_s = time.perf_counter() - start

    module, tokenizer, dev = clf.net_.module_, clf.tokenizer_, clf.net_.device
    module.eval()
    infer_batch = 2 * batch_size
    start = time.perf_counter()
    naive = []
    with torch.inference_mode(), clf.net_.autocast():
        for i in range(0, len(texts), infer_batch):
            enc = tokenizer(texts[i:i + infer_batch], padding="max_length", truncation=True,
                            max_length=max_length, return_tensors="pt")
            logits = module(input_ids=enc["input_ids"].to(dev),
                            attention_mask=enc["attention_mask"].to(dev))
            naive.append(torch.sigmoid(logits.float()).cpu().numpy())
    naive_s = time.perf_counter() - start
    naive = np.concatenate(naive)
    if not np.allclose(naive, ours, atol=1e-4):
        raise RuntimeError("predict_proba and the reference loop disagree.")
    return {
        "inference_speedup": naive_s / ours_s,
        "predict_proba_texts_per_second": len(texts) / ours_s,
        "inference_texts_per_second": len(texts) / ours_s,
        "naive_texts_per_second": len(texts) / naive_s,
    }


def run_speed(output, model=None, device="cpu", n_steps=20, n_texts=2000):
    """Run both measurements, print them and write ``output/speed.json``.

    Parameters
    ----------
    output : str
        Folder of ``speed.json``.
    model : None or str, default=None
        The encoder, as ``DALLMiClassifier(model=...)``.
    device : str, default="cpu"
        A torch device, or ``"auto"`` (CUDA when available; prints
        ``no GPU: running on CPU`` otherwise).
    n_steps : int, default=20
        Timed training steps of each kind.
    n_texts : int, default=2000
        Texts of the inference measurement.

    Returns
    -------
    result : dict
        Everything written to ``speed.json``.
    """
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
        if device == "cpu":
            print("no GPU: running on CPU")
    result = {"device": device, "torch_threads": torch.get_num_threads(),
              "machine": platform.platform(), "cpu_count": os.cpu_count()}
    result.update(train_step_ratio(model, n_steps=n_steps, device=device))
    result.update(inference_speedup(model, n_texts=n_texts, device=device))
    os.makedirs(output, exist_ok=True)
    with open(os.path.join(output, "speed.json"), "w") as f:
        json.dump(result, f, indent=2)
    print(f"device: {device}")
    print(f"train_step_ratio: {result['train_step_ratio']:.3f} "
          f"(DALLMi step {result['dallmi_step_seconds']:.3f} s, "
          f"BCE step {result['bce_step_seconds']:.3f} s)")
    print(f"training: {result['train_texts_per_second']:.1f} texts/s (DALLMi steps, "
          f"batch {result['train_batch_size']} x {result['train_max_length']} tokens)")
    print(f"inference: {result['inference_texts_per_second']:.0f} texts/s (predict_proba)")
    print(f"inference_speedup: {result['inference_speedup']:.2f} "
          f"(predict_proba {result['predict_proba_texts_per_second']:.0f} texts/s, "
          f"reference loop {result['naive_texts_per_second']:.0f} texts/s)")
    return result
