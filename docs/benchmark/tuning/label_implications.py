"""Partial labels completed by the source labels' implications (tuning pairs, validation split).

The Disaster Response labels nest: every ``food`` message is ``aid_related``
and every labelled message is ``related``. Where, in the source labels,
every text positive for label ``a`` (at least ``--min-support`` of them) is
also positive for ``b``, a target text marked positive for ``a`` is marked
positive for ``b`` too before the target stage. That adds known positives
to the parent labels, though not at random among their positives (the
variational loss assumes they are).

It runs the benchmark's tuning configuration (``Config.tuning()``: news ->
direct and direct -> news, the target's official *train* texts, scored on
its *validation* split) and prints, per cell, DALLMi's metrics on the
partial labels as given and on the completed ones, and the F1 scores of
the network trained on the completed labels when its decision rule reads
the priors off the marks as given (:func:`rule_on_marks`, the classifier's
own rule; from the completed marks it must give the fitted shifts back:
``rule_replica_error``).
It changes nothing in the package. Run with one thread per process, as the
benchmark's processes are::

    OMP_NUM_THREADS=1 python docs/benchmark/tuning/label_implications.py --seeds 0 1 2 --output /tmp/implications

``--rule-only`` skips the fit on the labels as given.
"""

import numpy as np
from scipy.special import expit
from tuning_cells import append_row, parser, tuning_cells

from sklearn_dallmi.benchmark.adaptation import evaluate, scores_and_decisions
from sklearn_dallmi.text import tokenize


def implications(Y, min_support=3):
    """``(a, b)`` pairs where every positive of ``a`` in ``Y`` is a positive of ``b``.

    Only labels with at least ``min_support`` positives imply anything.
    """
    positive = np.asarray(Y) == 1
    out = []
    for a in np.flatnonzero(positive.sum(axis=0) >= min_support):
        rows = positive[positive[:, a]]
        out += [(a, b) for b in np.flatnonzero(rows.all(axis=0)) if b != a]
    return out


def complete(Y, pairs):
    """``Y`` with ``b`` marked positive wherever ``a`` is, for each ``(a, b)``."""
    Y = np.array(Y, copy=True)
    marked = Y == 1
    for a, b in pairs:
        Y[marked[:, a], b] = 1
    return Y


def rule_on_marks(clf, source_model, X, Y):
    """The logit shifts of the classifier's own decision rule, its priors read off ``Y``.

    ``DALLMiClassifier``'s rule for a continued fit (what ``fit`` computes
    at its end), run on the fitted network's logits over ``X`` with the
    marks ``Y`` and the source model's probabilities as the previous
    model's; a label without a mark in ``Y`` keeps its fitted shift.
    """
    before = expit(source_model.decision_function(X) + source_model.proba_shift_)
    ids = tokenize(clf.tokenizer_, list(X), clf.max_length)
    shift, _ = clf._decision_rule(clf.net_, ids, Y, (Y == -1).any(axis=0), before,
                                  continuing=True)
    return shift


def main():
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--min-support", type=int, default=3)
    p.add_argument("--rule-only", action="store_true",
                   help="skip the fit on the labels as given")
    args = p.parse_args()
    for runner, cell in tuning_cells(args, "label_implications"):
        pairs = implications(cell.Y_source, args.min_support)
        completed = complete(cell.Y_partial, pairs)
        row = {"pair": cell.pair, "keep": cell.keep, "seed": cell.seed,
               "added": int((completed == 1).sum() - (cell.Y_partial == 1).sum())}
        for name, Y in (("given", cell.Y_partial), ("completed", completed)):
            if args.rule_only and name == "given":
                continue
            clf = runner._adapt(cell.source_model, cell.X_target, Y, cell.seed)
            scores = evaluate(cell.Y_valid, *scores_and_decisions(clf, cell.X_valid))
            for metric in ("macro_ap", "macro_f1", "micro_f1"):
                row[f"{name}_{metric}"] = round(scores[metric], 4)
        # The completed network, its decisions from the marks as given.
        check = rule_on_marks(clf, cell.source_model, cell.X_target, completed)
        row["rule_replica_error"] = float(np.abs(check - clf.proba_shift_).max())
        shift = rule_on_marks(clf, cell.source_model, cell.X_target, cell.Y_partial)
        z = clf.decision_function(cell.X_valid) + clf.proba_shift_ - shift
        scores = evaluate(cell.Y_valid, expit(z), (z >= 0).astype(int))
        for metric in ("macro_f1", "micro_f1"):
            row[f"completed_rule_on_given_{metric}"] = round(scores[metric], 4)
        append_row(args, "label_implications", row)


if __name__ == "__main__":
    main()
