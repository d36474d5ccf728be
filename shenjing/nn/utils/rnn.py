"""Variable-length sequences for the recurrent layers (torch.nn.utils.rnn).

A `PackedSequence` holds a batch of sequences sorted by decreasing length, time step by
time step: `data` is (sum of lengths, *), `batch_sizes[t]` says how many sequences are
still running at step t. RNN, LSTM and GRU accept one and run each sequence only over its
own length, so padding never leaks into outputs or final states. Packing and unpacking are
one gather each (differentiable), whatever the number of steps.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np

from ...tensor import Tensor, as_tensor, cat, from_numpy, pad, stack

__all__ = ["PackedSequence", "pad_sequence", "pack_padded_sequence", "pad_packed_sequence",
           "pack_sequence", "unpad_sequence", "unpack_sequence", "invert_permutation"]


class PackedSequence(NamedTuple):
    """(data, batch_sizes, sorted_indices, unsorted_indices), as torch's."""

    data: Tensor
    batch_sizes: Tensor
    sorted_indices: Tensor | None = None
    unsorted_indices: Tensor | None = None

    def to(self, *args, **kwargs) -> "PackedSequence":
        return self._replace(data=self.data.to(*args, **kwargs))

    def float(self) -> "PackedSequence":
        return self._replace(data=self.data.float())

    def double(self) -> "PackedSequence":
        return self._replace(data=self.data.double())

    def cpu(self) -> "PackedSequence":
        return self

    @property
    def is_cuda(self) -> bool:
        return False


def invert_permutation(permutation: Tensor | None) -> Tensor | None:
    if permutation is None:
        return None
    p = permutation.numpy()
    out = np.empty_like(p)
    out[p] = np.arange(p.size, dtype=p.dtype)
    return from_numpy(out)


def _lengths(lengths, op: str) -> np.ndarray:
    arr = lengths.numpy() if isinstance(lengths, Tensor) else np.asarray(lengths)
    if arr.ndim != 1 or arr.dtype.kind not in "iu":
        raise ValueError(f"{op}: lengths must be a 1-D sequence of ints, got {lengths!r}")
    if arr.size and arr.min() <= 0:
        raise RuntimeError(f"{op}: every length must be positive (empty sequences cannot be "
                           f"packed), got {arr.tolist()}")
    return arr.astype(np.int64)


def pad_sequence(sequences: Sequence[Tensor], batch_first: bool = False,
                 padding_value: float = 0.0, padding_side: str = "right") -> Tensor:
    """Stack tensors (L_i, *) into (max L, B, *) (or (B, max L, *)), padding each."""
    seqs = list(sequences)
    if not seqs or not all(isinstance(s, Tensor) and s.ndim >= 1 for s in seqs):
        raise ValueError("pad_sequence: expected a non-empty list of Tensors with at least one "
                         "dimension")
    if padding_side not in ("right", "left"):
        raise ValueError(f"pad_sequence: padding_side must be 'right' or 'left', got "
                         f"{padding_side!r}")
    trail = tuple(seqs[0].shape[1:])
    for s in seqs:
        if tuple(s.shape[1:]) != trail:
            raise ValueError(f"pad_sequence: every sequence must have trailing shape {trail}, "
                             f"got {tuple(s.shape)}")
    longest = max(s.shape[0] for s in seqs)
    padded = []
    for s in seqs:
        extra = longest - s.shape[0]
        widths = [0, 0] * len(trail) + ([0, extra] if padding_side == "right" else [extra, 0])
        padded.append(pad(s, widths, value=float(padding_value)) if extra else s)
    return stack(padded, 0 if batch_first else 1)


def pack_padded_sequence(input: Tensor, lengths, batch_first: bool = False,
                         enforce_sorted: bool = True) -> PackedSequence:
    """Pack a padded batch (T, B, *) (or (B, T, *)) whose sequences have `lengths`."""
    if not isinstance(input, Tensor) or input.ndim < 2:
        raise ValueError("pack_padded_sequence: expected a padded Tensor (T, B, *) or "
                         "(B, T, *)")
    lens = _lengths(lengths, "pack_padded_sequence")
    B = input.shape[0 if batch_first else 1]
    T = input.shape[1 if batch_first else 0]
    if lens.size != B:
        raise ValueError(f"pack_padded_sequence: expected {B} lengths (one per sequence in "
                         f"the batch), got {lens.size}")
    if lens.max() > T:
        raise RuntimeError(f"pack_padded_sequence: a length {int(lens.max())} exceeds the "
                           f"padded length {T}")
    if enforce_sorted:
        if np.any(np.diff(lens) > 0):
            raise RuntimeError("`lengths` array must be sorted in decreasing order when "
                               "`enforce_sorted` is True. You can pass `enforce_sorted=False` "
                               "to pack_padded_sequence and/or pack_sequence to sidestep this "
                               "requirement if you do not need ONNX exportability.")
        order = None
    else:
        order = np.argsort(-lens, kind="stable")
        lens = lens[order]
    max_len = int(lens[0])
    batch_sizes = (lens[None, :] > np.arange(max_len)[:, None]).sum(1).astype(np.int64)
    # row of (t, b) in the time-major (T * B, *) view, for every running sequence
    cols = order if order is not None else np.arange(B)
    rows = np.concatenate([t * B + cols[:bs] if not batch_first else cols[:bs] * T + t
                           for t, bs in enumerate(batch_sizes)])
    flat = input.reshape(B * T, *input.shape[2:])
    data = flat.index_select(0, rows)
    sorted_idx = None if order is None else from_numpy(order.astype(np.int64))
    return PackedSequence(data, from_numpy(batch_sizes), sorted_idx,
                          invert_permutation(sorted_idx))


def pad_packed_sequence(sequence: PackedSequence, batch_first: bool = False,
                        padding_value: float = 0.0, total_length: int | None = None) -> tuple:
    """The inverse of pack_padded_sequence: (padded (T, B, *) or (B, T, *), lengths)."""
    if not isinstance(sequence, PackedSequence):
        raise TypeError(f"pad_packed_sequence: expected a PackedSequence, got "
                        f"{type(sequence).__name__}")
    data = sequence.data
    bs = sequence.batch_sizes.numpy().astype(np.int64)
    B, T = int(bs[0]), len(bs)
    if total_length is not None:
        if total_length < T:
            raise ValueError(f"pad_packed_sequence: total_length={total_length} is less than "
                             f"the longest sequence length {T}")
        T = int(total_length)
    lens_sorted = (bs[None, :] > np.arange(B)[:, None]).sum(1)
    order = None if sequence.unsorted_indices is None else sequence.unsorted_indices.numpy()
    batch = np.arange(B) if order is None else order  # padded column j holds sorted seq order[j]
    # for each (t, j) of the output: the packed row, or the padding row at the end
    starts = np.concatenate([[0], np.cumsum(bs)])
    pad_row = int(starts[-1])
    index = np.full((T, B), pad_row, dtype=np.int64)
    for t in range(len(bs)):
        running = batch < bs[t]
        index[t, running] = starts[t] + batch[running]
    if batch_first:
        index = index.T
    fill = from_numpy(np.full((1,) + tuple(data.shape[1:]), padding_value, dtype=data.dtype))
    source = cat([data, fill], 0)
    padded = source.index_select(0, index.reshape(-1)).reshape(*index.shape, *data.shape[1:])
    lengths = lens_sorted if order is None else lens_sorted[order]
    return padded, from_numpy(lengths.astype(np.int64))


def pack_sequence(sequences: Sequence[Tensor], enforce_sorted: bool = True) -> PackedSequence:
    """Pack a list of (L_i, *) tensors (sorted by decreasing length unless enforce_sorted
    is False)."""
    lengths = [s.shape[0] for s in sequences]
    return pack_padded_sequence(pad_sequence(sequences), as_tensor(lengths),
                                enforce_sorted=enforce_sorted)


def unpad_sequence(padded_sequences: Tensor, lengths, batch_first: bool = False) -> list:
    """The list of (L_i, *) tensors inside a padded batch."""
    lens = _lengths(lengths, "unpad_sequence")
    x = padded_sequences if batch_first else padded_sequences.transpose(0, 1)
    return [x[i, :int(n)] for i, n in enumerate(lens)]


def unpack_sequence(packed_sequences: PackedSequence) -> list:
    """The list of (L_i, *) tensors inside a PackedSequence, in the original order."""
    padded, lengths = pad_packed_sequence(packed_sequences, batch_first=True)
    return unpad_sequence(padded, lengths, batch_first=True)
