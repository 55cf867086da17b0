"""The domain-adaptation benchmark on Disaster Response Messages.

For each directed pair of domains (source -> target), each share of target
positives kept and each seed, it trains a source model once and adapts it
with every method, then scores on the target's test split. Finished cells
are appended to ``results.csv`` as they end, so an interrupted run resumes
where it stopped.

Every neural row uses ``DALLMiClassifier``'s defaults (the ablation
``published_objective`` at its own best rate, ``PUBLISHED``); a
configuration only sets what the time budget dictates (encoder depth, the
depth fine-tuned, ``max_length``, data sizes, epochs, and ``precision``:
``"bf16"``, bfloat16 autocast for the neural rows on any device, or
``"float32"``; the command line takes float32 where bfloat16 would be
emulated, unless told otherwise, and a configuration asking for bfloat16
there gets a warning). The peers run in their tools' default float32:
SetFit under bf16 autocast scored 0.005 macro AP lower on the 19 test
cells of seed 0 compared (up to 0.016). ``split="validation"`` is for
tuning: the target's training texts come from its official *train* split
only and the scores from its *validation* split, never from the test
split; ``params`` then overrides estimator parameters for the variant
being measured.
"""

import copy
import csv
import dataclasses
import functools
import io
import json
import os
import shutil
import threading
import time
import warnings

import joblib
import numpy as np
import torch
from scipy.special import expit
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import make_pipeline

from .._validation import check_threshold
from ..classifier import DALLMiClassifier
from ..datasets import hide_positives, load_disaster_messages
from ..metrics import binarized_average_precision, macro_average_precision
from .peers import PEERS, run_peer

DOMAINS = ("news", "direct", "social")
ALL_PAIRS = tuple((s, t) for s in DOMAINS for t in DOMAINS if s != t)
NEURAL = ("source_only", "partial_bce", "dallmi", "published_objective", "oracle")
METHODS = NEURAL + ("tfidf_logreg",) + PEERS
VARIANTS = ("dallmi_onnx_int8",)
"""Rows of DALLMi scored another way: ``dallmi_onnx_int8`` is the same fitted
model with ``inference="onnx-int8"``; its ``fit_seconds`` are the seconds to
build the int8 model. Run on request (``--methods``) and in the quick mode."""
QUICK_METHODS = tuple(m for m in METHODS if m != "setfit") + VARIANTS
"""The quick mode leaves out SetFit, the one slow peer, and adds the int8 row."""
# The ablation's own parameters: the published objective at its best rate on
# the validation splits (1e-5; the recipe's 2e-5 costs it 0.003 to 0.004
# macro AP there), so that DALLMi is compared with the ablation at its best.
PUBLISHED = dict(objective="published", lr=1e-5)
# Rows that read no target label: scored once per pair and seed.
_KEEP_INDEPENDENT = ("source_only", "oracle", "embeddings_logreg_source", "da_embeddings")
COLUMNS = ("pair", "method", "keep", "seed", "macro_ap", "macro_f1", "micro_f1",
           "binarized_ap", "fit_seconds")


class CachedModelMismatch(ValueError):
    """A cached source model was fitted with other estimator parameters than the run's."""


@dataclasses.dataclass
class Config:
    """Everything that defines a run; stored beside the results."""

    pairs: list
    keeps: list
    seeds: list
    n_source: int
    n_target: int
    n_test: int
    layers: int
    frozen_layers: int
    max_length: int
    source_epochs: int
    target_epochs: int
    precision: str = "float32"
    split: str = "test"
    params: dict = dataclasses.field(default_factory=dict)

    @classmethod
    def quick(cls):
        return cls(pairs=[("news", "direct")], keeps=[0.1, 0.5], seeds=[0], n_source=800,
                   n_target=500, n_test=400, **_BUDGET)

    @classmethod
    def full(cls):
        return cls(pairs=list(ALL_PAIRS), keeps=[0.1, 0.3, 0.5], seeds=[0, 1, 2],
                   n_source=1200, n_target=800, n_test=500, **_BUDGET)

    @classmethod
    def tuning(cls):
        """The tuning pairs' validation splits, seed 0, the full sizes."""
        return dataclasses.replace(cls.full(), pairs=[("news", "direct"), ("direct", "news")],
                                   seeds=[0], split="validation")


_BUDGET = dict(layers=6, frozen_layers=3, max_length=64, source_epochs=0, target_epochs=1,
               precision="bf16")


def cpu_has_bf16_units():
    """Whether this CPU multiplies bfloat16 natively (AMX or AVX512-BF16).

    None when this torch build cannot tell. Without such units bfloat16
    is emulated, and many times slower than float32 (``EMULATED_BF16``).
    """
    probes = [getattr(torch.cpu, name, None)
              for name in ("_is_amx_tile_supported", "_is_avx512_bf16_supported")]
    if any(probe is None for probe in probes):
        return None
    return any(probe() for probe in probes)


def bf16_is_emulated():
    """Whether bfloat16 autocast would be emulated here: no CUDA, and a CPU
    known to lack bfloat16 units."""
    return not torch.cuda.is_available() and cpu_has_bf16_units() is False


EMULATED_BF16 = ("bfloat16 is emulated on a CPU without bfloat16 units (AMX or AVX512-BF16): "
                 "17 times slower than float32 per training step on a 2-core AVX2 EPYC")


def truncated_encoder(layers, cache_dir):
    """Directory of the embedded encoder keeping only its first ``layers`` layers.

    The embedded directory itself when ``layers`` is all of them; a copy
    keeps its sentence-transformers pooling files, so that it pools alike.
    """
    from transformers import AutoModel, AutoTokenizer

    from ..models import checkpoint_pooling, default_model_path, write_checkpoint_pooling

    source = default_model_path()
    model = AutoModel.from_pretrained(source)
    if layers >= model.config.num_hidden_layers:
        return source
    path = os.path.join(cache_dir, f"minilm-{layers}-layers")
    if os.path.isfile(os.path.join(path, "modules.json")):
        return path
    model.encoder.layer = model.encoder.layer[:layers]
    model.config.num_hidden_layers = layers
    tmp = f"{path}.{os.getpid()}.tmp"
    model.save_pretrained(tmp)
    AutoTokenizer.from_pretrained(source).save_pretrained(tmp)
    write_checkpoint_pooling(tmp, *checkpoint_pooling(source), model.config.hidden_size)
    shutil.rmtree(path, ignore_errors=True)
    os.replace(tmp, path)
    return path


def _subsample(rng, mask, n):
    rows = np.flatnonzero(mask)
    return np.sort(rng.choice(rows, min(n, rows.size), replace=False))


def split_pair(data, source, target, config, seed):
    """Row indices of the source train, target train and target evaluation sets.

    The evaluation set comes from the target's test split, or with
    ``config.split == "validation"`` from its validation split (the target's
    training texts then come from its train split only).
    """
    rng = np.random.default_rng([seed, DOMAINS.index(source), DOMAINS.index(target)])
    src = _subsample(np.random.default_rng([seed, DOMAINS.index(source)]),
                     (data.genre == source) & (data.split != "test"), config.n_source)
    train = data.split != "test" if config.split == "test" else data.split == "train"
    tgt = _subsample(rng, (data.genre == target) & train, config.n_target)
    test = _subsample(rng, (data.genre == target) & (data.split == config.split), config.n_test)
    return src, tgt, test


def evaluate(Y_true, proba, pred):
    """The four metrics, on the labels with a positive in the test split."""
    labels = np.flatnonzero(Y_true.any(axis=0))
    yt = Y_true[:, labels]
    return {
        "macro_ap": macro_average_precision(yt, proba[:, labels]),
        "macro_f1": f1_score(yt, pred[:, labels], average="macro", zero_division=0),
        "micro_f1": f1_score(yt, pred[:, labels], average="micro", zero_division=0),
        "binarized_ap": binarized_average_precision(yt, pred[:, labels]),
    }


def scores_and_decisions(clf, texts):
    """A fitted classifier's probabilities and ``predict``'s decisions, in one pass.

    Both in float64, whatever ``proba_dtype`` is: ``predict``'s rule
    (probabilities >= threshold) applied to the same pass over ``texts``.
    """
    proba = expit(clf.decision_function(texts))
    return proba, (proba >= check_threshold(clf.threshold, proba.shape[1])).astype(int)


class Runner:
    """Runs the cells of a configuration, appending results as they finish.

    With ``n_jobs > 1``, that many processes (joblib's) each run whole pairs
    and seeds (a source model with every share and method), on an equal
    share of the CPU threads.
    """

    def __init__(self, config, output, progress=True, methods=METHODS, n_jobs=1):
        self.config = config
        self.output = output
        self.progress = progress
        self.methods = methods
        self.n_jobs = n_jobs
        os.makedirs(os.path.join(output, "cache"), exist_ok=True)
        self.results_path = os.path.join(output, "results.csv")
        self._check_config()
        self.done = self._read_done()

    def _check_config(self):
        if self.config.precision not in ("float32", "bf16"):
            raise ValueError(f"precision={self.config.precision!r}: the benchmark runs "
                             "its neural rows in 'float32' or 'bf16'.")
        if self.config.precision == "bf16" and bf16_is_emulated():
            warnings.warn(f"precision='bf16': {EMULATED_BF16}; --set precision=float32 runs "
                          "the neural rows in float32.", stacklevel=2)
        path = os.path.join(self.output, "config.json")
        current = json.loads(json.dumps(dataclasses.asdict(self.config)))
        if os.path.exists(path):
            with open(path) as f:
                previous = json.load(f)
            # A field added since that run held its default there.
            defaults = {f.name: f.default for f in dataclasses.fields(Config)
                        if f.default is not dataclasses.MISSING}
            previous = {**defaults, **previous}
            if previous != current:
                differ = ", ".join(f"{name}={previous.get(name)!r} there, {value!r} here"
                                   for name, value in current.items()
                                   if previous.get(name) != value)
                raise ValueError(
                    f"{self.output} holds results of another configuration ({path}: "
                    f"{differ}); use another --output folder or delete it."
                )
        else:
            with open(path, "w") as f:
                json.dump(current, f, indent=2)

    def _read_done(self):
        if not os.path.exists(self.results_path):
            return {}
        with open(self.results_path, newline="") as f:
            return {(r["pair"], r["method"], float(r["keep"]), int(r["seed"])): r
                    for r in csv.DictReader(f)}

    def _write(self, row=None):
        """Append ``row`` to results.csv, after the header if the file is new.

        One write call per row, so that processes appending at once do not
        interleave; without a row, only the header of a new file.
        """
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=COLUMNS)
        if not os.path.exists(self.results_path):
            writer.writeheader()
        if row is not None:
            writer.writerow(row)
        with open(self.results_path, "a", newline="") as f:
            f.write(text.getvalue())
            f.flush()
            os.fsync(f.fileno())
        if row is not None:
            self.done[(row["pair"], row["method"], float(row["keep"]), int(row["seed"]))] = row

    def cells(self):
        c = self.config
        return [(s, t, keep, seed, m) for seed in c.seeds for s, t in c.pairs
                for keep in c.keeps for m in self.methods]

    def todo(self):
        return [cell for cell in self.cells()
                if (f"{cell[0]}->{cell[1]}", cell[4], cell[2], cell[3]) not in self.done]

    def _estimator(self, **params):
        return DALLMiClassifier(model=self.encoder, max_length=self.config.max_length,
                                frozen_layers=self.config.frozen_layers,
                                precision=self.config.precision,
                                **{**self.config.params, **params})

    def _source_path(self, source, seed):
        return os.path.join(self.output, "cache", f"source-{source}-seed{seed}.joblib")

    def _source_model(self, source, seed, texts, Y):
        path = self._source_path(source, seed)
        clf = self._estimator(max_epochs=self.config.source_epochs, random_state=seed)
        if os.path.exists(path):
            cached = joblib.load(path)
            # The target stage starts from a copy and keeps every parameter
            # it does not set: a source model fitted with other parameters
            # (a cache copied from another run) would change the rows. The
            # encoder's path is left out: it names the output folder or the
            # environment, and config.json covers the encoder of a folder.
            theirs = cached.get_params(deep=False)
            differ = [f"{name}={theirs[name]!r} there, {value!r} here"
                      for name, value in clf.get_params(deep=False).items()
                      if name != "model" and joblib.hash(theirs[name]) != joblib.hash(value)]
            if differ:
                raise CachedModelMismatch(
                    f"{path} was fitted with other parameters ({', '.join(differ)}); "
                    "delete it or use another --output folder.")
            return cached
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            clf.fit(texts, Y)
        clf.source_fit_seconds_ = time.perf_counter() - start
        tmp = f"{path}.{os.getpid()}.tmp"
        joblib.dump(clf, tmp)
        os.replace(tmp, path)
        return clf

    def _adapt(self, source_clf, texts, Y, seed, **params):
        """A copy of the source model fitted on the target; ``params`` are the
        row's own (a probe may also override ``max_epochs`` or
        ``random_state``), which a configuration's ``params`` (a tuning
        variant) override."""
        clf = copy.deepcopy(source_clf)
        clf.set_params(**{"warm_start": True, "max_epochs": self.config.target_epochs,
                          "random_state": seed + 1000, **params, **self.config.params})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return clf.fit(texts, Y)

    def _keep_independent(self, pair, method, seed):
        # The source model and the fully labelled target do not depend on
        # how many positives are kept: train and score them once.
        if method not in _KEEP_INDEPENDENT:
            return None
        for (p, m, _, s), row in self.done.items():
            if (p, m, s) == (pair, method, seed):
                return row
        return None

    def run(self):
        """Run every unfinished cell; return the rows of the whole configuration."""
        todo = self.todo()
        if not todo:
            return list(self.done.values())
        self.encoder = truncated_encoder(self.config.layers, os.path.join(self.output, "cache"))
        units = {}
        for source, target, keep, seed, method in todo:
            units.setdefault((source, target, seed), {}).setdefault(keep, []).append(method)
        bar = _progress(len(todo), self.progress)
        if self.n_jobs == 1 or len(units) == 1:
            for unit, groups in units.items():
                self._run_unit(unit, groups, bar)
        else:
            self._write()  # the header, before the processes append
            # The source models first, so that two pairs from one source do
            # not both fit it.
            sources = {}
            for (source, target, seed), groups in units.items():
                if any(m in NEURAL + VARIANTS for methods in groups.values() for m in methods):
                    sources.setdefault((source, seed), (source, target, seed))
            joblib.Parallel(n_jobs=self.n_jobs)(
                joblib.delayed(self._fit_source)(unit) for unit in sources.values())

            def n_rows():
                with open(self.results_path) as f:
                    return sum(1 for _ in f) - 1

            n_before = n_rows()
            stop = threading.Event()

            def follow():  # the processes' rows, as they land
                while not stop.wait(5):
                    bar.update(n_rows() - n_before - bar.n)

            thread = threading.Thread(target=follow, daemon=True)
            thread.start()
            try:
                joblib.Parallel(n_jobs=self.n_jobs)(
                    joblib.delayed(self._run_unit)(unit, groups) for unit, groups in units.items())
            finally:
                stop.set()
                thread.join()
            self.done = self._read_done()
            bar.update(n_rows() - n_before - bar.n)
        bar.close()
        return list(self.done.values())

    def _fit_source(self, unit):
        """Fit and cache the source model of a pair and seed, unless cached."""
        source, target, seed = unit
        if os.path.exists(self._source_path(source, seed)):
            return
        data = _disaster_messages()
        src, _, _ = split_pair(data, source, target, self.config, seed)
        self._source_model(source, seed, data.texts[src].tolist(), data.Y[src])

    def _run_unit(self, unit, groups, bar=None):
        """Every share and method of one pair and seed; the rows go to results.csv."""
        source, target, seed = unit
        data = _disaster_messages()
        bar = bar if bar is not None else _progress(0, False)
        for keep, methods in groups.items():
            self._run_group(data, source, target, keep, seed, methods, bar)

    def _run_group(self, data, source, target, keep, seed, methods, bar):
        pair = f"{source}->{target}"
        src, tgt, test = split_pair(data, source, target, self.config, seed)
        X_src, Y_src = data.texts[src].tolist(), data.Y[src]
        X_tgt, Y_tgt = data.texts[tgt].tolist(), data.Y[tgt]
        X_test, Y_test = data.texts[test].tolist(), data.Y[test]
        Y_part = hide_positives(Y_tgt, keep, random_state=seed)
        source_clf = dallmi_clf = None
        for method in methods:
            bar.set_description(f"{pair} keep={keep} seed={seed} {method}")
            shared = self._keep_independent(pair, method, seed)
            if shared is not None:
                self._write({**shared, "keep": keep})
                bar.update(1)
                continue
            start = time.perf_counter()
            if method == "tfidf_logreg":
                model = _tfidf_logreg(X_src + X_tgt, np.vstack([Y_src, np.maximum(Y_part, 0)]))
                fit_seconds = time.perf_counter() - start
                proba = model.predict_proba(X_test)
                pred = (proba >= 0.5).astype(int)
            elif method in PEERS:
                proba, pred = run_peer(method, X_src, Y_src, X_tgt, Y_part, X_test, seed=seed,
                                       cache_dir=os.path.join(self.output, "cache", "peers"),
                                       max_length=self.config.max_length)
                fit_seconds = time.perf_counter() - start
            else:
                if source_clf is None:
                    source_clf = self._source_model(source, seed, X_src, Y_src)
                start = time.perf_counter()
                if method == "source_only":
                    clf = source_clf
                elif method == "oracle":
                    clf = self._adapt(source_clf, X_tgt, Y_tgt, seed)
                elif method == "partial_bce":
                    clf = self._adapt(source_clf, X_tgt, np.maximum(Y_part, 0), seed)
                elif method == "dallmi":
                    clf = dallmi_clf = self._adapt(source_clf, X_tgt, Y_part, seed)
                elif method == "dallmi_onnx_int8":
                    clf = (dallmi_clf if dallmi_clf is not None
                           else self._adapt(source_clf, X_tgt, Y_part, seed))
                    start = time.perf_counter()
                    clf.set_params(inference="onnx-int8").predict_proba(X_test[:2])
                else:
                    clf = self._adapt(source_clf, X_tgt, Y_part, seed, **PUBLISHED)
                fit_seconds = time.perf_counter() - start
                if method == "source_only":
                    fit_seconds = source_clf.source_fit_seconds_
                proba, pred = scores_and_decisions(clf, X_test)
            row = {"pair": pair, "method": method, "keep": keep, "seed": seed,
                   **evaluate(Y_test, proba, pred), "fit_seconds": round(fit_seconds, 2)}
            self._write(row)
            bar.update(1)


@functools.lru_cache(maxsize=1)
def _disaster_messages():
    """The data set, read once per process."""
    return load_disaster_messages()


def _tfidf_logreg(texts, Y):
    keep = Y.any(axis=0) & ~Y.all(axis=0)
    model = make_pipeline(
        TfidfVectorizer(sublinear_tf=True, min_df=2, ngram_range=(1, 2)),
        OneVsRestClassifier(LogisticRegression(C=10.0, max_iter=1000, class_weight="balanced")),
    )
    model.fit(texts, Y[:, keep])
    return _MaskedModel(model, keep)


class _MaskedModel:
    """Scores 0 for labels the classical peer could not learn (one class)."""

    def __init__(self, model, keep):
        self.model, self.keep = model, keep

    def predict_proba(self, texts):
        proba = np.zeros((len(texts), self.keep.size))
        proba[:, self.keep] = self.model.predict_proba(texts)
        return proba


def _progress(total, enabled):
    from tqdm.auto import tqdm

    return tqdm(total=total, disable=not enabled, unit="cell", dynamic_ncols=True)
