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

and the same for ``predict_proba`` with ``inference="onnx-int8"`` (int8
weights in ONNX Runtime), on the CPU, when onnxruntime, onnx and
onnxscript are installed, and, on the CPU, with ``precision="bf16"``
(bfloat16 autocast; training is timed in both precisions there too).
"""

import copy
import functools
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
from ..onnx_scoring import _import_onnxruntime
from ..text import tokenize


def _ready_estimator(model, batch_size, max_length, device, n_labels, texts, precision="auto"):
    # max_epochs=0 builds the network without training (speed does not
    # depend on the weights); all-positive labels keep every output live.
    clf = DALLMiClassifier(model, batch_size=batch_size, max_length=max_length, max_epochs=0,
                           device=device, precision=precision, random_state=0)
    return clf.fit(texts[:2], np.ones((2, n_labels), dtype=int))


def _timed(step):
    start = time.perf_counter()
    step()
    return time.perf_counter() - start


def train_step_ratio(model=None, batch_size=16, max_length=64, n_pairs=20, n_warmup=3,
                     device="cpu", precision="auto"):
    """DALLMi step time over plain BCE step time, steps interleaved.

    Both kinds of step run in the estimator's ``precision``.

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
    clf = _ready_estimator(model, batch_size, max_length, device, Y.shape[1], texts, precision)
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


def _onnx_available():
    try:
        _import_onnxruntime()
    except ImportError:
        return False
    return True


def inference_throughput(model=None, n_texts=2000, batch_size=64, max_length=128, device="cpu",
                         rounds=3):
    """Texts per second of ``predict_proba``, its int8 ONNX path and the references.

    Every path scores the same texts once per round, the paths in turn, so
    that a change of machine load hits them alike; each path's time is the
    median over the rounds.

    Returns
    -------
    result : dict
        ``{path}_texts_per_second`` for the paths ``predict_proba``,
        ``onnx_int8`` (``predict_proba`` with ``inference="onnx-int8"``;
        None without onnxruntime, onnx and onnxscript, or off the CPU),
        ``bf16`` (``predict_proba`` with ``precision="bf16"``; None off the
        CPU, where ``"auto"`` is bf16 already),
        ``best_loop``, ``padded_loop`` and ``sentence_transformers`` (None
        when not installed); the ratios
        ``speedup_vs_{reference}`` of ``predict_proba`` and
        ``onnx_int8_speedup_vs_{reference}`` of the int8 path,
        ``{path}_speedup_vs_predict_proba`` of the int8 and bf16 paths;
        ``onnx_int8_build_seconds`` (export, quantisation and session).
        The int8 path's effect on ranking is measured by the adaptation
        benchmark's ``dallmi_onnx_int8`` row, on trained models.
    """
    if rounds < 1:
        raise ValueError(f"rounds={rounds}: at least one round is needed.")
    data = load_disaster_messages()
    texts = data.texts[:n_texts].tolist()
    # predict_proba's inference batch is twice the training batch size.
    clf = _ready_estimator(model, batch_size // 2, max_length, device, data.Y.shape[1], texts)
    module, tokenizer, dev = clf.net_.plain_module, clf.tokenizer_, clf.net_.device
    paths = {"predict_proba": lambda: clf.predict_proba(texts)}
    result = {"onnx_int8_build_seconds": None}
    # The int8 path scores on the CPU: timed against CPU references only.
    if torch.device(dev).type == "cpu" and _onnx_available():
        fast = copy.deepcopy(clf).set_params(inference="onnx-int8")
        result["onnx_int8_build_seconds"] = _timed(lambda: fast.predict_proba(texts[:2]))
        paths["onnx_int8"] = lambda: fast.predict_proba(texts)
    if torch.device(dev).type == "cpu":
        bf16 = copy.deepcopy(clf).set_params(precision="bf16")
        paths["bf16"] = lambda: bf16.predict_proba(texts)
    # The network's probabilities (predict_proba shifts each label to its prior).
    ours = expit(clf.decision_function(texts) + clf.proba_shift_)
    for name, sort in (("best_loop", True), ("padded_loop", False)):
        paths[name] = functools.partial(_loop, module, tokenizer, texts, batch_size, max_length,
                                        dev, sort)
        if not np.allclose(paths[name](), ours, atol=1e-4):
            raise RuntimeError(f"predict_proba and the {name} disagree.")
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        pass
    else:
        encoder = SentenceTransformer(default_model_path() if model is None else str(model),
                                      device=str(dev))
        encoder.max_seq_length = max_length
        paths["sentence_transformers"] = lambda: encoder.encode(texts, batch_size=batch_size)
    times = {name: [] for name in paths}
    for _ in range(rounds):
        for name, path in paths.items():
            times[name].append(_timed(path))
    seconds = {name: statistics.median(t) for name, t in times.items()}

    def ratio(reference, path):
        ok = reference in seconds and path in seconds
        return seconds[reference] / seconds[path] if ok else None

    for name in _PATHS:
        result[f"{name}_texts_per_second"] = (len(texts) / seconds[name]
                                              if name in seconds else None)
    for path, prefix in (("predict_proba", ""), ("onnx_int8", "onnx_int8_")):
        for reference in _REFERENCES:
            result[f"{prefix}speedup_vs_{reference}"] = ratio(reference, path)
    for path in ("onnx_int8", "bf16"):
        result[f"{path}_speedup_vs_predict_proba"] = ratio("predict_proba", path)
    result.update(inference_texts=len(texts), inference_batch_size=batch_size,
                  inference_max_length=max_length, inference_rounds=rounds)
    return result


_REFERENCES = ("best_loop", "padded_loop", "sentence_transformers")
_PATHS = ("predict_proba", "onnx_int8", "bf16") + _REFERENCES


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
    result["bf16_train_texts_per_second"] = result["bf16_train_speedup"] = None
    if torch.device(device).type == "cpu":
        bf16 = train_step_ratio(model, n_pairs=n_pairs, device=device, precision="bf16")
        result["bf16_train_texts_per_second"] = bf16["train_texts_per_second"]
        result["bf16_train_speedup"] = result["dallmi_step_seconds"] / bf16["dallmi_step_seconds"]
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
    if result["bf16_train_texts_per_second"] is not None:
        print(f"training with precision='bf16': {result['bf16_train_texts_per_second']:.1f} "
              f"texts/s ({result['bf16_train_speedup']:.2f}x)")
    print(f"inference ({result['inference_texts']} texts, batch {result['inference_batch_size']}, "
          f"max_length {result['inference_max_length']}, median of "
          f"{result['inference_rounds']} rounds):")
    print(f"  {'path':24}{'texts/s':>9}{'vs best loop':>14}{'vs padded loop':>16}")
    for name, prefix in (("predict_proba", ""), ("onnx_int8", "onnx_int8_"), ("bf16", None),
                         ("best_loop", None), ("padded_loop", None),
                         ("sentence_transformers", None)):
        rate = result[f"{name}_texts_per_second"]
        line = f"  {name:24}" + ("not installed" if rate is None else f"{rate:9.0f}")
        if rate is not None and prefix is not None:
            line += (f"{result[f'{prefix}speedup_vs_best_loop']:13.2f}x"
                     f"{result[f'{prefix}speedup_vs_padded_loop']:15.2f}x")
        print(line)
    if result["onnx_int8_build_seconds"] is not None:
        print(f"  onnx_int8: predict_proba with inference='onnx-int8', built in "
              f"{result['onnx_int8_build_seconds']:.1f} s")
    if result["bf16_texts_per_second"] is not None:
        print(f"  bf16: predict_proba with precision='bf16', "
              f"{result['bf16_speedup_vs_predict_proba']:.2f}x predict_proba")
    return result
