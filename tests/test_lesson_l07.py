"""Lesson 7 (what token-level KD costs), run once as a notebook in fast mode, shows what its text claims."""

import pytest

from lesson_checks import run_lesson


@pytest.mark.slow
def test_lesson7_token_kd_cost_runs_fast(tmp_path, runs_tmp):
    run = run_lesson("l07_token_kd_cost", tmp_path)
    text = run.text
    # the store really holds the top 8 and drops the rest; k = V gives exactly the online loss
    assert str(run["store_path"]).startswith(str(runs_tmp / "quick" / "teacher_top8_T"))
    assert 0 < run["mass"] <= 1
    masses = list(run["mass_by_k"].values())
    assert masses == sorted(masses) and masses[-1] == pytest.approx(1.0, abs=1e-4)
    assert run["mass_by_k"][8] == pytest.approx(run["mass"], abs=1e-2)  # the store's fp16 vs fp32
    assert run["full_offline"] == pytest.approx(run["full_online"], rel=1e-5)
    assert "log2 k" in text  # the mass curve is drawn
    # both students and the teacher are scored
    results = run["results"]
    assert set(results) == {"teacher (reference)", "online word-KD", "offline top-8 KD"}
    assert results["teacher (reference)"]["kl_to_teacher"] == pytest.approx(0.0, abs=1e-6)
    # the cost tables: full logits dwarf top-k, which dwarfs the text; online carries the teacher
    storage = {r["what"]: r["bytes_per_example"] for r in run["storage"]}
    top8 = storage["top-8 (ids + fp16 log-probs)"]
    assert storage["full logits fp32"] > top8 > storage["sequence text (seq-KD)"]
    costs = {r["method"]: r for r in run["costs"]}
    assert costs["online word-KD"]["teacher_signal_bytes"] > costs["offline top-8 KD"]["teacher_signal_bytes"] > 0
    assert all(len(r["ms_by_repeat"]) == 5 for r in run["costs"])  # --fast: 5 paired repeats
    # the verdicts: at least one, each printed as made; exact facts hold
    claims = run["claims"]
    assert claims and all(c.sentence() in text for c in claims)
    facts = [c for c in claims if c.diff is None]
    assert facts and all(c.holds for c in facts), [c.sentence() for c in facts if not c.holds]
    assert "Check yourself" in text and "when is offline = online?" in text
