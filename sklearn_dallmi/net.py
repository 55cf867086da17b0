"""The private skorch network behind :class:`~sklearn_dallmi.DALLMiClassifier`.

Everything runs through skorch's own paths: ``iterator_train`` is a
:class:`~torch.utils.data.DataLoader` over label-balanced batches whose
collator pads the token ids and draws each row's MixUp partner;
``iterator_valid`` a plain ``DataLoader`` with the padding collator; the
module returns the main and the mixed logits from one forward call, and
``get_loss`` turns them into the DALLMi loss. skorch's training, validation,
``forward``, ``predict`` and callbacks therefore work unchanged, and so does
its :class:`~skorch.hf.AccelerateMixin` for several processes.
"""

import contextlib
import warnings

import numpy as np
import torch
from skorch import NeuralNet
from skorch.callbacks import EarlyStopping, EpochScoring, PassthroughScoring
from skorch.exceptions import DeviceWarning
from skorch.hf import AccelerateMixin
from skorch.utils import to_tensor

from .loss import draw_mixup_partners, observed_positives
from .metrics import macro_average_precision
from .sampling import LabelBalancedSampler
from .text import pad_batch

LOSS_TERMS = ("variational", "mixup", "bce", "anchor")


def uses_bf16(precision, device_type):
    """Whether a ``precision`` parameter means bf16 autocast on a device type."""
    return precision == "bf16" or precision == "auto" and device_type == "cuda"


def resolve_device(device):
    """The torch device to run on, for a ``device`` parameter.

    The one device policy of the package, used by ``fit``, ``from_pretrained``
    and unpickling alike: ``"auto"`` is CUDA when available, else the CPU;
    a CUDA device on a machine without CUDA falls back to the CPU with a
    :class:`skorch.exceptions.DeviceWarning`, as skorch does for pickles.

    Parameters
    ----------
    device : str
        ``"auto"`` or a torch device string.

    Returns
    -------
    device : str
    """
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        kind = torch.device(device).type
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device={device!r} is not a torch device: {exc}") from exc
    if kind == "cuda" and not torch.cuda.is_available():
        warnings.warn(f"device={device!r} but CUDA is not available: running on the CPU.",
                      DeviceWarning, stacklevel=3)
        return "cpu"
    return device


def stopped_early(interrupt):
    """Whether a ``KeyboardInterrupt`` is skorch's ``EarlyStopping`` ending a fit.

    skorch's :class:`~skorch.callbacks.EarlyStopping` stops training by
    raising ``KeyboardInterrupt``, which skorch's own ``partial_fit``
    swallows together with a user's Ctrl-C. Training here must stop on the
    former and propagate the latter, so the raising frame tells them apart.
    """
    tb = interrupt.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb is not None and isinstance(tb.tb_frame.f_locals.get("self"), EarlyStopping)


class TokenizedDataset(torch.utils.data.Dataset):
    """Token ids of every text and, for training, the label matrix.

    Parameters
    ----------
    ids : list of numpy.ndarray
        Token ids of each text.
    y : numpy.ndarray of shape (n_texts, n_labels) or None, default=None
        Labels in ``{1, 0, -1}`` as float32.
    anchor : numpy.ndarray of shape (n_texts, n_labels) or None, default=None
        A previous model's probabilities, for the anchor term of the loss;
        the targets of a row are then ``{"y": ..., "anchor": ...}``.
    """

    def __init__(self, ids, y=None, anchor=None):
        self.ids = ids
        self.y = y
        self.anchor = anchor

    def __len__(self):
        return len(self.ids)

    def __getitem__(self, i):
        if self.anchor is not None:
            return self.ids[i], {"y": self.y[i], "anchor": self.anchor[i]}
        return self.ids[i], (None if self.y is None else self.y[i])


class MixUpCollator:
    """``collate_fn`` of training: pad, then draw each row's MixUp partner.

    The partner (a row of the batch that is an observed positive of a PU
    label) and the mixing weight ``gamma`` join the batch as ``partner`` and
    ``gamma``, which skorch passes to the module's ``forward``. Batches
    without a positive of a PU label, or with MixUp off, have neither.

    Parameters
    ----------
    pad_id : int
        The tokenizer's padding id.
    pu_labels : numpy.ndarray of shape (n_labels,), dtype bool
        Labels trained in PU mode.
    alpha : float
        Parameter of the Beta distribution of ``gamma``; 0 switches MixUp off.
    random_state : int or None
        Seeds the draws.
    """

    def __init__(self, pad_id, pu_labels, alpha, random_state=None):
        self.pad_id = pad_id
        self.pu_labels = np.asarray(pu_labels, dtype=bool)
        self.alpha = alpha
        self.rng = np.random.default_rng(random_state)

    def __call__(self, items):
        x, y = pad_batch(items, self.pad_id)
        if self.alpha > 0 and self.pu_labels.any():
            labels = (y["y"] if isinstance(y, dict) else y).numpy()
            partner, gamma = draw_mixup_partners(labels, self.pu_labels, self.alpha, self.rng)
            if partner is not None:
                x["partner"] = torch.from_numpy(partner)
                x["gamma"] = torch.from_numpy(gamma.astype(np.float32))
        return x, y


def balanced_positives(y, pu_labels=None):
    """The rows the label-balanced slots draw from, per label.

    Every positive of a supervised label and the observed positives of a PU
    label (:func:`~sklearn_dallmi.loss.observed_positives`): a PU label's
    slots go to the positives its variational term and MixUp use.

    Parameters
    ----------
    y : numpy.ndarray of shape (n_rows, n_labels)
        Labels in ``{1, 0, -1}``.
    pu_labels : numpy.ndarray of shape (n_labels,), dtype bool, or None
        Which labels are trained in PU mode; None reads every ``1``.

    Returns
    -------
    positives : numpy.ndarray of shape (n_rows, n_labels), dtype bool
    """
    if pu_labels is None:
        return y == 1
    pu_labels = np.asarray(pu_labels, dtype=bool)
    return observed_positives(y, pu_labels) | ((y == 1) & ~pu_labels)


def label_balanced_loader(dataset, batch_size, positive_fraction, random_state=None,
                          pu_labels=None, **kwargs):
    """A ``DataLoader`` of label-balanced batches (skorch's ``iterator_train``).

    Parameters
    ----------
    dataset : TokenizedDataset
        Training texts with their labels.
    batch_size : int
        Rows per batch.
    positive_fraction : float
        Share of each batch drawn label-balanced.
    random_state : int or None, default=None
        Seeds the :class:`~sklearn_dallmi.sampling.LabelBalancedSampler`.
    pu_labels : numpy.ndarray of shape (n_labels,), dtype bool, or None
        Which labels are trained in PU mode (see :func:`balanced_positives`).
    **kwargs
        Passed to :class:`torch.utils.data.DataLoader` (``collate_fn``,
        ``pin_memory``, ...).

    Returns
    -------
    loader : torch.utils.data.DataLoader
    """
    sampler = LabelBalancedSampler(balanced_positives(dataset.y, pu_labels), batch_size,
                                   positive_fraction, random_state)
    return torch.utils.data.DataLoader(dataset, batch_sampler=sampler, **kwargs)


def validation_macro_ap(net, dataset, y):
    """Macro average precision on the validation rows, ``-1`` counted as negative.

    The estimator's ``score``, recorded as ``valid_macro_ap`` in the history.
    """
    logits = net.forward(dataset)
    return macro_average_precision(y, logits.float().numpy())


class DALLMiNet(NeuralNet):
    """skorch network training an :class:`~sklearn_dallmi.module.EncoderClassifier`.

    ``criterion`` is a :class:`~sklearn_dallmi.loss.DALLMiLoss`; the batch
    of the training iterator carries the MixUp partners. Its history records
    the loss terms ``train_variational``, ``train_mixup`` and ``train_bce``
    per batch and epoch and, with a validation set, ``valid_loss`` (without
    MixUp) and ``valid_macro_ap``. ``precision`` is the estimator's (see
    :meth:`autocast`).
    """

    def __init__(self, module, *args, precision="auto", **kwargs):
        super().__init__(module, *args, **kwargs)
        self.precision = precision

    def get_default_callbacks(self):
        return [
            *super().get_default_callbacks(),
            *[(f"train_{term}", PassthroughScoring(name=f"train_{term}", on_train=True))
              for term in LOSS_TERMS],
            ("valid_macro_ap", EpochScoring(validation_macro_ap, lower_is_better=False,
                                            name="valid_macro_ap")),
        ]

    def torch_compile(self, module, name):
        # Only the module: the criterion is cheap, and its settings are
        # updated in place between fits, which a compiled wrapper would hide.
        return super().torch_compile(module, name) if name == "module" else module

    @property
    def plain_module(self):
        """The module without skorch's ``torch.compile`` wrapper."""
        return getattr(self.module_, "_orig_mod", self.module_)

    def autocast(self):
        """bf16 autocast on CUDA (``precision="auto"``) or on any device (``"bf16"``)."""
        kind = torch.device(self.device or "cpu").type
        # Networks pickled before ``precision`` existed ran as "auto".
        if uses_bf16(getattr(self, "precision", "auto"), kind):
            return torch.autocast(device_type=kind, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def features(self, dataset):
        """The pooled encoder outputs of a dataset's texts, in its order.

        Parameters
        ----------
        dataset : TokenizedDataset

        Returns
        -------
        features : torch.Tensor of shape (len(dataset), hidden_size)
            float32, on the network's device.
        """
        self._set_training(False)
        parts = []
        with torch.inference_mode(), self.autocast():
            for x, _ in self.get_iterator(dataset, training=False):
                x = to_tensor(x, self.device)
                parts.append(self.plain_module.pool(x["input_ids"], x["attention_mask"]).float())
        return torch.cat(parts)

    def evaluation_step(self, batch, training=False):
        if training:
            return super().evaluation_step(batch, training=True)
        with torch.inference_mode():  # lighter than skorch's no_grad
            return super().evaluation_step(batch, training=False)

    def infer(self, x, **fit_params):
        with self.autocast():
            return super().infer(x, **fit_params)

    def get_loss(self, y_pred, y_true, X=None, training=False):
        logits, mix_logits = y_pred if isinstance(y_pred, tuple) else (y_pred, None)
        targets = to_tensor(y_true if isinstance(y_true, dict) else {"y": y_true}, self.device)
        extra = {k: to_tensor(X[k], self.device) for k in ("partner", "gamma") if k in X}
        total, terms = self.criterion_(logits, targets["y"], mix_logits,
                                       anchor=targets.get("anchor"), **extra)
        if training:
            # Kept on the device; read in on_batch_end, after skorch's own sync.
            self._loss_terms = torch.stack([terms[t].float() for t in LOSS_TERMS])
        return total

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        super().on_train_begin(net, X=X, y=y, **kwargs)
        # A learning-rate scheduler of an earlier fit left its base rates
        # here; this fit's scheduler must start from the rates set now.
        for group in self.optimizer_.param_groups:
            group.pop("initial_lr", None)

    def on_batch_end(self, net, batch=None, training=False, **kwargs):
        super().on_batch_end(net, batch=batch, training=training, **kwargs)
        terms = self.__dict__.pop("_loss_terms", None)
        if training and terms is not None:
            for term, value in zip(LOSS_TERMS, terms.tolist()):
                self.history.record_batch(f"train_{term}", value)

    def __setstate__(self, state):
        super().__setstate__(state)
        # Pinned memory only serves CUDA: a network trained on a GPU and
        # loaded where skorch falls back to the CPU would warn at every
        # prediction's DataLoader.
        if torch.device(self.device).type != "cuda":
            for name in ("iterator_train__pin_memory", "iterator_valid__pin_memory"):
                if name in vars(self):
                    vars(self)[name] = False


class AcceleratedDALLMiNet(AccelerateMixin, DALLMiNet):
    """:class:`DALLMiNet` trained through Hugging Face Accelerate.

    Accelerate wraps the module (``DistributedDataParallel`` over several
    processes), deals the training batches across processes, averages the
    gradients, and brings mixed precision and gradient accumulation. Only
    training is distributed: validation and prediction run on every process
    over all their rows, so that every process records the same validation
    scores (and callbacks such as early stopping decide alike) and a fitted
    network predicts on one process. After training the module and the
    optimizer are unwrapped and the accelerator is dropped from pickles, so
    the fitted network is the one a single-process fit gives.
    """

    def _validate_params(self):
        # The estimator sets ``device`` to the accelerator's device, so
        # skorch and Accelerate place tensors on the same device.
        NeuralNet._validate_params(self)

    def initialize(self):
        # Wrap at the start of each fit (on_train_begin) instead, once the
        # estimator has set the module up (a saved head, for instance).
        return NeuralNet.initialize(self)

    def _initialize_accelerator(self):
        # The criterion holds no parameter, and DistributedDataParallel
        # refuses to wrap a module without one: prepare everything else.
        criteria, self._criteria = self._criteria, []
        try:
            return super()._initialize_accelerator()
        finally:
            self._criteria = criteria

    def autocast(self):
        if self.accelerator is None:  # after training
            return super().autocast()
        return self.accelerator.autocast()

    def get_iterator(self, dataset, training=False):
        if training:
            return super().get_iterator(dataset, training=True)
        return DALLMiNet.get_iterator(self, dataset, training=False)

    def evaluation_step(self, batch, training=False):
        return DALLMiNet.evaluation_step(self, batch, training=training)

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        from accelerate.utils import gather_object

        sizes = gather_object([(len(X), X.y.shape[1])])
        if len(set(sizes)) > 1:
            (low, _), (high, _) = min(sizes), max(sizes)
            raise ValueError(
                "Data-parallel fit: every process must fit the same data, but the processes "
                f"hold between {low} and {high} texts and "
                f"{sorted({n for _, n in sizes})} label columns."
            )
        self._initialize_accelerator()
        super().on_train_begin(net, X=X, y=y, **kwargs)

    def on_train_end(self, net, X=None, y=None, **kwargs):
        super().on_train_end(net, X=X, y=y, **kwargs)
        self.optimizer_ = getattr(self.optimizer_, "optimizer", self.optimizer_)
        self.accelerator = None
