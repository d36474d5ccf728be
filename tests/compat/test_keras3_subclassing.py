"""Mirrors Keras 3's "Making new layers and models via subclassing" guide: a Linear layer
whose weights come from add_weight in build(), an activity-regularization layer that calls
add_loss(), blocks of layers nested in a layer, and a Model subclass trained with fit();
then the same model compiled without a loss, trained only on what its layers add."""

import numpy as np

from shenjing import keras


class Linear(keras.layers.Layer):
    def __init__(self, units=32):
        super().__init__()
        self.units = units

    def build(self, input_shape):
        self.w = self.add_weight(shape=(input_shape[-1], self.units),
                                 initializer="random_normal", trainable=True)
        self.b = self.add_weight(shape=(self.units,), initializer="zeros", trainable=True)

    def call(self, inputs):
        return keras.ops.matmul(inputs, self.w) + self.b


class ActivityPenalty(keras.layers.Layer):
    def __init__(self, rate=1e-3):
        super().__init__()
        self.rate = rate

    def call(self, inputs):
        self.add_loss(self.rate * keras.ops.mean(keras.ops.square(inputs)))
        return inputs


class Block(keras.layers.Layer):
    def __init__(self):
        super().__init__()
        self.first = Linear(32)
        self.penalty = ActivityPenalty(1e-3)
        self.second = Linear(1)

    def call(self, inputs):
        hidden = keras.ops.relu(self.first(inputs))
        return self.second(self.penalty(hidden))


class Regressor(keras.Model):
    def __init__(self):
        super().__init__()
        self.block = Block()

    def call(self, inputs):
        return self.block(inputs)


def test_subclassed_layers_and_model_fit_a_function():
    keras.utils.set_random_seed(1)
    rng = np.random.default_rng(1)
    x = rng.uniform(-1, 1, (512, 4)).astype("float32")
    y = (np.sin(2 * x[:, :1]) + x[:, 1:2] * x[:, 2:3]).astype("float32")
    model = Regressor()
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    history = model.fit(x, y, epochs=30, batch_size=64, verbose=0).history
    assert len(model.block.first.trainable_weights) == 2
    assert len(model.trainable_weights) == 4
    assert len(model.losses) == 1  # the penalty of the latest call
    mse = float(np.mean((model.predict(x, verbose=0) - y) ** 2))
    assert mse < 0.25 * float(np.var(y)), history["loss"][-1]
    # compiled without a loss: only the activity penalty is minimized
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    penalty = model.fit(x, epochs=3, batch_size=128, verbose=0).history["loss"]
    assert penalty[-1] < penalty[0]
