"""Lessons 8 (sequence-level KD) and 9 (curation) run end to end in their --fast mode."""

import pytest

from lessons import l08_sequence_kd, l09_curation
from minikd.data import read_jsonl, read_meta


@pytest.mark.slow
def assert_verdicts(out: dict, text: str) -> None:
    """A lesson's conclusions are verdicts computed from its numbers, each printed as it was decided."""
    assert out["claims"], "the lesson states no computed conclusion"
    for c in out["claims"]:
        assert c.sentence() in text
        assert c.fast and c.verdict in ("holds", "consistent (not separable)", "needs the default run")


def test_lesson8_sequence_kd(capsys, runs_tmp):
    out = l08_sequence_kd.main(["--fast"])
    text = capsys.readouterr().out
    raw = runs_tmp / "quick" / "seqkd_unlabelled_greedy.jsonl"
    records = list(read_jsonl(raw))
    assert len(records) == out["n_prompts"] == 64 and all(r["source"] == "teacher" for r in records)
    assert read_meta(raw)["complete"]
    assert out["n_stored"] > 0 and set(out["acc"]) == {"teacher", "student on ground truth",
                                                        "student on teacher text (seq-KD)"}
    assert "loss is computed here" in text and "Check yourself" in text
    assert_verdicts(out, text)


@pytest.mark.slow
def test_lesson9_curation(capsys, runs_tmp):
    out = l09_curation.main(["--fast"])
    text = capsys.readouterr().out
    assert (runs_tmp / "quick" / "teacher_weak.pt").exists()
    for name in ("unfiltered", "filtered", "regenerated"):
        c = out["counts"][name]
        dropped = sum(c[k] for k in ("truncated", "empty", "too_long", "incorrect", "duplicate"))
        assert c["kept"] + dropped == c["input"] == 48, "every record is kept or dropped for a counted reason"
        assert c["output"] == c["kept"] + c.get("regenerated_ok", 0)
    assert out["counts"]["filtered"]["output"] <= out["counts"]["unfiltered"]["output"]
    assert set(out["students"]) == {"unfiltered", "filtered", "regenerated", "ground truth (control)"}
    assert all(0.0 <= s["teacher_errors_repeated"] <= 1.0 for s in out["students"].values())
    assert "dropped: incorrect" in text and "Check yourself" in text
    assert_verdicts(out, text)
