"""Shared test setup: every test writes its artefacts to a temporary runs/ folder, never to the repo's.

The folder is shared by the whole session, so the `quick` profile's teacher is trained once and reused
by every lesson test (as the lessons reuse runs/default/teacher.pt for real).
"""

import os

import pytest


@pytest.fixture(scope="session", autouse=True)
def runs_tmp(tmp_path_factory):
    path = tmp_path_factory.mktemp("runs")
    old = os.environ.get("MINIKD_RUNS")
    os.environ["MINIKD_RUNS"] = str(path)
    yield path
    if old is None:
        os.environ.pop("MINIKD_RUNS", None)
    else:
        os.environ["MINIKD_RUNS"] = old


@pytest.fixture(scope="session", autouse=True)
def one_thread():
    """Tests use tiny models, where a second thread only adds synchronisation (and, on a busy shared CPU,
    spin-waiting): one thread is faster and steadier."""
    import torch
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="session", autouse=True)
def cpu_unless_asked():
    """`--device auto` means the CPU in the test session (and in the lessons and jobs it starts as
    subprocesses), so `pytest` on a GPU machine checks what it checks on a laptop; MINIKD_TEST_DEVICE=cuda
    (or mps) runs them on that device instead. Tests of the GPU itself name device="cuda" (tests/test_cuda.py)."""
    old = os.environ.get("MINIKD_DEVICE")
    os.environ["MINIKD_DEVICE"] = os.environ.get("MINIKD_TEST_DEVICE", "cpu")
    yield
    if old is None:
        os.environ.pop("MINIKD_DEVICE", None)
    else:
        os.environ["MINIKD_DEVICE"] = old
