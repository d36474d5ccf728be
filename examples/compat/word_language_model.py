"""A word-level LSTM language model trained with truncated backpropagation through time.

Mirrors: pytorch/examples, word_language_model/ (main.py, model.py, data.py, generate.py)
    https://github.com/pytorch/examples/tree/main/word_language_model
Written anew for shenjing (only the imports name shenjing): a corpus turned into one long
id stream per split and `batchify`-ed into columns, `get_batch` windows of `--bptt` steps,
an `RNNModel` (Embedding -> dropout -> multi-layer time-major nn.LSTM/GRU/RNN -> dropout ->
Linear -> log_softmax, optionally `--tied` weights, uniform(-0.1, 0.1) init), `NLLLoss`,
hidden states detached between windows (`repackage_hidden`), `clip_grad_norm_`, the
example's hand-written SGD update with the learning rate divided by 4 whenever validation
loss stops improving, the best model saved with `torch.save(state_dict)` and reloaded for
the test, perplexity = exp(loss), and a few sampled words as generate.py does.

What changed, and why:
- data: Jane Austen's six novels (../shared/data/austen/austen.txt.gz) instead of
  Wikitext-2, which is not available offline. Wrapped lines are joined into paragraphs, and
  each paragraph (with an `<eos>` mark) plays the part of a Wikitext line; words and
  punctuation are split apart as Wikitext's tokens are; the `--max-vocab` most frequent
  tokens are kept and the rest become `<unk>` (Wikitext-2 ships already capped that way).
  The paragraphs are cut 80/10/10 into train/valid/test, in order.
- size: `--train-tokens 60000`, `--eval-tokens 15000`, 2 epochs, `--nhid/--emsize 128`,
  `--max-vocab 5000` instead of the whole corpus, 40 epochs and 200 units, so the default
  run ends in about 3.5 minutes on one core. The example's `--model Transformer` option
  is left out.
- the update is `p.add_(p.grad, alpha=-lr)` under `no_grad()` rather than through `.data`.
- sampling: `torch.multinomial(weights, 1)` as generate.py does, seeded by `manual_seed`.

Run: OPENBLAS_NUM_THREADS=1 python examples/compat/word_language_model.py
"""

from __future__ import annotations

import argparse
import gzip
import math
import os
import re
import tempfile
import time
from collections import Counter
from pathlib import Path

import shenjing as torch
import shenjing.nn as nn
import shenjing.nn.functional as F

DEFAULT_TEXT = os.path.join(os.environ.get("SHENJING_DATA") or str(
    Path(__file__).resolve().parents[3] / "shared" / "data"), "austen", "austen.txt.gz")
_WORD = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)*|\d+|[^\sA-Za-z\d]")


class Corpus:
    """Train/valid/test id streams of a text file, with a shared dictionary."""

    def __init__(self, path: str, max_vocab: int) -> None:
        opener = gzip.open if str(path).endswith(".gz") else open
        with opener(path, "rt", encoding="utf-8") as f:
            text = f.read()
        paragraphs = [_WORD.findall(p) for p in re.split(r"\n\s*\n", text)]
        paragraphs = [p + ["<eos>"] for p in paragraphs if p]
        cut1, cut2 = int(0.8 * len(paragraphs)), int(0.9 * len(paragraphs))
        counts = Counter(w for p in paragraphs[:cut1] for w in p)
        kept = [w for w, _ in counts.most_common(max_vocab - 1) if w != "<unk>"]
        self.idx2word = ["<unk>"] + kept
        self.word2idx = {w: i for i, w in enumerate(self.idx2word)}
        self.train = self._ids(paragraphs[:cut1])
        self.valid = self._ids(paragraphs[cut1:cut2])
        self.test = self._ids(paragraphs[cut2:])

    def _ids(self, paragraphs: list[list[str]]) -> torch.Tensor:
        unk = self.word2idx["<unk>"]
        return torch.tensor([self.word2idx.get(w, unk) for p in paragraphs for w in p],
                            dtype=torch.int64)


class RNNModel(nn.Module):
    """Encoder embedding, a recurrent stack and a decoder back to vocabulary scores."""

    def __init__(self, rnn_type: str, ntoken: int, ninp: int, nhid: int, nlayers: int,
                 dropout: float = 0.5, tie_weights: bool = False) -> None:
        super().__init__()
        self.ntoken = ntoken
        self.drop = nn.Dropout(dropout)
        self.encoder = nn.Embedding(ntoken, ninp)
        if rnn_type in ("LSTM", "GRU"):
            self.rnn = getattr(nn, rnn_type)(ninp, nhid, nlayers, dropout=dropout)
        else:
            nonlinearity = {"RNN_TANH": "tanh", "RNN_RELU": "relu"}[rnn_type]
            self.rnn = nn.RNN(ninp, nhid, nlayers, nonlinearity=nonlinearity, dropout=dropout)
        self.decoder = nn.Linear(nhid, ntoken)
        if tie_weights:
            if nhid != ninp:
                raise ValueError("--tied needs --nhid equal to --emsize")
            self.decoder.weight = self.encoder.weight
        self.rnn_type, self.nhid, self.nlayers = rnn_type, nhid, nlayers
        with torch.no_grad():
            self.encoder.weight.uniform_(-0.1, 0.1)
            self.decoder.weight.uniform_(-0.1, 0.1)
            self.decoder.bias.zero_()

    def forward(self, tokens: torch.Tensor, hidden):
        emb = self.drop(self.encoder(tokens))
        output, hidden = self.rnn(emb, hidden)
        decoded = self.decoder(self.drop(output)).view(-1, self.ntoken)
        return F.log_softmax(decoded, dim=1), hidden

    def init_hidden(self, batch_size: int):
        weight = next(self.parameters())
        zeros = weight.new_zeros(self.nlayers, batch_size, self.nhid)
        if self.rnn_type == "LSTM":
            return zeros, weight.new_zeros(self.nlayers, batch_size, self.nhid)
        return zeros


def batchify(data: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Cut the stream into `batch_size` equal columns: shape (steps, batch_size)."""
    steps = data.size(0) // batch_size
    return data[: steps * batch_size].view(batch_size, -1).t().contiguous()


def get_batch(source: torch.Tensor, i: int, bptt: int) -> tuple[torch.Tensor, torch.Tensor]:
    seq_len = min(bptt, len(source) - 1 - i)
    return source[i:i + seq_len], source[i + 1:i + 1 + seq_len].reshape(-1)


def repackage_hidden(h):
    """Detach hidden states from the graph of the previous window."""
    if isinstance(h, torch.Tensor):
        return h.detach()
    return tuple(repackage_hidden(v) for v in h)


def evaluate(model, data_source, criterion, args, batch_size: int) -> float:
    model.eval()
    total_loss = 0.0
    hidden = model.init_hidden(batch_size)
    with torch.no_grad():
        for i in range(0, data_source.size(0) - 1, args.bptt):
            data, targets = get_batch(data_source, i, args.bptt)
            output, hidden = model(data, hidden)
            hidden = repackage_hidden(hidden)
            total_loss += len(data) * criterion(output, targets).item()
    return total_loss / (len(data_source) - 1)


def train_epoch(model, train_data, criterion, args, lr: float, epoch: int) -> float:
    model.train()
    total_loss, epoch_loss, batches = 0.0, 0.0, 0
    start = time.perf_counter()
    hidden = model.init_hidden(args.batch_size)
    for batch, i in enumerate(range(0, train_data.size(0) - 1, args.bptt)):
        data, targets = get_batch(train_data, i, args.bptt)
        model.zero_grad()
        hidden = repackage_hidden(hidden)
        output, hidden = model(data, hidden)
        loss = criterion(output, targets)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
        with torch.no_grad():
            for p in model.parameters():
                p.add_(p.grad, alpha=-lr)
        total_loss += loss.item()
        epoch_loss += loss.item()
        batches += 1
        if batch % args.log_interval == 0 and batch > 0:
            cur_loss = total_loss / args.log_interval
            ms = (time.perf_counter() - start) * 1000 / args.log_interval
            print(f"| epoch {epoch:3d} | {batch:5d}/{len(train_data) // args.bptt:5d} batches "
                  f"| lr {lr:02.2f} | ms/batch {ms:5.2f} | loss {cur_loss:5.2f} "
                  f"| ppl {math.exp(cur_loss):8.2f}")
            total_loss, start = 0.0, time.perf_counter()
        if args.dry_run:
            break
    return epoch_loss / max(batches, 1)


def sample_words(model, corpus: Corpus, count: int, temperature: float) -> str:
    """Feed the model its own samples, as generate.py does."""
    model.eval()
    hidden = model.init_hidden(1)
    token = torch.tensor([[corpus.word2idx.get("The", 0)]], dtype=torch.int64)
    words = []
    with torch.no_grad():
        for _ in range(count):
            output, hidden = model(token, hidden)
            weights = output.squeeze().div(temperature).exp()
            index = torch.multinomial(weights, 1)[0].item()
            token.fill_(index)
            words.append(corpus.idx2word[index])
    return " ".join(words).replace(" <eos> ", "\n")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="shenjing word-level language model (Austen)")
    p.add_argument("--data", default=DEFAULT_TEXT, help="a .txt or .txt.gz file")
    p.add_argument("--model", default="LSTM", choices=["RNN_TANH", "RNN_RELU", "LSTM", "GRU"])
    p.add_argument("--emsize", type=int, default=128)
    p.add_argument("--nhid", type=int, default=128)
    p.add_argument("--nlayers", type=int, default=2)
    p.add_argument("--lr", type=float, default=20)
    p.add_argument("--clip", type=float, default=0.25)
    p.add_argument("--epochs", type=int, default=2, help="the example's default is 40")
    p.add_argument("--batch_size", type=int, default=20)
    p.add_argument("--bptt", type=int, default=35)
    p.add_argument("--dropout", type=float, default=0.2)
    p.add_argument("--tied", action="store_true")
    p.add_argument("--seed", type=int, default=1111)
    p.add_argument("--log-interval", type=int, default=50)
    p.add_argument("--dry-run", action="store_true")
    p.add_argument("--max-vocab", type=int, default=5000)
    p.add_argument("--train-tokens", type=int, default=60000, help="0: the whole train split")
    p.add_argument("--eval-tokens", type=int, default=15000, help="0: whole valid/test splits")
    p.add_argument("--words", type=int, default=30, help="words to sample at the end")
    p.add_argument("--temperature", type=float, default=1.0)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    torch.manual_seed(args.seed)
    corpus = Corpus(args.data, args.max_vocab)
    train_ids = corpus.train[: args.train_tokens] if args.train_tokens else corpus.train
    cap = args.eval_tokens or None
    eval_batch_size = 10
    train_data = batchify(train_ids, args.batch_size)
    val_data = batchify(corpus.valid[:cap], eval_batch_size)
    test_data = batchify(corpus.test[:cap], eval_batch_size)
    ntokens = len(corpus.idx2word)
    print(f"vocabulary {ntokens}, train {len(train_ids)} tokens, valid/test "
          f"{val_data.numel()}/{test_data.numel()} tokens")

    model = RNNModel(args.model, ntokens, args.emsize, args.nhid, args.nlayers, args.dropout,
                     args.tied)
    criterion = nn.NLLLoss()
    lr, best_val_loss = args.lr, None
    started = time.perf_counter()
    train_losses, val_losses = [], []
    with tempfile.TemporaryDirectory() as tmp:
        save_path = os.path.join(tmp, "model.pt")
        for epoch in range(1, args.epochs + 1):
            epoch_start = time.perf_counter()
            train_losses.append(train_epoch(model, train_data, criterion, args, lr, epoch))
            val_loss = evaluate(model, val_data, criterion, args, eval_batch_size)
            val_losses.append(val_loss)
            print("-" * 89)
            print(f"| end of epoch {epoch:3d} | time: {time.perf_counter() - epoch_start:5.2f}s "
                  f"| valid loss {val_loss:5.2f} | valid ppl {math.exp(val_loss):8.2f}")
            print("-" * 89)
            if best_val_loss is None or val_loss < best_val_loss:
                torch.save(model.state_dict(), save_path)
                best_val_loss = val_loss
            else:
                lr /= 4.0  # no improvement on the validation set: anneal
        model.load_state_dict(torch.load(save_path))
    test_loss = evaluate(model, test_data, criterion, args, eval_batch_size)
    seconds = time.perf_counter() - started
    print("=" * 89)
    print(f"| End of training | test loss {test_loss:5.2f} | test ppl {math.exp(test_loss):8.2f}")
    print("=" * 89)
    if args.words:
        print(sample_words(model, corpus, args.words, args.temperature))
    print(f"final: test perplexity {math.exp(test_loss):.1f} (vocabulary {ntokens}, "
          f"uniform guess {ntokens}) in {seconds:.0f} s")
    return {"test_perplexity": math.exp(test_loss), "vocab_size": ntokens,
            "train_losses": train_losses, "val_losses": val_losses, "seconds": seconds}


if __name__ == "__main__":
    main()
