"""How much of DALLMi's macro-F1 gap to the fully labelled target its class priors explain (tuning pairs, validation split).

``predict`` marks, per label, the estimated prior share of the fit's texts
positive (``class_prior_``). The oracle row knows each label's positive
rate; DALLMi estimates it. Per cell, on the same fitted network and with
the same prior-matching shift (only the prior differs), this scores on the
validation texts:

- ``true``: the true positive rate of the 800 target texts;
- ``poolP``: the classifier's own rule with ``frequency_pooling=P``
  (:func:`rule_prior`; ``pool0.5`` is the default, and ``replica_error``
  checks the replica against the fitted ``class_prior_``);
- ``stress_poolP``: the same rule on marks where every other label (by
  frequency) keeps a fifth of its marked positives, so that labels differ
  fivefold in how thoroughly they are marked, which the shared labelling
  frequency assumes away (only the estimate sees the thinned marks, as in
  ``prior_probe.py``'s stress test);

with macro-F1, micro-F1 and the mean prior of the labels with one to three
marked positives, beside ``predict``'s own macro-F1. The oracle's cells
are the benchmark's ``--tune`` rows of ``oracle``. The arrays behind a
cell go to ``OUTPUT/arrays-*.npz`` for other estimators.

It runs the benchmark's tuning configuration (``Config.tuning()``: news ->
direct and direct -> news, the target's official *train* texts, scored on
its *validation* split) and changes nothing in the package::

    OMP_NUM_THREADS=1 python docs/benchmark/tuning/rule_gap.py --seeds 0 1 2 3 4 5 --keeps 0.1 --output /tmp/gap
"""

import os
import sys

import numpy as np
from scipy.special import expit
from tuning_cells import append_row, parser, tuning_cells

from sklearn_dallmi.benchmark.adaptation import evaluate
from sklearn_dallmi.priors import prior_logit_shift, pu_class_prior

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from prior_probe import mixed_frequency  # noqa: E402  (docs/benchmark, the stress test)

POOLINGS = (0.5, 0.75, 1.0)


def rule_prior(clf, logits, before, Y, pooling):
    """The classifier's class priors of a continued fit, its labels ``Y``, pooled ``pooling``."""
    prior = clf.class_prior_.copy()
    cols = clf.pu_labels_ & (Y == 1).any(axis=0)
    prior[cols] = pu_class_prior(logits[:, cols], Y[:, cols], before[:, cols],
                                 quantile=clf.scale_quantile, pooling=pooling)
    return prior


def main():
    args = parser(__doc__.splitlines()[0]).parse_args()
    for runner, cell in tuning_cells(args, "rule_gap"):
        clf = runner._adapt(cell.source_model, cell.X_target, cell.Y_partial, cell.seed)
        # decision_function is the logit minus the fitted shift (-inf for a
        # label with no positive anywhere, which predict leaves at 0).
        scored = clf.n_positives_ > 0
        logits = clf.decision_function(cell.X_target) + clf.proba_shift_
        valid = clf.decision_function(cell.X_valid) + clf.proba_shift_
        true_rate = cell.Y_target.mean(axis=0)
        before = expit(cell.source_model.decision_function(cell.X_target)
                       + cell.source_model.proba_shift_)
        stressed = mixed_frequency(cell.Y_partial, cell.Y_target, cell.seed)
        row = {"pair": cell.pair, "keep": cell.keep, "seed": cell.seed,
               "predict_macro_f1": round(evaluate(cell.Y_valid, valid,
                                                  clf.predict(cell.X_valid))["macro_f1"], 4),
               "replica_error": np.abs(rule_prior(clf, logits, before, cell.Y_partial,
                                                  clf.frequency_pooling)
                                       - clf.class_prior_)[scored].max().round(4)}
        marks = (cell.Y_partial == 1).sum(axis=0)
        rare = scored & (marks >= 1) & (marks <= 3)
        candidates = [("true", true_rate)]
        for pooling in POOLINGS:
            candidates += [(f"pool{pooling:g}", rule_prior(clf, logits, before, cell.Y_partial,
                                                          pooling)),
                           (f"stress_pool{pooling:g}", rule_prior(clf, logits, before, stressed,
                                                                 pooling))]
        for name, prior in candidates:
            shift = prior_logit_shift(logits[:, scored], prior[scored])
            pred = np.zeros_like(valid, dtype=int)
            pred[:, scored] = valid[:, scored] >= shift
            scores = evaluate(cell.Y_valid, valid, pred)
            row[f"{name}_maF1"] = round(scores["macro_f1"], 4)
            row[f"{name}_miF1"] = round(scores["micro_f1"], 4)
            row[f"{name}_rare_prior"] = round(float(prior[rare].mean()), 4)
        np.savez(os.path.join(args.output, f"arrays-{cell.pair.replace('->', '-')}"
                                           f"-{cell.keep}-seed{cell.seed}.npz"),
                 logits=logits, valid=valid, before=before, scored=scored,
                 pu=clf.pu_labels_, class_prior=clf.class_prior_,
                 Y_partial=cell.Y_partial, Y_target=cell.Y_target, Y_valid=cell.Y_valid)
        append_row(args, "rule_gap", row)


if __name__ == "__main__":
    main()
