"""keras.datasets download path, offline: a local HTTP server (127.0.0.1, in a thread) stands
in for the Keras dataset hosts through the `$SHENJING_DATASETS_URL` mirror setting. It serves
small files written here in Keras's formats; each loader must download to a temporary file,
verify the checksum (a wrong one raises and leaves nothing behind), rename into place, and
load; an unreachable URL with no local copy must say which data set, which URL, and the
`$SHENJING_DATA` fallback."""

import dataclasses
import gzip
import hashlib
import http.server
import io
import json
import pickle
import socket
import struct
import tarfile
import threading
from pathlib import Path

import numpy as np
import pytest

from shenjing import keras
from shenjing.data.datasets import idx as idx_module
from shenjing.keras.datasets import (
    DatasetChecksumError,
    DatasetUnavailableError,
    boston_housing,
    images,
    imdb,
    reuters,
)

RNG = np.random.default_rng(3)


def _npz(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _objects(seqs) -> np.ndarray:
    out = np.empty(len(seqs), dtype=object)
    out[:] = seqs
    return out


def _idx_gz(array: np.ndarray) -> bytes:
    magic = 0x800 | array.ndim
    header = struct.pack(">I", magic) + b"".join(struct.pack(">I", n) for n in array.shape)
    return gzip.compress(header + array.astype(np.uint8).tobytes())


def _cifar_tar(train: list, test: tuple) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        batches = [(f"data_batch_{i + 1}", b) for i, b in enumerate(train)]
        for name, (x, y) in batches + [("test_batch", test)]:
            raw = pickle.dumps({b"data": x.reshape(len(x), -1), b"labels": list(map(int, y))},
                               protocol=2)
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))
    return buf.getvalue()


class _Handler(http.server.BaseHTTPRequestHandler):
    files: dict = {}
    watch: dict = {}  # file name -> callable run half-way through sending it
    hits: list = []

    def do_GET(self):  # noqa: N802 (http.server's name)
        name = self.path.lstrip("/")
        self.hits.append(name)
        body = self.files.get(name)
        if body is None:
            self.send_error(404, "no such file")
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        half = len(body) // 2
        self.wfile.write(body[:half])
        self.wfile.flush()
        if name in self.watch:
            self.watch[name]()
        self.wfile.write(body[half:])

    def log_message(self, *args):
        pass


@pytest.fixture()
def server(tmp_path, monkeypatch):
    """A mirror on 127.0.0.1 serving `server.files`; SHENJING_DATA is an empty folder."""
    _Handler.files, _Handler.watch, _Handler.hits = {}, {}, []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    cache = tmp_path / "cache"
    monkeypatch.setenv("SHENJING_DATA", str(cache))
    monkeypatch.setenv("SHENJING_DATASETS_URL", f"http://127.0.0.1:{httpd.server_port}/")
    for var in ("NO_PROXY", "no_proxy"):
        monkeypatch.setenv(var, "127.0.0.1,localhost")
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    spec = idx_module.IDX_SETS["fashion-mnist"]  # no system copy may stand in
    monkeypatch.setitem(idx_module.IDX_SETS, "fashion-mnist",
                        dataclasses.replace(spec, system_dirs=()))
    try:
        yield _Handler, cache
    finally:
        httpd.shutdown()
        httpd.server_close()


def _serve(handler, monkeypatch, module, attr, name, body, key=None, md5=False):
    handler.files[name] = body
    digest = (hashlib.md5(body) if md5 else hashlib.sha256(body)).hexdigest()
    if key is None:
        monkeypatch.setattr(module, attr, digest)
    else:
        monkeypatch.setitem(getattr(module, attr), key, digest)


def _no_temp_files(folder: Path) -> None:
    leftovers = [p.name for p in folder.rglob("*") if p.is_file() and p.name.startswith(".")]
    assert leftovers == []


# ------------------------------------------------------------------ one data set at a time

def test_imdb_download_then_local(server, monkeypatch):
    handler, cache = server
    x = _objects([[1, 2, 3], [4, 5], [6, 7, 8, 9]])
    _serve(handler, monkeypatch, imdb, "NPZ_SHA256", "imdb.npz",
           _npz(x_train=x, y_train=np.array([1, 0, 1]), x_test=x[:2],
                y_test=np.array([0, 1])))
    index = {"the": 1, "movie": 2}
    _serve(handler, monkeypatch, imdb, "WORD_INDEX_MD5", "imdb_word_index.json",
           json.dumps(index).encode(), md5=True)
    seen = {}
    dest = cache / "keras" / "imdb.npz"
    handler.watch["imdb.npz"] = lambda: seen.setdefault("mid", dest.exists())
    (xt, yt), (xs, ys) = keras.datasets.imdb.load_data(num_words=10)
    assert seen == {"mid": False}  # the final name appears only once complete and verified
    order = np.arange(3)
    np.random.RandomState(113).shuffle(order)
    assert [list(s) for s in xt] == [[1] + [w + 3 if w + 3 < 10 else 2 for w in x[i]]
                                     for i in order]
    np.testing.assert_array_equal(yt, np.array([1, 0, 1])[order])
    assert dest.is_file() and keras.datasets.imdb.get_word_index() == index
    _no_temp_files(cache)
    handler.files.clear()  # now served from the local copies
    assert len(keras.datasets.imdb.load_data()[0][0]) == 3
    assert keras.datasets.imdb.get_word_index() == index
    assert handler.hits == ["imdb.npz", "imdb_word_index.json"]


def test_reuters_and_boston_download(server, monkeypatch):
    handler, cache = server
    wires = _objects([[5, 1], [2, 2, 2], [7], [3, 4], [9, 9]])
    _serve(handler, monkeypatch, reuters, "NPZ_SHA256", "reuters.npz",
           _npz(x=wires, y=np.array([0, 3, 1, 3, 2])))
    _serve(handler, monkeypatch, reuters, "WORD_INDEX_MD5", "reuters_word_index.json",
           b'{"said": 1}', md5=True)
    (x, y), (xt, yt) = keras.datasets.reuters.load_data(test_split=0.4)
    assert len(x) == 3 and len(xt) == 2 and sorted([*y, *yt]) == [0, 1, 2, 3, 3]
    assert all(s[0] == 1 for s in [*x, *xt])
    assert keras.datasets.reuters.get_word_index() == {"said": 1}
    table = RNG.standard_normal((10, 13))
    _serve(handler, monkeypatch, boston_housing, "SHA256", "boston_housing.npz",
           _npz(x=table, y=np.arange(10.0)))
    (bx, by), (btx, bty) = keras.datasets.boston_housing.load_data()
    assert bx.shape == (8, 13) and btx.shape == (2, 13)
    order = np.arange(10)
    np.random.RandomState(113).shuffle(order)
    np.testing.assert_array_equal(bx, table[order[:8]])
    np.testing.assert_array_equal(np.concatenate([by, bty]), order.astype(float))
    assert (cache / "keras" / "boston_housing.npz").is_file()
    _no_temp_files(cache)


def test_mnist_fashion_mnist_and_cifar10_download(server, monkeypatch):
    handler, cache = server
    xs = RNG.integers(0, 256, (5, 28, 28), dtype=np.uint8)
    ys = RNG.integers(0, 10, 5).astype(np.uint8)
    _serve(handler, monkeypatch, images, "MNIST_SHA256", "mnist.npz",
           _npz(x_train=xs[:3], y_train=ys[:3], x_test=xs[3:], y_test=ys[3:]))
    (x, y), (xt, yt) = keras.datasets.mnist.load_data()
    np.testing.assert_array_equal(x, xs[:3])
    np.testing.assert_array_equal(yt, ys[3:])
    for prefix, sl in (("train", slice(0, 4)), ("t10k", slice(4, 5))):
        _serve(handler, monkeypatch, images, "FASHION_SHA256",
               f"{prefix}-images-idx3-ubyte.gz", _idx_gz(xs[sl]),
               key=f"{prefix}-images-idx3-ubyte.gz")
        _serve(handler, monkeypatch, images, "FASHION_SHA256",
               f"{prefix}-labels-idx1-ubyte.gz", _idx_gz(ys[sl]),
               key=f"{prefix}-labels-idx1-ubyte.gz")
    (fx, fy), (ftx, fty) = keras.datasets.fashion_mnist.load_data()
    assert fx.dtype == np.uint8 and fx.shape == (4, 28, 28) and fty.shape == (1,)
    np.testing.assert_array_equal(fx, xs[:4])
    np.testing.assert_array_equal(fy, ys[:4])
    assert (cache / "keras" / "fashion-mnist" / "t10k-labels-idx1-ubyte.gz").is_file()
    images_ = [RNG.integers(0, 256, (2, 3, 32, 32), dtype=np.uint8) for _ in range(6)]
    labels = [RNG.integers(0, 10, 2) for _ in range(6)]
    _serve(handler, monkeypatch, images, "CIFAR10_SHA256", "cifar-10-python.tar.gz",
           _cifar_tar(list(zip(images_[:5], labels[:5])), (images_[5], labels[5])))
    (cx, cy), (ctx, cty) = keras.datasets.cifar10.load_data()
    assert cx.shape == (10, 32, 32, 3) and cy.shape == (10, 1) and ctx.shape == (2, 32, 32, 3)
    np.testing.assert_array_equal(cx[:2], images_[0].transpose(0, 2, 3, 1))
    np.testing.assert_array_equal(cty[:, 0], labels[5])
    _no_temp_files(cache)


# ------------------------------------------------------------------ failures

@pytest.mark.parametrize("module,attr,name,load", [
    (imdb, "NPZ_SHA256", "imdb.npz", lambda: keras.datasets.imdb.load_data()),
    (boston_housing, "SHA256", "boston_housing.npz",
     lambda: keras.datasets.boston_housing.load_data()),
    (images, "MNIST_SHA256", "mnist.npz", lambda: keras.datasets.mnist.load_data()),
    (images, "CIFAR10_SHA256", "cifar-10-python.tar.gz",
     lambda: keras.datasets.cifar10.load_data()),
])
def test_wrong_checksum_raises_and_leaves_no_file(server, monkeypatch, module, attr, name,
                                                  load):
    handler, cache = server
    handler.files[name] = b"not the published bytes" * 100
    monkeypatch.setattr(module, attr, hashlib.sha256(b"the published bytes").hexdigest())
    with pytest.raises(DatasetChecksumError, match=f"downloaded from http://127.0.0.1:.*/"
                                                   f"{name} has SHA-256 .* discarded"):
        load()
    assert [p for p in cache.rglob("*") if p.is_file()] == []
    assert handler.hits == [name]


def test_wrong_md5_of_a_word_index_and_fashion_file(server, monkeypatch):
    handler, cache = server
    handler.files["imdb_word_index.json"] = b'{"a": 1}'
    monkeypatch.setattr(imdb, "WORD_INDEX_MD5", hashlib.md5(b"other").hexdigest())
    with pytest.raises(DatasetChecksumError, match="imdb.get_word_index: .* has MD5"):
        keras.datasets.imdb.get_word_index()
    name = "train-labels-idx1-ubyte.gz"
    handler.files[name] = _idx_gz(np.zeros(3, np.uint8))
    monkeypatch.setitem(images.FASHION_SHA256, name, "0" * 64)
    with pytest.raises(DatasetChecksumError, match="fashion_mnist"):
        keras.datasets.fashion_mnist.load_data()
    assert [p for p in cache.rglob("*") if p.is_file()] == []


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("load,what,fname", [
    (lambda: keras.datasets.imdb.load_data(), "imdb", "imdb.npz"),
    (lambda: keras.datasets.reuters.load_data(), "reuters", "reuters.npz"),
    (lambda: keras.datasets.boston_housing.load_data(), "boston_housing",
     "boston_housing.npz"),
    (lambda: keras.datasets.cifar10.load_data(), "cifar10", "cifar-10-python.tar.gz"),
    (lambda: keras.datasets.mnist.load_data(), "mnist", "mnist.npz"),
    (lambda: keras.datasets.fashion_mnist.load_data(), "fashion_mnist",
     "train-labels-idx1-ubyte.gz"),
])
def test_unreachable_url_names_the_set_the_url_and_the_fallback(server, monkeypatch, load,
                                                                 what, fname):
    _, cache = server
    url = f"http://127.0.0.1:{_closed_port()}/mirror"
    monkeypatch.setenv("SHENJING_DATASETS_URL", url)
    with pytest.raises(DatasetUnavailableError) as info:
        load()
    message = str(info.value)
    assert message.startswith(f"{what}: {fname} not found")
    assert f"{url}/{fname}" in message and "$SHENJING_DATA" in message
    assert str(cache / "keras") in message
    assert not cache.exists() or [p for p in cache.rglob("*") if p.is_file()] == []


def test_missing_file_on_the_mirror_is_unavailable_not_a_crash(server):
    handler, _ = server
    with pytest.raises(DatasetUnavailableError, match="404"):
        keras.datasets.boston_housing.load_data()
    assert handler.hits == ["boston_housing.npz"]


def test_local_copy_wins_and_a_bad_one_is_named(server, monkeypatch):
    handler, cache = server
    body = _npz(x=np.ones((5, 13)), y=np.arange(5.0))
    (cache / "keras").mkdir(parents=True)
    (cache / "keras" / "boston_housing.npz").write_bytes(body)
    monkeypatch.setattr(boston_housing, "SHA256", hashlib.sha256(body).hexdigest())
    assert keras.datasets.boston_housing.load_data()[0][0].shape == (4, 13)
    assert handler.hits == []  # nothing downloaded
    monkeypatch.setattr(boston_housing, "SHA256", "1" * 64)
    with pytest.raises(DatasetChecksumError, match="delete it to download a fresh copy"):
        keras.datasets.boston_housing.load_data()


def test_download_false_never_touches_the_network(server):
    handler, _ = server
    with pytest.raises(DatasetUnavailableError, match="download=False"):
        keras.datasets.imdb.load_data(download=False)
    with pytest.raises(DatasetUnavailableError, match="download=False"):
        keras.datasets.mnist.load_data(download=False)
    assert handler.hits == []
