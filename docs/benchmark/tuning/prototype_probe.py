"""Similarity to a label's marked positives added to DALLMi's scores (tuning pairs, validation split).

Few-shot classifiers score a text by its similarity to a class's examples
(a prototype); DALLMi's head is a linear map of the same pooled vectors,
trained on the marked positives among the rest. Where a label has one to
three marked positives, the head may not have taken all they say. Per
label, the cosine similarity of each validation text to the centroid of
the label's marked positives (the adapted network's own normalised
sentence vectors) is standardised over the validation texts, as the
network's logit is, and added with a weight ``b``: ``z + b * proto``,
either for every label (``b0.1``, ``b0.25``, ``b0.5``) or weighed down as
the label's marked positives ``n`` grow (``b * 3 / (n + 3)``, columns
``w0.5``, ``w1``). ``b0`` is DALLMi's own ranking, ``proto`` the similarity alone.
Macro AP over the labels with a validation positive and a marked positive
(a label without a target training positive has no centroid; leaving it
out makes ``b0`` differ from the benchmark's cell), and (``_rare``) over
those of them with one to three marked positives. The standardisation over
the validation texts is a shortcut of the probe: built into the estimator,
it would use the training texts' statistics, and ``z + b * proto`` would
fold into the head (the centroid added to the label's weights).

It runs the benchmark's tuning configuration (``Config.tuning()``: news ->
direct and direct -> news, the target's official *train* texts, scored on
its *validation* split) and changes nothing in the package::

    OMP_NUM_THREADS=1 python docs/benchmark/tuning/prototype_probe.py --seeds 0 1 2 --output /tmp/proto
"""

import numpy as np
from tuning_cells import append_row, parser, tuning_cells

from sklearn_dallmi.metrics import macro_average_precision
from sklearn_dallmi.text import tokenize

BLENDS = {"b0": (0.0, False), "b0.1": (0.1, False), "b0.25": (0.25, False),
          "b0.5": (0.5, False), "w0.5": (0.5, True), "w1": (1.0, True)}


def sentence_vectors(clf, texts):
    """The fitted network's pooled (normalised) vectors of ``texts``, in their order."""
    ids = tokenize(clf.tokenizer_, texts, clf.max_length)
    pooled, order = clf._features(clf.net_, ids)
    vectors = np.empty((len(ids), pooled.shape[1]))
    vectors[order] = pooled.float().numpy()
    return vectors


def standardised(scores):
    return (scores - scores.mean(axis=0)) / (scores.std(axis=0) + 1e-12)


def main():
    args = parser(__doc__.splitlines()[0]).parse_args()
    for runner, cell in tuning_cells(args, "prototype_probe"):
        clf = runner._adapt(cell.source_model, cell.X_target, cell.Y_partial, cell.seed)
        z = standardised(clf.decision_function(cell.X_valid))
        train, valid = (sentence_vectors(clf, cell.X_target), sentence_vectors(clf, cell.X_valid))
        marked = (cell.Y_partial == 1).sum(axis=0)
        labels = np.flatnonzero(cell.Y_valid.any(axis=0) & (marked > 0))
        proto = np.zeros_like(z)
        for j in labels:
            proto[:, j] = valid @ train[cell.Y_partial[:, j] == 1].mean(axis=0)
        proto = standardised(proto)
        rare = labels[marked[labels] <= 3]
        row = {"pair": cell.pair, "keep": cell.keep, "seed": cell.seed, "n_rare": len(rare)}
        for name, (b, weighed) in list(BLENDS.items()) + [("proto", (None, False))]:
            scores = proto if b is None else z + b * (3 / (marked + 3) if weighed else 1) * proto
            row[name] = round(macro_average_precision(cell.Y_valid[:, labels], scores[:, labels]), 4)
            row[name + "_rare"] = (round(macro_average_precision(cell.Y_valid[:, rare],
                                                                 scores[:, rare]), 4)
                                   if len(rare) else "")
        append_row(args, "prototype_probe", row)


if __name__ == "__main__":
    main()
