"""Mirrors Keras 3's "The Sequential model" guide: a stack built by passing a list and by
add()/pop(), weights created on first call or from an Input, summary(), a CNN built
incrementally while watching its output shape, and feature extraction from a trained
Sequential with a functional Model over its layers' outputs."""

import numpy as np

from shenjing import keras
from shenjing.keras import layers, ops


def test_sequential_guide_walkthrough(capsys):
    keras.utils.set_random_seed(1)
    model = keras.Sequential([
        layers.Dense(2, activation="relu", name="layer1"),
        layers.Dense(3, activation="relu", name="layer2"),
        layers.Dense(4, name="layer3"),
    ])
    x = ops.ones((3, 3))
    y = model(x)
    assert ops.shape(y) == (3, 4)
    assert len(model.weights) == 6  # created on first call

    # the same computation written as calls of the three layers
    layer1, layer2, layer3 = model.layers
    manual = layer3(layer2(layer1(x)))
    np.testing.assert_allclose(ops.convert_to_numpy(manual), ops.convert_to_numpy(y),
                               rtol=1e-6)

    incremental = keras.Sequential()
    incremental.add(layers.Dense(2, activation="relu"))
    incremental.add(layers.Dense(3, activation="relu"))
    incremental.add(layers.Dense(4))
    incremental.pop()
    assert len(incremental.layers) == 2

    # an input shape up front builds the model so summary() works immediately
    cnn = keras.Sequential()
    cnn.add(keras.Input(shape=(28, 28, 1)))
    cnn.add(layers.Conv2D(8, 5, strides=2, activation="relu"))
    cnn.add(layers.Conv2D(8, 3, activation="relu"))
    cnn.add(layers.MaxPooling2D(2))
    assert cnn.output_shape == (None, 5, 5, 8)
    cnn.add(layers.Flatten())
    cnn.add(layers.Dense(10))
    cnn.summary()
    assert "Total params" in capsys.readouterr().out

    # train on a small real slice, then extract features from an intermediate layer
    (x_train, y_train), _ = keras.datasets.mnist.load_data()
    images = x_train[:600, :, :, None].astype("float32") / 255.0
    labels = y_train[:600]
    cnn.compile(optimizer=keras.optimizers.Adam(3e-3),
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                metrics=["accuracy"])
    history = cnn.fit(images, labels, batch_size=30, epochs=3, verbose=0)
    assert history.history["accuracy"][-1] > 0.6

    extractor = keras.Model(inputs=cnn.inputs,
                            outputs=[layer.output for layer in cnn.layers])
    features = extractor(images[:4])
    assert len(features) == 5 and ops.shape(features[2]) == (4, 5, 5, 8)
    assert ops.shape(features[3]) == (4, 200)
    np.testing.assert_allclose(ops.convert_to_numpy(features[-1]),
                               ops.convert_to_numpy(cnn(images[:4])), rtol=1e-5, atol=1e-6)
