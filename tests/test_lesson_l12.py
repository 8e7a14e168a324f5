"""Lesson 12 (distilled errors), run once as a notebook in fast mode; every conclusion it prints is a verdict."""

import pytest

from lesson_checks import check_claims, check_units, run_lesson
from minikd.data import read_jsonl, read_meta

STUDENTS = {"seq-KD, unfiltered", "seq-KD, verifier-filtered", "ground truth (control)"}


@pytest.mark.slow
def test_lesson12_distilled_errors(tmp_path, runs_tmp):
    run = run_lesson("l12_distilled_errors", tmp_path)
    text = run.text
    raw = runs_tmp / "quick" / "teacher_greedy.jsonl"  # the main job's file, shared
    records = list(read_jsonl(raw))
    assert read_meta(raw)["complete"] and records and all(r["source"] == "teacher" for r in records)
    assert not any("planted_error" in r or "planted_quirk" in r for r in records), "the cache holds the real teacher"
    assert set(run["results"]) == STUDENTS
    for s in run["results"].values():
        assert all(0.0 <= s[k] <= 1.0 for k in ("test_acc", "targeted_acc", "error_repeated", "quirk"))
    assert 0.0 <= run["t_acc"]["acc"] <= 1.0
    assert "7+8=14 carry 1." in text and "Easy!" in text and "Check yourself" in text
    assert "seq-KD, unfiltered: error |" in text and "seq-KD, unfiltered: quirk |" in text  # the bars
    # the verdicts: at least one, each printed as it was decided; on --fast only holds or "needs the default run"
    claims = run["claims"]
    assert len(claims) >= 8
    check_claims(claims, text)
    check_units(claims)  # about these three students of one seed, and says so
    said = {c.text: c for c in claims}
    assert said["the verifier removes every planted error from the training data"].holds
