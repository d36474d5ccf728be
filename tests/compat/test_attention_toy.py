"""A transformer-free attention toy in the spirit of PyTorch's seq2seq-with-attention
tutorial ("NLP From Scratch: Translation with a Sequence to Sequence Network and
Attention"): a decoder whose queries (one per output position) attend over the encoded
input with scaled dot-product attention written by hand (einsum, masked_fill of padding
keys with -inf, softmax, bmm), trained to reverse variable-length token sequences; padded
targets are skipped with cross_entropy's ignore_index."""

import math

import shenjing as torch
import shenjing.nn as nn
import shenjing.nn.functional as F

VOCAB, MAX_LEN, D = 10, 6, 32
PAD = 0


def make_batch(n, gen):
    tokens = torch.randint(1, VOCAB, (n, MAX_LEN), generator=gen)
    lengths = torch.randint(3, MAX_LEN + 1, (n,), generator=gen)
    positions = torch.arange(MAX_LEN).unsqueeze(0)
    valid = positions < lengths.unsqueeze(1)
    tokens = tokens.masked_fill(~valid, PAD)
    # target[i] = tokens[length - 1 - i] for i < length, ignored beyond it
    source_index = (lengths.unsqueeze(1) - 1 - positions).clamp(min=0)
    target = tokens.gather(1, source_index).masked_fill(~valid, -100)
    return tokens, valid, target


class AttentionReverser(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(VOCAB, D)
        self.key_pos = nn.Parameter(torch.randn(MAX_LEN, D) * 0.1)
        self.queries = nn.Parameter(torch.randn(MAX_LEN, D) * 0.1)
        self.length_proj = nn.Linear(1, D)
        self.to_key = nn.Linear(D, D)
        self.to_value = nn.Linear(D, D)
        self.out = nn.Linear(D, VOCAB)

    def forward(self, tokens, valid):
        x = self.embed(tokens) + self.key_pos
        keys, values = self.to_key(x), self.to_value(x)
        length = valid.sum(dim=1, keepdim=True).float().unsqueeze(-1)  # (b, 1, 1)
        q = self.queries.unsqueeze(0) + self.length_proj(length)  # (b, L, D)
        scores = torch.einsum("bqd,bkd->bqk", q, keys) / math.sqrt(D)
        scores = scores.masked_fill(~valid.unsqueeze(1), float("-inf"))
        weights = F.softmax(scores, dim=-1)
        return self.out(torch.bmm(weights, values)), weights


def test_attention_learns_to_reverse():
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    model = AttentionReverser()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(300):
        tokens, valid, target = make_batch(64, gen)
        logits, _ = model(tokens, valid)
        loss = F.cross_entropy(logits.reshape(-1, VOCAB), target.reshape(-1),
                               ignore_index=-100)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    tokens, valid, target = make_batch(200, gen)
    with torch.no_grad():
        logits, weights = model(tokens, valid)
    keep = target != -100
    accuracy = (logits.argmax(-1) == target)[keep].float().mean().item()
    assert accuracy > 0.9, accuracy  # chance is 1/9
    assert torch.allclose(weights.sum(-1), torch.ones(200, MAX_LEN))
    assert (weights.masked_select(~valid.unsqueeze(1).expand_as(weights)) == 0).all()
