"""Fast CPU scoring: the fitted module in ONNX Runtime with int8 weights.

The module is exported with torch's ONNX exporter (the ``torch.export``
based one: the TorchScript exporter is deprecated and traced the attention
mask of a BERT wrongly in our probes), its linear layers' weights are
quantised to int8 per output channel by ONNX Runtime's dynamic quantisation
(activations are quantised on the fly; the embedding tables are stored in
int8 too, ONNX Runtime's default), and an ONNX Runtime session on the CPU
computes the logits. Nothing is written to disk but a temporary folder.
"""

import copy
import logging
import os
import tempfile
import warnings

import numpy as np
import torch
from torch import nn

__all__ = ["OnnxInt8Scorer", "INFERENCE_MODES"]

INFERENCE_MODES = ("torch", "onnx-int8")

_EXTRA = "pip install 'sklearn-dallmi[onnx]'"


def _import_onnxruntime():
    try:
        import onnx  # noqa: F401
        import onnxruntime
        import onnxscript  # noqa: F401
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as exc:
        raise ImportError(
            f"inference='onnx-int8' needs onnxruntime, onnx and onnxscript ({_EXTRA}; or "
            f"set_params(inference='torch')): {exc}"
        ) from exc
    return onnxruntime, quantize_dynamic, QuantType


class _Logits(nn.Module):
    """The module's inference signature, ``(input_ids, attention_mask) -> logits``."""

    def __init__(self, module):
        super().__init__()
        self.module = module

    def forward(self, input_ids, attention_mask):
        return self.module(input_ids=input_ids, attention_mask=attention_mask)


class OnnxInt8Scorer:
    """Logits of an :class:`~sklearn_dallmi.module.EncoderClassifier` from ONNX Runtime.

    Building one exports a float32 CPU copy of ``module`` (the module
    itself, on whatever device, is not touched), quantises it and opens the
    session: seconds to tens of seconds on a CPU.

    Parameters
    ----------
    module : sklearn_dallmi.module.EncoderClassifier
        The fitted module.
    example : dict
        A batch, ``input_ids`` and ``attention_mask`` as ``torch.long``
        tensors of shape ``(batch, length)``; the export keeps both sizes
        dynamic.
    n_threads : int or None, default=None
        Threads of the session; None takes ``torch.get_num_threads()``, so
        that both paths use the same cores.
    """

    def __init__(self, module, example, n_threads=None):
        ort, quantize_dynamic, QuantType = _import_onnxruntime()
        self.n_labels = module.head.out_features
        cpu = copy.deepcopy(module).to("cpu", torch.float32).eval()
        encoder = cpu.encoder
        if hasattr(encoder, "set_attn_implementation"):
            # Plain attention exports to MatMul/Softmax nodes that the int8
            # kernels run faster than the exported SDPA graph (measured).
            encoder.set_attn_implementation("eager")
        args = (example["input_ids"].cpu(), example["attention_mask"].cpu())
        batch, length = torch.export.Dim("batch"), torch.export.Dim("length")
        with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings(), \
                _quiet("torch.onnx", "torch.export", "onnxscript", "root"):
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                _Logits(cpu), args, input_names=["input_ids", "attention_mask"],
                output_names=["logits"], dynamo=True, verbose=False,
                dynamic_shapes={"input_ids": {0: batch, 1: length},
                                "attention_mask": {0: batch, 1: length}},
            )
            float_path = os.path.join(tmp, "model.onnx")
            int8_path = os.path.join(tmp, "model-int8.onnx")
            program.save(float_path)
            # Without VNNI, ONNX Runtime's u8s8 kernels sum pairs of 8-bit
            # products in 16 bits and can saturate; 7-bit weights cannot.
            quantize_dynamic(float_path, int8_path, weight_type=QuantType.QInt8, per_channel=True,
                             reduce_range=not _cpu_has_vnni())
            options = ort.SessionOptions()
            options.intra_op_num_threads = n_threads or torch.get_num_threads()
            # ONNX Runtime's fused SkipLayerNormalization ran this graph
            # slower than the unfused Add + LayerNormalization (measured).
            self.session = ort.InferenceSession(
                int8_path, options, providers=["CPUExecutionProvider"],
                disabled_optimizers=["SkipLayerNormFusion"])

    def logits(self, batches):
        """Logits of a sequence of batches, concatenated in their order.

        Parameters
        ----------
        batches : iterable of (dict, object)
            ``(x, y)`` pairs as the network's data loaders yield them;
            ``x`` holds ``input_ids`` and ``attention_mask``.

        Returns
        -------
        logits : numpy.ndarray of shape (n_texts, n_labels), float32
        """
        parts = [
            self.session.run(["logits"], {"input_ids": x["input_ids"].numpy(),
                                          "attention_mask": x["attention_mask"].numpy()})[0]
            for x, _ in batches
        ]
        return np.concatenate(parts) if parts else np.empty((0, self.n_labels), np.float32)


def _cpu_has_vnni():
    """Whether the CPU has AVX512-VNNI, as torch sees it (False when torch cannot tell)."""
    probe = getattr(torch.cpu, "_is_vnni_supported", None)
    return bool(probe and probe())


class _quiet:
    """Raise the level of some loggers to ERROR for the duration of a block.

    The root logger also gets a ``NullHandler`` if it has no handler, so
    that a module-level ``logging.warning`` call inside the block (ONNX
    Runtime's quantiser makes one) does not configure it for good.
    """

    def __init__(self, *names):
        self.loggers = [logging.getLogger(None if n == "root" else n) for n in names]

    def __enter__(self):
        self.levels = [logger.level for logger in self.loggers]
        for logger in self.loggers:
            logger.setLevel(logging.ERROR)
        root = logging.getLogger()
        self.handler = logging.NullHandler() if not root.handlers else None
        if self.handler is not None:
            root.addHandler(self.handler)

    def __exit__(self, *exc):
        for logger, level in zip(self.loggers, self.levels):
            logger.setLevel(level)
        if self.handler is not None:
            logging.getLogger().removeHandler(self.handler)
