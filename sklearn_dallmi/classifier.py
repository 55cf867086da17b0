"""The public estimator: :class:`DALLMiClassifier`."""

import copy
import itertools
import numbers
import os
import warnings
from collections.abc import Iterable, Sized

import numpy as np
import torch
from scipy.special import expit
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from ._validation import check_labels, check_texts, check_threshold
from .loss import DALLMiLoss
from .metrics import macro_average_precision
from .models import load_encoder, load_tokenizer, resolve_model
from .module import EncoderClassifier
from .net import DALLMiNet, TokenizedDataset, _collective_device, distributed_context
from .persistence import load_head_if_compatible
from .text import tokenize

__all__ = ["DALLMiClassifier"]

_PREDICT_CHUNK = 8192


def _text_chunks(X, chunk_size, name="X"):
    """Yield ``(start, texts)`` chunks of an iterable of texts, checked.

    Only ``chunk_size`` texts are held at a time, so a generator over a file
    of any size is streamed. Errors name the global index of a bad entry.
    """
    if isinstance(X, (str, bytes)):
        raise ValueError(
            f"{name} must be a sequence of texts, got a single string; wrap it in a list."
        )
    if hasattr(X, "ndim") and getattr(X, "ndim") != 1:
        raise ValueError(
            f"{name} must be one-dimensional (one text per sample), got shape "
            f"{getattr(X, 'shape', None)}; select the text column, e.g. df['text']."
        )
    if isinstance(X, dict) or not isinstance(X, Iterable):
        raise ValueError(f"{name} must be a sequence of texts, got {type(X).__name__}.")
    # Arrays and Series are already in memory: tolist() gives plain str
    # (numpy) and the same missing-value objects as check_texts sees (pandas).
    iterator = iter(X.tolist() if hasattr(X, "tolist") else X)
    start = 0
    while True:
        chunk = list(itertools.islice(iterator, chunk_size))
        if not chunk:
            break
        for i, text in enumerate(chunk):
            if not isinstance(text, str):
                raise ValueError(
                    f"{name}[{start + i}] is {type(text).__name__} ({text!r:.40}), "
                    "not a string."
                )
        yield start, chunk
        start += len(chunk)
    if start == 0:
        raise ValueError(f"{name} is empty: at least one text is required.")


def _resolve_device(device):
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(
            f"device={device!r} but CUDA is not available here; use device='auto' or 'cpu'."
        )
    return device


class DALLMiClassifier(ClassifierMixin, BaseEstimator):
    """Multi-label text classifier trained from partial positive labels.

    Fine-tunes a BERT-family encoder with DALLMi (Betianu et al., PAKDD
    2024): a per-label variational positive-unlabeled loss, MixUp on word
    embeddings and label-balanced batches. Labels whose column holds no
    ``-1`` are trained with plain binary cross-entropy, so source-domain
    (fully labelled) and target-domain (partially labelled) rows can be
    fitted together or one after the other.

    Parameters
    ----------
    model : None, str or os.PathLike, default=None
        The encoder: None for the embedded ``all-MiniLM-L6-v2`` (offline), a
        local Hugging Face model directory, or a hub name (only online).
    max_length : int, default=128
        Texts are truncated to this many tokens.
    batch_size : int, default=32
        Training batch size, label-balanced rows included; inference uses
        twice as many.
    max_epochs : int, default=3
        Epochs of ``fit``; ``partial_fit`` trains one.
    lr : float, default=5e-5
        AdamW learning rate of the encoder.
    head_lr : float or None, default=None
        Learning rate of the linear head; None uses ``lr``. A freshly
        initialised head on many labels learns faster at a higher rate than
        the pretrained encoder tolerates.
    weight_decay : float, default=0.01
        AdamW weight decay.
    mixup_alpha : float, default=0.3
        The mixing weight of MixUp follows ``Beta(mixup_alpha, mixup_alpha)``.
    mixup_weight : float, default=0.1
        Weight ``lambda`` of the MixUp term; 0 switches MixUp (and its extra
        forward pass) off.
    positive_fraction : float, default=0.25
        Share ``rho`` of each batch drawn label-balanced (one observed
        positive per label in turn), in ``[0, 1)``.
    pooling : {"mean", "cls"}, default="mean"
        How token states become one vector.
    dropout : float, default=0.1
        Dropout before the linear head.
    scale_quantile : float, default=0.99
        For each PU label, the quantile of the network's output over the
        label's positive and unknown training entries that is taken as the
        probability scale ``s`` (VPU uses the maximum); see Notes.
    objective : {"dallmi", "published"}, default="dallmi"
        ``"published"`` is the authors' published norm loss with a MixUp
        term that carries no gradient; it exists as an ablation anchor.
    threshold : float or array-like of shape (n_labels,), default=0.5
        Decision threshold of ``predict`` on ``predict_proba``.
    proba_dtype : {"float64", "float32", "float16"}, default="float64"
        Floating-point type of the array returned by ``predict_proba``. For
        millions of texts, ``"float16"`` divides the size of the result by
        four (about three significant digits; values within about 5e-4 of 1
        round to 1). ``decision_function`` stays float64.
    device : str, default="auto"
        ``"auto"`` takes CUDA when available, else the CPU; or any torch
        device string. On CUDA the forward passes run under bf16 autocast
        and batches are copied from pinned memory without blocking.
    compile : bool, default=False
        Run the encoder's forward passes through ``torch.compile``. Worth it
        on a GPU for long fits; the first steps pay the compilation (tens of
        seconds) and inputs of new lengths may trigger recompilations.
    random_state : int, numpy.random.RandomState or None, default=None
        Seeds the head's initialisation, dropout, the batch sampler and
        MixUp. With an int and the CPU, results are reproducible.
    verbose : int, default=0
        0 silent, 1 a line per epoch, 2 also a progress bar.
    warm_start : bool, default=False
        If true, ``fit`` continues training the fitted network instead of
        starting from the encoder again.

    Attributes
    ----------
    classes_ : numpy.ndarray of shape (n_labels, 2) or (2,)
        For a 2-D ``y``: one row ``[0, 1]`` per label (the layout that
        scikit-learn's scorers and ``cross_val_predict`` read as
        multi-label). For a 1-D ``y``: ``array([0, 1])``.
    n_labels_ : int
        Number of labels ``L``.
    pu_labels_ : numpy.ndarray of shape (n_labels,), dtype bool
        Labels trained in PU mode by the last call to ``fit`` or
        ``partial_fit`` (their column held a ``-1``).
    proba_shift_ : numpy.ndarray of shape (n_labels,)
        Subtracted from the logits before the sigmoid of ``predict_proba``;
        zero for supervised labels.
    n_positives_ : numpy.ndarray of shape (n_labels,)
        Observed positives seen in training, summed over calls.
    n_epochs_ : int
        Epochs trained so far.
    net_ : skorch.NeuralNet
        The trained network.
    tokenizer_ : transformers.PreTrainedTokenizerBase
    history_ : skorch.History
        Per-epoch training log, with the loss terms ``train_variational``,
        ``train_mixup`` and ``train_bce``.
    device_ : str
        The device used.

    See Also
    --------
    sklearn_dallmi.metrics.macro_average_precision : The metric of ``score``.

    Notes
    -----
    The label matrix ``y`` holds ``1`` (observed positive), ``0`` (known
    negative) and ``-1`` (unknown). A label whose column holds a ``-1`` is
    trained with the variational loss over its positives against all its
    positive and unknown entries, plus MixUp, plus BCE on its known
    negatives; other labels with BCE.

    The variational loss makes the output ``Phi`` proportional to the
    posterior, not equal to it. ``predict_proba`` returns
    ``sigmoid(z - logit(s / 2))`` for a PU label, a strictly increasing map
    that puts 0.5 where ``Phi = s / 2``, which is VPU's decision rule
    ``Phi / s >= 0.5`` without clipping (ties would hurt rankings).

    References
    ----------
    .. [1] Betianu, Malan, Aldinucci, Birke, Chen. "DALLMi: Domain Adaption
       for LLM-based Multi-label Classifier." PAKDD 2024, arXiv:2405.01883.
    .. [2] Chen, Liu, Wang, Zhao, Wu. "A Variational Approach for Learning
       from Positive and Unlabeled Data." NeurIPS 2020.

    Examples
    --------
    >>> from sklearn_dallmi import DALLMiClassifier
    >>> texts = ["need water", "roads flooded", "thank you", "water and food"]
    >>> y = [[1, -1], [-1, 1], [0, 0], [-1, -1]]
    >>> clf = DALLMiClassifier(max_epochs=1, random_state=0)  # doctest: +SKIP
    >>> clf.fit(texts, y).predict_proba(["no water"]).shape  # doctest: +SKIP
    (1, 2)
    """

    _parameter_constraints = {
        "model": [None, str, os.PathLike],
        "max_length": [Interval(numbers.Integral, 2, None, closed="left")],
        "batch_size": [Interval(numbers.Integral, 2, None, closed="left")],
        "max_epochs": [Interval(numbers.Integral, 0, None, closed="left")],
        "lr": [Interval(numbers.Real, 0, None, closed="neither")],
        "head_lr": [None, Interval(numbers.Real, 0, None, closed="neither")],
        "weight_decay": [Interval(numbers.Real, 0, None, closed="left")],
        "mixup_alpha": [Interval(numbers.Real, 0, None, closed="neither")],
        "mixup_weight": [Interval(numbers.Real, 0, None, closed="left")],
        "positive_fraction": [Interval(numbers.Real, 0, 1, closed="left")],
        "pooling": [StrOptions({"mean", "cls"})],
        "dropout": [Interval(numbers.Real, 0, 1, closed="left")],
        "scale_quantile": [Interval(numbers.Real, 0, 1, closed="right")],
        "objective": [StrOptions({"dallmi", "published"})],
        "threshold": [Interval(numbers.Real, 0, 1, closed="both"), "array-like"],
        "proba_dtype": [StrOptions({"float64", "float32", "float16"})],
        "device": [str],
        "compile": ["boolean"],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
    }

    def __init__(
        self,
        model=None,
        *,
        max_length=128,
        batch_size=32,
        max_epochs=3,
        lr=5e-5,
        head_lr=None,
        weight_decay=0.01,
        mixup_alpha=0.3,
        mixup_weight=0.1,
        positive_fraction=0.25,
        pooling="mean",
        dropout=0.1,
        scale_quantile=0.99,
        objective="dallmi",
        threshold=0.5,
        proba_dtype="float64",
        device="auto",
        compile=False,
        random_state=None,
        verbose=0,
        warm_start=False,
    ):
        self.model = model
        self.max_length = max_length
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.lr = lr
        self.head_lr = head_lr
        self.weight_decay = weight_decay
        self.mixup_alpha = mixup_alpha
        self.mixup_weight = mixup_weight
        self.positive_fraction = positive_fraction
        self.pooling = pooling
        self.dropout = dropout
        self.scale_quantile = scale_quantile
        self.objective = objective
        self.threshold = threshold
        self.proba_dtype = proba_dtype
        self.device = device
        self.compile = compile
        self.random_state = random_state
        self.verbose = verbose
        self.warm_start = warm_start

    # ------------------------------------------------------------------ fit

    def fit(self, X, y):
        """Train on texts and a label matrix in ``{1, 0, -1}``.

        Parameters
        ----------
        X : sequence of str of length n_samples
            Texts (a list, a 1-D array or a pandas Series).
        y : array-like of shape (n_samples, n_labels) or (n_samples,)
            ``1`` observed positive, ``0`` known negative, ``-1`` unknown.

        Returns
        -------
        self : DALLMiClassifier
            The fitted estimator.
        """
        self._validate_params()
        texts = check_texts(X)
        Y, binary = check_labels(y, len(texts))
        continuing = self.warm_start and hasattr(self, "net_")
        if continuing:
            self._check_n_labels(Y, binary)
        return self._train(texts, Y, binary, self.max_epochs, continuing)

    def partial_fit(self, X, y):
        """Train one more epoch, starting from the fitted model if there is one.

        Typical use: ``fit`` on the source domain, then ``partial_fit`` on
        the partially labelled target domain. The label modes (PU or
        supervised) are decided from the ``y`` of this call.

        Parameters
        ----------
        X : sequence of str of length n_samples
            Texts (a list, a 1-D array or a pandas Series).
        y : array-like of shape (n_samples, n_labels) or (n_samples,)
            ``1`` observed positive, ``0`` known negative, ``-1`` unknown.
            Must have as many labels as the fitted model.

        Returns
        -------
        self : DALLMiClassifier
            The fitted estimator.
        """
        self._validate_params()
        texts = check_texts(X)
        Y, binary = check_labels(y, len(texts))
        continuing = hasattr(self, "net_")
        if continuing:
            self._check_n_labels(Y, binary)
        return self._train(texts, Y, binary, 1, continuing)

    def _check_n_labels(self, Y, binary):
        if Y.shape[1] != self.n_labels_ or binary != self._binary:
            expected = "a 1-D y" if self._binary else f"{self.n_labels_} label columns"
            got = "a 1-D y" if binary else f"{Y.shape[1]} label columns"
            raise ValueError(f"y has {got}, but the fitted model has {expected}.")

    def _seed(self, n_epochs_done):
        rs = self.random_state
        if rs is None:
            base = int(np.random.randint(2**31 - 1))
        elif isinstance(rs, numbers.Integral):
            base = int(rs)
        else:
            base = int(rs.randint(2**31 - 1))
        if distributed_context() is not None and not isinstance(rs, numbers.Integral):
            # Every process must draw the same batches: take rank 0's seed.
            shared = torch.tensor([base], dtype=torch.int64)
            shared = shared.to(_collective_device(_resolve_device(self.device)))
            torch.distributed.broadcast(shared, src=0)
            base = int(shared.item())
        return int(np.random.SeedSequence([base, n_epochs_done]).generate_state(1)[0])

    def _build_net(self, name_or_path, n_labels, seed, device):
        tokenizer = load_tokenizer(name_or_path)
        if tokenizer.pad_token_id is None:
            raise ValueError(f"The tokenizer of {name_or_path!r} has no padding token.")
        encoder = load_encoder(name_or_path)
        limits = [getattr(encoder.config, "max_position_embeddings", None),
                  getattr(tokenizer, "model_max_length", None)]
        # Tokenizers without a known limit report a huge sentinel value.
        limits = [v for v in limits if v is not None and v < 1_000_000]
        limit = min(limits) if limits else None
        if limit is not None and self.max_length > limit:
            raise ValueError(
                f"max_length={self.max_length} exceeds the {limit} positions of the "
                f"encoder {name_or_path!r}; set max_length <= {limit}."
            )
        module = EncoderClassifier(encoder, n_labels, pooling=self.pooling, dropout=self.dropout)
        load_head_if_compatible(module, name_or_path)
        callbacks = []
        rank = (distributed_context() or (0, 1))[0]
        verbose = self.verbose if rank == 0 else 0  # one epoch table, not one per process
        if verbose >= 2:
            from skorch.callbacks import ProgressBar

            callbacks.append(("progress_bar", ProgressBar()))
        net = DALLMiNet(
            module,
            DALLMiLoss(n_labels, mixup_weight=self.mixup_weight, objective=self.objective),
            pad_id=tokenizer.pad_token_id,
            mixup_alpha=self.mixup_alpha,
            positive_fraction=self.positive_fraction,
            seed=seed,
            compile_forward=self.compile,
            optimizer=torch.optim.AdamW,
            optimizer__weight_decay=self.weight_decay,
            optimizer__param_groups=[("head.*", {})],
            lr=self.lr,
            batch_size=self.batch_size,
            max_epochs=self.max_epochs,
            device=device,
            verbose=int(verbose >= 1),
            callbacks=callbacks,
        )
        net.initialize()
        self._set_learning_rates(net)
        return tokenizer, net

    def _set_learning_rates(self, net):
        head = {id(p) for p in net.module_.head.parameters()}
        for group in net.optimizer_.param_groups:
            in_head = any(id(p) in head for p in group["params"])
            group["lr"] = (self.head_lr or self.lr) if in_head else self.lr

    def _train(self, texts, Y, binary, epochs, continuing):
        device = _resolve_device(self.device)
        n_epochs_done = self.n_epochs_ if continuing else 0
        seed = self._seed(n_epochs_done)
        n_positives = (Y == 1).sum(axis=0)
        if continuing:
            n_positives = n_positives + self.n_positives_
        missing = np.flatnonzero(n_positives == 0)
        if missing.size:
            warnings.warn(
                f"Labels {missing.tolist()} have no observed positive: they cannot be "
                "learned and will be predicted 0.",
                UserWarning,
                stacklevel=3,
            )
        fork_devices = [torch.device(device)] if device.startswith("cuda") else []
        with torch.random.fork_rng(devices=fork_devices):
            torch.manual_seed(seed)
            if continuing:
                tokenizer = self.tokenizer_
                # Train a copy, so that an error or an interrupt leaves the
                # fitted model as it was.
                net = copy.deepcopy(self.net_)
                rank = (distributed_context() or (0, 1))[0]
                net.set_params(
                    lr=self.lr, optimizer__weight_decay=self.weight_decay,
                    batch_size=self.batch_size,
                    verbose=int(self.verbose >= 1 and rank == 0),
                )
                self._set_learning_rates(net)
                net.criterion_.mixup_weight = self.mixup_weight
                net.criterion_.objective = self.objective
                net.mixup_alpha = self.mixup_alpha
                net.positive_fraction = self.positive_fraction
                net.compile_forward = self.compile
                if torch.device(net.device) != torch.device(device):
                    net.move_to(device)
            else:
                tokenizer, net = self._build_net(
                    resolve_model(self.model), Y.shape[1], seed, device
                )
            ids = tokenize(tokenizer, texts, self.max_length)
            pu = (Y == -1).any(axis=0)
            net.criterion_.set_pu_labels(pu)
            dataset = TokenizedDataset(ids, Y.astype(np.float32))
            if epochs > 0:
                net.notify("on_train_begin", X=dataset, y=None)
                net.fit_loop(dataset, None, epochs=epochs)
                net.notify("on_train_end", X=dataset, y=None)
            previous = self.proba_shift_ if continuing else np.zeros(Y.shape[1])
            shift = self._proba_shift(net, ids, Y, pu, previous)

        self.net_ = net
        self.tokenizer_ = tokenizer
        self.device_ = device
        self.n_labels_ = Y.shape[1]
        self._binary = binary
        self.classes_ = np.array([0, 1]) if binary else np.tile([0, 1], (Y.shape[1], 1))
        self.pu_labels_ = pu
        self.proba_shift_ = shift
        self.n_positives_ = n_positives
        self.n_epochs_ = n_epochs_done + epochs
        return self

    def _proba_shift(self, net, ids, Y, pu, previous):
        # Supervised labels get no shift; a PU label without a positive in
        # this call was not trained by it and keeps its previous scale.
        has_pos = (Y == 1).any(axis=0)
        shift = np.where(pu & ~has_pos, previous, 0.0)
        anchor = (Y != 0) & pu
        rows = np.flatnonzero(anchor.any(axis=1))
        if rows.size == 0:
            return shift
        logits = net.predict_logits([ids[i] for i in rows], 2 * self.batch_size)
        phi = expit(logits.astype(np.float64))
        for label in np.flatnonzero(pu & has_pos):
            values = phi[anchor[rows, label], label]
            s = np.clip(np.quantile(values, self.scale_quantile), 1e-6, 1.0)
            shift[label] = np.log(s / 2) - np.log1p(-s / 2)
        return shift

    # ---------------------------------------------------------- persistence

    def save_pretrained(self, directory, *, include_optimizer=False):
        """Save the fitted estimator to a directory, without pickle.

        The encoder and tokenizer go through Hugging Face ``save_pretrained``
        (safetensors), the head to ``head.safetensors``, and the parameters
        and fitted attributes to ``dallmi.json``, written last. The write is
        atomic: an interrupted save leaves no directory that loads. The
        directory also serves as ``model=`` for a new estimator, which then
        starts from this encoder and, when the number of labels matches,
        this head.

        Parameters
        ----------
        directory : str or os.PathLike
            Created, or replaced if it holds a previous save.
        include_optimizer : bool, default=False
            Also save the AdamW state, so that ``partial_fit`` after loading
            continues exactly; otherwise it starts from a fresh AdamW state.

        Returns
        -------
        directory : str
            Absolute path of the saved directory.

        Notes
        -----
        In data-parallel training (a ``torch.distributed`` process group of
        several processes) every process holds the same model: only rank 0
        writes, and every process waits for the write to finish.
        """
        from .persistence import save_pretrained

        check_is_fitted(self, "net_")
        context = distributed_context()
        if context is None:
            return save_pretrained(self, directory, include_optimizer=include_optimizer)
        path = os.path.abspath(os.fspath(directory))
        try:
            if context[0] == 0:
                path = save_pretrained(self, directory, include_optimizer=include_optimizer)
        finally:
            torch.distributed.barrier()
        return path

    @classmethod
    def from_pretrained(cls, directory, *, device=None):
        """Load an estimator saved by :meth:`save_pretrained`.

        Nothing from the directory is executed: weights are safetensors and
        everything else is JSON. Unlike :func:`joblib.load`, this is safe
        for files from untrusted sources.

        Parameters
        ----------
        directory : str or os.PathLike
            A directory written by :meth:`save_pretrained`.
        device : str or None, default=None
            Overrides the saved ``device``; a CUDA device on a machine
            without CUDA falls back to the CPU with a warning.

        Returns
        -------
        estimator : DALLMiClassifier
            Fitted; its ``model`` parameter is ``directory``.
        """
        from .persistence import load_pretrained

        return load_pretrained(directory, cls, device=device)

    def __setstate__(self, state):
        # skorch maps a GPU-pickled net to the CPU when CUDA is missing;
        # keep device_ in step with it.
        super().__setstate__(state)
        net = self.__dict__.get("net_")
        if net is not None and "device_" in self.__dict__:
            self.device_ = str(net.device)
            # As from_pretrained does: a CUDA model loaded where there is no
            # CUDA keeps training on the CPU instead of failing.
            if str(self.device).startswith("cuda") and not torch.cuda.is_available():
                self.device = "cpu"

    # -------------------------------------------------------------- predict

    @property
    def history_(self):
        """Training history of the network (a :class:`skorch.History`)."""
        check_is_fitted(self, "net_")
        return self.net_.history

    def _stream(self, X, transform, dtype, n_columns):
        """Apply ``transform`` to the shifted logits of ``X``, chunk by chunk.

        ``X`` may be any iterable of texts: ``_PREDICT_CHUNK`` texts are
        checked, tokenised and scored at a time. The results are written in
        input order into a preallocated array when ``len(X)`` is known, else
        into a list of per-chunk arrays concatenated at the end.
        """
        check_is_fitted(self, "net_")
        n_texts = len(X) if isinstance(X, Sized) and not isinstance(X, (str, bytes)) else None
        out = None
        if n_texts is not None and n_texts > 0:
            out = np.empty((n_texts, n_columns), dtype=dtype)
        parts = []
        for start, texts in _text_chunks(X, _PREDICT_CHUNK):
            ids = tokenize(self.tokenizer_, texts, self.max_length)
            scores = self.net_.predict_logits(ids, 2 * self.batch_size).astype(np.float64)
            scores -= self.proba_shift_
            scores[:, self.n_positives_ == 0] = -np.inf
            result = transform(scores)
            if out is not None and start + len(texts) <= n_texts:
                out[start:start + len(texts)] = result
            else:
                parts.append(np.asarray(result, dtype=dtype))
        if out is None:
            return np.concatenate(parts)
        if parts or start + len(texts) != n_texts:
            raise ValueError(f"X reported {n_texts} texts but yielded a different number.")
        return out

    def decision_function(self, X):
        """Compute the log-odds of :meth:`predict_proba`.

        These are the network's logits, shifted per PU label by the
        probability scale (see Notes of the class); ``-inf`` for a label
        without any observed positive in training.

        Parameters
        ----------
        X : iterable of str
            Texts: a list, a 1-D array, a pandas Series, or any iterable such
            as a generator over a file, which is streamed (see
            :meth:`predict_proba`).

        Returns
        -------
        scores : numpy.ndarray of shape (n_samples, n_labels) or (n_samples,)
            Of type float64; ``(n_samples,)`` when the model was fitted on
            a 1-D ``y``.
        """
        check_is_fitted(self, "net_")
        scores = self._stream(X, lambda s: s, np.float64, self.n_labels_)
        return scores[:, 0] if self._binary else scores

    def predict_proba(self, X):
        """Probability of each label.

        ``sigmoid(decision_function(X))``. For a PU label this is a
        strictly increasing map of the network's output that crosses 0.5 at
        VPU's decision rule, not a calibrated probability (see Notes of the
        class).

        Any iterable of texts is accepted and streamed: the texts are read,
        checked, tokenised and scored ``_PREDICT_CHUNK`` (8192) at a time, so
        that the memory needed on top of the model is that of one chunk plus
        the returned array (see ``proba_dtype``). An invalid entry is
        reported with its index in the whole input.

        Parameters
        ----------
        X : iterable of str
            Texts: a list, a 1-D array, a pandas Series, or any iterable such
            as a generator over the lines of a file.

        Returns
        -------
        proba : numpy.ndarray of shape (n_samples, n_labels)
            One column per label, of type ``proba_dtype``. For a model
            fitted on a 1-D ``y``, shape ``(n_samples, 2)`` with the columns
            of ``classes_``.
        """
        check_is_fitted(self, "net_")
        dtype = np.dtype(self.proba_dtype)
        if self._binary:
            def transform(scores):
                p = expit(scores[:, 0])
                return np.column_stack([1 - p, p])

            return self._stream(X, transform, dtype, 2)
        return self._stream(X, lambda s: expit(s, out=s), dtype, self.n_labels_)

    def predict(self, X):
        """Predict labels in ``{0, 1}``: ``predict_proba >= threshold``.

        The threshold is applied to the float64 probabilities, whatever
        ``proba_dtype`` is.

        Parameters
        ----------
        X : iterable of str
            Texts: a list, a 1-D array, a pandas Series, or any iterable
            (streamed, see :meth:`predict_proba`).

        Returns
        -------
        labels : numpy.ndarray of shape (n_samples, n_labels) or (n_samples,)
            Integers ``0`` and ``1``; ``(n_samples,)`` when the model was
            fitted on a 1-D ``y``.
        """
        check_is_fitted(self, "net_")
        threshold = check_threshold(self.threshold, self.n_labels_)

        def transform(scores):
            return (expit(scores, out=scores) >= threshold).astype(int)

        labels = self._stream(X, transform, int, self.n_labels_)
        return labels[:, 0] if self._binary else labels

    def score(self, X, y, sample_weight=None):
        """Macro average precision of :meth:`predict_proba` against ``y``.

        Unknown entries (``-1``) count as negatives and labels without a
        positive in ``y`` are left out. On partially labelled data this
        underestimates the AP on true labels, by about the share of each
        label's positives that is marked; under the SCAR assumption, with
        the same share for every label, it ranks models the same way in
        expectation, which is what model selection needs.

        Parameters
        ----------
        X : sequence of str
            Texts (a list, a 1-D array or a pandas Series).
        y : array-like of shape (n_samples, n_labels) or (n_samples,)
            Labels in ``{1, 0, -1}``.
        sample_weight : None
            Not supported.

        Returns
        -------
        score : float
            Macro average precision; NaN if no label has a positive in
            ``y``.
        """
        if sample_weight is not None:
            raise ValueError("score does not support sample_weight.")
        texts = check_texts(X)
        Y, binary = check_labels(y, len(texts))
        proba = self.predict_proba(texts)
        return macro_average_precision(Y, proba[:, 1] if binary else proba)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True
        tags.input_tags.two_d_array = False
        tags.classifier_tags.multi_label = True
        tags.target_tags.multi_output = True
        tags.non_deterministic = False
        return tags
