"""Command line: ``python -m sklearn_dallmi.benchmark [speed] ...``."""

import argparse
import dataclasses
import json
import os
import sys


def _parser():
    p = argparse.ArgumentParser(
        prog="python -m sklearn_dallmi.benchmark",
        description="DALLMi domain-adaptation benchmark on Disaster Response Messages "
        "(default), the speed run ('speed') or the predict_proba memory run ('memory').",
    )
    p.add_argument("command", nargs="?", default="adaptation", choices=["adaptation", "speed", "memory"],
                   help="which benchmark to run (default: adaptation)")
    p.add_argument("--output", default="benchmark_results",
                   help="folder for results.csv, the figure and caches (default: %(default)s)")
    p.add_argument("--quick", action="store_true",
                   help="one pair (news->direct), a subsample, one seed: minutes on 2 CPU cores")
    p.add_argument("--seeds", type=int, nargs="+", help="override the seeds of the mode")
    p.add_argument("--pairs", nargs="+", metavar="SOURCE->TARGET",
                   help="override the pairs of the mode, e.g. news->direct")
    p.add_argument("--tune", action="store_true",
                   help="tuning run: the tuning pairs (news->direct, direct->news), seed 0, "
                   "scored on the target's validation split (never the test split)")
    p.add_argument("--keeps", type=float, nargs="+", help="override the shares kept")
    p.add_argument("--set", nargs="+", default=[], metavar="FIELD=VALUE",
                   help="override configuration fields, e.g. target_epochs=2 or "
                   "precision=float32 (the neural rows run in bf16 by default, in float32 "
                   "on a CPU that would emulate bf16)")
    p.add_argument("--param", nargs="+", default=[], metavar="NAME=VALUE",
                   help="estimator parameters for every neural row (tuning), e.g. probe_C=1")
    p.add_argument("--methods", nargs="+", help="run only these methods")
    p.add_argument("--n-jobs", type=int, default=1, metavar="N",
                   help="adaptation: processes running pairs and seeds side by side, each on "
                   "an equal share of the CPU threads (default: 1); see the results page for "
                   "what 2 bought on 2 CPU cores")
    p.add_argument("--device", default="auto", help="speed: torch device (default: auto)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return p


def _assignments(items):
    """``NAME=VALUE`` pairs, each value read as JSON when it parses, else as a string."""
    out = []
    for item in items:
        name, sep, text = item.partition("=")
        if not sep:
            raise ValueError(f"{item!r}: expected NAME=VALUE")
        try:
            out.append((name, json.loads(text)))
        except json.JSONDecodeError:
            out.append((name, text))
    return out


def main(argv=None):
    args = _parser().parse_args(argv)
    if args.command == "speed":
        from .speed import run_speed

        run_speed(args.output, device=args.device)
        return 0
    if args.command == "memory":
        from .memory import run_memory

        run_memory(output=args.output, cache_dir=os.path.join(args.output, "cache"))
        return 0

    from .adaptation import (ALL_PAIRS, EMULATED_BF16, METHODS, QUICK_METHODS, VARIANTS,
                             CachedModelMismatch, Config, Runner, bf16_is_emulated)
    from .peers import PEERS
    from .report import format_table, plot, versus_best

    config = Config.tuning() if args.tune else Config.quick() if args.quick else Config.full()
    try:
        settings = _assignments(args.set)
        for field, value in settings:
            if field not in {f.name for f in dataclasses.fields(Config)}:
                raise ValueError(f"--set {field}: no such configuration field")
            setattr(config, field, value)
        config.params.update(_assignments(args.param))
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    if (config.precision == "bf16" and "precision" not in dict(settings)
            and bf16_is_emulated()):
        config.precision = "float32"
        print(f"The neural rows run in float32: {EMULATED_BF16}. --set precision=bf16 "
              "runs them in bfloat16 all the same.", file=sys.stderr)
    if args.seeds:
        config.seeds = args.seeds
    if args.keeps:
        config.keeps = args.keeps
    if args.pairs:
        pairs = [tuple(p.split("->")) for p in args.pairs]
        unknown = [p for p in pairs if p not in ALL_PAIRS]
        if unknown:
            print(f"unknown pairs {unknown}; choose among "
                  f"{[f'{s}->{t}' for s, t in ALL_PAIRS]}", file=sys.stderr)
            return 2
        config.pairs = pairs
    try:
        known = METHODS + VARIANTS
        unknown = sorted(set(args.methods or ()) - set(known))
        if unknown:
            print(f"unknown methods {unknown}; choose among {list(known)}", file=sys.stderr)
            return 2
        methods = (tuple(m for m in known if m in args.methods) if args.methods
                   else QUICK_METHODS if args.quick else METHODS)
        if "dallmi_onnx_int8" in methods:
            from ..onnx_scoring import _import_onnxruntime

            try:
                _import_onnxruntime()
            except ImportError as exc:
                if args.methods:
                    print(f"dallmi_onnx_int8: {exc}", file=sys.stderr)
                    return 2
                print(f"dallmi_onnx_int8 left out: {exc}", file=sys.stderr)
                methods = tuple(m for m in methods if m != "dallmi_onnx_int8")
        if args.n_jobs < 1:
            raise ValueError(f"--n-jobs must be at least 1, got {args.n_jobs}")
        runner = Runner(config, args.output, progress=not args.no_progress, methods=methods,
                        n_jobs=args.n_jobs)
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    try:
        runner.run()
    except CachedModelMismatch as exc:
        print(exc, file=sys.stderr)
        return 2
    from .report import read_results

    rows = read_results(runner.results_path)
    print(format_table(rows, METHODS + VARIANTS))
    baselines = [m for m in METHODS if m not in ("dallmi", "oracle")]
    print("\nDALLMi minus the best of the other methods (oracle aside), per pair:\n")
    print(versus_best(rows, "dallmi", baselines))
    figure = os.path.join(args.output, "benchmark.png")
    plot(rows, METHODS, figure, peers=PEERS)
    print(f"\nresults: {runner.results_path}\nfigure:  {figure}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
