"""Recurrent models: the character language model and seed 000 §2.1.4's sequence regressor."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

import shenjing as sj

from .. import nn
from ..nn import functional as F

__all__ = ["CharLSTM", "SequenceRegressor", "sequence_mse"]


class CharLSTM(nn.Module):
    """Character language model: embedding → LSTM → linear over the vocabulary.

    Args:
        vocab_size: number of distinct characters (= len(chars) when `chars` is given).
        embed_dim, hidden_size, num_layers: sizes of the embedding and the LSTM.
        chars: the vocabulary as a string, index i = chars[i]; lets `generate` take and return
            text. Stored in the checkpoint's config by the command line, not in the weights.
    """

    def __init__(self, vocab_size: int = 100, embed_dim: int = 64, hidden_size: int = 256,
                 num_layers: int = 1, chars: str | None = None) -> None:
        super().__init__()
        if chars is not None and len(chars) != vocab_size:
            raise ValueError(f"CharLSTM: chars has {len(chars)} characters but vocab_size is "
                             f"{vocab_size}; they must agree")
        self.chars = chars
        self.embedding = nn.Embedding(vocab_size, embed_dim)
        self.lstm = nn.LSTM(embed_dim, hidden_size, num_layers=num_layers, batch_first=True)
        self.fc = nn.Linear(hidden_size, vocab_size)

    def forward(self, x, state=None):
        """x: (N, L) character ids -> (N, L, vocab) logits and the LSTM state."""
        out, state = self.lstm(self.embedding(x), state)
        return self.fc(out), state

    def encode(self, text: str) -> list[int]:
        """Character ids of `text`; raises ValueError naming a character not in the vocabulary."""
        if self.chars is None:
            raise ValueError("CharLSTM.encode: this model has no `chars`; pass token ids instead")
        index = {c: i for i, c in enumerate(self.chars)}
        unknown = sorted({c for c in text if c not in index})
        if unknown:
            raise ValueError(f"CharLSTM: characters {''.join(unknown)!r} are not in the "
                             f"model's vocabulary of {len(self.chars)} characters")
        return [index[c] for c in text]

    def generate(self, prompt: str | Sequence[int], length: int = 200,
                 temperature: float = 1.0, seed: int | None = None) -> str | list[int]:
        """Continue `prompt` by `length` sampled characters.

        Each step samples from softmax(logits / temperature) with a NumPy generator seeded by
        `seed` (same seed, same text); temperature 0 picks the most likely character.
        Returns the prompt plus the continuation, as text when the model has `chars`.
        """
        if not isinstance(length, (int, np.integer)) or length < 0:
            raise ValueError(f"CharLSTM.generate: length must be an int >= 0, got {length!r}")
        if not temperature >= 0:
            raise ValueError(f"CharLSTM.generate: temperature must be >= 0, got {temperature}")
        ids = self.encode(prompt) if isinstance(prompt, str) else [int(i) for i in prompt]
        if not ids:
            raise ValueError("CharLSTM.generate: the prompt is empty; give at least one character")
        vocab = self.fc.out_features
        if min(ids) < 0 or max(ids) >= vocab:
            raise ValueError(f"CharLSTM.generate: prompt ids must lie in [0, {vocab})")
        rng = np.random.default_rng(seed)
        was_training = self.training
        self.eval()
        out = list(ids)
        try:
            with sj.no_grad():
                logits, state = self(sj.tensor(np.asarray([ids], dtype=np.int64)))
                for _ in range(length):
                    last = logits.numpy()[0, -1].astype(np.float64)
                    if temperature == 0:
                        nxt = int(last.argmax())
                    else:
                        z = last / temperature
                        p = np.exp(z - z.max())
                        nxt = int(rng.choice(vocab, p=p / p.sum()))
                    out.append(nxt)
                    logits, state = self(sj.tensor(np.asarray([[nxt]], dtype=np.int64)), state)
        finally:
            self.train(was_training)
        return "".join(self.chars[i] for i in out) if self.chars is not None else out


class SequenceRegressor(nn.Module):
    """Seed 000 §2.1.4: an RNN or LSTM that maps a sequence X_1..X_T to predictions Ŷ_1..Ŷ_T,
    trained with the sequence MSE Σ_t (Y_t − Ŷ_t)² (`sequence_mse`).

    Args:
        input_size, output_size: features per time step in and out.
        hidden_size, num_layers: the recurrent layer's size.
        cell: "lstm" or "rnn" (tanh).
    """

    def __init__(self, input_size: int = 1, hidden_size: int = 32, output_size: int = 1,
                 num_layers: int = 1, cell: str = "lstm") -> None:
        super().__init__()
        layers = {"lstm": nn.LSTM, "rnn": nn.RNN}
        if cell not in layers:
            raise ValueError(f"SequenceRegressor: cell must be 'lstm' or 'rnn', got {cell!r}")
        self.cell = cell
        self.rnn = layers[cell](input_size, hidden_size, num_layers=num_layers, batch_first=True)
        self.fc = nn.Linear(hidden_size, output_size)

    def forward(self, x, state=None):
        """x: (N, T, input_size) -> (N, T, output_size) predictions."""
        out, _ = self.rnn(x, state)
        return self.fc(out)


def sequence_mse(prediction, target):
    """Σ_t (Y_t − Ŷ_t)² summed over time steps and features, averaged over the batch."""
    if tuple(prediction.shape) != tuple(target.shape):
        raise ValueError(f"sequence_mse: prediction shape {tuple(prediction.shape)} differs "
                         f"from target shape {tuple(target.shape)}")
    return F.mse_loss(prediction, target, reduction="sum") / prediction.shape[0]
