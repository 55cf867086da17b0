"""Per-label breakdown of one benchmark cell (source only, DALLMi, oracle).

Re-trains DALLMi and the oracle for one (pair, keep, seed) exactly as
``python -m sklearn_dallmi.benchmark`` does, reusing the source model cached
in the run's folder (trained if missing), and prints per label: the target
training positives, the positives kept, the test positives, AP and F1 of
each model, and DALLMi's and the oracle's predicted positive rate beside the
true rate; then the mean AP of the labels with one to three kept positives
and the head DALLMi's target stage started from (``stage_head_``).
With ``--figure``, it draws DALLMi's predicted positive rate against the
true one per label on the test texts, under VPU's rule (predict where
``Phi >= s / 2``, ``s`` the 0.99 quantile of ``Phi`` over the label's
positive and unknown training entries; the package's rule before the class
prior) and under the class-prior rule. Used for the analysis on the results
page (one thread, as each benchmark process has, to reproduce the cell)::

    OMP_NUM_THREADS=1 python docs/benchmark/per_label.py --output benchmark_results \
        "news->direct" 0.1 --figure docs/benchmark/calibration-news-direct-0.1.png
"""

import argparse

import numpy as np
from scipy.special import expit
from sklearn.metrics import average_precision_score, f1_score, precision_score, recall_score

from sklearn_dallmi.benchmark.adaptation import Config, Runner, split_pair, truncated_encoder
from sklearn_dallmi.datasets import hide_positives, load_disaster_messages


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pair", help="e.g. news->direct")
    parser.add_argument("keep", type=float, help="share of positives kept, e.g. 0.1")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default="benchmark_results",
                        help="folder of a full run (its cache holds the source models)")
    parser.add_argument("--figure", help="where to draw the predicted against the true "
                        "positive rates (PNG)")
    args = parser.parse_args()
    source, target = args.pair.split("->")
    config = Config.full()
    runner = Runner(config, args.output, progress=False)
    runner.encoder = truncated_encoder(config.layers, f"{args.output}/cache")
    data = load_disaster_messages()
    src, tgt, test = split_pair(data, source, target, config, args.seed)
    X_tgt, Y_tgt = data.texts[tgt].tolist(), data.Y[tgt]
    X_test, Y_test = data.texts[test].tolist(), data.Y[test]
    Y_part = hide_positives(Y_tgt, args.keep, random_state=args.seed)
    source_clf = runner._source_model(source, args.seed, data.texts[src].tolist(), data.Y[src])
    models = {"source": source_clf,
              "dallmi": runner._adapt(source_clf, X_tgt, Y_part, args.seed),
              "oracle": runner._adapt(source_clf, X_tgt, Y_tgt, args.seed)}
    out = {name: (clf.predict_proba(X_test), clf.predict(X_test)) for name, clf in models.items()}

    labels = np.flatnonzero(Y_test.any(axis=0))
    ap_per_label = {name: [] for name in models}
    print(f"{'label':24} {'tgt+':>5} {'kept':>4} {'test+':>5} | AP src dal ora | "
          "F1 src dal ora | rate dal ora true")
    for label in labels:
        y = Y_test[:, label]
        ap = [average_precision_score(y, out[m][0][:, label]) for m in models]
        for name, value in zip(models, ap):
            ap_per_label[name].append(value)
        f1 = [f1_score(y, out[m][1][:, label], zero_division=0) for m in models]
        rate = [out[m][1][:, label].mean() for m in ("dallmi", "oracle")] + [y.mean()]
        print(f"{data.label_names[label]:24} {int(Y_tgt[:, label].sum()):5d} "
              f"{int((Y_part[:, label] == 1).sum()):4d} {int(y.sum()):5d} | "
              + " ".join(f"{v:.2f}" for v in ap) + " | " + " ".join(f"{v:.2f}" for v in f1)
              + " | " + " ".join(f"{v:.3f}" for v in rate))
    kept = (Y_part[:, labels] == 1).sum(axis=0)
    scarce = (kept >= 1) & (kept <= 3)
    print(f"labels with 1-3 kept positives ({scarce.sum()} of {len(labels)}): mean AP "
          + ", ".join(f"{name} {np.mean(np.array(ap_per_label[name])[scarce]):.3f}"
                      for name in models))
    if args.figure:
        _figure(args.figure, models["dallmi"], X_tgt, Y_part, X_test, Y_test, labels, out)
    print(f"dallmi's head for the labels turning PU: {models['dallmi'].stage_head_}")
    for name in models:
        yt, yp = Y_test[:, labels], out[name][1][:, labels]
        print(f"{name}: macro AP {np.mean(ap_per_label[name]):.3f}"
              f", micro-F1 {f1_score(yt, yp, average='micro'):.3f}"
              f", micro precision {precision_score(yt, yp, average='micro'):.3f}"
              f", micro recall {recall_score(yt, yp, average='micro'):.3f}")


def _figure(path, clf, X_train, Y_train, X_test, Y_test, labels, out):
    """Predicted against true positive rates of DALLMi, VPU's rule and the prior rule."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    phi_train = expit(clf.decision_function(X_train) + clf.proba_shift_)
    phi_test = expit(clf.decision_function(X_test) + clf.proba_shift_)
    pu = labels[clf.pu_labels_[labels] & (Y_train[:, labels] == 1).any(axis=0)]
    scale = np.array([np.quantile(phi_train[Y_train[:, l] != 0, l], 0.99) for l in pu])
    true = Y_test[:, pu].mean(axis=0)
    rules = {"VPU's rule (Phi >= s / 2)": (phi_test[:, pu] >= scale / 2).mean(axis=0),
             "class-prior rule": out["dallmi"][1][:, pu].mean(axis=0)}
    fig, ax = plt.subplots(figsize=(5.2, 5))
    low = 1 / (2 * len(Y_test))
    for (name, rate), marker in zip(rules.items(), ("x", "o")):
        gap = np.mean(np.abs(np.log(np.maximum(rate, low) / np.maximum(true, low))))
        ax.scatter(np.maximum(true, low), np.maximum(rate, low), marker=marker,
                   label=f"{name}: mean |log ratio| {gap:.2f}")
    ax.plot([low, 1], [low, 1], color="grey", lw=1)
    ax.set(xscale="log", yscale="log", xlabel="true positive rate (test texts)",
           ylabel="predicted positive rate", title="DALLMi's decisions per PU label")
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
