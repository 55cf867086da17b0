"""Small tuning of the benchmark's peers (10% kept, validation split).

The protocol of the project's tuning runs (see scale_quantile_probe.py):
the tuning pairs news -> direct and direct -> news, seed 0; source = 1,200
texts of the source domain's official train and validation splits (the
benchmark's own source sample); target training = 800 texts of the
target's official *train* split with 10% of the positives kept; scored on
500 texts of the target's official *validation* split with ``evaluate``
(macro AP on the labels with a validation positive, macro-F1, micro-F1).
The test split is never read.

Each peer tries a handful of settings; the one with the best mean macro AP
over the two pairs is printed last and is the peer's entry of
``sklearn_dallmi.benchmark.peers.DEFAULTS``. SetFit tries four settings:
two heads at one budget of steps (40), 30 steps (what fits the benchmark's
time budget), then twice the 40 steps with the better head. Times are per fit (one cell), on ``--threads`` threads, with the
frozen embeddings already cached (their encoding is timed once per pair)::

    python docs/benchmark/peers_tuning.py > docs/benchmark/peers_tuning.txt
"""

import argparse
import os
import time

import numpy as np

from sklearn_dallmi.benchmark.adaptation import DOMAINS, _subsample, evaluate
from sklearn_dallmi.benchmark.peers import PEERS, frozen_embeddings, run_peer
from sklearn_dallmi.datasets import hide_positives, load_disaster_messages

PAIRS = (("news", "direct"), ("direct", "news"))
N_SOURCE, N_TARGET, N_VALIDATION = 1200, 800, 500

# Every setting is spelled out in full from BASE, so that the grid does not
# move when DEFAULTS records its winners.
BASE = {
    "embeddings_logreg_source": dict(C=1.0),
    "embeddings_logreg": dict(C=1.0),
    "pu_embeddings": dict(kind="elkanoto", C=1.0, class_weight="balanced", n_estimators=10,
                          hold_out_ratio=0.1, source_rows="all"),
    # skada's default reg="auto" (Ledoit-Wolf) gives NaN here: a few MiniLM
    # dimensions are constant, the estimate is singular.
    "da_embeddings": dict(adapter="coral", reg=0.5, C=1.0),
    "setfit": dict(max_steps=40, batch_size=16, head="default", head_C=0.1, body_lr=2e-5,
                   layers=None),
}
SETTINGS = {
    "embeddings_logreg_source": [dict(C=C) for C in (0.03, 0.1, 0.3, 1.0, 3.0, 10.0)],
    "embeddings_logreg": [dict(C=C) for C in (0.03, 0.1, 0.3, 1.0, 3.0, 10.0)],
    "pu_embeddings": [
        dict(),
        dict(C=0.1),
        dict(C=10.0),
        dict(hold_out_ratio=0.2),
        dict(source_rows="positives"),
        dict(source_rows="none"),
        dict(kind="bagging"),
        dict(kind="bagging", class_weight=None),
        dict(kind="bagging", class_weight=None, C=0.1),
    ],
    "da_embeddings": [
        dict(),
        dict(C=0.1),
        dict(C=10.0),
        dict(reg=0.1),
        dict(reg=0.9),
        dict(reg=0.9, C=0.1),
        dict(adapter="discriminator", reg=1.0),
        dict(adapter="density", reg=1.0),
        dict(adapter="subspace", reg=64),
    ],
    # The fourth SetFit setting is added once the first two have run.
    "setfit": [dict(), dict(head="balanced"), dict(max_steps=30)],
}


def tuning_split(data, source, target, seed):
    """Source, target training (10% kept) and validation texts and labels."""
    rng = np.random.default_rng([seed, 7])
    src = _subsample(np.random.default_rng([seed, DOMAINS.index(source)]),
                     (data.genre == source) & (data.split != "test"), N_SOURCE)
    tgt = _subsample(rng, (data.genre == target) & (data.split == "train"), N_TARGET)
    val = _subsample(rng, (data.genre == target) & (data.split == "validation"), N_VALIDATION)
    Y_part = hide_positives(data.Y[tgt], 0.1, random_state=seed)
    return dict(X_src=data.texts[src].tolist(), Y_src=data.Y[src],
                X_tgt=data.texts[tgt].tolist(), Y_part=Y_part,
                X_test=data.texts[val].tolist()), data.Y[val]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache-dir", default=os.path.join("benchmark_results", "cache",
                                                            "peers"),
                        help="folder of the frozen-embedding cache")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--peers", nargs="+", default=list(PEERS), choices=PEERS)
    args = parser.parse_args()

    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(args.threads)
    threadpool_limits(args.threads)
    data = load_disaster_messages()
    cells = {}
    for source, target in PAIRS:
        cell, Y_val = tuning_split(data, source, target, args.seed)
        start = time.perf_counter()
        for texts in (cell["X_src"], cell["X_tgt"], cell["X_test"]):
            frozen_embeddings(texts, cache_dir=args.cache_dir)
        print(f"{source}->{target}: frozen embeddings of {len(cell['X_src'])} + "
              f"{len(cell['X_tgt'])} + {len(cell['X_test'])} texts in "
              f"{time.perf_counter() - start:.1f} s (0 if cached)", flush=True)
        cells[f"{source}->{target}"] = cell, Y_val

    print(f"\nseed {args.seed}, 10% kept, {args.threads} thread(s); "
          "macro AP / macro-F1 / micro-F1 on the validation split", flush=True)
    chosen = {}
    for peer in args.peers:
        print(f"{peer}: each setting changes {_show(BASE[peer])}", flush=True)
        settings = list(SETTINGS[peer])
        scores = []
        i = 0
        while i < len(settings):
            params = {**BASE[peer], **settings[i]}
            aps = []
            for pair, (cell, Y_val) in cells.items():
                start = time.perf_counter()
                proba, pred = run_peer(peer, **cell, seed=args.seed,
                                       cache_dir=args.cache_dir, **params)
                seconds = time.perf_counter() - start
                m = evaluate(Y_val, proba, pred)
                aps.append(m["macro_ap"])
                print(f"{peer:25} {pair:13} {_show(settings[i]) or 'as is':34} "
                      f"{m['macro_ap']:.3f} / {m['macro_f1']:.3f} / {m['micro_f1']:.3f}  "
                      f"fit {seconds:6.1f} s  predicted positives {int(pred.sum())}",
                      flush=True)
            scores.append(np.mean(aps))
            if peer == "setfit" and i == 1:
                head = {**BASE[peer], **settings[int(np.argmax(scores))]}["head"]
                settings.append(dict(max_steps=2 * BASE[peer]["max_steps"], head=head))
            i += 1
        best = int(np.argmax(scores))
        chosen[peer] = {**BASE[peer], **settings[best]}
        print(f"{peer:25} chosen: {_show(settings[best]) or 'as is'} "
              f"(mean macro AP {scores[best]:.3f})\n", flush=True)
    print("chosen settings (recorded as peers.DEFAULTS):")
    for peer, params in chosen.items():
        print(f"  {peer}: {_show(params)}")


def _show(params):
    return ", ".join(f"{k}={v}" for k, v in params.items())


if __name__ == "__main__":
    main()
