"""Lesson 6 (token-level KD) runs end to end in its --fast mode and shows what its text claims."""

import pytest

from lessons import l06_token_kd


@pytest.mark.slow
def test_lesson6_token_kd_runs_fast(capsys, runs_tmp):
    out = l06_token_kd.main(["--fast"])
    text = capsys.readouterr().out
    # the three students and the teacher are scored
    assert set(out["acc"]) == {"teacher (reference)", "ground truth (SFT)", "online word-KD", "offline top-8 KD"}
    assert out["kl_to_teacher"]["teacher (reference)"] == pytest.approx(0.0, abs=1e-6)
    # temperature flattens the teacher: entropy grows with T
    ents = [out["entropy_by_t"][t] for t in sorted(out["entropy_by_t"])]
    assert ents == sorted(ents)
    # T^2: without it the gradient falls by far more than with it
    g = {r["T"]: r for r in out["grad_norms"]}
    assert g[8.0]["without_t2"] < g[1.0]["without_t2"] / 20
    small = [r["with_t2"] for r in out["grad_norms_small_logits"] if r["T"] <= 8]  # T = 1, 2, 4, 8
    assert max(small) / min(small) < 1.5  # small logits: flat with T^2 already from T = 1
    # k = V: offline equals online; the store really holds top-8 and drops the rest
    assert out["kv_offline"] == pytest.approx(out["kv_online"], rel=1e-5)
    assert 0 < out["topk_mass"] <= 1
    assert out["store_path"].startswith(str(runs_tmp / "quick" / "teacher_top8_T"))
    # the lesson uses the showdown's validation choice, and prints the sweep it came from
    results_sweep = [r for r in out["word_kd_sweep"]]
    best = max(results_sweep, key=lambda r: r["val_acc"])
    assert (out["temperature"], out["alpha"]) == (best["temperature"], best["alpha"])
    assert "held-back training prompts" in text and "<- chosen" in text
    # the cost tables: full logits dwarf top-k, which dwarfs the text; online carries the teacher
    storage = {r["what"]: r["bytes_per_example"] for r in out["storage"]}
    top8 = storage["top-8 (ids + fp16 log-probs)"]
    assert storage["full logits fp32"] > top8 > storage["sequence text (seq-KD)"]
    costs = {r["method"]: r for r in out["step_costs"]}
    assert costs["online word-KD"]["teacher_signal_bytes"] > costs["offline top-8 KD"]["teacher_signal_bytes"] > 0
    assert "KL(t||s)" in text and "Check yourself" in text
    assert "How do the targets of word-level KD and sequence-level KD differ?" in text
