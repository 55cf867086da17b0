"""Where PU bagging's lead at 50% kept comes from, on frozen features.

On the full run's test split PU bagging (``pu_embeddings``) leads DALLMi at
50% kept on three pairs; on the tuning pairs' validation split it leads on
direct -> news at every share. This compares linear models on the frozen
MiniLM embeddings (the peers' features: 6 layers, mean pooled, unit length,
64 tokens) that differ in one thing each:

- ``source``: the source model's head (class-balanced probe, C=0.1, source
  texts);
- ``re-probe``: the target stage's anchored re-probe (target texts only,
  unknowns read as negatives, class-balanced, pulled toward the source
  head, ``C = 0.1 * n / (n + 10)``), as the recipe runs it;
- ``re-probe, unbalanced C``: the same without the class balancing;
- ``joint, balanced C``: one class-balanced probe on source and target texts
  together (the target's unknowns read as negatives);
- ``joint, unbalanced C``: the same without the balancing, which is PU
  bagging's base learner (``LogisticRegression(C=1)``) on all of its rows;
- ``pu_embeddings``: the peer itself (10 bagged regressions).

Tuning pairs, seed 0, the benchmark's tuning configuration (1200 source,
800 target training texts from the official train split, 500 validation
texts)::

    OMP_NUM_THREADS=1 python docs/benchmark/tuning/pu_gap_probe.py
"""

import warnings

import numpy as np
import torch

from sklearn_dallmi.benchmark.adaptation import Config, evaluate, split_pair
from sklearn_dallmi.benchmark.peers import frozen_embeddings, run_peer
from sklearn_dallmi.datasets import hide_positives, load_disaster_messages
from sklearn_dallmi.probe import fit_linear_probe

warnings.simplefilter("ignore")
CACHE = "benchmark_results/cache/peers"


def main():
    torch.set_num_threads(1)
    config = Config.tuning()
    data = load_disaster_messages()
    print("macro AP on the validation split; columns: 10% / 30% / 50% kept")
    for source, target in config.pairs:
        src, tgt, val = split_pair(data, source, target, config, seed=0)
        X_src, X_tgt, X_val = (data.texts[rows].tolist() for rows in (src, tgt, val))
        E_src, E_tgt, E_val = (torch.tensor(frozen_embeddings(texts, cache_dir=CACHE)).double()
                               for texts in (X_src, X_tgt, X_val))
        Y_src, Y_val = torch.tensor(data.Y[src]), data.Y[val]
        supervised = torch.zeros(Y_src.shape[1], dtype=torch.bool)
        head = fit_linear_probe(E_src, Y_src, supervised, C=0.1)

        def score(w_b):
            logits = (E_val @ w_b[0].double().T + w_b[1].double()).numpy()
            return evaluate(Y_val, logits, (logits > 0).astype(int))["macro_ap"]

        rows = {}
        for keep in config.keeps:
            Y_part = hide_positives(data.Y[tgt], keep, random_state=0)
            Y_tgt = torch.tensor(Y_part)
            pu = (Y_tgt == -1).any(0)
            n = (Y_tgt == 1).sum(0).double()
            E_joint, Y_joint = torch.cat([E_src, E_tgt]), torch.cat([Y_src, Y_tgt])
            variants = {
                "source": lambda: head,
                "re-probe (the recipe's)": lambda: fit_linear_probe(
                    E_tgt, Y_tgt, pu, C=0.1 * n / (n + 10), anchor=head),
                **{f"re-probe, unbalanced C={C}": (lambda C=C: fit_linear_probe(
                    E_tgt, Y_tgt, pu, C=C * n / (n + 10), anchor=head, class_weight=None))
                   for C in (1.0, 3.0)},
                **{f"joint, balanced C={C}": (lambda C=C: fit_linear_probe(
                    E_joint, Y_joint, pu, C=C)) for C in (0.1, 1.0)},
                **{f"joint, unbalanced C={C}": (lambda C=C: fit_linear_probe(
                    E_joint, Y_joint, pu, C=C, class_weight=None)) for C in (0.3, 1.0)},
            }
            for name, fit in variants.items():
                rows.setdefault(name, []).append(score(fit()))
            proba, pred = run_peer("pu_embeddings", X_src, data.Y[src], X_tgt, Y_part, X_val,
                                   seed=0, cache_dir=CACHE)
            rows.setdefault("pu_embeddings (the peer)", []).append(
                evaluate(Y_val, proba, pred)["macro_ap"])
        print(f"\n{source} -> {target}")
        for name, aps in rows.items():
            print(f"  {name:28} " + " / ".join(f"{ap:.3f}" for ap in aps), flush=True)


if __name__ == "__main__":
    main()
