"""Lesson 7 (what token-level KD costs) runs end to end in its --fast mode and shows what its text claims."""

import pytest

from lessons import l07_token_kd_cost


@pytest.mark.slow
def test_lesson7_token_kd_cost_runs_fast(capsys, runs_tmp):
    out = l07_token_kd_cost.main(["--fast"])
    text = capsys.readouterr().out
    # the store really holds the top 8 and drops the rest; k = V gives exactly the online loss
    assert out["store_path"].startswith(str(runs_tmp / "quick" / "teacher_top8_T"))
    assert 0 < out["topk_mass"] <= 1
    masses = list(out["mass_by_k"].values())
    assert masses == sorted(masses) and masses[-1] == pytest.approx(1.0, abs=1e-4)
    assert out["mass_by_k"][8] == pytest.approx(out["topk_mass"], abs=1e-2)  # the store's fp16 vs fp32
    assert out["full_offline"] == pytest.approx(out["full_online"], rel=1e-5)
    assert "log2 k" in text  # the mass curve is drawn
    # both students and the teacher are scored
    assert set(out["acc"]) == {"teacher (reference)", "online word-KD", "offline top-8 KD"}
    assert out["kl_to_teacher"]["teacher (reference)"] == pytest.approx(0.0, abs=1e-6)
    # the cost tables: full logits dwarf top-k, which dwarfs the text; online carries the teacher
    storage = {r["what"]: r["bytes_per_example"] for r in out["storage"]}
    top8 = storage["top-8 (ids + fp16 log-probs)"]
    assert storage["full logits fp32"] > top8 > storage["sequence text (seq-KD)"]
    costs = {r["method"]: r for r in out["step_costs"]}
    assert costs["online word-KD"]["teacher_signal_bytes"] > costs["offline top-8 KD"]["teacher_signal_bytes"] > 0
    assert all(len(r["ms_by_repeat"]) == 5 for r in out["step_costs"])  # --fast: 5 paired repeats
    # the verdicts: at least one, each printed as made; exact facts hold
    claims = out["claims"]
    assert claims and all(c.sentence() in text for c in claims)
    facts = [c for c in claims if c.diff is None]
    assert facts and all(c.holds for c in facts), [c.sentence() for c in facts if not c.holds]
    assert "Check yourself" in text and "when is offline = online?" in text
