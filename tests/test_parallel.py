import os

import pytest
import torch

from motive.parallel import Processes
from tests.audit import alive, run_ranks, survivors_of_kill


def test_worker_processes_are_single_threaded_and_separate():
    with Processes(2) as processes:
        pids = {processes.submit(os.getpid).result() for _ in range(4)}
        threads = processes.submit(torch.get_num_threads).result()
    assert os.getpid() not in pids
    assert threads == 1


def test_one_process_runs_jobs_here_and_delivers_errors_through_the_future():
    with Processes(1) as processes:
        assert processes.submit(os.getpid).result() == os.getpid()
        failed = processes.submit(int, "not a number")
        with pytest.raises(ValueError, match="invalid literal"):
            failed.result()
    with pytest.raises(ValueError, match="≥ 1"):
        Processes(0)


def test_workers_and_fork_server_end_when_the_main_process_is_killed(tmp_path):
    """kill -9 of the main process must not leave its worker processes (children of the fork server,
    not of the main process), the fork server or the resource tracker behind."""
    import subprocess
    import sys

    script = (
        "import os, sys, time\n"
        "from multiprocessing import forkserver, resource_tracker\n"
        "from motive.parallel import Processes\n"
        "if __name__ == '__main__':\n"
        "    p = Processes(2)\n"
        "    pids = {p.submit(os.getpid).result() for _ in range(6)}\n"
        "    helpers = [forkserver._forkserver._forkserver_pid, resource_tracker._resource_tracker._pid]\n"
        "    print(' '.join(map(str, [*pids, *helpers])), flush=True)\n"
        "    time.sleep(600)\n"
    )
    (tmp_path / "main.py").write_text(script)
    main = subprocess.Popen([sys.executable, str(tmp_path / "main.py")], stdout=subprocess.PIPE, text=True)
    pids = [int(x) for x in main.stdout.readline().split()]
    assert len(pids) >= 3 and all(alive(p) for p in pids)
    left = survivors_of_kill(main, pids, seconds=10)
    assert not left, f"still running after the main process was killed: {left}"


def _group(backend: str, store: str, rank: int = 0, world: int = 1, seconds: float = 300) -> None:
    import datetime

    import torch.distributed as dist

    dist.init_process_group(
        backend, store=dist.FileStore(store, world), rank=rank, world_size=world,
        timeout=datetime.timedelta(seconds=seconds),
    )  # fmt: skip


def test_a_cpu_tensor_in_a_group_without_a_cpu_backend_is_refused_with_its_device(tmp_path):
    """A gloo group registered for CUDA tensors only stands in for an NCCL-only group on the CPU: a CPU
    tensor there has no backend (NCCL's failure at a multi-rank fine-tune's first step). On GPUs the
    group has gloo beside NCCL, and ``all_reduce`` names the device of a tensor no backend takes."""
    import torch.distributed as dist

    from motive.parallel import all_reduce, backend_devices, group_backend

    assert group_backend("cuda:1") == "cpu:gloo,cuda:nccl" and group_backend("cpu") == "gloo"
    _group("cuda:gloo", str(tmp_path / "store"))
    try:
        assert backend_devices() == {"cuda"}
        with pytest.raises(RuntimeError, match="No backend type associated with device type cpu"):
            dist.all_reduce(torch.ones(1))  # what the old CPU loss scalar met under NCCL
        with pytest.raises(ValueError, match="a cpu tensor in a collective of a group with backends for"):
            all_reduce(torch.ones(1))
    finally:
        dist.destroy_process_group()
    _group("cpu:gloo,cuda:gloo", str(tmp_path / "store2"))  # the mixed layout, as on GPUs
    try:
        assert backend_devices() == {"cpu", "cuda"}
        t = torch.ones(2)
        all_reduce(t)
        assert t.tolist() == [1.0, 1.0]
    finally:
        dist.destroy_process_group()


def _late_rank(rank: int, store: str, late: float, wait: float, plain: bool, result: str) -> None:
    """Rank ``rank`` of 2 in a gloo group whose own timeout is 2 s; after a first wait together, rank 1
    comes ``late`` s late to a wait of ``wait`` s (``plain``: the group's own barrier instead). Writes
    'ok' or the error."""
    import datetime
    import time

    import torch.distributed as dist

    from motive.parallel import wait_for_ranks

    _group("gloo", store, rank, 2, seconds=2)
    try:
        if plain:
            dist.barrier()  # both ranks up (processes start seconds apart)
        else:
            wait_for_ranks(datetime.timedelta(seconds=60))  # both ranks up; the first wait makes its group
        if rank == 1:
            time.sleep(late)
        if plain:
            dist.barrier()
        else:
            wait_for_ranks(datetime.timedelta(seconds=wait))
        outcome = "ok"
    except Exception as exc:  # reported to the test
        outcome = f"{type(exc).__name__}: {exc}"
    with open(f"{result}.{rank}", "w") as fh:
        fh.write(outcome)
    os._exit(0)  # a rank whose peer timed out must not wait on the group at exit


def _two_ranks(tmp_path, name: str, late: float, wait: float, plain: bool = False) -> list[str]:
    result = str(tmp_path / name)
    run_ranks(_late_rank, (str(tmp_path / f"{name}.store"), late, wait, plain, result), timeout=120)
    return [
        open(f"{result}.{r}").read() if os.path.exists(f"{result}.{r}") else "no result" for r in range(2)
    ]


def test_waiting_for_ranks_outlasts_the_group_timeout_and_names_a_missing_rank(tmp_path):
    """A featurize rank that finished waits for a slower one far longer than the group's own timeout
    (NCCL: 10 minutes; here 2 s, rank 1 coming 5 s late): the group's barrier gives up, the wait does
    not; a rank that never comes within the wait's own timeout is named."""
    plain = _two_ranks(tmp_path, "plain", late=5, wait=0, plain=True)
    assert plain[0] != "ok", plain  # the group's own 2 s timeout
    assert _two_ranks(tmp_path, "wait", late=5, wait=60) == ["ok", "ok"]
    missing = _two_ranks(tmp_path, "missing", late=8, wait=2)
    assert missing[0].startswith("TimeoutError: not every rank") and "Ranks 1 failed" in missing[0], missing


SCRIPT = """print("the caller's module ran")
import os
from motive.parallel import Processes
with Processes(2) as pool:
    print("worker", pool.submit(os.getpid).result() != os.getpid())
"""


def test_workers_do_not_rerun_the_callers_script_or_need_a_main_guard(tmp_path):
    """A user's script without ``if __name__ == "__main__":`` and code run as a notebook runs it (no
    file behind ``__main__``): workers start without importing the caller's module again."""
    import subprocess
    import sys

    script = tmp_path / "user_script.py"
    script.write_text(SCRIPT)
    for argv in ([str(script)], ["-c", SCRIPT]):
        done = subprocess.run([sys.executable, *argv], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines() == ["the caller's module ran", "worker True"]
