"""Peak memory and throughput of ``predict_proba`` as the number of texts grows.

``predict_proba`` tokenises and scores the texts in chunks (``_PREDICT_CHUNK``
in ``classifier.py``), so the memory it needs on top of what the process
already holds should not grow with the number of texts, apart from the
returned ``(n_texts, n_labels)`` array itself.

Each size is measured in a fresh child process (``python -m
sklearn_dallmi.benchmark.memory --child ...``), so that sizes do not share
allocator state. The child builds the estimator on a shortened copy of the
embedded encoder (:func:`~sklearn_dallmi.benchmark.adaptation.truncated_encoder`,
one layer by default), fits it on a few texts (``max_epochs=0`` by default:
memory and speed do not depend on the weights), generates ``n_texts`` short
synthetic texts, then, around ``predict_proba`` only:

- ``rss_before``: the resident set size just before the call;
- the peak RSS is reset (Linux: ``/proc/self/clear_refs``), so that the
  peak of loading and fitting does not hide the peak of the call;
- ``peak_rss``: ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` (and
  ``VmHWM``) after the call;
- ``peak_delta = peak_rss - rss_before`` and texts per second.

Command line (also runnable as a ``memory`` command of
``python -m sklearn_dallmi.benchmark`` once wired there, see :func:`main`)::

    OMP_NUM_THREADS=1 python -m sklearn_dallmi.benchmark.memory \\
        --sizes 10000 100000 --output benchmark_results
"""

import argparse
import datetime
import gc
import json
import os
import platform
import resource
import subprocess
import sys
import time

__all__ = ["measure_predict_memory", "run_memory", "synthetic_texts", "main"]

_WORDS = (
    "water food shelter help need people road flood fire storm rain wind house "
    "village city hospital medical aid please send urgent family children area "
    "damage power night day many no the a of and to in is for on we are"
).split()


def synthetic_texts(n_texts, seed=0, min_words=4, max_words=12):
    """Short texts of random common words, reproducibly.

    Parameters
    ----------
    n_texts : int
        Number of texts.
    seed : int, default=0
        Seed of the word draws.
    min_words, max_words : int, default=4 and 12
        Range of the number of words of a text (both ends included).

    Returns
    -------
    texts : list of str
        ``n_texts`` texts of ``min_words`` to ``max_words`` words.
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    lengths = rng.integers(min_words, max_words + 1, size=n_texts)
    words = np.asarray(_WORDS, dtype=object)
    picks = rng.integers(0, len(_WORDS), size=int(lengths.sum()))
    out, start = [], 0
    for n in lengths:
        out.append(" ".join(words[picks[start:start + n]]))
        start += n
    return out


def _status_kib(key):
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _maxrss_kib():
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # ru_maxrss is in KiB on Linux, in bytes on macOS.
    return peak // 1024 if sys.platform == "darwin" else peak


def _reset_peak():
    """Reset the peak RSS of this process (Linux >= 4.0); False if unsupported."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _child(args):
    """Runs in the child process: fit, then measure one ``predict_proba``."""
    import warnings

    import numpy as np
    import torch

    from ..classifier import DALLMiClassifier

    train = synthetic_texts(max(args.batch_size, 8), seed=1)
    Y = np.ones((len(train), args.n_labels), dtype=int)
    clf = DALLMiClassifier(
        args.model, max_epochs=args.max_epochs, batch_size=args.batch_size,
        max_length=args.max_length, device="cpu", random_state=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf.fit(train, Y)
    texts = synthetic_texts(args.n_texts, seed=2)
    clf.predict_proba(texts[:args.batch_size])  # warm-up: lazy allocations
    gc.collect()
    rss_before = _status_kib("VmRSS")
    if rss_before is None:  # no /proc: fall back to the peak so far
        rss_before = _maxrss_kib()
    reset = _reset_peak()
    start = time.perf_counter()
    proba = clf.predict_proba(texts)
    seconds = time.perf_counter() - start
    peak = max(_maxrss_kib(), _status_kib("VmHWM") or 0)
    result = {
        "n_texts": args.n_texts,
        "n_labels": args.n_labels,
        "max_length": args.max_length,
        "batch_size": args.batch_size,
        "rss_before_mib": rss_before / 1024,
        "peak_rss_mib": peak / 1024,
        "peak_delta_mib": (peak - rss_before) / 1024,
        "output_mib": proba.nbytes / 2**20,
        "peak_was_reset": reset,
        "seconds": seconds,
        "texts_per_second": args.n_texts / seconds,
        "torch_threads": torch.get_num_threads(),
    }
    print(json.dumps(result))


def measure_predict_memory(n_texts, layers=1, *, model=None, n_labels=35, max_length=64,
                           batch_size=32, max_epochs=0, cache_dir=None, timeout=None):
    """Peak memory and speed of ``predict_proba`` over ``n_texts`` texts.

    The measurement runs in a fresh child process (see the module's
    docstring); this process loads nothing.

    Parameters
    ----------
    n_texts : int
        Number of short synthetic texts (4 to 12 words) to score.
    layers : int, default=1
        Encoder layers kept from the embedded ``all-MiniLM-L6-v2``.
    model : str or None, default=None
        An encoder directory to use instead of the shortened embedded one.
    n_labels : int, default=35
        Number of labels (35 as in the Disaster Response Messages).
    max_length, batch_size : int
        As in :class:`~sklearn_dallmi.DALLMiClassifier`; inference batches
        hold ``2 * batch_size`` texts.
    max_epochs : int, default=0
        Training epochs on a handful of texts before measuring.
    cache_dir : str or None
        Where the shortened encoder is cached; default
        ``benchmark_results/cache``.
    timeout : float or None
        Seconds before the child is killed.

    Returns
    -------
    result : dict
        ``peak_delta_mib`` (peak RSS during the call minus the RSS before
        it), ``rss_before_mib``, ``peak_rss_mib``, ``output_mib`` (the size
        of the returned array), ``seconds``, ``texts_per_second``,
        ``torch_threads`` and the settings.
    """
    shortened = model is None
    if shortened:
        from .adaptation import truncated_encoder

        model = truncated_encoder(layers, cache_dir or os.path.join("benchmark_results", "cache"))
    cmd = [
        sys.executable, "-m", "sklearn_dallmi.benchmark.memory", "--child",
        "--n-texts", str(int(n_texts)), "--model", str(model), "--n-labels", str(n_labels),
        "--max-length", str(max_length), "--batch-size", str(batch_size),
        "--max-epochs", str(max_epochs),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(
            f"The memory measurement for {n_texts} texts failed "
            f"(exit code {proc.returncode}):\n{proc.stderr[-3000:]}"
        )
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["layers"] = layers if shortened else None
    result["model"] = str(model)
    return result


def run_memory(sizes=(10_000, 100_000), layers=1, output=None, **kwargs):
    """Measure every size, print a table and optionally write ``memory.json``.

    Parameters
    ----------
    sizes : sequence of int, default=(10_000, 100_000)
        Numbers of texts, each measured in its own child process.
    layers : int, default=1
        Encoder layers kept from the embedded MiniLM.
    output : str or None, default=None
        Folder for ``memory.json``; nothing is written when None.
    **kwargs
        Passed to :func:`measure_predict_memory`.

    Returns
    -------
    report : dict
        ``date``, ``machine``, ``cpu_count``, ``python`` and ``results``
        (one dict of :func:`measure_predict_memory` per size).
    """
    results = []
    print(f"{'texts':>9} {'rss before MiB':>15} {'peak delta MiB':>15} {'output MiB':>11} "
          f"{'texts/s':>9}")
    for n in sizes:
        r = measure_predict_memory(n, layers, **kwargs)
        results.append(r)
        print(f"{n:>9} {r['rss_before_mib']:>15.1f} {r['peak_delta_mib']:>15.1f} "
              f"{r['output_mib']:>11.1f} {r['texts_per_second']:>9.0f}", flush=True)
    report = {
        "date": datetime.date.today().isoformat(),
        "machine": platform.platform(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "results": results,
    }
    if output:
        os.makedirs(output, exist_ok=True)
        with open(os.path.join(output, "memory.json"), "w") as f:
            json.dump(report, f, indent=2)
    return report


def _parser():
    p = argparse.ArgumentParser(
        prog="python -m sklearn_dallmi.benchmark.memory",
        description="Peak RSS and throughput of predict_proba, one child process per size.",
    )
    p.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000],
                   help="numbers of texts (default: %(default)s)")
    p.add_argument("--layers", type=int, default=1,
                   help="encoder layers kept from the embedded MiniLM (default: %(default)s)")
    p.add_argument("--model", help="an encoder directory instead of the shortened MiniLM")
    p.add_argument("--n-labels", type=int, default=35)
    p.add_argument("--max-length", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--max-epochs", type=int, default=0)
    p.add_argument("--output", default="benchmark_results",
                   help="folder for memory.json and the encoder cache (default: %(default)s)")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--n-texts", type=int, help=argparse.SUPPRESS)
    return p


def main(argv=None):
    """Command line entry point.

    Parameters
    ----------
    argv : list of str or None, default=None
        Arguments; ``sys.argv[1:]`` when None.

    Returns
    -------
    status : int
        The exit status, 0.

    Notes
    -----
    To wire it as ``python -m sklearn_dallmi.benchmark memory``, add
    ``"memory"`` to the ``command`` choices in ``benchmark/__main__.py`` and
    dispatch ``from .memory import run_memory; run_memory(output=args.output,
    cache_dir=os.path.join(args.output, "cache"))``.
    """
    args = _parser().parse_args(argv)
    if args.child:
        _child(args)
        return 0
    run_memory(
        args.sizes, args.layers, output=args.output, model=args.model,
        n_labels=args.n_labels, max_length=args.max_length, batch_size=args.batch_size,
        max_epochs=args.max_epochs, cache_dir=os.path.join(args.output, "cache"),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
