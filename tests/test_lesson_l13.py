"""Lesson 13 (on-policy distillation), run once as a notebook in fast mode, and what it decided: per base and arm
a chosen learning rate, the teacher as a target, why on-policy can fail (own samples right, the teacher's rescues),
exposure bias, verdicts."""

import json

import pytest

from lesson_checks import check_claims, run_lesson
from minikd.machinery import rendering


@pytest.mark.slow
def test_lesson13_on_policy(tmp_path, runs_tmp):
    out = run_lesson("l13_on_policy", tmp_path)
    text = out.text
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
    check_claims(out["claims"], text)  # every conclusion a verdict, printed as decided, saved for the README
    saved = json.loads(rendering.lesson_path("l13_on_policy", "quick").read_text())
    assert all(f"{b} base" in saved["notes"] for b in ("weak", "strong")) and "teacher sampled at T = 1" in saved["notes"]
    assert {row[0] for row in saved["table"]["rows"]} == {"weak", "strong"}
