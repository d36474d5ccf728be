"""Fuzzing every file parser with hypothesis: safetensors, `sj.load`, `.keras`, Keras model
configs, `.h5`, IDX and the IMDB archive reader.

Inputs are structured mutations of valid files (JSON nodes replaced by wrong types, huge or
negative sizes and deep nesting; zip members and tar members added, removed, renamed, made
into links; HDF5 datasets given other shapes, dtypes, links and external storage) mixed with
byte-level mutations (flips, truncations, insertions, 32/64-bit boundary values). Each input
must either load or raise the parser's own ValueError subclass whose message names the file;
anything else (KeyError, RecursionError, a NumPy message, ...) fails the test.

`SHENJING_FUZZ_EXAMPLES` sets the inputs per parser (default 2000); `benchmarks/fuzz_long.py`
runs 20,000 each and prints the outcome counts kept in `COUNTS`.
"""

from __future__ import annotations

import io
import json
import os
import random
import struct
import tarfile
import tempfile
import warnings
import zipfile
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import shenjing as sj
from shenjing.io import safetensors as st_format
from shenjing.io.errors import (
    ArchiveError,
    H5FileError,
    IdxFileError,
    KerasFileError,
    SafetensorsError,
)

EXAMPLES = int(os.environ.get("SHENJING_FUZZ_EXAMPLES", "2000"))  # inputs per parser
BATCH = 8  # inputs per hypothesis example: one drawn by hypothesis, 7 derived from it
COUNTS: dict[str, Counter] = defaultdict(Counter)  # parser -> outcome -> inputs
FUZZ = settings(max_examples=-(-EXAMPLES // BATCH), deadline=None, database=None,
                derandomize=True, suppress_health_check=list(HealthCheck))


def fuzz(strategy: st.SearchStrategy, check, derive=None) -> None:
    """Check EXAMPLES inputs: each hypothesis example is checked, then BATCH - 1 variants of
    it made by `derive(input, rng)` (default: byte mutations) with a hypothesis-seeded PRNG,
    which costs a fraction of hypothesis's own generation."""
    derive = derive or quick_bytes

    @FUZZ
    @given(strategy, st.randoms(use_true_random=False))
    def each(one, rng: random.Random) -> None:
        check(one)
        for _ in range(BATCH - 1):
            check(derive(one, rng))

    each()


def quick_bytes(data: bytes, rng: random.Random) -> bytes:
    """1-4 random byte edits (set, flip, boundary word, truncate, insert, delete)."""
    data = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op, pos = rng.randrange(6), rng.randrange(max(len(data), 1))
        if op == 0 and data:
            data[pos] = rng.randrange(256)
        elif op == 1 and data:
            data[pos] ^= 1 << rng.randrange(8)
        elif op == 2:
            size = rng.choice([4, 8])
            value = rng.choice(BOUNDARY) % (1 << (8 * size))
            data[pos:pos + size] = value.to_bytes(size, rng.choice(["little", "big"]))
        elif op == 3:
            del data[pos:]
        elif op == 4:
            data[pos:pos] = rng.randbytes(rng.randint(1, 16))
        else:
            del data[pos:pos + rng.randint(1, 64)]
    return bytes(data)


def quick_json(obj, rng: random.Random):
    """A copy of a JSON value with 1-3 nodes replaced by odd values, deleted or wrapped."""
    obj = json.loads(json.dumps(obj))
    for _ in range(rng.randint(1, 3)):
        paths = _nodes(obj)[1:]
        if not paths:
            return fresh(rng.choice(ODD_VALUES))
        path = rng.choice(paths)
        parent = obj
        for key in path[:-1]:
            parent = parent[key]
        op = rng.randrange(4)
        if op < 2:
            parent[path[-1]] = fresh(rng.choice(ODD_VALUES))
        elif op == 2:
            del parent[path[-1]]
        else:
            parent[path[-1]] = [parent[path[-1]]]
    return obj


def run(parser: str, error: type[ValueError], fn, path: Path | None = None) -> None:
    """Call fn; count the outcome; only `error` naming the file may escape as a refusal."""
    try:
        fn()
    except error as e:
        COUNTS[parser][type(e).__name__] += 1
        if path is not None:
            assert path.name in str(e), f"message does not name the file: {e}"
        return
    COUNTS[parser]["loaded"] += 1


# ----------------------------------------------------------------------------- mutations

BOUNDARY = [0, 1, 0x7F, 0x80, 0xFF, 0x7FFF_FFFF, 0xFFFF_FFFF, 1 << 63, (1 << 64) - 1]
ODD_VALUES = [None, True, -1, 0, 2e9, 1 << 62, -(1 << 70), 1.5, float("nan"), "", "F32", "x",
              [], {}, [1] * 70, [-1, 2], [1 << 40, 1 << 40], {"a": 1}, "x" * 300]
# Explicit alphabets: hypothesis's full-Unicode tables take seconds to build on first use.
ALPHABET = st.sampled_from(list("ab_./\\\x00é€\ud7ff 0"))
short_text = st.text(alphabet=ALPHABET, max_size=6)


def fresh(value):
    """A private copy of a JSON value (the odd values are shared constants)."""
    return json.loads(json.dumps(value))


def nested(depth: int) -> list:
    return json.loads("[" * depth + "]" * depth)


odd_json = st.one_of(st.sampled_from(ODD_VALUES), st.integers(-(1 << 65), 1 << 65),
                     short_text, st.lists(st.integers(-2, 1 << 33), max_size=8),
                     st.builds(nested, st.integers(60, 300)))


@st.composite
def byte_mutations(draw, seed: bytes) -> bytes:
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["set", "flip", "word", "truncate", "insert", "delete"]))
        pos = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "set" and data:
            data[pos] = draw(st.integers(0, 255))
        elif op == "flip" and data:
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "word":
            size = draw(st.sampled_from([4, 8]))
            value = draw(st.sampled_from(BOUNDARY)) % (1 << (8 * size))
            data[pos:pos + size] = value.to_bytes(size, draw(st.sampled_from(["little", "big"])))
        elif op == "truncate":
            del data[pos:]
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=16))
        else:
            del data[pos:pos + draw(st.integers(1, 64))]
    return bytes(data)


def _nodes(obj, max_depth: int = 12) -> list[tuple]:
    """Paths to the nodes of a JSON value, breadth first, no deeper than max_depth."""
    paths, pending = [], [((), obj)]
    while pending:
        path, node = pending.pop(0)
        paths.append(path)
        if len(path) >= max_depth:
            continue
        children = node.items() if isinstance(node, dict) else enumerate(node) \
            if isinstance(node, list) else ()
        pending.extend(((*path, key), child) for key, child in children)
    return paths


@st.composite
def json_mutations(draw, seed):
    obj = json.loads(json.dumps(seed))  # a copy (deepcopy recurses on deep values)
    for _ in range(draw(st.integers(1, 3))):
        paths = _nodes(obj)
        path = draw(st.sampled_from(paths[1:] or paths))
        if not path:
            return fresh(draw(odd_json))
        parent = obj
        for key in path[:-1]:
            parent = parent[key]
        op = draw(st.sampled_from(["replace", "replace", "delete", "wrap", "rename"]))
        if op == "replace":
            parent[path[-1]] = fresh(draw(odd_json))
        elif op == "delete":
            del parent[path[-1]]
        elif op == "wrap":
            parent[path[-1]] = [parent[path[-1]]]
        elif isinstance(parent, dict):
            parent[draw(short_text)] = parent.pop(path[-1])
    return obj


# ----------------------------------------------------------------------------- safetensors

ST_TENSORS = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.arange(4),
              "c": np.array([True, False, True]), "d": np.float16(1.5)}
ST_SEED = st_format.save(ST_TENSORS, {"k": "v"})
ST_HEADER = json.loads(ST_SEED[8:8 + struct.unpack("<Q", ST_SEED[:8])[0]])
ST_DATA = ST_SEED[8 + struct.unpack("<Q", ST_SEED[:8])[0]:]


def with_header(header, data: bytes = ST_DATA) -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + data


safetensors_inputs = st.one_of(
    byte_mutations(ST_SEED),
    st.builds(with_header, json_mutations(ST_HEADER)),
    st.builds(with_header, json_mutations(ST_HEADER), byte_mutations(ST_DATA)),
)


def check_safetensors(data: bytes, path: Path) -> None:
    run("safetensors", SafetensorsError, lambda: st_format.load(data))
    path.write_bytes(data)
    run("safetensors", SafetensorsError, lambda: st_format.load_file(path), path)


# ----------------------------------------------------------------------------- sj.load

CKPT = {"model": {"w": np.ones((2, 2), np.float32)}, "epoch": 3, "best": float("nan"),
        "opt": {"state": {0: {"step": 3, "exp_avg": np.zeros(2)}},
                "param_groups": [{"lr": 0.1, "betas": (0.9, 0.99), "params": [0]}]}}
_buffer = io.BytesIO()
sj.save(CKPT, _buffer)
CKPT_SEED = _buffer.getvalue()
CKPT_TENSORS, CKPT_META = st_format.load_with_metadata(CKPT_SEED)
CKPT_STRUCTURE = json.loads(CKPT_META["shenjing.structure"])


def with_structure(structure) -> bytes:
    text = json.dumps(structure)
    return st_format.save(CKPT_TENSORS, {"shenjing.structure": text})


checkpoint_inputs = st.one_of(byte_mutations(CKPT_SEED),
                              st.builds(with_structure, json_mutations(CKPT_STRUCTURE)))


def check_checkpoint(data: bytes, path: Path) -> None:
    path.write_bytes(data)
    run("sj.load", SafetensorsError, lambda: sj.load(path), path)


# ----------------------------------------------------------------------------- .keras


def _keras_model():
    from shenjing import keras

    model = keras.Sequential([keras.layers.Dense(3, activation="relu", input_shape=(2,)),
                              keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    model.fit(np.ones((4, 2), np.float32), np.ones((4, 1), np.float32), epochs=1, verbose=0)
    return model


def _seed_files() -> dict[str, bytes]:
    with tempfile.TemporaryDirectory() as name:
        return _save_seeds(Path(name))


def _save_seeds(folder: Path) -> dict[str, bytes]:
    model = _keras_model()
    model.save(folder / "m.keras")
    seeds = {"keras": (folder / "m.keras").read_bytes()}
    try:
        import h5py  # noqa: F401

        model.save(folder / "m.h5")
        seeds["h5"] = (folder / "m.h5").read_bytes()
    except ImportError:
        pass
    return seeds


SEEDS = _seed_files()
with zipfile.ZipFile(io.BytesIO(SEEDS["keras"])) as _zf:
    KERAS_MEMBERS = {name: _zf.read(name) for name in _zf.namelist()}
KERAS_CONFIG = json.loads(KERAS_MEMBERS["config.json"])


def zip_of(members: list[tuple[str, bytes]], deflate: bool = False) -> bytes:
    buffer = io.BytesIO()
    method = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
    with warnings.catch_warnings(), zipfile.ZipFile(buffer, "w", method) as zf:
        warnings.simplefilter("ignore")  # duplicate names are wanted here
        for name, data in members:
            zf.writestr(name, data)
    return buffer.getvalue()


@st.composite
def keras_members(draw) -> bytes:
    members = list(KERAS_MEMBERS.items())
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(["bytes", "drop", "dup", "rename", "config"]))
        i = draw(st.integers(0, len(members) - 1)) if members else 0
        if not members:
            break
        name, data = members[i]
        if op == "bytes":
            members[i] = (name, draw(byte_mutations(data)))
        elif op == "drop":
            del members[i]
        elif op == "dup":
            members.append((name, draw(byte_mutations(data))))
        elif op == "rename":
            members[i] = (draw(st.sampled_from(["../config.json", "/", "x/" + name])), data)
        else:
            config = draw(json_mutations(KERAS_CONFIG))
            members = [(n, json.dumps(config).encode() if n == "config.json" else d)
                       for n, d in members]
    return zip_of(members, draw(st.booleans()))


keras_inputs = st.one_of(byte_mutations(SEEDS["keras"]), keras_members())


def config_zip(config) -> bytes:
    return zip_of([(n, json.dumps(config).encode() if n == "config.json" else d)
                   for n, d in KERAS_MEMBERS.items()])


config_inputs = json_mutations(KERAS_CONFIG)


def check_keras(data: bytes, path: Path, parser: str = ".keras") -> None:
    from shenjing import keras

    path.write_bytes(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run(parser, KerasFileError, lambda: keras.models.load_model(path), path)


# ----------------------------------------------------------------------------- .h5


@st.composite
def h5_files(draw) -> bytes:
    """The seed .h5 changed through h5py (libhdf5 writes it, so it stays parseable)."""
    import h5py

    buffer = io.BytesIO(SEEDS["h5"])
    with h5py.File(buffer, "r+") as f:
        datasets = []
        f.visititems(lambda n, o: datasets.append(n) if isinstance(o, h5py.Dataset) else None)
        for _ in range(draw(st.integers(1, 3))):
            op = draw(st.sampled_from(["attr", "attr", "shape", "dtype", "drop", "soft", "ext",
                                       "extstore", "group", "huge", "attrtype"]))
            target = draw(st.sampled_from(datasets))
            try:  # an earlier op may have replaced it by a link that does not resolve
                parent, leaf = f[target].parent, target.rsplit("/", 1)[-1]
            except (KeyError, OSError):
                continue
            if op == "attr":
                name = draw(st.sampled_from(["model_config", "training_config",
                                             "optimizer_state"]))
                try:
                    seed = json.loads(f.attrs[name]) if name in f.attrs else {}
                except (TypeError, ValueError):  # made a non-string by an earlier op
                    seed = {}
                f.attrs[name] = json.dumps(draw(json_mutations(seed)))
            elif op == "attrtype":
                f.attrs["model_config"] = draw(st.sampled_from(
                    [np.arange(3), np.float64(1.0), b"\xff\xfe", "[" * 100]))
            elif op in ("shape", "dtype", "huge"):
                del parent[leaf]
                if op == "shape":
                    shape = tuple(draw(st.lists(st.integers(0, 5), max_size=4)))
                    parent.create_dataset(leaf, data=np.ones(shape, np.float32))
                elif op == "dtype":
                    parent.create_dataset(leaf, data=draw(st.sampled_from(
                        [np.array([b"ab"]), np.zeros(2, "i8"), np.zeros(2, [("a", "f4")])])))
                else:
                    parent.create_dataset(leaf, (1 << 28,), "<f4")
            elif op == "drop":
                del parent[leaf]
            elif op == "soft":
                del parent[leaf]
                parent[leaf] = h5py.SoftLink(draw(st.sampled_from(["/nowhere", "/", target])))
            elif op == "ext":
                del parent[leaf]
                parent[leaf] = h5py.ExternalLink("/etc/passwd", "/x")
            elif op == "extstore":
                del parent[leaf]
                parent.create_dataset(leaf, (2,), "<f4", external=[("/etc/hostname", 0, 8)])
            else:
                del parent[leaf]
                parent.create_group(leaf)
    return buffer.getvalue()


def data_regions(seed: bytes) -> list[tuple[int, int]]:
    """(file offset, size) of each contiguous dataset's raw data in an .h5 file."""
    import h5py

    regions = []
    with h5py.File(io.BytesIO(seed), "r") as f:
        def visit(_, obj):
            if isinstance(obj, h5py.Dataset) and obj.id.get_offset() is not None:
                regions.append((obj.id.get_offset(), obj.id.get_storage_size()))
        f.visititems(visit)
    return regions


def check_h5(data: bytes, path: Path) -> None:
    from shenjing import keras

    path.write_bytes(data)
    run(".h5", H5FileError, lambda: keras.models.load_model(path), path)


# ----------------------------------------------------------------------------- IDX


def idx_file(type_code: int, dims: list[int], payload: bytes) -> bytes:
    head = bytes([0, 0, type_code % 256, len(dims) % 256])
    return head + b"".join((d % (1 << 32)).to_bytes(4, "big") for d in dims) + payload


IDX_SEED = idx_file(8, [3, 4, 5], bytes(range(60)))
idx_inputs = st.tuples(
    st.one_of(byte_mutations(IDX_SEED),
              st.builds(idx_file, st.sampled_from([8, 9, 11, 12, 13, 14, 0, 255]),
                        st.lists(st.sampled_from(BOUNDARY + [2, 3, 60, 65536]), max_size=70),
                        st.binary(max_size=80))),
    st.booleans(), st.booleans())


def check_idx(case: tuple[bytes, bool, bool], path: Path) -> None:
    import gzip

    data, zipped, damage = case
    if zipped:
        data = gzip.compress(data, compresslevel=1)
        if damage:
            data = data[:-5] + bytes(5)
    target = path.with_suffix(".gz") if zipped else path
    target.write_bytes(data)
    run("IDX", IdxFileError, lambda: sj.data.datasets.read_idx(target), target)


# ----------------------------------------------------------------------------- archives

TAR_GOOD = [("dir", "set/train/pos", b""), ("file", "set/train/pos/1.txt", b"good"),
            ("file", "set/train/neg/2.txt", b"bad")]
TAR_BAD = st.tuples(
    st.sampled_from(["file", "dir", "symlink", "hardlink", "fifo", "chardev"]),
    st.sampled_from(["set/../x", "/abs", "", ".", "..", "set/train/pos/1.txt",
                     "set/train/pos/1.txt/inner", "set/train", "a\\..\\b", "set/./y", "c:x"]),
    st.binary(max_size=8))


def tar_of(members, mode: str) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode) as tf:
        for kind, name, payload in members:
            info = tarfile.TarInfo(name)
            info.type = {"file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE,
                         "symlink": tarfile.SYMTYPE, "hardlink": tarfile.LNKTYPE,
                         "fifo": tarfile.FIFOTYPE, "chardev": tarfile.CHRTYPE}[kind]
            if kind in ("symlink", "hardlink"):
                info.linkname = "../../etc/passwd"
            if kind == "file":
                info.size = len(payload)
                tf.addfile(info, io.BytesIO(payload))
            else:
                tf.addfile(info)
    return buffer.getvalue()


@st.composite
def tar_inputs(draw) -> bytes:
    members = TAR_GOOD + draw(st.lists(TAR_BAD, max_size=2))
    data = tar_of(draw(st.permutations(members)), draw(st.sampled_from(["w", "w:gz"])))
    return draw(byte_mutations(data)) if draw(st.booleans()) else data


def check_archive(data: bytes, path: Path) -> None:
    from shenjing.data.datasets.imdb import extract_archive

    path.write_bytes(data)
    run("IMDB archive", ArchiveError, lambda: extract_archive(path), path)


# ----------------------------------------------------------------------------- the tests


@pytest.fixture
def folder(tmp_path_factory, monkeypatch):
    path = tmp_path_factory.mktemp("fuzz")
    monkeypatch.setenv("SHENJING_DATA", str(path / "cache"))
    return path


def test_fuzz_safetensors(folder):
    fuzz(safetensors_inputs, lambda data: check_safetensors(data, folder / "f.safetensors"))


def test_fuzz_sj_load(folder):
    fuzz(checkpoint_inputs, lambda data: check_checkpoint(data, folder / "c.safetensors"))


def test_fuzz_keras_archive(folder):
    fuzz(keras_inputs, lambda data: check_keras(data, folder / "m.keras"))


def test_fuzz_keras_model_configs(folder):
    fuzz(config_inputs, lambda config: check_keras(config_zip(config), folder / "c.keras",
                                                   "Keras config"), quick_json)


def test_fuzz_h5(folder, monkeypatch):
    pytest.importorskip("h5py")
    from shenjing.io import keras_files

    # Files written by libhdf5 cannot crash it: skip the crash probe (a fork per input).
    monkeypatch.setattr(keras_files, "_probe", lambda h5py, path: None)
    regions = data_regions(SEEDS["h5"])

    def in_data(data: bytes, rng: random.Random) -> bytes:  # noqa: D401
        """Byte edits inside the datasets' raw data (edits of metadata bytes can crash
        libhdf5 itself; `load_model` survives those by probing in a child process, which
        test_hostile_files checks)."""
        start, size = rng.choice(regions)
        data = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            data[start + rng.randrange(size)] = rng.randrange(256)
        return bytes(data)

    fuzz(st.one_of(h5_files(), st.just(SEEDS["h5"])),
         lambda data: check_h5(data, folder / "m.h5"),
         lambda _, rng: in_data(SEEDS["h5"], rng))  # the regions are the seed's


def test_fuzz_idx(folder):
    fuzz(idx_inputs, lambda case: check_idx(case, folder / "x-idx"),
         lambda case, rng: (quick_bytes(case[0], rng), *case[1:]))


def test_fuzz_imdb_archive(folder):
    fuzz(tar_inputs(), lambda data: check_archive(data, folder / "set.tar.gz"))


def test_counts_cover_both_outcomes():
    """After the fuzz tests above (same session), each parser both loaded and refused."""
    if len(COUNTS) < 7:
        pytest.skip("run with the fuzz tests")
    for parser, counts in COUNTS.items():
        assert sum(counts.values()) >= EXAMPLES, parser
        assert len(counts) >= 2, (parser, counts)
