"""Text classifiers: seed 004 §4.2's TextCNN (Kim 2014) and a small Transformer."""

from __future__ import annotations

import numpy as np

from .. import nn
from ..nn import functional as F
from ..tensor import cat, from_numpy

__all__ = ["TextCNN", "TransformerClassifier"]


class TextCNN(nn.Module):
    """Embedding, parallel convolutions of several widths, max over time, dropout, linear.

    Args:
        vocab_size, embed_dim: the embedding table.
        n_filters, filter_sizes: feature maps per width, and the widths (in tokens).
        output_dim: classes. dropout: before the linear layer. padding_idx: the pad token.
    """

    def __init__(self, vocab_size: int, embed_dim: int = 100, n_filters: int = 100,
                 filter_sizes=(3, 4, 5), output_dim: int = 2, dropout: float = 0.5,
                 padding_idx: int | None = None) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=padding_idx)
        self.convs = nn.ModuleList([nn.Conv2d(1, n_filters, (k, embed_dim))
                                    for k in filter_sizes])
        self.fc = nn.Linear(len(filter_sizes) * n_filters, output_dim)
        self.dropout = nn.Dropout(dropout)
        self.min_length = max(filter_sizes)

    def forward(self, text):
        """text: (N, L) token ids, L >= the widest filter -> (N, output_dim) logits."""
        if text.ndim != 2 or text.shape[1] < self.min_length:
            raise ValueError(f"TextCNN: expected (N, L) token ids with L >= {self.min_length}, "
                             f"got shape {tuple(text.shape)}")
        embedded = self.embedding(text).unsqueeze(1)  # (N, 1, L, E)
        conved = [F.relu(conv(embedded)).squeeze(3) for conv in self.convs]
        pooled = [c.amax(dim=2) for c in conved]
        return self.fc(self.dropout(cat(pooled, dim=1)))


class TransformerClassifier(nn.Module):
    """A small Transformer text classifier: token + learned position embeddings, a
    `nn.TransformerEncoder` (batch first, post-norm), the mean over non-padding positions,
    and a linear head.

    Args:
        vocab_size, num_classes: the vocabulary and the classes.
        d_model, nhead, num_layers, dim_feedforward, dropout: the encoder's sizes.
        max_len: longest input (positions). padding_idx: the pad token, masked in attention
            and in the mean.
    """

    def __init__(self, vocab_size: int, num_classes: int = 2, d_model: int = 64, nhead: int = 4,
                 num_layers: int = 2, dim_feedforward: int = 128, dropout: float = 0.1,
                 max_len: int = 512, padding_idx: int | None = None) -> None:
        super().__init__()
        if not hasattr(nn, "TransformerEncoder"):
            raise ValueError("TransformerClassifier needs shenjing.nn.TransformerEncoder, which "
                             "this version of shenjing lacks")
        self.padding_idx = padding_idx
        self.max_len = max_len
        self.embedding = nn.Embedding(vocab_size, d_model, padding_idx=padding_idx)
        self.pos_embedding = nn.Embedding(max_len, d_model)
        layer = nn.TransformerEncoderLayer(d_model, nhead, dim_feedforward, dropout,
                                           batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)
        self.fc = nn.Linear(d_model, num_classes)

    def forward(self, text):
        """text: (N, L) token ids, L <= max_len -> (N, num_classes) logits."""
        if text.ndim != 2 or text.shape[1] > self.max_len:
            raise ValueError(f"TransformerClassifier: expected (N, L) token ids with L <= "
                             f"{self.max_len}, got shape {tuple(text.shape)}")
        ids = text.numpy()
        positions = from_numpy(np.broadcast_to(np.arange(ids.shape[1]), ids.shape).copy())
        x = self.embedding(text) + self.pos_embedding(positions)
        if self.padding_idx is None:
            return self.fc(self.encoder(x).mean(dim=1))
        pad = ids == self.padding_idx
        pad[:, 0] &= ~pad.all(axis=1)  # an all-padding row keeps one position to attend to
        x = self.encoder(x, src_key_padding_mask=from_numpy(pad))
        keep = from_numpy((~pad).astype(np.float32)[..., None])
        return self.fc((x * keep).sum(dim=1) / keep.sum(dim=1))
