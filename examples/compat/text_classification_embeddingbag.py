"""Sentiment of movie-review snippets with a bag-of-embeddings classifier (EmbeddingBag).

Mirrors: PyTorch tutorial "Text classification with the torchtext library"
    https://pytorch.org/tutorials/beginner/text_sentiment_ngrams_tutorial.html
Written anew for shenjing (only the imports name shenjing): a vocabulary built from the
tokenized training texts with an `<unk>` default, a `collate_batch` that concatenates the
token ids of a batch into one flat tensor plus an `offsets` tensor (cumsum of the lengths),
a `TextClassificationModel` = mean EmbeddingBag(64) + Linear with uniform(-0.5, 0.5) init,
CrossEntropyLoss, SGD at lr 5 with `clip_grad_norm_(0.1)`, a 95/5 `random_split` of the
training set for validation, `StepLR(gamma=0.1)` stepped only when validation accuracy
drops, the tutorial's per-epoch lines, 10 epochs of batch 64, test accuracy, and a
prediction on two new sentences.

What changed, and why:
- data: the Rotten Tomatoes snippets (../shared/data/rt_polarity.tar.gz, 2 classes, packed
  like aclImdb) through shenjing's IMDB loader, instead of AG_NEWS (4 news classes), which
  is not available offline; `shenjing.data.tokenize` + `Vocab.build` stand in for
  torchtext's `basic_english` tokenizer and `build_vocab_from_iterator` (torchtext is
  retired). The tutorial's `to_map_style_dataset` is not needed: the loader is map-style.
- `nn.EmbeddingBag(vocab, dim, mode="mean")` over flat ids + offsets, as the tutorial
  uses it.
- `main(argv)` returns the metrics so tests/test_examples_compat.py can run it small.

Run: OPENBLAS_NUM_THREADS=1 python examples/compat/text_classification_embeddingbag.py
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

import shenjing as torch
import shenjing.nn as nn
from shenjing.data import Vocab, tokenize
from shenjing.data.datasets import IMDB

DEFAULT_ARCHIVE = os.path.join(os.environ.get("SHENJING_DATA") or str(
    Path(__file__).resolve().parents[3] / "shared" / "data"), "rt_polarity.tar.gz")
LABELS = {0: "rotten (negative)", 1: "fresh (positive)"}


class TextClassificationModel(nn.Module):
    def __init__(self, vocab_size: int, embed_dim: int, num_class: int) -> None:
        super().__init__()
        self.embedding = nn.EmbeddingBag(vocab_size, embed_dim, mode="mean", sparse=False)
        self.fc = nn.Linear(embed_dim, num_class)
        self.init_weights()

    def init_weights(self) -> None:
        initrange = 0.5
        with torch.no_grad():
            self.embedding.weight.uniform_(-initrange, initrange)
            self.fc.weight.uniform_(-initrange, initrange)
            self.fc.bias.zero_()

    def forward(self, text: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        return self.fc(self.embedding(text, offsets))


def make_collate(vocab: Vocab):
    """A collate_fn: (label, flat token ids, offsets of each text in the flat tensor)."""

    def collate_batch(batch):
        label_list, text_list, offsets = [], [], [0]
        for text, label in batch:
            label_list.append(label)
            ids = torch.tensor(vocab.lookup_indices(tokenize(text)), dtype=torch.int64)
            text_list.append(ids)
            offsets.append(ids.size(0))
        labels = torch.tensor(label_list, dtype=torch.int64)
        offsets = torch.tensor(offsets[:-1]).cumsum(dim=0)
        return labels, torch.cat(text_list), offsets

    return collate_batch


def train(model, dataloader, criterion, optimizer, epoch: int, log_interval: int) -> float:
    """One epoch; returns the epoch's mean training loss."""
    model.train()
    total_acc, total_count, loss_sum, batches = 0, 0, 0.0, 0
    start_time = time.time()
    for idx, (label, text, offsets) in enumerate(dataloader):
        optimizer.zero_grad()
        predicted_label = model(text, offsets)
        loss = criterion(predicted_label, label)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.1)
        optimizer.step()
        total_acc += (predicted_label.argmax(1) == label).sum().item()
        total_count += label.size(0)
        loss_sum += loss.item()
        batches += 1
        if idx % log_interval == 0 and idx > 0:
            elapsed = time.time() - start_time
            print(f"| epoch {epoch:3d} | {idx:5d}/{len(dataloader):5d} batches "
                  f"| accuracy {total_acc / total_count:8.3f} | {elapsed:5.1f} s")
            total_acc, total_count, start_time = 0, 0, time.time()
    return loss_sum / max(batches, 1)


def evaluate(model, dataloader) -> float:
    model.eval()
    total_acc, total_count = 0, 0
    with torch.no_grad():
        for label, text, offsets in dataloader:
            predicted_label = model(text, offsets)
            total_acc += (predicted_label.argmax(1) == label).sum().item()
            total_count += label.size(0)
    return total_acc / total_count


def predict(model, vocab: Vocab, text: str) -> int:
    with torch.no_grad():
        ids = torch.tensor(vocab.lookup_indices(tokenize(text)), dtype=torch.int64)
        return model(ids, torch.tensor([0])).argmax(1).item()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="EmbeddingBag sentiment classifier (shenjing)")
    p.add_argument("--archive", default=DEFAULT_ARCHIVE, help="a .tar.gz packed like aclImdb")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--lr", type=float, default=5.0)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--emsize", type=int, default=64)
    p.add_argument("--train-limit", type=int, default=0, help="training texts (0: all)")
    p.add_argument("--test-limit", type=int, default=0, help="test texts (0: all)")
    p.add_argument("--log-interval", type=int, default=50)
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def _labels(dataset) -> list[int]:
    """Every item's label, without reading the review files again."""
    if isinstance(dataset, torch.utils.data.Subset):
        return [dataset.dataset.targets[i] for i in dataset.indices]
    return list(dataset.targets)


def _sample(dataset, limit: int):
    """`limit` items drawn at random (fixed seed) from both classes; all when limit is 0."""
    if not limit or limit >= len(dataset):
        return dataset
    order = np.random.default_rng(12345).permutation(len(dataset))[:limit]
    return torch.utils.data.Subset(dataset, sorted(order.tolist()))


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    torch.manual_seed(args.seed)
    train_iter = _sample(IMDB(archive=args.archive, split="train"), args.train_limit)
    test_iter = _sample(IMDB(archive=args.archive, split="test"), args.test_limit)
    vocab = Vocab.build((tokenize(text) for text, _ in train_iter), max_size=None,
                        specials=("<unk>",))
    print(f"{len(train_iter)} training / {len(test_iter)} test texts, vocabulary {len(vocab)}")
    collate_batch = make_collate(vocab)

    model = TextClassificationModel(len(vocab), args.emsize, len(LABELS))
    criterion = torch.nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, 1.0, gamma=0.1)
    num_train = int(len(train_iter) * 0.95)
    split_train_, split_valid_ = torch.utils.data.random_split(
        train_iter, [num_train, len(train_iter) - num_train],
        generator=torch.Generator().manual_seed(args.seed))
    train_dataloader = torch.utils.data.DataLoader(
        split_train_, batch_size=args.batch_size, shuffle=True, collate_fn=collate_batch)
    valid_dataloader = torch.utils.data.DataLoader(
        split_valid_, batch_size=args.batch_size, shuffle=True, collate_fn=collate_batch)
    test_dataloader = torch.utils.data.DataLoader(
        test_iter, batch_size=args.batch_size, shuffle=True, collate_fn=collate_batch)

    started = time.perf_counter()
    total_accu, train_losses = None, []
    for epoch in range(1, args.epochs + 1):
        epoch_start_time = time.time()
        train_losses.append(train(model, train_dataloader, criterion, optimizer, epoch,
                                  args.log_interval))
        accu_val = evaluate(model, valid_dataloader)
        if total_accu is not None and total_accu > accu_val:
            scheduler.step()
        else:
            total_accu = accu_val
        print("-" * 59)
        print(f"| end of epoch {epoch:3d} | time: {time.time() - epoch_start_time:5.2f}s | "
              f"valid accuracy {accu_val:8.3f} ")
        print("-" * 59)
    accu_test = evaluate(model, test_dataloader)
    seconds = time.perf_counter() - started
    print(f"test accuracy {accu_test:8.3f}")
    for text in ("A warm, funny and beautifully acted film; I loved every minute of it.",
                 "Dull, lifeless and far too long: a tedious mess of a movie."):
        print(f"{LABELS[predict(model, vocab, text)]:>18}: {text}")
    positive = float(np.mean(_labels(test_iter)))
    majority = max(positive, 1.0 - positive)
    print(f"final: test accuracy {100 * accu_test:.2f}% (always answering the most common "
          f"class: {100 * majority:.2f}%) in {seconds:.0f} s")
    return {"test_accuracy": accu_test, "majority": float(majority),
            "train_losses": train_losses, "seconds": seconds}


if __name__ == "__main__":
    main()
