"""shenjing dtypes against torch's: names, printing, attributes and aliases; one object per
dtype; NumPy takes them anywhere it takes a dtype (with warnings as errors); Keras-style
string comparisons; file formats keep writing plain names ("float32", "F32")."""

from __future__ import annotations

import copy
import json
import pickle
import warnings

import numpy as np
import pytest

import shenjing as sj
from shenjing.dtypes import as_dtype, resolve_dtype

torch = pytest.importorskip("torch")

# every dtype name shenjing shares with torch, aliases included
NAMES = ["float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "uint16",
         "uint32", "uint64", "complex64", "complex128", "bool", "float", "double", "half",
         "long", "int", "short", "cfloat", "cdouble"]


@pytest.fixture(autouse=True)
def _numpy_warnings_are_errors():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


@pytest.mark.parametrize("name", NAMES)
def test_dtype_prints_and_describes_itself_as_torch(name):
    mine, theirs = getattr(sj, name), getattr(torch, name)
    assert str(mine) == str(theirs).replace("torch.", "shenjing.")
    assert repr(mine) == repr(theirs).replace("torch.", "shenjing.")
    assert mine.is_floating_point == theirs.is_floating_point
    assert mine.is_complex == theirs.is_complex
    assert mine.is_signed == theirs.is_signed
    assert mine.itemsize == theirs.itemsize
    assert isinstance(mine, sj.dtype)


@pytest.mark.parametrize("name", ["float16", "float32", "float64", "complex64", "complex128"])
def test_to_real_and_to_complex_follow_torch(name):
    mine, theirs = getattr(sj, name), getattr(torch, name)
    assert str(mine.to_real()) == str(theirs.to_real()).replace("torch.", "shenjing.")
    if not mine.is_complex and mine is not sj.float16:  # torch has complex32, NumPy has not
        assert str(mine.to_complex()) == str(theirs.to_complex()).replace("torch.",
                                                                           "shenjing.")
    with pytest.raises(TypeError, match="shenjing.int64"):
        sj.int64.to_complex()


def test_aliases_are_the_same_objects():
    assert sj.float is sj.float32 and sj.double is sj.float64 and sj.half is sj.float16
    assert sj.long is sj.int64 and sj.int is sj.int32 and sj.short is sj.int16
    assert sj.cfloat is sj.complex64 and sj.cdouble is sj.complex128
    assert sj.bool is sj.bool_ and str(sj.bool) == "shenjing.bool"


def test_tensor_dtype_is_the_canonical_object():
    x = sj.tensor([1.0, 2.0])
    assert x.dtype is sj.float32 and (x * 2).dtype is sj.float32
    assert sj.tensor([1, 2]).dtype is sj.int64 and sj.tensor([True]).dtype is sj.bool
    assert x.double().dtype is sj.float64 and x.half().dtype is sj.float16
    assert x.int().dtype is sj.int32 and x.long().dtype is sj.int64 and x.bool().dtype is sj.bool
    assert (x > 1).dtype is sj.bool and x.argmax().dtype is sj.int64
    assert sj.zeros(2, dtype=sj.int16).dtype is sj.int16
    assert sj.from_numpy(np.zeros(2, np.uint8)).dtype is sj.uint8
    assert sj.from_numpy(np.zeros(2, np.uint16)).dtype is sj.uint16
    assert x.to(sj.float64).dtype is sj.float64 and x.type(sj.int8).dtype is sj.int8
    assert x.type() == "shenjing.float32" == str(torch.tensor([1.0]).type()).replace(
        "torch.FloatTensor", "shenjing.float32")
    assert sj.get_default_dtype() is sj.float32


@pytest.mark.parametrize("build", [
    lambda lib: lib.tensor([1, 2], dtype=lib.int32),
    lambda lib: lib.tensor([1.0, 2.0], dtype=lib.float64),
    lambda lib: lib.tensor([1.5], dtype=lib.float16),
    lambda lib: lib.tensor([True, False]),
    lambda lib: lib.zeros(0, dtype=lib.int64),
    lambda lib: lib.zeros(0),
], ids=["int32", "float64", "float16", "bool", "empty-int64", "empty-float32"])
def test_tensor_repr_names_the_dtype_as_torch(build):
    assert repr(build(sj)) == repr(build(torch)).replace("torch.", "shenjing.")


def test_numpy_accepts_shenjing_dtypes_everywhere():
    f = sj.float32
    assert np.dtype(f) == np.dtype("float32") and np.dtype(f) is np.dtype(np.float32)
    assert np.zeros(2, dtype=f).dtype == np.float32
    assert np.ones(2).astype(sj.float16).dtype == np.float16
    assert np.asarray([1, 2], sj.float64).dtype == np.float64
    assert np.result_type(sj.int32, np.float32) == np.float64
    assert np.issubdtype(sj.int8, np.integer) and np.issubdtype(f, np.floating)
    assert np.finfo(f).eps == torch.finfo(torch.float32).eps
    assert np.iinfo(sj.int32).max == torch.iinfo(torch.int32).max
    assert sj.finfo(sj.float64).eps == torch.finfo(torch.float64).eps
    assert sj.finfo().tiny == torch.finfo().tiny  # the default float dtype's limits
    assert sj.iinfo(sj.uint8).max == torch.iinfo(torch.uint8).max == 255
    # NumPy dtype attributes read through
    assert (f.kind, f.char, f.name, f.type) == ("f", "f", "float32", np.float32)


def test_equality_with_numpy_types_names_and_each_other():
    f = sj.float32
    assert f == np.float32 and np.float32 == f and f == np.dtype("float32")
    assert np.dtype("float32") == f and f == "float32" and f == "shenjing.float32"
    assert f != sj.float64 and f != "float64" and f != np.int32 and f != "not a dtype"
    assert f != None  # noqa: E711  (np.dtype(None) would be float64)
    assert sj.float64 != None  # noqa: E711
    assert f != sj.tensor([1.0]) and f != [1, 2]  # never NumPy's conversion of an object
    assert hash(f) == hash(np.dtype("float32"))
    assert {np.dtype("float32"): "a"}[f] == "a" and {f: "b"}[np.dtype("float32")] == "b"
    assert sj.tensor([1.0]).dtype in (np.float32, np.float64)
    assert len({sj.float32, sj.float, as_dtype(np.float32), as_dtype("float32")}) == 1


def test_copy_and_pickle_keep_the_canonical_object():
    for d in (sj.float32, sj.int64, sj.bool):
        assert copy.copy(d) is d and copy.deepcopy(d) is d
        assert pickle.loads(pickle.dumps(d)) is d
    assert copy.deepcopy({"dtype": sj.float64})["dtype"] is sj.float64


def test_resolve_dtype_gives_the_numpy_dtype_for_every_spelling():
    for spelling in (sj.float32, np.float32, np.dtype("float32"), "float32", "shenjing.float32"):
        assert resolve_dtype(spelling) is np.dtype(np.float32)
    assert resolve_dtype(float) is np.dtype(np.float32) and resolve_dtype(int) is np.dtype(
        np.int64) and resolve_dtype(bool) is np.dtype(np.bool_) and resolve_dtype(None) is None
    with pytest.raises(TypeError, match="unsupported dtype 'nope'"):
        resolve_dtype("nope")


def test_set_default_dtype_takes_and_returns_shenjing_dtypes():
    try:
        sj.set_default_dtype(sj.float64)
        assert sj.get_default_dtype() is sj.float64 and sj.tensor([1.5]).dtype is sj.float64
        sj.set_default_dtype("float32")
        assert sj.get_default_dtype() is sj.float32
        with pytest.raises(TypeError, match="got shenjing.int32"):
            sj.set_default_dtype(sj.int32)
    finally:
        sj.set_default_dtype(sj.float32)


def test_errors_print_dtypes_as_torch_does():
    with pytest.raises(TypeError, match=r"dtype shenjing\.int64"):
        sj.tensor([1, 2]).requires_grad_()
    with pytest.raises(TypeError, match=r"shenjing\.int64"):
        sj.tensor([1, 2]).mean()


def test_is_floating_point_and_is_complex_match_torch():
    for build in (lambda lib: lib.tensor([1.0]), lambda lib: lib.tensor([1]),
                  lambda lib: lib.tensor([True]), lambda lib: lib.tensor([1.0]).double()):
        a, b = build(sj), build(torch)
        assert a.is_floating_point() == b.is_floating_point() == sj.is_floating_point(a)
        assert a.is_complex() == b.is_complex()


def test_modules_cast_to_shenjing_dtypes():
    m = sj.nn.Linear(3, 2).to(sj.float64)
    assert m.weight.dtype is sj.float64 and m.bias.dtype is sj.float64
    assert m.float().weight.dtype is sj.float32
    assert sj.nn.Linear(3, 2, dtype=sj.float64).weight.dtype is sj.float64


def test_file_formats_write_plain_dtype_names(tmp_path):
    from shenjing.io.safetensors import load_file, save_file

    path = tmp_path / "w.safetensors"
    save_file({"a": sj.ones(2), "b": sj.tensor([1, 2], dtype=sj.int32)}, str(path))
    raw = path.read_bytes()
    header = json.loads(raw[8:8 + int.from_bytes(raw[:8], "little")])
    assert header["a"]["dtype"] == "F32" and header["b"]["dtype"] == "I32"
    loaded = load_file(str(path))
    assert sj.as_tensor(loaded["b"]).dtype is sj.int32

    ckpt = tmp_path / "state.pt"
    sj.save({"w": sj.ones(2, dtype=sj.float64)}, str(ckpt))
    assert sj.as_tensor(sj.load(str(ckpt))["w"]).dtype is sj.float64


def test_keras_sees_dtype_strings_and_compares_tensors_to_them():
    from shenjing import keras

    layer = keras.layers.Dense(3)
    layer.build((None, 4))
    assert layer.dtype == "float32" and isinstance(layer.dtype, str)
    assert layer.kernel.dtype == "float32" and isinstance(layer.kernel.dtype, str)
    x = keras.ops.ones((2, 3))
    assert x.dtype == "float32" and keras.ops.dtype(x) == "float32"
    assert keras.ops.cast(x, "int32").dtype == "int32"
    assert keras.ops.cast(x, sj.float64).dtype is sj.float64
    assert keras.random.randint((2,), 0, 5, dtype=sj.int32).dtype is sj.int32
    assert keras.random.normal((2,), dtype=sj.float64).dtype == "float64"
