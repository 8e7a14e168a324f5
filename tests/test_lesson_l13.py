"""Lesson 13 (on-policy distillation) runs end to end in its --fast mode, as a script and as a notebook,
and prints what it decided: per base and arm a chosen learning rate, the teacher as a target, why on-policy
can fail (own samples right, the teacher's rescues), exposure bias, verdicts."""

import json
import os
import runpy
import sys

import pytest

from lesson_checks import check_claims
from minikd.machinery import lesson_rendering
from minikd.verdict import LOG


@pytest.mark.slow
def test_lesson13_on_policy(capsys, runs_tmp, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["l13_on_policy", "--fast"])
    n = len(LOG)
    out = runpy.run_module("lessons.l13_on_policy", run_name="__main__")
    text = capsys.readouterr().out
    arms = [arm.name for arm in out["ARMS"]]
    assert len(out["SEEDS"]) == 2 and set(out["STARTS"]) == {"weak", "strong"}
    # every arm of every base chose its own lr from the grid, and ran every seed at it
    assert set(out["grid"]) == {(b, a) for b in ("weak", "strong") for a in arms}
    assert all(set(g) == set(out["LR_GRID"]) for g in out["grid"].values())
    assert all(r["lr"] in out["LR_GRID"] and r["steps"] >= 1 for r in out["runs"].values())
    assert len(out["runs"]) == 2 * len(arms) * 2
    assert all(0.0 <= v <= 1.0 for m in out["measured"].values() for v in m.values())
    for word in ("loss is computed here", "reverse KL(student || teacher) at each sampled token", "-> ",
                 "from their midpoint", "sampled at T = 0.1", "Check yourself"):
        assert word in text
    check_claims(LOG[n:], text)  # every conclusion a verdict, printed as decided, saved for the README
    saved = json.loads(lesson_rendering.path_for("l13_on_policy", "quick").read_text())
    assert all(f"{b} base" in saved["notes"] for b in ("weak", "strong")) and "teacher sampled at T = 1" in saved["notes"]
    assert {row[0] for row in saved["table"]["rows"]} == {"weak", "strong"}


@pytest.mark.slow
def test_lesson13_runs_as_a_notebook(runs_tmp, monkeypatch):
    """The percent-format file opens as a notebook (jupytext) and runs in a kernel with MINIKD_FAST=1."""
    jupytext = pytest.importorskip("jupytext")
    nbclient = pytest.importorskip("nbclient")
    monkeypatch.setenv("MINIKD_FAST", "1")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([os.getcwd(), os.environ.get("PYTHONPATH", "")]))
    nb = jupytext.read("lessons/l13_on_policy.py")
    assert nb.cells[0].cell_type == "markdown" and "Lesson 13" in nb.cells[0].source
    nbclient.NotebookClient(nb, timeout=600, kernel_name="python3").execute()
    printed = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "Step 9: verdicts" in printed and "Check yourself" in printed
