"""Grade your workbook: which exercises pass, which fail, and a hint for the next one.

    cp lessons/workbook.py my_workbook.py       # once: your own copy to fill in
    python -m lessons.check my_workbook.py      # after every change

It runs the exercise tests (tests/exercises/) against the file you name -- lessons/workbook.py when
you name none -- and prints one line per exercise, in order: a check mark when every test of the
exercise passes, a cross when one fails, a dot when the function still raises NotImplementedError.
For the first exercise that is not done it prints the failing test's message and the function's
`Hint:` line. The exit code is 0 only when every exercise passes.

`pytest tests/exercises --workbook my_workbook.py` runs the same tests with pytest's full output.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import re
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXERCISES_DIR = ROOT / "tests" / "exercises"
STUB = Path(__file__).resolve().parent / "workbook.py"

_TEST_NAME = re.compile(r"test_(ex\d\d)_")
_LESSON_FILE = re.compile(r"test_ex_(l\d\d_\w+)\.py")


@dataclass
class TestResult:
    """One test's outcome: 'passed', 'failed' (in the test body) or 'error' (setup/teardown)."""

    nodeid: str
    exercise: str  # "ex08"
    lesson: str  # "l04_response_masking"
    outcome: str
    message: str = ""  # the one-line reason for a failure: "AssertionError: ..." or "NotImplementedError: ..."


@dataclass
class Exercise:
    key: str  # "ex08"
    lesson: str
    tests: list[TestResult] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(t.outcome == "passed" for t in self.tests)

    @property
    def not_started(self) -> bool:
        # every failure is this exercise's own NotImplementedError (not one raised by another exercise it calls)
        return not self.passed and all(f"NotImplementedError: {self.key}_" in t.message for t in self.tests
                                       if t.outcome != "passed")

    @property
    def first_failure(self) -> TestResult | None:
        return next((t for t in self.tests if t.outcome != "passed"), None)


def _short_message(report) -> str:
    """The failure's 'ExceptionType: message' line, as pytest shows it after 'E'."""
    crash = getattr(report.longrepr, "reprcrash", None)
    text = crash.message if crash is not None else str(report.longrepr)
    lines = [line for line in text.splitlines() if line.strip()]
    return "\n".join(lines[:3])


class _Collector:
    """A pytest plugin that keeps one TestResult per test."""

    def __init__(self):
        self.results: dict[str, TestResult] = {}
        self.collect_errors: list[str] = []

    def pytest_collectreport(self, report):
        if report.failed:
            self.collect_errors.append(f"{report.nodeid}: {_short_message(report)}")

    def pytest_runtest_logreport(self, report):
        name = report.nodeid.split("::")[-1]
        m, f = _TEST_NAME.match(name), _LESSON_FILE.search(report.nodeid.split("::")[0])
        result = self.results.setdefault(report.nodeid, TestResult(
            report.nodeid, m.group(1) if m else "?", f.group(1) if f else "?", "passed"))
        if report.failed and result.outcome == "passed":
            result.outcome = "failed" if report.when == "call" else "error"
            result.message = _short_message(report)


def run_exercises(workbook, select: str | None = None, stop_first: bool = False,
                  basetemp=None, files=None) -> tuple[list[TestResult], list[str]]:
    """Run tests/exercises against `workbook` in this process; return (results, collection errors).

    select: a pytest -k expression (e.g. "test_ex15_"); stop_first: stop at the first failure (-x);
    basetemp: pytest's temporary folder (a fresh one per run is made when None); files: the test files
    to run (default: every tests/exercises/test_ex_*.py).
    pytest's own output is swallowed: the caller decides what to print.
    """
    import pytest

    if not EXERCISES_DIR.is_dir():
        raise FileNotFoundError(f"{EXERCISES_DIR}: the exercise tests are not there (run from a clone of minikd, "
                                f"installed with pip install -e .)")
    collector = _Collector()
    with contextlib.ExitStack() as stack:
        if basetemp is None:
            basetemp = Path(stack.enter_context(tempfile.TemporaryDirectory())) / "pytest"
        # Only the exercise files (test_ex_*.py): not the file that checks the tests themselves.
        files = [str(p) for p in (files or sorted(EXERCISES_DIR.glob("test_ex_*.py")))]
        args = [*files, f"--workbook={Path(workbook).resolve()}", f"--rootdir={ROOT}", f"--basetemp={basetemp}",
                "-q", "-o", "addopts=", "--tb=line",  # --tb=line: the one-line reason is all we show, and fast
                "-p", "no:cacheprovider",  # no .pytest_cache written next to the tests
                "-p", "no:unraisableexception",  # its gc.collect() at exit would double the time of a run
                "-W", "ignore::UserWarning", "-W", "ignore::RuntimeWarning"]
        if select:
            args += ["-k", select]
        if stop_first:
            args.append("-x")
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            pytest.main(args, plugins=[collector])
    return list(collector.results.values()), collector.collect_errors


def group(results: list[TestResult]) -> list[Exercise]:
    """Tests grouped by exercise, in exercise order."""
    exercises: dict[str, Exercise] = {}
    for r in results:
        exercises.setdefault(r.exercise, Exercise(r.exercise, r.lesson)).tests.append(r)
    return [exercises[k] for k in sorted(exercises)]


def load_module(path: Path):
    spec = importlib.util.spec_from_file_location(f"_minikd_check_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _functions(module) -> dict[str, object]:
    """exNN -> the workbook function whose name starts with it."""
    return {name[:4]: getattr(module, name) for name in dir(module)
            if re.match(r"ex\d\d_", name) and callable(getattr(module, name))}


def hint_of(key: str, *modules) -> tuple[str, str]:
    """(function name, its 'Hint:' paragraph) from the first module that has one."""
    name = key
    for module in modules:
        fn = _functions(module).get(key) if module is not None else None
        if fn is None:
            continue
        name = fn.__name__
        doc = fn.__doc__ or ""
        m = re.search(r"^\s*Hint:(.*?)(?:\n\s*\n|\Z)", doc, re.S | re.M)
        if m:
            return name, " ".join(m.group(1).split())
    return name, ""


def _symbols() -> tuple[str, str, str]:
    try:
        "✓✗·".encode(sys.stdout.encoding or "ascii")
        return "✓", "✗", "·"
    except (UnicodeEncodeError, LookupError):
        return "ok", "XX", "--"


def parse_args(argv=None) -> tuple[argparse.Namespace, Path, str | None]:
    """The options; returns (args, the workbook's path, shown short when under the current folder, and the test
    name prefix of --only or None)."""
    parser = argparse.ArgumentParser(
        prog="python -m lessons.check", description=__doc__.split("\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Start with:  cp lessons/workbook.py my_workbook.py && python -m lessons.check my_workbook.py")
    parser.add_argument("workbook", nargs="?", default=str(STUB),
                        help="your workbook file (default: lessons/workbook.py)")
    parser.add_argument("--only", metavar="EXERCISE", default=None,
                        help="grade one exercise only, e.g. --only ex15 (or 15)")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="print the message of every failing test, not only the first")
    args = parser.parse_args(argv)
    path, select = Path(args.workbook), None
    if args.only is not None:
        m = re.fullmatch(r"(?:ex)?(\d{1,2})(?:_\w*)?", args.only.strip())
        if not m:
            parser.error(f"--only {args.only!r}: name an exercise like ex15 or 15")
        select = f"test_ex{int(m.group(1)):02d}_"
    with contextlib.suppress(ValueError):  # show a short path when it lies under the current folder
        path = path.resolve().relative_to(Path.cwd())
    return args, path, select


def print_progress(exercises: list, path: Path, learner, stub, verbose: bool) -> None:
    """One line per exercise, lesson by lesson: passed, not started, or how many of its tests fail."""
    ok, bad, todo = _symbols()
    print(f"minikd exercises -- grading {path}\n")
    lesson = None
    for ex in exercises:
        if ex.lesson != lesson:
            lesson = ex.lesson
            print(f"lesson {lesson}   (python -m lessons.{lesson})")
        name, _ = hint_of(ex.key, learner, stub)
        n_fail = sum(t.outcome != "passed" for t in ex.tests)
        if ex.passed:
            status = f"{ok} {name}"
        elif ex.not_started:
            status = f"{todo} {name:32s} not started"
        else:
            status = f"{bad} {name:32s} {n_fail} of {len(ex.tests)} tests fail"
        print("  " + status)
        if verbose and not ex.passed and not ex.not_started:
            for t in ex.tests:
                if t.outcome != "passed":
                    print(f"      {t.nodeid.split('::')[-1]}: {t.message.splitlines()[0]}")


def print_next(nxt, path: Path, learner, stub) -> None:
    """What to do next: the first exercise that does not pass yet, its first failure, its hint."""
    name, hint = hint_of(nxt.key, learner, stub)
    failure = nxt.first_failure
    print(f"\nNext: {name}  (lesson {nxt.lesson})")
    if nxt.not_started:
        print(f"  {name} still raises NotImplementedError: replace its body in {path}.")
    else:
        where = "while setting up the test" if failure.outcome == "error" else ""
        print(f"  {failure.nodeid.split('::')[-1]} fails {where}".rstrip() + ":")
        for line in failure.message.splitlines():
            print(f"    {line}")
    if hint:
        print(f"  Hint: {hint}")
    tests = EXERCISES_DIR
    with contextlib.suppress(ValueError):
        tests = EXERCISES_DIR.relative_to(Path.cwd())
    print(f"\nFull output:  python -m pytest {tests} --workbook {path} -k {nxt.key}")


def main(argv=None) -> int:
    args, path, select = parse_args(argv)
    # Step 1: the workbook must exist and import, or nothing else can be said.
    if not path.is_file():
        print(f"{path}: no such file. Make your copy first:  cp lessons/workbook.py {path}")
        return 2
    try:
        learner = load_module(path)
    except Exception as e:  # a syntax error, a bad import: show where
        print(f"{path} does not import: {type(e).__name__}: {e}")
        return 1
    try:
        stub = load_module(STUB)
    except Exception:
        stub = None
    # Step 2: run the tests and group them by exercise.
    results, collect_errors = run_exercises(path, select=select)
    if collect_errors or not results:
        print("the exercise tests could not be collected:\n  " + "\n  ".join(collect_errors or ["no tests found"]))
        return 2
    exercises = group(results)
    # Step 3: one line per exercise, lesson by lesson.
    print_progress(exercises, path, learner, stub, args.verbose)
    done = sum(ex.passed for ex in exercises)
    print(f"\n{done} of {len(exercises)} exercises pass.")
    if done == len(exercises):
        print("All done: every exercise passes. Well distilled!" if select is None else
              f"{exercises[0].key} passes; run without --only to see them all.")
        return 0
    # Step 4: what to do next -- the first exercise that does not pass yet.
    print_next(next(ex for ex in exercises if not ex.passed), path, learner, stub)
    return 1

if __name__ == "__main__":
    sys.exit(main())
