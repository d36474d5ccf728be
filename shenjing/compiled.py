"""Compiled kernels (a small C extension) for the few places where a profile shows NumPy
cannot get there.

Why: float32 `exp` runs at ~3.8 ns per element in NumPy on an AVX2 machine, twenty times a
multiply, and an LSTM step makes five passes of it plus a dozen more elementwise passes over
its gate block; a max pool makes kh*kw passes forward and twice that backward, and keeps its
full-size input for them (benchmarks/RESULTS.md, "Issue 12"). One C loop per step (or per
pool) does the same work in one pass, with an exp built from a polynomial that the compiler
vectorizes (relative error below 2e-7).

Optional by design: `shenjing/_ckernels.c` is built when the package is installed (setup.py)
and loaded here through ctypes on first use. Every caller keeps its NumPy path, used when
the extension is missing, when `SHENJING_COMPILED=0`, inside `use_compiled(False)`, for
dtypes other than float32, or under a non-NumPy array module; the tests run both paths and
compare them. Why C and not numba: importing numba and LLVM adds ~130 MB to a process,
more than the whole peak of a small CNN's training step (measured; the issue's memory
target is 0.7x PyTorch's peak).

Kernels (arguments are NumPy arrays, C-contiguous float32 unless said, and ints):
* `lstm_forward(G, bias, cs, tcs, zh, h, outt)` and `lstm_backward(G, tcs, cs, gt, dh, dc,
  dG)`: the step functions of one LSTM pass; NumPy twins `ops.rnn._lstm_gates` (which
  documents the layout) and `ops.rnn._lstm_step_grads`.
* `max_pool_forward(x, kh, kw, sh, sw, relu, out, code)` and
  `max_pool_backward(g, code, kh, kw, sh, sw, dx)`: unpadded max pooling in the
  (C, H, W, N) frame with a uint8 winner code per output; see `ops.pool.MaxPool`.
* `copy_unit_first(a, out)`: a C-contiguous copy of a 3-D view whose first axis has unit
  stride (a conv's batch-innermost output seen as (N, T, E)); twin `xp.copyto`.
* `dropout_keep(bit_generator, keep, threshold)`: dropout's bool mask from NumPy's PCG64
  stream, bit for bit; twin `ops.nn_ops.dropout_keep`.
* `apply_keep(x, keep, out, scale)`: inverted dropout, one pass; twin `ops.nn_ops.apply_keep`.
* `col2im_stride1(dcols, dx)`: a stride-1 convolution's col2im in one pass; twin
  `ops.conv._col2im`'s slice-adds.
* `adam_step(...)` and `sgd_step(...)`: one pass of Adam / SGD over a parameter; twins
  `optim.adaptive._adam_kernel` and `optim.sgd._sgd_kernel`, whose bits they give.

And one memory policy: `cache_numpy_memory(max_bytes)` makes NumPy keep freed blocks of
1 MB or more for reuse (see its docstring); shenjing's import turns it on for the importing
thread with `SHENJING_NUMPY_CACHE_MB` (default 64; 0 leaves NumPy's allocator alone).
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import importlib.util
import os

import numpy as np  # the kernels are CPU-only: NumPy is the array module wherever they run

from . import backend

__all__ = ["available", "enabled", "use_compiled", "kernels", "cache_numpy_memory",
           "numpy_cache_bytes", "release_numpy_cache"]

_SPEC = importlib.util.find_spec("shenjing._ckernels")
_AVAILABLE = _SPEC is not None and _SPEC.origin is not None
_enabled = _AVAILABLE and os.environ.get("SHENJING_COMPILED", "1") != "0"
_kernels = None


def available() -> bool:
    """True when the C extension was built at install."""
    return _AVAILABLE


def enabled() -> bool:
    """True when callers should take their compiled path: switched on, and the active array
    module is NumPy (the kernels read host memory; another backend keeps its own ops)."""
    return _enabled and backend.active().__name__ == "numpy"


@contextlib.contextmanager
def use_compiled(flag: bool):
    """Turn the compiled kernels on or off inside a `with` block (tests, A/B timing)."""
    global _enabled
    if flag and not _AVAILABLE:
        raise RuntimeError("use_compiled(True): shenjing's C extension was not built (it needs "
                           "a C compiler when shenjing is installed: reinstall with "
                           "`pip install -e .` after `apt-get install gcc`); without it "
                           "shenjing runs its NumPy kernels")
    before, _enabled = _enabled, bool(flag)
    try:
        yield
    finally:
        _enabled = before


def _ptr(a) -> int:
    return a.__array_interface__["data"][0]


def _check_layout(rows: tuple = (), whole: tuple = ()) -> None:
    """The LSTM step kernels take base addresses and row strides only: arrays in `rows` must
    be float32 with a contiguous last axis, those in `whole` C-contiguous float32 (ops/rnn.py
    copies a gradient that is neither)."""
    bad = [a for a in rows if a.dtype != np.float32 or min(a.strides) < 0
           or (a.shape[-1] > 1 and a.strides[-1] != 4)]
    bad += [a for a in whole if a.dtype != np.float32 or not a.flags.c_contiguous]
    if bad:
        a = bad[0]
        raise ValueError(f"compiled LSTM step: expected float32 arrays with contiguous rows, "
                         f"got {a.dtype} of shape {a.shape} with strides {a.strides}")


class _Kernels:
    """The extension's C functions with NumPy-array signatures."""

    def __init__(self, path: str) -> None:
        lib = ctypes.CDLL(path)
        P, I = ctypes.c_void_p, ctypes.c_int64  # noqa: E741
        C = ctypes.c_int
        self._lstm_f = self._fn(lib.lstm_forward_step, [P] * 7 + [I, P] + [I] * 3)
        self._lstm_b = self._fn(lib.lstm_backward_step, [P] * 4 + [I] + [P] * 3 + [I] * 4)
        self._pool_f = self._fn(lib.max_pool_forward, [P] + [I] * 8 + [C, P, P, I, I, P])
        self._pool_b = self._fn(lib.max_pool_backward, [P, P] + [I] * 8 + [P, I, I])
        self._copy_uf = self._fn(lib.copy_unit_first, [P, P] + [I] * 5)
        self._keep = self._fn(lib.dropout_keep_pcg64, [P, P, I, ctypes.c_uint32])
        self._apply_keep = self._fn(lib.apply_keep, [P, P, P, I, ctypes.c_float])
        self._col2im = self._fn(lib.col2im_stride1, [P, P] + [I] * 9)
        F = ctypes.c_float
        self._adam = self._fn(lib.adam_step, [P] * 5 + [I, F, F, F, F, F, C, F, F])
        self._sgd = self._fn(lib.sgd_step, [P] * 3 + [I, F, F, C, F, F, C, C, C])

    @staticmethod
    def _fn(f, argtypes):
        f.argtypes, f.restype = argtypes, None
        return f

    def lstm_forward(self, G, bias, cs, tcs, zh, h, outt):
        """The step function of one LSTM forward pass (ops/rnn.py's arrays, float32):
        `step(t, prev, cur, slot)` runs step t's gate math in G[t] (T, 4H, N), c_t from
        cs[prev] into cs[cur], tanh(c_t) into tcs[t], h_t into `h` (H, N, contiguous) and
        zh[:, slot] ((H, T, N), the next step's h rows of Z; not when slot < 0), h_t.T into outt[t]
        ((T, N, H)). Addresses are computed once here: per call, NumPy's
        `__array_interface__` costs ~3 us an array, a quarter of the step's elementwise time.
        The step function holds the arrays, so their memory lives as long as it does."""
        H, N = h.shape
        _check_layout(rows=(zh, outt), whole=(G, bias, cs, tcs, h))
        g0, gs, b = _ptr(G), G.strides[0], _ptr(bias)
        c0, cst, tc0, ts = _ptr(cs), cs.strides[0], _ptr(tcs), tcs.strides[0]
        z0, zs, zrow = _ptr(zh), zh.strides[1], zh.strides[0] // 4
        h0, o0, os, orow = _ptr(h), _ptr(outt), outt.strides[0], outt.strides[1] // 4
        f = self._lstm_f

        arrays = (G, bias, cs, tcs, zh, h, outt)

        def step(t, prev, cur, slot, _hold=arrays):
            f(g0 + t * gs, b, c0 + prev * cst, c0 + cur * cst, tc0 + t * ts, h0,
              z0 + slot * zs if slot >= 0 else None, zrow, o0 + t * os, orow, H, N)
        return step

    def lstm_backward(self, G, tcs, cs, gt, dh, dc, dG):
        """The step function of one LSTM backward pass: `step(t, prev)` adds gt[t].T
        ((T, N, H), the output gradient's rows) into dh (H, N), then writes step t's
        pre-activation gradients into dG[:, t] (4H, T, N) and turns dc (the gradient reaching
        c_t) into the one reaching c_{t-1} (from cs[prev])."""
        H, N = dh.shape
        T = dG.shape[1]
        _check_layout(rows=(gt,), whole=(G, tcs, cs, dh, dc, dG))
        g0, gs, tc0, ts = _ptr(G), G.strides[0], _ptr(tcs), tcs.strides[0]
        c0, cst, o0, os, orow = _ptr(cs), cs.strides[0], _ptr(gt), gt.strides[0], gt.strides[1]
        dhp, dcp, dGp = _ptr(dh), _ptr(dc), _ptr(dG)
        f = self._lstm_b

        arrays = (G, tcs, cs, gt, dh, dc, dG)

        def step(t, prev, _hold=arrays):
            f(g0 + t * gs, tc0 + t * ts, c0 + prev * cst, o0 + t * os, orow // 4, dhp, dcp, dGp,
              t, T, H, N)
        return step

    def max_pool_forward(self, x, kh, kw, sh, sw, relu, out, code) -> None:
        C, H, W, N = x.shape
        win = np.empty(N, np.int32)  # the kernel's scratch row
        self._pool_f(_ptr(x), C, H, W, N, kh, kw, sh, sw, int(relu), _ptr(out), _ptr(code),
                     out.shape[1], out.shape[2], _ptr(win))

    def max_pool_backward(self, g, code, kh, kw, sh, sw, dx) -> None:
        C, oh, ow, N = g.shape
        self._pool_b(_ptr(g), _ptr(code), C, oh, ow, N, kh, kw, sh, sw, _ptr(dx),
                     dx.shape[1], dx.shape[2])

    def adam_step(self, x, g, m, v, v_max, beta1, beta2, decay, l2, maximize, eps_scaled,
                  neg_step) -> None:
        self._adam(_ptr(x), _ptr(g), _ptr(m), _ptr(v), None if v_max is None else _ptr(v_max),
                   x.size, 1.0 - beta1, beta2, 1.0 - beta2, decay, l2, int(maximize),
                   eps_scaled, neg_step)

    def sgd_step(self, x, g, buf, lr, l2, maximize, momentum, dampening, nesterov,
                 first) -> None:
        self._sgd(_ptr(x), _ptr(g), None if buf is None else _ptr(buf), x.size, -lr, l2,
                  int(maximize), momentum, 1.0 - dampening, int(dampening != 0), int(nesterov),
                  int(first))

    def copy_unit_first(self, a, out) -> None:
        """out (C-contiguous) = a, a 3-D float32 view whose first axis has unit stride."""
        ni, nb, nj = a.shape
        item = a.itemsize
        self._copy_uf(_ptr(a), _ptr(out), ni, nb, nj, a.strides[1] // item,
                      a.strides[2] // item)

    def dropout_keep(self, bit_generator, keep, threshold: int) -> None:
        """Fill the bool array `keep` from a NumPy PCG64 bit generator's stream (advancing
        it exactly as `random_raw((keep.size + 1) // 2)` would)."""
        st = bit_generator.state
        s, inc = st["state"]["state"], st["state"]["inc"]
        words = np.array([s >> 64, s & _MASK64, inc >> 64, inc & _MASK64], np.uint64)
        self._keep(_ptr(words), _ptr(keep), keep.size, threshold)
        st["state"]["state"] = (int(words[0]) << 64) | int(words[1])
        bit_generator.state = st

    def apply_keep(self, x, keep, out, scale) -> None:
        self._apply_keep(_ptr(x), _ptr(keep), _ptr(out), x.size, scale)

    def col2im_stride1(self, dcols, dx) -> None:
        G, kh, kw, Cg, oh, ow, N = dcols.shape
        self._col2im(_ptr(dcols), _ptr(dx), G, kh, kw, Cg, oh, ow, N, dx.shape[1],
                     dx.shape[2])


_MASK64 = (1 << 64) - 1


def kernels() -> _Kernels:
    """The compiled kernels (the extension is loaded on first use)."""
    global _kernels
    if _kernels is None:
        _kernels = _Kernels(_SPEC.origin)
    return _kernels


# ----------------------------------------------------------------------------- NumPy's memory


def cache_numpy_memory(max_bytes: int) -> None:
    """Make NumPy keep freed blocks of 1 MB or more, up to `max_bytes` in all, and hand them
    to later requests of about their size, in the calling thread's context.

    Why: glibc returns such blocks to the system when they are freed (unmapped, or trimmed
    from the heap's top), so every training step page-faults its temporaries in again: 8–15
    thousand faults and ~40 ms a step on the Transformer benchmark (benchmarks/RESULTS.md).
    Like torch's caching allocator, this trades up to `max_bytes` of held memory for that.
    NumPy keeps its memory handler in a context variable, so other threads keep NumPy's own
    allocator; each array is freed by the handler that allocated it.
    """
    if not _AVAILABLE:
        raise RuntimeError("cache_numpy_memory: shenjing's C extension was not built")
    if not isinstance(max_bytes, int) or max_bytes < 0:
        raise ValueError(f"cache_numpy_memory: max_bytes must be an int >= 0, got {max_bytes!r}")
    get = ctypes.pythonapi.PyCapsule_GetPointer
    get.restype, get.argtypes = ctypes.c_void_p, [ctypes.py_object, ctypes.c_char_p]
    _cache_lib().install_numpy_cache(get(np._core._multiarray_umath._ARRAY_API, None), max_bytes)


def numpy_cache_bytes() -> int:
    """Bytes of freed NumPy blocks the cache holds now."""
    return int(_cache_lib().numpy_cache_bytes()) if _AVAILABLE else 0


def release_numpy_cache() -> None:
    """Give every block the cache holds back to the system (through NumPy's allocator)."""
    if _AVAILABLE:
        _cache_lib().release_numpy_cache()


@functools.cache
def _cache_lib():
    """The extension's block-cache functions. A PyDLL holds the GIL during calls, which
    install_numpy_cache needs (it calls the Python C API and may set an exception)."""
    lib = ctypes.PyDLL(_SPEC.origin)
    lib.install_numpy_cache.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    lib.install_numpy_cache.restype = ctypes.c_int
    lib.numpy_cache_bytes.restype = ctypes.c_size_t
    lib.release_numpy_cache.restype = None
    return lib


def _cache_mb_from_env() -> int:
    value = os.environ.get("SHENJING_NUMPY_CACHE_MB", "64")
    if not value.isdigit():
        raise ValueError(f"SHENJING_NUMPY_CACHE_MB must be a whole number of megabytes "
                         f"(0 turns the cache off), got {value!r}")
    return int(value) << 20


if _enabled and (_startup_cache := _cache_mb_from_env()) > 0:
    cache_numpy_memory(_startup_cache)
