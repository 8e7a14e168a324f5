"""The exercise tests grade one implementation of the workbook's functions: `wb`.

    pytest tests/exercises                              grades minikd's reference (tests/exercises/reference.py)
    pytest tests/exercises --workbook my_workbook.py    grades your copy of lessons/workbook.py

`python -m lessons.check [path]` runs these same tests and prints a friendly progress list.
"""

from __future__ import annotations

import importlib.util
import itertools
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
REFERENCE = HERE / "reference.py"

# The known-wrong implementations in wrong/ start with `from tests.exercises.reference import *`.
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

_loads = itertools.count()


def pytest_addoption(parser):
    parser.addoption("--workbook", default=None, metavar="PATH",
                     help="the workbook file to grade (default: minikd's reference answers)")


def pytest_ignore_collect(collection_path, config):
    """With --workbook, only grade: the proof that the tests catch wrong code is CI's business."""
    if collection_path.name == "test_wrong_implementations.py" and config.getoption("workbook", default=None):
        return True
    return None


def load_workbook(path) -> object:
    """Import a workbook file as a fresh module (a new name every time, so edits are always seen)."""
    path = Path(path).resolve()
    if not path.is_file():
        raise FileNotFoundError(f"--workbook {path}: no such file")
    name = f"_minikd_workbook_{next(_loads)}_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def wb(request):
    """The implementation under test: --workbook PATH, or the reference answers."""
    # default=None: when this conftest is not an initial one (pytest run from the repo root), the option
    # is not registered and the reference is graded.
    path = request.config.getoption("workbook", default=None) or REFERENCE
    return load_workbook(path)


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """The exercise tensors are tiny: one thread is faster than two fighting over a busy CPU."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tok():
    from minikd.tokenizer import Tokenizer

    return Tokenizer.default()
