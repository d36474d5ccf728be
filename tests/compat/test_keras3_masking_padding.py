"""Mirrors Keras 3's "Understanding masking & padding" guide: variable-length sequences
padded with keras.utils.pad_sequences, an Embedding with mask_zero=True whose mask the LSTM
consumes, the mask checked on a Masking layer, and a small sentiment-like classifier that
must give the same answer however much padding a sequence gets."""

import numpy as np

from shenjing import keras

VOCAB = 50


def _sequences(n, rng):
    """Sequences of 3-12 ids; the label says whether 'good' (id 7) outnumbers 'bad' (8)."""
    seqs, labels = [], []
    for _ in range(n):
        length = int(rng.integers(3, 13))
        seq = rng.integers(9, VOCAB, length)
        seq[rng.random(length) < 0.3] = 7
        seq[rng.random(length) < 0.3] = 8
        seqs.append(seq.tolist())
        labels.append(int((seq == 7).sum() > (seq == 8).sum()))
    return seqs, np.array(labels)


def test_masked_lstm_classifier_ignores_padding():
    keras.utils.set_random_seed(2)
    rng = np.random.default_rng(2)
    raw, labels = _sequences(600, rng)
    padded = keras.utils.pad_sequences(raw, maxlen=12)  # pre-padding, as in the guide
    assert padded.shape == (600, 12) and (padded[:, 0] == 0).any()
    model = keras.Sequential([
        keras.Input(shape=(None,), dtype="int64"),
        keras.layers.Embedding(VOCAB, 16, mask_zero=True),
        keras.layers.LSTM(16),
        keras.layers.Dense(1, activation="sigmoid"),
    ])
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="binary_crossentropy",
                  metrics=["accuracy"])
    model.fit(padded[:500], labels[:500], epochs=8, batch_size=32, verbose=0)
    _, accuracy = model.evaluate(padded[500:], labels[500:], verbose=0)
    assert accuracy > 0.8
    # more padding changes nothing: masked steps are skipped
    longer = keras.utils.pad_sequences(raw[500:], maxlen=20)
    np.testing.assert_allclose(model.predict(longer, verbose=0),
                               model.predict(padded[500:], verbose=0), rtol=1e-4, atol=1e-5)
    # the Masking layer zeroes the all-zero steps of float inputs
    steps = np.ones((1, 4, 3), "float32")
    steps[0, 1] = 0.0
    masked = keras.layers.Masking(mask_value=0.0)(steps).numpy()
    np.testing.assert_array_equal(masked, steps)
