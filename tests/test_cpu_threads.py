"""shenjing.cpu_threads and the kernels split over it (conv, pool, relu).

Small inputs never reach the threaded paths on their own (a size threshold protects them from
the hand-off cost), so the `forced` fixture lowers the thresholds and block sizes: every
kernel below then really runs in many blocks on two threads. Each case runs with 1 and 2
threads and must match the 1-thread result (itself checked against PyTorch in
test_conv.py / test_pool.py) bit for bit, or to float32 rounding where a GEMM's reduction is
split (the weight gradient is summed over parts of the batch).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import numpy as np
import pytest

import shenjing as sj
from shenjing import cpu_threads
from shenjing.nn import functional as F
from shenjing.ops import conv as conv_ops
from shenjing.ops import pool as pool_ops
from shenjing.ops import window as window_ops


@pytest.fixture
def forced(monkeypatch):
    """Thresholds at zero and tiny blocks, so every kernel splits into many blocks."""
    monkeypatch.setattr(cpu_threads, "MIN_SPLIT_BYTES", 0)
    monkeypatch.setattr(cpu_threads, "BLOCK_BYTES", 256)
    monkeypatch.setattr(pool_ops, "_BLOCK_BYTES", 256)
    monkeypatch.setattr(conv_ops, "_CHUNK_BYTES", 256)
    monkeypatch.setattr(window_ops, "_TILE_BYTES", 256)
    monkeypatch.setattr(window_ops, "_TILE_CHANNELS", 3)
    before = sj.get_num_threads()
    yield
    sj.set_num_threads(before)


def _run(threads: int, fn, *arrays, seed: int = 0):
    """fn on fresh leaf tensors with `threads`; returns (output, input grads) as arrays,
    the backward taken with a random upstream gradient."""
    sj.set_num_threads(threads)
    leaves = [sj.tensor(a, requires_grad=True) for a in arrays]
    out = fn(*leaves)
    up = np.random.default_rng(seed).standard_normal(out.shape).astype(out.numpy().dtype)
    out.backward(sj.from_numpy(up))
    return out.numpy().copy(), [t.grad.numpy().copy() for t in leaves]


def _compare(fn, arrays, exact: bool) -> None:
    out1, grads1 = _run(1, fn, *arrays)
    out2, grads2 = _run(2, fn, *arrays)
    assert out2.dtype == out1.dtype == arrays[0].dtype
    for a, b in zip([out1, *grads1], [out2, *grads2]):
        if exact:
            np.testing.assert_array_equal(a, b)
        else:
            np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-5)


def _rand(*shape, seed=1):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


CONV2D_CASES = [
    dict(x=(5, 3, 9, 8), w=(4, 3, 3, 3), kw={}),
    dict(x=(4, 2, 11, 10), w=(6, 2, 3, 2), kw=dict(stride=2, padding=1)),
    dict(x=(3, 4, 10, 9), w=(4, 2, 3, 3), kw=dict(padding=(2, 1), dilation=2, groups=2)),
    dict(x=(6, 1, 12, 12), w=(8, 1, 5, 5), kw=dict(stride=(1, 3), padding=2), bias=False),
    dict(x=(2, 3, 7, 7), w=(5, 3, 7, 7), kw={}),  # a single output row
]


@pytest.mark.parametrize("case", CONV2D_CASES)
def test_conv2d_threads_match_one_thread(forced, case):
    x, w = _rand(*case["x"]), _rand(*case["w"], seed=2)
    if case.get("bias", True):
        b = _rand(case["w"][0], seed=3)
        _compare(lambda x, w, b: F.conv2d(x, w, b, **case["kw"]), [x, w, b], exact=False)
    else:
        _compare(lambda x, w: F.conv2d(x, w, **case["kw"]), [x, w], exact=False)


@pytest.mark.parametrize("kw", [{}, dict(stride=2, padding=2, dilation=2), dict(groups=3)])
def test_conv1d_threads_match_one_thread(forced, kw):
    x, w, b = _rand(4, 6, 23), _rand(9, 6 // kw.get("groups", 1), 4, seed=2), _rand(9, seed=3)
    _compare(lambda x, w, b: F.conv1d(x, w, b, **kw), [x, w, b], exact=False)


def test_conv1d_on_a_transposed_embedding_matches_one_thread(forced):
    """The TextCNN shape: Conv1d over (N, E, T), a transposed view of (N, T, E) memory."""
    emb, w, b = _rand(4, 30, 10), _rand(7, 10, 3, seed=2), _rand(7, seed=3)
    _compare(lambda e, w, b: F.conv1d(e.transpose(1, 2), w, b, padding=1), [emb, w, b],
             exact=False)


def test_threaded_conv_matches_torch(forced):
    torch = pytest.importorskip("torch")
    x, w, b = _rand(6, 3, 13, 12), _rand(8, 3, 3, 3, seed=2), _rand(8, seed=3)
    out, (gx, gw, gb) = _run(2, lambda x, w, b: F.conv2d(x, w, b, padding=1), x, w, b)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    tout = torch.nn.functional.conv2d(tx, tw, tb, padding=1)
    tout.backward(torch.from_numpy(
        np.random.default_rng(0).standard_normal(out.shape).astype(np.float32)))
    for mine, ref in [(out, tout), (gx, tx.grad), (gw, tw.grad), (gb, tb.grad)]:
        np.testing.assert_allclose(mine, ref.detach().numpy(), rtol=1e-4, atol=1e-4)


POOL_CASES = [
    (F.max_pool2d, (4, 5, 12, 12), dict(kernel_size=2)),  # windows tile the input
    (F.max_pool2d, (3, 6, 13, 11), dict(kernel_size=3, stride=2)),  # overlapping (AlexNet)
    (F.max_pool2d, (3, 4, 10, 10), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
    (F.max_pool2d, (2, 4, 11, 11), dict(kernel_size=2, stride=3)),  # gaps between windows
    (F.max_pool2d, (2, 3, 9, 9), dict(kernel_size=2, dilation=2)),
    (F.max_pool1d, (3, 8, 40), dict(kernel_size=20)),  # large tiled windows (max over time)
    (F.max_pool1d, (3, 8, 21), dict(kernel_size=3, stride=2, padding=1)),
    (F.avg_pool2d, (3, 5, 12, 10), dict(kernel_size=3, stride=2, padding=1)),
]


@pytest.mark.parametrize("pool, shape, kw", POOL_CASES)
def test_pool_threads_match_one_thread(forced, pool, shape, kw):
    _compare(lambda x: pool(x, **kw), [_rand(*shape)], exact=True)


def test_max_pool_ties_route_like_one_thread(forced):
    """Ties across overlapping windows: each window's gradient goes to its first maximum."""
    x = np.random.default_rng(4).integers(0, 3, (2, 6, 9, 9)).astype(np.float32)
    _compare(lambda x: F.max_pool2d(x, 3, 2), [x], exact=True)


def test_relu_threads_match_one_thread(forced):
    x = _rand(6, 5, 7, 9)
    _compare(lambda x: F.relu(x), [x], exact=True)
    # a permuted (batch-innermost) layout, as conv outputs have, and a broadcast gradient
    xt = np.ascontiguousarray(x.transpose(1, 2, 3, 0)).transpose(3, 0, 1, 2)
    _compare(lambda x: F.relu(x * 2.0), [xt], exact=True)
    _compare(lambda x: F.relu(x).sum(), [x], exact=True)


def test_cnn_training_step_same_with_both_thread_counts(forced):
    """conv -> relu -> pool -> conv -> relu -> pool -> linear, the W1 shape in miniature."""
    x = _rand(8, 1, 14, 14)
    w1, b1 = _rand(4, 1, 3, 3, seed=2), _rand(4, seed=3)
    w2, b2 = _rand(6, 4, 3, 3, seed=4), _rand(6, seed=5)
    fc = _rand(10, 6 * 2 * 2, seed=6)

    def net(x, w1, b1, w2, b2, fc):
        h = F.max_pool2d(F.relu(F.conv2d(x, w1, b1)), 2)
        h = F.max_pool2d(F.relu(F.conv2d(h, w2, b2)), 2)
        return h.reshape(8, -1) @ fc.t()

    _compare(net, [x, w1, b1, w2, b2, fc], exact=False)


# ----------------------------------------------------------------------------- the pool itself


def test_parallel_for_covers_every_index_once(forced):
    sj.set_num_threads(2)
    for n, grain in [(1, 1), (2, 1), (7, 1), (10, 3), (100, 7), (5, 100)]:
        seen: list = []
        cpu_threads.parallel_for(lambda lo, hi, seen=seen: seen.extend(range(lo, hi)), n,
                                 grain=grain)
        assert sorted(seen) == list(range(n))


def test_parallel_for_uses_a_second_thread(forced):
    sj.set_num_threads(2)
    names: set = set()
    barrier = threading.Barrier(2, timeout=10)

    def work(lo, hi):
        names.add(threading.current_thread().name)
        barrier.wait()  # only passes if two ranges run at the same time

    cpu_threads.parallel_for(work, 2)
    assert len(names) == 2
    sj.set_num_threads(1)
    names.clear()
    cpu_threads.parallel_for(lambda lo, hi: names.add(threading.current_thread().name), 4)
    assert names == {threading.current_thread().name}


def test_parallel_for_reraises_and_stays_usable(forced):
    sj.set_num_threads(2)

    def boom(lo, hi):
        if lo > 0:
            raise KeyError("from a worker")

    with pytest.raises(KeyError, match="from a worker"):
        cpu_threads.parallel_for(boom, 4)
    seen: list = []
    cpu_threads.parallel_for(lambda lo, hi: seen.extend(range(lo, hi)), 4)
    assert sorted(seen) == [0, 1, 2, 3]


def test_nested_parallel_for_runs_inline(forced):
    sj.set_num_threads(2)
    seen: list = []

    def outer(lo, hi):
        me = threading.current_thread().name
        cpu_threads.parallel_for(
            lambda a, b: seen.append((lo, a, b, threading.current_thread().name == me)), 4)

    cpu_threads.parallel_for(outer, 2)
    # each inner loop ran whole, in grain-sized ranges, on its caller's thread
    assert sorted(seen) == [(lo, i, i + 1, True) for lo in (0, 1) for i in range(4)]


def test_blas_runs_one_thread_inside_gemm_sections_and_is_restored(forced):
    threadpoolctl = pytest.importorskip("threadpoolctl")
    if not cpu_threads.blas_controllable():
        pytest.skip("BLAS thread count not controllable here")
    sj.set_num_threads(2)

    def blas_threads():  # of the library shenjing controls (NumPy's; scipy's may be loaded)
        return next(i["num_threads"] for i in threadpoolctl.threadpool_info()
                    if i["filepath"] == cpu_threads._BLAS.filepath)

    with threadpoolctl.threadpool_limits(2, user_api="blas"):
        inside: list = []
        cpu_threads.parallel_for(lambda lo, hi: inside.append(blas_threads()), 2, blas=False)
        assert inside == [1, 1]
        assert blas_threads() == 2
        cpu_threads.parallel_for(lambda lo, hi: inside.append(blas_threads()), 2)
        assert inside == [1, 1, 2, 2]


def test_elementwise_blocks_follow_memory_layout(forced):
    sj.set_num_threads(2)
    a = np.arange(4 * 5 * 6 * 7, dtype=np.float32).reshape(5, 6, 7, 4).transpose(3, 0, 1, 2)
    out = np.empty_like(a)
    blocks: list = []

    def double(o, x):
        blocks.append(o.shape)
        np.multiply(x, 2, out=o)

    assert cpu_threads.elementwise(double, out, a) is out
    np.testing.assert_array_equal(out, a * 2)
    assert len(blocks) > 1 and all(s[1] < 5 and s[0] == 4 for s in blocks)  # split on axis 1


def test_set_num_threads_checks_its_argument():
    before = sj.get_num_threads()
    with pytest.raises(ValueError, match="positive"):
        sj.set_num_threads(0)
    with pytest.raises(TypeError, match="int"):
        sj.set_num_threads(2.0)
    with pytest.raises(TypeError, match="int"):
        sj.set_num_threads(True)
    assert sj.get_num_threads() == before
    sj.set_num_threads(3)
    assert sj.get_num_threads() == 3
    sj.set_num_threads(before)


def test_small_inputs_do_not_split():
    assert not cpu_threads.worth_splitting(1024)
    seen: list = []
    cpu_threads.elementwise(lambda o, x: seen.append(o.shape), np.empty((4, 4)), np.ones((4, 4)))
    assert seen == [(4, 4)]


def test_two_program_threads_calling_at_once_both_finish(forced):
    """A second caller while a section runs gets its ranges run inline, never mixed up."""
    sj.set_num_threads(2)
    results: dict = {}

    def caller(key):
        seen: list = []
        for _ in range(50):
            cpu_threads.parallel_for(lambda lo, hi: seen.extend(range(lo, hi)), 16, grain=2)
        results[key] = sorted(seen)

    threads = [threading.Thread(target=caller, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert results == {k: sorted(list(range(16)) * 50) for k in range(3)}


def _threads_in_fresh_process(env: dict, block_threadpoolctl: bool) -> int:
    code = ("import sys\n" + ("sys.modules['threadpoolctl'] = None\n" if block_threadpoolctl
                               else "") + "import shenjing; print(shenjing.get_num_threads())")
    run_env = {k: v for k, v in os.environ.items() if k != "SHENJING_NUM_THREADS"}
    out = subprocess.run([sys.executable, "-c", code], env={**run_env, **env},
                         capture_output=True, text=True, check=True)
    return int(out.stdout.split()[-1])


def test_default_thread_count():
    # without threadpoolctl the BLAS threads cannot be held back: never fight them
    assert _threads_in_fresh_process({}, block_threadpoolctl=True) == 1
    assert _threads_in_fresh_process({"SHENJING_NUM_THREADS": "3"}, True) == 3
    assert _threads_in_fresh_process({"OPENBLAS_NUM_THREADS": "1"}, False) == 1
    # opt-in: off by default even where threadpoolctl could hold the BLAS threads back
    assert _threads_in_fresh_process({}, block_threadpoolctl=False) == 1
    assert _threads_in_fresh_process({"SHENJING_NUM_THREADS": "2"}, False) == 2
