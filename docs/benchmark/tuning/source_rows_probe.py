"""Can the target stage recover the source rows' help, and tell when it helps?

``pu_gap_probe.py`` found that one unweighted regression on source and
target texts together (``joint``) beats the target stage's anchored re-probe
on direct -> news and loses to it on news -> direct. The target stage of
``fit`` then ``warm_start`` sees no source text. This measures, on frozen
features (6 layers, mean pooled, unit length, 64 tokens), three ways to get
the joint fit's help where it helps and the re-probe where it does not:

- ``curvature lam``: the target texts' regression (unweighted, C=1) plus
  ``lam`` times the second-order Taylor expansion of the source texts' loss
  around the source head (its gradient and, per label, its Hessian: what the
  source model would have to keep, 35 matrices of 385 x 385). At ``lam=1``
  it should reproduce ``joint`` without the source texts.
- ``importance g``: ``joint`` with each source text weighted by the
  domain-classifier odds ``p(target | x) / p(source | x)`` (times
  ``n_source / n_target``, capped at 10) to the power ``g``; ``source x a``
  weighs every source text ``a``.
- ``average``: the mean of the re-probe's and ``curvature 1``'s heads.

and whether 5-fold cross-validation on the target's own partial labels
(ROC AUC and AP of the marked positives against the unknowns, macro over
labels) picks the better of ``re-probe``, ``curvature`` and ``average``
per pair and share, as the validation split would (``chosen``).

Tuning pairs, seed 0, the benchmark's tuning configuration (1200 source,
800 target training texts from the official train split, 500 validation
texts)::

    OMP_NUM_THREADS=1 python docs/benchmark/tuning/source_rows_probe.py
"""

import warnings

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.model_selection import KFold

from sklearn_dallmi.benchmark.adaptation import Config, evaluate, split_pair
from sklearn_dallmi.benchmark.peers import frozen_embeddings
from sklearn_dallmi.datasets import hide_positives, load_disaster_messages
from sklearn_dallmi.probe import fit_linear_probe

warnings.simplefilter("ignore")
CACHE = "benchmark_results/cache/peers"


def with_ones(x):
    return torch.cat([x, x.new_ones(len(x), 1)], 1)


def source_expansion(E, Y, head, C=1.0):
    """Where the source loss is expanded, its gradient, and its Hessian per label."""
    x = with_ones(E)
    theta = torch.cat([head[0].detach().double(), head[1].detach().double()[:, None]], 1)
    p = torch.sigmoid(x @ theta.T)
    gradient = C * ((p - (Y == 1).double()).T @ x)
    hessian = torch.einsum("nl,ni,nj->lij", C * p * (1 - p), x, x)
    return theta, gradient, hessian


def fit_regression(E, Y, pu, C=1.0, row_weight=None, expansion=None, lam=0.0):
    """Unweighted L2 logistic regressions, one per label; optional source terms."""
    x = with_ones(E)
    used = (Y != -1) | pu
    target = ((Y == 1) & used).double()
    scale = used.double() * C
    if row_weight is not None:
        scale = scale * row_weight[:, None]
    theta = (expansion[0].clone() if expansion is not None
             else x.new_zeros(Y.shape[1], x.shape[1])).requires_grad_(True)
    optimizer = torch.optim.LBFGS([theta], max_iter=200, tolerance_grad=1e-9,
                                  tolerance_change=1e-12, line_search_fn="strong_wolfe")

    def objective():
        optimizer.zero_grad()
        loss = F.binary_cross_entropy_with_logits(x @ theta.T, target, weight=scale,
                                                  reduction="sum")
        loss = loss + 0.5 * (theta[:, :-1] ** 2).sum()
        if expansion is not None:
            step = theta - expansion[0]
            loss = loss + lam * ((expansion[1] * step).sum()
                                 + 0.5 * torch.einsum("li,lij,lj->", step, expansion[2], step))
        loss.backward()
        return loss

    optimizer.step(objective)
    theta = theta.detach()
    return theta[:, :-1], theta[:, -1]


def macro_pu(metric, Y, logits):
    """``metric`` of marked positives against unknowns, macro over labels."""
    scores = [metric(Y[:, j] == 1, logits[:, j]) for j in range(Y.shape[1])
              if 0 < (Y[:, j] == 1).sum() < len(Y)]
    return float(np.mean(scores))


def main():
    torch.set_num_threads(1)
    config = Config.tuning()
    data = load_disaster_messages()
    print("macro AP on the validation split; [5-fold PU AUC / PU AP on the target's "
          "partial labels]")
    for source, target in config.pairs:
        src, tgt, val = split_pair(data, source, target, config, seed=0)
        E_src, E_tgt, E_val = (
            torch.tensor(frozen_embeddings(data.texts[rows].tolist(), cache_dir=CACHE)).double()
            for rows in (src, tgt, val))
        Y_src, Y_val = torch.tensor(data.Y[src]), data.Y[val]
        head = fit_linear_probe(E_src, Y_src, torch.zeros(Y_src.shape[1], dtype=torch.bool),
                                C=0.1)
        expansion = source_expansion(E_src, Y_src, head)
        domain = LogisticRegression(max_iter=1000).fit(
            torch.cat([E_src, E_tgt]).numpy(), np.r_[np.zeros(len(E_src)), np.ones(len(E_tgt))])
        p = domain.predict_proba(E_src.numpy())[:, 1]
        odds = np.minimum(p / (1 - p) * len(E_src) / len(E_tgt), 10.0)
        print(f"\n{source} -> {target} (domain odds on the source texts: median "
              f"{np.median(odds):.2f}, mean {odds.mean():.2f})")

        def logits_of(head_, E):
            return (E @ head_[0].double().T + head_[1].double()).numpy()

        def score(head_):
            logits = logits_of(head_, E_val)
            return evaluate(Y_val, logits, (logits > 0).astype(int))["macro_ap"]

        for keep in config.keeps:
            Y_part = torch.tensor(hide_positives(data.Y[tgt], keep, random_state=0))
            pu = (Y_part == -1).any(0)

            def reprobe(E, Y):
                n = (Y == 1).sum(0).double()
                return fit_linear_probe(E, Y, pu, C=0.1 * n / (n + 10), anchor=head)

            def curvature(E, Y, lam=1.0):
                return fit_regression(E, Y, pu, expansion=expansion, lam=lam)

            def average(E, Y):
                a, b = reprobe(E, Y), curvature(E, Y)
                return (a[0].double() + b[0]) / 2, (a[1].double() + b[1]) / 2

            selectable = {"re-probe (the recipe's)": reprobe, "curvature 1": curvature,
                          "average": average}
            E_joint, Y_joint = torch.cat([E_src, E_tgt]), torch.cat([Y_src, Y_part])
            ones = torch.ones(len(E_tgt), dtype=torch.double)
            others = {
                "curvature 0.3": lambda: curvature(E_tgt, Y_part, 0.3),
                "joint": lambda: fit_regression(E_joint, Y_joint, pu),
                **{f"importance {g}": (lambda g=g: fit_regression(
                    E_joint, Y_joint, pu, row_weight=torch.cat([torch.tensor(odds ** g), ones])))
                   for g in (0.5, 1.0)},
                **{f"source x {a}": (lambda a=a: fit_regression(
                    E_joint, Y_joint, pu,
                    row_weight=torch.cat([torch.full((len(E_src),), a).double(), ones])))
                   for a in (0.25, 0.5)},
            }
            lines, cv = [], {}
            for name, fit in selectable.items():
                folds = []
                for fit_rows, held in KFold(5, shuffle=True, random_state=0).split(E_tgt):
                    logits = logits_of(fit(E_tgt[fit_rows], Y_part[fit_rows]), E_tgt[held])
                    folds.append([macro_pu(roc_auc_score, Y_part[held].numpy(), logits),
                                  macro_pu(average_precision_score, Y_part[held].numpy(),
                                           logits)])
                cv[name] = np.mean(folds, axis=0)
                ap = score(fit(E_tgt, Y_part))
                lines.append((name, ap, f" [{cv[name][0]:.3f} / {cv[name][1]:.3f}]"))
            lines += [(name, score(fit()), "") for name, fit in others.items()]
            aps = {name: ap for name, ap, _ in lines}
            for criterion, column in (("PU AUC", 0), ("PU AP", 1)):
                best = max(cv, key=lambda name: cv[name][column])
                lines.append((f"chosen by {criterion}", aps[best], f" ({best})"))
            print(f"  {keep:.0%} kept")
            for name, ap, extra in lines:
                print(f"    {name:26} {ap:.3f}{extra}", flush=True)


if __name__ == "__main__":
    main()
