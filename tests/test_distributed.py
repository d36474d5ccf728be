"""Data parallelism on MPI: DDP against one process, no_sync, DistributedSampler against
torch's, the collective timeout, and the mpirun launcher.

The MPI tests run real 2-rank jobs under mpirun (tests/distributed_worker.py and
tests/distributed_dead_rank.py); they skip when mpi4py or mpirun is absent. The three jobs
(training, a killed rank, a hung rank) start together once per module, so the file costs
about one job's start-up.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from shenjing import distributed as dist
from shenjing.data import DistributedSampler

HERE = Path(__file__).resolve().parent
HAVE_MPI = importlib.util.find_spec("mpi4py") is not None and shutil.which("mpirun") is not None
needs_mpi = pytest.mark.skipif(not HAVE_MPI, reason="needs mpi4py and Open MPI's mpirun")
TIMEOUT_S = 3.0  # the collective timeout the hung-rank job runs under


def _worker():
    path = HERE / "distributed_worker.py"
    spec = importlib.util.spec_from_file_location("distributed_worker", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _mpirun_env() -> dict:
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMPI_MCA_rmaps_base_oversubscribe="1")
    env["PYTHONPATH"] = str(HERE.parent) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _start(log: Path, script: str, *args: str) -> subprocess.Popen:
    command = dist.mpirun_command([str(HERE / script), *args], 2)
    session = log.with_suffix(".tmp")  # each mpirun its own session folder: they run at once
    session.mkdir()
    env = dict(_mpirun_env(), TMPDIR=str(session))
    with open(log, "w") as sink:
        return subprocess.Popen(command, env=env, stdout=sink, stderr=subprocess.STDOUT)


@pytest.fixture(scope="module")
def jobs(tmp_path_factory):
    """Start the training job and both failure jobs at once; note when each one ends."""
    out = tmp_path_factory.mktemp("ddp")
    running = {"train": _start(out / "train.log", "distributed_worker.py", str(out)),
               "die": _start(out / "die.log", "distributed_dead_rank.py", "die", str(TIMEOUT_S)),
               "hang": _start(out / "hang.log", "distributed_dead_rank.py", "hang",
                              str(TIMEOUT_S))}
    ended: dict[str, float] = {}
    give_up = time.monotonic() + 120
    while len(ended) < len(running) and time.monotonic() < give_up:
        for name, job in running.items():
            if name not in ended and job.poll() is not None:
                ended[name] = time.time()
        time.sleep(0.05)
    results: dict = {"out": out}
    for name, job in running.items():
        if name not in ended:
            job.kill()
            job.wait()
            ended[name] = time.time()
        text = (out / f"{name}.log").read_text()
        results[name] = (job.returncode, text, ended[name])
    return results


def _failure_facts(text: str, finished_at: float) -> float:
    """Seconds from rank 0 entering the doomed collective to the job's end."""
    line = next(x for x in text.splitlines() if x.startswith("rank 0 waiting at "))
    return finished_at - float(line.split()[-1])


def _load(out: Path, run: str, rank: int) -> dict:
    with np.load(out / f"{run}_rank{rank}.npz") as data:
        return {k: data[k] for k in data.files}


@needs_mpi
@pytest.mark.parametrize("run", ["cnn", "mlp", "lstm", "cnn_nodes", "lstm_nodes"])
def test_ddp_on_two_ranks_equals_one_process_on_the_global_batch(jobs, run):
    """`_nodes`: gradients found ready by identity nodes instead of tensor hooks."""
    code, text, _ = jobs["train"]
    assert code == 0, text[-3000:]
    worker = _worker()
    name = run.split("_")[0]
    expected = worker.train_single(name)
    start = {k: v.numpy() for k, v in worker.build(name, seed=0).state_dict().items()}
    other_start = {k: v.numpy() for k, v in worker.build(name, seed=1).state_dict().items()}
    for rank in (0, 1):
        got = _load(jobs["out"], run, rank)
        assert got.keys() == expected.keys()
        for key in expected:
            np.testing.assert_allclose(got[key], expected[key], rtol=1e-5, atol=1e-5,
                                       err_msg=f"{run} rank {rank} {key}")
    # the comparison means something: training moved the weights, and rank 1 started elsewhere
    assert any(not np.allclose(expected[k], start[k], atol=1e-3) for k in expected)
    assert any(not np.allclose(other_start[k], start[k]) for k in start)
    facts = json.loads((jobs["out"] / "facts_rank0.json").read_text())[run]
    assert facts["replica_gap"] == 0.0  # replicas stay bit-identical after every step
    assert facts["mode"] == ("nodes" if run.endswith("_nodes") else "hooks")


@needs_mpi
def test_keras_fit_under_data_parallel_equals_one_process(jobs):
    code, text, _ = jobs["train"]
    assert code == 0, text[-3000:]
    expected = _worker().train_keras(seed=0)
    for rank in (0, 1):
        got = _load(jobs["out"], "keras", rank)
        assert len(got) == len(expected)
        for i, weight in enumerate(expected):
            np.testing.assert_allclose(got[f"arr_{i}"], weight, rtol=1e-5, atol=1e-5,
                                       err_msg=f"rank {rank} weight {i}")
    assert not np.allclose(_worker().train_keras(seed=1)[0], expected[0])


@needs_mpi
def test_buckets_are_all_reduced_while_backward_still_runs(jobs):
    facts = json.loads((jobs["out"] / "facts_rank0.json").read_text())["cnn"]
    assert facts["mode"] == "hooks"
    assert facts["buckets"] >= 3  # bucket_cap_mb=0.05 splits the seed CNN's 135 k weights
    # every bucket but the one holding the last gradient starts before backward ends
    assert facts["early_launches"] == (facts["buckets"] - 1) * _worker().STEPS


@needs_mpi
def test_no_sync_accumulates_locally_then_averages_the_sum(jobs):
    worker = _worker()
    expected = worker.train_single("mlp", micro_batches=2)
    for rank in (0, 1):
        got = _load(jobs["out"], "mlp_no_sync", rank)
        for key in expected:
            np.testing.assert_allclose(got[key], expected[key], rtol=1e-5, atol=1e-5)
    facts = json.loads((jobs["out"] / "facts_rank0.json").read_text())["mlp_no_sync"]
    assert facts["unsynced_grad_gap"] > 1e-3  # inside no_sync the ranks' gradients differ


@needs_mpi
def test_a_hung_rank_makes_the_other_exit_with_a_clear_error_after_the_timeout(jobs):
    code, text, finished_at = jobs["hang"]
    assert code != 0, text[-3000:]
    assert "DistributedTimeoutError" in text
    assert f"all_reduce of shape (4,) on rank 0 of 2 did not complete within the {TIMEOUT_S:g} s" \
        in text
    assert "rank 0: all_reduce returned" not in text
    elapsed = _failure_facts(text, finished_at)
    assert TIMEOUT_S - 0.1 < elapsed < TIMEOUT_S + 10, elapsed


@needs_mpi
def test_a_killed_rank_makes_the_other_exit_with_a_clear_error(jobs):
    code, text, finished_at = jobs["die"]
    assert code != 0, text[-3000:]
    # mpirun notices the death at once and ends the job, naming the rank and the signal;
    # where it does not (e.g. a remote host vanished), the collective timeout ends rank 0
    assert ("process rank 1" in text and "signal 9" in text) or "DistributedTimeoutError" in text
    assert "rank 0: all_reduce returned" not in text
    assert _failure_facts(text, finished_at) < TIMEOUT_S + 10


# --------------------------------------------------------------------------- no MPI needed

def test_helpers_refuse_to_run_outside_a_process_group():
    assert not dist.is_initialized()
    with pytest.raises(ValueError, match="init_process_group"):
        dist.get_rank()
    with pytest.raises(ValueError, match="backend 'nccl' is not supported"):
        dist.init_process_group(backend="nccl")
    from shenjing import nn

    with pytest.raises(RuntimeError, match="init_process_group"):
        nn.parallel.DistributedDataParallel(nn.Linear(2, 2))
    with pytest.raises(RuntimeError, match="pass num_replicas and rank"):
        DistributedSampler(range(10))


def test_mpirun_command_line():
    if shutil.which("mpirun") is None:
        with pytest.raises(FileNotFoundError, match="apt-get install"):
            dist.mpirun_command(["train.py"], 2)
        return
    line = dist.mpirun_command(["train.py", "--epochs", "1"], 4)
    assert line[1:3] == ["-n", "4"] and "--oversubscribe" in line
    assert line[-4:] == [sys.executable, "train.py", "--epochs", "1"]
    assert ("--allow-run-as-root" in line) == (os.geteuid() == 0)
    with pytest.raises(ValueError, match="nproc must be a positive integer"):
        dist.mpirun_command(["train.py"], 0)


@needs_mpi
def test_launch_runs_the_command_in_n_ranks(tmp_path):
    script = tmp_path / "hello.py"
    script.write_text("import os\nprint('rank', os.environ['OMPI_COMM_WORLD_RANK'], 'of', "
                      "os.environ['OMPI_COMM_WORLD_SIZE'], flush=True)\n")
    out = tmp_path / "out.txt"
    with open(out, "w") as f:
        sys.stdout.flush()
        saved = os.dup(1)
        os.dup2(f.fileno(), 1)
        try:
            code = dist.launch([str(script)], 2)
        finally:
            os.dup2(saved, 1)
            os.close(saved)
    assert code == 0
    assert sorted(out.read_text().split("\n")[:2]) == ["rank 0 of 2", "rank 1 of 2"]


@pytest.mark.parametrize("n,replicas,drop_last", [(10, 3, False), (10, 3, True), (9, 3, False),
                                                  (2, 4, False), (7, 2, True), (1, 1, False)])
@pytest.mark.parametrize("shuffle", [False, True])
def test_distributed_sampler_partitions_match_torch(monkeypatch, n, replicas, drop_last, shuffle):
    torch = pytest.importorskip("torch")
    from torch.utils.data.distributed import DistributedSampler as TorchSampler

    for epoch in (0, 3):
        ours = [DistributedSampler(range(n), replicas, rank, shuffle, seed=5, drop_last=drop_last)
                for rank in range(replicas)]
        for sampler in ours:
            sampler.set_epoch(epoch)
        order = ours[0].permutation()
        # torch's partition of the same permutation (its own RNG draws a different one)
        monkeypatch.setattr(torch, "randperm",
                            lambda size, generator=None, order=order: torch.tensor(order))
        for rank, sampler in enumerate(ours):
            theirs = TorchSampler(range(n), replicas, rank, shuffle, seed=5, drop_last=drop_last)
            theirs.set_epoch(epoch)
            assert list(sampler) == list(theirs)
            assert len(sampler) == len(theirs)
    if shuffle and n > 2:
        first, later = (DistributedSampler(range(n), replicas, 0, True, seed=5) for _ in "ab")
        later.set_epoch(1)
        assert first.permutation() != later.permutation()  # a new order each epoch


def test_distributed_sampler_covers_the_data_once_per_epoch_across_ranks():
    parts = [list(DistributedSampler(range(100), 4, rank, seed=1)) for rank in range(4)]
    assert sorted(sum(parts, [])) == list(range(100))
    again = [list(DistributedSampler(range(100), 4, rank, seed=1)) for rank in range(4)]
    assert parts == again  # the same on every rank: the order depends on seed and epoch only


@pytest.mark.parametrize("kwargs,message", [
    ({"num_replicas": 2, "rank": 2}, r"invalid rank 2, rank should be in the interval \[0, 1\]"),
    ({"num_replicas": 0, "rank": 0}, "num_replicas should be a positive integer"),
    ({"num_replicas": 2, "rank": 0, "seed": -1}, "seed should be a non-negative integer"),
])
def test_distributed_sampler_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DistributedSampler(range(4), **kwargs)
