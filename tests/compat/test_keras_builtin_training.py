"""Mirrors Keras 3's "Training & evaluation with the built-in methods" guide on an MNIST
slice: a functional MLP compiled with RMSprop, sparse categorical cross-entropy and
accuracy; fit() with validation_data and a History; evaluate() and predict(); then the
same model fed by a keras.utils.PyDataset with two workers, and a custom loss function."""

import numpy as np

from shenjing import keras
from shenjing.keras import layers, ops


def get_model():
    inputs = keras.Input(shape=(784,), name="digits")
    x = layers.Dense(64, activation="relu", name="dense_1")(inputs)
    x = layers.Dense(64, activation="relu", name="dense_2")(x)
    outputs = layers.Dense(10, activation="softmax", name="predictions")(x)
    return keras.Model(inputs=inputs, outputs=outputs)


class DigitBatches(keras.utils.PyDataset):
    def __init__(self, x, y, batch_size, **kwargs):
        super().__init__(**kwargs)
        self.x, self.y, self.batch_size = x, y, batch_size

    def __len__(self):
        return int(np.ceil(len(self.x) / self.batch_size))

    def __getitem__(self, idx):
        lo = idx * self.batch_size
        return self.x[lo:lo + self.batch_size], self.y[lo:lo + self.batch_size]


def test_builtin_training_and_evaluation():
    keras.utils.set_random_seed(0)
    (x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
    x_train = x_train[:4000].reshape(4000, 784).astype("float32") / 255
    x_test = x_test[:1000].reshape(1000, 784).astype("float32") / 255
    y_train, y_test = y_train[:4000].astype("float32"), y_test[:1000].astype("float32")
    x_val, y_val = x_train[-500:], y_train[-500:]
    x_train, y_train = x_train[:-500], y_train[:-500]

    model = get_model()
    model.compile(optimizer=keras.optimizers.RMSprop(),
                  loss=keras.losses.SparseCategoricalCrossentropy(),
                  metrics=[keras.metrics.SparseCategoricalAccuracy()])
    history = model.fit(x_train, y_train, batch_size=32, epochs=2,
                        validation_data=(x_val, y_val), verbose=0)
    assert set(history.history) >= {"loss", "sparse_categorical_accuracy", "val_loss",
                                    "val_sparse_categorical_accuracy"}
    assert history.history["loss"][-1] < history.history["loss"][0]
    loss, acc = model.evaluate(x_test, y_test, batch_size=128, verbose=0)
    assert acc > 0.85, acc
    predictions = model.predict(x_test[:3], verbose=0)
    assert predictions.shape == (3, 10)
    np.testing.assert_allclose(predictions.sum(axis=1), 1.0, rtol=1e-5)

    # a PyDataset with workers, and a loss written with keras.ops
    def mean_squared_onehot(y_true, y_pred):
        onehot = ops.one_hot(ops.cast(y_true, "int32"), 10)
        return ops.mean(ops.square(onehot - y_pred), axis=-1)

    keras.utils.set_random_seed(0)
    model = get_model()
    model.compile(optimizer=keras.optimizers.Adam(), loss=mean_squared_onehot,
                  metrics=["sparse_categorical_accuracy"])
    model.fit(DigitBatches(x_train, y_train, 32, workers=2, max_queue_size=4), epochs=1,
              verbose=0)
    _, acc = model.evaluate(DigitBatches(x_test, y_test, 256), verbose=0)
    assert acc > 0.8, acc
