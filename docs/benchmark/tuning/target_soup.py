"""Target stages run with other seeds and averaged (tuning pairs, validation split).

A "model soup" (Wortsman et al., "Model soups: averaging weights of multiple
fine-tuned models improves accuracy without increasing inference time",
ICML 2022) of DALLMi's target stage: the stage is run ``k`` times from the
same source model with different ``random_state`` (the sampler's batches,
MixUp's pairs, dropout and the head choice's folds differ), and the
networks' weights are averaged into one network. The logit ensemble of the
same runs (``k`` passes at inference) is scored beside it.

It runs the benchmark's tuning configuration (``Config.tuning()``: news ->
direct and direct -> news, the target's official *train* texts, scored on
its *validation* split) with the seeds and shares given. Run ``i`` has
``random_state = seed + 1000 * (i + 1)``; run 0 is the benchmark's own
DALLMi cell. It changes nothing in the package. Only macro AP is
reported (the decision rule was fitted for each run, not for the soup)::

    python docs/benchmark/tuning/target_soup.py --seeds 0 1 2 --keeps 0.1 --output /tmp/soup
"""

import copy

import numpy as np
import torch
from tuning_cells import append_row, parser, tuning_cells

from sklearn_dallmi.benchmark.adaptation import evaluate


def main():
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=3)
    args = p.parse_args()
    for runner, cell in tuning_cells(args, "target_soup"):
        fits = [runner._adapt(cell.source_model, cell.X_target, cell.Y_partial, cell.seed,
                              random_state=cell.seed + 1000 * (i + 1))
                for i in range(args.runs)]

        def macro_ap(s):
            return round(evaluate(cell.Y_valid, s, s > 0)["macro_ap"], 4)

        row = {"pair": cell.pair, "keep": cell.keep, "seed": cell.seed}
        scores = [clf.decision_function(cell.X_valid) for clf in fits]
        for i, s in enumerate(scores):
            row[f"run{i}"] = macro_ap(s)
        for k in range(2, args.runs + 1):
            soup = copy.deepcopy(fits[0])
            with torch.no_grad():
                params = [dict(f.net_.module_.named_parameters()) for f in fits[:k]]
                for name, q in soup.net_.module_.named_parameters():
                    q.copy_(sum(r[name].double() for r in params) / k)
            row[f"soup{k}"] = macro_ap(soup.decision_function(cell.X_valid))
            row[f"logits{k}"] = macro_ap(
                sum(np.where(np.isfinite(x), x, -1e9) for x in scores[:k]) / k)
        append_row(args, "target_soup", row)

if __name__ == "__main__":
    main()
