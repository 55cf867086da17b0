"""One ``fit`` on source and target rows together, on the tuning pairs.

The layout of ``docs/labels.rst`` ("One fit on both domains"): the source
texts fully labelled (0/1) stacked on the target texts with a share of the
positives kept (1/-1), fitted by a fresh ``DALLMiClassifier`` (the
benchmark's encoder settings: 6 layers with the lower 3 frozen,
``max_length=64``, bfloat16, one epoch) and scored on the target's
validation split. It measures which entries the variational loss takes as
observed positives (:func:`sklearn_dallmi.loss.observed_positives`); the
benchmark's two-stage flow (source model, then ``warm_start`` on the
target) is the reference::

    python docs/benchmark/tuning/one_fit_both.py
"""

import time
import warnings

import numpy as np
import torch
from scipy.special import expit

from sklearn_dallmi import DALLMiClassifier
from sklearn_dallmi.benchmark.adaptation import Config, evaluate, split_pair, truncated_encoder
from sklearn_dallmi.datasets import hide_positives, load_disaster_messages

warnings.simplefilter("ignore")
CELLS = [(("news", "direct"), 0.5), (("direct", "news"), 0.5), (("news", "direct"), 0.1)]


def main():
    torch.set_num_threads(1)
    config = Config.tuning()
    data = load_disaster_messages()
    encoder = truncated_encoder(config.layers, "benchmark_results/cache")
    for (source, target), keep in CELLS:
        src, tgt, val = split_pair(data, source, target, config, seed=0)
        X = data.texts[src].tolist() + data.texts[tgt].tolist()
        Y = np.vstack([data.Y[src], hide_positives(data.Y[tgt], keep, random_state=0)])
        start = time.perf_counter()
        clf = DALLMiClassifier(model=encoder, max_length=config.max_length,
                               frozen_layers=config.frozen_layers, precision=config.precision,
                               random_state=0).fit(X, Y)
        seconds = time.perf_counter() - start
        proba = expit(clf.decision_function(data.texts[val].tolist()))
        m = evaluate(data.Y[val], proba, (proba >= clf.threshold).astype(int))
        print(f"{source} -> {target}, {keep:.0%} kept: macro AP {m['macro_ap']:.3f}, "
              f"macro-F1 {m['macro_f1']:.3f}, micro-F1 {m['micro_f1']:.3f} ({seconds:.0f} s)",
              flush=True)


if __name__ == "__main__":
    main()
