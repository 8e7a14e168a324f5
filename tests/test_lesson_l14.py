"""Lesson 14 (reasoning traces) runs end to end in its --fast mode and states only computed verdicts."""

from lessons import l14_reasoning_traces
from lesson_checks import check_claims


def test_lesson14_reasoning_traces(capsys, runs_tmp):
    out = l14_reasoning_traces.main(["--fast"])
    text = capsys.readouterr().out
    assert out["n_train"] == 64
    seen = out["tokens"]
    assert seen["traces"]["answer_tokens"] > seen["answers"]["answer_tokens"], "a worked solution is longer"
    assert set(out["acc"]["test"]) == {"answers", "traces"} and len(out["acc"]["test"]["traces"]) == 3
    assert all(0 <= t <= a <= 1 for t, a in zip(out["traces"]["trace"], out["traces"]["answer"]))
    assert (runs_tmp / "plots" / "l14_learning_curves.png").exists() or "also drawn" not in text
    assert "Step 5: rejection sampling" in text and "Check yourself" in text
    check_claims(out["claims"], text)  # every conclusion a verdict, printed as decided, saved for the README
