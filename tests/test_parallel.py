import os

import pytest
import torch

from motive.parallel import Processes


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
