"""The target stage with its gradient norm clipped (tuning pairs, validation split).

Hugging Face's ``Trainer`` clips the global gradient norm at 1 by default;
DALLMi's target stage does not clip. The variational term weighs each
observed positive of a label by one over the label's positives in the
batch, so a label with one marked positive can give a step a large
gradient; this probe runs the benchmark's DALLMi and
published-objective cells again with skorch's ``GradientNormClipping``
callback at each ``--max-norm`` and scores them as the benchmark does
(``predict``'s rule for the F1 scores). It changes nothing in the
package::

    python docs/benchmark/tuning/grad_clip.py --seeds 0 --max-norm 1 --output /tmp/clip
"""

from skorch.callbacks import GradientNormClipping
from tuning_cells import append_row, parser, tuning_cells

from sklearn_dallmi.benchmark.adaptation import PUBLISHED, evaluate, scores_and_decisions

ROWS = {"dallmi": {}, "published_objective": PUBLISHED}


def main():
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--max-norm", type=float, nargs="+", default=[1.0])
    args = p.parse_args()
    for runner, cell in tuning_cells(args, "grad_clip"):
        row = {"pair": cell.pair, "keep": cell.keep, "seed": cell.seed}
        for max_norm in args.max_norm:
            for method, params in ROWS.items():
                clf = runner._adapt(cell.source_model, cell.X_target, cell.Y_partial, cell.seed,
                                    callbacks=[GradientNormClipping(max_norm)], **params)
                scores = evaluate(cell.Y_valid, *scores_and_decisions(clf, cell.X_valid))
                for metric in ("macro_ap", "macro_f1"):
                    row[f"{method}_{metric}@{max_norm:g}"] = round(float(scores[metric]), 4)
        append_row(args, "grad_clip", row)


if __name__ == "__main__":
    main()
