"""The speed protocol (``REFERENCE.md`` section 6).

Training: the ratio of one DALLMi training step (the main and the mixed
forward in one module call, backward, optimiser step, through skorch's
``train_step``) to one plain BCE step of the same module on the same batch
and device. The two kinds of step alternate (A B A B ...), so that a change
of machine load hits both alike; the result is the median of the per-pair
ratios, with their spread.

Inference: ``predict_proba``'s texts per second against references with the
same encoder, texts, batch size and threads, each timed in the same run:

- ``best_loop``: the loop a careful user writes (texts sorted by length,
  ``padding=True`` per batch, ``torch.inference_mode``);
- ``padded_loop``: batches in input order, each padded to ``max_length``;
- ``sentence_transformers``: ``SentenceTransformer.encode`` of the
  embedded encoder (embeddings only, no head), when installed.
"""

import json
import os
import platform
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F
from scipy.special import expit

from ..classifier import DALLMiClassifier
from ..datasets import hide_positives, load_disaster_messages
from ..models import default_model_path
from ..net import MixUpCollator, resolve_device
from ..text import tokenize


def _ready_estimator(model, batch_size, max_length, device, n_labels, texts):
    # max_epochs=0 builds the network without training (speed does not
    # depend on the weights); all-positive labels keep every output live.
    clf = DALLMiClassifier(model, batch_size=batch_size, max_length=max_length, max_epochs=0,
                           device=device, random_state=0)
    return clf.fit(texts[:2], np.ones((2, n_labels), dtype=int))


def _timed(step):
    start = time.perf_counter()
    step()
    return time.perf_counter() - start


def train_step_ratio(model=None, batch_size=16, max_length=64, n_pairs=20, n_warmup=3,
                     device="cpu"):
    """DALLMi step time over plain BCE step time, steps interleaved.

    Returns
    -------
    result : dict
        ``train_step_ratio`` (median of the per-pair ratios),
        ``train_step_ratio_min`` / ``_max``, the median step times
        ``dallmi_step_seconds`` and ``bce_step_seconds``, and
        ``train_texts_per_second`` (batch size over the DALLMi step time).
    """
    data = load_disaster_messages()
    texts, Y = data.texts[data.genre == "news"], data.Y[data.genre == "news"]
    clf = _ready_estimator(model, batch_size, max_length, device, Y.shape[1], texts)
    ids = tokenize(clf.tokenizer_, texts[:2000], max_length)
    full = [i for i, seq in enumerate(ids) if len(seq) == max_length]
    Y_partial = hide_positives(Y[:2000], 0.1, random_state=0)
    rows = [i for i in full if (Y_partial[i] == 1).any()][:batch_size // 4]
    rows += [i for i in full if i not in rows][:batch_size - len(rows)]
    net = clf.net_
    pu = np.ones(Y.shape[1], dtype=bool)
    net.criterion_.set_pu_labels(pu)
    collate = MixUpCollator(clf.tokenizer_.pad_token_id, pu, clf.mixup_alpha, random_state=0)
    batch = collate([(ids[i], Y_partial[i].astype(np.float32)) for i in rows])
    assert "partner" in batch[0], "the timed DALLMi step must include the mixed forward"
    net.history.new_epoch()

    def dallmi_step():
        net.history.new_batch()
        net.train_step(batch)

    module, optimizer = net.module_, net.optimizer_
    x = {k: batch[0][k].to(net.device) for k in ("input_ids", "attention_mask")}
    target = torch.from_numpy(Y[rows].astype(np.float32)).to(net.device)

    def bce_step():
        module.train()
        optimizer.zero_grad()
        with net.autocast():
            logits = module(**x)
        F.binary_cross_entropy_with_logits(logits.float(), target).backward()
        optimizer.step()

    for _ in range(n_warmup):
        dallmi_step()
        bce_step()
    pairs = [(_timed(dallmi_step), _timed(bce_step)) for _ in range(n_pairs)]
    ratios = [a / b for a, b in pairs]
    dallmi = statistics.median(a for a, _ in pairs)
    return {
        "train_step_ratio": statistics.median(ratios),
        "train_step_ratio_min": min(ratios),
        "train_step_ratio_max": max(ratios),
        "dallmi_step_seconds": dallmi,
        "bce_step_seconds": statistics.median(b for _, b in pairs),
        "train_texts_per_second": batch_size / dallmi,
        "train_batch_size": batch_size,
        "train_max_length": max_length,
    }


def _loop(module, tokenizer, texts, batch_size, max_length, device, sort):
    """Probabilities from a plain Hugging Face loop over ``module``."""
    order = np.argsort([-len(t) for t in texts], kind="stable") if sort else np.arange(len(texts))
    out = np.empty((len(texts), module.head.out_features), dtype=np.float32)
    module.eval()
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            rows = order[start:start + batch_size]
            enc = tokenizer([texts[i] for i in rows], truncation=True, max_length=max_length,
                            padding=True if sort else "max_length", return_tensors="pt")
            logits = module(input_ids=enc["input_ids"].to(device),
                            attention_mask=enc["attention_mask"].to(device))
            out[rows] = torch.sigmoid(logits.float()).cpu().numpy()
    return out


def inference_throughput(model=None, n_texts=2000, batch_size=64, max_length=128, device="cpu"):
    """Texts per second of ``predict_proba`` and of the references.

    Returns
    -------
    result : dict
        ``predict_proba_texts_per_second``, ``best_loop_texts_per_second``,
        ``padded_loop_texts_per_second``, ``sentence_transformers_texts_per_second``
        (None when not installed), and the ratios ``speedup_vs_best_loop``,
        ``speedup_vs_padded_loop`` and ``speedup_vs_sentence_transformers``.
    """
    data = load_disaster_messages()
    texts = data.texts[:n_texts].tolist()
    # predict_proba's inference batch is twice the training batch size.
    clf = _ready_estimator(model, batch_size // 2, max_length, device, data.Y.shape[1], texts)
    module, tokenizer, dev = clf.net_.plain_module, clf.tokenizer_, clf.net_.device
    seconds = {"predict_proba": _timed(lambda: clf.predict_proba(texts))}
    # The network's probabilities (predict_proba shifts each label to its prior).
    ours = expit(clf.decision_function(texts) + clf.proba_shift_)
    for name, sort in (("best_loop", True), ("padded_loop", False)):
        seconds[name] = _timed(lambda: _loop(module, tokenizer, texts, batch_size, max_length,
                                             dev, sort))
        reference = _loop(module, tokenizer, texts, batch_size, max_length, dev, sort)
        if not np.allclose(reference, ours, atol=1e-4):
            raise RuntimeError(f"predict_proba and the {name} disagree.")
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        seconds["sentence_transformers"] = None
    else:
        encoder = SentenceTransformer(default_model_path() if model is None else str(model),
                                      device=str(dev))
        encoder.max_seq_length = max_length
        seconds["sentence_transformers"] = _timed(
            lambda: encoder.encode(texts, batch_size=batch_size))
    result = {f"{k}_texts_per_second": None if s is None else len(texts) / s
              for k, s in seconds.items()}
    for k, s in seconds.items():
        if k != "predict_proba":
            result[f"speedup_vs_{k}"] = None if s is None else s / seconds["predict_proba"]
    result.update(inference_texts=len(texts), inference_batch_size=batch_size,
                  inference_max_length=max_length)
    return result


def run_speed(output, model=None, device="cpu", n_pairs=20, n_texts=2000):
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
    n_pairs : int, default=20
        Timed pairs of training steps (one DALLMi step, one BCE step).
    n_texts : int, default=2000
        Texts of the inference measurement.

    Returns
    -------
    result : dict
        Everything written to ``speed.json``.
    """
    if device == "auto" and not torch.cuda.is_available():
        print("no GPU: running on CPU")
    device = resolve_device(device)
    result = {"device": device, "torch_threads": torch.get_num_threads(),
              "machine": platform.platform(), "cpu_count": os.cpu_count()}
    result.update(train_step_ratio(model, n_pairs=n_pairs, device=device))
    result.update(inference_throughput(model, n_texts=n_texts, device=device))
    os.makedirs(output, exist_ok=True)
    with open(os.path.join(output, "speed.json"), "w") as f:
        json.dump(result, f, indent=2)
    print(f"device: {device}")
    print(f"train_step_ratio: {result['train_step_ratio']:.3f} (median of {n_pairs} "
          f"interleaved pairs, range {result['train_step_ratio_min']:.2f}-"
          f"{result['train_step_ratio_max']:.2f}; DALLMi step "
          f"{result['dallmi_step_seconds']:.3f} s, BCE step {result['bce_step_seconds']:.3f} s)")
    print(f"training: {result['train_texts_per_second']:.1f} texts/s (DALLMi steps, "
          f"batch {result['train_batch_size']} x {result['train_max_length']} tokens)")
    print(f"inference ({result['inference_texts']} texts, batch {result['inference_batch_size']}, "
          f"max_length {result['inference_max_length']}):")
    for name in ("predict_proba", "best_loop", "padded_loop", "sentence_transformers"):
        rate = result[f"{name}_texts_per_second"]
        ratio = result.get(f"speedup_vs_{name}")
        print(f"  {name:22} " + ("not installed" if rate is None else
              f"{rate:7.0f} texts/s" + ("" if ratio is None else
                                        f"   predict_proba is {ratio:.2f}x")))
    return result
