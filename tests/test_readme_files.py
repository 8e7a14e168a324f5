"""The README's Files list is the house as it is: every tracked top-level entry and every module of minikd/,
minikd/machinery/ and lessons/ is listed, and nothing is listed that does not exist."""

import fnmatch
import re
import subprocess

from minikd.runtime import ROOT


def listed() -> list[str]:
    """The first column of the Files section's code block (continuation lines start with spaces)."""
    text = (ROOT / "README.md").read_text()
    block = text[text.index("## Files"):]
    block = block[block.index("```") + 3:]
    block = block[:block.index("```")]
    return [line.split()[0] for line in block.splitlines() if line and not line[0].isspace()]


def as_glob(entry: str) -> str:
    """lessons/l01..l16_*.py names a range: any lesson file matches it."""
    return re.sub(r"l\d\d\.\.l\d\d_", "l[0-9][0-9]_", entry)


def tracked() -> list[str]:
    out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return out.split()


def test_the_files_list_names_every_top_level_entry_and_module():
    entries, files = listed(), tracked()
    covered = lambda path: any(fnmatch.fnmatch(path, as_glob(e)) or (e.endswith("/") and path.startswith(e))  # noqa: E731
                               for e in entries)
    tops = {f.split("/")[0] + ("/" if "/" in f else "") for f in files}
    missing = [t for t in sorted(tops) if not any(e == t or e.startswith(t) for e in entries)]
    modules = [f for f in files if re.fullmatch(r"(minikd|minikd/machinery|lessons)/[^/]+\.py", f)]
    missing += [m for m in modules if not covered(m)]
    assert not missing, f"the README's Files list leaves out: {missing}"


def test_the_files_list_names_nothing_that_does_not_exist():
    files = tracked()
    ghosts = [e for e in listed() if not any(fnmatch.fnmatch(f, as_glob(e)) or f.startswith(e) for f in files)]
    assert not ghosts, f"the README's Files list names what is not in the repository: {ghosts}"
