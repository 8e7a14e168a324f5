"""Proof that the exercise tests can fail: they pass on the reference, and they catch classic bugs.

- every file in wrong/ is the reference with ONE classic bug (it redefines one exercise function);
  the tests of that exercise must fail on it -- in the test body, with the file importing fine (a
  failure to import or to set up does not count as catching the bug);
- the untouched workbook stub (lessons/workbook.py) fails EVERY test, each with a message naming its
  own exercise;
- the stub and the reference define the same exercises with the same signatures, each with a hint;
- plain_solutions.py (the workbook solved with plain torch, no minikd answers) passes every test;
- `python -m lessons.check` passes the reference and fails the stub.

The exercise tests run in this process (lessons.check.run_exercises), restricted to the broken
exercise and stopping at the first failure, so the whole file takes seconds.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from lessons import check

HERE = Path(__file__).resolve().parent
WRONG = sorted(p for p in (HERE / "wrong").glob("*.py") if not p.name.startswith("_"))
STUB = check.STUB
REFERENCE = HERE / "reference.py"
PLAIN = HERE / "plain_solutions.py"


def _exercise_functions(module) -> dict[str, object]:
    return {n: getattr(module, n) for n in dir(module) if re.match(r"ex\d\d_", n)}


def test_there_are_wrong_implementations():
    assert len(WRONG) >= 30


def test_stub_and_reference_define_the_same_exercises():
    stub_fns = _exercise_functions(check.load_module(STUB))
    for other in (REFERENCE, PLAIN):
        fns = _exercise_functions(check.load_module(other))
        assert list(stub_fns) == list(fns), f"the workbook and {other.name} must define the same exercises"
        for name, fn in stub_fns.items():
            assert inspect.signature(fn) == inspect.signature(fns[name]), f"{name}: signatures differ in {other.name}"
    for name, fn in stub_fns.items():
        assert re.search(r"^\s*Hint:", fn.__doc__ or "", re.M), f"{name}: the workbook docstring needs a 'Hint:' line"
    numbers = [int(n[2:4]) for n in stub_fns]
    assert numbers == list(range(1, len(numbers) + 1)), "exercises are numbered ex01, ex02, ... without gaps"


def test_the_stub_fails_every_test_naming_its_exercise(tmp_path):
    results, errors = check.run_exercises(STUB, basetemp=tmp_path / "stub")
    assert not errors and len(results) > 50
    for r in results:
        assert r.outcome == "failed", f"{r.nodeid}: the untouched stub must FAIL (in the test body), got {r.outcome}"
        assert "NotImplementedError" in r.message and f"{r.exercise}_" in r.message, \
            f"{r.nodeid}: the failure must say which exercise to write, got {r.message!r}"


def test_plain_solutions_pass_every_test(tmp_path):
    """The tests ask for what the workbook's docstrings say, not for details of minikd's implementation."""
    results, errors = check.run_exercises(PLAIN, basetemp=tmp_path / "plain")
    assert not errors and results
    assert [r.nodeid for r in results if r.outcome != "passed"] == []
    assert {r.exercise for r in results} == {n[:4] for n in _exercise_functions(check.load_module(STUB))}


@pytest.mark.parametrize("path", WRONG, ids=[p.stem for p in WRONG])
def test_wrong_implementation_is_caught(path, tmp_path):
    module = check.load_module(path)  # it must import: an import error would "fail" tests for no good reason
    broken = [n for n, fn in _exercise_functions(module).items() if fn.__module__ == module.__name__]
    assert len(broken) == 1, f"{path.name} must redefine exactly one exercise function, found {broken}"
    right = getattr(check.load_module(REFERENCE), broken[0])
    assert inspect.signature(getattr(module, broken[0])).parameters.keys() == \
        inspect.signature(right).parameters.keys(), f"{path.name}: keep the exercise's signature"
    key = broken[0][:4]
    files = [f for f in HERE.glob("test_ex_*.py") if f"def test_{key}_" in f.read_text(encoding="utf-8")]
    results, errors = check.run_exercises(path, select=f"test_{key}_", stop_first=True,
                                          basetemp=tmp_path / "run", files=files)
    assert not errors
    assert results and all(r.exercise == key for r in results)
    caught = [r for r in results if r.outcome == "failed"]
    assert caught, f"{path.name}: the bug in {broken[0]} passes every test of {key}; the tests must catch it"
    for r in caught:
        assert not re.search(r"\b(ImportError|ModuleNotFoundError|NotImplementedError|NameError)\b", r.message), \
            f"{path.name}: {r.nodeid} failed for an unrelated reason: {r.message}"


def test_check_runner_passes_the_reference(capsys):
    """Every exercise of the workbook has tests, and the reference passes all of them."""
    assert check.main([str(REFERENCE)]) == 0
    out = capsys.readouterr().out
    names = list(_exercise_functions(check.load_module(STUB)))
    assert f"{len(names)} of {len(names)} exercises pass" in out, out
    assert all(name in out for name in names) and "All done" in out


def test_check_runner_on_the_stub_points_at_the_first_exercise(capsys):
    assert check.main([str(STUB)]) == 1
    out = capsys.readouterr().out
    assert f"0 of {len(_exercise_functions(check.load_module(STUB)))} exercises pass" in out
    assert "Next: ex01_render_with_mask" in out and "not started" in out
    assert "Hint: the mask is 1 exactly where the student is graded" in out


def test_check_runner_shows_the_failing_assertion(capsys):
    assert check.main([str(HERE / "wrong" / "kd_t_squared_missing.py"), "--only", "ex15"]) == 1
    out = capsys.readouterr().out
    assert re.search(r"ex15_kd_loss\s+\d+ of \d+ tests fail", out) and "0 of 1 exercises pass" in out
    assert "Next: ex15_kd_loss" in out and "AssertionError: T=" in out and "Hint: select answer rows" in out


def test_check_runner_bad_paths(tmp_path, capsys):
    assert check.main([str(tmp_path / "missing.py")]) == 2
    with pytest.raises(SystemExit):
        check.main([str(REFERENCE), "--only", "kd"])
    broken = tmp_path / "broken.py"
    broken.write_text("def ex01_render_with_mask(:\n")
    assert check.main([str(broken)]) == 1
    out = capsys.readouterr().out
    assert "no such file" in out and "does not import: SyntaxError" in out
    with pytest.raises(SystemExit) as e:
        check.main(["--help"])
    assert e.value.code == 0
