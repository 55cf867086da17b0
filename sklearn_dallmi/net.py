"""The private skorch network behind :class:`~sklearn_dallmi.DALLMiClassifier`.

It overrides two of skorch's hooks: ``get_iterator`` (label-balanced batches
with per-batch padding) and ``train_step_single`` (the main forward, one
mixed forward for MixUp on word embeddings, and the DALLMi criterion).
"""

import contextlib

import numpy as np
import torch
from skorch import NeuralNet
from skorch.callbacks import PassthroughScoring

from .loss import draw_mixup_partners
from .sampling import LabelBalancedSampler
from .text import collate, length_sorted_batches

LOSS_TERMS = ("variational", "mixup", "bce")
_SAME_AS_FITTED = "__same_object_as_the_fitted_attribute__"


class TokenizedDataset(torch.utils.data.Dataset):
    """Token ids of every text and, for training, the label matrix."""

    def __init__(self, ids, y=None):
        self.ids = ids
        self.y = y

    def __len__(self):
        return len(self.ids)

    def __getitem__(self, i):
        return self.ids[i], (None if self.y is None else self.y[i])


def distributed_context():
    """``(rank, world_size)`` of the default process group, or ``None``.

    Training is data-parallel when ``torch.distributed`` has a default
    process group of more than one process.
    """
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        return dist.get_rank(), dist.get_world_size()
    return None


def _collective_device(device):
    """Where tensors must be for collectives: the GPU with NCCL, else the CPU."""
    if torch.distributed.get_backend() == "nccl":
        return torch.device(device)
    return torch.device("cpu")


def _is_cuda(device):
    return str(device).startswith("cuda")


def _pinned(batch):
    """The tensors of a collated batch in page-locked memory."""
    return {name: tensor.pin_memory() for name, tensor in batch.items()}


def _to(batch, device):
    """Move a collated batch; asynchronous from pinned memory on CUDA."""
    return {name: tensor.to(device, non_blocking=_is_cuda(device))
            for name, tensor in batch.items()}


class _BalancedIterator:
    """Label-balanced training batches; one pass of ``iter`` is one epoch.

    With ``pin=True`` (the device is CUDA) the batches are collated into
    page-locked memory, so that copies to the GPU can be asynchronous.
    """

    def __init__(self, dataset, sampler, pad_id, pin=False):
        self.dataset = dataset
        self.sampler = sampler
        self.pad_id = pad_id
        self.pin = pin

    def __iter__(self):
        for rows in self.sampler:
            x = collate(self.dataset.ids, rows, self.pad_id)
            y = torch.from_numpy(self.dataset.y[rows])
            if self.pin:
                x, y = _pinned(x), y.pin_memory()
            yield x, y

    def __len__(self):
        return len(self.sampler)


class DALLMiNet(NeuralNet):
    """skorch network training an :class:`EncoderClassifier` with DALLMi.

    Parameters
    ----------
    module, criterion, optimizer, lr, max_epochs, batch_size, device, verbose
        As in :class:`skorch.NeuralNet`; ``criterion`` is a
        :class:`~sklearn_dallmi.loss.DALLMiLoss`.
    pad_id : int
        The tokenizer's padding id.
    mixup_alpha : float
        Parameter of the Beta distribution of the mixing weight.
    positive_fraction : float
        Share of each training batch drawn label-balanced.
    seed : int
        Seeds the sampler and the MixUp draws.
    compile_forward : bool, default=False
        Run the module's forward passes through ``torch.compile``. The
        compiled wrapper shares the module's parameters and is rebuilt after
        copying or unpickling, so ``module_`` and its state dict stay those
        of the plain module.
    **kwargs
        Passed to :class:`skorch.NeuralNet`.

    Notes
    -----
    Data-parallel training: when a default ``torch.distributed`` process
    group of ``W > 1`` processes exists (gloo on CPUs, NCCL on GPUs), every
    process must call ``fit`` with the same data and seed. Training begins
    by broadcasting rank 0's parameters; each process then takes its share of
    the same seeded sequence of label-balanced batches (batch ``i`` goes to
    rank ``i % W``), and after each backward pass the gradients are summed
    with one ``all_reduce`` over a flat buffer and divided by ``W``, so all
    processes apply the same update and end with the same weights. The module
    is never wrapped (no ``DistributedDataParallel``), so the fitted network
    is the one a single-process fit gives. MixUp partners and dropout are
    drawn per process.

    Host-device synchronisation: a training step records its loss terms
    (``train_variational``, ``train_mixup``, ``train_bce``) in
    ``on_batch_end``, after skorch has read the loss with ``.item()``. That
    read is skorch's own and waits for the step to finish; the terms are
    fetched with one ``tolist()`` right after it, when the device is idle, so
    the step itself has no synchronisation point of ours.
    """

    def __init__(self, module, criterion, *, pad_id, mixup_alpha, positive_fraction,
                 seed, compile_forward=False, **kwargs):
        kwargs.setdefault("train_split", None)
        callbacks = list(kwargs.pop("callbacks", None) or [])
        callbacks += [
            (f"train_{term}", PassthroughScoring(name=f"train_{term}", on_train=True))
            for term in LOSS_TERMS
        ]
        super().__init__(module, criterion, callbacks=callbacks, **kwargs)
        self.pad_id = pad_id
        self.mixup_alpha = mixup_alpha
        self.positive_fraction = positive_fraction
        self.seed = seed
        self.compile_forward = compile_forward
        self.rng_ = np.random.default_rng(seed)

    def __getstate__(self):
        # The module and criterion were passed as instances, so skorch keeps
        # them twice (``module`` and ``module_``) and only maps the fitted
        # copy from GPU to CPU on load: store the fitted one once.
        state = super().__getstate__()
        state.pop("_compiled_forward", None)
        state.pop("_rank_rng", None)
        for name in ("module", "criterion"):
            if state.get(name) is not None and state[name] is self.__dict__.get(name + "_"):
                state[name] = _SAME_AS_FITTED
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        for name in ("module", "criterion"):
            if isinstance(self.__dict__.get(name), str) and self.__dict__[name] == _SAME_AS_FITTED:
                setattr(self, name, getattr(self, name + "_"))

    def move_to(self, device):
        """Move the fitted module, the criterion and the optimizer state to ``device``."""
        self.device = device
        self.module_.to(device)
        self.criterion_.to(device)
        for state in self.optimizer_.state.values():
            for key, value in state.items():
                if torch.is_tensor(value) and key != "step":
                    state[key] = value.to(device)

    @property
    def pu_labels(self):
        """Boolean mask of the labels trained in PU mode."""
        return self.criterion_.pu_labels.cpu().numpy()

    def autocast(self):
        """bf16 autocast on CUDA; nothing elsewhere."""
        if str(self.device).startswith("cuda"):
            return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _mixup_rng(self):
        # Per-process in distributed training (set in on_train_begin), so
        # that the shared generator, which seeds the sampler, stays in step.
        rng = self.__dict__.get("_rank_rng")
        return self.rng_ if rng is None else rng

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        super().on_train_begin(net, X=X, y=y, **kwargs)
        context = distributed_context()
        if context is None:
            return
        rank, _ = context
        where = _collective_device(self.device)
        # Different data on different processes would make them take
        # different numbers of steps and hang in all_reduce: fail on all.
        shape = torch.tensor([len(X), X.y.shape[1]], dtype=torch.int64, device=where)
        high, low = shape.clone(), shape.clone()
        torch.distributed.all_reduce(high, op=torch.distributed.ReduceOp.MAX)
        torch.distributed.all_reduce(low, op=torch.distributed.ReduceOp.MIN)
        if not torch.equal(high, low):
            raise ValueError(
                "Data-parallel fit: every process must fit the same data, but the "
                f"processes hold between {low[0].item()} and {high[0].item()} texts and "
                f"{low[1].item()} to {high[1].item()} label columns."
            )
        self._rank_rng = np.random.default_rng([self.seed, rank, len(self.history)])
        for tensor in list(self.module_.parameters()) + list(self.module_.buffers()):
            buffer = tensor.data.to(where)
            torch.distributed.broadcast(buffer, src=0)
            tensor.data.copy_(buffer)

    def on_train_end(self, net, X=None, y=None, **kwargs):
        super().on_train_end(net, X=X, y=y, **kwargs)
        self.__dict__.pop("_rank_rng", None)

    def _average_gradients(self, world_size):
        """Average the gradients over the processes with one all_reduce.

        A flag per parameter travels with the gradients, so that a parameter
        without a gradient on every process (e.g. an unused pooler) keeps
        ``grad = None``, as in a single-process step.
        """
        params = [p for p in self.module_.parameters() if p.requires_grad]
        where = _collective_device(self.device)
        flat = torch.cat(
            [(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1).to(where)
             for p in params]
            + [torch.tensor([float(p.grad is not None) for p in params], device=where)]
        )
        torch.distributed.all_reduce(flat)
        grads = flat[:-len(params)].div_(world_size).split([p.numel() for p in params])
        has_grad = flat[-len(params):].tolist()
        for p, grad, flag in zip(params, grads, has_grad):
            p.grad = grad.view_as(p).to(p.device, p.dtype) if flag > 0 else None

    def forward_module(self, **inputs):
        """Call the module, through ``torch.compile`` if ``compile_forward``."""
        if not self.compile_forward:
            return self.module_(**inputs)
        compiled = self.__dict__.get("_compiled_forward")
        if compiled is None or compiled[0] is not self.module_:
            compiled = (self.module_, torch.compile(self.module_))
            self._compiled_forward = compiled
        return compiled[1](**inputs)

    def get_iterator(self, dataset, training=False):
        if not training:
            raise NotImplementedError("Inference goes through predict_logits.")
        positives = dataset.y == 1
        rank, world_size = distributed_context() or (0, 1)
        sampler = LabelBalancedSampler(
            positives, self.batch_size, self.positive_fraction,
            random_state=int(self.rng_.integers(2**63 - 1)),
            rank=rank, world_size=world_size,
        )
        if len(sampler) == 0:
            raise ValueError(
                f"{len(dataset)} rows make {sampler.n_batches_per_epoch()} batches of "
                f"{self.batch_size}, fewer than the {world_size} processes; use a smaller "
                "batch_size or more data."
            )
        return _BalancedIterator(dataset, sampler, self.pad_id, pin=_is_cuda(self.device))

    def _mixup_inputs(self, y_cpu):
        criterion = self.criterion_
        if self.mixup_alpha <= 0 or criterion.mixup_weight == 0:
            return None, None
        partner, gamma = draw_mixup_partners(
            y_cpu.numpy(), self.pu_labels, self.mixup_alpha, self._mixup_rng()
        )
        if partner is None:
            return None, None
        return (
            torch.from_numpy(partner).to(self.device, non_blocking=True),
            torch.from_numpy(gamma).to(self.device, dtype=torch.float32, non_blocking=True),
        )

    def train_step_single(self, batch, **fit_params):
        self._set_training(True)
        x_cpu, y_cpu = batch
        x = _to(x_cpu, self.device)
        y = y_cpu.to(self.device, non_blocking=_is_cuda(self.device))
        partner, gamma = self._mixup_inputs(y_cpu)
        module = self.module_
        mix_logits = None
        with self.autocast():
            logits = self.forward_module(input_ids=x["input_ids"],
                                         attention_mask=x["attention_mask"])
            if partner is not None:
                grad = self.criterion_.objective != "published"
                with torch.set_grad_enabled(grad):
                    emb = module.embed(x["input_ids"])
                    g = gamma.view(-1, 1, 1).to(emb.dtype)
                    mixed = g * emb[partner] + (1 - g) * emb
                    mask = torch.maximum(x["attention_mask"][partner], x["attention_mask"])
                    mix_logits = self.forward_module(inputs_embeds=mixed, attention_mask=mask)
        loss, terms = self.criterion_(logits, y, mix_logits, partner, gamma)
        loss.backward()
        context = distributed_context()
        if context is not None:
            self._average_gradients(context[1])
        # Kept on the device; read in on_batch_end, after skorch's own sync.
        loss_terms = torch.stack([terms[t].detach().float() for t in LOSS_TERMS])
        return {"loss": loss, "y_pred": logits, "loss_terms": loss_terms}

    def on_batch_end(self, net, batch=None, training=False, loss_terms=None, **kwargs):
        super().on_batch_end(net, batch=batch, training=training, **kwargs)
        if training and loss_terms is not None:
            for term, value in zip(LOSS_TERMS, loss_terms.tolist()):
                self.history.record_batch(f"train_{term}", value)

    def predict_logits(self, ids, batch_size):
        """Logits for tokenised texts, computed in length-sorted batches.

        Parameters
        ----------
        ids : list of numpy.ndarray
            Token ids of each text.
        batch_size : int

        Returns
        -------
        logits : numpy.ndarray of shape (len(ids), n_labels), float32
            In the order of ``ids``.
        """
        self.check_is_fitted()
        n_labels = self.module_.head.out_features
        out = np.empty((len(ids), n_labels), dtype=np.float32)
        self._set_training(False)
        with torch.inference_mode(), self.autocast():
            for rows in length_sorted_batches(ids, batch_size):
                x = collate(ids, rows, self.pad_id)
                if _is_cuda(self.device):
                    x = _pinned(x)
                out[rows] = self.forward_module(**_to(x, self.device)).float().cpu().numpy()
        return out
