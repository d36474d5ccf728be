"""keras.utils (pad_sequences, PyDataset through fit, to_categorical, plot_model,
split_dataset), keras.preprocessing, keras.random and keras.datasets (local files, Keras's
exact IMDB encoding, the clear offline error)."""

from __future__ import annotations

import hashlib
import os
import pickle
import sys
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

import shenjing as sj
from shenjing import keras
from shenjing.keras.datasets import boston_housing, files, imdb

DATA = Path(os.environ.get("SHENJING_DATA") or Path(__file__).resolve().parents[2] / "shared"
            / "data")
REVIEWS = DATA / "rt_polarity.tar.gz"
SEQS = [[1], [2, 3], [4, 5, 6]]


# --- pad_sequences: Keras's documented examples and every padding/truncating pair --------
@pytest.mark.parametrize("kwargs,expected", [
    ({}, [[0, 0, 1], [0, 2, 3], [4, 5, 6]]),
    ({"value": -1}, [[-1, -1, 1], [-1, 2, 3], [4, 5, 6]]),
    ({"padding": "post"}, [[1, 0, 0], [2, 3, 0], [4, 5, 6]]),
    ({"maxlen": 2}, [[0, 1], [2, 3], [5, 6]]),
    ({"maxlen": 2, "truncating": "post"}, [[0, 1], [2, 3], [4, 5]]),
    ({"maxlen": 2, "padding": "post"}, [[1, 0], [2, 3], [5, 6]]),
    ({"maxlen": 2, "padding": "post", "truncating": "post"}, [[1, 0], [2, 3], [4, 5]]),
    ({"maxlen": 4, "padding": "post", "truncating": "post"},
     [[1, 0, 0, 0], [2, 3, 0, 0], [4, 5, 6, 0]]),
])
def test_pad_sequences_keras_examples(kwargs: dict, expected: list) -> None:
    out = keras.utils.pad_sequences(SEQS, **kwargs)
    assert out.dtype == np.int32
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(keras.preprocessing.sequence.pad_sequences(SEQS, **kwargs),
                                  expected)


def test_pad_sequences_empty_rows_items_and_errors() -> None:
    out = keras.utils.pad_sequences([[], [[1, 2], [3, 4]]], maxlen=3, dtype="float32",
                                    value=0.5)
    assert out.shape == (2, 3, 2) and out.dtype == np.float32
    np.testing.assert_array_equal(out[0], np.full((3, 2), 0.5))
    np.testing.assert_array_equal(out[1], [[0.5, 0.5], [1, 2], [3, 4]])
    assert keras.utils.pad_sequences([], maxlen=None).shape == (0, 0)
    with pytest.raises(ValueError, match="padding must be 'pre' or 'post'"):
        keras.utils.pad_sequences(SEQS, padding="middle")
    with pytest.raises(ValueError, match="truncating"):
        keras.utils.pad_sequences(SEQS, truncating="both")
    with pytest.raises(ValueError, match="not a sequence"):
        keras.utils.pad_sequences([1, 2])


def test_to_categorical_and_split_dataset() -> None:
    np.testing.assert_array_equal(keras.utils.to_categorical([[2], [0]], 3),
                                  [[0, 0, 1], [1, 0, 0]])
    with pytest.raises(ValueError, match="out of range"):
        keras.utils.to_categorical([3], 3)
    x, y = np.arange(10), np.arange(10) * 2
    (lx, ly), (rx, ry) = keras.utils.split_dataset((x, y), left_size=0.7)
    np.testing.assert_array_equal(lx, np.arange(7))
    np.testing.assert_array_equal(ry, np.arange(7, 10) * 2)
    left, right = keras.utils.split_dataset(x, right_size=3, shuffle=True, seed=1)
    assert len(left) == 7 and sorted(np.concatenate([left, right]).tolist()) == list(range(10))
    with pytest.raises(ValueError, match="left_size"):
        keras.utils.split_dataset(x, left_size=11)


class _Squares(keras.utils.PyDataset):
    def __init__(self, n_batches: int, **kwargs) -> None:
        super().__init__(**kwargs)
        rng = np.random.default_rng(0)
        self.x = rng.normal(size=(n_batches * 16, 4)).astype(np.float32)
        self.y = (self.x @ np.array([1.0, -2.0, 0.5, 3.0], np.float32))[:, None]
        self.requested: list[int] = []
        self.epochs_ended = 0

    def __len__(self) -> int:
        return len(self.x) // 16

    def __getitem__(self, i: int):
        self.requested.append(i)
        return self.x[i * 16:(i + 1) * 16], self.y[i * 16:(i + 1) * 16]

    def on_epoch_end(self) -> None:
        self.epochs_ended += 1


@pytest.mark.parametrize("workers,multi", [(1, False), (3, True)])
def test_py_dataset_feeds_fit_batch_by_batch(workers: int, multi: bool) -> None:
    keras.utils.set_random_seed(0)
    data = _Squares(8, workers=workers, use_multiprocessing=multi, max_queue_size=2)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse")
    history = model.fit(data, epochs=4, verbose=0)
    assert sorted(data.requested) == sorted(list(range(8)) * 4)
    assert data.epochs_ended == 4
    losses = history.history["loss"]
    assert losses[-1] < 0.1 * losses[0]
    val = model.evaluate(_Squares(2), verbose=0)
    assert val < 0.1 * losses[0]
    with pytest.raises(ValueError, match="workers must be a positive int"):
        _Squares(2, workers=0)


def test_plot_model_png(tmp_path: Path) -> None:
    pytest.importorskip("pydot")
    import shutil

    if shutil.which("dot") is None:
        pytest.skip("Graphviz is not installed")
    inp = keras.Input((8,))
    a = keras.layers.Dense(4, name="left")(inp)
    b = keras.layers.Dense(4, name="right")(inp)
    model = keras.Model(inp, keras.layers.Concatenate()([a, b]))
    dot = keras.utils.model_to_dot(model, show_shapes=True)
    assert len(dot.get_edges()) == 4 and "left (Dense)" in dot.to_string()
    target = tmp_path / "model.png"
    keras.utils.plot_model(model, to_file=target, show_shapes=True)
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_model_without_pydot_names_both(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pydot", None)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    with pytest.raises(ImportError, match="pydot.*Graphviz"):
        keras.utils.plot_model(model, "x.png")


def test_tokenizer_ranks_and_matrix() -> None:
    tok = keras.preprocessing.text.Tokenizer(num_words=3, oov_token="<unk>")
    tok.fit_on_texts(["the cat, the hat.", "The dog"])
    assert tok.word_index["<unk>"] == 1 and tok.word_index["the"] == 2
    assert tok.texts_to_sequences(["the cat ran"]) == [[2, 1, 1]]
    np.testing.assert_array_equal(tok.texts_to_matrix(["the the"], mode="count"), [[0, 0, 2]])


# --- keras.random -------------------------------------------------------------------------
def test_random_seeds_and_distributions() -> None:
    r = keras.random
    np.testing.assert_array_equal(r.normal((5,), seed=3).numpy(), r.normal((5,), seed=3).numpy())
    gen = r.SeedGenerator(7)
    first, second = r.uniform((5,), seed=gen).numpy(), r.uniform((5,), seed=gen).numpy()
    assert not np.array_equal(first, second)
    np.testing.assert_array_equal(first, r.uniform((5,), seed=r.SeedGenerator(7)).numpy())
    big = r.normal((20000,), mean=2.0, stddev=3.0, seed=1).numpy()
    assert abs(big.mean() - 2.0) < 0.1 and abs(big.std() - 3.0) < 0.1
    assert np.abs(r.truncated_normal((5000,), seed=1).numpy()).max() <= 2.0
    ints = r.randint((1000,), 3, 6, seed=2).numpy()
    assert set(ints.tolist()) == {3, 4, 5}
    kept = r.dropout(sj.ones(1000, 8), 0.25, noise_shape=(None, 1), seed=4).numpy()
    np.testing.assert_allclose(np.unique(kept), [0.0, 4 / 3], rtol=1e-6)
    assert (kept == kept[:, :1]).all()  # one draw per row
    draws = r.categorical(sj.tensor([[0.0, 20.0], [20.0, 0.0]]), 50, seed=0).numpy()
    assert (draws[0] == 1).all() and (draws[1] == 0).all()
    x = sj.arange(10)
    assert sorted(r.shuffle(x, seed=0).numpy().tolist()) == list(range(10))
    with pytest.raises(TypeError, match="seed must be"):
        r.normal((2,), seed="abc")


# --- keras.datasets ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def reviews() -> dict:
    if not REVIEWS.is_file():
        pytest.skip(f"{REVIEWS} not present")
    old = os.environ.get("SHENJING_DATA")
    os.environ["SHENJING_DATA"] = str(DATA)
    try:
        full = imdb.load_data(source=REVIEWS)
        small = imdb.load_data(source=REVIEWS, num_words=100, skip_top=10, maxlen=20)
        index = imdb.get_word_index(source=REVIEWS)
    finally:
        if old is None:
            os.environ.pop("SHENJING_DATA")
        else:
            os.environ["SHENJING_DATA"] = old
    return {"full": full, "small": small, "index": index}


def test_imdb_encoding_from_review_archive(reviews: dict) -> None:
    (x, y), (xt, yt) = reviews["full"]
    assert len(x) == 10202 and len(xt) == 2550 and x.dtype == object
    assert y.sum() == 5924 and yt.sum() == 1444  # pos counts of the archive's splits
    assert all(s[0] == 1 for s in x)
    # Keras keeps ranks below num_words = the largest one, so only that one becomes oov (2)
    body = np.concatenate([np.asarray(s[1:]) for s in [*x, *xt]])
    assert body.min() == 2 and body.max() == len(reviews["index"]) + 3 - 1
    index = reviews["index"]
    assert index["the"] == 1 and index["a"] <= 3  # rank 1 = most frequent
    inverse = {rank + 3: w for w, rank in index.items()}
    words = [inverse[i] for i in x[0][1:]]
    assert all(isinstance(w, str) for w in words) and len(words) == len(x[0]) - 1
    (xs, ys), (xst, yst) = reviews["small"]
    flat = np.concatenate([np.asarray(s) for s in xs])
    assert len(xs) < len(x) and all(len(s) < 20 for s in xs) and all(len(s) < 20 for s in xst)
    assert flat.max() < 100 and set(np.unique(flat)) - {2} <= set(range(10, 100))
    assert (flat == 2).any() and not (flat == 1).any()  # start char 1 < skip_top -> oov
    assert len(ys) == len(xs)


def _fake_npz(path: Path, **arrays) -> str:
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_imdb_npz_local_copy_keras_encoding(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    seqs = np.empty(4, dtype=object)
    seqs[:] = [[1, 2, 3], [4, 5], [6], [7, 8, 9, 10]]
    digest = _fake_npz(tmp_path / "imdb.npz", x_train=seqs, y_train=np.array([0, 1, 0, 1]),
                       x_test=seqs[:2], y_test=np.array([1, 0]))
    monkeypatch.setenv("SHENJING_DATA", str(tmp_path))
    monkeypatch.setattr(imdb, "NPZ_SHA256", digest)
    (x, y), (xt, yt) = imdb.load_data(num_words=9, seed=113)
    order = np.arange(4)
    np.random.RandomState(113).shuffle(order)
    expected = [[1] + [w + 3 if w + 3 < 9 else 2 for w in seqs[i]] for i in order]
    assert [list(s) for s in x] == expected
    np.testing.assert_array_equal(y, np.array([0, 1, 0, 1])[order])
    (x, _), (xt, _) = imdb.load_data(start_char=None, oov_char=None, index_from=0, maxlen=3)
    # length-3 sequences go (maxlen is exclusive); num_words defaults to the largest word
    # left (6), which is itself dropped since Keras keeps words < num_words
    assert sorted(map(list, x)) == [[], [4, 5]] and list(map(list, xt)) == [[4, 5]]


def test_boston_local_copy_and_checksum(tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    x = np.arange(50, dtype=np.float64).reshape(10, 5)
    digest = _fake_npz(tmp_path / "boston_housing.npz", x=x, y=np.arange(10.0))
    monkeypatch.setenv("SHENJING_DATA", str(tmp_path))
    with pytest.raises(ValueError, match="SHA-256"):
        boston_housing.load_data()
    monkeypatch.setattr(boston_housing, "SHA256", digest)
    (xtr, ytr), (xte, yte) = keras.datasets.boston_housing.load_data(test_split=0.2)
    assert xtr.shape == (8, 5) and xte.shape == (2, 5)
    np.testing.assert_array_equal(xtr[:, 0] / 5, ytr)
    assert sorted(np.concatenate([ytr, yte]).tolist()) == list(range(10))


def test_offline_and_absent_is_a_clear_error(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHENJING_DATA", str(tmp_path))

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    for load in (keras.datasets.imdb.load_data, keras.datasets.reuters.load_data,
                 keras.datasets.boston_housing.load_data, keras.datasets.cifar10.load_data):
        with pytest.raises(keras.datasets.DatasetUnavailableError,
                           match=f"not found \\(looked in {tmp_path}.*no network"):
            load()
    assert not any(tmp_path.rglob("*.npz"))  # nothing half-written


def test_data_only_unpickler_refuses_code() -> None:
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    with pytest.raises(pickle.UnpicklingError, match="refusing to load"):
        files.safe_unpickle(pickle.dumps(Evil()))
    assert files.safe_unpickle(pickle.dumps({"a": [1, 2], "b": np.arange(3)}))["a"] == [1, 2]


def test_mnist_from_local_idx_files(monkeypatch: pytest.MonkeyPatch) -> None:
    if not (DATA / "mnist").is_dir():
        pytest.skip("no local MNIST")
    monkeypatch.setenv("SHENJING_DATA", str(DATA))
    (x, y), (xt, yt) = keras.datasets.mnist.load_data()
    assert x.shape == (60000, 28, 28) and x.dtype == np.uint8 and yt.shape == (10000,)
    assert set(np.unique(y).tolist()) == set(range(10))


def test_image_dataset_from_directory_feeds_fit(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("PIL")
    folder = DATA / "emoji"
    if not folder.is_dir():
        pytest.skip("no emoji folder")
    train, val = keras.utils.image_dataset_from_directory(
        folder, image_size=(8, 8), batch_size=128, validation_split=0.2, subset="both", seed=1,
        label_mode="categorical")
    assert train.class_names[0] == "Activities" and len(train.class_names) == 9
    assert not set(train.file_paths) & set(val.file_paths)
    assert len(train.file_paths) + len(val.file_paths) == 1906
    x, y = train[0]
    assert x.shape == (128, 8, 8, 3) and x.dtype == np.float32 and 0 <= x.min() <= x.max() <= 255
    assert y.shape == (128, 9) and (y.sum(1) == 1).all()
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Rescaling(1 / 255),
                              keras.layers.Flatten(), keras.layers.Dense(9, "softmax")])
    model.compile("adam", "categorical_crossentropy")
    history = model.fit(train, validation_data=val, epochs=2, verbose=0)
    assert history.history["loss"][1] < history.history["loss"][0]
    with pytest.raises(ValueError, match="needs a seed"):
        keras.utils.image_dataset_from_directory(folder, validation_split=0.2,
                                                 subset="training")


def test_text_dataset_from_directory_labels() -> None:
    folder = DATA / "imdb" / "rt_polarity" / "rt_polarity" / "test"
    if not folder.is_dir():
        pytest.skip("no extracted review folder")
    ds = keras.utils.text_dataset_from_directory(folder, batch_size=500, shuffle=False,
                                                 label_mode="binary", max_length=10)
    assert ds.class_names == ["neg", "pos"] and len(ds) == 6
    texts, labels = ds[0]
    assert texts.dtype == object and all(isinstance(t, str) and len(t) <= 10 for t in texts)
    assert labels.shape == (500, 1) and (labels == 0).all()  # neg files come first unshuffled
    with pytest.raises(FileNotFoundError, match="is not a folder"):
        keras.utils.text_dataset_from_directory(folder / "missing")
