"""Tables and figure of the results page from a run's ``results.csv``.

Prints, in Markdown: the six-pair summary per share kept, macro AP and
macro-F1 per pair, and DALLMi minus the best peer per pair and share. Only
the seeds that have finished every pair, share and method are used (the
run's ``config.json`` beside ``results.csv`` says what a whole seed is), or,
before the first seed is whole, the pairs it has finished::

    python docs/benchmark/page_tables.py benchmark_results/results.csv \
        --figure docs/benchmark/benchmark.png
"""

import argparse
import json
import os
from collections import defaultdict

import numpy as np

from sklearn_dallmi.benchmark.adaptation import METHODS
from sklearn_dallmi.benchmark.peers import PEERS
from sklearn_dallmi.benchmark.report import format_markdown, plot, read_results, versus_best

PEER_ROWS = ("tfidf_logreg",) + PEERS


def finished(rows, config):
    """The (pair, seed) groups with a row for every share kept and method."""
    wanted = {(float(k), m) for k in config["keeps"] for m in METHODS}
    done = defaultdict(set)
    for r in rows:
        done[(r["pair"], r["seed"])].add((r["keep"], r["method"]))
    return {group for group, cells in done.items() if cells == wanted}


def per_pair(rows, metric):
    """Markdown tables of a metric, one per share kept: methods by pair."""
    values = defaultdict(list)
    for r in rows:
        values[(r["method"], r["keep"], r["pair"])].append(r[metric])
    pairs = sorted({r["pair"] for r in rows})
    out = []
    for keep in sorted({r["keep"] for r in rows}):
        out += [f"{keep:.0%} kept:", "",
                "| method | " + " | ".join(p.replace("->", " → ") for p in pairs) + " |",
                "|---|" + "---|" * len(pairs)]
        for method in METHODS:
            cells = [values.get((method, keep, p)) for p in pairs]
            if any(cells):
                name = f"**{method}**" if method == "dallmi" else method
                out.append(f"| {name} | " + " | ".join(
                    f"{np.mean(c):.3f}" if c else "" for c in cells) + " |")
        out.append("")
    return "\n".join(out).rstrip()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results")
    parser.add_argument("--figure", help="where to draw the figure (PNG)")
    args = parser.parse_args()
    rows = read_results(args.results)
    with open(os.path.join(os.path.dirname(os.path.abspath(args.results)), "config.json")) as f:
        config = json.load(f)
    groups = finished(rows, config)
    pairs = [f"{s}->{t}" for s, t in config["pairs"]]
    seeds = [s for s in config["seeds"] if all((p, s) in groups for p in pairs)]
    if not seeds:
        # No whole seed yet: the pairs the first seed has finished.
        seeds = config["seeds"][:1]
        pairs = [p for p in pairs if (p, seeds[0]) in groups]
        if not pairs:
            raise SystemExit(f"{args.results}: no pair has finished every cell yet")
    rows = [r for r in rows if r["seed"] in seeds and r["pair"] in pairs]
    print(f"seeds {seeds}, pairs {sorted({r['pair'] for r in rows})}, {len(rows)} cells\n")
    print(format_markdown(rows, METHODS))
    for metric in ("macro_ap", "macro_f1"):
        print(f"\n{metric} per pair (mean over the seeds)\n")
        print(per_pair(rows, metric))
    print("\nDALLMi minus the best peer\n")
    print(versus_best(rows, "dallmi", PEER_ROWS))
    print("\nDALLMi minus the best of every other row but the oracle\n")
    print(versus_best(rows, "dallmi", [m for m in METHODS if m not in ("dallmi", "oracle")]))
    if args.figure:
        plot(rows, METHODS, args.figure, peers=PEER_ROWS)


if __name__ == "__main__":
    main()
