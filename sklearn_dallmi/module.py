"""The torch module: a Hugging Face encoder, pooling, dropout, a linear head."""

from torch import nn

__all__ = ["EncoderClassifier"]


class EncoderClassifier(nn.Module):
    """Multi-label classifier on top of a transformer encoder.

    Parameters
    ----------
    encoder : transformers.PreTrainedModel
        An encoder such as ``BertModel``; its input embedding layer is used
        for MixUp on word embeddings.
    n_labels : int
        Number of outputs.
    pooling : {"mean", "cls"}, default="mean"
        Mean over non-padding tokens, or the first token's hidden state.
    dropout : float, default=0.1
        Dropout before the head.
    """

    def __init__(self, encoder, n_labels, pooling="mean", dropout=0.1):
        super().__init__()
        self.encoder = encoder
        self.pooling = pooling
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(encoder.config.hidden_size, n_labels)

    def embed(self, input_ids):
        """Word embeddings of the token ids (no position or type embeddings)."""
        return self.encoder.get_input_embeddings()(input_ids)

    def forward(self, input_ids=None, attention_mask=None, inputs_embeds=None):
        """Logits of shape ``(batch, n_labels)``.

        Pass either ``input_ids`` or ``inputs_embeds`` (word embeddings, as
        for the mixed inputs of MixUp).
        """
        out = self.encoder(
            input_ids=input_ids, attention_mask=attention_mask, inputs_embeds=inputs_embeds
        )
        hidden = out.last_hidden_state
        if self.pooling == "cls":
            pooled = hidden[:, 0]
        else:
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        return self.head(self.dropout(pooled))
