"""Small helpers every module shares: device choice (re-exported from minikd.device), seeding and seed
mixing, paths, a progress line, atomic writes.

Kept in one place so that lessons and library code never re-implement them.
"""

from __future__ import annotations

import json
import os
import random
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator

import numpy as np
import torch

from minikd.device import get_device  # noqa: F401  the one device policy lives in minikd.device

# The repository root (minikd is installed editable: `pip install -e .`), its shipped data/ and the
# git-ignored runs/ folder where every generated artefact goes. MINIKD_RUNS moves runs/ (tests use a tmp dir).
ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = ROOT / "data"


def runs_dir() -> Path:
    """Where checkpoints, generated datasets and plots go (git-ignored)."""
    return Path(os.environ.get("MINIKD_RUNS", ROOT / "runs"))


def seed_all(seed: int) -> None:
    """Seed Python, numpy and torch (all devices) so a run is repeatable on the same machine."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def mix_seed(*numbers: int) -> int:
    """One well-spread seed (a non-negative int below 2**63) from several numbers, e.g. (seed, step).

    The obvious `seed * K + step` collides: seed 0 at step K draws the same numbers as seed 1 at step 0,
    so two "independent" runs would share batches. numpy's SeedSequence hashes the whole list instead,
    so every distinct list gets its own seed. The top bit is dropped to fit torch.manual_seed.
    """
    state = np.random.SeedSequence([int(n) for n in numbers]).generate_state(1, dtype=np.uint64)
    return int(state[0]) >> 1


@contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", encoding: str = "utf-8") -> Iterator[IO]:
    """Open `<path>.tmp` for writing and rename it over `path` when the block ends: readers see the old file
    or the new one, never half a file.

    The temporary file sits in the same folder (a rename across file systems is not atomic). It is flushed
    and fsync'ed before the rename, so a power cut after the rename cannot leave an empty file. If the block
    raises, the temporary file is deleted and `path` is left exactly as it was. Text is written with "\n"
    line ends on every OS, so the same content gives the same bytes.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open writes a whole new file: mode must be 'w' or 'wb', got {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    text = mode == "w"
    try:
        with open(tmp, mode, encoding=encoding if text else None, newline="\n" if text else None) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)  # atomic on POSIX and Windows
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` to `path` through atomic_open: a reader never sees half a file."""
    with atomic_open(path, "wb") as f:
        f.write(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write `text` (UTF-8, "\n" line ends) to `path` through atomic_open."""
    with atomic_open(path, "w") as f:
        f.write(text)


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


def as_json(value):
    """`value` as it reads back from JSON (tuples become lists, keys strings; what JSON cannot hold, its str)."""
    return json.loads(json.dumps(value, default=str))


def what_differs(recorded, now: dict, ignore=(), was: str = "recorded") -> list[str]:
    """THE answer to "was this made the same way?" for everything minikd reuses or resumes (a checkpoint, a
    cached teacher or student, a labelled file and its shards, a teacher's stored distributions): the settings
    recorded with it against those wanted now, key by key, as both read back from JSON. [] means the same;
    else one "key: <was> X vs now Y" per difference. No settings recorded at all is a difference too."""
    if not isinstance(recorded, dict) and isinstance(now, dict):
        return [f"no settings recorded with it (found {recorded!r})"]
    recorded, now = as_json(recorded), as_json(now)
    if not isinstance(now, dict):
        return [] if recorded == now else [f"{was} {recorded!r} vs now {now!r}"]
    keys = list(now) + [k for k in recorded if k not in now]
    return [f"{k}: {was} {recorded.get(k)!r} vs now {now.get(k)!r}" for k in keys
            if k not in ignore and recorded.get(k) != now.get(k)]
