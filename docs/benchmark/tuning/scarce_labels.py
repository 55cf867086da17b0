"""The labels with one to three marked positives, over seeds (tuning pairs, validation split).

The results page's scarce-label analysis reads single cells of the test
split (``per_label.py``, one seed per file). This probe asks the same
question of the validation splits for several seeds: for the labels with 1 to 3 marked
positives among the 800 target texts (and a positive in the validation
split), the mean AP of the source model, of the target stage's start (the
source encoder with the re-probed head: the stage fitted with
``max_epochs=0``) and of the benchmark's DALLMi cell (its macro AP too,
over the labels with a validation positive, as the benchmark's row). It changes nothing
in the package::

    python docs/benchmark/tuning/scarce_labels.py --seeds 0 1 2 --keeps 0.1 --output /tmp/scarce
"""

import numpy as np
from sklearn.metrics import average_precision_score
from tuning_cells import append_row, parser, tuning_cells

from sklearn_dallmi.benchmark.adaptation import evaluate


def main():
    args = parser(__doc__.splitlines()[0]).parse_args()
    for runner, cell in tuning_cells(args, "scarce_labels"):
        kept = (cell.Y_partial == 1).sum(axis=0)
        labels = np.flatnonzero((kept >= 1) & (kept <= 3) & cell.Y_valid.any(axis=0))
        stage = (cell.source_model, cell.X_target, cell.Y_partial, cell.seed)
        models = {"source": cell.source_model, "start": runner._adapt(*stage, max_epochs=0),
                  "dallmi": runner._adapt(*stage)}
        row = {"pair": cell.pair, "keep": cell.keep, "seed": cell.seed, "labels": labels.size}
        for name, clf in models.items():
            scores = clf.decision_function(cell.X_valid)
            row[name] = round(float(np.mean([average_precision_score(cell.Y_valid[:, j],
                                                                     scores[:, j])
                                             for j in labels])), 4)
        scores = models["dallmi"].decision_function(cell.X_valid)
        row["dallmi_macro_ap"] = round(float(evaluate(cell.Y_valid, scores, scores > 0)
                                             ["macro_ap"]), 4)
        append_row(args, "scarce_labels", row)


if __name__ == "__main__":
    main()
