"""Keras 3's "Text classification from scratch" on shenjing's Keras door.

Mirrors: Keras code example "Text classification from scratch" (Mark Omernick, fchollet)
    https://keras.io/examples/nlp/text_classification_from_scratch/
Written anew for shenjing (only `from shenjing import keras` and NumPy): raw review files
read with `keras.utils.text_dataset_from_directory` (train/validation cut 80/20 with seed
1337, plus the test folder), a custom standardization function (lower-case, `<br />` tags
and punctuation removed) in a `TextVectorization(max_tokens=20000, output_mode="int",
output_sequence_length=...)` layer adapted on the training texts alone, the texts turned
into id batches before training (the example's "option 2", here through a
`keras.utils.PyDataset` in place of `tf.data`'s `map`), the example's 1-D convnet
(Embedding(128) -> Dropout(0.5) -> two Conv1D(128, 7, strides=3, relu) ->
GlobalMaxPooling1D -> Dense(128, relu) -> Dropout(0.5) -> Dense(1, sigmoid)), binary
cross-entropy with Adam for 3 epochs, `evaluate` on the test set, and finally the
end-to-end model that takes raw strings (`keras.Input(shape=(1,), dtype="string")` ->
the vectorizer -> the trained model).

What changed, and why:
- data: the Rotten Tomatoes snippets (../shared/data/rt_polarity.tar.gz, extracted by
  shenjing's IMDB loader into its aclImdb layout: 10,202 train / 2,550 test) instead of
  aclImdb's 25,000 + 25,000 long reviews, which are not available offline.
- `output_sequence_length` 500 -> 64: the snippets average about 21 words (IMDB reviews
  about 230); 64 still leaves the two strided convolutions 5 positions to pool over.
- epochs stay 3; the default run takes about 3.5 minutes on one core. `--train-limit` and
  `--test-limit` shrink it for the tests; `main(argv)` returns the metrics. The optimizer
  is spelled `keras.optimizers.Adam(learning_rate=...)` so that `--learning-rate` can
  change it; its default, 1e-3, is what the example's `optimizer="adam"` gives.

Run: OPENBLAS_NUM_THREADS=1 python examples/compat/keras_text_classification.py
"""

from __future__ import annotations

import argparse
import os
import re
import string
import time
from pathlib import Path

import numpy as np

from shenjing import keras
from shenjing.data.datasets import IMDB
from shenjing.keras import layers

DEFAULT_ARCHIVE = os.path.join(os.environ.get("SHENJING_DATA") or str(
    Path(__file__).resolve().parents[3] / "shared" / "data"), "rt_polarity.tar.gz")
_BREAK = re.compile(r"<br\s*/?>")
_PUNCTUATION = re.compile(f"[{re.escape(string.punctuation)}]")


def custom_standardization(text: str) -> str:
    """Lower-case; HTML line breaks become spaces; punctuation goes."""
    return _PUNCTUATION.sub("", _BREAK.sub(" ", text.lower()))


class VectorizedBatches(keras.utils.PyDataset):
    """Each batch of raw (texts, labels) with the texts turned into id sequences."""

    def __init__(self, raw, vectorize_layer, limit: int = 0) -> None:
        super().__init__()
        self.raw, self.vectorize_layer = raw, vectorize_layer
        self.batches = len(raw)
        if limit:
            self.batches = min(self.batches, -(-limit // len(raw[0][1])))

    def __len__(self) -> int:
        return self.batches

    def __getitem__(self, index: int):
        texts, labels = self.raw[index]
        ids = keras.ops.convert_to_numpy(self.vectorize_layer(texts))
        return ids, labels.astype("float32")

    def on_epoch_end(self) -> None:
        self.raw.on_epoch_end()  # reshuffle the files, as a shuffled tf.data pipeline does


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Keras 'Text classification from scratch'")
    p.add_argument("--archive", default=DEFAULT_ARCHIVE, help="a .tar.gz packed like aclImdb")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--max-features", type=int, default=20000)
    p.add_argument("--embedding-dim", type=int, default=128)
    p.add_argument("--sequence-length", type=int, default=64, help="the example uses 500")
    p.add_argument("--train-limit", type=int, default=0, help="training texts (0: all)")
    p.add_argument("--test-limit", type=int, default=0, help="test texts (0: all)")
    p.add_argument("--learning-rate", type=float, default=1e-3, help="Adam's ('adam')")
    p.add_argument("--seed", type=int, default=1337)
    p.add_argument("--verbose", type=int, default=2)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    keras.utils.set_random_seed(args.seed)
    folder = IMDB(archive=args.archive, split="train").root  # the extracted aclImdb layout
    raw_train_ds, raw_val_ds = keras.utils.text_dataset_from_directory(
        folder / "train", batch_size=args.batch_size, validation_split=0.2,
        subset="both", seed=args.seed)
    raw_test_ds = keras.utils.text_dataset_from_directory(
        folder / "test", batch_size=args.batch_size, seed=args.seed)  # seeded: --test-limit
    print(f"batches: train {len(raw_train_ds)}, validation {len(raw_val_ds)}, "
          f"test {len(raw_test_ds)}; classes {raw_train_ds.class_names}")
    texts, labels = raw_train_ds[0]
    for text, label in zip(texts[:3], labels[:3]):
        print(f"  {label}  {text.strip()[:90]}")

    vectorize_layer = layers.TextVectorization(
        standardize=custom_standardization, max_tokens=args.max_features, output_mode="int",
        output_sequence_length=args.sequence_length)
    train_batches = len(VectorizedBatches(raw_train_ds, None, args.train_limit))
    text_only = np.concatenate([raw_train_ds[i][0] for i in range(train_batches)])
    vectorize_layer.adapt(text_only)
    print(f"vocabulary: {vectorize_layer.vocabulary_size()} tokens")
    train_ds = VectorizedBatches(raw_train_ds, vectorize_layer, args.train_limit)
    val_ds = VectorizedBatches(raw_val_ds, vectorize_layer, args.test_limit)
    test_ds = VectorizedBatches(raw_test_ds, vectorize_layer, args.test_limit)

    inputs = keras.Input(shape=(None,), dtype="int64")
    x = layers.Embedding(args.max_features, args.embedding_dim)(inputs)
    x = layers.Dropout(0.5)(x)
    x = layers.Conv1D(128, 7, padding="valid", activation="relu", strides=3)(x)
    x = layers.Conv1D(128, 7, padding="valid", activation="relu", strides=3)(x)
    x = layers.GlobalMaxPooling1D()(x)
    x = layers.Dense(128, activation="relu")(x)
    x = layers.Dropout(0.5)(x)
    predictions = layers.Dense(1, activation="sigmoid", name="predictions")(x)
    model = keras.Model(inputs, predictions)
    model.compile(loss="binary_crossentropy",
                  optimizer=keras.optimizers.Adam(learning_rate=args.learning_rate),
                  metrics=["accuracy"])

    started = time.perf_counter()
    history = model.fit(train_ds, validation_data=val_ds, epochs=args.epochs,
                        verbose=args.verbose)
    test_loss, test_accuracy = model.evaluate(test_ds, verbose=0)
    seconds = time.perf_counter() - started
    print(f"test loss {test_loss:.4f}, test accuracy {test_accuracy:.4f}")

    # The end-to-end model: raw strings in, probabilities out.
    samples = np.array([["A gorgeous, moving and very funny film."],
                        ["A boring, predictable waste of two hours."]], dtype=object)
    string_input = keras.Input(shape=(1,), dtype="string")
    end_to_end_model = keras.Model(string_input, model(vectorize_layer(string_input)))
    end_to_end_model.compile(loss="binary_crossentropy", optimizer="adam",
                             metrics=["accuracy"])
    probabilities = end_to_end_model.predict(samples, verbose=0)[:, 0]
    for (sample,), p in zip(samples, probabilities):
        print(f"  p(fresh) = {p:.2f}  {sample}")

    positive = float(np.mean(np.concatenate([test_ds[i][1] for i in range(len(test_ds))])))
    majority = max(positive, 1 - positive)
    print(f"final: test accuracy {100 * test_accuracy:.2f}% (always answering the most common "
          f"class: {100 * majority:.2f}%) in {seconds:.0f} s")
    return {"test_accuracy": float(test_accuracy), "test_loss": float(test_loss),
            "majority": majority, "train_losses": [float(v) for v in history.history["loss"]],
            "seconds": seconds, "sample_probabilities": [float(p) for p in probabilities]}


if __name__ == "__main__":
    main()
