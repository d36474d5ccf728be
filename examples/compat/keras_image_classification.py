"""Keras's "Image classification from scratch" (a small Xception) on shenjing's Keras door.

Mirrors: Keras code example "Image classification from scratch" (fchollet)
    https://keras.io/examples/vision/image_classification_from_scratch/
Written anew for shenjing (only `from shenjing import keras` and NumPy): class folders of
images read with `keras.utils.image_dataset_from_directory(validation_split=0.2,
subset="both", seed=1337)`, data augmentation (RandomFlip("horizontal"),
RandomRotation(0.1)) applied to the training batches (the example's "option 2", here a
`keras.utils.PyDataset` in place of `tf.data`'s `map`), the example's `make_model`: Rescaling
-> strided Conv2D + BatchNormalization + relu entry block -> residual blocks of two
SeparableConv2D + BatchNormalization, MaxPooling2D(3, strides=2) and a strided 1x1 Conv2D
projection added back with `layers.add` -> SeparableConv2D -> GlobalAveragePooling2D ->
Dropout(0.5) -> Dense(softmax); Adam(1e-3), a `ModelCheckpoint("save_at_{epoch}.keras")`
callback, `fit` with validation data, and a prediction for one image file through
`keras.utils.load_img` / `img_to_array`.

What changed, and why:
- data: the emoji ImageFolder (../shared/data/emoji: 1,906 real 64x64 Noto emoji, 9
  classes) resized to 32x32, instead of Kaggle's Cats vs Dogs (23,410 photos, 2 classes) at
  180x180, which is not available offline. With 9 classes the head is Dense(9, softmax)
  with sparse categorical cross-entropy, as `make_model` itself does for num_classes > 2.
- size: the filters are a quarter of the example's (entry 32, blocks 64/128/182, last 256
  instead of 128, 256/512/728, 1024), 32x32 images and 9 epochs instead of 25, so the
  default run ends in about 3.5 minutes on one core. Batch 16 instead of 128: with 1,525
  training images, 128 would give only 12 steps an epoch, and the BatchNormalization
  moving averages (momentum 0.99, as in Keras) need a few hundred steps before inference
  mode is usable; the example's own log shows the same, validation at chance for 3 epochs.
- checkpoints go to a temporary folder (or `--out`); `main(argv)` returns the metrics.

Run: OPENBLAS_NUM_THREADS=1 python examples/compat/keras_image_classification.py
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from shenjing import keras
from shenjing.keras import layers

DEFAULT_ROOT = os.path.join(os.environ.get("SHENJING_DATA") or str(
    Path(__file__).resolve().parents[3] / "shared" / "data"), "emoji")


def make_model(input_shape: tuple, num_classes: int, entry: int, sizes: list[int],
               last: int):
    inputs = keras.Input(shape=input_shape)
    # entry block
    x = layers.Rescaling(1.0 / 255)(inputs)
    x = layers.Conv2D(entry, 3, strides=2, padding="same")(x)
    x = layers.BatchNormalization()(x)
    x = layers.Activation("relu")(x)
    previous_block_activation = x  # set aside for the residual
    for size in sizes:
        x = layers.Activation("relu")(x)
        x = layers.SeparableConv2D(size, 3, padding="same")(x)
        x = layers.BatchNormalization()(x)
        x = layers.Activation("relu")(x)
        x = layers.SeparableConv2D(size, 3, padding="same")(x)
        x = layers.BatchNormalization()(x)
        x = layers.MaxPooling2D(3, strides=2, padding="same")(x)
        residual = layers.Conv2D(size, 1, strides=2, padding="same")(previous_block_activation)
        x = layers.add([x, residual])
        previous_block_activation = x
    x = layers.SeparableConv2D(last, 3, padding="same")(x)
    x = layers.BatchNormalization()(x)
    x = layers.Activation("relu")(x)
    x = layers.GlobalAveragePooling2D()(x)
    activation, units = ("sigmoid", 1) if num_classes == 2 else ("softmax", num_classes)
    x = layers.Dropout(0.5)(x)
    outputs = layers.Dense(units, activation=activation)(x)
    return keras.Model(inputs, outputs)


class AugmentedBatches(keras.utils.PyDataset):
    """The training batches with the augmentation layers applied to the images."""

    def __init__(self, batches, augmentation_layers: list, limit: int = 0) -> None:
        super().__init__()
        self.batches, self.augmentation_layers = batches, augmentation_layers
        self.count = min(len(batches), limit) if limit else len(batches)

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int):
        images, labels = self.batches[index]
        for layer in self.augmentation_layers:
            images = layer(images)
        return keras.ops.convert_to_numpy(images), labels

    def on_epoch_end(self) -> None:
        self.batches.on_epoch_end()


class FirstBatches(keras.utils.PyDataset):
    """The first `limit` batches of a dataset (all of them when limit is 0)."""

    def __init__(self, batches, limit: int = 0) -> None:
        super().__init__()
        self.batches = batches
        self.count = min(len(batches), limit) if limit else len(batches)

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int):
        return self.batches[index]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Keras 'Image classification from scratch'")
    p.add_argument("--data", default=DEFAULT_ROOT, help="a folder of class folders of images")
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--epochs", type=int, default=9, help="the example runs 25")
    p.add_argument("--entry-filters", type=int, default=32)
    p.add_argument("--block-sizes", default="64,128,182")
    p.add_argument("--last-filters", type=int, default=256)
    p.add_argument("--batches", type=int, default=0,
                   help="training and validation batches per epoch (0: all)")
    p.add_argument("--out", default=None, help="folder for the save_at_{epoch}.keras files")
    p.add_argument("--seed", type=int, default=1337)
    p.add_argument("--verbose", type=int, default=2)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    keras.utils.set_random_seed(args.seed)
    image_size = (args.image_size, args.image_size)
    train_ds, val_ds = keras.utils.image_dataset_from_directory(
        args.data, validation_split=0.2, subset="both", seed=args.seed,
        image_size=image_size, batch_size=args.batch_size)
    class_names = train_ds.class_names
    print(f"{len(train_ds.file_paths)} training / {len(val_ds.file_paths)} validation "
          f"images, {len(class_names)} classes")

    augmentation = [layers.RandomFlip("horizontal"), layers.RandomRotation(0.1)]
    train_batches = AugmentedBatches(train_ds, augmentation, args.batches)
    val_batches = FirstBatches(val_ds, args.batches)

    sizes = [int(s) for s in args.block_sizes.split(",")]
    model = make_model(image_size + (3,), len(class_names), args.entry_filters, sizes,
                       args.last_filters)
    loss = "binary_crossentropy" if len(class_names) == 2 else \
        "sparse_categorical_crossentropy"
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=loss, metrics=["accuracy"])
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.out or tmp)
        out.mkdir(parents=True, exist_ok=True)
        callbacks = [keras.callbacks.ModelCheckpoint(str(out / "save_at_{epoch}.keras"))]
        history = model.fit(train_batches, epochs=args.epochs, callbacks=callbacks,
                            validation_data=val_batches, verbose=args.verbose)
        saved = sorted(p.name for p in out.glob("save_at_*.keras"))
    seconds = time.perf_counter() - started
    val_loss, val_accuracy = model.evaluate(val_batches, verbose=0)

    # inference on one image file, as the example ends
    path = val_ds.file_paths[0]
    image = keras.utils.img_to_array(keras.utils.load_img(path, target_size=image_size))
    scores = model.predict(np.expand_dims(image, 0), verbose=0)[0]
    print(f"{Path(path).parent.name}/{Path(path).name}: predicted "
          f"{class_names[int(np.argmax(scores))]} ({100 * scores.max():.1f}%)")
    print(f"final: validation accuracy {100 * val_accuracy:.2f}% over {len(class_names)} "
          f"classes, checkpoints {saved[:1]}..{saved[-1:]} in {seconds:.0f} s")
    return {"val_accuracy": float(val_accuracy), "val_loss": float(val_loss),
            "train_losses": [float(v) for v in history.history["loss"]],
            "checkpoints": saved, "seconds": seconds}


if __name__ == "__main__":
    main()
