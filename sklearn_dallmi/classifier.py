"""The public estimator: :class:`DALLMiClassifier`."""

import copy
import functools
import json
import math
import numbers
import os
import warnings
from collections.abc import Sized

import numpy as np
import torch
from scipy.special import expit
from skorch.callbacks import LRScheduler, ProgressBar
from skorch.helper import predefined_split
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.model_selection import KFold, train_test_split
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from . import persistence
from ._validation import check_labels, check_texts, check_threshold, text_chunks
from .loss import DALLMiLoss
from .metrics import macro_average_precision
from .models import checkpoint_pooling, load_tokenizer, resolve_model, write_checkpoint_pooling
from .module import EncoderClassifier
from .onnx_scoring import INFERENCE_MODES, OnnxInt8Scorer
from .net import (AcceleratedDALLMiNet, DALLMiNet, MixUpCollator, TokenizedDataset,
                  balanced_positives, label_balanced_loader, resolve_device, stopped_early,
                  uses_bf16)
from .priors import prior_logit_shift, pu_class_prior
from .probe import fit_expanded_probe, fit_linear_probe, logistic_expansion, pu_roc_auc
from .sampling import LabelBalancedSampler
from .text import length_order, pad_batch, tokenize

__all__ = ["DALLMiClassifier"]

_PREDICT_CHUNK = 8192
# Fitted arrays of one value per label, saved by save_pretrained.
_ARRAYS = ("pu_labels_", "proba_shift_", "class_prior_", "n_positives_")
# Fitted arrays that may be None (saved only when present).
_EXPANSION = ("head_gradient_", "head_hessian_")
# Parameters that hold code or live objects: not written by save_pretrained.
_RUNTIME_PARAMS = ("callbacks", "accelerator")
_PRECISIONS = ("auto", "bf16", "float32")


def _launched_distributed():
    """Whether this process belongs to a multi-process launch."""
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size() > 1
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def _lr_schedule(name, warmup_steps, total_steps):
    """A transformers schedule for skorch's LRScheduler (stepped every batch)."""
    import transformers

    if name == "linear":
        return LRScheduler(transformers.get_linear_schedule_with_warmup, step_every="batch",
                           num_warmup_steps=warmup_steps, num_training_steps=total_steps,
                           last_epoch=-1)
    return LRScheduler(transformers.get_constant_schedule_with_warmup, step_every="batch",
                       num_warmup_steps=warmup_steps, last_epoch=-1)


def _head(heads, name):
    """``heads[name]``, or for ``"average"`` the mean of the probe and the expanded head."""
    if name != "average":
        return heads[name]
    return tuple((a.double() + b.double()) / 2 for a, b in zip(heads["probe"], heads["expanded"]))


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
    max_epochs : int, default=1
        Epochs of ``fit``; ``partial_fit`` trains one. The head starts as a
        linear probe (``probe_C``), so one epoch of fine-tuning goes far; 0
        gives the probe alone.
    lr : float, default=2e-5
        AdamW learning rate of the encoder.
    head_lr : float or None, default=None
        Learning rate of the linear head (its own AdamW parameter group);
        None uses ``lr``. A freshly initialised head on many labels learns
        faster at a higher rate than the pretrained encoder tolerates.
    weight_decay : float, default=0.01
        AdamW weight decay.
    lr_schedule : {"constant", "linear"}, default="constant"
        How the learning rates move over the steps of one call to ``fit`` or
        ``partial_fit``, after the warm-up: kept, or decayed linearly to 0
        (transformers' schedules, stepped every batch by skorch's
        :class:`~skorch.callbacks.LRScheduler`).
    warmup_fraction : float, default=0.0
        Share of the steps of a call over which the learning rates rise
        linearly from 0.
    mixup_alpha : float, default=0.3
        The mixing weight of MixUp follows ``Beta(mixup_alpha, mixup_alpha)``.
    mixup_weight : float, default=0.1
        Weight ``lambda`` of the MixUp term; 0 switches MixUp (and its extra
        forward pass) off.
    positive_fraction : float, default=0.25
        Share ``rho`` of each batch drawn label-balanced (one observed
        positive per label in turn), in ``[0, 1)``.
    pooling : {"auto", "mean", "cls"}, default="auto"
        How token states become one vector: the mean over the text's tokens,
        or the first token's state. ``"auto"`` pools as the checkpoint was
        trained to, as its sentence-transformers files say (the embedded
        default: the mean, scaled to unit length), and takes the mean of
        any other checkpoint.
    probe_C : float or None, default=0.1
        A fresh fit first fits the head as a linear probe on the frozen
        encoder's pooled vectors (one class-balanced logistic regression per
        label with this inverse regularisation; the unknowns of a PU label
        read as negatives), then fine-tunes everything from there (LP-FT).
        None starts from a randomly initialised head.
    frozen_layers : int, default=0
        Train only the encoder's layers above its first ``frozen_layers``
        (the embeddings are then frozen too); 0 fine-tunes the whole
        encoder. Fewer trained layers cost less (the backward pass stops
        below them) and move the pretrained features less.
    anchor : float, default=10.0
        In a continued fit (``partial_fit``, ``warm_start``), how many known
        positives the previous model's opinion of a PU label is worth, so
        that a label the new data say little about keeps what the source
        model knew. For a label with ``n`` known positives in this call, the
        probe of a label turning PU is pulled toward its previous head with
        ``C = probe_C * n / (n + anchor)``, and its unknown entries are
        distilled toward the previous model's probabilities with weight
        ``anchor / (anchor + n)``. 0 turns both off.
    source_curvature : bool, default=True
        Keep, at the end of a fit, the second-order expansion of its
        supervised labels' logistic loss at the fitted head
        (``head_gradient_``, ``head_hessian_``), and let a continued fit
        start the labels turning PU from one of three heads: the anchored
        probe above, a regression on the new texts plus that expansion
        (the earlier texts' help without the texts), or their average,
        whichever ranks the observed positives above the other entries
        best in 5-fold cross-validation on the new texts (ROC AUC, macro
        over labels; ``stage_head_`` names it). False keeps the anchored
        probe and stores no expansion. See Notes.
    dropout : float, default=0.1
        Dropout before the linear head.
    scale_quantile : float, default=0.99
        For each PU label, the quantile of the network's output over the
        label's positive and unknown training entries that is taken as the
        probability scale ``s`` of VPU's prior estimate (VPU uses the
        maximum); see Notes.
    frequency_pooling : float in [0, 1], default=0.5
        How far, in log space, each PU label's estimated prior moves toward
        the estimate that assumes one labelling frequency shared by every
        label (the same share of each label's positives marked; see
        Notes). 1 trusts that assumption fully, 0 ignores it. Where the
        labels' positives were marked at one rate, higher values estimate
        the priors of rare labels better; where some labels were marked
        more thoroughly than others, they overestimate those labels'
        priors and underestimate the rest.
    objective : {"dallmi", "published"}, default="dallmi"
        ``"published"`` is the authors' published norm loss with a MixUp
        term that carries no gradient; it exists as an ablation anchor.
    threshold : float or array-like of shape (n_labels,), default=0.5
        Decision threshold of ``predict`` on ``predict_proba``.
    validation_fraction : float or None, default=None
        Share of the training rows held out (at random, ``-1`` entries kept)
        to validate each epoch: the history then records ``valid_loss`` (the
        loss without MixUp) and ``valid_macro_ap`` (the macro average
        precision with ``-1`` counted as negative, as :meth:`score`), which
        callbacks such as :class:`~skorch.callbacks.EarlyStopping` or
        :class:`~skorch.callbacks.Checkpoint` can monitor. None trains on
        every row.
    callbacks : list of skorch callbacks or None, default=None
        Passed to the skorch network, e.g.
        ``[EarlyStopping(monitor="valid_macro_ap", lower_is_better=False)]``.
        Not saved by :meth:`save_pretrained` (they are code).
    proba_dtype : {"float64", "float32", "float16"}, default="float64"
        Floating-point type of the array returned by ``predict_proba``. For
        millions of texts, ``"float16"`` divides the size of the result by
        four (about three significant digits; values within about 5e-4 of 1
        round to 1). ``decision_function`` stays float64.
    precision : {"auto", "bf16", "float32"}, default="auto"
        Numerics of the network's forward passes, in training and
        prediction: ``"bf16"`` runs them under bfloat16 autocast (weights,
        gradients and the optimizer stay float32), ``"float32"`` does not,
        ``"auto"`` is ``"bf16"`` on CUDA and ``"float32"`` elsewhere. The
        head stays float32. On a CPU with Intel AMX (``lscpu`` lists
        ``amx_bf16``) ``"bf16"`` made an adaptation 1.6 times faster with
        the same scores (measured in :ref:`bf16-on-cpus`); CPUs without
        bfloat16 units emulate it, slowly. Set after a fit, it applies to
        the next prediction (not to ``inference="onnx-int8"``, which runs
        int8). Under an Accelerate launch ``"auto"`` follows the
        launcher's mixed precision and the other values override it.
    inference : {"torch", "onnx-int8"}, default="torch"
        How ``predict_proba``, ``predict``, ``decision_function`` and
        ``score`` compute the network's outputs: the torch module, or, for
        fast scoring on CPUs, the module exported to ONNX with int8 weights
        (per output channel) and run by ONNX Runtime on the CPU (the
        ``onnx`` extra). The ONNX model is built from the fitted network on
        the first prediction after a fit or a load (seconds to tens of
        seconds; switching back and forth reuses it) and is not saved: it
        is rebuilt after ``from_pretrained`` or ``joblib.load``, and in
        every process a fitted model is sent to. Its thread count is
        torch's when it is built. Training is unaffected. int8 moves the
        scores a little; its measured effect on ranking and speed is on the
        benchmark page.
    device : str, default="auto"
        ``"auto"`` takes CUDA when available, else the CPU; or any torch
        device string. A CUDA device where there is none falls back to the
        CPU with a :class:`~skorch.exceptions.DeviceWarning`. On CUDA
        batches come from pinned memory (and ``precision="auto"`` is bf16).
    accelerator : "auto", None or accelerate.Accelerator, default="auto"
        Train through Hugging Face Accelerate (skorch's
        :class:`~skorch.hf.AccelerateMixin`): data-parallel over the
        processes of a launch, with its mixed precision and gradient
        accumulation. ``"auto"`` builds an ``Accelerator`` when the process
        was started by a multi-process launcher (``accelerate launch``,
        ``torchrun``: ``WORLD_SIZE > 1``) and trains plainly otherwise; None
        never uses Accelerate; an ``Accelerator`` is used as given (one
        process too, e.g. for gradient accumulation). Not saved by
        :meth:`save_pretrained`.
    compile : bool, default=False
        Use skorch's ``compile``: the module goes through ``torch.compile``.
        Worth it on a GPU for long fits; the first steps pay the compilation
        (tens of seconds) and inputs of new lengths may trigger
        recompilations.
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
    class_prior_ : numpy.ndarray of shape (n_labels,)
        Estimated share of positives of each label among the training texts
        of the last call (for a supervised label, its positive rate among
        the known entries); ``predict`` at the default threshold marks about
        that share of them positive.
    n_positives_ : numpy.ndarray of shape (n_labels,)
        Observed positives seen in training, summed over calls.
    head_gradient_ : numpy.ndarray of shape (n_labels, n_features + 1) or None
        With ``source_curvature``: the gradient, with respect to each
        label's head row and intercept, of the unweighted logistic loss of
        the last call's supervised labels on its training texts, at the
        fitted head (zeros for the other labels); None when the call had
        no supervised label.
    head_hessian_ : numpy.ndarray of shape (n_labels, n_features + 1, n_features + 1) or None
        Its Hessian, likewise (float32; 385 x 385 per label for a
        384-dimensional encoder).
    stage_head_ : str or None
        The head the labels turning PU started from in the last call:
        ``"probe"``, ``"expanded"`` or ``"average"``; None when no label
        turned PU.
    n_epochs_ : int
        Epochs trained so far.
    net_ : skorch.NeuralNet
        The trained network.
    tokenizer_ : transformers.PreTrainedTokenizerBase
    history_ : skorch.History
        Per-epoch training log, with the loss terms ``train_variational``,
        ``train_mixup`` and ``train_bce`` and, with ``validation_fraction``,
        ``valid_loss`` and ``valid_macro_ap``.
    device_ : str
        The device the network is on.

    See Also
    --------
    sklearn_dallmi.metrics.macro_average_precision : The metric of ``score``.

    Notes
    -----
    The label matrix ``y`` holds ``1`` (observed positive), ``0`` (known
    negative) and ``-1`` (unknown). A label whose column holds a ``-1`` is
    trained with the variational loss over its observed positives against
    those and its unknown entries, plus MixUp, plus BCE on its known
    negatives; other labels with BCE. The positives of rows labelled for
    every label (no ``-1``, a ``0`` on such a label: the source rows of one
    fit on both domains) are known entries too, trained with BCE (see
    :func:`~sklearn_dallmi.loss.observed_positives`).

    The variational loss makes the output ``Phi`` proportional to the
    posterior, not equal to it, and no labelled negative says where to cut.
    For each PU label the fit estimates the label's prior on its training
    texts (``class_prior_``: VPU's normalisation, in a continued fit
    combined with the previous model's mean probability, and moved
    ``frequency_pooling`` of the way toward one labelling frequency shared
    by the labels), and
    ``predict_proba`` returns ``sigmoid(z - shift)`` with the shift that
    puts 0.5 between the texts ranked just in and just out of that share: a
    strictly increasing map, so rankings (average precision) do not change.
    ``threshold`` still overrides the 0.5.

    A continued fit (``fit`` then ``warm_start`` or ``partial_fit`` on
    another domain) does not see the earlier texts. With
    ``source_curvature``, the fit before it left the expansion of their
    loss at its head; a regression on the new texts plus that expansion
    approximates one regression on both sets of texts (unweighted,
    ``C=1``), which helps where the earlier domain resembles the new one
    and hurts where it does not. The partially labelled new texts decide by
    cross-validation whether the labels turning PU start from it, from the
    anchored probe, or from their average.

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
        "lr_schedule": [StrOptions({"constant", "linear"})],
        "warmup_fraction": [Interval(numbers.Real, 0, 1, closed="both")],
        "mixup_alpha": [Interval(numbers.Real, 0, None, closed="neither")],
        "mixup_weight": [Interval(numbers.Real, 0, None, closed="left")],
        "positive_fraction": [Interval(numbers.Real, 0, 1, closed="left")],
        "pooling": [StrOptions({"auto", "mean", "cls"})],
        "probe_C": [None, Interval(numbers.Real, 0, None, closed="neither")],
        "frozen_layers": [Interval(numbers.Integral, 0, None, closed="left")],
        "anchor": [Interval(numbers.Real, 0, None, closed="left")],
        "source_curvature": ["boolean"],
        "dropout": [Interval(numbers.Real, 0, 1, closed="left")],
        "scale_quantile": [Interval(numbers.Real, 0, 1, closed="right")],
        "frequency_pooling": [Interval(numbers.Real, 0, 1, closed="both")],
        "objective": [StrOptions({"dallmi", "published"})],
        "threshold": [Interval(numbers.Real, 0, 1, closed="both"), "array-like"],
        "validation_fraction": [None, Interval(numbers.Real, 0, 1, closed="neither")],
        "callbacks": [None, list],
        "proba_dtype": [StrOptions({"float64", "float32", "float16"})],
        "precision": [StrOptions(set(_PRECISIONS))],
        "inference": [StrOptions(set(INFERENCE_MODES))],
        "device": [str],
        "accelerator": [None, StrOptions({"auto"}), object],
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
        max_epochs=1,
        lr=2e-5,
        head_lr=None,
        weight_decay=0.01,
        lr_schedule="constant",
        warmup_fraction=0.0,
        mixup_alpha=0.3,
        mixup_weight=0.1,
        positive_fraction=0.25,
        pooling="auto",
        probe_C=0.1,
        frozen_layers=0,
        anchor=10.0,
        source_curvature=True,
        dropout=0.1,
        scale_quantile=0.99,
        frequency_pooling=0.5,
        objective="dallmi",
        threshold=0.5,
        validation_fraction=None,
        callbacks=None,
        proba_dtype="float64",
        precision="auto",
        inference="torch",
        device="auto",
        accelerator="auto",
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
        self.lr_schedule = lr_schedule
        self.warmup_fraction = warmup_fraction
        self.mixup_alpha = mixup_alpha
        self.mixup_weight = mixup_weight
        self.positive_fraction = positive_fraction
        self.pooling = pooling
        self.probe_C = probe_C
        self.frozen_layers = frozen_layers
        self.anchor = anchor
        self.source_curvature = source_curvature
        self.dropout = dropout
        self.scale_quantile = scale_quantile
        self.frequency_pooling = frequency_pooling
        self.objective = objective
        self.threshold = threshold
        self.validation_fraction = validation_fraction
        self.callbacks = callbacks
        self.proba_dtype = proba_dtype
        self.precision = precision
        self.inference = inference
        self.device = device
        self.accelerator = accelerator
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
        return self._train(X, y, self.max_epochs, self.warm_start and hasattr(self, "net_"))

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
        return self._train(X, y, 1, hasattr(self, "net_"))

    def _seed(self, n_epochs_done):
        rs = self.random_state
        base = rs if isinstance(rs, numbers.Integral) else check_random_state(rs).randint(2**31 - 1)
        return int(np.random.SeedSequence([int(base), n_epochs_done]).generate_state(1)[0])

    def _accelerator(self, device):
        if self.accelerator != "auto":
            return self.accelerator
        if not _launched_distributed():
            return None
        from accelerate import Accelerator

        kind = torch.device(device).type
        precision = "bf16" if uses_bf16(self.precision, kind) else "no"
        if self.precision == "auto" and "ACCELERATE_MIXED_PRECISION" in os.environ:
            precision = None  # the launcher's setting
        return Accelerator(cpu=kind == "cpu", mixed_precision=precision)

    def _split(self, n_rows, seed):
        """Training and validation rows of this call."""
        if not self.validation_fraction:
            return np.arange(n_rows), None
        return train_test_split(np.arange(n_rows), test_size=self.validation_fraction,
                                random_state=seed)

    def _train(self, X, y, epochs, continuing):
        self._validate_params()
        texts = check_texts(X)
        Y, binary = check_labels(y, len(texts))
        if continuing and (Y.shape[1] != self.n_labels_ or binary != self._binary):
            expected = "a 1-D y" if self._binary else f"{self.n_labels_} label columns"
            got = "a 1-D y" if binary else f"{Y.shape[1]} label columns"
            raise ValueError(f"y has {got}, but the fitted model has {expected}.")
        device = resolve_device(self.device)
        accelerator = self._accelerator(device)
        if accelerator is not None:
            # "cpu", not "cpu:0": skorch's pickles cannot map the latter.
            device = accelerator.device.type if accelerator.device.type == "cpu" else str(
                accelerator.device)
        n_epochs_done = self.n_epochs_ if continuing else 0
        seed = self._seed(n_epochs_done)
        train, valid = self._split(len(texts), seed)
        n_positives = (Y[train] == 1).sum(axis=0) + (self.n_positives_ if continuing else 0)
        if not n_positives.all():
            warnings.warn(f"Labels {np.flatnonzero(n_positives == 0).tolist()} have no observed "
                          "positive: they cannot be learned and will be predicted 0.",
                          UserWarning, stacklevel=3)
        pu = (Y == -1).any(axis=0)
        fork_devices = [torch.device(device)] if torch.device(device).type == "cuda" else []
        with torch.random.fork_rng(devices=fork_devices):
            torch.manual_seed(seed)
            if continuing:
                # Train a copy, so that an error or an interrupt leaves the
                # fitted model as it was.
                net, tokenizer = copy.deepcopy(self.net_), self.tokenizer_
                self._configure(net, device, accelerator)
            else:
                model = resolve_model(self.model)
                tokenizer = load_tokenizer(model)
                net = self._build_net(model, Y.shape[1], tokenizer, device, accelerator)
            net.plain_module.freeze(self.frozen_layers)
            ids = tokenize(tokenizer, texts, self.max_length)
            train_ids, Y_train = [ids[i] for i in train], Y[train]
            if not continuing:
                probed = None if self._reuse_head(net.plain_module, model) else np.ones_like(pu)
            else:
                # A new stage (the source -> target flow): the labels that
                # turned PU start from a probe on the new texts, pulled
                # toward the head they had.
                turned = pu & ~self.pu_labels_
                probed = turned if turned.any() else None
            probing = probed is not None and self.probe_C is not None
            # One pass of the frozen encoder serves the probe and the
            # previous model's probabilities (what the anchor keeps and where
            # the prior estimate starts).
            if probing or continuing and pu.any():
                features, order = self._features(net, train_ids)
            before = None
            if continuing and pu.any():
                # The head over the batches of inference, as net.forward
                # would: the same probabilities to the last bit.
                module, size = net.plain_module, net.iterator_valid__batch_size
                before = np.empty(Y_train.shape)
                with torch.inference_mode():
                    logits = torch.cat([module.classify(part) for part in features.split(size)])
                before[order] = expit(logits.double().cpu().numpy())
                if probing:
                    # Each pass over a DataLoader draws its base seed from
                    # torch's generator, and the training below depends on
                    # that stream: draw for the pass saved, so that a fit
                    # gives what it gave with two passes.
                    torch.empty((), dtype=torch.int64).random_()
            stage_head = None
            if probing:
                stage_head = self._probe(net, features, Y_train[order], pu, probed,
                                         anchored=continuing, seed=seed)
            weights = np.zeros(Y.shape[1], dtype=np.float32)
            if before is not None and self.anchor > 0:
                weights[pu] = self.anchor / (self.anchor + (Y_train[:, pu] == 1).sum(axis=0))
            net.criterion_.anchor_weights.copy_(torch.from_numpy(weights))
            data = TokenizedDataset(train_ids, Y_train.astype(np.float32),
                                    None if not weights.any() else before.astype(np.float32))
            n_steps = epochs * math.ceil(
                len(LabelBalancedSampler(balanced_positives(data.y, pu), self.batch_size,
                                         self.positive_fraction))
                / (accelerator.num_processes if accelerator is not None else 1))
            # Set as skorch's set_params does for these prefixes, without its
            # re-initialisation of an initialised network.
            vars(net).update(
                iterator_train__random_state=seed,
                iterator_train__pu_labels=pu,
                iterator_train__collate_fn=MixUpCollator(
                    tokenizer.pad_token_id, pu, self.mixup_alpha if self.mixup_weight else 0,
                    seed),
                train_split=None if valid is None else predefined_split(
                    self._dataset(ids, valid, Y.astype(np.float32))),
                callbacks=self._callbacks(n_steps, accelerator),
            )
            net.initialize_callbacks()
            net.criterion_.set_pu_labels(pu)
            n_epochs_before = len(net.history)
            if epochs > 0:
                net.notify("on_train_begin", X=data, y=None)
                try:
                    net.fit_loop(data, None, epochs=epochs)
                except KeyboardInterrupt as interrupt:
                    if not stopped_early(interrupt):
                        raise
                net.notify("on_train_end", X=data, y=None)
            shift, prior = self._decision_rule(net, train_ids, Y_train, pu, before, continuing)
            expansion = None
            if self.source_curvature and not pu.all():
                if not probing or len(net.history) > n_epochs_before:
                    features, order = self._features(net, train_ids)  # after training
                head = net.plain_module.head
                expansion = tuple(t.float().cpu().numpy() for t in logistic_expansion(
                    features, torch.from_numpy(Y_train[order]), head.weight, head.bias,
                    torch.from_numpy(~pu)))

        self.__dict__.pop("_onnx_scorer", None)
        self.net_ = net
        self.tokenizer_ = tokenizer
        self.n_labels_ = Y.shape[1]
        self._binary = binary
        self.pu_labels_ = pu
        self.proba_shift_ = shift
        self.class_prior_ = prior
        self.n_positives_ = n_positives
        self.head_gradient_, self.head_hessian_ = expansion or (None, None)
        self.stage_head_ = stage_head
        self.n_epochs_ = n_epochs_done + len(net.history) - n_epochs_before
        return self

    def _callbacks(self, n_steps, accelerator):
        callbacks = list(self.callbacks or [])
        if self.lr_schedule != "constant" or self.warmup_fraction > 0:
            callbacks.append(("lr_schedule", _lr_schedule(
                self.lr_schedule, round(self.warmup_fraction * n_steps), n_steps)))
        main = accelerator is None or accelerator.is_main_process
        if self.verbose >= 2 and main:
            callbacks.append(("progress_bar", ProgressBar()))
        return callbacks

    def _net_params(self, device):
        """The network's parameters that follow the estimator's at every fit."""
        cuda = torch.device(device).type == "cuda"
        return dict(
            batch_size=self.batch_size,
            iterator_train__positive_fraction=self.positive_fraction,
            iterator_train__pin_memory=cuda,
            iterator_valid__pin_memory=cuda,
            iterator_valid__batch_size=2 * self.batch_size,
            criterion__mixup_weight=self.mixup_weight,
            criterion__objective=self.objective,
            precision=self.precision,
            verbose=int(self.verbose >= 1),
        )

    def _pooling(self, name_or_path):
        """The module's pooling and normalisation for ``pooling``."""
        if self.pooling == "auto":
            return checkpoint_pooling(name_or_path)
        return self.pooling, False

    def _build_net(self, name_or_path, n_labels, tokenizer, device, accelerator=None):
        pooling, normalize = self._pooling(name_or_path)
        if tokenizer.pad_token_id is None:
            raise ValueError(f"The tokenizer of {name_or_path!r} has no padding token.")
        kind, extra = DALLMiNet, {}
        if accelerator is not None:
            kind, extra = AcceleratedDALLMiNet, {"accelerator": accelerator}
        pad = functools.partial(pad_batch, pad_id=tokenizer.pad_token_id)
        net = kind(
            EncoderClassifier,
            module__encoder=name_or_path,
            module__n_labels=n_labels,
            module__pooling=pooling,
            module__normalize=normalize,
            module__dropout=self.dropout,
            criterion=DALLMiLoss,
            criterion__n_labels=n_labels,
            optimizer=torch.optim.AdamW,
            optimizer__param_groups=[("head.*", {"lr": self.head_lr or self.lr})],
            iterator_train=label_balanced_loader,
            iterator_train__collate_fn=pad,
            iterator_valid__collate_fn=pad,
            train_split=None,
            max_epochs=self.max_epochs,
            lr=self.lr,
            optimizer__weight_decay=self.weight_decay,
            device=device,
            compile=self.compile,
            **self._net_params(device),
            **extra,
        ).initialize()
        limits = [getattr(net.plain_module.encoder.config, "max_position_embeddings", None),
                  getattr(tokenizer, "model_max_length", None)]
        # Tokenizers without a known limit report a huge sentinel value.
        limits = [v for v in limits if v is not None and v < 1_000_000]
        if limits and self.max_length > min(limits):
            raise ValueError(
                f"max_length={self.max_length} exceeds the {min(limits)} positions of the "
                f"encoder {name_or_path!r}; set max_length <= {min(limits)}."
            )
        return net

    def _reuse_head(self, module, path):
        """Start from the head of a save given as ``model``, when it fits."""
        if not persistence.is_save(path):
            return False
        _, manifest, tensors = persistence.read_save(path)
        saved = (manifest["fitted"]["n_labels_"], *checkpoint_pooling(path))
        new = (module.head.out_features, module.pooling, module.normalize)
        if saved != new:
            warnings.warn(
                f"{str(path)!r} holds a head for {saved[0]} labels on pooling={saved[1]!r} "
                f"(normalized: {saved[2]}) but the new model has {new[0]} labels on pooling="
                f"{new[1]!r} (normalized: {new[2]}): the encoder is reused, the head starts "
                "from scratch.",
                UserWarning, stacklevel=4)
            return False
        module.load_state_dict(persistence.section(tensors, "module"), strict=False)
        return True

    @staticmethod
    def _features(net, ids):
        """The pooled vectors of token ids, longest text first, and that order."""
        order = length_order(ids)
        return net.features(TokenizedDataset([ids[i] for i in order])), order

    def _probe(self, net, features, Y, pu, labels, anchored=False, seed=0):
        """Fit the head rows of ``labels`` on the frozen encoder's pooled vectors.

        ``features`` and ``Y`` have one row per text, in the same order.

        The linear probe of LP-FT; ``anchored`` (a continued fit) pulls it
        toward the current head instead of zero and, with the previous
        fit's expansion, lets cross-validation pick it, the expanded
        regression or their average. Returns the name of the head taken
        (None for a fresh fit).
        """
        head = net.plain_module.head
        C = np.full(Y.shape[1], float(self.probe_C))
        if anchored:
            # The head it is pulled toward is worth `anchor` known
            # positives: a label with one kept positive moves little.
            n = (Y == 1).sum(axis=0)
            C *= n / (n + self.anchor) if self.anchor > 0 else 1.0
        pu_labels, C = torch.from_numpy(pu), torch.from_numpy(C)

        def probe(x, y):
            return fit_linear_probe(x, torch.from_numpy(y), pu_labels, C=C,
                                    anchor=(head.weight, head.bias) if anchored else None)

        fits = {"probe": probe}
        hessian = getattr(self, "head_hessian_", None)
        if anchored and self.source_curvature and hessian is not None:
            expansion = (torch.from_numpy(self.head_gradient_), torch.from_numpy(hessian))
            fits["expanded"] = lambda x, y: fit_expanded_probe(
                x, torch.from_numpy(y), pu_labels, expansion, (head.weight, head.bias))
        chosen = self._choose_head(fits, features, Y, labels, seed)
        heads = {name: fit(features, Y) for name, fit in fits.items()
                 if chosen in (name, "average")}
        weight, bias = _head(heads, chosen)
        rows = torch.from_numpy(labels).to(head.bias.device)
        with torch.no_grad():
            head.weight[rows] = weight[rows].to(head.weight.dtype)
            head.bias[rows] = bias[rows].to(head.bias.dtype)
        return None if not anchored else chosen

    @staticmethod
    def _choose_head(fits, features, Y, labels, seed, n_splits=5):
        """The candidate head whose held-out scores rank observed positives best.

        ``"probe"`` when it is the only candidate or the texts are too few
        to split; otherwise the best of ``fits`` and ``"average"`` (the
        mean of the probe and the expanded head) by :func:`pu_roc_auc` over
        ``labels``, averaged over ``n_splits`` folds; ties go to the probe.
        """
        if len(fits) == 1 or len(Y) < 2 * n_splits:
            return "probe"
        scores = {name: [] for name in ("probe", "expanded", "average")}
        for fit_rows, held in KFold(n_splits, shuffle=True, random_state=seed).split(Y):
            heads = {name: fit(features[fit_rows], Y[fit_rows]) for name, fit in fits.items()}
            for name in scores:
                weight, bias = _head(heads, name)
                logits = (features[held].double() @ weight.double().T + bias.double())
                scores[name].append(pu_roc_auc(Y[held], logits.cpu().numpy(), labels))
        means = {name: np.mean([v for v in values if not np.isnan(v)] or [-np.inf])
                 for name, values in scores.items()}
        return max(means, key=means.get)

    def _configure(self, net, device, accelerator):
        """Bring a fitted network in line with the current parameters.

        Without skorch's ``set_params`` for what it would re-initialise (the
        criterion, the module), so that the weights and the optimizer's
        state carry over.
        """
        if isinstance(net, AcceleratedDALLMiNet) != (accelerator is not None):
            raise ValueError(
                f"This model was fitted {'with' if accelerator is None else 'without'} "
                "Accelerate: continue it the same way (see the accelerator parameter) or "
                "start a new fit."
            )
        net.accelerator = accelerator
        vars(net).update(self._net_params(device))
        net.criterion_.mixup_weight = self.mixup_weight
        net.criterion_.objective = self.objective
        net.set_params(lr=self.lr, optimizer__weight_decay=self.weight_decay)
        net.set_params(optimizer__param_groups__0__lr=self.head_lr or self.lr)
        if torch.device(net.device) != torch.device(device):
            net.device = device
            net.module_.to(device)
            net.criterion_.to(device)
            # Loading its own state moves the optimizer's moments to the
            # device of the parameters.
            net.optimizer_.load_state_dict(net.optimizer_.state_dict())
        if net.compile != self.compile:
            net.compile = self.compile
            net.module_ = net.torch_compile(net.plain_module, "module")

    @staticmethod
    def _dataset(ids, rows, Y=None):
        """The texts of ``rows``, longest first (for inference and validation)."""
        rows = rows[length_order([ids[i] for i in rows])]
        return TokenizedDataset([ids[i] for i in rows], None if Y is None else Y[rows])

    @staticmethod
    def _logits(net, ids, scorer=None):
        """Network outputs for token ids, in their order, from length-sorted batches.

        ``scorer`` (an :class:`OnnxInt8Scorer`) computes them from the
        network's inference batches instead of its module.
        """
        order = length_order(ids)
        logits = np.empty((len(ids), net.plain_module.head.out_features))
        dataset = TokenizedDataset([ids[i] for i in order])
        if scorer is None:
            logits[order] = net.forward(dataset).float().numpy()
        else:
            logits[order] = scorer.logits(net.get_iterator(dataset, training=False))
        return logits

    def _inference_scorer(self):
        """None for torch inference, else the ONNX scorer of the fitted network."""
        if self.inference == "torch":
            return None
        if self.inference not in INFERENCE_MODES:
            raise ValueError(f"inference={self.inference!r}: expected one of "
                             f"{list(INFERENCE_MODES)}.")
        cached = self.__dict__.get("_onnx_scorer")
        if cached is None or cached[0] is not self.net_:
            ids = tokenize(self.tokenizer_, ["an example text to export", "another one"],
                           self.max_length)
            example, _ = pad_batch([(i, None) for i in ids], self.tokenizer_.pad_token_id)
            cached = (self.net_, OnnxInt8Scorer(self.net_.plain_module, example))
            self._onnx_scorer = cached
        return cached[1]

    def _decision_rule(self, net, ids, Y, pu, before, continuing):
        """The class priors of the training texts, and the logit shifts that match them.

        A supervised label's prior is its positive rate among the known
        entries. A PU label with an observed positive in this call gets
        VPU's estimate (the mean of ``min(Phi / s, 1)``, with ``s`` the
        ``scale_quantile`` quantile of ``Phi``), in a continued fit its
        geometric mean with the previous model's mean probability, moved
        ``frequency_pooling`` of the way (in log space) toward one labelling
        frequency shared by the labels. The shift puts ``predict_proba``'s
        0.5 where that share of the training texts is above it. A PU label
        without a positive in this call keeps what it had.
        """
        logits = self._logits(net, ids)
        prior = (Y == 1).sum(axis=0) / np.maximum((Y != -1).sum(axis=0), 1)
        shift = np.zeros(Y.shape[1])
        kept = pu & ~(Y == 1).any(axis=0)
        if continuing:
            prior[kept], shift[kept] = self.class_prior_[kept], self.proba_shift_[kept]
        cols = pu & ~kept
        if cols.any():
            prior[cols] = pu_class_prior(logits[:, cols], Y[:, cols],
                                         None if before is None else before[:, cols],
                                         quantile=self.scale_quantile,
                                         pooling=self.frequency_pooling)
        shift[~kept] = prior_logit_shift(logits[:, ~kept], prior[~kept])
        return shift, prior

    @property
    def classes_(self):
        """``[0, 1]`` per label, the layout sklearn reads as multi-label."""
        check_is_fitted(self, "net_")
        return np.array([0, 1]) if self._binary else np.tile([0, 1], (self.n_labels_, 1))

    @property
    def device_(self):
        """The device the network is on (a str)."""
        check_is_fitted(self, "net_")
        return str(self.net_.device)

    @property
    def history_(self):
        """Training history of the network (a :class:`skorch.History`)."""
        check_is_fitted(self, "net_")
        return self.net_.history

    # ---------------------------------------------------------- persistence

    def save_pretrained(self, directory, *, include_optimizer=False):
        """Save the fitted estimator to a directory, without pickle.

        The encoder and tokenizer go through Hugging Face ``save_pretrained``
        (safetensors), the head, the fitted arrays and (optionally) the AdamW
        state to ``dallmi.safetensors``, the history to ``history.json``
        (skorch's own format), and the parameters and fitted scalars to
        ``dallmi.json``, written last. The write is atomic: an interrupted
        save leaves no directory that loads, and a previous save at
        ``directory`` stays intact until the new one replaces it. The
        directory also serves as ``model=`` for a new estimator, which then
        starts from this encoder and, when the number of labels matches,
        this head. ``callbacks`` and ``accelerator`` are not saved (they are
        code or live objects); the loaded estimator has their defaults.

        Parameters
        ----------
        directory : str or os.PathLike
            Created, or replaced if it holds a previous save; any other
            non-empty directory is refused.
        include_optimizer : bool, default=False
            Also save the AdamW state, so that ``partial_fit`` after loading
            continues exactly; otherwise it starts from a fresh AdamW state.

        Returns
        -------
        directory : str
            Absolute path of the saved directory.

        Notes
        -----
        In a multi-process launch every process holds the same model: only
        the main process writes, and every process waits for the write.
        """
        check_is_fitted(self, "net_")
        params = {name: value for name, value in self.get_params(deep=False).items()
                  if name not in _RUNTIME_PARAMS}
        params["model"] = None if self.model is None else os.fspath(self.model)
        arrays = {f"param.{name}": params.pop(name) for name in
                  [k for k, v in params.items() if isinstance(v, np.ndarray)]}
        arrays.update({f"fitted.{name}": np.asarray(getattr(self, name)) for name in _ARRAYS})
        arrays.update({f"fitted.{name}": getattr(self, name) for name in _EXPANSION
                       if getattr(self, name, None) is not None})
        for name, value in params.items():
            try:
                json.dumps(value, allow_nan=False)
            except (TypeError, ValueError):
                raise ValueError(
                    f"Cannot save {type(self).__name__}: the parameter {name}={value!r:.60} "
                    "cannot be written as JSON; set it to a plain value first (for "
                    "random_state: an int or None)."
                ) from None
        net = self.net_
        tensors = {f"module.{k}": v for k, v in net.plain_module.state_dict().items()
                   if not k.startswith("encoder.")}
        tensors.update({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in arrays.items()})
        optimizer = None
        if include_optimizer:
            state = net.optimizer_.state_dict()
            tensors.update({f"optimizer.{i}.{key}": value for i, entries in
                            state["state"].items() for key, value in entries.items()})
            optimizer = state["param_groups"]
        manifest = {
            "params": params,
            "fitted": {"n_labels_": int(self.n_labels_), "n_epochs_": int(self.n_epochs_),
                       "binary": bool(self._binary),
                       "stage_head_": getattr(self, "stage_head_", None)},
            "optimizer": optimizer,
        }

        def write_files(tmp):
            module = net.plain_module
            module.encoder.save_pretrained(tmp)
            write_checkpoint_pooling(tmp, module.pooling, module.normalize,
                                     module.head.in_features)
            self.tokenizer_.save_pretrained(tmp)
            net.history.to_file(os.path.join(tmp, persistence.HISTORY))

        if not _launched_distributed():
            return persistence.write_save(directory, manifest, tensors, write_files)
        from accelerate import PartialState

        try:  # the main process writes, every process waits for it
            if PartialState().is_main_process:
                persistence.write_save(directory, manifest, tensors, write_files)
        finally:
            PartialState().wait_for_everyone()
        return os.path.abspath(os.fspath(directory))

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
            Overrides the saved ``device``. A CUDA device on a machine
            without CUDA falls back to the CPU with a
            :class:`~skorch.exceptions.DeviceWarning`.

        Returns
        -------
        estimator : DALLMiClassifier
            Fitted; its ``model`` parameter is ``directory`` (the saved
            ``model`` is kept in ``dallmi.json`` as provenance), so that
            ``clone(estimator).fit(...)`` starts from the saved model.
        """
        path, manifest, tensors = persistence.read_save(directory)
        params = dict(manifest["params"])
        params.update({k: v.numpy() for k, v in persistence.section(tensors, "param").items()})
        params["model"] = path
        if device is not None:
            params["device"] = device
        try:
            estimator = cls(**params)
        except TypeError as exc:
            raise ValueError(f"{path}: parameters not accepted by {cls.__name__}: {exc}") from exc
        estimator._validate_params()
        fitted = manifest["fitted"]
        n_labels = fitted["n_labels_"]
        for name in _ARRAYS:
            value = tensors[f"fitted.{name}"].numpy()
            if value.shape != (n_labels,):
                raise ValueError(f"{path} is corrupted: {name} is not an array of {n_labels} "
                                 "values.")
            setattr(estimator, name, value)
        # Building the network draws a random head that is overwritten at
        # once: keep the caller's random state untouched.
        with torch.random.fork_rng(devices=[]):
            tokenizer = load_tokenizer(path)
            net = estimator._build_net(path, n_labels, tokenizer,
                                       resolve_device(estimator.device))
        try:
            missing = net.plain_module.load_state_dict(
                persistence.section(tensors, "module"), strict=False).missing_keys
            if any(not key.startswith("encoder.") for key in missing):
                raise ValueError(f"no saved weights for {missing}")
            if manifest["optimizer"] is not None:
                state = {}
                for key, value in persistence.section(tensors, "optimizer").items():
                    index, name = key.split(".", 1)
                    state.setdefault(int(index), {})[name] = value
                net.optimizer_.load_state_dict({"state": state,
                                                "param_groups": manifest["optimizer"]})
        except (KeyError, ValueError, RuntimeError) as exc:
            raise ValueError(f"{path} is corrupted: {exc}") from exc
        net.criterion_.set_pu_labels(estimator.pu_labels_)
        net.history = net.history.from_file(os.path.join(path, persistence.HISTORY))
        estimator.net_ = net
        estimator.tokenizer_ = tokenizer
        estimator.n_labels_ = n_labels
        estimator.n_epochs_ = fitted["n_epochs_"]
        estimator._binary = fitted["binary"]
        estimator.stage_head_ = fitted.get("stage_head_")
        width = net.plain_module.head.in_features + 1
        shapes = {"head_gradient_": (n_labels, width), "head_hessian_": (n_labels, width, width)}
        for name in _EXPANSION:
            value = tensors.get(f"fitted.{name}")
            if value is not None and tuple(value.shape) != shapes[name]:
                raise ValueError(f"{path} is corrupted: {name} has shape {tuple(value.shape)}, "
                                 f"not {shapes[name]}.")
            setattr(estimator, name, None if value is None else value.numpy())
        return estimator

    # -------------------------------------------------------------- predict

    def _stream(self, X, transform, dtype, n_columns):
        """Apply ``transform`` to the shifted logits of ``X``, chunk by chunk.

        ``X`` may be any iterable of texts: ``_PREDICT_CHUNK`` texts are
        checked, tokenised and scored at a time. The results are written in
        input order into a preallocated array when ``len(X)`` is known, else
        into a list of per-chunk arrays concatenated at the end.
        """
        check_is_fitted(self, "net_")
        if self.precision not in _PRECISIONS:
            raise ValueError(f"precision={self.precision!r}: expected one of {list(_PRECISIONS)}.")
        self.net_.precision = self.precision  # as set now, not at the fit
        n_texts = len(X) if isinstance(X, Sized) and not isinstance(X, (str, bytes)) else None
        out = None
        if n_texts is not None and n_texts > 0:
            out = np.empty((n_texts, n_columns), dtype=dtype)
        parts = []
        for start, texts in text_chunks(X, _PREDICT_CHUNK):
            scores = self._logits(self.net_, tokenize(self.tokenizer_, texts, self.max_length),
                                  self._inference_scorer())
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

    def __getstate__(self):
        # A copy: scikit-learn returns the instance's own __dict__ here.
        state = dict(super().__getstate__())
        # An ONNX Runtime session does not pickle; the next prediction
        # rebuilds it.
        state.pop("_onnx_scorer", None)
        return state

    def __setstate__(self, state):
        # A pickle from an earlier version lacks the constructor parameters
        # added since: they take their defaults, as in from_pretrained.
        super().__setstate__({**type(self)().get_params(deep=False), **state})

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True
        tags.input_tags.two_d_array = False
        tags.classifier_tags.multi_label = True
        tags.target_tags.multi_output = True
        tags.non_deterministic = False
        return tags
