"""The teaching core stays readable: the split between core and machinery is a place (two folders),
imports run one way, every function fits its size, and the course cites its sources by name.

The core (minikd/*.py) is what lessons teach from, one idea per module; the machinery (minikd/machinery/)
is the robustness a learner need not read: jobs, caches, the main job, the CLI, rendering, the server.
"""

import ast
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ENTRY_POINTS = ("__main__", "gpucheck")  # `python -m minikd[.gpucheck]`: each only starts the machinery
CORE = tuple(sorted(p.stem for p in (ROOT / "minikd").glob("*.py") if p.stem not in ("__init__", *ENTRY_POINTS)))
MACHINERY = tuple(sorted(p.stem for p in (ROOT / "minikd" / "machinery").glob("*.py") if p.stem != "__init__"))
MAX_LINES = 40  # a core function, docstring included: one screen
MAX_PARAMS = 8


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, dotted module) for every import in a file: top-level, inside functions, and `from x import y`
    (as x.y, since y may be a module)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            base = node.module if not node.level else "minikd." + node.module  # core modules import absolutely
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
    return found


def machinery_imports(path: Path) -> list[str]:
    return [f"{path.relative_to(ROOT)}:{line}: {name}" for line, name in imported_modules(path)
            if name == "minikd.machinery" or name.startswith("minikd.machinery.")]


def test_the_core_never_imports_the_machinery():
    hits = [hit for module in CORE for hit in machinery_imports(ROOT / "minikd" / f"{module}.py")]
    assert CORE and MACHINERY
    assert not hits, "the teaching core imports the machinery (imports run lessons -> machinery -> core):\n" + "\n".join(hits)


def test_the_import_check_sees_every_kind_of_import(tmp_path):
    """The check above must not miss a function-local import or a `from minikd import machinery`."""
    for line in ("from minikd.machinery.cache import cached_model", "import minikd.machinery.launch",
                 "from minikd import machinery", "def f():\n    from minikd.machinery import launch"):
        planted = tmp_path / "planted.py"
        planted.write_text(line + "\n")
        assert len(machinery_imports_of(planted)) == 1, line


def machinery_imports_of(path: Path) -> list[str]:
    return [name for _, name in imported_modules(path) if name == "minikd.machinery" or name.startswith("minikd.machinery.")]


def main_job_imports(path: Path) -> list[str]:
    return [name for _, name in imported_modules(path) if name.startswith("minikd.machinery.pipeline")]


def test_the_lesson_kit_never_imports_the_main_job(tmp_path):
    """Lessons get teachers, students and data through lessons/kit.py, which reaches the stages, never the
    main job's pipeline (#20 item 4). The check itself sees a planted import."""
    assert not main_job_imports(ROOT / "lessons" / "kit.py"), "lessons/kit.py imports minikd.machinery.pipeline"
    planted = tmp_path / "kit.py"
    planted.write_text("from minikd.machinery.pipeline import answer_limit\n")
    assert main_job_imports(planted) == ["minikd.machinery.pipeline.answer_limit"]


@pytest.mark.parametrize("name", ENTRY_POINTS)
def test_an_entry_point_only_starts_the_machinery(name):
    text = (ROOT / "minikd" / f"{name}.py").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 8, f"minikd/{name}.py is an entry point: it only starts the machinery"


MAX_MACHINERY_LINES = 60  # the machinery a learner need not read: still one function per screen and a half


def all_functions(path: Path) -> list[tuple[str, ast.FunctionDef]]:
    """("Class.method" or "outer.inner" or "name", node) for EVERY function of a file, nested ones included."""
    found = []

    def visit(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                found.append((prefix + child.name, child))
                visit(child, prefix + child.name + ".")
            elif isinstance(child, ast.ClassDef):
                visit(child, prefix + child.name + ".")
            else:
                visit(child, prefix)

    visit(ast.parse(path.read_text(encoding="utf-8")), "")
    return found


def n_params(fn: ast.FunctionDef) -> int:
    a = fn.args
    names = [x.arg for x in a.posonlyargs + a.args + a.kwonlyargs] + [x.arg for x in (a.vararg, a.kwarg) if x]
    return len([n for n in names if n not in ("self", "cls")])


def size_breaches(path: Path, max_lines: int, max_params: int | None) -> list[str]:
    """Every function of `path` longer than max_lines (docstring included) or, when max_params is given,
    taking more parameters than that; as "file:function: what"."""
    where = path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else path.name
    out = []
    for name, fn in all_functions(path):
        lines = fn.end_lineno - fn.lineno + 1
        if lines > max_lines:
            out.append(f"{where}:{name}: {lines} lines (at most {max_lines})")
        if max_params is not None and n_params(fn) > max_params:
            out.append(f"{where}:{name}: {n_params(fn)} parameters (at most {max_params}: bundle settings)")
    return out


def test_every_function_fits_its_size():
    """Every core function <= 40 lines and <= 8 parameters, every machinery function <= 60 lines: measured on
    all of them, not only on those a lesson imports."""
    breaches = [b for m in CORE for b in size_breaches(ROOT / "minikd" / f"{m}.py", MAX_LINES, MAX_PARAMS)]
    breaches += [b for m in MACHINERY
                 for b in size_breaches(ROOT / "minikd" / "machinery" / f"{m}.py", MAX_MACHINERY_LINES, None)]
    assert not breaches, "functions over their size (split them, or bundle their settings):\n" + "\n".join(breaches)


def test_the_size_check_sees_methods_nested_functions_and_parameters(tmp_path):
    """The check above must not miss a long method, a long nested function, or a ninth parameter."""
    body = "".join(f"    x{i} = {i}\n" for i in range(41))
    planted = {"def f():\n" + body: "f: 42 lines",
               "class C:\n    def m(self):\n" + body.replace("    ", "        "): "C.m: 42 lines",
               "def outer():\n    def inner():\n" + body.replace("    ", "        ") + "    return inner\n":
                   "outer.inner: 42 lines",
               "def g(a, b, c, d, e, f, g, h, *, i):\n    return a\n": "g: 9 parameters"}
    for code, expected in planted.items():
        path = tmp_path / "planted.py"
        path.write_text(code)
        found = size_breaches(path, MAX_LINES, MAX_PARAMS)
        assert any(expected in b for b in found), (expected, found)
    (tmp_path / "fine.py").write_text("def h(self, a, b, c, d, e, f, g, h):\n    return a\n")
    assert size_breaches(tmp_path / "fine.py", MAX_LINES, MAX_PARAMS) == []


def test_the_sources_are_cited_by_name_not_as_the_card():
    tracked = subprocess.run(["git", "ls-files", "*.py", "*.md"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.split()
    hits = [f"{name}:{i}" for name in tracked if Path(ROOT / name).exists()
            for i, line in enumerate((ROOT / name).read_text(encoding="utf-8").splitlines(), start=1)
            if re.search(r"\bthe card\b|\bcard's\b", line, flags=re.IGNORECASE) and name != Path(__file__).relative_to(ROOT).as_posix()]
    assert not hits, "cite Kim & Rush 2016 / Hinton et al. 2015 / DeepSeek-AI 2025 by name:\n" + "\n".join(hits)
