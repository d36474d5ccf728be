"""A rank dies or hangs mid-job (run under mpirun by tests/test_distributed.py).

`python distributed_dead_rank.py die|hang SECONDS`: after one all-reduce, rank 1 kills (or
stops) itself while rank 0 enters the next all-reduce with a SECONDS timeout. Loads only
shenjing/distributed.py (NumPy and mpi4py), not the whole framework, to start fast.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import sys
import time
from pathlib import Path

import numpy as np

path = Path(__file__).resolve().parents[1] / "shenjing" / "distributed.py"
spec = importlib.util.spec_from_file_location("shenjing_distributed", path)
dist = importlib.util.module_from_spec(spec)
spec.loader.exec_module(dist)

how, seconds = sys.argv[1], float(sys.argv[2])
dist.init_process_group(backend="mpi", timeout=seconds)
ones = np.ones(4, dtype=np.float32)
_, request = dist.all_reduce_array(ones)
dist.wait_all([request], "all_reduce of shape (4,)")
if dist.get_rank() == 1:
    os.kill(os.getpid(), signal.SIGKILL if how == "die" else signal.SIGSTOP)
time.sleep(0.5)
print(f"rank 0 waiting at {time.time():.3f}", flush=True)
_, request = dist.all_reduce_array(ones)
dist.wait_all([request], "all_reduce of shape (4,)")
print("rank 0: all_reduce returned (it should not have)", flush=True)
