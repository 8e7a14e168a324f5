"""The teaching core stays readable: what a lesson opens fits one screen, no core function takes a dozen
knobs, and the course cites its sources by name.

The core is what lessons teach from (one idea per module); the shell (jobs, caches, the main job, the
CLI, reports) is robustness a learner need not read, and is left out of these limits.
"""

import ast
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CORE = ("tokenizer", "model", "train", "tasks", "data", "losses", "generate", "evaluate", "seqkd", "word_kd",
        "verdict", "seqkd_losses", "on_policy", "traces", "planted", "uld")
SHELL = ("jobs", "cache", "profiles", "showdown", "findings", "lesson_findings", "report", "common", "bench", "reference_gpt", "gpucheck", "kd_cost", "serve", "api",
         "distributed", "__main__")
MAX_LINES = 40  # a function a lesson opens, docstring included
MAX_PARAMS = 8


def functions(module: str) -> dict[str, ast.FunctionDef]:
    """Top-level functions and class methods ("Class.method") of minikd/<module>.py."""
    tree = ast.parse((ROOT / "minikd" / f"{module}.py").read_text(encoding="utf-8"))
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


def test_every_module_is_core_or_shell():
    modules = {p.stem for p in (ROOT / "minikd").glob("*.py")} - {"__init__"}
    assert modules == set(CORE) | set(SHELL), "say whether a new module is teaching core or shell"


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
