"""Mirrors Keras 3's "Writing a training loop from scratch" guide (the PyTorch-backend
version): a functional MLP, an optimizer and a loss object; a hand-written loop that runs
the model in training mode, back-propagates, and hands the gradients to optimizer.apply();
metrics updated by hand and reset each epoch; then a validation pass."""

import numpy as np

from shenjing import keras
from shenjing.keras import layers, ops


def test_training_loop_from_scratch():
    keras.utils.set_random_seed(2)
    inputs = keras.Input(shape=(784,), name="digits")
    x = layers.Dense(64, activation="relu")(inputs)
    x = layers.Dense(64, activation="relu")(x)
    outputs = layers.Dense(10, name="predictions")(x)
    model = keras.Model(inputs=inputs, outputs=outputs)

    optimizer = keras.optimizers.Adam(learning_rate=1e-3)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    train_acc = keras.metrics.SparseCategoricalAccuracy()
    val_acc = keras.metrics.SparseCategoricalAccuracy()

    (x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
    x_train = x_train[:2048].reshape(-1, 784).astype("float32") / 255.0
    y_train = y_train[:2048].astype("int64")
    x_val = x_test[:512].reshape(-1, 784).astype("float32") / 255.0
    y_val = y_test[:512].astype("int64")
    batch_size = 64

    epoch_losses = []
    for epoch in range(3):
        order = ops.convert_to_numpy(keras.random.shuffle(ops.arange(len(x_train)),
                                                          seed=epoch))
        losses = []
        for step in range(len(x_train) // batch_size):
            idx = order[step * batch_size:(step + 1) * batch_size]
            x_batch, y_batch = x_train[idx], y_train[idx]
            logits = model(x_batch, training=True)
            loss = loss_fn(y_batch, logits)
            model.zero_grad()
            loss.backward()
            trainable = model.trainable_weights
            gradients = [v.value.grad for v in trainable]
            optimizer.apply(gradients, trainable)
            train_acc.update_state(y_batch, logits)
            losses.append(float(ops.convert_to_numpy(loss)))
        epoch_losses.append(np.mean(losses))
        assert 0.0 <= float(train_acc.result()) <= 1.0
        train_acc.reset_state()

    assert optimizer.iterations == 3 * (len(x_train) // batch_size)
    assert epoch_losses[-1] < 0.6 * epoch_losses[0]
    for lo in range(0, len(x_val), 128):
        val_acc.update_state(y_val[lo:lo + 128], model(x_val[lo:lo + 128], training=False))
    assert float(val_acc.result()) > 0.85
    probabilities = ops.softmax(model(x_val[:5]))
    np.testing.assert_allclose(ops.convert_to_numpy(ops.sum(probabilities, axis=-1)), 1.0,
                               rtol=1e-5)
