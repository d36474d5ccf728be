"""Mirrors PyTorch's "NLP From Scratch: Classifying Names with a Character-Level RNN"
tutorial: letters one-hot encoded into (length, 1, n_letters) tensors, a CharRNN of nn.RNN +
Linear + LogSoftmax reading the final hidden state, NLLLoss summed over a mini-batch of
single-word sequences, clip_grad_norm_, and label_from_output through topk. Instead of the
tutorial's surname files it sorts real words from Jane Austen by their suffix (-ing, -ed,
-ly), which the RNN must remember from the end of the word."""

import gzip
import os
import random
import re
import string

import pytest

import shenjing as torch
import shenjing.nn as nn

ALL_LETTERS = string.ascii_lowercase
N_LETTERS = len(ALL_LETTERS)
CATEGORIES = ["ing", "ed", "ly"]
TEXT = os.path.join(os.environ.get("SHENJING_DATA", "../shared/data"), "austen",
                    "austen.txt.gz")


def letterToIndex(letter):
    return ALL_LETTERS.find(letter)


def lineToTensor(line):
    tensor = torch.zeros(len(line), 1, N_LETTERS)
    for li, letter in enumerate(line):
        tensor[li][0][letterToIndex(letter)] = 1
    return tensor


class CharRNN(nn.Module):
    def __init__(self, input_size, hidden_size, output_size):
        super().__init__()
        self.rnn = nn.RNN(input_size, hidden_size)
        self.h2o = nn.Linear(hidden_size, output_size)
        self.softmax = nn.LogSoftmax(dim=1)

    def forward(self, line_tensor):
        rnn_out, hidden = self.rnn(line_tensor)
        return self.softmax(self.h2o(hidden[0]))


def label_from_output(output, output_labels):
    top_n, top_i = output.topk(1)
    label_i = top_i[0].item()
    return output_labels[label_i], label_i


def load_words():
    with gzip.open(TEXT, "rt", encoding="utf-8") as f:
        text = f.read(400_000).lower()
    words = sorted(set(re.findall(r"\b[a-z]{4,9}\b", text)))
    data = []
    for w in words:
        for i, suffix in enumerate(CATEGORIES):
            if w.endswith(suffix):
                data.append((w, i))
    random.Random(0).shuffle(data)
    return data


def test_char_rnn_learns_suffixes():
    if not os.path.exists(TEXT):
        pytest.skip(f"{TEXT} not found")
    torch.manual_seed(0)
    data = load_words()
    train_set, test_set = data[:-150], data[-150:]
    assert len(train_set) > 500
    rnn = CharRNN(N_LETTERS, 32, len(CATEGORIES))
    criterion = nn.NLLLoss()
    optimizer = torch.optim.SGD(rnn.parameters(), lr=0.1, momentum=0.5)
    rnn.train()
    rng = random.Random(1)
    for _ in range(40):
        batch = rng.sample(train_set, 24)
        batch_loss = 0
        for word, label in batch:
            output = rnn(lineToTensor(word))
            batch_loss = batch_loss + criterion(output, torch.tensor([label]))
        batch_loss.backward()
        nn.utils.clip_grad_norm_(rnn.parameters(), 3)
        optimizer.step()
        optimizer.zero_grad()
    rnn.eval()
    correct = 0
    with torch.no_grad():
        for word, label in test_set:
            guess, guess_i = label_from_output(rnn(lineToTensor(word)), CATEGORIES)
            correct += guess_i == label
    assert correct / len(test_set) > 0.8, correct / len(test_set)  # majority class < 0.6
