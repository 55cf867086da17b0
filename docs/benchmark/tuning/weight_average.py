"""The target stage's weights averaged with its start (tuning pairs, validation split).

Robust fine-tuning by weight-space ensembling (WiSE-FT; Wortsman et al.,
"Robust fine-tuning of zero-shot models", CVPR 2022) applied to DALLMi's
target stage: after the stage's epoch, the trainable weights become
``start + alpha * (end - start)``, where ``start`` is the network as the
epoch began (the source encoder with the re-probed head) and ``end`` where
it finished. ``alpha = 1`` is the recipe, ``alpha = 0`` the re-probe alone.
The logit ensemble of the two networks (``alpha * end + (1 - alpha) *
start`` on the logits, two passes at inference) is scored beside it, and
so is a per-label logit blend that leans toward the end as the label's
marked positives ``n`` grow (``alpha = n / (n + k)``, ``gated_k``).

It runs the benchmark's tuning configuration (``Config.tuning()``: news ->
direct and direct -> news, the target's official *train* texts, scored on
its *validation* split) with the seeds given, one DALLMi fit per cell, and
scores every ``alpha`` from that one fit. It changes nothing in the
package: a skorch callback keeps the start. Only macro AP is reported:
the decision rule was fitted for ``alpha = 1``::

    python docs/benchmark/tuning/weight_average.py --seeds 0 1 2 --output /tmp/wise
"""

import warnings

import torch
from skorch.callbacks import Callback
from tuning_cells import append_row, parser, tuning_cells

from sklearn_dallmi.benchmark.adaptation import evaluate

ALPHAS = (0.0, 0.25, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
GATES = (1, 3, 10)
STARTS = {}


class KeepStart(Callback):
    """Copies the trainable weights when training begins (into ``STARTS``)."""

    def on_train_begin(self, net, **kwargs):
        STARTS["start"] = {name: p.detach().clone()
                           for name, p in net.module_.named_parameters() if p.requires_grad}


def set_alpha(net, start, end, alpha):
    with torch.no_grad():
        for name, p in net.module_.named_parameters():
            if name in start:
                p.copy_(start[name] + alpha * (end[name] - start[name]))


def main():
    args = parser(__doc__.splitlines()[0]).parse_args()
    for runner, cell in tuning_cells(args, "weight_average"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            clf = runner._adapt(cell.source_model, cell.X_target, cell.Y_partial, cell.seed,
                                callbacks=[("keep_start", KeepStart())])
        net = clf.net_
        end = {name: p.detach().clone() for name, p in net.module_.named_parameters()
               if name in STARTS["start"]}
        scores = {}
        for alpha in (0.0, 1.0):
            set_alpha(net, STARTS["start"], end, alpha)
            scores[alpha] = clf.decision_function(cell.X_valid)

        def macro_ap(s):
            return round(evaluate(cell.Y_valid, s, s > 0)["macro_ap"], 4)

        row = {"pair": cell.pair, "keep": cell.keep, "seed": cell.seed}
        for alpha in ALPHAS:
            set_alpha(net, STARTS["start"], end, alpha)
            row[f"wise_{alpha}"] = macro_ap(clf.decision_function(cell.X_valid))
            row[f"logits_{alpha}"] = macro_ap(alpha * scores[1.0] + (1 - alpha) * scores[0.0])
        # The logit blend per label, toward the end as the label's marked
        # positives grow: alpha_l = n_l / (n_l + k).
        marked = (cell.Y_partial == 1).sum(axis=0)
        for k in GATES:
            alpha = marked / (marked + k)
            row[f"gated_{k}"] = macro_ap(alpha * scores[1.0] + (1 - alpha) * scores[0.0])
        append_row(args, "weight_average", row)

if __name__ == "__main__":
    main()
