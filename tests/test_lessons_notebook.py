"""Every lesson runs as a notebook: jupytext reads lessons/<name>.py, nbclient executes every cell in fast mode
(MINIKD_FAST=1, MINIKD_RUNS = the session's tmp folder); a cell that raises fails the test. Lesson-specific
checks of the same run live in tests/test_lessons_*.py and tests/test_lesson_l*.py."""

import ast
import jupytext
import pytest

from lesson_checks import LESSONS, ROOT, run_lesson

@pytest.mark.parametrize("name", LESSONS)
def test_every_lesson_is_percent_format_with_its_docstring_first(name):
    """The docstring is the first (markdown) cell, each numbered step a `# %%` cell at module level,
    and no main() holding the flow."""
    path = ROOT / "lessons" / f"{name}.py"
    nb = jupytext.read(path)
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("Lesson")
    assert sum(c.cell_type == "code" for c in nb.cells) >= 3
    tree = ast.parse(path.read_text())
    assert ast.get_docstring(tree), "the module docstring is what --help and the notebook show first"
    assert not any(isinstance(n, ast.FunctionDef) and n.name == "main" for n in tree.body), "steps run at top level"
    assert len(path.read_text().splitlines()) <= 220, f"{name} is over 220 lines"


@pytest.mark.parametrize("name", LESSONS)
def test_every_lesson_executes_as_a_notebook_in_fast_mode(name, tmp_path):
    run = run_lesson(name, tmp_path)
    assert "Check yourself" in run.text
    assert run["args"].fast, "MINIKD_FAST=1 must do what --fast does"


FORBIDDEN = ("minikd.machinery.pipeline", "minikd.machinery.labelling")  # the main job, the labelling jobs


@pytest.mark.parametrize("name", LESSONS)
def test_lessons_set_up_teachers_and_students_only_through_the_kit(name):
    """A lesson never reaches into the main job or the labelling jobs: lessons/kit.py is its one door."""
    tree = ast.parse((ROOT / "lessons" / f"{name}.py").read_text())
    imported = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    imported += [n.module + "." + a.name if n.module == "minikd.machinery" else n.module
                 for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module for a in n.names]
    bad = [m for m in imported if m.startswith(FORBIDDEN)]
    assert not bad, f"{name} imports {bad}: set teachers and students up through lessons.kit"


def test_options_work_however_a_lesson_is_started(monkeypatch):
    """As a script: the command line, a wrong option an error. In a kernel: its own argv (-f kernel.json) is not
    the lesson's. Either way MINIKD_FAST=1 does what --fast does and is recorded with the results."""
    import sys
    import types

    from lessons import lesson_parser
    parser = lesson_parser("Lesson x — doc.", "tiny")
    monkeypatch.delenv("MINIKD_FAST", raising=False)
    monkeypatch.delenv("MINIKD_DEVICE", raising=False)  # the test session pins the CPU through it (conftest)
    monkeypatch.setattr(sys, "argv", ["lesson", "--fast", "--seed", "3"])
    args = parser.parse_args()
    assert args.fast and args.seed == 3 and args.argv == ["--fast", "--seed", "3"]
    monkeypatch.setattr(sys, "argv", ["lesson", "--fsat"])
    with pytest.raises(SystemExit):
        parser.parse_args()
    monkeypatch.setitem(sys.modules, "ipykernel", types.ModuleType("ipykernel"))  # imported, as nbclient does
    monkeypatch.setattr(sys, "argv", ["lesson", "--seed", "4"])
    assert parser.parse_args().seed == 4, "a process that imported ipykernel is not a kernel"
    kernel = types.ModuleType("IPython")
    kernel.get_ipython = lambda: types.SimpleNamespace(kernel=object())  # inside a Jupyter kernel
    monkeypatch.setitem(sys.modules, "IPython", kernel)
    monkeypatch.setattr(sys, "argv", ["ipykernel_launcher.py", "-f", "/tmp/kernel-1.json"])
    assert not parser.parse_args().fast
    monkeypatch.setenv("MINIKD_FAST", "1")
    args = parser.parse_args()
    assert args.fast and args.argv == ["--fast"] and args.device == "auto"
