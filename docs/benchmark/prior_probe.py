"""Class-prior estimators for DALLMi's decisions (tuning pairs, validation split).

For news -> direct and direct -> news (the tuning pairs), seed 0, 10% and 50%
of the positives kept, it trains the source model as the benchmark does
(``Config.full()``: its encoder depth, frozen layers and ``max_length``),
adapts it with DALLMi to 800 texts of the target's official *train* split,
and keeps, per cell, the source model's and the adapted network's logits
on those texts and on 500 texts of the target's official *validation*
split (never the test split).
Models and arrays are cached under ``--cache``, in a folder per benchmark
configuration (joblib, npz), so that reruns only redo the (instant)
estimation; delete it after a change of the training code.

Each estimator of :mod:`sklearn_dallmi.priors` then gives one prior per
label from what a fit can see (the target texts, their partial labels, the
adapted network's logits on them, the source model's probabilities on them
and the source positive rate). It is scored against the true positive rate
of the 800 target texts (mean absolute error over the labels, and mean
absolute log-ratio over the labels with a positive), and by the macro-F1 /
micro-F1 on the validation split of ``predict`` with the prior-matching shift
(:func:`~sklearn_dallmi.priors.prior_logit_shift` on the adapted network's
logits over the target texts). The model's own ``predict`` ("today"), the
true prior (an oracle, for reference only) and the source model's own
``predict`` are printed beside them.

Names in the table: ``geo(a, b)`` is the label-wise geometric mean of two
estimates; ``pooled c: a`` reads one labelling frequency shared by all
labels off the estimate ``a`` and the observed positives
(:func:`~sklearn_dallmi.priors.pooled_frequency_prior`), ``half-pooled: a``
moves each label halfway there (``pooling=0.5``), ``3/4-pooled: a`` three
quarters of the way, and ``EB-pooled: a`` as far as
:func:`evidence_pooled_prior` finds the labels' frequencies alike. A
stress test then thins
the observed positives of every other label to a fifth, so that labels
differ fivefold in how thoroughly they are marked (which the shared
frequency assumes away); only the estimators see the thinned labels, the
networks are the same. Then today's estimate scaled by a factor (does
predicting more, or fewer, positives than the estimated prior help F1?),
and per-label thresholds aimed at F1 instead of the prior: the expected F1
of today's probabilities, Lee and Liu's PU criterion, and (an oracle) the
F1-optimal threshold on the target texts' true labels. Last, the true and
estimated priors of the six most frequent labels::

    OMP_NUM_THREADS=1 python docs/benchmark/prior_probe.py --cache /tmp/prior_probe

The output first committed was measured at commit 22a3969, the training
recipe before the linear-probe start (3-layer encoder, random head, VPU's
``s / 2`` rule as "today"), to choose the estimator; the benchmark's own
``--tune`` runs then scored the chosen rule with the final recipe. The
committed output was then of commit 27c82d1 (the probe start, the class-prior
rule as "today"; the source model's logits read back through its
``proba_shift_``, which the first version did not need), and is now of
commit 399934e (the target stage at ``lr=2e-5``), with the rows
``half-pooled: source mean``, ``3/4-pooled`` (of the source mean and of
geo) and ``EB-pooled`` (:func:`evidence_pooled_prior`, an
evidence-weighted, empirical-Bayes pooling: each label pooled as far as
the labels' spread of frequencies allows) added; later the rows
``ranked`` (:func:`ranked_positives_prior`, the bound the marked positives'
ranks put on the prior, on the source model's or the adapted network's
logits) and their combinations with VPU and the half pooling, and the
table of :func:`ranked_by_count`.
"""

import argparse
import dataclasses
import hashlib
import json
import os
import time

import joblib
import numpy as np
from scipy.special import expit
from sklearn.metrics import f1_score

from sklearn_dallmi import priors
from sklearn_dallmi.benchmark.adaptation import (
    DOMAINS, Config, Runner, _subsample, truncated_encoder)
from sklearn_dallmi.datasets import hide_positives, load_disaster_messages

PAIRS = (("news", "direct"), ("direct", "news"))
KEEPS = (0.1, 0.5)


def collect(cache, seed=0):
    """Train (or load) the models of every cell and return their arrays."""
    import torch

    torch.set_num_threads(1)
    config = Config.full()
    # One folder per configuration, so that a changed benchmark retrains.
    text = json.dumps(dataclasses.asdict(config), sort_keys=True)
    cache = os.path.join(cache, "config-" + hashlib.sha1(text.encode()).hexdigest()[:10])
    runner = Runner(config, cache, progress=False)
    runner.encoder = truncated_encoder(config.layers, os.path.join(cache, "cache"))
    data = None
    cells = {}
    for source, target in PAIRS:
        for keep in KEEPS:
            path = os.path.join(cache, "cache", f"arrays-{source}-{target}-{keep}-seed{seed}.npz")
            if not os.path.exists(path):
                if data is None:
                    data = load_disaster_messages()
                _collect_cell(runner, data, source, target, keep, seed, path)
            cell = dict(np.load(path))
            # decision_function is -inf for a label without any positive,
            # source or target; predict leaves it at 0 whatever the shift.
            for name in ("logits", "logits_valid"):
                cell[name] = np.where(cell["n_positives"] > 0, cell[name], 0.0)
            cells[source, target, keep] = cell
    return cells


def _collect_cell(runner, data, source, target, keep, seed, path):
    config = runner.config
    # The splits of scale_quantile_probe.py: the source rows of the
    # benchmark, the target's train and validation splits.
    rng = np.random.default_rng([seed, 7])
    src = _subsample(np.random.default_rng([seed, DOMAINS.index(source)]),
                     (data.genre == source) & (data.split != "test"), config.n_source)
    tgt = _subsample(rng, (data.genre == target) & (data.split == "train"), config.n_target)
    val = _subsample(rng, (data.genre == target) & (data.split == "validation"), config.n_test)
    X_t, Y_t = data.texts[tgt].tolist(), data.Y[tgt]
    X_v, Y_v = data.texts[val].tolist(), data.Y[val]
    Y_p = hide_positives(Y_t, keep, random_state=seed)
    source_clf = runner._source_model(source, seed, data.texts[src].tolist(), data.Y[src])
    model_path = os.path.join(os.path.dirname(path),
                              f"adapted-{source}-{target}-{keep}-seed{seed}.joblib")
    if os.path.exists(model_path):
        clf = joblib.load(model_path)
    else:
        start = time.perf_counter()
        clf = runner._adapt(source_clf, X_t, Y_p, seed)
        print(f"adapted {source}->{target} keep={keep} in {time.perf_counter() - start:.0f} s",
              flush=True)
        joblib.dump(clf, model_path + ".tmp")
        os.replace(model_path + ".tmp", model_path)
    shift, source_shift = clf.proba_shift_, source_clf.proba_shift_
    np.savez(
        path + ".tmp.npz",
        Y_true=Y_t, Y_partial=Y_p, Y_valid=Y_v,
        source_rate=data.Y[src].mean(axis=0),
        # decision_function + proba_shift_ gives back the network's logits.
        source_logits=source_clf.decision_function(X_t) + source_shift,
        source_logits_valid=source_clf.decision_function(X_v) + source_shift,
        source_shift=source_shift,
        logits=clf.decision_function(X_t) + shift,
        logits_valid=clf.decision_function(X_v) + shift,
        proba_shift=shift, pu_labels=clf.pu_labels_, n_positives=clf.n_positives_,
    )
    os.replace(path + ".tmp.npz", path)


def estimators(cell, Y=None):
    """Name -> per-label prior, from what a fit sees (and the oracle).

    ``Y`` replaces the cell's partial labels (for the stress test).
    """
    Y = cell["Y_partial"] if Y is None else Y
    z = cell["logits"]
    p_src = expit(cell["source_logits"])
    rate = cell["source_rate"]
    # The source model scores -inf where it saw no positive.
    z_src = np.clip(cell["source_logits"], -30, 30)
    est = {
        "observed rate (lower bound)": priors.observed_positive_rate(Y),
        "source mean": priors.source_mean_prior(p_src, Y),
        "EM plain (no Y, eps=0)": priors.em_prior_shift(p_src, rate, eps=0),
        "EM": priors.em_prior_shift(p_src, rate, Y),
        "EM T=2": priors.em_prior_shift(p_src, rate, Y, temperature=2),
        "EM T=4": priors.em_prior_shift(p_src, rate, Y, temperature=4),
        "EM shrinkage=100": priors.em_prior_shift(p_src, rate, Y, shrinkage=100),
        "VPU q=1": priors.vpu_prior(z, Y, quantile=1.0),
        "VPU q=.99": priors.vpu_prior(z, Y, quantile=0.99),
        "VPU q=.5 of positives": priors.vpu_prior(z, Y, quantile=0.5, reference="positives"),
        "EN e1 source logits": priors.elkan_noto_prior(z_src, Y),
        "EN e1 adapted logits": priors.elkan_noto_prior(z, Y),
        "EN e3 adapted logits": priors.elkan_noto_prior(z, Y, estimator="e3"),
    }
    vpu = est["VPU q=.99"]
    est["min(EM, VPU)"] = np.minimum(est["EM"], vpu)
    est["geo(EM, VPU)"] = priors.geometric_mean_prior(est["EM"], vpu)
    geo = est["geo(source mean, VPU)"] = priors.geometric_mean_prior(est["source mean"], vpu)
    est["pooled c: source mean"] = priors.pooled_frequency_prior(Y, est["source mean"])
    est["pooled c: EM"] = priors.pooled_frequency_prior(Y, est["EM"])
    est["pooled c: VPU"] = priors.pooled_frequency_prior(Y, vpu)
    est["pooled c: geo"] = priors.pooled_frequency_prior(Y, geo)
    est["half-pooled: VPU"] = priors.pooled_frequency_prior(Y, vpu, pooling=0.5)
    est["half-pooled: geo"] = priors.pooled_frequency_prior(Y, geo, pooling=0.5)
    est["half-pooled: source mean"] = priors.pooled_frequency_prior(Y, est["source mean"],
                                                                    pooling=0.5)
    est["3/4-pooled: geo"] = priors.pooled_frequency_prior(Y, geo, pooling=0.75)
    est["3/4-pooled: source mean"] = priors.pooled_frequency_prior(Y, est["source mean"],
                                                                   pooling=0.75)
    est["EB-pooled: geo"] = evidence_pooled_prior(Y, geo)
    est["EB-pooled: source mean"] = evidence_pooled_prior(Y, est["source mean"])
    ranked = est["ranked: source logits"] = ranked_positives_prior(z_src, Y, est["source mean"])
    est["ranked: adapted logits"] = ranked_positives_prior(z, Y, est["source mean"])
    est["half-pooled: ranked"] = priors.pooled_frequency_prior(Y, ranked, pooling=0.5)
    ranked_geo = est["geo(ranked, VPU)"] = priors.geometric_mean_prior(ranked, vpu)
    est["half-pooled: geo(ranked, VPU)"] = priors.pooled_frequency_prior(Y, ranked_geo,
                                                                         pooling=0.5)
    est["TRUE prior (oracle)"] = cell["Y_true"].mean(axis=0)
    return est


def ranked_positives_prior(z, Y, fallback, min_share=0.5):
    """The tightest bound the marked positives' ranks put on the prior.

    Marked at random among the positives, the ``j`` highest-scored of a
    label's ``m`` marked positives estimate the share ``j / m`` of all its
    positives that score at least as high; the ``r_j`` texts that do hold
    at least that many positives, so ``prior <= r_j m / (n j)`` (the
    mixture-proportion bound of Scott, Blanchard and Handy, 2013, read off
    one ranking). The estimate is the least bound over the ``j`` with
    ``j / m >= min_share`` (fewer marked positives above the cut make the
    bound too noisy); a label without a marked positive takes ``fallback``.
    """
    n = len(z)
    prior = np.array(fallback, dtype=float)
    for label in np.flatnonzero((Y == 1).any(axis=0)):
        scores = z[:, label]
        marked = np.sort(scores[Y[:, label] == 1])[::-1]
        m = marked.size
        j = np.arange(1, m + 1)
        ranks = (scores[None, :] >= marked[:, None]).sum(axis=1)
        ok = j / m >= min_share
        prior[label] = np.min(ranks[ok] * m / (n * j[ok]))
    lower, upper = priors._bounds(Y)
    return np.clip(prior, lower, upper)


def evidence_pooled_prior(Y, prior, sigma2=0.25):
    """Each label pooled as far as the spread of the labels' frequencies allows.

    An empirical-Bayes pooling: label ``l``'s labelling frequency
    ``c_l = n_pos_l / (n prior_l)`` is read with the log variance
    ``v_l = sigma2 + 1 / n_pos_l`` (the first prior's error and the count's
    Poisson noise); the spread of ``log c_l`` around the pooled ``log c``
    beyond the mean ``v_l`` is the labels' true spread ``tau2``, and label
    ``l`` moves ``v_l / (v_l + tau2)`` of the way (in log space) to
    :func:`~sklearn_dallmi.priors.pooled_frequency_prior`'s estimate: all
    the way when the frequencies look shared, less when they do not.
    """
    lower, upper = priors._bounds(Y)
    n_pos = (Y == 1).sum(axis=0)
    used = (lower > 0) & (prior > 0)
    if not used.any():
        return np.clip(prior, lower, upper)
    c = min(lower[used].sum() / prior[used].sum(), 1.0)
    spread = np.log(lower[used] / prior[used]) - np.log(c)
    v = sigma2 + 1.0 / n_pos[used]
    tau2 = max(0.0, np.mean(spread ** 2) - np.mean(v))
    pooling = np.ones_like(prior)
    pooling[used] = v / (v + tau2)
    with np.errstate(divide="ignore"):
        mixed = np.exp((1 - pooling) * np.log(prior) + pooling * np.log(lower / c))
    return np.clip(np.where(prior > 0, mixed, lower / c), lower, upper)


def mixed_frequency(Y_partial, Y_true, seed=0):
    """Partial labels where every other label (by frequency) keeps a fifth of its positives.

    Labels then differ fivefold in the share of positives observed, which
    the shared-frequency estimators assume away. The network is the one
    trained on the cell's own partial labels: only the estimators see the
    thinned labels, a test of the estimators, not of training.
    """
    Y = Y_partial.copy()
    rng = np.random.default_rng(seed)
    for label in np.argsort(-Y_true.mean(axis=0))[1::2]:
        pos = np.flatnonzero(Y[:, label] == 1)
        keep = max(1, round(pos.size / 5)) if pos.size else 0
        Y[rng.choice(pos, pos.size - keep, replace=False), label] = -1
    return Y


def _f1(Y, pred):
    labels = np.flatnonzero(Y.any(axis=0))
    y, p = Y[:, labels], pred[:, labels]
    return (f1_score(y, p, average="macro", zero_division=0),
            f1_score(y, p, average="micro", zero_division=0))


def score(cell, prior):
    """Prior MAE, mean |log ratio|, macro-F1 and micro-F1 of one estimate."""
    truth = cell["Y_true"].mean(axis=0)
    n = len(cell["Y_true"])
    has = truth > 0
    mae = np.abs(prior - truth).mean()
    log_ratio = np.abs(np.log(np.maximum(prior[has], 0.5 / n) / truth[has])).mean()
    shift = priors.prior_logit_shift(cell["logits"], prior)
    pred = (cell["logits_valid"] >= shift) & (cell["n_positives"] > 0)
    return (mae, log_ratio) + _f1(cell["Y_valid"], pred.astype(int))


def table(cells, names=None, thin=False):
    rows = {}
    for key, cell in cells.items():
        Y = mixed_frequency(cell["Y_partial"], cell["Y_true"]) if thin else None
        for name, prior in estimators(cell, Y).items():
            if names is None or name in names:
                rows.setdefault(name, {})[key] = score(cell, prior)
        if thin:
            continue
        today = (cell["logits_valid"] - cell["proba_shift"] >= 0) & (cell["n_positives"] > 0)
        rows.setdefault("today: the model's predict", {})[key] = (np.nan, np.nan) + _f1(
            cell["Y_valid"], today.astype(int))
        source_pred = cell["source_logits_valid"] - cell["source_shift"] >= 0
        rows.setdefault("source model's predict", {})[key] = (np.nan, np.nan) + _f1(
            cell["Y_valid"], source_pred.astype(int))
    lines = []
    for keep in KEEPS:
        keys = [(s, t, keep) for s, t in PAIRS]
        head = " | ".join(f"{s[0]}->{t[0]}  MAE  logR maF1 miF1" for s, t, _ in keys)
        lines.append(f"keep={keep:<4} {'estimator':28} | {head} | mean  MAE maF1 miF1")
        for name, by_key in rows.items():
            vals = [by_key[k] for k in keys]
            cols = " | ".join("      " + " ".join(_fmt(v) for v in vs) for vs in vals)
            mean = np.mean(vals, axis=0)
            lines.append(f"{'':10} {name:28} | {cols} |     "
                         + " ".join(_fmt(mean[i]) for i in (0, 2, 3)))
        lines.append("")
    return "\n".join(lines)


def _fmt(value):
    return "  -  " if np.isnan(value) else f"{value:.3f}"[1:] if abs(value) < 1 else \
        f"{value:4.2f}"


def scaled(cells, name="half-pooled: geo", factors=(0.75, 1.0, 1.25, 1.5, 2.0)):
    """Macro-F1 / micro-F1 of one estimator's priors times each factor (plain and thinned)."""
    lines = [f"{name} times a factor: mean maF1 / miF1 over the two pairs"]
    for keep in KEEPS:
        for thin in (False, True):
            cases = [(cell, estimators(cell, mixed_frequency(cell["Y_partial"], cell["Y_true"]) if thin else None)[name])
                     for (_, _, k), cell in cells.items() if k == keep]
            parts = []
            for factor in factors:
                macro, micro = np.mean([score(cell, np.clip(prior * factor, 0, 1))[2:]
                                        for cell, prior in cases], axis=0)
                parts.append(f"x{factor:<4} {macro:.3f} / {micro:.3f}")
            lines.append(f"  keep={keep} {'stress' if thin else 'plain '}  " + "  ".join(parts))
    return "\n".join(lines) + "\n"


def ranked_by_count(cells, ks=(1, 5, 10, 20, 40)):
    """Macro-F1 / micro-F1 of the adapted logits' rank bound where a label has at least
    ``k`` marked positives, and of the rule ("half-pooled: geo") elsewhere."""
    lines = ["ranked: adapted logits for the labels with at least k marked positives, "
             "half-pooled: geo for the others: mean maF1 / miF1 over the two pairs"]
    for keep in KEEPS:
        for thin in (False, True):
            parts = []
            for k in ks:
                res = []
                for (_, _, kk), cell in cells.items():
                    if kk != keep:
                        continue
                    Y = mixed_frequency(cell["Y_partial"], cell["Y_true"]) if thin else cell["Y_partial"]
                    rule = estimators(cell, Y)["half-pooled: geo"]
                    ranked = ranked_positives_prior(cell["logits"], Y, rule)
                    res.append(score(cell, np.where((Y == 1).sum(axis=0) >= k, ranked, rule))[2:])
                parts.append("k={:<3} {:.3f} / {:.3f}".format(k, *np.mean(res, axis=0)))
            lines.append(f"  keep={keep} {'stress' if thin else 'plain '}  " + "  ".join(parts))
    return "\n".join(lines) + "\n"


def _cut(z, criterion, labels=None):
    """Per label, the logit of the k-th highest text, k maximising ``criterion``.

    ``criterion(label, order)`` scores predicting the top 1, 2, ... n texts
    (``order`` sorts the label's logits, highest first); a label outside
    ``labels`` gets ``inf`` (nothing predicted).
    """
    out = np.full(z.shape[1], np.inf)
    for label in range(z.shape[1]) if labels is None else labels:
        order = np.argsort(-z[:, label])
        out[label] = z[order[np.argmax(criterion(label, order))], label]
    return out


def _threshold_expected_f1(cell, Y, today):
    """The top-k with the highest expected F1, ``2 S_k / (k + S_n)``.

    ``S_k`` sums the k highest of today's probabilities, taken as calibrated.
    """
    z = cell["logits"]
    p = expit(z - today)
    k = np.arange(1, len(z) + 1)

    def expected_f1(label, order):
        top = np.cumsum(p[order, label])
        return 2 * top / (k + top[-1])

    return _cut(z, expected_f1)


def _threshold_lee_liu(cell, Y, today):
    """Lee and Liu's (2003) PU criterion, recall^2 / P(predicted positive).

    Proportional to precision x recall; the recall is that of the kept
    positives among the target texts (which the network was trained on).
    """
    z, marked = cell["logits"], Y == 1
    k = np.arange(1, len(z) + 1)
    return _cut(z, lambda label, order: (np.cumsum(marked[order, label])
                                         / marked[:, label].sum()) ** 2 / k,
                labels=np.flatnonzero(marked.any(axis=0)))


def _threshold_true_f1(cell, Y, today):
    """The F1-optimal threshold on the target texts' TRUE labels (oracle)."""
    z, T = cell["logits"], cell["Y_true"]
    k = np.arange(1, len(z) + 1)
    return _cut(z, lambda label, order: np.cumsum(T[order, label]) / (k + T[:, label].sum()))


THRESHOLDS = {
    "today (prior-matching)": lambda cell, Y, today: today,
    "expected F1 of today's proba": _threshold_expected_f1,
    "Lee-Liu recall^2/P(y=1)": _threshold_lee_liu,
    "F1-optimal on TRUE labels": _threshold_true_f1,
}


def thresholds(cells):
    """Macro-F1 / micro-F1 of per-label F1-oriented thresholds against today's."""
    lines = ["Per-label thresholds on the target texts' logits: mean maF1 / miF1 over the "
             "two pairs (validation)"]
    for keep in KEEPS:
        for thin in (False, True):
            scores = {name: [] for name in THRESHOLDS}
            for (_, _, k), cell in cells.items():
                if k != keep:
                    continue
                Y = mixed_frequency(cell["Y_partial"], cell["Y_true"]) if thin else cell["Y_partial"]
                today = priors.prior_logit_shift(
                    cell["logits"], estimators(cell, Y)["half-pooled: geo"])
                scored = cell["n_positives"] > 0
                for name, rule in THRESHOLDS.items():
                    pred = (cell["logits_valid"] >= rule(cell, Y, today)) & scored
                    scores[name].append(_f1(cell["Y_valid"], pred.astype(int)))
            parts = ["{} {:.3f} / {:.3f}".format(name, *np.mean(res, axis=0))
                     for name, res in scores.items()]
            lines.append(f"  keep={keep} {'stress' if thin else 'plain '}  " + " | ".join(parts))
    return "\n".join(lines) + "\n"


def per_label(cells, names, labels):
    """True and estimated priors of a few labels, per cell."""
    lines = []
    for key, cell in cells.items():
        est = estimators(cell)
        lines.append(f"{key[0]}->{key[1]} keep={key[2]}: " + "  ".join(
            f"{labels[i]}" for i in _frequent(cell)))
        for name in names:
            lines.append(f"  {name:28} " + "  ".join(
                f"{est[name][i]:.3f}" for i in _frequent(cell)))
    return "\n".join(lines)


def _frequent(cell, k=6):
    return np.argsort(-cell["Y_true"].mean(axis=0))[:k]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", default="/tmp/prior_probe")
    parser.add_argument("--collect-only", action="store_true")
    args = parser.parse_args()
    cells = collect(args.cache)
    if not args.collect_only:
        print("MAE: mean |estimate - true rate of the 800 target texts| over the 35 labels; "
              "logR: mean |log(estimate / true)| over the labels with a positive; maF1 / miF1: "
              "on the 500 validation texts, predict at the estimator's prior-matching shift.\n")
        print(table(cells))
        print("Stress test: every other label keeps a fifth of its kept positives "
              "(estimators only; same networks).\n")
        print(table(cells, names=["source mean", "VPU q=.99", "geo(source mean, VPU)",
                                  "pooled c: source mean", "pooled c: VPU", "pooled c: geo",
                                  "half-pooled: VPU", "half-pooled: geo",
                                  "half-pooled: source mean", "3/4-pooled: geo",
                                  "3/4-pooled: source mean", "EB-pooled: geo",
                                  "EB-pooled: source mean", "TRUE prior (oracle)"], thin=True))
        print(scaled(cells))
        print(ranked_by_count(cells))
        print(thresholds(cells))
        labels = load_disaster_messages().label_names
        print(per_label(cells, ["TRUE prior (oracle)", "source mean", "EM", "VPU q=.99",
                                "geo(source mean, VPU)", "pooled c: source mean",
                                "half-pooled: geo"], labels))
