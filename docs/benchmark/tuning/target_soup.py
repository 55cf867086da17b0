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

import argparse
import copy
import csv
import os
import warnings

import numpy as np
import torch

from sklearn_dallmi.benchmark.adaptation import (Config, Runner, _disaster_messages, evaluate,
                                                 split_pair, truncated_encoder)
from sklearn_dallmi.datasets import hide_positives


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--keeps", type=float, nargs="+", default=[0.1, 0.3, 0.5])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--output", required=True)
    args = parser.parse_args()
    config = Config.tuning()
    config.seeds, config.keeps = args.seeds, args.keeps
    runner = Runner(config, args.output, progress=False, methods=("dallmi",))
    runner.encoder = truncated_encoder(config.layers, os.path.join(args.output, "cache"))
    data = _disaster_messages()
    path = os.path.join(args.output, "target_soup.csv")
    done = set()
    if os.path.exists(path):
        with open(path) as f:
            done = {(r["pair"], float(r["keep"]), int(r["seed"])) for r in csv.DictReader(f)}
    for seed in config.seeds:
        for source, target in config.pairs:
            pair = f"{source}->{target}"
            src, tgt, val = split_pair(data, source, target, config, seed)
            X_tgt, Y_tgt = data.texts[tgt].tolist(), data.Y[tgt]
            X_val, Y_val = data.texts[val].tolist(), data.Y[val]
            source_clf = None
            for keep in config.keeps:
                if (pair, keep, seed) in done:
                    continue
                if source_clf is None:
                    source_clf = runner._source_model(source, seed, data.texts[src].tolist(),
                                                      data.Y[src])
                Y_part = hide_positives(Y_tgt, keep, random_state=seed)
                fits = []
                for i in range(args.runs):
                    # Runner._adapt with another random_state.
                    clf = copy.deepcopy(source_clf)
                    clf.set_params(warm_start=True, max_epochs=config.target_epochs,
                                   random_state=seed + 1000 * (i + 1))
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore", UserWarning)
                        fits.append(clf.fit(X_tgt, Y_part))
                row = {"pair": pair, "keep": keep, "seed": seed}
                scores = [clf.decision_function(X_val) for clf in fits]
                for i, s in enumerate(scores):
                    row[f"run{i}"] = round(evaluate(Y_val, s, s > 0)["macro_ap"], 4)
                for k in range(2, args.runs + 1):
                    soup = copy.deepcopy(fits[0])
                    with torch.no_grad():
                        params = [dict(f.net_.module_.named_parameters()) for f in fits[:k]]
                        for name, p in soup.net_.module_.named_parameters():
                            p.copy_(sum(q[name].double() for q in params) / k)
                    s = soup.decision_function(X_val)
                    row[f"soup{k}"] = round(evaluate(Y_val, s, s > 0)["macro_ap"], 4)
                    finite = [np.where(np.isfinite(x), x, -1e9) for x in scores[:k]]
                    m = sum(finite) / k
                    row[f"logits{k}"] = round(evaluate(Y_val, m, m > 0)["macro_ap"], 4)
                new = not os.path.exists(path)
                with open(path, "a", newline="") as f:
                    writer = csv.DictWriter(f, fieldnames=list(row))
                    if new:
                        writer.writeheader()
                    writer.writerow(row)
                print(row, flush=True)


if __name__ == "__main__":
    main()
