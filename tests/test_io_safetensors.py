"""shenjing.io.safetensors against the format and the official library; shenjing.io.atomic."""

from __future__ import annotations

import json
import os
import stat
import struct

import numpy as np
import pytest

from shenjing.io import atomic
from shenjing.io import safetensors as st
from shenjing.io.atomic import atomic_write

DTYPES = [
    np.float64,
    np.float32,
    np.float16,
    np.int64,
    np.int32,
    np.int16,
    np.int8,
    np.uint8,
    np.uint16,
    np.uint32,
    np.uint64,
    np.bool_,
]
SHAPES = [(), (0,), (3, 0, 2), (5,), (2, 3, 4)]


class FakeTensor:
    """Stands in for shenjing.tensor.Tensor: the writer only relies on an ndarray `.data`."""

    def __init__(self, data: np.ndarray) -> None:
        self.data = data


def _sample(dtype, shape, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if np.dtype(dtype) == np.bool_:
        values = rng.integers(0, 2, shape)
    elif np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        values = rng.integers(info.min, info.max, shape, dtype=dtype, endpoint=True)
    else:
        values = rng.standard_normal(shape) * 100
    return np.asarray(values, dtype=dtype)  # an ndarray even for shape ()


def _all_dtypes_dict() -> dict[str, np.ndarray]:
    tensors = {}
    for i, dtype in enumerate(DTYPES):
        for j, shape in enumerate(SHAPES):
            tensors[f"{np.dtype(dtype).name}.{j}"] = _sample(dtype, shape, seed=i * 10 + j)
    return tensors


def _assert_same(loaded: dict, expected: dict) -> None:
    assert set(loaded) == set(expected)
    for name, array in expected.items():
        array = np.asarray(array)
        assert loaded[name].dtype == array.dtype.newbyteorder("="), name
        assert loaded[name].shape == array.shape, name
        np.testing.assert_array_equal(loaded[name], array, err_msg=name)


# ----------------------------------------------------------------------------- round trips


def test_round_trip_bytes_all_dtypes_and_shapes():
    tensors = _all_dtypes_dict()
    _assert_same(st.load(st.save(tensors)), tensors)


@pytest.mark.parametrize("mmap", [False, True])
def test_round_trip_file_all_dtypes_and_shapes(tmp_path, mmap):
    tensors = _all_dtypes_dict()
    path = tmp_path / "all.safetensors"
    st.save_file(tensors, path, metadata={"format": "np", "note": 'héllo "quoted"\n'})
    loaded, metadata = st.load_file_with_metadata(path, mmap=mmap)
    _assert_same(loaded, tensors)
    assert metadata == {"format": "np", "note": 'héllo "quoted"\n'}
    assert st.read_metadata(path) == metadata
    if mmap:
        assert not loaded["float32.4"].flags.writeable
    else:
        assert loaded["float32.4"].flags.writeable and loaded["float32.4"].flags.owndata


def test_special_float_values_and_layouts_survive():
    base = np.array([np.nan, np.inf, -np.inf, -0.0, 1e-45, np.finfo(np.float32).max], np.float32)
    tensors = {
        "special": base,
        "non_contiguous": np.arange(24, dtype=np.float64).reshape(4, 6)[:, ::2],
        "fortran": np.asfortranarray(np.arange(6, dtype=np.int32).reshape(2, 3)),
        "big_endian": np.arange(5, dtype=">i4"),
        "tensor": FakeTensor(np.ones((2, 2), np.float32)),
        "array_like": np.float16(2.5),  # NumPy scalar: has __array__, becomes 0-d
    }
    loaded = st.load(st.save(tensors))
    np.testing.assert_array_equal(loaded["special"].view(np.uint32), base.view(np.uint32))
    np.testing.assert_array_equal(loaded["non_contiguous"], tensors["non_contiguous"])
    np.testing.assert_array_equal(loaded["fortran"], tensors["fortran"])
    assert loaded["big_endian"].dtype == np.dtype("<i4")
    np.testing.assert_array_equal(loaded["big_endian"], np.arange(5))
    np.testing.assert_array_equal(loaded["tensor"], np.ones((2, 2), np.float32))
    assert loaded["array_like"].shape == () and loaded["array_like"] == np.float16(2.5)


def test_bfloat16_round_trip():
    ml_dtypes = pytest.importorskip("ml_dtypes")
    x = np.array([1.5, -2.0, 3.140625, np.inf], ml_dtypes.bfloat16)
    loaded = st.load(st.save({"x": x}))["x"]
    assert loaded.dtype == ml_dtypes.bfloat16
    np.testing.assert_array_equal(loaded.view(np.uint16), x.view(np.uint16))


# ----------------------------------------------------------------------------- interop


def test_our_file_is_read_by_the_official_library(tmp_path):
    official = pytest.importorskip("safetensors.numpy")
    tensors = _all_dtypes_dict()
    path = tmp_path / "ours.safetensors"
    st.save_file(tensors, path)
    _assert_same(official.load_file(str(path)), tensors)


def test_official_file_is_read_by_us(tmp_path):
    official = pytest.importorskip("safetensors.numpy")
    tensors = _all_dtypes_dict()
    path = tmp_path / "theirs.safetensors"
    official.save_file(tensors, str(path), metadata={"format": "np"})
    loaded, metadata = st.load_file_with_metadata(path)
    _assert_same(loaded, tensors)
    assert metadata == {"format": "np"}


@pytest.mark.parametrize(
    "metadata", [None, {"format": "pt"}, {"ключ": 'значение \u0001 \x7f \\ "'}]
)
def test_bytes_identical_to_official(metadata):
    """Same order (dtype size descending, then name), same compact JSON, same padding."""
    official = pytest.importorskip("safetensors.numpy")
    tensors = _all_dtypes_dict()
    tensors["zz_last_by_name"] = np.zeros(3, np.float32)
    tensors["AA_first_by_name"] = np.zeros(1, np.float32)
    ours = st.save(tensors, metadata)
    assert ours == official.save(tensors, metadata)
    (length,) = struct.unpack("<Q", ours[:8])
    assert length % 8 == 0


def test_empty_dict_matches_official():
    official = pytest.importorskip("safetensors.numpy")
    assert st.save({}) == official.save({}) == b"\x08" + b"\x00" * 7 + b"{}      "
    assert st.load(st.save({})) == {}


def test_bfloat16_interop_with_official_torch_binding(tmp_path):
    torch = pytest.importorskip("torch")
    ml_dtypes = pytest.importorskip("ml_dtypes")
    storch = pytest.importorskip("safetensors.torch")
    values = torch.tensor([1.5, -2.0, 3.140625, 1e30], dtype=torch.bfloat16)
    theirs = tmp_path / "theirs.safetensors"
    storch.save_file({"w": values}, str(theirs))
    loaded = st.load_file(theirs)["w"]
    assert loaded.dtype == ml_dtypes.bfloat16
    np.testing.assert_array_equal(loaded.astype(np.float32), values.float().numpy())

    ours = tmp_path / "ours.safetensors"
    st.save_file({"w": loaded}, ours)
    assert ours.read_bytes() == theirs.read_bytes()
    assert torch.equal(storch.load_file(str(ours))["w"], values)


# ----------------------------------------------------------------------------- corruption


def _raw(header: dict | bytes, data: bytes = b"", *, length: int | None = None) -> bytes:
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(raw) if length is None else length) + raw + data


def _good_header() -> dict:
    return {
        "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
        "b": {"dtype": "I64", "shape": [1], "data_offsets": [8, 16]},
    }


CORRUPTIONS = {
    "too_short": (b"\x01\x02\x03", r"3 bytes is too short"),
    "length_beyond_file": (
        _raw(_good_header(), bytes(16), length=10_000),
        r"runs past the end of the file",
    ),
    "length_absurd": (_raw(b"{}", length=2**62), r"exceeds the 100000000-byte limit"),
    "bad_json": (_raw(b'{"a": {"dtype": "F32",', bytes(16)), r"not valid JSON"),
    "not_utf8": (_raw(b'{"\xff": 1}'), r"not valid UTF-8"),
    "not_object": (_raw(b"[1, 2]"), r"must be a JSON object"),
    "duplicate_key": (
        _raw(
            b'{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},'
            b'"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}',
            bytes(8),
        ),
        r"duplicate key 'a'",
    ),
    "bad_metadata": (_raw({"__metadata__": {"k": 1}}), r"__metadata__ must be an object of str"),
    "missing_field": (
        _raw({"a": {"dtype": "F32", "shape": [2]}}, bytes(8)),
        r"tensor 'a': expected an object with dtype, shape and data_offsets",
    ),
    "unknown_dtype": (
        _raw(
            {**_good_header(), "b": {"dtype": "C128", "shape": [1], "data_offsets": [8, 16]}},
            bytes(16),
        ),
        r"tensor 'b': unknown dtype 'C128'; expected one of .*F32",
    ),
    "negative_dim": (
        _raw({"a": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}}, bytes(8)),
        r"tensor 'a': shape must be a list of non-negative ints",
    ),
    "float_dim": (
        _raw({"a": {"dtype": "F32", "shape": [2.0], "data_offsets": [0, 8]}}, bytes(8)),
        r"tensor 'a': shape must be a list of non-negative ints",
    ),
    "reversed_offsets": (
        _raw({"a": {"dtype": "U8", "shape": [0], "data_offsets": [8, 0]}}, bytes(8)),
        r"tensor 'a': data_offsets must be \[begin, end\]",
    ),
    "shape_size_mismatch": (
        _raw(
            {**_good_header(), "a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}},
            bytes(16),
        ),
        r"tensor 'a': shape \(3,\) of F32 needs 12 bytes, but data_offsets \[0, 8\] span 8",
    ),
    "overlap": (
        _raw(
            {**_good_header(), "b": {"dtype": "I64", "shape": [1], "data_offsets": [4, 12]}},
            bytes(16),
        ),
        r"tensor 'b' at bytes \[4, 12\) overlaps tensor 'a'",
    ),
    "out_of_bounds": (
        _raw(_good_header(), bytes(12)),
        r"tensor 'b': data_offsets \[8, 16\] run past the end of the data section \(12 bytes\)",
    ),
    "gap": (
        _raw(
            {**_good_header(), "b": {"dtype": "I64", "shape": [1], "data_offsets": [12, 20]}},
            bytes(20),
        ),
        r"bytes \[8, 12\) before tensor 'b' belong to no tensor",
    ),
    "trailing_bytes": (
        _raw(_good_header(), bytes(24)),
        r"data section is 24 bytes but the tensors cover 16",
    ),
    "bool_not_0_or_1": (
        _raw({"m": {"dtype": "BOOL", "shape": [2], "data_offsets": [0, 2]}}, b"\x01\x07"),
        r"tensor 'm' is BOOL but holds bytes other than 0 and 1",
    ),
}


@pytest.mark.parametrize("case", sorted(CORRUPTIONS))
def test_corrupt_file_raises_naming_file_and_tensor(tmp_path, case):
    raw, message = CORRUPTIONS[case]
    path = tmp_path / f"{case}.safetensors"
    path.write_bytes(raw)
    with pytest.raises(ValueError, match=message) as info:
        st.load_file(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("case", sorted(CORRUPTIONS))
def test_corrupt_bytes_raise_too(case):
    raw, message = CORRUPTIONS[case]
    with pytest.raises(ValueError, match=message) as info:
        st.load(raw)
    assert "safetensors bytes" in str(info.value)


def test_truncated_real_file_is_refused(tmp_path):
    path = tmp_path / "cut.safetensors"
    st.save_file({"w": np.ones((10, 10), np.float32)}, path)
    path.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(ValueError, match=r"tensor 'w'.*run past the end of the data section"):
        st.load_file(path)


def test_official_rejects_what_we_reject(tmp_path):
    """Our validation is not stricter than the format: the official reader refuses these too."""
    official = pytest.importorskip("safetensors.numpy")
    from safetensors import SafetensorError

    for case in ("overlap", "gap", "out_of_bounds", "shape_size_mismatch", "trailing_bytes"):
        with pytest.raises(SafetensorError):
            official.load(CORRUPTIONS[case][0])


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.safetensors"):
        st.load_file(tmp_path / "nope.safetensors")
    with pytest.raises(IsADirectoryError, match="is a directory"):
        st.load_file(tmp_path)


def test_torch_pickle_is_refused_not_parsed(tmp_path):
    torch = pytest.importorskip("torch")
    path = tmp_path / "model.pt"
    torch.save({"w": torch.zeros(2)}, path)
    with pytest.raises(ValueError, match="pickle-based PyTorch file.*never unpickles"):
        st.load_file(path)


def test_header_that_starts_like_a_pickle_is_still_safetensors(tmp_path):
    """A 640-byte header is 0x80 0x02 0 0 ...: the bytes a protocol-2 pickle starts with."""
    tensors = {"w": np.arange(3, dtype=np.float32)}
    for pad in range(700):
        raw = st.save(tensors, {"pad": "x" * pad})
        if struct.unpack("<Q", raw[:8])[0] == 640:
            break
    assert raw[:2] == b"\x80\x02"
    path = tmp_path / "looks_pickled.safetensors"
    path.write_bytes(raw)
    _assert_same(st.load_file(path), tensors)
    _assert_same(st.load(raw), tensors)


def test_other_formats_are_named(tmp_path):
    npy = tmp_path / "w.npy"
    np.save(npy, np.zeros(3))
    with pytest.raises(ValueError, match="NumPy .npy file"):
        st.load_file(npy)
    h5 = tmp_path / "m.h5"
    h5.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(100))
    with pytest.raises(ValueError, match="HDF5 file"):
        st.load_file(h5)


# ----------------------------------------------------------------------------- bad input to save


class Exploding:
    def __array__(self, dtype=None, copy=None):
        raise RuntimeError("disk pulled mid-conversion")


@pytest.mark.parametrize(
    ("tensors", "error", "message"),
    [
        ({"x": np.array(["a", "b"])}, TypeError, r"tensor 'x' has dtype <U1.*expected one of"),
        ({"x": np.zeros(2, np.complex64)}, TypeError, r"tensor 'x' has dtype complex64"),
        ({"x": np.array([object()])}, TypeError, r"tensor 'x' has dtype object"),
        ({"x": [1.0, 2.0]}, TypeError, r"tensor 'x' is a list; expected a NumPy array"),
        ({1: np.zeros(1)}, TypeError, r"tensor names must be str"),
        ({"__metadata__": np.zeros(1)}, ValueError, r"'__metadata__' is reserved"),
        ([np.zeros(1)], TypeError, r"expected a dict of name -> array, got list"),
    ],
)
def test_bad_input_to_save(tensors, error, message):
    with pytest.raises(error, match=message):
        st.save(tensors)


def test_bad_metadata_to_save():
    with pytest.raises(TypeError, match="metadata must be a dict of str -> str"):
        st.save({"x": np.zeros(1)}, metadata={"epoch": 3})


# ----------------------------------------------------------------------------- atomicity


def _leftovers(directory) -> list[str]:
    return sorted(name for name in os.listdir(directory) if name.endswith(".tmp"))


def test_failed_conversion_leaves_previous_file_intact(tmp_path):
    path = tmp_path / "w.safetensors"
    st.save_file({"w": np.arange(4.0)}, path)
    before = path.read_bytes()
    with pytest.raises(RuntimeError, match="disk pulled"):
        st.save_file({"w": np.zeros(4), "bad": Exploding()}, path)
    assert path.read_bytes() == before
    assert _leftovers(tmp_path) == []


def test_failure_midway_through_writing_leaves_previous_file_intact(tmp_path, monkeypatch):
    path = tmp_path / "w.safetensors"
    st.save_file({"w": np.arange(4.0)}, path)
    before = path.read_bytes()
    written = []
    real_write = st._write

    def write_then_fail(f, header, arrays):
        real_write(f, header, arrays)
        written.append(f.tell())
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(st, "_write", write_then_fail)
    with pytest.raises(OSError, match="No space left"):
        st.save_file({"w": np.zeros(1000)}, path)
    assert written and written[0] > len(before)  # the new bytes really were half-way out
    assert path.read_bytes() == before
    assert _leftovers(tmp_path) == []


def test_failing_fsync_leaves_previous_file_intact(tmp_path, monkeypatch):
    path = tmp_path / "w.safetensors"
    st.save_file({"w": np.arange(4.0)}, path)
    before = path.read_bytes()

    def broken_fsync(fd):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(atomic.os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="Input/output error"):
        st.save_file({"w": np.zeros(3)}, path)
    assert path.read_bytes() == before
    assert _leftovers(tmp_path) == []


def test_atomic_write_text_and_permissions(tmp_path):
    path = tmp_path / "notes.txt"
    with atomic_write(path, "w") as f:
        f.write("第一版\n")
    assert path.read_text(encoding="utf-8") == "第一版\n"
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask  # not mkstemp's 0o600

    path.chmod(0o640)
    with atomic_write(path, "w") as f:
        f.write("second")
    assert path.read_text() == "second"
    assert stat.S_IMODE(path.stat().st_mode) == 0o640  # the replaced file's mode is kept


def test_atomic_write_exception_keeps_old_file(tmp_path):
    path = tmp_path / "data.bin"
    path.write_bytes(b"old")
    with pytest.raises(KeyError), atomic_write(path) as f:
        f.write(b"new but unfinished")
        raise KeyError("boom")
    assert path.read_bytes() == b"old"
    assert _leftovers(tmp_path) == []


def test_atomic_write_argument_errors(tmp_path):
    with (
        pytest.raises(ValueError, match="mode must be a write mode"),
        atomic_write(tmp_path / "x", "ab"),
    ):
        pass
    with (
        pytest.raises(FileNotFoundError, match="does not exist"),
        atomic_write(tmp_path / "missing" / "x"),
    ):
        pass
    with pytest.raises(IsADirectoryError), atomic_write(tmp_path):
        pass
    assert _leftovers(tmp_path) == []
