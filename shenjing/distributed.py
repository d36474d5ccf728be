"""Data-parallel training across processes on MPI, with torch.distributed's names.

Users who outgrow one machine run on an existing, proven engine rather than a home-made one:
MPI (Open MPI from Debian, `mpi4py` from the package registry), the engine under Horovod and
ChainerMN. Start the processes with `mpirun -n N python train.py` (or `launch`), then::

    import shenjing.distributed as dist
    dist.init_process_group(backend="mpi")
    model = shenjing.nn.parallel.DistributedDataParallel(model)

Every collective waits in short, interruptible slices and gives up after the group's
`timeout` with a `DistributedTimeoutError` that names the collective, the rank and the
timeout, so a dead or hung rank makes the others exit with a clear error instead of hanging.
After such a failure the process ends through MPI_Abort at exit (a clean MPI_Finalize would wait
for the missing rank), which also makes mpirun stop the rest of the job.

Install: `apt-get install -y openmpi-bin libopenmpi-dev` and `pip install mpi4py`.
"""

from __future__ import annotations

import atexit
import datetime
import enum
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = [
    "DistributedTimeoutError",
    "ReduceOp",
    "Work",
    "all_gather",
    "all_reduce",
    "barrier",
    "broadcast",
    "destroy_process_group",
    "get_rank",
    "get_world_size",
    "init_process_group",
    "is_available",
    "is_initialized",
    "launch",
    "mpirun_command",
]

DEFAULT_TIMEOUT = datetime.timedelta(minutes=30)  # torch's default for CPU backends
_SPIN_S = 0.01  # busy polling first: as fast as MPI_Wait for small and large messages
_MAX_PAUSE_S = 0.001
INSTALL_HINT = ("install MPI with `apt-get install -y openmpi-bin libopenmpi-dev` and "
                "`pip install mpi4py`")


class DistributedTimeoutError(RuntimeError):
    """A collective did not complete within the process group's timeout."""


class ReduceOp(enum.Enum):
    """Reduction applied by `all_reduce` (torch.distributed.ReduceOp's names)."""

    SUM = "sum"
    PRODUCT = "product"
    MIN = "min"
    MAX = "max"
    AVG = "avg"  # SUM, then divided by the world size


class _Group:
    """The one process group: a private duplicate of MPI_COMM_WORLD and its timeout."""

    def __init__(self, mpi: Any, comm: Any, timeout_s: float) -> None:
        self.mpi = mpi
        self.comm = comm
        self.timeout_s = timeout_s
        self.rank = comm.Get_rank()
        self.size = comm.Get_size()


_group: _Group | None = None
_failed = False  # a collective timed out: MPI_Finalize would hang, so exit through MPI_Abort


def _mpi() -> Any:
    """The mpi4py.MPI module, initialized by us (finalized or aborted in our atexit hook)."""
    try:
        import mpi4py
    except ImportError as error:
        raise ImportError(f"shenjing.distributed needs mpi4py: {INSTALL_HINT}") from error
    mpi4py.rc.finalize = False  # we finalize ourselves, and not at all after a failure
    from mpi4py import MPI

    return MPI


def is_available() -> bool:
    """Whether mpi4py (and so the "mpi" backend) can be imported."""
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return False
    return True


def _timeout_seconds(timeout: datetime.timedelta | float | None) -> float:
    if timeout is None:
        return DEFAULT_TIMEOUT.total_seconds()
    seconds = timeout.total_seconds() if isinstance(timeout, datetime.timedelta) else timeout
    if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or not seconds > 0:
        raise ValueError(f"init_process_group: timeout must be a positive timedelta or number "
                         f"of seconds, got {timeout!r}")
    return float(seconds)


def init_process_group(backend: str = "mpi", init_method: str | None = None,
                       timeout: datetime.timedelta | float | None = None, world_size: int = -1,
                       rank: int = -1) -> None:
    """Join the group of processes mpirun started (torch's name; only backend="mpi").

    Rank and world size come from MPI; when `world_size` or `rank` is given it must agree
    with MPI's. `timeout` bounds every collective (default 30 minutes, as torch).
    """
    global _group
    if backend not in ("mpi", None):
        raise ValueError(f"init_process_group: backend {backend!r} is not supported; shenjing "
                         f"runs on MPI (backend='mpi') under mpirun")
    if init_method not in (None, "env://"):
        raise ValueError(f"init_process_group: init_method {init_method!r} is not supported; "
                         f"MPI finds its peers itself (start the processes with mpirun)")
    if _group is not None:
        raise RuntimeError("init_process_group: trying to initialize the default process group "
                           "twice; call destroy_process_group() first")
    seconds = _timeout_seconds(timeout)
    mpi = _mpi()
    if not mpi.Is_initialized():
        mpi.Init_thread(mpi.THREAD_MULTIPLE)
    comm = mpi.COMM_WORLD.Dup()
    comm.Set_errhandler(mpi.ERRORS_RETURN)
    group = _Group(mpi, comm, seconds)
    for name, given, actual in (("world_size", world_size, group.size),
                                ("rank", rank, group.rank)):
        if given not in (-1, None) and given != actual:
            comm.Free()
            raise ValueError(f"init_process_group: {name}={given} but MPI says {actual}; "
                             f"start the job with `mpirun -n {group.size}` and leave {name} "
                             f"unset")
    _group = group


def is_initialized() -> bool:
    """Whether init_process_group has been called (and not yet destroyed)."""
    return _group is not None


def _require() -> _Group:
    if _group is None:
        raise ValueError("Default process group has not been initialized, please make sure to "
                         "call init_process_group.")
    return _group


def get_rank(group: Any = None) -> int:
    """This process's rank, 0 .. world_size - 1."""
    return _require().rank


def get_world_size(group: Any = None) -> int:
    """The number of processes in the group."""
    return _require().size


def destroy_process_group(group: Any = None) -> None:
    """Leave the process group (MPI itself is finalized at exit)."""
    global _group
    current = _require()
    if not _failed:
        current.comm.Free()
    _group = None


@atexit.register
def _finish_mpi() -> None:
    """MPI_Finalize after a healthy run; MPI_Abort after a failed collective (which would make
    MPI_Finalize wait for the missing rank forever)."""
    if "mpi4py.MPI" not in sys.modules:
        return
    mpi = sys.modules["mpi4py.MPI"]
    if not mpi.Is_initialized() or mpi.Is_finalized():
        return
    if _failed:
        sys.stdout.flush()
        sys.stderr.flush()
        mpi.COMM_WORLD.Abort(1)
    mpi.Finalize()


# --------------------------------------------------------------------------- waiting

class Work:
    """A collective in flight (torch's Work): `wait()` finishes it; `is_completed()` polls."""

    def __init__(self, request: Any, what: str, finish: Any = None) -> None:
        self._request = request
        self._what = what
        self._finish = finish
        self._done = request is None

    def is_completed(self) -> bool:
        if not self._done and self._request.Test():
            self._complete()
        return self._done

    def wait(self, timeout: datetime.timedelta | float | None = None) -> bool:
        """Block until the collective completes or the timeout passes (then raise)."""
        if self._done:
            return True
        group = _require()
        seconds = group.timeout_s if timeout is None else _timeout_seconds(timeout)
        _wait_request(self._request, self._what, seconds, group)
        self._complete()
        return True

    def _complete(self) -> None:
        self._done = True
        if self._finish is not None:
            finish, self._finish = self._finish, None
            finish()


def _wait_request(request: Any, what: str, seconds: float, group: _Group) -> None:
    """Poll `request` until done: busily for the first few milliseconds (each Test lets MPI
    move the transfer on, as MPI_Wait would), then with short sleeps, so that a long wait
    costs no CPU and stays interruptible by Ctrl-C and bounded by the timeout."""
    global _failed
    started = time.monotonic()
    deadline = started + seconds
    pause = 0.0
    while not request.Test():
        now = time.monotonic()
        if now > deadline:
            _failed = True
            raise DistributedTimeoutError(
                f"shenjing.distributed: {what} on rank {group.rank} of {group.size} did not "
                f"complete within the {seconds:g} s timeout: another rank has died, hung, or "
                f"did not call the same collective. This process will exit through MPI_Abort."
            )
        if now - started > _SPIN_S:
            time.sleep(pause)
            pause = min(_MAX_PAUSE_S, pause + 0.0001)


def _array_of(tensor: Any, what: str) -> np.ndarray:
    """The contiguous ndarray under a shenjing Tensor (collectives work on CPU memory)."""
    import shenjing

    if not isinstance(tensor, shenjing.Tensor):
        raise TypeError(f"{what}: expected a shenjing Tensor, got {type(tensor).__name__}")
    return np.ascontiguousarray(tensor.numpy())


def _write_back(tensor: Any, values: np.ndarray) -> None:
    """Copy `values` into `tensor` in place, through the Tensor API (bumps its version)."""
    import shenjing

    with shenjing.no_grad():
        tensor.copy_(shenjing.from_numpy(np.ascontiguousarray(values)))


def _mpi_op(group: _Group, op: ReduceOp) -> Any:
    mpi = group.mpi
    table = {ReduceOp.SUM: mpi.SUM, ReduceOp.AVG: mpi.SUM, ReduceOp.PRODUCT: mpi.PROD,
             ReduceOp.MIN: mpi.MIN, ReduceOp.MAX: mpi.MAX}
    if not isinstance(op, ReduceOp):
        raise TypeError(f"all_reduce: op must be a ReduceOp (SUM, PRODUCT, MIN, MAX, AVG), got "
                        f"{op!r}")
    return table[op]


def _run(request: Any, what: str, finish: Any, async_op: bool) -> Work | None:
    work = Work(request, what, finish)
    if async_op:
        return work
    work.wait()
    return None


# --------------------------------------------------------------------------- collectives

def all_reduce_array(array: np.ndarray, op: ReduceOp = ReduceOp.SUM) -> tuple[np.ndarray, Any]:
    """Start a non-blocking all-reduce of a contiguous array; returns (result, MPI request).

    The building block of DistributedDataParallel's buckets; most code wants `all_reduce`.
    """
    group = _require()
    result = np.empty_like(array)
    return result, group.comm.Iallreduce(array, result, op=_mpi_op(group, op))


def all_reduce(tensor: Any, op: ReduceOp = ReduceOp.SUM, group: Any = None,
               async_op: bool = False) -> Work | None:
    """Reduce `tensor` over all ranks, in place on every rank."""
    pg = _require()
    array = _array_of(tensor, "all_reduce")
    result, request = all_reduce_array(array, op)

    def finish() -> None:
        _write_back(tensor, result / pg.size if op is ReduceOp.AVG else result)

    return _run(request, f"all_reduce of shape {array.shape}", finish, async_op)


def broadcast(tensor: Any, src: int, group: Any = None, async_op: bool = False) -> Work | None:
    """Copy rank `src`'s `tensor` into `tensor` on every rank."""
    pg = _require()
    if not isinstance(src, (int, np.integer)) or not 0 <= src < pg.size:
        raise ValueError(f"broadcast: src must be a rank in 0..{pg.size - 1}, got {src!r}")
    array = _array_of(tensor, "broadcast")
    buffer = array.copy()
    request = pg.comm.Ibcast(buffer, root=int(src))
    finish = None if pg.rank == src else (lambda: _write_back(tensor, buffer))
    return _run(request, f"broadcast of shape {array.shape} from rank {src}", finish, async_op)


def all_gather(tensor_list: list, tensor: Any, group: Any = None,
               async_op: bool = False) -> Work | None:
    """Fill `tensor_list[r]` with rank r's `tensor`, on every rank."""
    pg = _require()
    if not isinstance(tensor_list, list) or len(tensor_list) != pg.size:
        raise ValueError(f"all_gather: tensor_list must be a list of {pg.size} tensors (one per "
                         f"rank), got {type(tensor_list).__name__} of length "
                         f"{len(tensor_list) if hasattr(tensor_list, '__len__') else '?'}")
    array = _array_of(tensor, "all_gather")
    for r, out in enumerate(tensor_list):
        if tuple(_array_of(out, "all_gather").shape) != array.shape:
            raise ValueError(f"all_gather: tensor_list[{r}] has shape {tuple(out.shape)}, "
                             f"expected {array.shape} (the input's shape)")
    gathered = np.empty((pg.size,) + array.shape, dtype=array.dtype)
    request = pg.comm.Iallgather(array, gathered)

    def finish() -> None:
        for r, out in enumerate(tensor_list):
            _write_back(out, gathered[r])

    return _run(request, f"all_gather of shape {array.shape}", finish, async_op)


def barrier(group: Any = None, async_op: bool = False) -> Work | None:
    """Wait until every rank has reached the barrier."""
    pg = _require()
    return _run(pg.comm.Ibarrier(), "barrier", None, async_op)


def wait_all(requests: Sequence[Any], what: str) -> None:
    """Wait for several MPI requests under the group's timeout (DDP's end of backward)."""
    group = _require()
    deadline_s = group.timeout_s
    started = time.monotonic()
    for request in requests:
        left = max(deadline_s - (time.monotonic() - started), 1e-3)
        _wait_request(request, what, left, group)


# --------------------------------------------------------------------------- launching

def mpirun_command(command: Sequence[str], nproc: int, *, hostfile: str | None = None,
                   mpirun_args: Sequence[str] = ()) -> list[str]:
    """The mpirun command line that runs `command` in `nproc` processes.

    A command whose first word ends in `.py` runs under this Python. As root (containers)
    `--allow-run-as-root` is added; `--oversubscribe` lets N exceed the cores of a small box.
    """
    if not isinstance(nproc, int) or isinstance(nproc, bool) or nproc < 1:
        raise ValueError(f"launch: nproc must be a positive integer, got {nproc!r}")
    command = [str(word) for word in command]
    if not command:
        raise ValueError("launch: the command to run is empty")
    if command[0].endswith(".py"):
        command = [sys.executable] + command
    mpirun = shutil.which("mpirun")
    if mpirun is None:
        raise FileNotFoundError(f"launch: mpirun was not found on PATH; {INSTALL_HINT}")
    line = [mpirun, "-n", str(nproc)]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        line.append("--allow-run-as-root")
    line.append("--oversubscribe")
    if hostfile is not None:
        if not os.path.isfile(hostfile):
            raise FileNotFoundError(f"launch: host file {hostfile!r} does not exist")
        line += ["--hostfile", str(hostfile)]
    return line + list(mpirun_args) + command


def launch(script_args: Sequence[str], nproc: int, *, hostfile: str | None = None,
           mpirun_args: Sequence[str] = (), env: dict | None = None) -> int:
    """Run `script_args` (a command, or a script and its arguments) under `mpirun -n nproc`;
    returns mpirun's exit status. Used by `shenjing train --nproc N`."""
    line = mpirun_command(script_args, nproc, hostfile=hostfile, mpirun_args=mpirun_args)
    child_env = dict(os.environ if env is None else env)
    child_env.setdefault("OMPI_MCA_rmaps_base_oversubscribe", "1")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        child_env.setdefault("OMPI_ALLOW_RUN_AS_ROOT", "1")
        child_env.setdefault("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
    return subprocess.call(line, env=child_env)
