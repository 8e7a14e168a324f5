"""Lessons 8 (sequence-level KD) and 9 (curation), each run once as a notebook in fast mode."""

import pytest

from lesson_checks import check_claims, check_units, run_lesson
from minikd.data import read_jsonl, read_meta


@pytest.mark.slow
def test_lesson8_sequence_kd(tmp_path, runs_tmp):
    run = run_lesson("l08_sequence_kd", tmp_path)
    text = run.text
    raw = runs_tmp / "quick" / "seqkd_unlabelled_greedy.jsonl"
    records = list(read_jsonl(raw))
    assert len(records) == len(run["prompts"]) == 64 and all(r["source"] == "teacher" for r in records)
    assert read_meta(raw)["complete"]
    assert len(run["examples"]) > 0 and set(run["rows"]) == {"teacher", "student on ground truth",
                                                             "student on teacher text (seq-KD)"}
    assert "loss is computed here" in text and "Check yourself" in text
    check_claims(run["claims"], text, saved=False)
    check_units(run["claims"])


@pytest.mark.slow
def test_lesson9_curation(tmp_path, runs_tmp):
    run = run_lesson("l09_curation", tmp_path)
    text = run.text
    assert (runs_tmp / "quick" / "teacher_weak.pt").exists()
    for name in ("unfiltered", "filtered", "regenerated"):
        c = run["counts"][name]
        dropped = sum(c[k] for k in ("truncated", "empty", "too_long", "incorrect", "duplicate"))
        assert c["kept"] + dropped == c["input"] == 48, "every record is kept or dropped for a counted reason"
        assert c["output"] == c["kept"] + c.get("regenerated_ok", 0)
    assert run["counts"]["filtered"]["output"] <= run["counts"]["unfiltered"]["output"]
    assert set(run["students"]) == {"unfiltered", "filtered", "regenerated", "ground truth (control)"}
    assert all(0.0 <= s["teacher_errors_repeated"] <= 1.0 for s in run["students"].values())
    assert "dropped: incorrect" in text and "Check yourself" in text
    check_claims(run["claims"], text, saved=False)
    check_units(run["claims"])
