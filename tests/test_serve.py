"""shenjing.serve over real HTTP on 127.0.0.1 (ephemeral ports): predictions, validation of
malformed and hostile requests, batching, metrics, checkpoints."""

from __future__ import annotations

import http.client
import io
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import zlib
from struct import pack

import numpy as np
import pytest

import shenjing as sj
from shenjing.models import get_model
from shenjing.serve import CheckpointError, ServedModel, ServerThread, create_app, load_served_model

pytest.importorskip("flask")
Image = pytest.importorskip("PIL.Image")

logging.getLogger("werkzeug").setLevel(logging.ERROR)
CLASSES = [f"digit-{i}" for i in range(10)]


def _served(**kw) -> ServedModel:
    sj.manual_seed(0)
    return ServedModel(model=get_model("seed000-cnn"), name="seed000-cnn", version="v-test",
                       task="image", input_shape=(1, 28, 28), classes=CLASSES, **kw)


@pytest.fixture(scope="module")
def server():
    with ServerThread(create_app(_served(), max_body_bytes=256 * 1024)) as srv:
        yield srv


def request(srv, method: str, path: str, body: bytes | None = None,
            headers: dict | None = None) -> tuple[int, dict | str]:
    conn = http.client.HTTPConnection(srv.host, srv.port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read().decode("utf-8")
        if resp.getheader("Content-Type", "").startswith("application/json"):
            return resp.status, json.loads(data)
        return resp.status, data
    finally:
        conn.close()


def post_json(srv, obj) -> tuple[int, dict]:
    raw = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
    return request(srv, "POST", "/predict", raw, {"Content-Type": "application/json"})


def _expected(srv, x: np.ndarray) -> np.ndarray:
    return srv.app.extensions["shenjing"]["served"].predict_proba(x.astype(np.float32))


def _png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def _multipart(field: str, filename: str, payload: bytes) -> tuple[bytes, str]:
    boundary = "shenjingboundary42"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; "
            f"filename=\"{filename}\"\r\nContent-Type: image/png\r\n\r\n").encode() + payload + \
        f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def test_health_names_the_model(server):
    status, body = request(server, "GET", "/health")
    assert status == 200 and body["status"] == "ok"
    assert body["model"] == "seed000-cnn" and body["version"] == "v-test"
    assert body["input_shape"] == [1, 28, 28]


def test_predict_json_single_and_batch_match_the_model(server):
    x = np.random.default_rng(0).random((3, 1, 28, 28)).astype(np.float32)
    expected = _expected(server, x)
    status, body = post_json(server, x[0].tolist())
    assert status == 200 and len(body["predictions"]) == 1
    pred = body["predictions"][0]
    assert pred["index"] == int(expected[0].argmax()) and pred["label"] == CLASSES[pred["index"]]
    assert pred["top"][0]["probability"] == pytest.approx(expected[0].max(), abs=1e-6)
    status, body = post_json(server, {"inputs": x.tolist()})
    assert status == 200
    assert [p["index"] for p in body["predictions"]] == list(expected.argmax(1))
    top = body["predictions"][2]["top"]
    assert len(top) == 5 and [t["probability"] for t in top] == sorted(
        [t["probability"] for t in top], reverse=True)


def test_predict_image_upload_and_raw_image(server):
    pixels = (np.random.default_rng(1).random((28, 28)) * 255).astype(np.uint8)
    expected = _expected(server, pixels[None, None] / np.float32(255))[0]
    body, ctype = _multipart("image", "digit.png", _png(pixels))
    status, out = request(server, "POST", "/predict", body, {"Content-Type": ctype})
    assert status == 200, out
    assert out["predictions"][0]["top"][0]["probability"] == pytest.approx(expected.max(),
                                                                            abs=1e-6)
    # an RGB image of another size is converted and resized as training images are
    rgb = np.stack([pixels] * 3, axis=-1)
    big = np.asarray(Image.fromarray(rgb).resize((56, 56)))
    status, out = request(server, "POST", "/predict", _png(big), {"Content-Type": "image/png"})
    assert status == 200 and out["predictions"][0]["label"] in CLASSES


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims a huge image (a decompression bomb's first bytes)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return pack(">I", len(data)) + kind + data + pack(">I", zlib.crc32(kind + data))
    ihdr = pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))


HOSTILE = [
    ("malformed JSON", b"[[1, 2", "application/json", 400, "malformed JSON"),
    ("NaN literal", b"[NaN]", "application/json", 400, "malformed JSON"),
    ("deep nesting", b"[" * 100_000 + b"]" * 100_000, "application/json", 400, "JSON"),
    ("not UTF-8", b"\xff\xfe\xfa[1]", "application/json", 400, "malformed JSON"),
    ("wrong shape", json.dumps(np.zeros((28, 28)).tolist()).encode(), "application/json", 422,
     "expected an input of shape (1, 28, 28)"),
    ("strings", json.dumps([["a"] * 28] * 28).encode(), "application/json", 422, "strings"),
    ("booleans", json.dumps([[[True] * 28] * 28]).encode(), "application/json", 422,
     "booleans"),
    ("ragged", b"[[[1, 2], [3]]]", "application/json", 422, "ragged"),
    ("infinity", json.dumps([[[1e999] * 28] * 28]).replace("Infinity", "1e999").encode(),
     "application/json", 422, "non-finite"),
    ("huge int", json.dumps([[[10 ** 400]]]).encode(), "application/json", 422, "numbers"),
    ("a path instead of data", b'{"checkpoint": "/etc/passwd"}', "application/json", 422,
     "keys"),
    ("a scalar", b"3", "application/json", 422, "JSON array"),
    ("no examples", b"[]", "application/json", 422, "shape"),
    ("text to an image model", b'{"text": "hello"}', "application/json", 422, "not text"),
    ("plain text to an image model", b"hello", "text/plain", 422, "not text"),
    ("garbage image", b"\x89PNG\r\n\x1a\nnot really", "image/png", 400, "not a readable image"),
    ("truncated image", None, "image/png", 400, "not a readable image"),
    ("large image", _png_header_only(6_000, 6_000), "image/png", 413, "pixels"),
    ("decompression bomb", _png_header_only(60_000, 60_000), "image/png", 413, "too large"),
    ("unsupported type", b"<xml/>", "application/xml", 415, "Content-Type"),
    ("oversized body", b"[" + b"0," * 200_000 + b"0]", "application/json", 413, ""),
]


@pytest.mark.parametrize("name,body,ctype,status,reason", HOSTILE, ids=[h[0] for h in HOSTILE])
def test_bad_requests_get_a_4xx_with_a_reason(server, name, body, ctype, status, reason):
    if body is None:
        body = _png((np.arange(28 * 28) % 256).astype(np.uint8).reshape(28, 28))[:60]
    got, out = request(server, "POST", "/predict", body, {"Content-Type": ctype})
    assert got == status, out
    assert isinstance(out, dict) and out["status"] == status and reason in out["error"]


def test_other_hostile_requests_and_the_server_survives(server):
    assert request(server, "GET", "/predict")[0] == 405
    assert request(server, "GET", "/../../etc/passwd")[0] == 404
    body, ctype = _multipart("other", "x.png", b"\x00")
    status, out = request(server, "POST", "/predict", body, {"Content-Type": ctype})
    assert status == 422 and "form field 'image'" in out["error"]
    too_many = np.zeros((257, 1, 1, 1)).tolist()
    with ServerThread(create_app(ServedModel(model=get_model("mlp", sizes=(1, 2)),
                                             name="tiny", version="1", task="image",
                                             input_shape=(1, 1, 1), classes=["a", "b"]))) as s:
        status, out = post_json(s, too_many)
        assert status == 413 and "at most 256" in out["error"]
    # raw, broken HTTP on a socket: a lying Content-Length, then garbage
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        sock.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 100\r\n\r\n[1, 2")
        sock.shutdown(socket.SHUT_WR)
        reply = sock.recv(4096)
        assert reply == b"" or reply.startswith(b"HTTP/1.1 4")
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        sock.sendall(b"\x16\x03\x01 not http at all\r\n\r\n")
        assert b"400" in sock.recv(4096)
    status, body = request(server, "GET", "/health")
    assert status == 200 and body["status"] == "ok"


def test_a_stalled_client_is_dropped_and_others_are_served():
    app = create_app(_served())
    with ServerThread(app, request_timeout=0.5) as srv:
        with socket.create_connection((srv.host, srv.port), timeout=10) as sock:
            sock.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\n")  # ... and nothing more
            assert request(srv, "GET", "/health")[0] == 200
            assert sock.recv(4096) == b""  # closed by the server (else: socket.timeout)


def _scrape(srv) -> dict[str, float]:
    status, text = request(srv, "GET", "/metrics")
    assert status == 200
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, value = line.rsplit(" ", 1)
            samples[key] = float(value)
    return samples


def test_metrics_count_requests_latency_classes_and_version():
    served = _served()
    with ServerThread(create_app(served)) as srv:
        x = np.random.default_rng(2).random((4, 1, 28, 28)).astype(np.float32)
        for _ in range(3):
            assert post_json(srv, x.tolist())[0] == 200
        assert post_json(srv, b"oops")[0] == 400
        assert request(srv, "GET", "/health")[0] == 200
        request(srv, "GET", "/nope/" + "x" * 50)
        m = _scrape(srv)
    assert m['shenjing_model_info{model="seed000-cnn",version="v-test"}'] == 1
    assert m['shenjing_requests_total{endpoint="predict",method="POST",status="200"}'] == 3
    assert m['shenjing_requests_total{endpoint="predict",method="POST",status="400"}'] == 1
    assert m['shenjing_requests_total{endpoint="health",method="GET",status="200"}'] == 1
    assert m['shenjing_requests_total{endpoint="other",method="-",status="404"}'] == 1
    assert m['shenjing_request_duration_seconds_count{endpoint="predict"}'] == 4
    assert m['shenjing_request_duration_seconds_bucket{endpoint="predict",le="+Inf"}'] == 4
    assert m['shenjing_request_duration_seconds_sum{endpoint="predict"}'] > 0
    predicted = served.predict_proba(x).argmax(1)
    for c, label in enumerate(CLASSES):
        assert m[f'shenjing_predictions_total{{label="{label}"}}'] == 3 * np.sum(predicted == c)
    assert m["shenjing_batch_size_count"] == 3 and m["shenjing_batch_size_sum"] == 12


def test_metrics_parse_with_prometheus_client(server):
    parser = pytest.importorskip("prometheus_client.parser")
    post_json(server, np.zeros((1, 28, 28)).tolist())
    families = {f.name: f for f in parser.text_string_to_metric_families(
        request(server, "GET", "/metrics")[1])}
    assert families["shenjing_request_duration_seconds"].type == "histogram"
    assert families["shenjing_requests"].type == "counter"


def _hammer(srv, n_clients: int, per_client: int, x: np.ndarray) -> list:
    results, errors = [], []

    def client(i):
        try:
            for _ in range(per_client):
                status, body = post_json(srv, x[i % len(x)].tolist())
                results.append((i % len(x), status, body["predictions"][0]["index"]))
        except Exception as err:  # noqa: BLE001 - reported below
            errors.append(err)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(n_clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    return results


@pytest.mark.parametrize("batching", [True, False])
def test_concurrent_requests_are_batched_and_answered_correctly(batching):
    served = _served()
    x = np.random.default_rng(3).random((6, 1, 28, 28)).astype(np.float32)
    expected = served.predict_proba(x).argmax(1)
    app = create_app(served, batching=batching, max_batch_size=8, max_wait_ms=30)
    with ServerThread(app) as srv:
        results = _hammer(srv, 12, 3, x)
        m = _scrape(srv)
    assert len(results) == 36 and all(s == 200 for _, s, _ in results)
    assert all(pred == expected[i] for i, _, pred in results)
    calls = m["shenjing_batch_size_count"]
    assert m["shenjing_batch_size_sum"] == 36
    if batching:
        assert calls < 36 and m['shenjing_batch_size_bucket{le="8"}'] == calls  # <= 8 each
    else:
        assert calls == 36 and m['shenjing_batch_size_bucket{le="1"}'] == 36


class _Spy(sj.nn.Module):
    """Wraps a model and records whether grad mode was on when it ran."""

    def __init__(self, inner) -> None:
        super().__init__()
        self.inner = inner
        self.seen: list[tuple[bool, bool]] = []

    def forward(self, x):
        out = self.inner(x)
        self.seen.append((sj.is_grad_enabled(), out.requires_grad))
        return out


def test_predictions_never_build_a_graph():
    spy = _Spy(get_model("seed000-cnn"))
    served = ServedModel(model=spy, name="spy", version="1", task="image",
                         input_shape=(1, 28, 28), classes=CLASSES)
    with ServerThread(create_app(served)) as srv:
        assert post_json(srv, np.zeros((2, 1, 28, 28)).tolist())[0] == 200
    assert spy.seen == [(False, False)]
    assert not spy.inner.training
    assert all(p.grad is None for p in spy.parameters())
    assert sj.is_grad_enabled()


class _Flaky(sj.nn.Module):
    """Fails on inputs whose first value is 7 (a model bug), works otherwise."""

    def __init__(self) -> None:
        super().__init__()
        self.inner = sj.nn.Linear(4, 2)

    def forward(self, x):
        if float(x.numpy().reshape(len(x), -1)[:, 0].max()) == 7:
            raise RuntimeError("model bug")
        return self.inner(x.reshape(len(x), -1))


def test_a_failing_model_gives_500_and_the_server_goes_on():
    served = ServedModel(model=_Flaky(), name="flaky", version="1", task="image",
                         input_shape=(1, 2, 2), classes=["a", "b"])
    with ServerThread(create_app(served)) as srv:
        status, out = post_json(srv, [[[7, 0], [0, 0]]])
        assert status == 500 and "RuntimeError" in out["error"] and "model bug" not in out["error"]
        assert post_json(srv, [[[1, 0], [0, 0]]])[0] == 200
        m = _scrape(srv)
    assert m['shenjing_requests_total{endpoint="predict",method="POST",status="500"}'] == 1


def _text_served(tmp_path):
    itos = ["<unk>", "<pad>", "a", "good", "bad", "film", "very"]
    sj.manual_seed(1)
    model = get_model("textcnn", vocab_size=len(itos), embed_dim=8, n_filters=4,
                      filter_sizes=(2, 3), output_dim=2)
    config = {"format": "shenjing-cli-model/1",
              "config": {"model": "textcnn", "task": "text",
                         "kwargs": {"vocab_size": len(itos), "embed_dim": 8, "n_filters": 4,
                                    "filter_sizes": [2, 3], "output_dim": 2},
                         "classes": ["neg", "pos"], "meta": {"itos": itos, "max_len": 6}},
              "model": {k: v.numpy() for k, v in model.state_dict().items()}}
    sj.save(config, tmp_path / "model.safetensors")
    return load_served_model(tmp_path), model


def test_text_model_takes_text_and_token_ids(tmp_path):
    served, model = _text_served(tmp_path)
    assert served.input_shape == (6,) and served.classes == ["neg", "pos"]
    ids = served.encode_texts(["a very good film"])
    np.testing.assert_array_equal(ids, [[2, 6, 3, 5, 1, 1]])
    model.eval()
    with sj.no_grad():
        logits = model(sj.from_numpy(ids)).numpy()
    with ServerThread(create_app(served)) as srv:
        status, out = request(srv, "POST", "/predict", b"a very good film",
                              {"Content-Type": "text/plain; charset=utf-8"})
        assert status == 200 and out["predictions"][0]["index"] == int(logits.argmax())
        status, out = post_json(srv, {"text": ["bad", "good film"]})
        assert status == 200 and len(out["predictions"]) == 2
        assert post_json(srv, ids.tolist())[0] == 200
        status, out = post_json(srv, [[0, 1, 2, 3, 4, 99]])
        assert status == 422 and "[0, 7)" in out["error"]
        assert post_json(srv, [[0.5, 1, 2, 3, 4, 5]])[0] == 422
        assert request(srv, "POST", "/predict", b"\xff\xfe",
                       {"Content-Type": "text/plain"})[0] == 400
        assert post_json(srv, {"text": [1, 2]})[0] == 422
        status, out = request(srv, "POST", "/predict", _png(np.zeros((6, 6), np.uint8)),
                              {"Content-Type": "image/png"})
        assert status == 415


def test_checkpoints_plain_weights_with_json_and_errors(tmp_path):
    sj.manual_seed(2)
    model = get_model("seed003-cnn")
    sj.save(model.state_dict(), tmp_path / "w.safetensors")
    with pytest.raises(CheckpointError, match="JSON file beside"):
        load_served_model(tmp_path / "w.safetensors")
    (tmp_path / "w.json").write_text(json.dumps(
        {"model": "seed003-cnn", "classes": CLASSES, "input_shape": [1, 28, 28]}))
    served = load_served_model(tmp_path / "w.safetensors")
    assert re.fullmatch(r"[0-9a-f]{12}", served.version)
    x = np.random.default_rng(4).random((2, 1, 28, 28)).astype(np.float32)
    model.eval()
    with sj.no_grad():
        z = model(sj.from_numpy(x)).numpy().astype(np.float64)
    p = np.exp(z - z.max(1, keepdims=True))
    np.testing.assert_allclose(served.predict_proba(x), p / p.sum(1, keepdims=True), atol=1e-6)
    (tmp_path / "w.json").write_text(json.dumps(
        {"model": "seed000-cnn", "classes": CLASSES, "input_shape": [1, 28, 28]}))
    with pytest.raises(CheckpointError, match="do not fit"):
        load_served_model(tmp_path / "w.safetensors")
    (tmp_path / "w.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="JSON"):
        load_served_model(tmp_path / "w.safetensors")
    with pytest.raises(CheckpointError, match="no such file"):
        load_served_model(tmp_path / "missing")
    (tmp_path / "junk.safetensors").write_bytes(b"\x00" * 20)
    with pytest.raises(CheckpointError, match="readable"):
        load_served_model(tmp_path / "junk.safetensors")


def test_serve_command_runs_a_server_on_loopback(tmp_path):
    sj.manual_seed(0)
    model = get_model("seed000-cnn")
    sj.save({"format": "shenjing-cli-model/1",
             "config": {"model": "seed000-cnn", "kwargs": {}, "task": "image",
                        "classes": CLASSES, "meta": {"channels": 1, "size": 28}},
             "model": {k: v.numpy() for k, v in model.state_dict().items()}},
            tmp_path / "model.safetensors")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}
    child = subprocess.Popen([sys.executable, "-m", "shenjing", "serve", str(tmp_path),
                              "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, env=env)
    try:
        line = child.stdout.readline()
        match = re.search(r"http://127\.0\.0\.1:(\d+)", line)
        assert match, (line, child.stderr.read() if child.poll() is not None else "")

        class Target:
            host, port = "127.0.0.1", int(match.group(1))

        status, body = request(Target, "GET", "/health")
        assert status == 200 and body["model"] == "seed000-cnn"
        assert post_json(Target, np.zeros((1, 28, 28)).tolist())[0] == 200
    finally:
        child.send_signal(signal.SIGINT)
        child.wait(timeout=20)
    assert child.returncode == 0
    bad = subprocess.run([sys.executable, "-m", "shenjing", "serve", str(tmp_path / "nope")],
                         capture_output=True, text=True, env=env, timeout=60)
    assert bad.returncode != 0 and "no such file" in bad.stderr
