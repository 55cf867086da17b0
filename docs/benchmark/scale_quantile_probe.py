"""How ``scale_quantile`` moves DALLMi's F1 scores (10% kept, validation split).

For news -> direct and direct -> news (the tuning pairs), seed 0, it adapts
the run's cached source model to 800 target texts of the official *train*
split with 10% of the positives kept, as the benchmark does, then recomputes
the probability scale for several quantiles (the scale is the only thing
``scale_quantile`` changes; the ranking, hence AP, stays the same) and
scores macro AP, macro-F1 and micro-F1 on 500 texts of the target's
*validation* split. Source only and the fully labelled target are printed
for reference::

    python docs/benchmark/scale_quantile_probe.py --output benchmark_results
"""

import argparse

import numpy as np
from sklearn.metrics import f1_score

from sklearn_dallmi.benchmark.adaptation import (
    DOMAINS, Config, Runner, _subsample, truncated_encoder)
from sklearn_dallmi.datasets import hide_positives, load_disaster_messages
from sklearn_dallmi.metrics import macro_average_precision
from sklearn_dallmi.text import tokenize

QUANTILES = (1.0, 0.99, 0.95, 0.9, 0.75, 0.5)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default="benchmark_results",
                        help="folder of a full run (its cache holds the source models)")
    parser.add_argument("--keep", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    config = Config.full()
    runner = Runner(config, args.output, progress=False)
    runner.encoder = truncated_encoder(config.layers, f"{args.output}/cache")
    data = load_disaster_messages()
    for source, target in [("news", "direct"), ("direct", "news")]:
        rng = np.random.default_rng([args.seed, 7])
        src = _subsample(np.random.default_rng([args.seed, DOMAINS.index(source)]),
                         (data.genre == source) & (data.split != "test"), config.n_source)
        tgt = _subsample(rng, (data.genre == target) & (data.split == "train"), config.n_target)
        val = _subsample(rng, (data.genre == target) & (data.split == "validation"), config.n_test)
        X_t, Y_t = data.texts[tgt].tolist(), data.Y[tgt]
        X_v, Y_v = data.texts[val].tolist(), data.Y[val]
        labels = np.flatnonzero(Y_v.any(axis=0))
        Y_p = hide_positives(Y_t, args.keep, random_state=args.seed)
        source_clf = runner._source_model(source, args.seed, data.texts[src].tolist(),
                                          data.Y[src])

        def report(name, clf):
            pred, proba = clf.predict(X_v)[:, labels], clf.predict_proba(X_v)[:, labels]
            y = Y_v[:, labels]
            print(f"{source}->{target} keep={args.keep} {name:18} "
                  f"macro AP {macro_average_precision(y, proba):.3f} "
                  f"macro-F1 {f1_score(y, pred, average='macro', zero_division=0):.3f} "
                  f"micro-F1 {f1_score(y, pred, average='micro', zero_division=0):.3f}",
                  flush=True)

        report("source_only", source_clf)
        clf = runner._adapt(source_clf, X_t, Y_p, args.seed)
        ids = tokenize(clf.tokenizer_, X_t, clf.max_length)
        for q in QUANTILES:
            # What fit does last, with another quantile: recompute the scale.
            clf.scale_quantile = q
            clf.proba_shift_ = clf._proba_shift(clf.net_, ids, Y_p, clf.pu_labels_,
                                                np.zeros(Y_p.shape[1]))
            report(f"dallmi q={q}", clf)
        report("oracle", runner._adapt(source_clf, X_t, Y_t, args.seed))


if __name__ == "__main__":
    main()
