"""Cross-validated scores behind the target stage's head choice (tuning pairs, validation split).

Runs the benchmark's tuning configuration (``Config.tuning()``: news ->
direct and direct -> news, seed 0, 10/30/50% kept, the target's official
*train* texts, scored on its *validation* split) for ``source_only`` and
``dallmi``, in this process, and records, for every DALLMi cell, the mean
5-fold PU ROC AUC of each candidate head (the anchored re-probe, the
expanded regression and their average) that ``DALLMiClassifier`` compares
when it picks ``stage_head_``. It changes nothing in the package: it wraps
the classifier's ``pu_roc_auc`` to keep each value it returns, in the order
the folds and heads are scored.

The margins printed (best other head minus the re-probe) say how large a
margin in favour of the re-probe could be before it undoes a choice that
won on validation; compare the macro AP with the re-probe-only rows
(``b16``) of ``runs.csv``::

    OMP_NUM_THREADS=1 python docs/benchmark/tuning/head_margin.py --output /tmp/head_margin
"""

import argparse
import csv
import os

import numpy as np
import torch

from sklearn_dallmi import classifier
from sklearn_dallmi.benchmark.adaptation import Config, Runner

# The order in which DALLMiClassifier._choose_head scores the heads in each fold.
HEADS = ("probe", "expanded", "average")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", required=True)
    args = parser.parse_args()
    print(f"torch threads: {torch.get_num_threads()}")
    values, choices = [], []
    score, choose = classifier.pu_roc_auc, classifier.DALLMiClassifier._choose_head

    def recording_score(*a, **k):
        values.append(score(*a, **k))
        return values[-1]

    def recording_choose(*a, **k):
        start = len(values)
        chosen = choose(*a, **k)
        folds = np.array(values[start:], dtype=float).reshape(-1, len(HEADS))
        if len(folds):  # a fresh fit has one candidate and scores none
            choices.append((chosen, np.nanmean(folds, axis=0)))
        return chosen

    classifier.pu_roc_auc = recording_score
    classifier.DALLMiClassifier._choose_head = staticmethod(recording_choose)
    runner = Runner(Config.tuning(), args.output, progress=False,
                    methods=("source_only", "dallmi"), n_jobs=1)
    runner.run()
    with open(os.path.join(args.output, "results.csv")) as f:
        rows = [r for r in csv.DictReader(f) if r["method"] == "dallmi"]
    if len(rows) != len(choices):
        raise SystemExit(f"{len(rows)} DALLMi rows but {len(choices)} head choices: "
                         "run into an empty --output.")
    print(f"{'pair':14} keep  chosen    " + "  ".join(f"{h:>8}" for h in HEADS)
          + "  margin  macro_ap")
    for row, (chosen, means) in zip(rows, choices):
        cells = "  ".join(f"{m:8.5f}" for m in means)
        margin = max(means[1:]) - means[0]
        print(f"{row['pair']:14} {float(row['keep']):.1f}  {chosen:8}  {cells}  "
              f"{margin:+.5f}  {float(row['macro_ap']):.3f}")


if __name__ == "__main__":
    main()
