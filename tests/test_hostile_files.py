"""Hostile or broken files: each reader raises its format's ValueError naming the file, and
nothing else happens (no big allocation, no file read from outside, nothing deleted).

Where the reference implementation documents the same case, the test runs it too: the official
safetensors reader, PyTorch's `load_state_dict` and `torch.load(weights_only=True)`, Pillow's
decompression-bomb guard, Python's tarfile.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import struct
import subprocess
import sys
import tarfile
import tracemalloc
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest

import shenjing as sj
from shenjing.data._files import ArchiveError, gunzip_bounded, safe_extract_tar
from shenjing.data.datasets import IMDB, ImageFolder, read_idx
from shenjing.io import limits
from shenjing.io.atomic import atomic_write, remove_stale_temps, temp_prefix
from shenjing.io.errors import (
    CheckpointError,
    FileFormatError,
    H5FileError,
    IdxFileError,
    ImageFileError,
    KerasFileError,
    SafetensorsError,
)
from shenjing.io.safetensors import load_file

MiB = 1 << 20


def safetensors_bytes(header: object, data: bytes = b"") -> bytes:
    raw = json.dumps(header).encode() if not isinstance(header, bytes) else header
    return struct.pack("<Q", len(raw)) + raw + data


def peak_bytes(fn, *args, **kwargs) -> int:
    """Peak memory traced while `fn` runs (it is expected to raise FileFormatError)."""
    tracemalloc.start()
    try:
        with pytest.raises(FileFormatError):
            fn(*args, **kwargs)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_every_format_error_is_a_value_error_naming_its_file():
    for cls in (SafetensorsError, CheckpointError, KerasFileError, H5FileError, IdxFileError,
                ArchiveError, ImageFileError):
        assert issubclass(cls, ValueError)
    assert issubclass(ImageFileError, OSError)  # what Pillow/torchvision raise for bad images
    assert str(ImageFileError("x.png is bad", "x.png")) == "x.png is bad"


# ----------------------------------------------------------------------------- safetensors

BAD_HEADERS = {
    "dtype-list": {"w": {"dtype": [], "shape": [1], "data_offsets": [0, 4]}},
    "negative-dim": {"w": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}},
    "70-dims": {"w": {"dtype": "F32", "shape": [1] * 70, "data_offsets": [0, 4]}},
    "string-for-dict": {"w": "F32"},
    "shape-string": {"w": {"dtype": "F32", "shape": "1", "data_offsets": [0, 4]}},
    "huge-shape": {"w": {"dtype": "F32", "shape": [1 << 20, 1 << 20], "data_offsets": [0, 4]}},
    "offsets-past-end": {"w": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}},
    "metadata-not-str": {"__metadata__": {"a": 1}},
    "not-an-object": [1, 2],
}


@pytest.mark.parametrize("case", sorted(BAD_HEADERS))
def test_safetensors_malformed_headers(tmp_path, case):
    path = tmp_path / f"{case}.safetensors"
    path.write_bytes(safetensors_bytes(BAD_HEADERS[case], bytes(4)))
    with pytest.raises(SafetensorsError, match=str(path)):
        load_file(path)
    # The official reader refuses the same file (70 dims aside: it accepts any rank).
    official = pytest.importorskip("safetensors.numpy")
    if case != "70-dims":
        with pytest.raises(Exception):  # noqa: B017 - its SafetensorError is not exported
            official.load_file(str(path))


def test_safetensors_deep_nesting_and_bad_utf8(tmp_path):
    deep = tmp_path / "deep.safetensors"
    deep.write_bytes(safetensors_bytes(b"[" * 100_000 + b"]" * 100_000))
    with pytest.raises(SafetensorsError, match="deep.safetensors"):
        load_file(deep)
    bad = tmp_path / "utf8.safetensors"
    bad.write_bytes(safetensors_bytes(b'{"\xff": 1}      '))
    with pytest.raises(SafetensorsError, match="not valid UTF-8"):
        load_file(bad)


def test_safetensors_declared_size_checked_before_allocating(tmp_path):
    path = tmp_path / "big.safetensors"  # 1 GiB declared, 4 bytes present
    header = {"w": {"dtype": "F32", "shape": [1 << 28], "data_offsets": [0, 1 << 30]}}
    path.write_bytes(safetensors_bytes(header, bytes(4)))
    assert peak_bytes(load_file, path) < MiB
    length = tmp_path / "length.safetensors"  # header length field of 2**63
    length.write_bytes(struct.pack("<Q", 1 << 63) + b"{}")
    assert peak_bytes(load_file, length) < MiB


# ----------------------------------------------------------------------------- sj.load


@pytest.mark.parametrize("root, message", [
    ({"__tensor__": 5}, "refers to tensor 5"),
    ({"__dict__": "x"}, "list of \\[key, value\\] pairs"),
    ({"__dict__": [[["a"], 1]]}, "dict key"),
    ({"__tuple__": {"a": 1}}, "expected a list"),
    ({"__float__": "1e400x"}, "expected 'nan'"),
    ({"__scalar__": "w"}, "expected \\(\\)"),
])
def test_sj_load_tampered_structure(tmp_path, root, message):
    path = tmp_path / "ckpt.safetensors"
    structure = json.dumps({"version": 1, "root": root})
    sj.io.save_file({"w": np.zeros(2, np.float32)}, path, {"shenjing.structure": structure})
    with pytest.raises(CheckpointError, match=f"ckpt.safetensors.*{message}"):
        sj.load(path)


def test_sj_load_deep_structure_and_bad_version(tmp_path):
    path = tmp_path / "deep.safetensors"
    deep = "[" * 5000 + "]" * 5000
    sj.io.save_file({}, path, {"shenjing.structure": f'{{"version": 1, "root": {deep}}}'})
    with pytest.raises(CheckpointError, match="deep.safetensors.*nests deeper"):
        sj.load(path)
    sj.io.save_file({}, path, {"shenjing.structure": '{"version": [], "root": 1}'})
    with pytest.raises(CheckpointError, match="version \\[\\] is not supported"):
        sj.load(path)


def test_sj_load_refuses_pickles_like_weights_only(tmp_path):
    torch = pytest.importorskip("torch")

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    path = tmp_path / "evil.pt"
    torch.save({"w": torch.zeros(2), "evil": Evil()}, path)
    with pytest.raises(Exception, match="Weights only load failed"):
        torch.load(path, weights_only=True)  # PyTorch's safe loader refuses it too
    with pytest.raises(SafetensorsError, match="evil.pt.*never unpickles"):
        sj.load(path)


def test_load_state_dict_names_the_key_of_a_bad_value():
    torch = pytest.importorskip("torch")
    with pytest.raises(RuntimeError, match='parameter named "weight"'):
        torch.nn.Linear(2, 3).load_state_dict({"weight": "hello", "bias": torch.zeros(3)})
    layer = sj.nn.Linear(2, 3)
    for bad in ("hello", {"a": 1}, [[1.0, 2.0], [3.0]]):
        with pytest.raises(TypeError, match="'weight'"):
            layer.load_state_dict({"weight": bad, "bias": np.zeros(3, np.float32)})


# ----------------------------------------------------------------------------- .keras / .h5


@pytest.fixture(scope="module")
def small_model():
    from shenjing import keras

    model = keras.Sequential([keras.layers.Dense(4, activation="relu", input_shape=(3,)),
                              keras.layers.Dense(2)])
    model.compile(optimizer="adam", loss="mse")
    return model


def keras_file(tmp_path: Path, model, mutate=None, name="m.keras") -> Path:
    """`model` saved as .keras, its members optionally rewritten by mutate(dict) first."""
    path = tmp_path / name
    model.save(path)
    if mutate is not None:
        with zipfile.ZipFile(path) as zf:
            members = {n: zf.read(n) for n in zf.namelist()}
        mutate(members)
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
            for n, data in members.items():
                zf.writestr(n, data)
    return path


def with_config(change):
    def mutate(members):
        config = json.loads(members["config.json"])
        change(config)
        members["config.json"] = json.dumps(config).encode()
    return mutate


def load(path):
    from shenjing import keras

    return keras.models.load_model(path)


def test_keras_dense_units_2e9_refused_before_allocating(tmp_path, small_model):
    def huge(config):
        config["config"]["layers"][-1]["config"]["units"] = 2e9

    path = keras_file(tmp_path, small_model, with_config(huge))
    tracemalloc.start()
    try:
        with pytest.raises(KerasFileError, match=f"{path}.*'units' = 2000000000.0 is out of "
                                                 "range"):
            load(path)
        assert tracemalloc.get_traced_memory()[1] < 16 * MiB
    finally:
        tracemalloc.stop()


def test_keras_config_wanting_more_weights_than_the_file_holds(tmp_path, small_model):
    def wide(config):  # within the per-size cap, but 2 million weights for a 1 kB file
        config["config"]["layers"][-1]["config"]["units"] = 2_000_000

    path = keras_file(tmp_path, small_model, with_config(wide))
    assert peak_bytes(load, path) < 16 * MiB
    with pytest.raises(KerasFileError, match="asks for at least 2000004 weight elements but "
                                             "the file holds only 26"):
        load(path)


@pytest.mark.parametrize("change, message", [
    (lambda c: c.update(config=[]), "cannot be rebuilt|without weights"),
    (lambda c: c["config"].update(layers="abc"), "cannot be rebuilt"),
    (lambda c: c.update(class_name=[]), "cannot be rebuilt"),
    (lambda c: c["config"]["layers"][0].update(config="Dense"), "cannot be rebuilt"),
    (lambda c: c["config"]["layers"][0]["config"].update(units=[1] * 70), "70 dimensions|out "
     "of range|cannot be rebuilt"),
    (lambda c: c["config"]["layers"][0]["config"].update(units=-5), "out of range"),
    (lambda c: c["config"]["layers"][0]["config"].update(batch_input_shape=[None, 1 << 30]),
     "out of range"),
    (lambda c: c["config"]["layers"][0]["config"].update(dtype=[]), "cannot be rebuilt"),
    (lambda c: c.update(compile_config={"loss": 5, "metrics": 3}), "compile configuration"),
    (lambda c: c.update(compile_config="adam"), "compile configuration"),
], ids=["config-list", "layers-str", "class-list", "layer-config-str", "units-70", "negative",
        "input-too-big", "dtype-list", "compile-types", "compile-str"])
def test_keras_malformed_configs(tmp_path, small_model, change, message):
    path = keras_file(tmp_path, small_model, with_config(change))
    with pytest.raises(KerasFileError, match=f"{path}.*({message})"):
        load(path)


def test_keras_deep_and_oversized_config(tmp_path, small_model, monkeypatch):
    deep = keras_file(tmp_path, small_model, lambda m: m.update(
        {"config.json": b'{"class_name": "Sequential", "config": ' + b"[" * 50_000
         + b"]" * 50_000 + b"}"}), name="deep.keras")
    with pytest.raises(KerasFileError, match="deep.keras.*nests deeper"):
        load(deep)
    path = keras_file(tmp_path, small_model)
    monkeypatch.setattr(limits, "MAX_CONFIG_BYTES", 100)
    with pytest.raises(KerasFileError, match="member 'config.json' declares .* bytes, more than "
                                             "the limit of 100"):
        load(path)


def test_keras_zip_bomb_member_refused_before_decompressing(tmp_path, small_model):
    def bomb(members):
        members["model.weights.safetensors"] = bytes(64 * MiB)  # deflates ~1000:1

    path = keras_file(tmp_path, small_model, bomb)
    assert path.stat().st_size < MiB
    assert peak_bytes(load, path) < 4 * MiB
    with pytest.raises(KerasFileError, match="would expand .* times .* a zip bomb"):
        load(path)


def test_keras_corrupt_inner_member_names_the_outer_file(tmp_path, small_model):
    def truncate(members):
        members["model.weights.safetensors"] = members["model.weights.safetensors"][:-3]

    path = keras_file(tmp_path, small_model, truncate)
    with pytest.raises(KerasFileError) as info:
        load(path)
    assert str(path) in str(info.value) and "model.weights.safetensors" in str(info.value)
    assert "safetensors bytes" not in str(info.value)
    damaged = tmp_path / "damaged.keras"
    damaged.write_bytes(keras_file(tmp_path, small_model).read_bytes()[:300])
    with pytest.raises(KerasFileError, match="damaged.keras"):
        load(damaged)


def h5_model(tmp_path: Path, model, name="m.h5") -> Path:
    pytest.importorskip("h5py")
    path = tmp_path / name
    model.save(path)
    return path


def test_h5_external_link_and_external_storage_never_read(tmp_path, small_model):
    h5py = pytest.importorskip("h5py")
    secret = tmp_path / "secret.bin"
    secret.write_bytes(np.full(12, 7.0, np.float32).tobytes())
    path = h5_model(tmp_path, small_model)
    with h5py.File(path, "a") as f:
        group = f["model_weights"]
        del group["dense/kernel"]
        group["dense/kernel"] = h5py.ExternalLink(str(tmp_path / "other.h5"), "/data")
    with pytest.raises(H5FileError, match="m.h5.*external link to .*other.h5"):
        load(path)
    path = h5_model(tmp_path, small_model, "ext.h5")
    with h5py.File(path, "a") as f:
        del f["model_weights/dense/kernel"]
        f["model_weights/dense"].create_dataset("kernel", (3, 4), "<f4",
                                                external=[(str(secret), 0, 48)])
    assert np.all(h5py.File(path, "r")["model_weights/dense/kernel"][()] == 7.0)  # h5py reads it
    with pytest.raises(H5FileError, match="ext.h5.*external files .*secret.bin"):
        load(path)


def test_h5_soft_links_leaving_the_file_and_virtual_datasets(tmp_path, small_model):
    h5py = pytest.importorskip("h5py")
    path = h5_model(tmp_path, small_model)
    with h5py.File(path, "a") as f:
        del f["model_weights/dense/kernel"]
        f["model_weights/dense/kernel"] = h5py.SoftLink("/nowhere/data")
    with pytest.raises(H5FileError, match="soft link to '/nowhere/data'"):
        load(path)
    other = tmp_path / "src.h5"
    with h5py.File(other, "w") as f:
        f["data"] = np.ones((3, 4), np.float32)
    path = h5_model(tmp_path, small_model, "virtual.h5")
    with h5py.File(path, "a") as f:
        del f["model_weights/dense/kernel"]
        layout = h5py.VirtualLayout((3, 4), "<f4")
        layout[:] = h5py.VirtualSource(str(other), "data", (3, 4))
        f["model_weights/dense"].create_virtual_dataset("kernel", layout)
    with pytest.raises(H5FileError, match="virtual dataset"):
        load(path)


def test_h5_shapes_checked_against_the_model_before_any_data_is_read(tmp_path, small_model,
                                                                      monkeypatch):
    h5py = pytest.importorskip("h5py")
    path = h5_model(tmp_path, small_model)
    with h5py.File(path, "a") as f:
        del f["model_weights/dense_1/bias"]
        f["model_weights/dense_1"].create_dataset("bias", data=np.zeros(5, np.float32))
    reads = []
    original = h5py.Dataset.__getitem__
    monkeypatch.setattr(h5py.Dataset, "__getitem__",
                        lambda self, key: reads.append(self.name) or original(self, key))
    with pytest.raises(H5FileError, match=r"weight 'dense_1/bias' has shape \(5,\) in the file "
                                          r"but \(2,\) in the model"):
        load(path)
    assert reads == []


def test_h5_declared_dataset_without_storage_and_bad_attributes(tmp_path, small_model):
    h5py = pytest.importorskip("h5py")
    path = h5_model(tmp_path, small_model)
    with h5py.File(path, "a") as f:  # 4 GiB declared, nothing stored: reading would allocate
        f["model_weights/dense"].create_dataset("huge", (1 << 30,), "<f4")
    assert path.stat().st_size < MiB
    assert peak_bytes(load, path) < 16 * MiB
    with pytest.raises(H5FileError, match="declares 4294967296 bytes but stores only 0"):
        load(path)
    path = h5_model(tmp_path, small_model, "attr.h5")
    with h5py.File(path, "a") as f:
        f.attrs["model_config"] = np.arange(3)
    with pytest.raises(H5FileError, match="attr.h5.*'model_config' must be a JSON string"):
        load(path)


# ----------------------------------------------------------------------------- IDX, gzip


def idx_bytes(dims: list[int], payload: bytes, type_code: int = 8) -> bytes:
    return bytes([0, 0, type_code, len(dims)]) + b"".join(d.to_bytes(4, "big") for d in dims) \
        + payload


@pytest.mark.parametrize("dims, payload, message", [
    ([65536] * 4, b"", "18446744073709551616 elements, more than the limit"),  # 2**64: an
    ([1] * 70, b"\0", "70 dimensions, more than the limit"),  # int64 product would be 0
    ([0xFFFFFFFF, 0xFFFFFFFF], bytes(10), "18446744065119617025 elements"),
    ([0, 1 << 31, 1 << 31], b"", "4611686018427387904 elements"),  # NumPy: "array is too big"
    ([1 << 20, 1 << 10], bytes(10), "truncated: expected 1073741824 bytes .* got 10"),
    ([3], bytes(4), "too long: expected 3 bytes"),
], ids=["product-overflows-int64", "70-dims", "huge", "zero-and-huge", "truncated",
        "too-long"])
def test_idx_dims_checked_without_overflow(tmp_path, dims, payload, message):
    path = tmp_path / "x-idx"
    path.write_bytes(idx_bytes(dims, payload))
    with pytest.raises(IdxFileError, match=f"({message})"):
        read_idx(path)


def test_idx_gzip_stops_past_the_declared_size(tmp_path):
    path = tmp_path / "bomb-idx.gz"  # header: 10 bytes of data; the stream holds 64 MiB
    path.write_bytes(gzip.compress(idx_bytes([10], bytes(64 * MiB)), compresslevel=9))
    assert path.stat().st_size < MiB
    tracemalloc.start()
    try:
        with pytest.raises(IdxFileError, match="bomb-idx.gz.*decompresses past the 18 bytes"):
            read_idx(path)
        assert tracemalloc.get_traced_memory()[1] < 4 * MiB
    finally:
        tracemalloc.stop()


def test_gzip_trailer_promise_bounds_decompression():
    data = gzip.compress(bytes(8 * MiB))
    lying = data[:-4] + (1000).to_bytes(4, "little")  # trailer promises 1000 bytes
    with pytest.raises(ArchiveError, match="decompresses past the 1000 bytes"):
        gunzip_bounded(lying, "archive x.gz")
    with pytest.raises(ArchiveError, match="garbage"):
        gunzip_bounded(gzip.compress(b"abc") + b"junk", "x.gz")
    # Multi-member files are read while their whole output fits the last trailer's promise.
    assert gunzip_bounded(gzip.compress(b"") + gzip.compress(b"abc"), "x.gz") == b"abc"
    with pytest.raises(ArchiveError, match="past the 0 bytes"):
        gunzip_bounded(gzip.compress(b"abc") + gzip.compress(b""), "x.gz")
    with pytest.raises(zlib.error):  # zlib's own reader, for comparison, checks the length too
        zlib.decompress(lying, wbits=31)


# ----------------------------------------------------------------------------- archives


def make_tar(path: Path, files: dict[str, bytes | None]) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            if data is None:
                info.type = tarfile.DIRTYPE
                tf.addfile(info)
            else:
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
    return path


REVIEWS = {"set/train/pos/1.txt": b"good", "set/train/neg/2.txt": b"bad"}


@pytest.mark.parametrize("name", ["..tar.gz", ".tar.gz", "...tar", " .tgz"])
def test_archive_names_reducing_to_dots_are_refused(tmp_path, monkeypatch, name):
    cache = tmp_path / "cache"
    monkeypatch.setenv("SHENJING_DATA", str(cache))
    keep = cache / "imdb" / "mine" / "keep.txt"
    keep.parent.mkdir(parents=True)
    keep.write_text("precious")
    archive = make_tar(tmp_path / name, REVIEWS)
    with pytest.raises(ArchiveError, match="does not make a folder name"):
        IMDB(archive=archive)
    assert keep.read_text() == "precious"
    assert sorted(os.listdir(cache / "imdb")) == ["mine"]


def test_extraction_never_deletes_a_folder_it_did_not_make(tmp_path):
    dest = tmp_path / "out"
    dest.mkdir()
    (dest / "mine.txt").write_text("precious")
    with pytest.raises(ArchiveError, match="not made by shenjing"):
        safe_extract_tar(make_tar(tmp_path / "a.tar.gz", REVIEWS), dest)
    assert (dest / "mine.txt").read_text() == "precious"
    with pytest.raises(ArchiveError, match="does not make a folder name"):
        safe_extract_tar(tmp_path / "a.tar.gz", tmp_path / "..")
    # A folder made by an earlier extraction is replaced, and only it.
    made = safe_extract_tar(tmp_path / "a.tar.gz", tmp_path / "ok", marker={"md5": "1"})
    safe_extract_tar(make_tar(tmp_path / "b.tar.gz", {"x.txt": b"x"}), made, marker={})
    assert sorted(os.listdir(made)) == [".shenjing-extracted.json", "x.txt"]
    assert sorted(os.listdir(tmp_path)) == ["a.tar.gz", "b.tar.gz", "ok", "out"]


def test_extracted_size_is_capped_before_writing(tmp_path, monkeypatch):
    archive = make_tar(tmp_path / "big.tar.gz", {"a.bin": bytes(MiB), "b.bin": bytes(MiB)})
    monkeypatch.setattr(limits, "MAX_FILE_BYTES", MiB + 10)
    with pytest.raises(ArchiveError, match="declare more than 1048586 bytes .*'b.bin'"):
        safe_extract_tar(archive, tmp_path / "out")
    assert sorted(os.listdir(tmp_path)) == ["big.tar.gz"]


def test_file_and_folder_with_the_same_name(tmp_path):
    archive = make_tar(tmp_path / "clash.tar.gz", {"d/a": b"file", "d/a/b": b"inside"})
    with pytest.raises(ArchiveError, match="member 'd/a/b' clashes with another member: a file "
                                           "and a folder"):
        safe_extract_tar(archive, tmp_path / "out")
    archive = make_tar(tmp_path / "clash2.tar.gz", {"d/a/b": b"inside", "d/a": b"file"})
    with pytest.raises(ArchiveError, match="member 'd/a' clashes"):
        safe_extract_tar(archive, tmp_path / "out")
    assert sorted(os.listdir(tmp_path)) == ["clash.tar.gz", "clash2.tar.gz"]


# ----------------------------------------------------------------------------- ImageFolder


def png_bytes(width: int, height: int) -> bytes:
    """A 1x1 PNG whose IHDR is rewritten to declare width x height (CRC fixed)."""
    pil = pytest.importorskip("PIL.Image")
    buffer = io.BytesIO()
    pil.new("L", (1, 1)).save(buffer, "PNG")
    data = bytearray(buffer.getvalue())
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def test_imagefolder_corrupt_image_and_decompression_bomb(tmp_path):
    pil = pytest.importorskip("PIL.Image")
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "ok.png").write_bytes(png_bytes(1, 1))
    (tmp_path / "a" / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    (tmp_path / "a" / "bomb.png").write_bytes(png_bytes(100_000, 100_000))
    (tmp_path / "a" / "big.png").write_bytes(png_bytes(10_000, 10_000))  # Pillow only warns
    with pytest.raises(pil.DecompressionBombError):  # Pillow refuses it too (not an OSError)
        pil.open(tmp_path / "a" / "bomb.png")
    ds = ImageFolder(tmp_path)
    assert [Path(p).name for p, _ in ds.samples] == ["bad.png", "big.png", "bomb.png", "ok.png"]
    with pytest.raises(ImageFileError, match="bad.png"):
        ds[0]
    with pytest.raises(ImageFileError, match="big.png.*10000x10000.*decompression bomb"):
        ds[1]
    with pytest.raises(ImageFileError, match="bomb.png.*decompression bomb"):
        ds[2]
    assert ds[3][0].size == (1, 1)


def test_imagefolder_symlink_loop_followed_once(tmp_path):
    (tmp_path / "a" / "sub").mkdir(parents=True)
    (tmp_path / "a" / "sub" / "x.png").write_bytes(png_bytes(1, 1))
    (tmp_path / "a" / "sub" / "loop").symlink_to("..")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "y.png").write_bytes(png_bytes(1, 1))
    (tmp_path / "b" / "to_a").symlink_to(tmp_path / "a")
    ds = ImageFolder(tmp_path)
    names = sorted(os.path.relpath(p, tmp_path) for p, _ in ds.samples)
    assert names == ["a/sub/x.png", "b/to_a/sub/x.png", "b/y.png"]


# ----------------------------------------------------------------------------- atomic writes


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_next_save_removes_stale_temps_of_dead_writers_only(tmp_path):
    target = tmp_path / "w.safetensors"
    stale = tmp_path / (temp_prefix(target.name).replace(str(os.getpid()), str(dead_pid()))
                        + "abc123.tmp")
    live = tmp_path / (temp_prefix(target.name) + "def456.tmp")  # this process: alive
    other = tmp_path / (temp_prefix("other.bin").replace(str(os.getpid()), str(dead_pid()))
                        + "x.tmp")
    foreign = tmp_path / ".w.safetensors.12345.tmp"  # not our naming: never touched
    for p in (stale, live, other, foreign):
        p.write_bytes(b"partial")
    sj.save({"w": np.ones(2, np.float32)}, target)
    assert not stale.exists() and not other.exists() and live.exists() and foreign.exists()
    np.testing.assert_array_equal(sj.load(target)["w"], np.ones(2))
    stale.write_bytes(b"partial")
    assert remove_stale_temps(tmp_path) == [str(stale)]  # "opening the folder" cleans too


def test_failed_write_leaves_nothing_at_the_final_path(tmp_path):
    target = tmp_path / "x.bin"
    with pytest.raises(RuntimeError), atomic_write(target) as f:
        f.write(b"half")
        raise RuntimeError("crash")
    assert os.listdir(tmp_path) == []


def test_h5_that_crashes_libhdf5_becomes_an_error(tmp_path, small_model):
    path = h5_model(tmp_path, small_model)
    data = bytearray(path.read_bytes())
    data[data.find(b"model_config") + 17] = 22  # the attribute's string type bits: garbage
    path.write_bytes(bytes(data))
    probe = f"import h5py; dict(h5py.File({str(path)!r}, 'r').attrs)"
    crashed = subprocess.run([sys.executable, "-c", probe], capture_output=True)
    assert crashed.returncode == -11  # plain h5py (and so Keras) dies of a segfault here
    with pytest.raises(H5FileError, match="m.h5.*the HDF5 library crashed"):
        load(path)
