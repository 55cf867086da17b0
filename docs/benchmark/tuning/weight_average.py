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

import argparse
import csv
import os
import warnings

import torch
from skorch.callbacks import Callback

from sklearn_dallmi.benchmark.adaptation import (Config, Runner, _disaster_messages, evaluate,
                                                 split_pair, truncated_encoder)
from sklearn_dallmi.datasets import hide_positives

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
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--keeps", type=float, nargs="+", default=[0.1, 0.3, 0.5])
    parser.add_argument("--output", required=True)
    args = parser.parse_args()
    config = Config.tuning()
    config.seeds, config.keeps = args.seeds, args.keeps
    runner = Runner(config, args.output, progress=False, methods=("dallmi",))
    runner.encoder = truncated_encoder(config.layers, os.path.join(args.output, "cache"))
    data = _disaster_messages()
    path = os.path.join(args.output, "weight_average.csv")
    done = set()
    if os.path.exists(path):
        with open(path) as f:
            done = {(r["pair"], float(r["keep"]), int(r["seed"])) for r in csv.DictReader(f)}
    for seed in config.seeds:
        for source, target in config.pairs:
            pair = f"{source}->{target}"
            src, tgt, val = split_pair(data, source, target, config, seed)
            X_src, Y_src = data.texts[src].tolist(), data.Y[src]
            X_tgt, Y_tgt = data.texts[tgt].tolist(), data.Y[tgt]
            X_val, Y_val = data.texts[val].tolist(), data.Y[val]
            source_clf = None
            for keep in config.keeps:
                if (pair, keep, seed) in done:
                    continue
                if source_clf is None:
                    source_clf = runner._source_model(source, seed, X_src, Y_src)
                Y_part = hide_positives(Y_tgt, keep, random_state=seed)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", UserWarning)
                    clf = runner._adapt(source_clf, X_tgt, Y_part, seed,
                                        callbacks=[("keep_start", KeepStart())])
                net = clf.net_
                end = {name: p.detach().clone() for name, p in net.module_.named_parameters()
                       if name in STARTS["start"]}
                scores = {}
                for alpha in (0.0, 1.0):
                    set_alpha(net, STARTS["start"], end, alpha)
                    scores[alpha] = clf.decision_function(X_val)
                row = {"pair": pair, "keep": keep, "seed": seed}
                for alpha in ALPHAS:
                    set_alpha(net, STARTS["start"], end, alpha)
                    wise = clf.decision_function(X_val)
                    mixed = alpha * scores[1.0] + (1 - alpha) * scores[0.0]
                    row[f"wise_{alpha}"] = round(evaluate(Y_val, wise, wise > 0)["macro_ap"], 4)
                    row[f"logits_{alpha}"] = round(
                        evaluate(Y_val, mixed, mixed > 0)["macro_ap"], 4)
                # The logit blend per label, toward the end as the label's
                # marked positives grow: alpha_l = n_l / (n_l + k).
                marked = (Y_part == 1).sum(axis=0)
                for k in GATES:
                    alpha = marked / (marked + k)
                    gated = alpha * scores[1.0] + (1 - alpha) * scores[0.0]
                    row[f"gated_{k}"] = round(evaluate(Y_val, gated, gated > 0)["macro_ap"], 4)
                new = not os.path.exists(path)
                with open(path, "a", newline="") as f:
                    writer = csv.DictWriter(f, fieldnames=list(row))
                    if new:
                        writer.writeheader()
                    writer.writerow(row)
                print(row, flush=True)


if __name__ == "__main__":
    main()
