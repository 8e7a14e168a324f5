"""Lesson 11 (what sequence-level KD loses), run once as a notebook in fast mode, prints what it decided."""

import pytest

from lesson_checks import check_claims, check_units, run_lesson


@pytest.mark.slow
def test_lesson11_what_seqkd_loses(tmp_path):
    run = run_lesson("l11_what_seqkd_loses", tmp_path)
    text = run.text
    students = ("ground truth", "word-KD", "seq-KD")
    assert set(run["acc"]) == {"teacher", *students}
    # lost alternatives: every model measured in every family, the teacher at KL 0 to itself
    table = run["alternatives"]
    assert set(table) == {"teacher (reference)", *(f"{s} student" for s in students)}
    assert all(v == pytest.approx(0.0, abs=1e-5) for v in table["teacher (reference)"]["KL"].values())
    assert all(0.0 <= v <= 2 / 3 for row in table.values() for v in row["share"].values())
    # locked phrasing: ground truth, the teacher's data, and each student greedy and sampled, per family
    assert len(run["form_bits_by"]) == 2 + 2 * len(students)
    assert run["form_bits_by"]["ground truth (train labels)"]["sort"] > 1.0  # three forms in the labels
    # exposure bias: accuracy from every share of the teacher's answer; divergence; error rate by length
    assert all(set(acc) == {0.0, 0.25, 0.5, 0.75} for acc in run["prefix_acc"].values())
    assert all(0.0 <= d["identical"] <= 1.0 for d in run["divergence"].values())
    assert run["by_length"]["lengths"] and set(run["by_length"]["error_pct"]) == set(students)
    assert "error rate %" in text and "Check yourself" in text
    check_claims(run["claims"], text)  # every conclusion a verdict, printed as decided, saved for the README
    check_units(run["claims"])  # claims about these three students of one seed, and say so
