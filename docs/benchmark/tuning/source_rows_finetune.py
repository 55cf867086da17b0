"""Does choosing the target head by cross-validation survive the fine-tuning epoch?

``source_rows_probe.py`` found, on frozen features, that picking the target
stage's starting head among the recipe's re-probe, the ``curvature`` head
(the target texts' regression plus the source loss's second-order
expansion) and their ``average`` by 5-fold PU ROC AUC on the target's own
partial labels never lost to the re-probe on the tuning pairs and gained
0.012 / 0.021 on direct -> news at 30 / 50% kept. This runs the benchmark's
target stage (one epoch, bfloat16, the benchmark's tuning configuration,
seed 0) from either head, in two steps: a ``warm_start`` fit with
``max_epochs=0`` (the recipe's re-probe and class priors), the PU labels'
head rows replaced by the chosen head (``chosen``) or left as they are
(``re-probe``), then a ``warm_start`` fit of one epoch. In the second step
the anchor pulls toward the model of the first step instead of the source
model, so ``re-probe`` is not the recipe's one-step figure: compare the two
rows with each other. The features are the estimator's own (its frozen
encoder's pooled vectors)::

    OMP_NUM_THREADS=2 python docs/benchmark/tuning/source_rows_finetune.py [news->direct ...]
"""

import copy
import os
import sys
import warnings

import numpy as np
import torch
from scipy.special import expit
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import KFold

from sklearn_dallmi._validation import check_threshold
from sklearn_dallmi.benchmark.adaptation import Config, Runner, evaluate, split_pair, \
    truncated_encoder
from sklearn_dallmi.datasets import hide_positives, load_disaster_messages
from sklearn_dallmi.probe import fit_linear_probe
from sklearn_dallmi.text import tokenize

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from source_rows_probe import fit_regression, macro_pu, source_expansion  # noqa: E402

warnings.simplefilter("ignore")
OUTPUT = "benchmark_results/source_rows_finetune"


def features(clf, texts):
    """The fitted network's pooled vectors of ``texts``, in their order."""
    ids = tokenize(clf.tokenizer_, texts, clf.max_length)
    pooled, order = clf._features(clf.net_, ids)
    out = torch.empty_like(pooled)
    out[torch.as_tensor(order)] = pooled
    return out.double()


def main(pairs):
    config = Config.tuning()
    data = load_disaster_messages()
    runner = Runner(config, OUTPUT, progress=False, methods=("dallmi",))
    runner.encoder = truncated_encoder(config.layers, os.path.join(OUTPUT, "cache"))
    print("macro AP / micro-F1 on the validation split, seed 0")
    for source, target in pairs:
        src, tgt, val = split_pair(data, source, target, config, seed=0)
        X_src, X_tgt, X_val = (data.texts[rows].tolist() for rows in (src, tgt, val))
        Y_src = data.Y[src]
        source_clf = runner._source_model(source, 0, X_src, Y_src)
        head = source_clf.net_.plain_module.head
        E_src, E_tgt = features(source_clf, X_src), features(source_clf, X_tgt)
        expansion = source_expansion(E_src, torch.tensor(Y_src), (head.weight, head.bias))
        print(f"\n{source} -> {target}")
        for keep in config.keeps:
            Y_part = hide_positives(data.Y[tgt], keep, random_state=0)
            Yt = torch.tensor(Y_part)
            pu = (Yt == -1).any(0)
            # The re-probe's C counts the marked positives of all the target
            # texts, as the recipe's does; the folds reuse it.
            n = (Yt == 1).sum(0).double()
            candidates = {
                "re-probe": lambda E, Y: fit_linear_probe(
                    E, Y, pu, C=0.1 * n / (n + 10), anchor=(head.weight, head.bias)),
                "curvature": lambda E, Y: fit_regression(E, Y, pu, expansion=expansion,
                                                         lam=1.0),
            }
            candidates["average"] = lambda E, Y: tuple(
                (a.double() + b.double()) / 2 for a, b in zip(candidates["re-probe"](E, Y),
                                                           candidates["curvature"](E, Y)))
            auc = {}
            for name, fit in candidates.items():
                folds = []
                for fit_rows, held in KFold(5, shuffle=True, random_state=0).split(E_tgt):
                    w, b = fit(E_tgt[fit_rows], Yt[fit_rows])
                    logits = (E_tgt[held] @ w.double().T + b.double()).numpy()
                    folds.append(macro_pu(roc_auc_score, Y_part[held], logits))
                auc[name] = np.mean(folds)
            chosen = max(auc, key=auc.get)
            w, b = candidates[chosen](E_tgt, Yt)
            rows = {}
            for name in ("re-probe", "chosen"):
                clf = copy.deepcopy(source_clf)
                clf.set_params(warm_start=True, max_epochs=0, random_state=1000)
                clf.fit(X_tgt, Y_part)
                if name == "chosen" and chosen != "re-probe":
                    target_head = clf.net_.plain_module.head
                    with torch.no_grad():
                        target_head.weight[pu] = w[pu].to(target_head.weight.dtype)
                        target_head.bias[pu] = b[pu].to(target_head.bias.dtype)
                clf.set_params(max_epochs=1).fit(X_tgt, Y_part)
                proba = expit(clf.decision_function(X_val))
                pred = proba >= check_threshold(clf.threshold, proba.shape[1])  # predict's rule
                scores = evaluate(data.Y[val], proba, pred.astype(int))
                rows[name] = f"{scores['macro_ap']:.3f} / {scores['micro_f1']:.3f}"
                if chosen == "re-probe":
                    rows["chosen"] = rows[name]
                    break
            print(f"  {keep:.0%} kept: PU AUC " + ", ".join(f"{k} {v:.3f}" for k, v in auc.items())
                  + f"; re-probe {rows['re-probe']}, chosen ({chosen}) {rows['chosen']}",
                  flush=True)


if __name__ == "__main__":
    main([tuple(p.split("->")) for p in sys.argv[1:]] or Config.tuning().pairs)
