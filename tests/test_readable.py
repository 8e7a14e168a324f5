"""The teaching core stays readable: the split between core and machinery is a place (two folders),
imports run one way, what a lesson opens fits one screen, and the course cites its sources by name.

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
MAX_LINES = 40  # a function a lesson opens, docstring included
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


@pytest.mark.parametrize("name", ENTRY_POINTS)
def test_an_entry_point_only_starts_the_machinery(name):
    text = (ROOT / "minikd" / f"{name}.py").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 8, f"minikd/{name}.py is an entry point: it only starts the machinery"


def functions(module: str) -> dict[str, ast.FunctionDef]:
    """Top-level functions and class methods ("Class.method") of a core or machinery module."""
    folder = ROOT / "minikd" / ("machinery" if module in MACHINERY else "")
    tree = ast.parse((folder / f"{module}.py").read_text(encoding="utf-8"))
    out = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            out[node.name] = node
        elif isinstance(node, ast.ClassDef):
            out[node.name] = node
            for item in node.body:
                if isinstance(item, ast.FunctionDef):
                    out[f"{node.name}.{item.name}"] = item
    return out


def n_params(fn: ast.FunctionDef) -> int:
    a = fn.args
    names = [x.arg for x in a.posonlyargs + a.args + a.kwonlyargs] + [x.arg for x in (a.vararg, a.kwarg) if x]
    return len([n for n in names if n not in ("self", "cls")])


def lesson_imports() -> set[tuple[str, str]]:
    """(module, name) for every name a lesson imports from a core module of minikd."""
    found = set()
    for path in sorted((ROOT / "lessons").glob("l[0-9]*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("minikd."):
                module = node.module.split(".", 1)[1]
                if module in CORE:
                    found |= {(module, alias.name) for alias in node.names}
    return found


def test_what_a_lesson_opens_fits_one_screen():
    too_long = []
    for module, name in sorted(lesson_imports()):
        defs = functions(module)
        opened = [k for k in defs if k == name or k.startswith(name + ".")]
        for key in opened:
            node = defs[key]
            if isinstance(node, ast.FunctionDef) and node.end_lineno - node.lineno + 1 > MAX_LINES:
                too_long.append(f"minikd/{module}.py {key}: {node.end_lineno - node.lineno + 1} lines")
    assert lesson_imports(), "the lessons import nothing from the core?"
    assert not too_long, "functions a lesson opens, longer than one screen:\n" + "\n".join(too_long)


@pytest.mark.parametrize("module", CORE)
def test_core_functions_take_at_most_eight_parameters(module):
    many = [f"{k}: {n_params(f)}" for k, f in functions(module).items()
            if isinstance(f, ast.FunctionDef) and n_params(f) > MAX_PARAMS]
    assert not many, f"minikd/{module}.py: bundle these settings (a dataclass, **decoding):\n" + "\n".join(many)


def test_the_sources_are_cited_by_name_not_as_the_card():
    tracked = subprocess.run(["git", "ls-files", "*.py", "*.md"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.split()
    hits = [f"{name}:{i}" for name in tracked if Path(ROOT / name).exists()
            for i, line in enumerate((ROOT / name).read_text(encoding="utf-8").splitlines(), start=1)
            if re.search(r"\bthe card\b|\bcard's\b", line, flags=re.IGNORECASE) and name != Path(__file__).relative_to(ROOT).as_posix()]
    assert not hits, "cite Kim & Rush 2016 / Hinton et al. 2015 / DeepSeek-AI 2025 by name:\n" + "\n".join(hits)
