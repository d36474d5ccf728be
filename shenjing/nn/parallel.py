"""DistributedDataParallel: one model replica per MPI rank, gradients averaged in backward.

How it works, as PyTorch's reducer, on shenjing's public autograd:

* At construction rank 0's parameters and buffers are broadcast, so every replica starts equal.
* The parameters are split into buckets in reverse registration order (roughly the order in
  which backward produces their gradients); the first bucket is small (1 MiB) so that
  communication starts early, later ones hold up to `bucket_cap_mb`.
* As soon as every parameter of a bucket has its whole gradient for this backward, the bucket
  is copied into one flat array and its non-blocking MPI all-reduce (Iallreduce) starts, while
  backward goes on computing earlier layers; buckets start in index order, the same on every
  rank, as MPI requires. When the last gradient is in, the reducer waits for the buckets
  (under the process group's timeout), divides by the world size and writes every `p.grad`,
  all inside `loss.backward()`, so `optimizer.step()` sees averaged gradients, as with torch.
* Knowing when a gradient is whole (`reducer_mode`):
  - "hooks" (chosen when `Tensor.register_hook` exists): a hook on each parameter sees each
    gradient contribution right after the op that produced it. After each forward the
    reducer counts, by walking the autograd graph from the outputs, how many contributions
    each parameter will receive (a weight used at every step of an LSTM gets one per step;
    an engine that calls leaf hooks once with the summed gradient, as torch does, is detected
    and counted as one). The last contribution completes the parameter. This overlaps.
  - "nodes" (fallback): during forward the wrapped module sees each parameter through an
    identity node whose backward runs once with the summed gradient. Always exact, but on
    today's engine (depth-first order) those nodes run after the rest of backward, so the
    all-reduces start at its end: no overlap.
* `no_sync()`: forwards inside it are plain, so their gradients only accumulate locally; the
  next synchronized backward all-reduces the accumulated `p.grad` plus its own gradient.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import distributed as dist
from ..autograd import Function, is_grad_enabled
from .module import Module

if TYPE_CHECKING:
    from .. import Tensor

__all__ = ["DistributedDataParallel"]

_FIRST_BUCKET_BYTES = 1 << 20  # torch's dist._DEFAULT_FIRST_BUCKET_BYTES


class _GradReady(Function):
    """Identity on a parameter; backward hands the parameter's summed gradient to the reducer
    and returns none to the engine (the reducer writes the averaged `.grad` itself)."""

    op_name = "ddp_grad_ready"

    @staticmethod
    def forward(ctx, array, reducer=None, index=0):
        ctx.reducer = reducer
        ctx.index = index
        return array.view()

    @staticmethod
    def backward(ctx, grad):
        ctx.reducer.add_gradient(ctx.index, grad, complete=True)
        return None


class _Bucket:
    """Consecutive parameters (one dtype) all-reduced as one flat array."""

    def __init__(self, indices: list[int], sizes: list[int], dtype: np.dtype) -> None:
        self.indices = indices
        self.offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(int).tolist()
        self.buffer = np.zeros(self.offsets[-1], dtype=dtype)
        self.pending = len(indices)
        self.result: np.ndarray | None = None
        self.request: Any = None


class _Reducer:
    """Collects ready gradients into buckets and all-reduces each bucket as soon as it fills."""

    def __init__(self, params: list[Tensor], bucket_cap_bytes: int) -> None:
        self.params = params
        self.buckets: list[_Bucket] = []
        self.where: dict[int, tuple[_Bucket, int]] = {}
        self._build(bucket_cap_bytes)
        self.got = [False] * len(params)
        self.early_launches = 0  # over the reducer's life, for tests and benchmarks
        self.ready = 0
        self.next_bucket = 0
        self.active = False

    def _build(self, cap: int) -> None:
        current: list[int] = []
        size = 0
        limit = min(_FIRST_BUCKET_BYTES, cap)
        for index in reversed(range(len(self.params))):
            p = self.params[index]
            nbytes = p.numpy().nbytes
            if current and (size + nbytes > limit or p.dtype != self.params[current[0]].dtype):
                self._add_bucket(current)
                current, size, limit = [], 0, cap
            current.append(index)
            size += nbytes
        if current:
            self._add_bucket(current)

    def _add_bucket(self, indices: list[int]) -> None:
        sizes = [self.params[i].numpy().size for i in indices]
        bucket = _Bucket(indices, sizes, self.params[indices[0]].dtype)
        for position, i in enumerate(indices):
            self.where[i] = (bucket, position)
        self.buckets.append(bucket)

    def prepare(self, expected_uses: list[int] | None = None) -> None:
        """Start a new synchronized iteration; refuse when the last one stopped half-way.

        `expected_uses[i]`: how many gradient contributions parameter i will receive in this
        backward (hook mode); None when each parameter's gradient arrives whole (node mode).
        """
        if self.active and 0 < self.ready < len(self.params):
            missing = [i for i, got in enumerate(self.got) if not got]
            raise RuntimeError(
                f"DistributedDataParallel: expected to have finished reduction in the prior "
                f"iteration before starting a new one; {len(self.params) - self.ready} of "
                f"{len(self.params)} parameters got no gradient in the last backward (e.g. "
                f"parameter indices {missing[:5]} in model.parameters() order, trainable "
                f"only). Every parameter that requires grad must take part in the loss; "
                f"freeze unused ones with requires_grad_(False)."
            )
        for bucket in self.buckets:
            bucket.pending = len(bucket.indices)
            bucket.request = bucket.result = None
        self.got = [False] * len(self.params)
        self.started = [False] * len(self.params)
        self.expected = expected_uses
        self.seen = [0] * len(self.params)
        self.unused_marked = False
        self.ready = 0
        self.next_bucket = 0
        self.active = True

    def hook_contribution(self, index: int, grad: np.ndarray) -> Any:
        """One use's gradient of parameter `index` (hook mode). Returns None (the engine
        accumulates `.grad` locally as usual), except in the call that completes the reduction,
        which has already written every averaged `.grad` and so returns zeros to add."""
        if not self.active or self.expected is None:
            return None
        if not self.unused_marked:  # parameters outside this graph count as ready, gradient 0
            self.unused_marked = True
            for i, uses in enumerate(self.expected):
                if uses == 0:
                    self.add_gradient(i, None, complete=True)
        self.seen[index] += 1
        if self.seen[index] > self.expected[index]:
            raise RuntimeError(
                f"DistributedDataParallel: parameter {index} (model.parameters() order, "
                f"trainable only) received more gradients ({self.seen[index]}) than its uses "
                f"in the model's forward ({self.expected[index]}); a parameter used outside "
                f"the wrapped module's forward (e.g. in the loss) cannot be synchronized"
            )
        self.add_gradient(index, grad, complete=self.seen[index] == self.expected[index])
        if self.active:
            return None
        import shenjing

        return shenjing.from_numpy(np.zeros_like(grad))

    def add_gradient(self, index: int, grad: np.ndarray | None, complete: bool) -> None:
        """Add a gradient of parameter `index` into its bucket slot (the first one also adds
        the `.grad` accumulated before this backward); `complete`: nothing more will come."""
        bucket, position = self.where[index]
        slot = bucket.buffer[bucket.offsets[position]:bucket.offsets[position + 1]]
        if not self.started[index]:
            self.started[index] = True
            previous = self.params[index].grad
            if grad is None:
                slot[...] = 0
            else:
                slot[...] = grad.reshape(-1)
            if previous is not None:
                slot += previous.numpy().reshape(-1)
        elif grad is not None:
            slot += grad.reshape(-1)
        if complete:
            self._mark_ready(index, bucket)

    def _mark_ready(self, index: int, bucket: _Bucket) -> None:
        bucket.pending -= 1
        self.got[index] = True
        self.ready += 1
        while self.next_bucket < len(self.buckets) and \
                self.buckets[self.next_bucket].pending == 0:
            ready = self.buckets[self.next_bucket]
            ready.result, ready.request = dist.all_reduce_array(ready.buffer)
            self.next_bucket += 1
            if self.ready < len(self.params):
                self.early_launches += 1  # started while backward still runs: overlap
        for launched in self.buckets[:self.next_bucket]:
            launched.request.Test()  # MPI moves non-blocking collectives on when called
        if self.ready == len(self.params):
            self._finish()

    def _finish(self) -> None:
        import shenjing

        dist.wait_all([b.request for b in self.buckets],
                      "DistributedDataParallel gradient all-reduce")
        world = dist.get_world_size()
        for bucket in self.buckets:
            averaged = bucket.result
            averaged /= world
            for position, index in enumerate(bucket.indices):
                p = self.params[index]
                lo, hi = bucket.offsets[position], bucket.offsets[position + 1]
                p.grad = shenjing.from_numpy(averaged[lo:hi].reshape(p.shape).copy())
            bucket.result = bucket.request = None
        self.active = False


class DistributedDataParallel(Module):
    """Data parallelism over the ranks of `shenjing.distributed` (torch's class and names).

    Args:
        module: the model; every rank builds it the same way.
        broadcast_buffers: copy rank 0's buffers (e.g. BatchNorm statistics) to every rank
            at each forward, as torch.
        bucket_cap_mb: size of the gradient buckets after the first (1 MiB) one.
        device_ids, output_device, dim, process_group, find_unused_parameters,
            gradient_as_bucket_view, static_graph: accepted for compatibility (CPU, one group).
    """

    def __init__(self, module: Module, device_ids: Any = None, output_device: Any = None,
                 dim: int = 0, broadcast_buffers: bool = True, process_group: Any = None,
                 bucket_cap_mb: float = 25.0, find_unused_parameters: bool = False,
                 gradient_as_bucket_view: bool = False, static_graph: bool = False) -> None:
        super().__init__()
        if not isinstance(module, Module):
            raise TypeError(f"DistributedDataParallel: module must be a shenjing.nn.Module, "
                            f"got {type(module).__name__}")
        if not dist.is_initialized():
            raise RuntimeError("DistributedDataParallel: the default process group is not "
                               "initialized; call shenjing.distributed.init_process_group("
                               "backend='mpi') first (and start the job with mpirun)")
        if not bucket_cap_mb > 0:
            raise ValueError(f"DistributedDataParallel: bucket_cap_mb must be positive, got "
                             f"{bucket_cap_mb!r}")
        self.module = module
        self.broadcast_buffers = bool(broadcast_buffers)
        self.require_backward_grad_sync = True
        params = [p for p in module.parameters() if p.requires_grad]
        reducer = _Reducer(params, int(bucket_cap_mb * 2**20))
        object.__setattr__(self, "_reducer", reducer)
        self._sync_from_rank0(list(module.parameters()) + self._buffers_list())
        self._hook_handles: list = []
        per_use = _leaf_hooks_fire_per_use()
        self.reducer_mode = "nodes" if per_use is None else "hooks"
        self._hooks_per_use = bool(per_use)
        if self.reducer_mode == "hooks":
            for index, p in enumerate(params):
                self._hook_handles.append(p.register_hook(_make_hook(reducer, index)))

    def _buffers_list(self) -> list[Tensor]:
        return [b for b in self.module.buffers() if b is not None]

    @staticmethod
    def _sync_from_rank0(tensors: list[Tensor]) -> None:
        works = [dist.broadcast(t, src=0, async_op=True) for t in tensors]
        for work in works:
            work.wait()

    @property
    def reducer_stats(self) -> dict:
        """Buckets, their sizes in bytes, how many all-reduces started while backward was
        still running (over the wrapper's life), and the readiness mode."""
        reducer = self._reducer
        return {"buckets": len(reducer.buckets),
                "bucket_bytes": [b.buffer.nbytes for b in reducer.buckets],
                "early_launches": reducer.early_launches, "mode": self.reducer_mode}

    @contextlib.contextmanager
    def no_sync(self) -> Iterator[None]:
        """Forwards (and their backwards) inside only accumulate gradients locally."""
        previous = self.require_backward_grad_sync
        self.require_backward_grad_sync = False
        try:
            yield
        finally:
            self.require_backward_grad_sync = previous

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        if self.broadcast_buffers and self.training:
            buffers = self._buffers_list()
            if buffers:
                self._sync_from_rank0(buffers)
        if not (self.require_backward_grad_sync and is_grad_enabled() and self.training):
            return self.module(*args, **kwargs)
        reducer = self._reducer
        if self.reducer_mode == "nodes":
            reducer.prepare()
            with self._parameters_seen_through_ready_nodes():
                return self.module(*args, **kwargs)
        output = self.module(*args, **kwargs)
        uses = _count_uses(_tensors_in(output), reducer.params)
        if uses is None:
            raise RuntimeError("DistributedDataParallel: cannot follow this autograd graph to "
                               "count parameter uses; set reducer_mode = 'nodes'")
        reducer.prepare(uses if self._hooks_per_use else [min(u, 1) for u in uses])
        return output

    @contextlib.contextmanager
    def _parameters_seen_through_ready_nodes(self) -> Iterator[None]:
        """Swap every module's parameters for identity views during one forward."""
        reducer = self._reducer
        views = {id(p): _GradReady.apply(p, reducer=reducer, index=i)
                 for i, p in enumerate(reducer.params)}
        swapped = []
        for module in self.module.modules():
            for name, p in module._parameters.items():
                if p is not None and id(p) in views:
                    swapped.append((module, name, p))
                    module._parameters[name] = views[id(p)]
                    object.__setattr__(module, name, views[id(p)])
        try:
            yield
        finally:
            for module, name, p in swapped:
                module._parameters[name] = p
                object.__setattr__(module, name, p)


def _make_hook(reducer: _Reducer, index: int) -> Any:
    def hook(grad: Tensor) -> Any:
        return reducer.hook_contribution(index, grad.numpy())

    return hook


def _leaf_hooks_fire_per_use() -> bool | None:
    """How this engine calls a leaf's tensor hooks: once per use of the leaf (True), once
    with the summed gradient (False, torch's way), or None when hooks or the graph walk that
    counts uses are unavailable (then DDP uses identity nodes)."""
    import shenjing

    if not hasattr(shenjing.Tensor, "register_hook"):
        return None
    leaf = shenjing.ones(2, requires_grad=True)
    calls: list[int] = []
    try:
        leaf.register_hook(lambda grad: calls.append(1))
        loss = (leaf * 2.0).sum() + (leaf * 3.0).sum()
        if _count_uses([loss], [leaf]) != [2]:
            return None  # the graph cannot be followed to count uses: use identity nodes
        loss.backward()
    except (AttributeError, NotImplementedError, RuntimeError, TypeError):
        return None
    return {1: False, 2: True}.get(len(calls))


def _tensors_in(output: Any) -> list[Tensor]:
    """The tensors in a module's output (a tensor, or nested tuples, lists and dicts)."""
    import shenjing

    if isinstance(output, shenjing.Tensor):
        return [output]
    if isinstance(output, dict):
        output = list(output.values())
    if isinstance(output, (list, tuple)):
        return [t for item in output for t in _tensors_in(item)]
    return []


def _count_uses(outputs: list[Tensor], params: list[Tensor]) -> list[int] | None:
    """How many gradient contributions each parameter gets when backward runs from the
    outputs: the edges from graph nodes to it (None when the graph cannot be followed)."""
    index_of = {id(p): i for i, p in enumerate(params)}
    uses = [0] * len(params)
    stack = [t.grad_fn for t in outputs if t.requires_grad and t.grad_fn is not None]
    seen: set[int] = set()
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        inputs = getattr(node, "inputs", None)
        needs = getattr(node, "needs_input_grad", None)
        if inputs is None or needs is None:
            return None
        for x, need in zip(inputs, needs):
            if not need or not hasattr(x, "grad_fn"):
                continue
            if x.grad_fn is None:
                if id(x) in index_of:
                    uses[index_of[id(x)]] += 1
            elif id(x.grad_fn) not in seen:
                stack.append(x.grad_fn)
    return uses
