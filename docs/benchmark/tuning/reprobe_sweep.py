"""Anchored re-probe at the target stage, by its C (tuning pairs, validation split).

The source model is the linear probe (C=0.1) on the embedded MiniLM's
normalised mean-pooled vectors of 1,200 source texts; the target stage is a
continued fit with ``max_epochs=0``: only the PU-aware probe of the labels
turning PU, pulled toward the source head, with the C given. Scores on 500
texts of the target's official validation split, 10% and 50% kept, seed 0::

    OMP_NUM_THREADS=1 python docs/benchmark/tuning/reprobe_sweep.py

Run on 2026-12-01 before the probe's intercept correction (commit
``376b7f1``): average precision does not depend on it, the F1 columns do.
"""
import sys, copy, numpy as np, warnings
warnings.simplefilter("ignore")
from sklearn.metrics import f1_score
from sklearn_dallmi import DALLMiClassifier
from sklearn_dallmi.benchmark.adaptation import Config, split_pair
from sklearn_dallmi.datasets import load_disaster_messages, hide_positives
from sklearn_dallmi.metrics import macro_average_precision
data = load_disaster_messages(); cfg = Config.tuning()
for keep in (0.1, 0.5):
  for source, target in cfg.pairs:
    src, tgt, val = split_pair(data, source, target, cfg, 0)
    clf = DALLMiClassifier(max_length=64, probe_C=0.1, max_epochs=0, random_state=0).fit(data.texts[src].tolist(), data.Y[src])
    X, Ytrue = data.texts[tgt].tolist(), data.Y[tgt]
    Y = hide_positives(Ytrue, keep, random_state=0)
    Xv, Yv = data.texts[val].tolist(), data.Y[val]
    lab = Yv.any(0)
    def score(m):
        pr, pd = m.predict_proba(Xv)[:, lab], m.predict(Xv)[:, lab]
        return f"AP {macro_average_precision(Yv[:, lab], pr):.3f} F1 {f1_score(Yv[:, lab], pd, average='macro', zero_division=0):.3f}/{f1_score(Yv[:, lab], pd, average='micro', zero_division=0):.3f}"
    for C in (0.03, 0.1, 0.3, 1.0, 3.0):
        a = copy.deepcopy(clf).set_params(warm_start=True, max_epochs=0, random_state=1000, probe_C=C).fit(X, Y)
        print(f"keep {keep} {source}->{target} reprobe C={C}: {score(a)}", flush=True)
