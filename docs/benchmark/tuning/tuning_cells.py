"""The unfinished cells of the benchmark's tuning configuration, for the probe scripts here.

``Config.tuning()`` (news -> direct and direct -> news, the target's official
*train* texts, scored on its *validation* split) with the seeds and shares
asked for; each script's rows go to ``OUTPUT/NAME.csv``, and a cell found
there is not run again.
"""

import argparse
import collections
import csv
import os

from sklearn_dallmi.benchmark.adaptation import (Config, Runner, _disaster_messages, split_pair,
                                                 truncated_encoder)
from sklearn_dallmi.datasets import hide_positives

Cell = collections.namedtuple(
    "Cell",
    "pair keep seed source_model X_target Y_partial X_valid Y_valid X_source Y_source Y_target")


def parser(description):
    """The arguments every probe takes: ``--seeds``, ``--keeps`` and ``--output``."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--keeps", type=float, nargs="+", default=[0.1, 0.3, 0.5])
    p.add_argument("--output", required=True)
    return p


def tuning_cells(args, name):
    """The benchmark's ``Runner`` and the cells of ``args`` not yet in ``NAME.csv``.

    Yields ``(runner, cell)``; the source model is the benchmark's own,
    cached under ``args.output``.
    """
    config = Config.tuning()
    config.seeds, config.keeps = args.seeds, args.keeps
    runner = Runner(config, args.output, progress=False, methods=("dallmi",))
    runner.encoder = truncated_encoder(config.layers, os.path.join(args.output, "cache"))
    data = _disaster_messages()
    path = os.path.join(args.output, f"{name}.csv")
    done = set()
    if os.path.exists(path):
        with open(path) as f:
            done = {(r["pair"], float(r["keep"]), int(r["seed"])) for r in csv.DictReader(f)}
    for seed in config.seeds:
        for source, target in config.pairs:
            pair = f"{source}->{target}"
            src, tgt, val = split_pair(data, source, target, config, seed)
            source_model = None
            for keep in config.keeps:
                if (pair, keep, seed) in done:
                    continue
                if source_model is None:
                    source_model = runner._source_model(source, seed, data.texts[src].tolist(),
                                                        data.Y[src])
                yield runner, Cell(pair, keep, seed, source_model, data.texts[tgt].tolist(),
                                   hide_positives(data.Y[tgt], keep, random_state=seed),
                                   data.texts[val].tolist(), data.Y[val],
                                   data.texts[src].tolist(), data.Y[src], data.Y[tgt])


def append_row(args, name, row):
    """Append ``row`` to ``NAME.csv`` (after a header if the file is new) and print it."""
    path = os.path.join(args.output, f"{name}.csv")
    new = not os.path.exists(path)
    with open(path, "a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(row))
        if new:
            writer.writeheader()
        writer.writerow(row)
    print(row, flush=True)
