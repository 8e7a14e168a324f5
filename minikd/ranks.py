"""The ranks of a data-parallel run, as the training loop sees them: who am I, how many are we, add this up.

Under torchrun (or `minikd`'s own launcher, minikd.machinery.launch) several processes train one model
together; each is a *rank*. The loop asks only the questions below. In one process every answer is the
trivial one (rank 0 of a world of 1, a sum of one number), so the same loop runs unchanged without ranks.
Inside `with alone():` a rank behaves as a world of one: the main job trains each student on one rank.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
import torch.distributed as dist

_ALONE = [0]  # depth of alone() blocks


@contextmanager
def alone():
    """Work inside is this rank's alone: rank() is 0, world_size() 1, and every helper a no-op."""
    _ALONE[0] += 1
    try:
        yield
    finally:
        _ALONE[0] -= 1


def _grouped() -> bool:
    return dist.is_available() and dist.is_initialized() and not _ALONE[0]


def rank() -> int:
    return dist.get_rank() if _grouped() else 0


def world_size() -> int:
    return dist.get_world_size() if _grouped() else 1


def is_main() -> bool:
    return rank() == 0


def barrier() -> None:
    """Wait until every rank is here (at most TIMEOUT)."""
    if world_size() > 1:
        dist.barrier()


def all_reduce_sum(x: float) -> float:
    """The sum of x over the ranks (every rank gets it)."""
    if world_size() == 1:
        return x
    t = torch.tensor([x], dtype=torch.float64)  # a CPU tensor: gloo carries it, whatever the training device
    dist.all_reduce(t)
    return float(t.item())


def broadcast_object(obj):
    """Rank 0's obj, on every rank (picklable): what rank 0 decided, everyone does."""
    if world_size() == 1:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather_objects(obj) -> list:
    """Every rank's obj, in rank order, on every rank."""
    if world_size() == 1:
        return [obj]
    out = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out
