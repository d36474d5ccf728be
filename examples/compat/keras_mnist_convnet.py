"""Keras 3's "Simple MNIST convnet" on shenjing's Keras door.

Mirrors: Keras code example "Simple MNIST convnet" (fchollet)
    https://keras.io/examples/vision/mnist_convnet/
Written anew for shenjing (only `from shenjing import keras` and NumPy): images scaled to
[0, 1] with a channel axis added, labels one-hot with `keras.utils.to_categorical`, a
`keras.Sequential` of Input(28, 28, 1) -> Conv2D(32, 3x3, relu) -> MaxPooling2D(2) ->
Conv2D(64, 3x3, relu) -> MaxPooling2D(2) -> Flatten -> Dropout(0.5) -> Dense(10, softmax),
`summary()`, compiled with categorical cross-entropy, Adam and accuracy, `fit` with batch
128 and `validation_split=0.1`, then `evaluate` on the test set.

What changed, and why:
- epochs 15 -> 2 and `--train-limit 30000` (the first 30,000 of the 60,000 training
  images), so the default run ends in about 3 minutes on one core; `--epochs 15
  --train-limit 0` is the example's own run. The whole 10,000-image test set is scored.
- `keras.datasets.mnist.load_data()` reads the local copy under `$SHENJING_DATA` (default
  ../shared/data here): the machine is offline.
- `main(argv)` returns the metrics so tests/test_examples_compat.py can run it small.

Run: OPENBLAS_NUM_THREADS=1 python examples/compat/keras_mnist_convnet.py
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("SHENJING_DATA", str(Path(__file__).resolve().parents[3] / "shared"
                                           / "data"))

from shenjing import keras  # noqa: E402  (after SHENJING_DATA is set)
from shenjing.keras import layers  # noqa: E402

NUM_CLASSES = 10
INPUT_SHAPE = (28, 28, 1)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Keras 'Simple MNIST convnet' on shenjing")
    p.add_argument("--epochs", type=int, default=2, help="the example runs 15")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--train-limit", type=int, default=30000, help="0: all 60,000")
    p.add_argument("--test-limit", type=int, default=0, help="0: all 10,000")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--verbose", type=int, default=2)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    keras.utils.set_random_seed(args.seed)
    (x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
    if args.train_limit:
        x_train, y_train = x_train[: args.train_limit], y_train[: args.train_limit]
    if args.test_limit:
        x_test, y_test = x_test[: args.test_limit], y_test[: args.test_limit]
    # scale to [0, 1] and give the images their single channel axis
    x_train = np.expand_dims(x_train.astype("float32") / 255, -1)
    x_test = np.expand_dims(x_test.astype("float32") / 255, -1)
    print("x_train shape:", x_train.shape)
    print(x_train.shape[0], "train samples")
    print(x_test.shape[0], "test samples")
    y_train = keras.utils.to_categorical(y_train, NUM_CLASSES)
    y_test = keras.utils.to_categorical(y_test, NUM_CLASSES)

    model = keras.Sequential([
        keras.Input(shape=INPUT_SHAPE),
        layers.Conv2D(32, kernel_size=(3, 3), activation="relu"),
        layers.MaxPooling2D(pool_size=(2, 2)),
        layers.Conv2D(64, kernel_size=(3, 3), activation="relu"),
        layers.MaxPooling2D(pool_size=(2, 2)),
        layers.Flatten(),
        layers.Dropout(0.5),
        layers.Dense(NUM_CLASSES, activation="softmax"),
    ])
    model.summary()

    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    started = time.perf_counter()
    history = model.fit(x_train, y_train, batch_size=args.batch_size, epochs=args.epochs,
                        validation_split=0.1, verbose=args.verbose)
    score = model.evaluate(x_test, y_test, verbose=0)
    seconds = time.perf_counter() - started
    print("Test loss:", score[0])
    print("Test accuracy:", score[1])
    print(f"final: test accuracy {100 * score[1]:.2f}%, test loss {score[0]:.4f} "
          f"in {seconds:.0f} s")
    return {"test_loss": float(score[0]), "test_accuracy": float(score[1]),
            "train_losses": [float(v) for v in history.history["loss"]],
            "seconds": seconds, "params": model.count_params()}


if __name__ == "__main__":
    main()
