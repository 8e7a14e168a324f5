"""minikd's lessons: one runnable module per idea, read top to bottom (python -m lessons.l01_tokenizer, ...)."""

import argparse
import sys

import torch


class LessonParser(argparse.ArgumentParser):
    def parse_args(self, args=None, namespace=None):
        """--fast also runs torch on one thread: for its tiny models a second thread only waits on the
        first (measured on a 2-core machine: lesson 14 --fast 80 s on two threads, 15 s on one)."""
        out = super().parse_args(args, namespace)
        out.argv = list(sys.argv[1:] if args is None else args)  # how it was run: saved with its results
        if getattr(out, "fast", False):
            torch.set_num_threads(1)
        return out


def lesson_parser(doc: str, fast: str, device: bool = True, seed: bool = True) -> argparse.ArgumentParser:
    """The options every lesson shares: --fast (what it shrinks), --device, --seed; a lesson adds its own."""
    parser = LessonParser(description=doc.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fast", action="store_true", help=f"{fast} (the tests use it)")
    if device:
        parser.add_argument("--device", default="auto", help="auto (cuda > mps > cpu), cpu, cuda, mps")
    if seed:
        parser.add_argument("--seed", type=int, default=0, help="the seed of every random choice")
    return parser
