"""DALLMi's scores blended with PU bagging's on frozen embeddings (tuning pairs, validation split).

The fine-tuned network and the ``pu_embeddings`` peer (a PU-bagged logistic
regression on the frozen encoder's normalised sentence embeddings, trained
on the source rows and the partial target rows) are different models of the
same texts; where their errors differ, an average of their rankings ranks
better than either. Per label, each model's validation scores are turned
into ranks (average precision depends on the order only), and the blend
``w * rank(DALLMi) + (1 - w) * rank(peer)`` is scored for several ``w``
(``w = 1`` is the benchmark's DALLMi cell, ``w = 0`` the peer's).

It runs the benchmark's tuning configuration (``Config.tuning()``: news ->
direct and direct -> news, the target's official *train* texts, scored on
its *validation* split) and changes nothing in the package. Only macro AP
is reported: a blend of ranks has no decision rule::

    python docs/benchmark/tuning/peer_blend.py --seeds 0 1 2 --output /tmp/blend
"""

import os

import numpy as np
from scipy.stats import rankdata
from tuning_cells import append_row, parser, tuning_cells

from sklearn_dallmi.benchmark.adaptation import evaluate
from sklearn_dallmi.benchmark.peers import run_peer

WEIGHTS = (1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.0)


def main():
    args = parser(__doc__.splitlines()[0]).parse_args()
    for runner, cell in tuning_cells(args, "peer_blend"):
        clf = runner._adapt(cell.source_model, cell.X_target, cell.Y_partial, cell.seed)
        ours = rankdata(clf.decision_function(cell.X_valid), axis=0) / len(cell.X_valid)
        peer, _ = run_peer("pu_embeddings", cell.X_source, cell.Y_source, cell.X_target,
                           cell.Y_partial, cell.X_valid, seed=cell.seed,
                           cache_dir=os.path.join(args.output, "cache", "peers"),
                           max_length=runner.config.max_length)
        theirs = rankdata(peer, axis=0) / len(cell.X_valid)
        row = {"pair": cell.pair, "keep": cell.keep, "seed": cell.seed}
        for w in WEIGHTS:
            blend = w * ours + (1 - w) * theirs
            row[f"w{w:g}"] = round(evaluate(cell.Y_valid, blend, blend > 0.5)["macro_ap"], 4)
        append_row(args, "peer_blend", row)


if __name__ == "__main__":
    main()
