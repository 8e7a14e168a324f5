"""minikd's lessons: one runnable module per idea, read top to bottom as notebook cells (`# %%`, percent format).

Run one as a script (`python -m lessons.l01_tokenizer --fast`) or open it as a notebook (Jupyter with jupytext,
VS Code): a notebook kernel passes its own argv, so there `MINIKD_FAST=1` stands for `--fast`.
"""

import argparse
import os
import sys

import torch


def in_notebook() -> bool:
    """True inside a Jupyter kernel, whose sys.argv holds the kernel's own options, not the lesson's (a process
    that merely imported ipykernel, as a notebook runner does, is not one)."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return shell is not None and hasattr(shell, "kernel")


class LessonParser(argparse.ArgumentParser):
    def parse_args(self, args=None, namespace=None):
        """The options however the lesson was started: a script's command line (a wrong option is an error),
        nothing of a notebook kernel's own argv; MINIKD_FAST=1 in the environment does what --fast does,
        MINIKD_DEVICE=cpu what --device cpu does.
        --fast also runs torch on one thread: for its tiny models a second thread only waits on the first
        (measured on a 2-core machine: lesson 14 --fast 80 s on two threads, 15 s on one)."""
        if args is None:
            args = [] if in_notebook() else sys.argv[1:]
        out = super().parse_args(args, namespace)
        out.fast = getattr(out, "fast", False) or os.environ.get("MINIKD_FAST", "") not in ("", "0")
        if getattr(out, "device", None) == "auto" and os.environ.get("MINIKD_DEVICE"):
            out.device = os.environ["MINIKD_DEVICE"]  # the tests pin the CPU (a GPU machine's pytest too)
        out.argv = list(args) + (["--fast"] if out.fast and "--fast" not in args else [])  # saved with results
        if out.fast:
            torch.set_num_threads(1)
        return out


def lesson_parser(doc: str, fast: str, device: bool = True, seed: bool = True) -> argparse.ArgumentParser:
    """The options every lesson shares: --fast (what it shrinks), --device, --seed; a lesson adds its own."""
    parser = LessonParser(description=(doc or "").split("\n")[0], allow_abbrev=False,
                          formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fast", action="store_true", help=f"{fast}; MINIKD_FAST=1 does the same (the tests use it)")
    if device:
        parser.add_argument("--device", default="auto", help="auto (cuda > mps > cpu), cpu, cuda, mps")
    if seed:
        parser.add_argument("--seed", type=int, default=0, help="the seed of every random choice")
    return parser
