"""Text tools: tokenizer, vocabulary (build, lookup, save/load), padding and bucketed batches,
(The IMDB pipeline end to end is in test_data_loaders.py, beside the extracted archive.)"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from shenjing.data.text import BucketBatchSampler, PadCollate, Vocab, pad_sequences, tokenize

CORPUS = [["the", "cat", "sat"], ["the", "dog", "sat", "down"], ["the", "cat", "ran"],
          ["a", "cat"]]


def test_tokenize():
    assert tokenize("A wretched movie, isn't it?<br />Yes!") == [
        "a", "wretched", "movie", ",", "isn't", "it", "?", "yes", "!"]
    assert tokenize("Ça  va...  l'été 2024") == ["ça", "va", ".", ".", ".", "l'été", "2024"]
    with pytest.raises(TypeError, match="expected a str, got list"):
        tokenize(["a"])


def test_vocab_order_max_size_min_freq():
    vocab = Vocab.build(CORPUS)
    # specials first, then by frequency (the 3, cat 3, sat 2), ties alphabetical (a, down, ...)
    assert vocab.itos == ["<unk>", "<pad>", "cat", "the", "sat", "a", "dog", "down", "ran"]
    assert vocab.unk_index == 0 and vocab.pad_index == 1 and len(vocab) == 9
    assert vocab["dog"] == 6 and vocab["zebra"] == 0 and "zebra" not in vocab
    assert vocab.lookup_indices(["the", "zebra"]) == [3, 0] == vocab(["the", "zebra"])
    assert vocab.lookup_tokens([2, 4]) == ["cat", "sat"]
    small = Vocab.build(CORPUS, max_size=2)
    assert small.itos == ["<unk>", "<pad>", "cat", "the"]  # max_size excludes the specials
    frequent = Vocab.build(CORPUS, min_freq=2)
    assert frequent.itos == ["<unk>", "<pad>", "cat", "the", "sat"]
    custom = Vocab.build(CORPUS, max_size=1, specials=("<pad>", "<bos>", "<unk>"))
    assert custom.itos == ["<pad>", "<bos>", "<unk>", "cat"]
    assert custom.pad_index == 0 and custom.unk_index == 2
    strict = Vocab.build(CORPUS, specials=())
    with pytest.raises(KeyError, match="'zebra' is not in the vocabulary"):
        strict["zebra"]
    with pytest.raises(TypeError, match="tokenize it first"):
        Vocab.build(["the cat", "a dog"])


def test_vocab_save_load_round_trip(tmp_path):
    vocab = Vocab.build(CORPUS + [["naïve", "café"]], max_size=6)
    path = tmp_path / "vocab.json"
    vocab.save(path)
    assert os.listdir(tmp_path) == ["vocab.json"]  # written via a temporary file, renamed
    loaded = Vocab.load(path)
    assert loaded.itos == vocab.itos and loaded.stoi == vocab.stoi
    assert loaded.unk_index == vocab.unk_index and loaded.pad_index == vocab.pad_index
    assert json.loads(path.read_text(encoding="utf-8"))["format"] == "shenjing.vocab"
    (tmp_path / "other.json").write_text('{"itos": ["a"]}')
    with pytest.raises(ValueError, match="not a shenjing vocabulary file"):
        Vocab.load(tmp_path / "other.json")


def test_pad_sequences_and_collate():
    padded, lengths = pad_sequences([[5, 6, 7], [8], []], padding_value=1)
    np.testing.assert_array_equal(padded, [[5, 6, 7], [8, 1, 1], [1, 1, 1]])
    assert lengths.tolist() == [3, 1, 0] and padded.dtype == np.int64
    cut, cut_lengths = pad_sequences([[1, 2, 3, 4], [5]], max_len=2, min_len=3)
    np.testing.assert_array_equal(cut, [[1, 2, 0], [5, 0, 0]])
    assert cut_lengths.tolist() == [2, 1]
    tokens, lens, labels = PadCollate(pad_index=1, min_len=4)([([3, 4], 1), ([5], 0)])
    assert tokens.shape == (2, 4) and tokens.numpy().tolist() == [[3, 4, 1, 1], [5, 1, 1, 1]]
    assert lens.numpy().tolist() == [2, 1] and labels.numpy().tolist() == [1, 0]
    time_major, _, _ = PadCollate(0, batch_first=False)([([3, 4], 1), ([5], 0)])
    assert time_major.shape == (2, 2) and time_major.numpy().tolist() == [[3, 5], [4, 0]]


def test_bucket_batch_sampler_covers_every_index_once():
    lengths = np.random.default_rng(0).integers(1, 200, size=1003)
    sampler = BucketBatchSampler(lengths, batch_size=16, seed=0, bucket_size_multiplier=8)
    epoch1 = list(sampler)
    epoch2 = list(sampler)
    for epoch in (epoch1, epoch2):
        flat = [i for batch in epoch for i in batch]
        assert sorted(flat) == list(range(1003))
        assert len(epoch) == len(sampler) == 7 * 8 + 7  # 7 full pools of 128, then 107 left
    assert epoch1 != epoch2  # a new mix every epoch
    assert list(BucketBatchSampler(lengths, 16, seed=0, bucket_size_multiplier=8)) == epoch1
    # Bucketing keeps lengths within a batch close: far less padding than random batches.
    spread = np.mean([np.ptp(lengths[b]) for b in epoch1])
    random_batches = np.random.default_rng(1).permutation(1003)[:992].reshape(-1, 16)
    assert spread < 0.2 * np.mean([np.ptp(lengths[b]) for b in random_batches])
    ordered = list(BucketBatchSampler(lengths, 16, shuffle=False))
    assert [lengths[i] for b in ordered for i in b] == sorted(lengths)
    dropped = BucketBatchSampler(lengths, 16, seed=0, drop_last=True)
    assert all(len(b) == 16 for b in dropped) and len(list(dropped)) == len(dropped)
