"""How the lesson tests run a lesson: once per test session, as a notebook in fast mode.

jupytext reads lessons/<name>.py (percent format), nbclient executes its cells in an ipykernel kernel started
with MINIKD_FAST=1, MINIKD_DEVICE=cpu and the session's MINIKD_RUNS; a cell that raises fails the run. The
tests then read what the run printed (its stdout, cell by cell) and the globals it left (each one that can be
pickled and read back here), the way a learner reads the notebook. One kernel serves the whole session, its
namespace reset before each lesson (starting torch once, not fifteen times).
"""

import atexit
import os
import pickle
from dataclasses import dataclass
from pathlib import Path

import jupytext
import nbformat
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

from minikd.machinery import rendering

ROOT = Path(__file__).resolve().parents[1]
LESSONS = sorted(p.stem for p in (ROOT / "lessons").glob("l[0-9][0-9]_*.py"))
FAST_VERDICTS = ("holds", "consistent (not separable)", "needs the default run")
_RUNS: dict = {}
_KERNEL: list = []


@dataclass
class Run:
    """What one notebook run of a lesson left: its printed text and the globals the test can read back
    (`claims`: every conclusion the run stated, in order)."""
    text: str
    ns: dict

    def __getitem__(self, name):
        return self.ns[name]


def _kernel() -> KernelManager:
    """The session's kernel (started on first use; the env is read at start, so MINIKD_RUNS is the session's)."""
    if not _KERNEL:
        km = KernelManager(kernel_name="python3")
        env = {**os.environ, "MINIKD_FAST": "1", "MINIKD_DEVICE": "cpu", "PYTHONPATH": str(ROOT)}
        km.start_kernel(env=env, cwd=str(ROOT))
        _KERNEL.append(km)
    return _KERNEL[0]


@atexit.register
def stop_kernel() -> None:
    while _KERNEL:
        _KERNEL.pop().shutdown_kernel(now=True)


def run_lesson(name: str, tmp: Path) -> Run:
    """Execute lessons/<name>.py as a notebook (once per session); any cell error raises here."""
    if name not in _RUNS:
        nb = jupytext.read(ROOT / "lessons" / f"{name}.py")
        dump = tmp / f"{name}.globals.pkl"
        nb.cells.insert(0, nbformat.v4.new_code_cell("%reset -f\nimport minikd.verdict as _verdict\n_first = len(_verdict.LOG)"))
        nb.cells.append(nbformat.v4.new_code_cell(
            "import pickle as _p\n_d = {}\nfor _k, _v in list(globals().items()):\n"
            "    if not _k.startswith('_') and _k not in ('In', 'Out', 'exit', 'quit', 'get_ipython'):\n"
            "        try:\n            _d[_k] = _p.dumps(_v)\n        except Exception:\n            pass\n"
            "_d['claims'] = _p.dumps(_verdict.LOG[_first:])  # what this lesson concluded, in order\n"
            f"_p.dump(_d, open({str(dump)!r}, 'wb'))"))
        NotebookClient(nb, km=_kernel(), timeout=600, allow_errors=False).execute()
        text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
                       if o.get("output_type") == "stream" and o.get("name") == "stdout")
        ns = {}
        for k, v in pickle.loads(dump.read_bytes()).items():
            try:
                ns[k] = pickle.loads(v)
            except Exception:  # a class or function the lesson defined exists only in the kernel
                pass
        _RUNS[name] = Run(text, ns)
    return _RUNS[name]


def check_claims(claims: list, text: str, saved: bool = True) -> None:
    """At least one computed conclusion; each printed as decided, none asserting more than a tiny run can;
    and (lessons 11-16) the saved results re-decide to the same sentences (what `minikd readme` would show)."""
    assert claims, "the lesson states no computed conclusion"
    for c in claims:
        assert c.sentence() in text
        assert c.fast and c.verdict in FAST_VERDICTS
    if saved:
        rendered = rendering.render_lessons("quick")
        assert all(c.sentence() in rendered for c in claims)


def check_units(claims: list) -> None:
    """Every verdict says what it is about (#22): a claim about methods is decided over training seeds and never
    holds or fails from fewer than MIN_SEEDS of them; a claim per prompt names the two models' seed."""
    from minikd.verdict import MIN_SEEDS
    for c in claims:
        if c.diff is None:
            continue  # a fact (check): exactly true or false, nothing sampled
        assert c.over in ("seeds", "prompts"), f"{c.text!r} does not say whether it is about methods or two models"
        if c.over == "seeds":
            assert c.sentence().endswith("training seeds, paired by seed")
            assert c.diff.n >= MIN_SEEDS or c.verdict not in ("holds", "does not hold"), c.sentence()
        else:
            assert f"{c.models} (seed {c.seed}), paired by test prompt" in c.sentence()
