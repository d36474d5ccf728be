"""Seed 004 §4.2: a TextCNN on IMDB-layout movie reviews, logged to TensorBoard, on shenjing.

Run from the repository root (rt_polarity.tar.gz: 12,752 real review snippets packed
exactly like aclImdb_v1.tar.gz, read unchanged by the IMDB loader):
    python examples/seed004_textcnn_imdb.py [--archive ../shared/data/rt_polarity.tar.gz]
    tensorboard --logdir runs      # the curves

Lines that differ from the seed, and why:
- imports: `import torch.nn as nn` -> `import shenjing.nn as nn`, `import torch.optim as
  optim` -> `import shenjing.optim as optim`, `from torch.utils.tensorboard import
  SummaryWriter` -> `from shenjing.utils.tensorboard import SummaryWriter`, `from
  sklearn.metrics import ...` -> `from shenjing.metrics import ...`; the seed uses `torch`
  and `F` without importing them: added `import shenjing as torch` and
  `import shenjing.nn.functional as F`.
- data: torchtext's legacy `Field`/`LabelField`/`IMDB.splits`/`BucketIterator` (removed from
  torchtext itself) are replaced by shenjing's `IMDB` loader (safe extraction of the archive,
  instead of the download script's `extractall`), `tokenize` + `Vocab.build(max_size=25000)`,
  and a `BucketBatchSampler` DataLoader wrapped so that batches still have `.text` and
  `.label`. Batches are (batch, time) — the layout the seed's model needs; torchtext's
  default (time, batch) would have fed it transposed text.
- the seed's own bugs: `EMBED_DIM` is undefined (now 100); `FILTERS = [32, 64, 128]` is
  passed as `n_filters`, which must be one int (now `N_FILTERS = 100`, Kim 2014's value);
  `batch_idx` is undefined (the loop now enumerates); the max-pool output keeps a trailing
  unit axis, so `Linear` would get (N, 300, 1): `.squeeze(2)` -> `.squeeze(3).squeeze(2)`.
- `classification_report` is imported by the seed but never called: it now prints one at
  the end.
Everything else — the model, loss, Adam at 1e-3, 10 epochs, batch 64, the TensorBoard tags,
the train/validation loop and the final test — is the seed's code.
"""

import argparse

import shenjing as torch
import shenjing.nn as nn
import shenjing.nn.functional as F
import shenjing.optim as optim
from shenjing.data import BucketBatchSampler, DataLoader, PadCollate, Vocab, tokenize
from shenjing.data.datasets import IMDB
from shenjing.metrics import accuracy_score, classification_report
from shenjing.utils.tensorboard import SummaryWriter


class TextClassifier(nn.Module):
    def __init__(self, vocab_size, embed_dim, n_filters, filter_sizes, output_dim, dropout):
        super().__init__()

        self.embedding = nn.Embedding(vocab_size, embed_dim)
        self.convs = nn.ModuleList([
                                    nn.Conv2d(1, n_filters, (k, embed_dim))
                                    for k in filter_sizes
                                    ])
        self.fc = nn.Linear(len(filter_sizes) * n_filters, output_dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, text):
        embedded = self.embedding(text).unsqueeze(1)
        conved = [conv(embedded) for conv in self.convs]
        pooled = [F.max_pool2d(conv, (conv.shape[2], 1)).squeeze(3).squeeze(2)
                  for conv in conved]
        cat = self.dropout(torch.cat(pooled, dim=1))
        logits = self.fc(cat)
        return logits


class BucketIterator:
    """Stands in for torchtext's BucketIterator: batches of similar length, `.text`/`.label`."""

    class Batch:
        def __init__(self, text, label):
            self.text, self.label = text, label

    def __init__(self, examples, batch_size, shuffle, pad_index, seed=0):
        lengths = [len(tokens) for tokens, _ in examples]
        self.loader = DataLoader(
            examples, collate_fn=PadCollate(pad_index, min_len=5),
            batch_sampler=BucketBatchSampler(lengths, batch_size, shuffle=shuffle, seed=seed))

    def __len__(self):
        return len(self.loader)

    def __iter__(self):
        for text, _lengths, label in self.loader:
            yield self.Batch(text, label)


parser = argparse.ArgumentParser()
parser.add_argument("--archive", default="../shared/data/rt_polarity.tar.gz")
parser.add_argument("--epochs", type=int, default=10)
args = parser.parse_args()
torch.manual_seed(0)

device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')

train_raw = IMDB(archive=args.archive, split="train")
test_raw = IMDB(archive=args.archive, split="test")

MAX_VOCAB_SIZE = 25000
BATCH_SIZE = 64
EMBED_DIM = 100
N_FILTERS = 100
FILTER_SIZES = [3, 4, 5]
OUTPUT_DIM = 2
DROPOUT = 0.5

vocab = Vocab.build((tokenize(text) for text, _ in train_raw), max_size=MAX_VOCAB_SIZE)
train_data = [(vocab.lookup_indices(tokenize(text)), label) for text, label in train_raw]
test_data = [(vocab.lookup_indices(tokenize(text)), label) for text, label in test_raw]

train_iterator = BucketIterator(train_data, BATCH_SIZE, shuffle=True, pad_index=vocab.pad_index)
test_iterator = BucketIterator(test_data, BATCH_SIZE, shuffle=False, pad_index=vocab.pad_index)

vocab_size = len(vocab)

model = TextClassifier(vocab_size, EMBED_DIM, N_FILTERS, FILTER_SIZES, OUTPUT_DIM, DROPOUT)
model.to(device)

writer = SummaryWriter()

N_EPOCHS = args.epochs
LEARNING_RATE = 1e-3

criterion = nn.CrossEntropyLoss()
optimizer = optim.Adam(model.parameters(), lr=LEARNING_RATE)

for epoch in range(N_EPOCHS):

    epoch_loss = 0
    epoch_acc = 0

    model.train()

    for batch_idx, batch in enumerate(train_iterator):
        text = batch.text
        labels = batch.label

        predictions = model(text).squeeze(1)

        loss = criterion(predictions, labels)

        acc = accuracy_score(labels.cpu().numpy(),
                             predictions.argmax(1).detach().cpu().numpy())

        writer.add_scalar("Training Loss",
                          loss,
                          global_step=epoch*len(train_iterator)+batch_idx+1)

        writer.add_scalar("Training Accuracy",
                          acc,
                          global_step=epoch*len(train_iterator)+batch_idx+1)

        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

        epoch_loss += loss.item()
        epoch_acc += acc.item()

    avg_epoch_loss = epoch_loss / len(train_iterator)
    avg_epoch_acc = epoch_acc / len(train_iterator)

    writer.add_scalar("Average Training Loss",
                      avg_epoch_loss,
                      global_step=epoch+1)

    writer.add_scalar("Average Training Accuracy",
                      avg_epoch_acc,
                      global_step=epoch+1)

    val_loss = 0
    val_acc = 0

    model.eval()

    with torch.no_grad():
        for batch in test_iterator:
            text = batch.text
            labels = batch.label

            predictions = model(text).squeeze(1)

            loss = criterion(predictions, labels)

            acc = accuracy_score(labels.cpu().numpy(),
                                 predictions.argmax(1).cpu().numpy())

            val_loss += loss.item()
            val_acc += acc.item()

    avg_val_loss = val_loss / len(test_iterator)
    avg_val_acc = val_acc / len(test_iterator)

    writer.add_scalar("Validation Loss",
                      avg_val_loss,
                      global_step=epoch+1)

    writer.add_scalar("Validation Accuracy",
                      avg_val_acc,
                      global_step=epoch+1)

    print(f"Epoch {epoch+1} | Train Loss: {avg_epoch_loss:.3f}, Acc: {avg_epoch_acc:.3f} | Val Loss: {avg_val_loss:.3f}, Acc: {avg_val_acc:.3f}")

test_loss = 0
test_acc = 0
all_labels, all_predicted = [], []

model.eval()

with torch.no_grad():
    for batch in test_iterator:
        text = batch.text
        labels = batch.label

        predictions = model(text).squeeze(1)

        loss = criterion(predictions, labels)

        acc = accuracy_score(labels.cpu().numpy(),
                             predictions.argmax(1).cpu().numpy())

        test_loss += loss.item()
        test_acc += acc.item()
        all_labels += labels.tolist()
        all_predicted += predictions.argmax(1).tolist()

avg_test_loss = test_loss / len(test_iterator)
avg_test_acc = test_acc / len(test_iterator)

print(f"Test Loss: {avg_test_loss:.3f}, Acc: {avg_test_acc:.3f}")
print(classification_report(all_labels, all_predicted, target_names=["neg", "pos"]))
writer.close()
