import os

import pytest
import torch

from motive.parallel import Processes
from tests.audit import alive, survivors_of_kill


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
