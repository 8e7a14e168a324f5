"""Small helpers every module shares: device choice, seeding, paths, a progress line, atomic writes.

Kept in one place so that lessons and library code never re-implement them.
"""

from __future__ import annotations

import os
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch

# The repository root (minikd is installed editable: `pip install -e .`), its shipped data/ and the
# git-ignored runs/ folder where every generated artefact goes. MINIKD_RUNS moves runs/ (tests use a tmp dir).
ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = ROOT / "data"


def runs_dir() -> Path:
    """Where checkpoints, generated datasets and plots go (git-ignored)."""
    return Path(os.environ.get("MINIKD_RUNS", ROOT / "runs"))


def get_device(name: str = "auto") -> torch.device:
    """'auto' picks cuda > mps > cpu; any other name is used as given (and checked)."""
    name = str(name)  # a torch.device is fine too
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} asked for, but CUDA is not available on this machine")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ValueError("device 'mps' asked for, but MPS is not available on this machine")
    return torch.device(name)


def seed_all(seed: int) -> None:
    """Seed Python, numpy and torch (all devices) so a run is repeatable on the same machine."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write to a temporary name in the same folder, then rename: a reader never sees half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


class Progress:
    """A one-line progress report: `label  done/total  rate  ETA`, rewritten in place on a terminal.

    Long work prints through this so a learner always sees that something moves and how long is left.
    """

    def __init__(self, label: str, total: int, unit: str = "it", every: float = 0.5, stream=None):
        self.label, self.total, self.unit, self.every = label, total, unit, every
        self.stream = stream or sys.stdout
        self.start = self.last = time.perf_counter()
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()

    def update(self, done: int, extra: str = "", force: bool = False) -> None:
        now = time.perf_counter()
        every = self.every if self.tty else max(self.every, 10.0)  # logs get a line every 10 s, not a flood
        if not force and now - self.last < every:
            return
        self.last = now
        elapsed = now - self.start
        rate = done / elapsed if elapsed > 0 else 0.0
        eta = (self.total - done) / rate if rate > 0 else float("nan")
        line = f"{self.label} {done}/{self.total} {rate:,.1f} {self.unit}/s ETA {eta:5.1f}s {extra}".rstrip()
        if self.tty:
            print("\r" + line + " " * 8, end="", file=self.stream, flush=True)
        else:
            print(line, file=self.stream, flush=True)

    def close(self, extra: str = "") -> float:
        """Print the final line and return the elapsed seconds."""
        elapsed = time.perf_counter() - self.start
        if self.tty:
            print("", file=self.stream)
        print(f"{self.label} done: {self.total} {self.unit} in {elapsed:.1f}s {extra}".rstrip(),
              file=self.stream, flush=True)
        return elapsed
