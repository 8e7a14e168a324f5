"""Lessons 11-16 save their results; `minikd readme` re-decides every claim from the saved numbers."""

import argparse
import json

import pytest

from minikd.machinery import rendering
from minikd.verdict import check, decide


def _args(fast=False):
    return argparse.Namespace(fast=fast, seed=0, device="cpu")


def test_a_saved_claim_is_decided_again_from_its_numbers(runs_tmp, capsys):
    up = decide("on-policy beats seq-KD", [0.5, 0.6, 0.7], [0.3, 0.3, 0.3], ">", "a − b", scale=100, unit="points")
    # differences 20, 30, 40 points: mean 30, sd 10, half-width 4.303 * 10 / sqrt(3) = 24.84 -> [5.16, 54.84]
    fact = check("compute matched", True, "1.00 to 1.02")
    path = rendering.save_lesson("l13_on_policy", _args(), [up, fact], table=(["arm", "test %"], [["x", "50.0"]]),
                                seconds=90.0, seeds=[0, 1, 2])
    record = json.loads(path.read_text())
    assert record["claims"][0]["a"] == [0.5, 0.6, 0.7] and record["claims"][0]["verdict"] == "holds"
    again = rendering.claim_from_record(record["claims"][0])
    assert (again.diff.lo, again.diff.hi) == pytest.approx((5.16, 54.84), abs=0.01)
    assert again.sentence() == up.sentence()
    text = rendering.render_lessons("default")
    assert up.sentence() in text and fact.sentence() in text and "| x | 50.0 |" in text
    assert "seeds [0, 1, 2], 1.5 min" in text
    assert "Not run yet for this README: `python -m lessons.l11_what_seqkd_loses`" in text


def test_the_verdict_follows_the_saved_numbers_not_the_saved_words(runs_tmp):
    c = decide("a beats b", [0.5, 0.6, 0.7], [0.3, 0.3, 0.3], ">", scale=100, unit="points")
    path = rendering.save_lesson("l14_reasoning_traces", _args(), [c], seeds=[0, 1, 2])
    record = json.loads(path.read_text())
    record["claims"][0]["b"] = [0.9, 0.9, 0.9]  # the numbers now say a is below b
    path.write_text(json.dumps(record))
    assert "[does not hold] a beats b" in rendering.render_lessons("default")


def test_fast_results_go_to_the_quick_profile_and_unknown_lessons_are_refused(runs_tmp):
    path = rendering.save_lesson("l11_what_seqkd_loses", _args(fast=True), [check("x", True, "e", fast=True)])
    assert path == runs_tmp / "quick" / "lessons" / "l11_what_seqkd_loses.json"
    assert "--fast" in json.loads(path.read_text())["command"]
    with pytest.raises(ValueError, match="unknown lesson"):
        rendering.save_lesson("l99_nothing", _args(), [])


def test_minikd_readme_writes_both_blocks_or_nothing(runs_tmp, tmp_path, monkeypatch):
    rendering.save_lesson("l12_distilled_errors", _args(), [check("planted errors dropped", True, "48 of 48")])
    monkeypatch.setattr(rendering, "load_results", lambda profile: {"stub": profile})
    monkeypatch.setattr(rendering, "render", lambda results: "SHOWDOWN TABLE")
    readme = tmp_path / "README.md"
    both = (f"a\n{rendering.README_START}\nOLD\n{rendering.README_END}\nb\n{rendering.LESSONS_START}\nOLD\n"
            f"{rendering.LESSONS_END}\nc\n")
    readme.write_text(both)
    rendering.main(["--readme", str(readme)])
    text = readme.read_text()
    assert "SHOWDOWN TABLE" in text and "[holds] planted errors dropped — 48 of 48" in text and "OLD" not in text
    readme.write_text(both)
    rendering.main(["--readme", str(readme), "--only", "lessons"])
    assert "SHOWDOWN TABLE" not in readme.read_text() and "planted errors dropped" in readme.read_text()
    only_showdown = f"{rendering.README_START}\nOLD\n{rendering.README_END}\n"
    readme.write_text(only_showdown)
    with pytest.raises(ValueError, match="lessons:start"):
        rendering.main(["--readme", str(readme)])
    assert readme.read_text() == only_showdown  # nothing half-written
