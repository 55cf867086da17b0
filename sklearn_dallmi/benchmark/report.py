"""Tables and figures from ``results.csv``."""

import csv
import os
from collections import defaultdict

import numpy as np

METRICS = ("macro_ap", "macro_f1", "micro_f1", "binarized_ap")
_NAMES = {"macro_ap": "macro AP", "macro_f1": "macro-F1", "micro_f1": "micro-F1",
          "binarized_ap": "binarised AP"}


def read_results(path):
    """Rows of a ``results.csv`` with numbers parsed."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        r["keep"] = float(r["keep"])
        r["seed"] = int(r["seed"])
        for m in METRICS + ("fit_seconds",):
            r[m] = float(r[m])
    return rows


def summarize(rows):
    """Mean and std over seeds of the pair-averaged metrics.

    For each (method, keep) and seed, the metric is averaged over the pairs
    that seed has finished; the mean and standard deviation are then taken
    over seeds. Returns ``{(method, keep): {metric: (mean, std, n_seeds, n_pairs)}}``.
    """
    by_seed = defaultdict(list)
    for r in rows:
        by_seed[(r["method"], r["keep"], r["seed"])].append(r)
    out = defaultdict(dict)
    groups = defaultdict(list)
    for (method, keep, seed), rs in by_seed.items():
        groups[(method, keep)].append(rs)
    for key, per_seed in groups.items():
        for m in METRICS + ("fit_seconds",):
            values = [np.mean([r[m] for r in rs]) for rs in per_seed]
            n_pairs = max(len(rs) for rs in per_seed)
            out[key][m] = (float(np.mean(values)), float(np.std(values)), len(values), n_pairs)
    return dict(out)


def format_table(rows, methods):
    """A plain-text table: one line per method and keep, mean ± std over seeds."""
    summary = summarize(rows)
    keeps = sorted({k for _, k in summary})
    width = max([len("method")] + [len(m) for m in methods])
    header = f"{'method':<{width}} {'keep':>5} " + " ".join(f"{m:>15}" for m in METRICS) + \
        f" {'fit s':>7} {'seeds':>5} {'pairs':>5}"
    lines = [header, "-" * len(header)]
    for keep in keeps:
        for method in methods:
            s = summary.get((method, keep))
            if s is None:
                continue
            cells = " ".join(f"{s[m][0]:>7.3f} ± {s[m][1]:.3f}" for m in METRICS)
            lines.append(f"{method:<{width}} {keep:>5.1f} {cells} {s['fit_seconds'][0]:>7.0f} "
                         f"{s['macro_ap'][2]:>5d} {s['macro_ap'][3]:>5d}")
        lines.append("")
    return "\n".join(lines).rstrip()


def format_markdown(rows, methods):
    """Markdown tables, one per share kept: each method's metrics, mean ± std over seeds."""
    summary = summarize(rows)
    out = []
    for keep in sorted({k for _, k in summary}):
        out += [f"**{keep:.0%} of the target positives kept**", "",
                "| method | " + " | ".join(_NAMES[m] for m in METRICS) + " | fit s |",
                "|---|" + "---|" * (len(METRICS) + 1)]
        for method in methods:
            s = summary.get((method, keep))
            if s is not None:
                out.append(f"| {method} | " + " | ".join(
                    f"{s[m][0]:.3f} ± {s[m][1]:.3f}" for m in METRICS)
                    + f" | {s['fit_seconds'][0]:.0f} |")
        out.append("")
    return "\n".join(out).rstrip()


def versus_best(rows, method, others, metrics=("macro_ap", "macro_f1")):
    """Markdown table: ``method`` minus the best of ``others``, per pair and share kept.

    Each cell is the difference of the seed means and, in brackets, the
    best of ``others`` on that pair and share; the last column counts the
    pairs where ``method`` is at least as good.
    """
    cell = defaultdict(list)
    for r in rows:
        for m in metrics:
            cell[(r["method"], r["pair"], r["keep"], m)].append(r[m])
    pairs = sorted({r["pair"] for r in rows})
    keeps = sorted({r["keep"] for r in rows})
    out = ["| metric | kept | " + " | ".join(pairs) + " | wins |",
           "|---|---|" + "---|" * (len(pairs) + 1)]
    for m in metrics:
        for keep in keeps:
            cells, wins = [], 0
            for pair in pairs:
                ours = cell.get((method, pair, keep, m))
                best = max(((np.mean(v), o) for o in others
                            if (v := cell.get((o, pair, keep, m)))), default=None)
                if not ours or best is None:
                    cells.append("")
                    continue
                diff = np.mean(ours) - best[0]
                wins += diff >= 0
                cells.append(f"{diff:+.3f} ({best[1]})")
            out.append(f"| {m} | {keep:.0%} | " + " | ".join(cells) + f" | {wins}/{len(pairs)} |")
    return "\n".join(out)


def plot(rows, methods, path, peers=()):
    """Each metric against the share of positives kept, one line per method.

    DALLMi is drawn thick and black, the methods in ``peers`` dashed.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summary = summarize(rows)
    keeps = sorted({k for _, k in summary})
    fig, axes = plt.subplots(2, 2, figsize=(10, 9))
    axes = axes.ravel()
    for ax, metric in zip(axes, METRICS):
        for method in methods:
            pts = [(k, *summary[(method, k)][metric][:2]) for k in keeps if (method, k) in summary]
            if not pts:
                continue
            k, mean, std = map(np.array, zip(*pts))
            style = dict(lw=3, color="black", zorder=3) if method == "dallmi" else dict(
                lw=1.2, ls="--" if method in peers else "-")
            ax.errorbar(k, mean, yerr=std, marker="o", capsize=3, label=method, **style)
        ax.set_title(_NAMES[metric])
        ax.set_xlabel("share of target positives kept")
        ax.set_xticks(keeps)
        ax.grid(alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 4), fontsize=9,
               frameon=False)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
