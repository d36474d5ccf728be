"""Ctrl-C and early exits of a DataLoader whose workers are stuck in a slow `__getitem__`.

Each case runs a real child process that iterates a threaded DataLoader over a data set whose
item 1 sleeps (30 s, or forever); once the child reports that a worker is inside that item,
the test sends one SIGINT (or lets the loop `break`) and times how long the process takes to
end. Before the fix, Ctrl-C took the item's full 30 s plus two more Ctrl-Cs, and a `break`
with a never-returning item hung the process for good. PyTorch 2.13 takes about 0.6 s for
the Ctrl-C and 11 s for the `break` (its worker shutdown waits, then terminates).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from shenjing.data import DataLoader

REPO_ROOT = Path(__file__).resolve().parents[1]
DEADLINE_S = 2.0  # the issue asks for "within a second"; slack for a loaded 2-core machine

CHILD = textwrap.dedent(r"""
    import sys, threading, time
    from shenjing.data import DataLoader

    INSIDE = threading.Event()  # a worker has entered the slow item

    SLOW_S = float(sys.argv[1])  # < 0: the item never returns
    MODE = sys.argv[2]

    class SlowAtOne:
        def __len__(self):
            return 50

        def __getitem__(self, index):
            if index == 1:
                sys.stdout.write("STUCK\n")  # one write: the main thread prints too
                sys.stdout.flush()
                INSIDE.set()
                deadline = time.monotonic() + SLOW_S
                while SLOW_S < 0 or time.monotonic() < deadline:
                    time.sleep(0.05)
            return index

    try:
        for batch in DataLoader(SlowAtOne(), batch_size=1, num_workers=2):
            INSIDE.wait()
            if MODE == "break":
                break
            if MODE == "raise":
                raise RuntimeError("boom in the loop body")
        print("LOOP-ENDED", flush=True)
    except KeyboardInterrupt:
        print("KEYBOARD-INTERRUPT", flush=True)
        raise
""")


def _start(slow_s: float, mode: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT) + os.pathsep + os.environ.get(
        "PYTHONPATH", ""))
    return subprocess.Popen([sys.executable, "-c", CHILD, str(slow_s), mode], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_line(child: subprocess.Popen, expected: str) -> None:
    """Read the child's stdout until `expected` (a worker is now inside the slow item)."""
    line = child.stdout.readline()
    if line.strip() != expected:
        child.kill()
        raise AssertionError(f"child said {line!r}, expected {expected!r}; "
                             f"stderr: {_rest_of_output(child)[1][-2000:]}")


def _rest_of_output(child: subprocess.Popen) -> tuple[str, str]:
    """What the exited child wrote after the lines already read (communicate() would skip
    what readline() has buffered)."""
    return child.stdout.read(), child.stderr.read()


def _time_to_exit(child: subprocess.Popen, since: float) -> float:
    try:
        child.wait(timeout=15)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()
        pytest.fail("the child process did not exit within 15 s")
    return time.monotonic() - since


@pytest.mark.parametrize("slow_s", [30.0, -1.0], ids=["item-takes-30s", "item-never-returns"])
def test_one_ctrl_c_ends_the_loop_at_once(slow_s):
    child = _start(slow_s, "iterate")
    _wait_for_line(child, "STUCK")
    time.sleep(0.3)  # let the calling thread settle into waiting for the slow batch
    sent = time.monotonic()
    child.send_signal(signal.SIGINT)
    elapsed = _time_to_exit(child, sent)
    out, err = _rest_of_output(child)
    assert "KEYBOARD-INTERRUPT" in out, (out, err[-2000:])
    assert "KeyboardInterrupt" in err
    assert child.returncode == -signal.SIGINT  # Python re-raises an unhandled Ctrl-C as SIGINT
    assert elapsed < DEADLINE_S, f"took {elapsed:.2f} s after one SIGINT"


@pytest.mark.parametrize("mode,code", [("break", 0), ("raise", 1)])
def test_leaving_the_loop_early_does_not_wait_for_a_stuck_worker(mode, code):
    child = _start(-1.0, mode)
    _wait_for_line(child, "STUCK")
    elapsed = _time_to_exit(child, time.monotonic())
    out, err = _rest_of_output(child)
    assert child.returncode == code, (out, err[-2000:])
    if mode == "break":
        assert "LOOP-ENDED" in out
    else:
        assert "boom in the loop body" in err
    assert elapsed < DEADLINE_S, f"the process took {elapsed:.2f} s to exit"


def test_workers_are_daemon_threads_and_break_returns_at_once():
    release = threading.Event()

    class BlocksAtOne:
        def __len__(self):
            return 20

        def __getitem__(self, index):
            if index == 1:
                release.wait(30)
            return index

    before = set(threading.enumerate())
    loader = DataLoader(BlocksAtOne(), batch_size=1, num_workers=2)
    iterator = iter(loader)
    assert int(next(iterator)[0]) == 0
    workers = [t for t in threading.enumerate() if t not in before]
    assert len(workers) == 2 and all(t.daemon for t in workers)
    started = time.monotonic()
    iterator.close()  # what `break` does to the generator
    assert time.monotonic() - started < 0.5
    release.set()  # the stuck worker finishes its item, sees the pool closed, and exits
    for thread in workers:
        thread.join(timeout=5)
    assert not any(t.is_alive() for t in workers)


def test_worker_error_still_reaches_the_caller_and_stops_the_workers():
    class FailsAtThree:
        def __len__(self):
            return 10

        def __getitem__(self, index):
            if index == 3:
                raise KeyError("missing sample")
            return index

    before = set(threading.enumerate())
    with pytest.raises(KeyError, match="loading dataset index 3"):
        list(DataLoader(FailsAtThree(), batch_size=2, num_workers=2))
    workers = [t for t in threading.enumerate() if t not in before]
    for thread in workers:
        thread.join(timeout=5)
    assert not any(t.is_alive() for t in workers)


def test_batches_are_unchanged_and_in_order_with_workers():
    class Squares:
        def __len__(self):
            return 23

        def __getitem__(self, index):
            time.sleep(0.002 * (index % 3))  # finish out of order
            return index * index

    with_workers = [b.numpy().tolist() for b in DataLoader(Squares(), batch_size=4,
                                                           num_workers=3)]
    inline = [b.numpy().tolist() for b in DataLoader(Squares(), batch_size=4)]
    assert with_workers == inline
    assert sum(with_workers, []) == [i * i for i in range(23)]
