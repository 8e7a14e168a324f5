"""Several processes, one job: the ranks of PyTorch's own engine, torch.distributed (the machinery; a learner
need not read it).

Every parallel part of minikd runs on ranks, started one of two ways, with the same environment:

    torchrun --nproc_per_node N -m minikd ...   torchrun sets RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR/PORT
    launch(fn, N, ...)                          the plain `minikd` starts its own N ranks on this machine
                                                (torch.multiprocessing, "spawn") and sets the same variables

so the same rank code runs with and without torchrun. init() joins the group: gloo on a CPU; on a machine
with a GPU for each of its ranks, NCCL for CUDA tensors (each rank on GPU LOCAL_RANK) and gloo for the rest
(small objects, barriers). The questions a rank asks once it runs (rank(), world_size(), all_reduce_sum(), ...)
are the teaching core's minikd.ranks: no-ops in one process, so the training loop never imports this file.
Inside `with whole_machine():` a rank started by launch() uses the CPU threads of every rank of its machine,
for work it does while the others wait at a barrier (which sleeps): the main job's teacher trains on rank 0
with the threads a one-process run has, as fast and with the same numbers. (Under torchrun the threads
are the user's: OMP_NUM_THREADS, 1 per rank unless set.)

Only rank 0 prints: init() sends the other ranks' stdout to os.devnull (a progress line per rank is
noise); their errors still reach stderr. An error on any rank ends the job: torchrun stops every rank
when one fails, and so does launch(), which then raises RankFailed naming the rank and its error. A rank
waiting at a barrier for a peer that never comes gives up after TIMEOUT (an error, not a hang).
"""

from __future__ import annotations

import atexit
import os
import socket
import sys
from contextlib import contextmanager
from datetime import timedelta

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from minikd.ranks import world_size

# How long a rank waits at a barrier or a collective for the others. Long enough for the slowest wait
# of the main job (the other ranks wait while rank 0 trains the teacher: minutes on a CPU).
TIMEOUT = timedelta(seconds=float(os.environ.get("MINIKD_RANK_TIMEOUT", 3600)))


class RankFailed(ChildProcessError):
    """A rank started by launch() ended with an error (the others were stopped)."""


def launched() -> bool:
    """Is this process one rank of several (torchrun or launch() set the environment)?"""
    return "MASTER_ADDR" in os.environ and int(os.environ.get("WORLD_SIZE", 1)) > 1


def init() -> int:
    """Join the group torchrun (or launch) set up, once; returns the world size (1 when not launched).
    With a GPU for each rank of this machine: NCCL for CUDA tensors, rank on GPU LOCAL_RANK; else gloo."""
    if not launched() or dist.is_initialized():
        return world_size()
    local = int(os.environ.get("LOCAL_RANK", 0))
    here = int(os.environ.get("LOCAL_WORLD_SIZE", os.environ["WORLD_SIZE"]))  # ranks on this machine
    backend = "gloo"
    if torch.cuda.is_available() and dist.is_nccl_available() and here <= torch.cuda.device_count():
        torch.cuda.set_device(local)  # "cuda" now means this rank's own GPU
        backend = "cpu:gloo,cuda:nccl"
    dist.init_process_group(backend, timeout=TIMEOUT)
    atexit.register(_leave)
    if dist.get_rank() != 0:
        sys.stdout = open(os.devnull, "w")  # only rank 0 prints; errors still go to stderr
    return world_size()


def _leave() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def machine_threads() -> int:
    """The CPU threads of all the ranks of this machine together: under launch(), the launching process's
    (what a one-process run has); else this process's own (under torchrun, OMP_NUM_THREADS decides)."""
    return int(os.environ.get("MINIKD_MACHINE_THREADS", torch.get_num_threads()))


@contextmanager
def whole_machine():
    """Use machine_threads() inside, for work this rank does while the others of its machine wait."""
    before = torch.get_num_threads()
    torch.set_num_threads(machine_threads())
    try:
        yield
    finally:
        torch.set_num_threads(before)


# ---------------------------------------------------------------------------------------------------
# The laptop launcher: the same ranks as torchrun, started from a plain command

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(fn, nprocs: int, *args) -> None:
    """Run fn(*args) on `nprocs` fresh ranks of this machine ("spawn": nothing inherited but the
    environment) and wait for them all; the CPU threads are shared out between them. fn must be
    importable (a module-level function). An error on any rank stops the others and raises RankFailed."""
    threads = torch.get_num_threads()
    try:
        mp.start_processes(_rank_main, args=(nprocs, free_port(), threads, fn, args), nprocs=nprocs,
                           start_method="spawn")
    except mp.ProcessRaisedException as e:
        print(str(e).strip(), file=sys.stderr)  # the rank's traceback
        last = str(e).strip().splitlines()[-1]
        raise RankFailed(f"rank {e.error_index} of {nprocs} failed ({last}); the other ranks were stopped") from None
    except mp.ProcessExitedException as e:
        raise RankFailed(f"rank {e.error_index} of {nprocs} died (exit code {e.exit_code}, signal "
                         f"{e.signal_name}); the other ranks were stopped") from None


def _rank_main(local_rank: int, nprocs: int, port: int, threads: int, fn, args) -> None:
    """One rank started by launch(): torchrun's environment variables, then init() and fn. `threads` are the
    launching process's: each rank gets its share, and all of them inside whole_machine()."""
    os.environ.update(RANK=str(local_rank), LOCAL_RANK=str(local_rank), WORLD_SIZE=str(nprocs),
                      LOCAL_WORLD_SIZE=str(nprocs), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port),
                      MINIKD_MACHINE_THREADS=str(threads))
    torch.set_num_threads(max(1, threads // nprocs))
    init()
    try:
        fn(*args)
    finally:
        _leave()
