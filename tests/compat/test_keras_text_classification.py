"""Mirrors Keras 3's "Text classification from scratch" example on the Rotten Tomatoes
movie-review archive (packed like aclImdb). Once as the example does it: raw texts from
text_dataset_from_directory with a validation split, a TextVectorization layer adapted on
the training texts; once the older way: word-index sequences as keras.datasets.imdb encodes
them, padded with keras.utils.pad_sequences. Both train an Embedding -> Conv1D ->
GlobalMaxPooling1D -> Dense(sigmoid) classifier with binary cross-entropy."""

import os
from pathlib import Path

import pytest

from shenjing import keras
from shenjing.keras import layers

DATA = Path(os.environ.get("SHENJING_DATA") or Path(__file__).resolve().parents[3] / "shared"
            / "data")


def test_text_classification_from_scratch():
    archive = DATA / "rt_polarity.tar.gz"
    if not archive.is_file():
        pytest.skip(f"{archive} not present")
    max_features, sequence_length = 5000, 40
    (x_train, y_train), (x_test, y_test) = keras.datasets.imdb.load_data(
        source=archive, num_words=max_features)
    x_train = keras.utils.pad_sequences(x_train, maxlen=sequence_length)[:6000]
    x_test = keras.utils.pad_sequences(x_test, maxlen=sequence_length)
    y_train = y_train[:6000].astype("float32")
    assert x_train.shape == (6000, sequence_length) and x_train.max() < max_features

    keras.utils.set_random_seed(3)
    inputs = keras.Input(shape=(sequence_length,), dtype="int64")
    x = layers.Embedding(max_features, 32)(inputs)
    x = layers.Dropout(0.3)(x)
    x = layers.Conv1D(32, 5, padding="valid", activation="relu")(x)
    x = layers.GlobalMaxPooling1D()(x)
    x = layers.Dense(32, activation="relu")(x)
    x = layers.Dropout(0.3)(x)
    predictions = layers.Dense(1, activation="sigmoid", name="predictions")(x)
    model = keras.Model(inputs, predictions)
    model.compile(loss="binary_crossentropy", optimizer="adam", metrics=["accuracy"])
    history = model.fit(x_train, y_train, batch_size=64, epochs=3, verbose=0,
                        validation_split=0.1)
    assert history.history["loss"][-1] < history.history["loss"][0]
    _, accuracy = model.evaluate(x_test, y_test.astype("float32"), verbose=0)
    majority = max(y_test.mean(), 1 - y_test.mean())  # 0.566: always answering "fresh"
    assert accuracy > majority + 0.07, (accuracy, majority)


def test_text_classification_with_text_vectorization():
    """The example's own pipeline: raw texts from text_dataset_from_directory, a
    TextVectorization layer adapted on the training texts, then the same classifier."""
    folder = DATA / "imdb" / "rt_polarity" / "rt_polarity"
    if not (folder / "train").is_dir():
        keras.datasets.imdb.load_data(source=DATA / "rt_polarity.tar.gz")  # extracts it
    raw_train, raw_val = keras.utils.text_dataset_from_directory(
        folder / "train", batch_size=None, validation_split=0.2, subset="both", seed=1337)
    train_texts, train_labels = raw_train[0]
    val_texts, val_labels = raw_val[0]
    train_texts, train_labels = train_texts[:6000], train_labels[:6000]

    keras.utils.set_random_seed(4)
    vectorize = layers.TextVectorization(max_tokens=5000, output_mode="int",
                                         output_sequence_length=40)
    vectorize.adapt(train_texts)
    x_train = keras.ops.convert_to_numpy(vectorize(train_texts))
    x_val = keras.ops.convert_to_numpy(vectorize(val_texts))
    assert x_train.shape == (6000, 40) and x_train.max() < 5000

    inputs = keras.Input(shape=(40,), dtype="int64")
    x = layers.Embedding(5000, 32)(inputs)
    x = layers.Conv1D(32, 5, activation="relu")(x)
    x = layers.GlobalMaxPooling1D()(x)
    x = layers.Dropout(0.3)(x)
    outputs = layers.Dense(1, activation="sigmoid")(x)
    model = keras.Model(inputs, outputs)
    model.compile(loss="binary_crossentropy", optimizer="adam", metrics=["accuracy"])
    model.fit(x_train, train_labels.astype("float32"), batch_size=64, epochs=3, verbose=0)
    _, accuracy = model.evaluate(x_val, val_labels.astype("float32"), verbose=0)
    majority = max(val_labels.mean(), 1 - val_labels.mean())
    assert accuracy > majority + 0.07, (accuracy, majority)
