"""Memory reuse in the convolution and pooling kernels (issue 12, peak memory).

* The scratch pool (ops/window.py) hands a freed buffer to a request of another shape and
  dtype, never a buffer that any array or view still uses, and stays under its limit.
* Convolutions whose columns are big rebuild them in backward from the saved input frame:
  the gradients are the same bits as with the columns held, against torch too, and an
  in-place change of a saved input frame is refused as torch refuses it.
* NumPy's block cache (shenjing.compiled.cache_numpy_memory) reuses freed big blocks,
  keeps small ones out, stays under its cap, never hands calloc a dirty block, and frees
  arrays in the thread that drops them; other threads keep NumPy's own allocator.
"""

from __future__ import annotations

import numpy as np
import pytest

import shenjing as sj
from shenjing import nn
from shenjing.ops import conv, window


@pytest.fixture
def pool():
    return window._Scratch()


def _address(a) -> int:
    """Where an array's memory starts (holding a reference to its buffer would keep the
    buffer taken)."""
    return a.__array_interface__["data"][0]


def test_a_freed_buffer_serves_another_shape_and_dtype(pool):
    a = pool.empty((256, 1024), np.float32)  # 1 MB
    freed = _address(a)
    del a
    b = pool.empty((500, 500), np.float64)  # 2 MB: too big for it, a new buffer
    c = pool.empty((300, 1000), np.float32)  # 1.2 MB > 1 MB: new too
    d = pool.empty((128, 1024), np.float64)  # exactly 1 MB: the freed one
    assert _address(d) == freed and d.shape == (128, 1024) and d.dtype == np.float64
    assert freed not in (_address(b), _address(c))
    assert not (np.shares_memory(b, c) or np.shares_memory(c, d) or np.shares_memory(b, d))


def test_a_buffer_in_use_through_any_view_is_never_handed_out(pool):
    a = pool.empty((512, 512), np.float32)
    view = a.T[::2]  # a view of a view keeps the buffer taken
    del a
    b = pool.empty((512, 512), np.float32)
    assert not np.shares_memory(b, view)
    del view
    c = pool.empty((1 << 18,), np.float32)  # now free again: reused
    assert not np.shares_memory(c, b) and len(pool.bufs) == 2


def test_small_requests_and_buffers_twice_too_big_are_not_pooled(pool):
    small = pool.empty((10, 10), np.float32)
    assert small.base is None and pool.nbytes == 0
    big = pool.empty((4 << 20,), np.uint8)
    freed = _address(big)
    del big
    whole = pool.empty((1 << 20,), np.float32)  # 4 MB into the 4 MB buffer
    assert _address(whole) == freed
    del whole
    quarter = pool.empty((256, 1024), np.float32)  # 1 MB would waste three quarters of it
    assert _address(quarter) != freed


def test_the_pool_drops_free_buffers_to_stay_under_its_limit(pool):
    pool.limit = 3 << 20
    a = pool.empty((1 << 20,), np.uint8)
    b = pool.empty((2 << 20,), np.uint8)
    del b  # free but too big for the next request (more than twice its size): dropped
    c = pool.empty((768 << 10,), np.uint8)  # under min_bytes: not pooled
    d = pool.empty((1 << 20,), np.float32)  # 4 MB: over the limit unless b's buffer goes
    assert sorted(x.nbytes for x in pool.bufs) == [1 << 20, 4 << 20]
    assert pool.nbytes == 5 << 20 and c.base is None
    assert not np.shares_memory(a, d)


def _conv_grads(x, recompute: bool, monkeypatch):
    monkeypatch.setattr(conv, "_RECOMPUTE_BYTES", 0 if recompute else 1 << 62)
    sj.manual_seed(0)
    layers = nn.Sequential(nn.Conv2d(3, 8, 5, stride=2, padding=2), nn.ReLU(),
                           nn.Conv2d(8, 4, 3, dilation=2))
    xs = sj.tensor(x, requires_grad=True)
    layers(xs).square().sum().backward()
    return [xs.grad.numpy()] + [p.grad.numpy() for p in layers.parameters()], layers


def test_rebuilt_columns_give_the_held_columns_bits_and_torch_s_gradients(monkeypatch):
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).standard_normal((5, 3, 19, 17)).astype(np.float32)
    held, _ = _conv_grads(x, False, monkeypatch)
    rebuilt, layers = _conv_grads(x, True, monkeypatch)
    for a, b in zip(held, rebuilt):
        np.testing.assert_array_equal(a, b)
    t = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 5, stride=2, padding=2), torch.nn.ReLU(),
                            torch.nn.Conv2d(8, 4, 3, dilation=2))
    t.load_state_dict({k: torch.from_numpy(v.numpy().copy())
                       for k, v in layers.state_dict().items()})
    tx = torch.tensor(x, requires_grad=True)
    t(tx).square().sum().backward()
    expected = [tx.grad] + [p.grad for p in t.parameters()]
    for a, b in zip(rebuilt, expected):
        np.testing.assert_allclose(a, b.numpy(), rtol=2e-4, atol=2e-4)


def test_a_saved_input_frame_changed_in_place_is_refused(monkeypatch):
    """The second conv saves its input (the first conv's output memory) instead of
    columns: changing that input before backward must raise, not give wrong gradients."""
    monkeypatch.setattr(conv, "_RECOMPUTE_BYTES", 0)
    first, second = nn.Conv2d(2, 3, 3), nn.Conv2d(3, 2, 3)
    h = first(sj.tensor(np.ones((2, 2, 9, 9), np.float32)))
    y = second(h).sum()
    with sj.no_grad():
        h.mul_(2.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.backward()


# ----------------------------------------------------------------------------- NumPy's memory


def _compiled_or_skip():
    from shenjing import compiled
    if not compiled.available():
        pytest.skip("shenjing._ckernels was not built (no C compiler at install)")
    return compiled


@pytest.fixture
def numpy_cache():
    """The block cache with a known cap, emptied before and after."""
    compiled = _compiled_or_skip()
    compiled.cache_numpy_memory(64 << 20)
    compiled.release_numpy_cache()
    yield compiled
    compiled.release_numpy_cache()
    compiled.cache_numpy_memory(compiled._cache_mb_from_env())


def test_freed_big_blocks_are_reused_and_small_ones_are_not_kept(numpy_cache):
    assert np._core.multiarray.get_handler_name() == "shenjing_block_cache"
    a = np.full(1 << 20, 7, np.float32)  # 4 MB
    where = _address(a)
    del a
    assert numpy_cache.numpy_cache_bytes() == 4 << 20
    b = np.empty((1000, 1000), np.float32)  # 4,000,000 bytes: within 1/8 of the block
    assert _address(b) == where and numpy_cache.numpy_cache_bytes() == 0
    b[...] = 1.5  # the reused block is fully usable
    assert float(b.sum(dtype=np.float64)) == 1.5e6
    del b
    small = np.ones(1000)
    del small
    assert numpy_cache.numpy_cache_bytes() == 4_000_000  # b's size, not the small one's
    c = np.empty(1 << 18, np.float32)  # 1 MB: too small for the 4 MB block
    assert _address(c) != where


def test_the_cache_stays_under_its_cap_and_zeroed_arrays_are_zero(numpy_cache):
    numpy_cache.cache_numpy_memory(6 << 20)
    blocks = [np.ones(1 << 20, np.float32) for _ in range(3)]  # 3 x 4 MB
    del blocks
    assert numpy_cache.numpy_cache_bytes() == 4 << 20  # the second would exceed 6 MB
    z = np.zeros(1 << 20, np.float32)  # calloc: never a dirty cached block
    assert not z.any()


def test_arrays_freed_in_other_threads_and_made_there(numpy_cache):
    import threading
    arrays = [np.full(1 << 19, i, np.float32) for i in range(8)]
    made = []

    def worker():
        arrays.clear()  # freed here, by the handler that allocated them (this cache)
        made.append(np.ones(1 << 19, np.float32))  # this thread: NumPy's own handler

    t = threading.Thread(target=worker)
    t.start()
    t.join()
    assert numpy_cache.numpy_cache_bytes() == 8 * (2 << 20)
    assert np._core.multiarray.get_handler_name(made[0]) == "default_allocator"


def test_bad_cache_arguments_are_refused_at_the_call(monkeypatch):
    compiled = _compiled_or_skip()
    with pytest.raises(ValueError, match="max_bytes must be an int >= 0"):
        compiled.cache_numpy_memory(-1)
    monkeypatch.setenv("SHENJING_NUMPY_CACHE_MB", "lots")
    with pytest.raises(ValueError, match="SHENJING_NUMPY_CACHE_MB must be a whole number"):
        compiled._cache_mb_from_env()
