"""Peers of the benchmark: what a practitioner would try instead of DALLMi.

Every peer takes the cell's labelled source texts (``Y_src`` in {0, 1}),
its partially labelled target training texts (``Y_part``: 1 for a kept
positive, -1 unknown) and the target test texts, and returns
``(proba, pred)`` for the test texts. The four embedding peers share frozen
sentence embeddings of the encoder (all its layers, mean pooling over the
non-padding tokens, L2-normalised, as the embedded MiniLM's
sentence-transformers configuration says), computed once per text set.

- ``embeddings_logreg_source``: one logistic regression per label
  (``class_weight="balanced"``) on the source alone. Setting: ``C``.
- ``embeddings_logreg``: the same on source plus target, ``-1`` read as 0.
  Setting: ``C``.
- ``pu_embeddings``: PU learning per label with pulearn, labels 1 / -1,
  logistic regressions as base estimators. ``kind``: ``"bagging"``
  (``BaggingPuClassifier``, ``n_estimators``, base ``class_weight``) or
  ``"elkanoto"`` (``ElkanotoPuClassifier``, ``hold_out_ratio``). How source
  rows enter, ``source_rows``: ``"all"`` (source positives are observed
  positives, source negatives join the unlabelled set, as if their labels
  were unknown), ``"positives"`` (source positives only: they are then
  separable from the unlabelled target texts by their domain alone, and
  the classifier learns the domain; it scored far lower) or ``"none"``
  (target texts only). Elkan-Noto's ``predict_proba`` estimates
  ``g(x) / c``, which exceeds 1; ``(0.5, 1 / c]`` is mapped linearly onto
  ``(0.5, 1]`` (strictly increasing, so AP is that of ``g``, and the same
  decisions as its ``predict``; clipping would tie the top of the ranking).
- ``da_embeddings``: unsupervised domain adaptation per label with skada
  (``make_da_pipeline(adapter, logistic regression)``), from the labelled
  source and the *unlabelled* target texts: the target's kept positives are
  not used (skada's pipelines mask every target label). ``adapter``:
  ``"coral"`` (``reg``: its covariance shrinkage), ``"density"`` (``reg``:
  the kernel bandwidth), ``"discriminator"`` (``reg``: the domain
  classifier's ``C``), ``"subspace"`` (``reg``: the number of components);
  ``C`` of the label classifiers. skada's default CORAL shrinkage
  ``"auto"`` yields NaN on these embeddings: a few MiniLM dimensions are
  constant and the Ledoit-Wolf estimate is singular.
- ``setfit``: SetFit's contrastive fine-tuning of the encoder (``layers``:
  None for all of them, or the benchmark's truncation) and a one-vs-rest
  head (``head``: SetFit's default logistic regression, or ``"balanced"``
  with ``C=head_C``), on source plus target with ``-1`` read as 0. Its
  default number of pairs takes hours on 2 CPU cores; ``max_steps`` steps of
  ``batch_size`` pairs keep a cell within DALLMi's fit time.

Decisions are each tool's own ``predict``. A label a peer cannot learn
(no positive, or no negative or unlabelled text, in its training set) gets
probability 0 and prediction 0.

``DEFAULTS`` holds the settings chosen by macro AP on the validation split
of the tuning pairs by ``docs/benchmark/peers_tuning.py``; its output is
``docs/benchmark/peers_tuning.txt``.
"""

import contextlib
import functools
import hashlib
import io
import os
import tempfile
import warnings

import numpy as np
import threadpoolctl
import torch
from sklearn.linear_model import LogisticRegression

__all__ = ["PEERS", "DEFAULTS", "frozen_embeddings", "run_peer"]

PEERS = ("embeddings_logreg_source", "embeddings_logreg", "pu_embeddings", "da_embeddings",
         "setfit")

DEFAULTS = {
    "embeddings_logreg_source": dict(C=0.1),
    "embeddings_logreg": dict(C=0.03),
    "pu_embeddings": dict(kind="bagging", C=1.0, class_weight=None, n_estimators=10,
                          hold_out_ratio=0.1, source_rows="all"),
    "da_embeddings": dict(adapter="coral", reg=0.5, C=0.1),
    "setfit": dict(max_steps=30, batch_size=16, head="default", head_C=0.1, body_lr=2e-5,
                   layers=None),
}
"""Each peer's settings, chosen by ``docs/benchmark/peers_tuning.py``.

SetFit's 30 steps scored best there (mean macro AP 0.317 against 0.316 for
40 steps, 0.31 with a balanced head and 0.30 for 80 steps); they were
added to that tuning after the benchmark had given SetFit 30 steps on a
test-split comparison (on the 18 cells of seed 0, 40 steps scored 0.010
macro AP below 30), which a peer's setting may use: a peer gets the
stronger of two settings it was run with.
"""

_INSTALL = 'pip install -e ".[benchmark]"'


def _require(module):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"The benchmark peer needs the package '{module}'; install the benchmark "
            f"extra with: {_INSTALL}"
        ) from exc


@functools.lru_cache(maxsize=2)
def _load(model_dir):
    from ..models import load_encoder, load_tokenizer

    encoder = load_encoder(model_dir)
    encoder.eval()
    return load_tokenizer(model_dir), encoder


def _texts_key(texts, model_dir, max_length):
    digest = hashlib.sha256(f"{os.path.realpath(model_dir)}\0{max_length}\0".encode())
    for text in texts:
        digest.update(text.encode("utf-8"))
        digest.update(b"\0")
    return digest.hexdigest()[:32]


def frozen_embeddings(texts, model_dir=None, max_length=64, batch_size=64, cache_dir=None):
    """Frozen sentence embeddings: mean pooling over tokens, L2-normalised.

    The texts are encoded in batches of similar length (sorted by token
    count) under :func:`torch.inference_mode`; the rows come back in the
    order of ``texts``.

    Parameters
    ----------
    texts : sequence of str
        The texts to encode.
    model_dir : str or None, default=None
        A Hugging Face encoder directory; None for the embedded MiniLM
        (:func:`sklearn_dallmi.models.default_model_path`).
    max_length : int, default=64
        Texts are truncated to this many tokens.
    batch_size : int, default=64
        Texts per forward pass.
    cache_dir : str or None, default=None
        If given, the embeddings are stored there as ``.npy`` files keyed by
        a hash of the encoder's path, ``max_length`` and the texts, and read
        back on the next call with the same texts.

    Returns
    -------
    embeddings : numpy.ndarray of float32, shape (n_texts, hidden_size)
        Unit-norm rows.
    """
    import torch

    from ..models import default_model_path

    texts = [str(t) for t in texts]
    model_dir = str(model_dir) if model_dir is not None else default_model_path()
    path = None
    if cache_dir is not None:
        os.makedirs(cache_dir, exist_ok=True)
        path = os.path.join(cache_dir, f"emb-{_texts_key(texts, model_dir, max_length)}.npy")
        if os.path.exists(path):
            return np.load(path)
    tokenizer, encoder = _load(model_dir)
    out = np.zeros((len(texts), encoder.config.hidden_size), dtype=np.float32)
    if texts:
        lengths = [len(ids) for ids in tokenizer(texts, truncation=True,
                                                  max_length=max_length)["input_ids"]]
        order = np.argsort(lengths, kind="stable")
        with torch.inference_mode():
            for start in range(0, len(texts), batch_size):
                rows = order[start:start + batch_size]
                batch = tokenizer([texts[i] for i in rows], padding=True, truncation=True,
                                  max_length=max_length, return_tensors="pt")
                hidden = encoder(input_ids=batch["input_ids"],
                                 attention_mask=batch["attention_mask"]).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                mean = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)
                out[rows] = torch.nn.functional.normalize(mean, dim=1).float().numpy()
    if path is not None:
        tmp = f"{path}.{os.getpid()}.tmp.npy"
        np.save(tmp, out)
        os.replace(tmp, path)
    return out


def _logreg(C, seed):
    return LogisticRegression(C=C, class_weight="balanced", max_iter=2000, random_state=seed)


def _per_label(Y, fit_predict, learnable):
    """Run ``fit_predict(label) -> (proba, pred)`` on learnable labels; 0 elsewhere."""
    return [fit_predict(label) if learnable[label] else None for label in range(Y.shape[1])]


def _stack(results, n_test):
    n_labels = len(results)
    proba = np.zeros((n_test, n_labels))
    pred = np.zeros((n_test, n_labels), dtype=int)
    for label, result in enumerate(results):
        if result is not None:
            proba[:, label], pred[:, label] = result
    return proba, pred


def _both_classes(Y):
    return (Y == 1).any(axis=0) & (Y != 1).any(axis=0)


def _logreg_peer(E_train, Y_train, E_test, C, seed):
    def fit_predict(label):
        model = _logreg(C, seed).fit(E_train, Y_train[:, label])
        return model.predict_proba(E_test)[:, 1], model.predict(E_test)

    return _stack(_per_label(Y_train, fit_predict, _both_classes(Y_train)), len(E_test))


def _elkanoto_proba(model, E):
    # Elkan-Noto's estimate g(x) / c lies in [0, 1 / c]. Clipping at 1 would
    # tie the top of the ranking; instead (0.5, 1 / c] is mapped linearly
    # onto (0.5, 1]: strictly increasing (AP unchanged) and the same
    # decisions as its predict (> 0.5).
    p = model.predict_proba(E)[:, 1]
    top = 1.0 / model.c
    if top <= 1.0:
        return p
    return np.where(p <= 0.5, p, 0.5 + 0.5 * (p - 0.5) / (top - 0.5))


def _pu_peer(E_src, Y_src, E_tgt, Y_part, E_test, kind, C, class_weight, n_estimators,
             hold_out_ratio, source_rows, seed):
    pulearn = _require("pulearn")
    if source_rows not in ("all", "positives", "none"):
        raise ValueError(f"source_rows must be 'all', 'positives' or 'none', got {source_rows!r}.")
    if kind not in ("bagging", "elkanoto"):
        raise ValueError(f"kind must be 'bagging' or 'elkanoto', got {kind!r}.")

    def training_set(label):
        y = np.where(Y_part[:, label] == 1, 1, -1)
        if source_rows == "none":
            return E_tgt, y
        y_src = np.where(Y_src[:, label] == 1, 1, -1)
        if source_rows == "positives":
            # Source negatives are not unlabelled target texts: left out.
            return (np.vstack([E_tgt, E_src[y_src == 1]]),
                    np.concatenate([y, y_src[y_src == 1]]))
        return np.vstack([E_tgt, E_src]), np.concatenate([y, y_src])

    has_positive = (Y_part == 1).any(axis=0) | ((source_rows != "none") & (Y_src == 1).any(axis=0))
    has_unlabelled = ((Y_part != 1).any(axis=0)
                      | ((source_rows == "all") & (Y_src != 1).any(axis=0)))

    def fit_predict(label):
        E, y = training_set(label)
        if kind == "bagging":
            model = pulearn.BaggingPuClassifier(
                estimator=LogisticRegression(C=C, class_weight=class_weight, max_iter=2000),
                n_estimators=n_estimators, oob_score=False, random_state=seed)
            model.fit(E, y)
            return model.predict_proba(E_test)[:, 1], model.predict(E_test).astype(int)
        # Elkan-Noto needs a calibrated P(s=1 | x): no class weights.
        model = pulearn.ElkanotoPuClassifier(
            estimator=LogisticRegression(C=C, max_iter=2000),
            hold_out_ratio=hold_out_ratio, random_state=seed)
        try:
            model.fit(E, y)
        except ValueError:
            # All observed positives fell into the hold-out set or none did:
            # the classifier or c cannot be estimated.
            return None
        return _elkanoto_proba(model, E_test), model.predict(E_test).astype(int)

    return _stack(_per_label(Y_part, fit_predict, has_positive & has_unlabelled), len(E_test))


def _adapter(skada, adapter, reg):
    if adapter == "coral":
        return skada.CORALAdapter(reg=reg)
    if adapter == "density":
        from sklearn.neighbors import KernelDensity

        return skada.DensityReweightAdapter(KernelDensity(bandwidth=reg))
    if adapter == "discriminator":
        return skada.DiscriminatorReweightAdapter(LogisticRegression(C=reg, max_iter=2000))
    if adapter == "subspace":
        return skada.SubspaceAlignmentAdapter(n_components=int(reg))
    raise ValueError("adapter must be 'coral', 'density', 'discriminator' or 'subspace', "
                     f"got {adapter!r}.")


def _import_skada():
    import sklearn

    # Importing skada switches on scikit-learn's metadata routing for the
    # whole process; keep it on only while a skada pipeline runs.
    routing = sklearn.get_config()["enable_metadata_routing"]
    try:
        return _require("skada")
    finally:
        sklearn.set_config(enable_metadata_routing=routing)


def _da_peer(E_src, Y_src, E_tgt, E_test, adapter, reg, C, seed):
    import sklearn

    skada = _import_skada()
    X, E_test = np.vstack([E_src, E_tgt]).astype(np.float64), E_test.astype(np.float64)
    # skada's convention: positive domain ids are sources, negative ones
    # targets; target labels are -1 (masked).
    sample_domain = np.concatenate([np.ones(len(E_src), int), -np.ones(len(E_tgt), int)])

    def fit_predict(label):
        y = np.concatenate([Y_src[:, label], -np.ones(len(E_tgt), int)])
        pipe = skada.make_da_pipeline(_adapter(skada, adapter, reg),
                                      _logreg(C, seed).set_fit_request(sample_weight=True))
        pipe.fit(X, y, sample_domain=sample_domain)
        return pipe.predict_proba(E_test)[:, 1], pipe.predict(E_test)

    with sklearn.config_context(enable_metadata_routing=True):
        return _stack(_per_label(Y_src, fit_predict, _both_classes(Y_src)), len(E_test))


@contextlib.contextmanager
def _quiet_setfit(setfit):
    # SetFit, sentence-transformers, transformers and datasets each log the
    # pairs, the weights being loaded and a summary dict printed on stdout.
    import datasets
    from transformers.utils import logging as hf_logging

    levels = setfit.logging.get_verbosity(), hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled(), datasets.is_progress_bar_enabled()
    setfit.logging.set_verbosity_error()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    datasets.disable_progress_bars()
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        setfit.logging.set_verbosity(levels[0])
        hf_logging.set_verbosity(levels[1])
        if bars[0]:
            hf_logging.enable_progress_bar()
        if bars[1]:
            datasets.enable_progress_bars()


def _setfit_peer(X_train, Y_train, X_test, model_dir, max_length, max_steps, batch_size, head,
                 head_C, body_lr, seed, precision):
    setfit = _require("setfit")
    _require("datasets")
    from datasets import Dataset
    from transformers.utils import logging as hf_logging

    learnable = _both_classes(Y_train)
    proba = np.zeros((len(X_test), Y_train.shape[1]))
    pred = np.zeros((len(X_test), Y_train.shape[1]), dtype=int)
    if not learnable.any():
        return proba, pred
    if head == "default":
        head_params = {}
    elif head == "balanced":
        head_params = dict(C=head_C, class_weight="balanced", max_iter=2000)
    else:
        raise ValueError(f"head must be 'default' or 'balanced', got {head!r}.")
    # SetFit's own ``use_amp`` is float16 autocast, which CPUs run slowly.
    kind = "cuda" if torch.cuda.is_available() else "cpu"  # where SetFit puts the model
    numerics = (torch.autocast(kind, dtype=torch.bfloat16) if precision == "bf16"
                else contextlib.nullcontext())
    with _quiet_setfit(setfit), tempfile.TemporaryDirectory() as tmp, numerics:
        model = setfit.SetFitModel.from_pretrained(
            model_dir, multi_target_strategy="one-vs-rest", head_params=head_params,
            local_files_only=True)
        args = setfit.TrainingArguments(
            output_dir=tmp, batch_size=batch_size, max_steps=max_steps,
            body_learning_rate=body_lr, max_length=max_length, seed=seed,
            show_progress_bar=False, report_to="none", save_strategy="no",
            logging_strategy="no", logging_first_step=False)
        train = Dataset.from_dict({"text": list(X_train),
                                   "label": Y_train[:, learnable].astype(int).tolist()})
        setfit.Trainer(model=model, args=args, train_dataset=train).train()
        # SetFitModel.predict_proba and .predict each encode the texts, then
        # call the head: encode once, call the head for both.
        embeddings = model.encode(list(X_test))
        proba[:, learnable] = np.asarray(model.model_head.predict_proba(embeddings))
        pred[:, learnable] = np.asarray(model.model_head.predict(embeddings))
    return proba, pred


def run_peer(name, X_src, Y_src, X_tgt, Y_part, X_test, seed=0, cache_dir=None, model_dir=None,
             max_length=64, precision="float32", **params):
    """Train one peer on a benchmark cell and score the target test texts.

    Parameters
    ----------
    name : str
        One of :data:`PEERS`.
    X_src : sequence of str
        Labelled source texts.
    Y_src : array-like of shape (n_src, n_labels)
        Source labels in {0, 1}.
    X_tgt : sequence of str
        Target training texts.
    Y_part : array-like of shape (n_tgt, n_labels)
        Target labels: 1 for a kept positive, -1 for unknown. Only the 1
        entries are ever used as positives: ``embeddings_logreg`` and
        ``setfit`` read every other entry as a negative, ``pu_embeddings``
        as unlabelled; the other peers do not read target labels.
    X_test : sequence of str
        Target test texts.
    seed : int, default=0
        Seed of every random choice (bagging, hold-out sets, SetFit).
    cache_dir : str or None, default=None
        Folder of the embedding cache (see :func:`frozen_embeddings`).
    model_dir : str or None, default=None
        Encoder directory; None for the embedded MiniLM (for ``setfit``,
        truncated to its ``layers`` setting unless that is None).
    max_length : int, default=64
        Texts are truncated to this many tokens.
    precision : {"float32", "bf16"}, default="float32"
        ``"bf16"`` runs SetFit's training and encoding under bfloat16
        autocast, as ``DALLMiClassifier(precision="bf16")`` does its own;
        the frozen-embedding peers always encode in float32 (seconds). The
        benchmark keeps SetFit in float32, its tool's default: in bf16 it
        scored lower.
    **params
        Settings overriding the peer's entry of :data:`DEFAULTS`.

    Returns
    -------
    proba : numpy.ndarray of float, shape (n_test, n_labels)
        Scores in [0, 1].
    pred : numpy.ndarray of int, shape (n_test, n_labels)
        Decisions in {0, 1} of each tool's own ``predict``.

    Raises
    ------
    ValueError
        If ``name`` is not a peer, or a setting is unknown.
    ImportError
        If the peer's package (pulearn, skada, setfit) is not installed.
    """
    if name not in PEERS:
        raise ValueError(f"Unknown peer {name!r}; the peers are {PEERS}.")
    unknown = set(params) - set(DEFAULTS[name])
    if unknown:
        raise ValueError(f"Unknown settings for {name}: {sorted(unknown)}; "
                         f"known: {sorted(DEFAULTS[name])}.")
    settings = {**DEFAULTS[name], **params}
    Y_src = np.asarray(Y_src).astype(int)
    Y_part = np.asarray(Y_part).astype(int)
    X_src, X_tgt, X_test = list(X_src), list(X_tgt), list(X_test)
    # scikit-learn's regressions here are small: beside torch's OpenMP
    # threads, NumPy's multi-threaded BLAS made pu_embeddings 7 times
    # slower (55 s a cell against 8 s) for the same output. torch's own
    # BLAS (MKL) is not affected.
    with threadpoolctl.threadpool_limits(1, user_api="blas"):
        return _run_peer(name, X_src, Y_src, X_tgt, Y_part, X_test, seed, cache_dir, model_dir,
                         max_length, precision, settings)


def _run_peer(name, X_src, Y_src, X_tgt, Y_part, X_test, seed, cache_dir, model_dir, max_length,
              precision, settings):
    if name == "setfit":
        from ..models import default_model_path
        from .adaptation import truncated_encoder

        with contextlib.ExitStack() as stack:
            if model_dir is None and settings["layers"] is None:
                model_dir = default_model_path()
            elif model_dir is None:
                folder = cache_dir or stack.enter_context(tempfile.TemporaryDirectory())
                model_dir = truncated_encoder(settings["layers"], folder)
            return _setfit_peer(X_src + X_tgt, np.vstack([Y_src, np.maximum(Y_part, 0)]),
                                X_test, str(model_dir), max_length, settings["max_steps"],
                                settings["batch_size"], settings["head"], settings["head_C"],
                                settings["body_lr"], seed, precision)

    def embed(texts):
        return frozen_embeddings(texts, model_dir=model_dir, max_length=max_length,
                                 cache_dir=cache_dir)

    E_src, E_test = embed(X_src), embed(X_test)
    if name == "embeddings_logreg_source":
        return _logreg_peer(E_src, Y_src, E_test, settings["C"], seed)
    E_tgt = embed(X_tgt)
    if name == "embeddings_logreg":
        return _logreg_peer(np.vstack([E_src, E_tgt]), np.vstack([Y_src, np.maximum(Y_part, 0)]),
                            E_test, settings["C"], seed)
    if name == "pu_embeddings":
        return _pu_peer(E_src, Y_src, E_tgt, Y_part, E_test, seed=seed, **settings)
    return _da_peer(E_src, Y_src, E_tgt, E_test, seed=seed, **settings)
