"""The torch module: a Hugging Face encoder, pooling, dropout, a linear head."""

import os

import torch
import torch.nn.functional as F
from torch import nn

from .models import load_encoder

__all__ = ["EncoderClassifier"]


class EncoderClassifier(nn.Module):
    """Multi-label classifier on top of a transformer encoder.

    One ``forward`` call computes the logits of a batch and, for MixUp, the
    logits of its word embeddings mixed with those of partner rows, so that
    a training step is one forward and one backward and the module can be
    wrapped (``DistributedDataParallel``, Accelerate, ``torch.compile``)
    unchanged.

    Parameters
    ----------
    encoder : transformers.PreTrainedModel, str or os.PathLike
        An encoder such as ``BertModel``, or the directory (or hub name) to
        load one from with ``AutoModel``; its input embedding layer is used
        for MixUp on word embeddings.
    n_labels : int
        Number of outputs.
    pooling : {"mean", "cls"}, default="mean"
        Mean over non-padding tokens, or the first token's hidden state.
    normalize : bool, default=False
        Scale each pooled vector to unit length, as sentence-transformers
        checkpoints with a ``Normalize`` module were trained to.
    dropout : float, default=0.1
        Dropout before the head.
    """

    def __init__(self, encoder, n_labels, pooling="mean", normalize=False, dropout=0.1):
        super().__init__()
        if isinstance(encoder, (str, os.PathLike)):
            encoder = load_encoder(encoder)
        if getattr(encoder, "pooler", None) is not None:
            # BERT's pooler is not used (the pooling is ours): frozen, so that
            # DistributedDataParallel does not wait for its gradients, and
            # kept, so that saves load back without a missing-weights report.
            encoder.pooler.requires_grad_(False)
        self.encoder = encoder
        self.pooling = pooling
        self.normalize = normalize
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(encoder.config.hidden_size, n_labels)

    def freeze(self, n_layers):
        """Train only the encoder's layers above the first ``n_layers``.

        With ``n_layers > 0`` the embeddings and the first ``n_layers``
        transformer layers are frozen (no gradient, no optimiser update);
        0 trains the whole encoder. Backward passes then stop below the
        first trained layer.

        Parameters
        ----------
        n_layers : int
            Between 0 and the encoder's number of layers.
        """
        layers = next((m for m in self.encoder.modules() if isinstance(m, nn.ModuleList)
                       and len(m) == self.encoder.config.num_hidden_layers), None)
        if layers is None or not 0 <= n_layers <= len(layers):
            raise ValueError(
                f"Cannot freeze {n_layers} layers of a {type(self.encoder).__name__} with "
                f"{self.encoder.config.num_hidden_layers} layers."
            )
        pooler = getattr(self.encoder, "pooler", None)
        frozen = set()
        if n_layers:
            for module in [self.encoder.get_input_embeddings(),
                           getattr(self.encoder, "embeddings", None), *layers[:n_layers]]:
                if module is not None:
                    frozen.update(id(p) for p in module.parameters())
        for name, param in self.encoder.named_parameters():
            unused = pooler is not None and name.startswith("pooler.")
            param.requires_grad_(id(param) not in frozen and not unused)

    def pool(self, input_ids=None, attention_mask=None, inputs_embeds=None):
        """One vector per row: the pooled last hidden states of the encoder.

        Parameters
        ----------
        input_ids : torch.Tensor of shape (batch, length) or None
            Token ids; or pass ``inputs_embeds``.
        attention_mask : torch.Tensor of shape (batch, length)
            1 for real tokens, 0 for padding.
        inputs_embeds : torch.Tensor of shape (batch, length, hidden) or None
            Word embeddings instead of token ids.

        Returns
        -------
        pooled : torch.Tensor of shape (batch, hidden)
        """
        hidden = self.encoder(
            input_ids=input_ids, attention_mask=attention_mask, inputs_embeds=inputs_embeds
        ).last_hidden_state
        if self.pooling == "cls":
            pooled = hidden[:, 0]
        else:
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        return F.normalize(pooled, dim=-1) if self.normalize else pooled

    def forward(self, input_ids, attention_mask, partner=None, gamma=None):
        """Logits of the batch, and of its mixed word embeddings.

        Parameters
        ----------
        input_ids : torch.Tensor of shape (batch, length)
            Token ids.
        attention_mask : torch.Tensor of shape (batch, length)
            1 for real tokens, 0 for padding.
        partner : torch.Tensor of shape (batch,) or None, default=None
            For MixUp: the row of the batch that each row is mixed with.
        gamma : torch.Tensor of shape (batch,) or None, default=None
            For MixUp: the weight of the partner's word embeddings, in
            ``[0, 1]``; row ``u`` becomes ``gamma[u] * E(partner[u]) +
            (1 - gamma[u]) * E(u)`` with the union of the two attention
            masks.

        Returns
        -------
        logits : torch.Tensor of shape (batch, n_labels)
            Without ``partner``.
        logits, mix_logits : tuple of two torch.Tensor of shape (batch, n_labels)
            With ``partner``: the batch and its mixed rows, encoded in one
            encoder call over twice the rows.
        """
        if partner is None:
            return self.classify(self.pool(input_ids, attention_mask))
        emb = self.encoder.get_input_embeddings()(input_ids)
        g = gamma.to(emb.dtype).view(-1, 1, 1)
        mixed = g * emb[partner] + (1 - g) * emb
        mask = torch.maximum(attention_mask[partner], attention_mask)
        pooled = self.pool(
            attention_mask=torch.cat([attention_mask, mask]),
            inputs_embeds=torch.cat([emb, mixed]),
        )
        logits = self.classify(pooled)
        return logits[: len(input_ids)], logits[len(input_ids):]

    def classify(self, pooled):
        """Logits of pooled vectors: dropout, then the linear head.

        Under CPU or CUDA autocast the head still runs in its weights' type
        (float32 unless the module was cast): bfloat16 logits keep 8 bits
        of mantissa, which ties scores and costs ranking.

        Parameters
        ----------
        pooled : torch.Tensor of shape (batch, hidden)

        Returns
        -------
        logits : torch.Tensor of shape (batch, n_labels)
        """
        pooled = self.dropout(pooled)
        kind = pooled.device.type
        if kind not in ("cpu", "cuda"):
            return self.head(pooled)
        with torch.autocast(kind, enabled=False):
            return self.head(pooled.to(self.head.weight.dtype))
