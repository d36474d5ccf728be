"""Mirrors Keras 3's "The Functional API" guide, section "Models with multiple inputs and
outputs": a ticket ranker that reads a title, a body (word ids) and binary tags, and
predicts a priority score (sigmoid) and a department (softmax). Compiled with losses,
loss_weights and metrics keyed by output name, fed dicts of inputs and targets. Synthetic
tickets: the department is spelled by a keyword in the title, the priority by the "urgent" tag."""

import numpy as np

from shenjing import keras

WORDS, TAGS, DEPARTMENTS = 200, 12, 4


def _tickets(n, rng):
    title = rng.integers(10, WORDS, (n, 8))
    body = rng.integers(10, WORDS, (n, 8))
    department = rng.integers(0, DEPARTMENTS, n)
    title[np.arange(n), rng.integers(0, 8, n)] = 1 + department  # the keyword
    tags = rng.integers(0, 2, (n, TAGS)).astype("float32")
    priority = tags[:, :1].copy()  # the "urgent" tag
    return ({"title": title, "body": body, "tags": tags},
            {"priority": priority, "department": department})


def test_ticket_ranker_learns_both_outputs():
    keras.utils.set_random_seed(0)
    title_in = keras.Input(shape=(None,), name="title", dtype="int64")
    body_in = keras.Input(shape=(None,), name="body", dtype="int64")
    tags_in = keras.Input(shape=(TAGS,), name="tags")
    title_features = keras.layers.LSTM(12)(keras.layers.Embedding(WORDS, 12)(title_in))
    body_features = keras.layers.LSTM(4)(keras.layers.Embedding(WORDS, 8)(body_in))
    text = keras.layers.Dropout(0.5)(keras.layers.concatenate([title_features, body_features]))
    x = keras.layers.concatenate([text, tags_in])
    priority = keras.layers.Dense(1, activation="sigmoid", name="priority")(x)
    department = keras.layers.Dense(DEPARTMENTS, activation="softmax", name="department")(x)
    model = keras.Model(inputs=[title_in, body_in, tags_in], outputs=[priority, department])
    model.compile(optimizer=keras.optimizers.Adam(0.03),
                  loss={"priority": keras.losses.BinaryCrossentropy(),
                        "department": keras.losses.SparseCategoricalCrossentropy()},
                  loss_weights={"priority": 1.0, "department": 0.5},
                  metrics={"priority": ["accuracy"], "department": ["accuracy"]})
    rng = np.random.default_rng(0)
    x_train, y_train = _tickets(1536, rng)
    history = model.fit(x_train, y_train, epochs=6, batch_size=64, verbose=0).history
    assert history["loss"][-1] < 0.5 * history["loss"][0]
    x_test, y_test = _tickets(200, rng)
    logs = model.evaluate(x_test, y_test, verbose=0, return_dict=True)
    assert logs["priority_accuracy"] > 0.9  # half the tickets are urgent
    assert logs["department_accuracy"] > 0.8
    priority_pred, department_pred = model.predict(x_test, verbose=0)
    assert priority_pred.shape == (200, 1) and department_pred.shape == (200, DEPARTMENTS)
